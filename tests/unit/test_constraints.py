"""Constraints added for language version 2: which values each accepts, and its description."""
from __future__ import annotations

import numpy as np
import pytest

from ppl import constraints as c

_L = np.array([[1.0, 0.0], [0.6, 0.8]])           # rows of unit length: a valid factor
_COV = np.array([[2.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize("constraint, value, ok", [
    (c.ordered, [-1.0, 0.0, 2.5], True),
    (c.ordered, [-1.0, -1.0, 2.5], False),          # ties are not strictly increasing
    (c.ordered, [0.0, 2.0, 1.0], False),
    (c.positive_ordered, [0.5, 1.0, 2.0], True),
    (c.positive_ordered, [-0.5, 1.0, 2.0], False),
    (c.corr_cholesky, _L, True),
    (c.corr_cholesky, _L.T, False),                 # upper triangular
    (c.corr_cholesky, 2 * _L, False),               # rows not of unit length
    (c.corr_cholesky, np.array([[1.0, 0.0], [0.6, -0.8]]), False),   # negative diagonal
    (c.positive_definite, _COV, True),
    (c.positive_definite, np.array([[1.0, 2.0], [2.0, 1.0]]), False),  # eigenvalue -1
    (c.positive_definite, np.array([[2.0, 0.5], [0.0, 1.0]]), False),  # not symmetric
    (c.lower_cholesky, np.linalg.cholesky(_COV), True),
    (c.lower_cholesky, np.linalg.cholesky(_COV).T, False),
    (c.integer, [-3.0, 0.0, 7.0], True),
    (c.integer, [0.5], False),
    (c.CountVector(5), [2, 0, 3], True),
    (c.CountVector(5), [2, 1, 3], False),
    (c.CountVector(5), [6, -1, 0], False),
    (c.CountVector(5), [2, 0, 2], False),          # sums to 4, not 5
    # the ends: open for a latent's support, closed (inclusive) for a data check
    (c.LessThan(0.0, inclusive=True), [-1.0, 0.0], True),
    (c.LessThan(0.0), [0.0], False),
    (c.GreaterThan(0.0, inclusive=True), [0.0, 2.0], True),
    (c.positive, [0.0], False),
    (c.unit_interval, [0.0, 1.0], True),            # p = 0 or 1 is a valid probability
    (c.Interval(0.0, 1.0), [1.0], False),
    (c.positive_ordered, [0.0, 1.0, 2.0], False),   # 0 is not positive
    (c.positive_definite, np.array([[2.0, 0.5], [0.5 + 1e-6, 1.0]]), False),  # 1e-6 apart
    (c.lower_cholesky, np.array([[1.0, 0.0], [0.5, 0.0]]), False),           # a zero diagonal
    (c.IntegerInterval(0, 3), [0.0, 3.0], True),
    (c.IntegerInterval(0, 3), [2.5], False),
    (c.IntegerInterval(0, 3), [4.0], False),
    # Categorical's p takes Stan's tolerance; simplex data rounded to a few digits load
    (c.probabilities, [0.5, 0.5 + 1e-6], False),
    (c.simplex, [0.5, 0.5 + 1e-6], True),
    (c.simplex, [0.0, 1.0], True),                  # a zero entry is on the simplex
    (c.Simplex(tolerance=0.25), [0.25, 0.5], True),  # |sum - 1| = tolerance exactly (Stan's <=)
    (c.Simplex(tolerance=0.25), [0.25, 0.25], False),
    (c.ordered, [0.0, np.inf], False),              # increasing, but not finite
    (c.corr_cholesky, np.array([[1.0, 0.0], [1.0, 0.0]]), False),   # unit rows, zero diagonal
    (c.boolean, [0.0, 1.0], True),
    (c.boolean, [0.5], False),
    (c.real, [-1e300, 0.0, 1e300], True),
    (c.real, [np.inf], False),
], ids=lambda v: v.describe() if isinstance(v, c.Constraint) else None)
def test_check_accepts_exactly_the_support(constraint, value, ok):
    value = np.asarray(value)
    mask = constraint.check(value)
    assert mask.shape == value.shape
    assert np.all(mask) == ok


def test_event_constraints_check_each_event_of_a_batch():
    batch = np.stack([_L, 2 * _L, _L])              # [3, 2, 2]: the middle one is invalid
    assert c.corr_cholesky.check(batch)[:, 0, 0].tolist() == [True, False, True]
    ordered = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert c.ordered.check(ordered).tolist() == [[True, True], [False, False]]


@pytest.mark.parametrize("constraint, discrete, parameter_only", [
    (c.ordered, False, False), (c.positive_ordered, False, False),
    (c.corr_cholesky, False, False), (c.positive_definite, False, True),
    (c.lower_cholesky, False, True), (c.integer, True, False), (c.CountVector(3), True, False),
])
def test_kind_flags(constraint, discrete, parameter_only):
    assert constraint.discrete == discrete
    assert constraint.parameter_only == parameter_only


def test_descriptions():
    assert c.ordered.describe() == "ordered"
    assert c.positive_ordered.describe() == "positive_ordered"
    assert c.corr_cholesky.describe() == "Cholesky factor of a correlation matrix"
    assert c.CountVector(7).describe() == "counts summing to 7"
    assert c.IntegerInterval(0, 3).describe() == "{0..3}"
    # open ends for a latent's support, closed (inclusive) ones for a data check
    assert c.GreaterThan(0.0).describe() == "(0, inf)"
    assert c.GreaterThan(0.0, inclusive=True).describe() == "[0, inf)"
    assert c.LessThan(2.5).describe() == "(-inf, 2.5)"
    assert c.LessThan(2.5, inclusive=True).describe() == "(-inf, 2.5]"
    assert c.Interval(-1.0, 1.0).describe() == "(-1, 1)"
    assert c.unit_interval.describe() == "[0, 1]"


def test_count_vector_total_has_an_event_axis():
    # Multinomial's n [N] becomes [N, 1]: one total per row of counts [N, K], with N != K
    from ppl.distributions import lookup
    support = lookup("Multinomial").support_of({"n": np.array([3, 5]), "p": None})
    counts = np.array([[1, 2, 0], [2, 2, 2]])
    assert support.check(counts).tolist() == [[True] * 3, [False] * 3]
