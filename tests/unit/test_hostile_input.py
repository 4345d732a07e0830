"""Hostile models and options (issue 9, item 6): each is one located PplError, never an
internal error. Data files are in test_data.py, outputs in test_output.py."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ppl
from ppl.errors import PplError
from ppl.frontend.depth import MAX_DEPTH
from ppl.frontend.printer import to_source
from ppl.frontend.parse import parse

ROOT = Path(__file__).resolve().parents[2]

NESTINGS = {
    "sum": lambda n: " + ".join(["mu"] * n),
    "exp": lambda n: "sigmoid(" * n + "mu" + ")" * n,
    "neg": lambda n: "-" * n + "mu",
    "power": lambda n: " ** ".join(["mu"] * n),
    "paren": lambda n: "(" * n + "mu" + ")" * n,
}


def _nested(form: str, n: int) -> str:
    return f"sample mu ~ Normal(0, 1)\nlet z = {NESTINGS[form](n)}\n"


def _deepest_accepted(form: str) -> int:
    """The largest n whose model passes the nesting check (bisection)."""
    lo, hi = 1, 4 * MAX_DEPTH
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            parse(_nested(form, mid))
            lo = mid
        except PplError:
            hi = mid - 1
    return lo


@pytest.mark.parametrize("form", sorted(NESTINGS))
def test_nesting_just_below_the_limit_runs_every_stage(form):
    n = _deepest_accepted(form)
    assert n < 4 * MAX_DEPTH
    text = _nested(form, n)
    to_source(parse(text))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ppl.compile(text).fit(iter=30, seed=0)
    fit.summary()


@pytest.mark.parametrize("form", sorted(NESTINGS))
def test_nesting_beyond_the_limit_is_a_located_error(form):
    n = _deepest_accepted(form) + 1
    with pytest.raises(PplError) as info:
        ppl.compile(_nested(form, n))
    assert info.value.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    assert info.value.span.line == 2


def test_very_deep_nesting_is_a_located_error_too():
    with pytest.raises(PplError, match="nested too deeply"):
        ppl.compile(_nested("neg", 100_000))
