"""Golden data errors: each ``tests/cases/bad_data/NAME.ppl`` with its data ``NAME.json``.

The first line of NAME.ppl is ``# expect: LINE``, LINE being the exact first line of
``str(error)``. Path convention: the model and data paths are given relative to the
repository root with forward slashes (``tests/cases/bad_data/NAME.ppl``) and the test runs
from the root, so the expected lines are the same on every machine. The pipeline is the API's:
parse, check without data, load_data, check with the dims, validate_observed.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ppl.data import load_data, validate_observed
from ppl.errors import PplError
from ppl.frontend.check import check
from ppl.frontend.parse import parse

ROOT = Path(__file__).resolve().parents[2]
CASES = "tests/cases/bad_data"
NAMES = sorted(p.stem for p in (ROOT / CASES).glob("*.ppl"))


def first_error_line(name: str) -> str:
    """The first line of the error the data pipeline raises for case ``name`` (run from ROOT)."""
    model_path, data_path = f"{CASES}/{name}.ppl", f"{CASES}/{name}.json"
    program = parse((ROOT / model_path).read_text(encoding="utf-8"), model_path)
    with pytest.raises(PplError) as info:
        values, dims = load_data(check(program), data_path)
        validate_observed(check(program, dims), values, dims)
    return str(info.value).splitlines()[0]


def test_there_are_cases():
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_bad_data_case(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    first = (ROOT / CASES / f"{name}.ppl").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{name}.ppl must start with '# expect: '"
    assert first_error_line(name) == first[len("# expect: "):]
