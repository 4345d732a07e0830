"""A per-user cache of the built LALR parser, so that `ppl check` does not rebuild its tables.

Building the parser (grammar analysis, LALR tables, and lark's terminal-collision check when
`interegular` is installed) takes about 0.2 s; loading the cached tables about 4 ms. The
cache is lark's own serialized form (`Lark.memo_serialize`) written as JSON: plain data, never
pickle (lark's `cache=True` pickles) nor eval. JSON has no int keys and no tuples, so `_restore`
puts back the few places lark's form has them; `json.loads` reads the tables about 50x faster
than `ast.literal_eval` read the Python literal they were stored as before.
Parsing itself stays in `parse.py`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

# Options that hold Python objects rather than data: passed again when loading.
_OBJECT_OPTIONS = ("postlex",)


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/ppl`` (default ``~/.cache/ppl``); None when there is no home."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "ppl"


def load_or_build(grammar: str, settings: Mapping[str, Any],
                  build: Callable[..., Lark] = Lark, **objects: Any) -> Lark:
    """The parser for `grammar`: from the cache when it holds one, else built and cached.

    Parameters
    ----------
    grammar : the grammar text; with lark's version and the settings it keys the cache, so
        an edited grammar, a new lark or other settings never load stale tables.
    settings : the data-valued keyword arguments of `Lark` (``start``, ``parser``, ``lexer``,
        ``propagate_positions``, ...): the parser is built with exactly these, and they key
        the cache.
    build : called as ``build(grammar, **settings, **objects)`` when the cache has none;
        `Lark` itself unless a test counts the builds.
    **objects : the object-valued options (``postlex``), given to `build` and again on load.

    Returns
    -------
    A `Lark` instance equivalent to ``build(grammar, **settings, **objects)``.
    """
    # sort_keys: the same settings in another order are the same parser
    key = hashlib.sha256(f"{lark.__version__}\n{json.dumps(settings, sort_keys=True)}\n"
                         f"{sorted(objects)}\n{grammar}".encode()).hexdigest()
    folder = cache_dir()
    if folder is None:
        return build(grammar, **settings, **objects)
    path = folder / f"parser-{key[:32]}.json"
    try:
        data, memo = _restore(json.loads(path.read_text(encoding="utf-8")))
        return Lark._load_from_dict(data, memo, **objects)
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            lark.exceptions.LarkError):
        pass  # no cache yet, or one we cannot read: build, then (re)write it
    parser = build(grammar, **settings, **objects)
    _store(parser, path)
    return parser


def _store(parser: Lark, path: Path) -> None:
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _OBJECT_OPTIONS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temporary file + rename: concurrent runs never read a half-written cache.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".parser-", suffix=".tmp")
    except OSError:
        return  # a read-only or missing home: the parser works, only uncached
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"data": data, "memo": memo}, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _restore(stored: dict) -> tuple[dict, dict]:
    """lark's serialized ``(data, memo)`` from its JSON form: int keys and tuples put back.

    JSON writes the int keys of the memo, the parse table's token names and its states as
    strings, and tuples as lists; everything else in lark's form is JSON's own kind of value.
    Raises KeyError, TypeError or ValueError on a file that is not such a form.
    """
    data, memo = stored["data"], stored["memo"]
    table = data["parser"]["parser"]
    table["tokens"] = {int(k): v for k, v in table["tokens"].items()}
    table["states"] = {int(state): {int(token): tuple(action) for token, action in actions.items()}
                       for state, actions in table["states"].items()}
    memo = {int(k): v for k, v in memo.items()}
    for item in memo.values():
        options = item.get("options")
        if options is not None:
            options["empty_indices"] = tuple(options["empty_indices"])
    return data, memo
