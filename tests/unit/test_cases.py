"""Golden cases: each tests/cases/bad/*.ppl fails with the message on its first line; every good
case and example model checks clean.

A bad case's first line is ``# expect: LINE:COL: MESSAGE``, MESSAGE being exactly the text after
``error: `` on the first line of the error; LINE:COL count in that same file.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ppl import ir
from ppl.errors import PplError
from ppl.frontend.check import check
from ppl.frontend import syntax
from ppl.frontend.parse import parse

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
BAD = sorted((CASES / "bad").glob("*.ppl"))
GOOD = sorted((CASES / "good").glob("*.ppl")) + sorted((ROOT / "models").glob("*.ppl")) \
    + sorted((ROOT / "models" / "posteriordb").glob("*.ppl"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)$")


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", BAD, ids=_id)
def test_bad_case_reports_its_error(path):
    text = path.read_text(encoding="utf-8")
    expect = EXPECT.match(text.splitlines()[0])
    assert expect, f"{path}: the first line must be '# expect: LINE:COL: MESSAGE'"
    line, col, message = expect.groups()
    # Only PplError is caught: any other exception escapes and fails the test.
    with pytest.raises(PplError) as info:
        check(parse(text, str(path)))
    assert str(info.value).splitlines()[0] == f"{path}:{line}:{col}: error: {message}"


@pytest.mark.parametrize("path", GOOD, ids=_id)
def test_good_model_checks_clean(path):
    model = check(parse(path.read_text(encoding="utf-8"), str(path)))
    assert len(model.statements) == len(parse(path.read_text(encoding="utf-8")).statements)


def test_at_least_32_checker_bad_cases():
    # One file per checker error class (tests/cases/bad/*.ppl without the parser's syntax_*).
    assert len([p for p in BAD if not p.name.startswith("syntax_")]) >= 32


WITH_DATA = [p for p in GOOD if p.with_suffix(".json").is_file()]


def _shapes(model):
    for stmt in model.statements:
        yield getattr(stmt, "shape", None) or ()
        for expr in ir.walk(getattr(stmt, "value", None)):
            yield expr.shape


@pytest.mark.parametrize("path", WITH_DATA, ids=_id)
def test_example_model_shapes_are_concrete_with_its_dims(path):
    program = parse(path.read_text(encoding="utf-8"), str(path))
    data = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    dims = {s.name: int(data[s.name]) for s in program.statements
            if isinstance(s, syntax.Data) and s.type.elem == "int" and not s.type.dims}
    for shape in _shapes(check(program, dims)):
        assert all(isinstance(d, int) for d in shape), shape
