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
    return Lark(grammar, **parse._SETTINGS, postlex=parse._BracketNewlines())


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


@pytest.mark.parametrize("content", [
    '{"data": {"parser": {}}, "memo": []}',  # KeyError
    '{"data": {"parser": {"parser": {"tokens": {}, "states": {}}}}, "memo": []}',  # AttributeError
    '[]',  # TypeError
])
def test_json_that_is_not_lark_form_is_rebuilt(cache, content):
    parse._parser()
    (path,) = cache.glob("parser-*.json")
    path.write_text(content)
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


def _counted(calls):
    def build(*args, **kwargs):
        calls.append(1)
        return Lark(*args, **kwargs)
    return build


def test_a_cached_parser_is_loaded_not_rebuilt(cache):
    calls = []
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls),
                             postlex=parse._BracketNewlines())
    loaded = lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls),
                                      postlex=parse._BracketNewlines())
    assert len(calls) == 1 and loaded.parse(TEXT) == _fresh_tree()


@pytest.mark.parametrize("change", ["grammar", "lark version", "object options"])
def test_a_new_grammar_lark_or_objects_get_their_own_cache_entry(cache, monkeypatch, change):
    calls = []
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    objects = {"postlex": parse._BracketNewlines()}
    lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls), **objects)
    if change == "grammar":
        grammar += "\n// edited\n"
    elif change == "lark version":
        monkeypatch.setattr(lalr_cache.lark, "__version__", "0.0.0-older")
    else:
        objects = {}
    lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls), **objects)
    assert len(calls) == 2 and len(list(cache.glob("parser-*.json"))) == 2


@pytest.mark.parametrize("change", [{"propagate_positions": False}, {"lexer": "contextual"},
                                    {"maybe_placeholders": False}])
def test_other_parser_settings_get_their_own_cache_entry(cache, change):
    # The tables and options were cached under the grammar alone: a parser asked for with
    # other settings loaded the first settings' parser (session 43).
    calls = []
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls),
                             postlex=parse._BracketNewlines())
    other = lalr_cache.load_or_build(grammar, {**parse._SETTINGS, **change}, _counted(calls),
                                     postlex=parse._BracketNewlines())
    assert len(calls) == 2 and len(list(cache.glob("parser-*.json"))) == 2
    assert {name: getattr(other.options, name) for name in change} == change


def test_the_same_settings_in_another_order_load_the_cached_parser(cache):
    calls = []
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls),
                             postlex=parse._BracketNewlines())
    reordered = dict(reversed(list(parse._SETTINGS.items())))
    lalr_cache.load_or_build(grammar, reordered, _counted(calls),
                             postlex=parse._BracketNewlines())
    assert len(calls) == 1 and len(list(cache.glob("parser-*.json"))) == 1


def test_the_cache_folder_is_xdg_cache_home_else_dot_cache_in_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lalr_cache.cache_dir() == tmp_path / "xdg" / "ppl"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # set but empty counts as unset (XDG spec)
    assert lalr_cache.cache_dir() == tmp_path / "home" / ".cache" / "ppl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert lalr_cache.cache_dir() == tmp_path / "home" / ".cache" / "ppl"


def test_without_a_home_the_parser_is_built_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative cache folder would land here
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(lalr_cache.os.path, "expanduser", lambda path: path)  # no home found
    assert lalr_cache.cache_dir() is None
    calls = []
    grammar = parse.find_grammar().read_text(encoding="utf-8")
    parser = lalr_cache.load_or_build(grammar, parse._SETTINGS, _counted(calls),
                                      postlex=parse._BracketNewlines())
    assert len(calls) == 1 and parser.parse(TEXT) == _fresh_tree()
    assert list(tmp_path.iterdir()) == []


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
