"""The import layering of ppl/: data flows one way (STYLE.md, "Data flow"), so no module imports
one of a later stage, not even inside a function. A new module must be given its layer here."""
import ast
from functools import cache
from pathlib import Path

PPL = Path(__file__).resolve().parents[2] / "ppl"

# Stages in the order the data flows; a module may import its own layer and earlier ones. An
# entry names a module or a package (all its modules); the longest matching entry wins.
LAYERS = [
    ("base", ["ppl.source", "ppl.errors", "ppl.special", "ppl.linalg", "ppl.fused",
              "ppl.blocks"]),
    # the language's vocabulary; frontend.shapes holds the shape rules functions declare
    ("vocabulary", ["ppl.constraints", "ppl.bijectors", "ppl.distributions", "ppl.functions",
                    "ppl.frontend.shapes"]),
    ("ir", ["ppl.ir"]),
    ("frontend", ["ppl.frontend"]),
    ("data", ["ppl.data", "ppl.datafiles", "ppl.evaluate", "ppl.elementwise", "ppl.enumeration",
              "ppl.kernels", "ppl.memory"]),
    ("compiler", ["ppl.compiler"]),
    ("guides", ["ppl.guides"]),
    ("options", ["ppl.options"]),
    ("infer", ["ppl.infer"]),
    ("fit", ["ppl.posterior", "ppl.summary"]),
    ("api", ["ppl.api", "ppl.predict"]),
    ("outputs", ["ppl.savedfit", "ppl.output", "ppl.plot", "ppl.cli", "ppl.startup",
                 "ppl.__main__", "ppl"]),
]

# Imports against the flow that are known and left, each with its reason. A test fails when
# one disappears, so that its row goes too.
KNOWN_BACK_EDGES = {
    # Fit.predictive(data=...) checks and compiles the model again on the new data
    ("ppl.posterior", "ppl.predict"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PPL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PPL.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The ppl module that importing ``name`` (a module or a name in one) runs."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name if name in MODULES else None


def _import_statements(text: str):
    """The import statements of a module, top level or indented, as ast nodes. Only lines that
    start with `import` or `from` are parsed (a whole module's ast is 5x slower); one that is
    not Python (prose in a docstring) is skipped."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("import ", "from ")):
            continue
        statement, j = line.strip(), i
        while statement.count("(") > statement.count(")") or statement.endswith("\\"):
            j += 1
            statement = statement.rstrip("\\") + " " + lines[j].strip()
        try:
            yield from ast.parse(statement).body
        except SyntaxError:
            continue


@cache
def imports(module: str) -> frozenset[str]:
    """The ppl modules ``module`` imports, at its top level or inside functions."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _import_statements(path.read_text(encoding="utf-8")):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from ppl import errors` imports the module ppl.errors, `from .x import f` ppl.x
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        else:
            continue
        found |= {m for m in map(_resolve, names) if m is not None and m != module}
    return frozenset(found)


def layer(module: str) -> int:
    matches = [(len(entry), i) for i, (_, entries) in enumerate(LAYERS) for entry in entries
               if module == entry or module.startswith(entry + ".")]
    assert matches, f"{module} has no layer in LAYERS: add it where its stage is"
    return max(matches)[1]


@cache
def back_edges() -> frozenset[tuple[str, str]]:
    return frozenset((a, b) for a in MODULES for b in imports(a) if layer(b) > layer(a))


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_no_module_imports_a_later_stage():
    new = back_edges() - KNOWN_BACK_EDGES
    assert not new, "imports against the data flow (LAYERS): " + ", ".join(
        f"{a} ({LAYERS[layer(a)][0]}) -> {b} ({LAYERS[layer(b)][0]})" for a, b in sorted(new))


def test_known_back_edges_are_still_there():
    assert KNOWN_BACK_EDGES <= back_edges(), "a known back edge is gone: remove its row"


def test_imports_are_found_inside_functions_and_relative():
    assert "ppl.compiler.steps" in imports("ppl.guides.user")       # inside a function
    assert "ppl.errors" in imports("ppl.frontend.parse")            # from .. import errors
    assert "ppl" not in imports("ppl.frontend.parse")
