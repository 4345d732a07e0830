"""What a non-editable install gets: every package and every file the package reads at run
time is in pyproject's lists (an editable install reads the source tree and hides a missing
one), and each feature of an optional extra, without its package, is one clear error naming
the extra. Runs without the extras installed."""
import builtins
import fnmatch
from pathlib import Path

import pytest

import ppl
from ppl.cli import main
from ppl.frontend.parse import find_grammar

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the lists are the same on 3.10
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]


def _source_folder(package: str, package_dir: dict) -> Path:
    return ROOT / package_dir.get(package, package.replace(".", "/"))


def test_every_subpackage_is_installed():
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "ppl").rglob("__init__.py")}
    assert found - set(_setuptools()["packages"]) == set()


def test_every_file_the_package_reads_is_package_data():
    """Files beside the modules that are not Python (the grammar) are installed only when
    package-data lists them."""
    setup = _setuptools()
    listed = setup.get("package-data", {})
    for package in setup["packages"]:
        folder = _source_folder(package, setup.get("package-dir", {}))
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                assert any(fnmatch.fnmatch(path.name, pattern)
                           for pattern in listed.get(package, [])), (package, path.name)
    # the grammar is read from ppl/grammar/ once installed
    assert find_grammar().parent == _source_folder("ppl.grammar", setup["package-dir"])


def test_the_sdist_holds_every_folder_readme_names():
    """The sdist held only the packages, README and LICENSE: 'ppl fit models/eight_schools.ppl'
    and 'python -m pytest' failed in it, and README's links to docs/ led nowhere (found by the
    leftalone3 audit). MANIFEST.in grafts each folder README names; building the sdist needs
    setuptools 77, so its list is read here (a build of the sdist was checked by hand)."""
    import re
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = {path.split("/")[0] for path in re.findall(r"[\s(`]([a-z_]+/[\w./-]+)", readme)}
    named = {folder for folder in named if (ROOT / folder).is_dir()} - {"ppl", "grammar"}
    grafted = {line.split()[1] for line in (ROOT / "MANIFEST.in").read_text().splitlines()
               if line.startswith("graft ")}
    assert {"models", "docs", "benchmarks"} <= named
    assert named | {"tests"} <= grafted


def _without(monkeypatch, package: str) -> None:
    """Imports of ``package`` (and its submodules) fail as when it is not installed."""
    real_import = builtins.__import__

    def importing(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", importing)


@pytest.mark.parametrize("package, shown", [("arviz", "ArviZ"), ("pandas", "pandas")])
def test_a_missing_extra_is_one_clear_error(package, shown, monkeypatch):
    fit = ppl.compile("sample mu ~ Normal(0, 1)\n").fit(iter=100, draws=20)
    _without(monkeypatch, package)
    call = fit.to_arviz if package == "arviz" else fit.summary().to_pandas
    with pytest.raises(ppl.PplError, match=f"needs {shown}, an optional dependency: "
                       rf"pip install 'ppl\[{package}\]'"):
        call()


def test_plot_without_matplotlib_is_one_clear_error(tmp_path, monkeypatch, capsys):
    _without(monkeypatch, "matplotlib")
    assert main(["plot", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: ppl plot needs matplotlib, an optional dependency: "
                              "pip install 'ppl[plot]'\n")
