"""grammar/ppl.lark: builds as a conflict-free LALR(1) grammar with no colliding terminals."""
from lark import Lark

from ppl.frontend import parse as parse_module


def _grammar_text():
    return parse_module.find_grammar().read_text(encoding="utf-8")


def test_grammar_builds_strict_lalr():
    # strict=True turns shift/reduce conflicts and terminal collisions (via interegular) into
    # errors, so an ambiguity cannot creep into the grammar unnoticed.
    Lark(_grammar_text(), start="program", parser="lalr", strict=True)


def test_grammar_builds_strict_with_the_parsers_own_options():
    Lark(_grammar_text(), **parse_module._SETTINGS, strict=True,
         postlex=parse_module._BracketNewlines())


def test_every_terminal_has_a_readable_description():
    # Error messages list expected tokens; a new regex terminal needs a word in _WORDS.
    ignored = {"COMMENT"}
    for terminal in parse_module._parser().terminals:
        if terminal.name in ignored or terminal.name.startswith("__IGNORE"):
            continue
        (word,) = parse_module._describe_expected([terminal.name])
        assert word.startswith("'") or word in parse_module._WORDS.values(), terminal.name
