"""The per-user parser cache: same parses as a fresh build, rebuilt when unreadable or stale."""
import json
from pathlib import Path

import pytest
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

from ppl.frontend import lalr_cache, parse

TEXT = "data n: int\nsample mu ~ Normal(\n  0, 1)\nobserve y ~ Normal(mu, 1)  # note\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parse._parser.cache_clear()
    yield tmp_path / "ppl"
    parse._parser.cache_clear()


def _build():
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    return Lark(grammar, start="program", parser="lalr", lexer="basic",
                propagate_positions=True, postlex=parse._BracketNewlines())


def _fresh_tree():
    return _build().parse(TEXT)


def test_cached_parser_parses_like_a_fresh_build(cache):
    parse._parser()  # builds and writes the cache
    assert len(list(cache.glob("parser-*.json"))) == 1
    parse._parser.cache_clear()
    loaded = parse._parser()  # loads it
    tree = loaded.parse(TEXT)
    assert tree == _fresh_tree()
    assert tree.children[1].meta.line == 2 and tree.children[1].meta.end_line == 3


def test_cached_parser_reports_the_same_syntax_error(cache):
    parse._parser()
    parse._parser.cache_clear()
    with pytest.raises(parse.errors.PplError, match="1:13: error: syntax error: unexpected keyword 'int'; expected '<', '\\[', a newline, end of file"):
        parse.parse("data n: int int\n")


def test_corrupt_cache_is_rebuilt(cache):
    parse._parser()
    (path,) = cache.glob("parser-*.json")
    path.write_text('{"data": not json')
    parse._parser.cache_clear()
    assert parse._parser().parse(TEXT) == _fresh_tree()
    assert path.read_text().startswith('{"data"') and "not json" not in path.read_text()


def test_json_that_is_not_lark_form_is_rebuilt(cache):
    parse._parser()
    (path,) = cache.glob("parser-*.json")
    path.write_text('{"data": {"parser": {}}, "memo": []}')
    parse._parser.cache_clear()
    assert parse._parser().parse(TEXT) == _fresh_tree()
    assert json.loads(path.read_text())["memo"]


def test_restored_tables_are_lark_form_exactly():
    # == alone would not see a tuple come back as a list, so the types are compared too.
    data, memo = _build().memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k != "postlex"}
    restored = lalr_cache._restore(json.loads(json.dumps({"data": data, "memo": memo})))

    def typed(x):
        if isinstance(x, dict):
            return {(type(k), k): typed(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return (type(x), [typed(v) for v in x])
        return (type(x), x)
    assert typed(restored) == typed((data, memo))


def test_an_edited_grammar_gets_its_own_cache_entry(cache):
    calls = []

    def build():
        calls.append(1)
        return _build()

    grammar = parse.find_grammar().read_text(encoding="utf-8")
    lalr_cache.load_or_build(grammar, build)
    lalr_cache.load_or_build(grammar + "\n// edited\n", build)
    assert len(calls) == 2 and len(list(cache.glob("parser-*.json"))) == 2


def test_unwritable_cache_folder_still_parses(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where a folder must go
    parse._parser.cache_clear()
    try:
        assert parse._parser().parse(TEXT) == _fresh_tree()
    finally:
        parse._parser.cache_clear()
    assert Path(blocker).is_file()
