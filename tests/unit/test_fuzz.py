"""Property: random character mutations and truncations of every good model make parse + check
raise nothing but PplError (a user mistake is never a traceback)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppl.distributions import DISTRIBUTIONS
from ppl.errors import PplError
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.functions import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [p.read_text(encoding="utf-8") for p in
         sorted((ROOT / "tests" / "cases" / "good").glob("*.ppl"))
         + sorted((ROOT / "models").glob("*.ppl"))
         + sorted((ROOT / "models" / "posteriordb").glob("*.ppl"))]
# Characters that matter to the grammar and the checker, plus a few that do not belong at all.
ALPHABET = "abcxyzNKT_019.eE+-*/@()[]{},:;=<>!~#\n \t\"'$é"

_edit = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1),
                  st.sampled_from(ALPHABET))


def _mutate(text: str, edits, cut) -> str:
    for kind, where, char in edits:
        i = int(where * len(text))
        if kind == "insert":
            text = text[:i] + char + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + char + text[i + 1:]
    return text if cut is None else text[:int(cut * len(text))]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), st.lists(_edit, min_size=1, max_size=4),
       st.none() | st.floats(0, 1))
def test_mutated_models_raise_only_ppl_errors(text, edits, cut):
    try:
        check(parse(_mutate(text, edits, cut), "mutant.ppl"))
    except PplError:
        pass


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), st.floats(0, 1))
def test_truncated_models_raise_only_ppl_errors(text, cut):
    try:
        check(parse(text[:int(cut * len(text))], "truncated.ppl"))
    except PplError as error:
        assert str(error).startswith("truncated.ppl:")


# Token swaps keep most mutants parseable, so they reach the checker rather than the parser.
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\*\*|\S")
EXTRA = sorted(DISTRIBUTIONS) + sorted(FUNCTIONS) + ["0", "-1", "1.5", "100", "axis", "logit",
                                                      "[", "]", ":", ",", "@", "-", "*"]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)),
                                        min_size=1, max_size=3))
def test_token_swaps_raise_only_ppl_errors(text, swaps):
    for where, what in swaps:
        tokens = list(TOKEN.finditer(text))
        vocabulary = [t.group() for t in tokens] + EXTRA
        target = tokens[int(where * (len(tokens) - 1))]
        new = vocabulary[int(what * (len(vocabulary) - 1))]
        text = text[:target.start()] + new + text[target.end():]
    try:
        check(parse(text, "swapped.ppl"))
    except PplError:
        pass


# Random programs with data (tests/fuzz/programs.py) reach the compiler and the evaluator:
# int arithmetic on extreme values, sizes of 0 and nesting far beyond real models (issue 9,
# classes 4 and 6). The release run is `python tests/fuzz/run.py --n 100000`.
@settings(derandomize=True, max_examples=120, deadline=None)
@given(st.integers(0, 2 ** 32))
def test_random_programs_with_data_end_in_a_result_or_a_ppl_error(seed):
    import random
    from tests.fuzz.programs import check_int_let, program, run_one
    text, data = program(random.Random(seed))
    run_one(text, data, seed)
    check_int_let(text, data)


# Seeds of the release run (2026-12-05) where the oracle itself wrapped: abs(-2**63) of a bare
# Python int (m - n) and sum(2**62) + 2**63 - 1 went through np.int64, so ppl's correct int
# overflow error was called wrong.
@pytest.mark.parametrize("seed", [7000013, 7000770, 7001089])
def test_the_int_oracle_does_not_wrap_where_ppl_refuses_an_overflow(seed):
    import random
    from tests.fuzz.programs import check_int_let, program
    check_int_let(*program(random.Random(seed)))
