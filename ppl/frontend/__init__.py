"""The front end: text -> lark tree -> AST (spans) -> checked IR."""
