"""benchmarks/*.py still fit the code they measure: every name a script takes from ppl or from
another benchmark script exists, and each call of another script's function binds.

The benchmarks do not run in the suite (but end_to_end.py on one case,
test_end_to_end_benchmark.py), so a refactor that renames a function a benchmark
imports (or patches, as sv_reference.py patched ``ppl.compiler.build._innovations`` after its
rename) broke the script unseen until someone ran it. The scripts are read as syntax trees, not
imported or run (several import scipy.stats, NumPyro or Dask, and their imports inside
functions, where these names mostly are, would not run on import anyway): every
``from ppl... import NAME``, every ``import ppl.x`` and ``module.attribute`` chain on a ppl
module, and every name taken from a sibling script must resolve; a call of a sibling's function
must bind to its parameters (gp_flow_fixed.py called gp_flow_diagnosis.errors without the
argument it had gained)."""
import ast
import functools
import importlib
import types
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
SIBLINGS = {path.stem for path in SCRIPTS}


@functools.cache
def _top_level_names(stem: str) -> set[str]:
    """The names a benchmark script defines or imports at module level."""
    names = set()
    for node in ast.parse((BENCHMARKS / f"{stem}.py").read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@functools.cache
def _signatures(stem: str) -> dict[str, tuple[int, int | None, set[str]]]:
    """A sibling script's module-level functions: name -> (fewest positional arguments, most
    (None: any), parameter names a keyword may give)."""
    out = {}
    for node in ast.parse((BENCHMARKS / f"{stem}.py").read_text()).body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            positional = [p.arg for p in a.posonlyargs + a.args]
            required = len(positional) - len(a.defaults)
            most = None if a.vararg else len(positional)
            keywords = None if a.kwarg else set(positional[len(a.posonlyargs):]) | {
                p.arg for p in a.kwonlyargs}
            out[node.name] = (required, most, keywords)
    return out


def _bad_call(call: ast.Call, signature) -> bool:
    """Whether a call (no *args or **kwargs in it) cannot bind to ``signature``."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None
                                                                for k in call.keywords):
        return False
    required, most, keywords = signature
    given = len(call.args) + len(call.keywords)
    return (given < required or most is not None and len(call.args) > most
            or keywords is not None and any(k.arg not in keywords for k in call.keywords))


def _member(module: types.ModuleType, name: str):
    """module.name, as an attribute or a submodule; None if neither exists."""
    if hasattr(module, name):
        return getattr(module, name)
    try:
        return importlib.import_module(f"{module.__name__}.{name}")
    except ImportError:
        return None


def _chain(node) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _chain(node.value)
        return head and head + [node.attr]
    return None


def missing_names(path: Path) -> list[str]:
    """The ppl and sibling-script names ``path`` uses that do not exist, as 'line: name'."""
    tree = ast.parse(path.read_text())
    missing, modules = [], {}      # local name -> the ppl module it is bound to
    scripts = {}                   # local name -> the sibling script it is bound to
    functions = {}                 # local name -> a sibling script's function's signature
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in SIBLINGS:
                defined = _top_level_names(node.module)
                missing += [f"{node.lineno}: {node.module}.{a.name}" for a in node.names
                            if a.name not in defined]
                functions.update({a.asname or a.name: _signatures(node.module)[a.name]
                                  for a in node.names if a.name in _signatures(node.module)})
            elif node.module.split(".")[0] == "ppl":
                module = importlib.import_module(node.module)
                for a in node.names:
                    value = _member(module, a.name)
                    if value is None:
                        missing.append(f"{node.lineno}: {node.module}.{a.name}")
                    elif isinstance(value, types.ModuleType):
                        modules[a.asname or a.name] = value
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in SIBLINGS:
                    scripts[a.asname or a.name] = a.name
                elif a.name.split(".")[0] == "ppl":
                    module = importlib.import_module(a.name)   # binds ppl unless aliased
                    modules[a.asname or "ppl"] = module if a.asname else importlib.import_module("ppl")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            chain = _chain(node.func)
            signature = (functions.get(chain[0]) if chain and len(chain) == 1 else
                         _signatures(scripts[chain[0]]).get(chain[1])
                         if chain and len(chain) == 2 and chain[0] in scripts else None)
            if signature and _bad_call(node, signature):
                missing.append(f"{node.lineno}: {'.'.join(chain)}() arguments")
        chain = _chain(node) if isinstance(node, ast.Attribute) else None
        if chain and chain[0] in scripts:
            if chain[1] not in _top_level_names(scripts[chain[0]]):
                missing.append(f"{node.lineno}: {scripts[chain[0]]}.{chain[1]}")
            continue
        if not chain or chain[0] not in modules:
            continue
        value = modules[chain[0]]
        for depth, name in enumerate(chain[1:], start=2):
            if not isinstance(value, types.ModuleType):
                break      # past the module: an object's attributes are not checked
            value = _member(value, name)
            if value is None:
                missing.append(f"{node.lineno}: {'.'.join(chain[:depth])}")
                break
    return sorted(set(missing))


def test_every_benchmark_script_is_found():
    assert len(SCRIPTS) > 30 and "step_benchmark" in SIBLINGS


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_every_name_a_benchmark_takes_from_ppl_or_a_sibling_exists(path):
    assert missing_names(path) == []
