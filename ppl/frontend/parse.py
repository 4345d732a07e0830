"""Text -> syntax.Program: builds the LALR parser once and turns lark's exceptions into PplError.

The grammar lives in ``grammar/ppl.lark``; the tree -> AST step is ``to_ast.py``.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from .. import errors
from ..source import Source, Span
from . import lalr_cache, syntax
from .to_ast import to_ast

_OPEN = frozenset({"LPAR", "LSQB"})
_CLOSE = frozenset({"RPAR", "RSQB"})
# Terminals matched by a regular expression, described in words; string terminals show as '~'.
_WORDS = {"NAME": "a name", "NUMBER": "a number", "_NL": "a newline", "$END": "end of file"}
_BINARY_OPS = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW"})
_COMPARISONS = frozenset({"LT", "LE", "GT", "GE", "EQ", "NE"})


class _BracketNewlines:
    """Postlexer: drops newline tokens inside () and [] so expressions may span lines.

    Like lark's ``Indenter``, it tracks the bracket depth over the token stream.
    """

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in _OPEN:
                depth += 1
            elif token.type in _CLOSE:
                depth = max(0, depth - 1)  # an unmatched closer is the parser's error to report
            elif token.type == "_NL" and depth > 0:
                continue
            yield token


def find_grammar() -> Path:
    """The grammar file: inside the installed package, else in the source checkout."""
    installed = Path(__file__).resolve().parent.parent / "grammar" / "ppl.lark"
    if installed.is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "grammar" / "ppl.lark"


# The parser's data-valued settings, defined once: the parser is built with them and the
# table cache is keyed on them. lexer="basic": every keyword is reserved in every context (the
# contextual lexer would let `data` lex as a NAME where no keyword is expected).
_SETTINGS = {"start": "program", "parser": "lalr", "lexer": "basic", "propagate_positions": True}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = find_grammar().read_text(encoding="utf-8")
    return lalr_cache.load_or_build(grammar, _SETTINGS, postlex=_BracketNewlines())


def parse(text: str, path: str = "<string>") -> syntax.Program:
    """Parse a model's text into its AST.

    Parameters
    ----------
    text : the model source.
    path : shown in error messages (``<string>`` for text given directly).

    Returns
    -------
    syntax.Program, every node carrying its Span.

    Raises
    ------
    PplError : a syntax error, located at the unexpected character or token.
    """
    source = Source(path, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as e:
        span = Span(source, e.line, e.column, e.line, e.column + 1)
        raise errors.unexpected_character(span, e.char) from None
    except UnexpectedToken as e:
        raise _token_error(source, e) from None
    except UnexpectedInput as e:  # lark's UnexpectedEOF; LALR reports end of input as $END
        end = source.end_span()
        raise errors.unexpected_end(end, _describe_expected(getattr(e, "expected", ())),
                                    _left_open(text, end)) from None
    try:
        return to_ast(tree, source)
    except VisitError as e:
        raise e.orig_exc from None


def _token_error(source: Source, e: UnexpectedToken) -> errors.PplError:
    # `accepts` asks the parser which tokens really fit; `expected` may list extra ones that
    # LALR's default reductions would only reject later.
    expected = _describe_expected(e.accepts or e.expected)
    token = e.token
    if token.type == "$END":
        end = source.end_span()
        return errors.unexpected_end(end, expected, _left_open(source.text, end))
    width = 1 if token.type == "_NL" else max(1, len(token))
    span = Span(source, token.line, token.column, token.line, token.column + width)
    return errors.syntax_error(span, _describe_found(token), expected,
                               _left_open(source.text, span))


def _left_open(text: str, span: Span) -> tuple[str, int, int] | None:
    """The innermost bracket still open where ``span`` starts, as (bracket, line, column),
    when it was opened on an earlier line: newlines inside brackets are skipped, so a bracket
    left open turns the lines after it into its expression and the error lands on one of
    them, away from the mistake."""
    still_open: list[tuple[str, int, int]] = []
    for number, line in enumerate(text.split("\n")[:span.line], start=1):
        code = line.split("#", 1)[0]
        if number == span.line:
            code = code[:span.col - 1]
        for column, char in enumerate(code, start=1):
            if char in "([":
                still_open.append((char, number, column))
            elif char in ")]" and still_open:
                still_open.pop()
    if still_open and still_open[-1][1] < span.line:
        return still_open[-1]
    return None


def _describe_found(token: Token) -> str:
    if token.type == "_NL":
        return "newline"
    if token.type == "NAME":
        return f"name '{token}'"
    if token.type == "NUMBER":
        return f"number '{token}'"
    if token.value.isidentifier():  # not isalpha: 'positive_ordered' is a keyword too
        return f"keyword '{token}'"
    return f"'{token}'"


def _describe_expected(names) -> list[str]:
    names = set(names)
    words = []
    if _BINARY_OPS <= names:  # after a complete expression: say so once, not twelve times
        names -= _BINARY_OPS | _COMPARISONS
        words.append("an operator")
    if "NAME" in names:  # in argument lists `lower=`/`upper=` are just two more names
        names -= {"LOWER", "UPPER"}
    patterns = {t.name: t.pattern for t in _parser().terminals}
    for name in names:
        if name in _WORDS:
            words.append(_WORDS[name])
        elif name in patterns and patterns[name].type == "str":
            words.append(f"'{patterns[name].value}'")
        else:
            words.append(name.lower())
    return words
