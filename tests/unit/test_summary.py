"""ppl/summary.py against exact references: the tests that killed the mutants of its mutation
pass (docs/history/trust-log.md, "Mutation pass over summary.py") which the summary tests in
test_posterior_trust.py and test_hostile_input.py let survive."""
import warnings

import numpy as np
import pytest

from ppl.summary import QUANTILES, Summary, _interp_rows, _points, _sort_rows, weighted_stats


def test_one_draw_has_sd_zero_and_itself_as_every_quantile():
    # n - 1 = 0: the plain sd of a single draw is 0 by convention (np.std(ddof=1) is NaN with
    # a warning); a single infinite draw is inf at every quantile (the unit re-do's upper
    # neighbour is the draw itself, not one past the end). Exact: no arithmetic is involved
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # b's row is not finite: warned, by name
        rows = Summary.from_draws({"a": np.array([3.0]), "b": np.array([np.inf])}).rows
    assert rows["a"] == (3.0, 0.0, 3.0, 3.0, 3.0)
    assert rows["b"] == (np.inf, 0.0, np.inf, np.inf, np.inf)


def test_a_single_draw_of_positive_weight_has_sd_zero():
    # weights (0, 1, 0): the one draw of positive weight has 1 - sum w^2 = 0, the reliability
    # weights' correction is undefined and the sd is 0, not 0 / 0; the draws of weight 0 take
    # no part (their values would change nothing here, being filtered). Exact
    flat = np.array([[5.0, -1.0], [2.0, 7.0], [-3.0, 4.0]])
    mean, sd, quantiles = weighted_stats(flat, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_array_equal(mean, [2.0, 7.0])
    np.testing.assert_array_equal(sd, [0.0, 0.0])
    np.testing.assert_array_equal(quantiles, np.tile([2.0, 7.0], (3, 1)))


@pytest.mark.parametrize("scale", [1e200, 1e-200])
@pytest.mark.parametrize("weighted", [False, True])
def test_sds_of_huge_and_tiny_negative_draws_are_positive(rng, scale, weighted):
    # every draw negative and out of the squares' range: the re-do in units of the largest
    # |draw| must divide by a positive unit (the largest draw is negative: a negative unit
    # gave a negative sd). Reference: the closed-form (weighted) mean and sd of the unscaled
    # draws times the scale; rtol 1e-10 as test_sds_of_huge_and_tiny_draws_are_their_scaled_sds
    # (the unit's division and the scale's product round each draw, 500 draws sum the error)
    row = assert_scaled_moments(-rng.exponential(size=500) - 0.1, rng, scale, weighted)
    assert row[1] > 0


def test_sort_rows_is_the_stable_argsort_with_a_single_tie(rng):
    # one tied pair in a row of distinct values: the quicksort may put the pair either way
    # round, so the row must be sorted stably again; the check for ties must compare
    # neighbours (a mutant comparing values two apart saw none). Reference: np.argsort's
    # stable sort, exactly. 60 rows of 200: the quicksort reverses some pair among them
    rows = rng.standard_normal((60, 200))
    for k in range(len(rows)):
        i, j = rng.choice(200, 2, replace=False)
        rows[k, j] = rows[k, i]
    ordered, orders = _sort_rows(rows.copy())
    for k in range(len(rows)):
        expected = np.argsort(rows[k], kind="stable")
        np.testing.assert_array_equal(orders[k], expected)
        np.testing.assert_array_equal(ordered[k], rows[k, expected])


def test_a_params_rows_keep_the_summarys_note():
    # a corrected fit with a param: its rows become point values, the note (which sds are
    # shown, k̂) stays
    summary = Summary({"w": (1.0, 0.5, 0.2, 1.0, 1.8), "z": (0.0, 1.0, -1.6, 0.0, 1.6)},
                      note="importance-corrected (PSIS, k̂ 0.2)")
    points = _points(summary, {"w": 2.0})
    assert points.note == summary.note
    assert points.rows["w"][0] == 2.0 and np.isnan(points.rows["w"][1:]).all()
    assert points.rows["z"] == summary.rows["z"]
    assert str(points).splitlines()[0] == summary.note


def test_plain_quantiles_redone_in_units_keep_those_already_finite():
    # a column redone in units of a power of two (here for the inf draw's 95%) had all its
    # quantiles recomputed, and in units of 2^997 (the 1e300 draw) 1e-300 is below the
    # smallest subnormal: the 5% and 50% were 0, not 1.2e-300 and 3e-300. The reference is
    # np.quantile's own (R's type 7) arithmetic, exactly: with the inf draw replaced by a
    # finite one the 5% and 50% are the same lerps of the same neighbours
    x = np.array([1e-300, 2e-300, 3e-300, 1e300, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the row is not finite: warned, by name
        row = Summary.from_draws({"w": x}).rows["w"]
    expected = np.quantile(np.where(np.isinf(x), 1e301, x), QUANTILES[:2])
    assert expected[0] > 0 and expected[1] == 3e-300
    assert row[2:] == (*expected, np.inf)


def _units(q, position, draws):
    """The weighted quantile q of one row ``draws`` in units of 2^e, e = the largest finite
    |draw|'s exponent, scaled back: weighted_stats' re-do of an overflowing interpolation."""
    e = np.frexp(np.max(np.abs(draws[np.isfinite(draws)])))[1]
    return np.ldexp(np.interp(q, position, np.ldexp(draws, -e)), e)


@pytest.mark.parametrize("draws, weights", [
    # 5% between -1.7e308 and 1e-300 overflows the slope (inf, not -5.7e307); the median
    # between 1e-300 and 2e-300 was recomputed in units of 2^1024, where both are 0
    ([-1.7e308, 1e-300, 2e-300, 1.7e308], [0.02, 0.1, 0.78, 0.1]),
    # 5% between -1.7e308 and 1.7e308 overflows too, but the row has an inf draw: it was not
    # redone (inf, not 5.7e307)
    ([-1.7e308, 1.7e308, np.inf], [0.02, 0.1, 0.88]),
])
def test_weighted_quantiles_redo_only_those_that_overflow(draws, weights):
    # np.interp's value where it is finite, the re-do in units where it is not (beside an
    # inf draw that is np.interp's inf again), both exactly: the same arithmetic on the same
    # draws, scaled by a power of two
    draws, weights = np.array(draws), np.array(weights)
    position = np.cumsum(weights) - 0.5 * weights
    with np.errstate(all="ignore"):
        direct = np.array([np.interp(q, position, draws) for q in QUANTILES])
        again = np.array([_units(q, position, draws) for q in QUANTILES])
        found = weighted_stats(draws[:, None], weights)[2][:, 0]
    assert direct[0] == np.inf and np.isfinite(again[0])
    np.testing.assert_array_equal(found, np.where(np.isfinite(direct), direct, again))
    np.testing.assert_array_equal(found[1:], direct[1:])


def test_interp_rows_is_np_interp_row_by_row(rng):
    # the vectorized interpolation at any x, not only the three quantiles: below the first
    # position, above the last, exactly on one (and on a repeated one: a run of equal
    # positions), between; draws with infinities and NaNs. Reference: np.interp on each row,
    # bit for bit (the same arithmetic and cases)
    xp = np.sort(rng.choice(np.linspace(0.0, 1.0, 9), (40, 7)), axis=1)
    fp = np.sort(rng.standard_normal((40, 7)) * 10.0 ** rng.integers(-3, 4, (40, 1)), axis=1)
    fp[:5, -2:], fp[5:10, :2], fp[10:15, 3] = np.inf, -np.inf, np.nan
    fp[15:20, :3], fp[15:20, 3:] = -np.inf, np.inf
    with np.errstate(all="ignore"):
        for x in [-0.1, 0.0, 0.05, 0.125, 0.3, 0.5, 0.875, 0.95, 1.0, 1.2]:
            expected = [np.interp(x, xp[k], fp[k]) for k in range(len(xp))]
            np.testing.assert_array_equal(_interp_rows(x, xp, fp), expected)


def assert_scaled_moments(x, rng, scale, weighted):
    """The summary's row of the draws ``x * scale`` (with exponential weights from ``rng``
    when ``weighted``), no warning raised, its mean and sd the closed-form (reliability-
    weighted) ones of ``x`` times ``scale`` to rtol 1e-10 (the unit's division and the
    scale's product round each draw; 500 draws sum the error). Returns the row."""
    weights = rng.exponential(size=x.size) if weighted else np.ones(x.size)
    weights /= weights.sum()
    mean = weights @ x
    sd = np.sqrt(weights @ (x - mean) ** 2 / (1 - weights @ weights))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = Summary.from_draws({"w": x * scale}, weights if weighted else None).rows["w"]
    np.testing.assert_allclose(row[:2], [mean * scale, sd * scale], rtol=1e-10)
    return row


def test_a_column_of_one_value_has_that_mean_and_sd_zero_weighted_or_not():
    # a Categorical value of probability 1 is 1.0 at every draw: the weighted sums' rounding
    # had given it the mean 1 - 2e-16 and the sd 6.7e-16; a nan or inf column is left as it was
    rng = np.random.default_rng(0)
    flat = np.column_stack([np.ones(4003), np.full(4003, 0.1), rng.standard_normal(4003)])
    weights = rng.uniform(0.5, 1.5, 4003)
    weights /= weights.sum()
    mean, sd, _ = weighted_stats(flat, weights)
    assert mean[:2].tolist() == [1.0, 0.1] and sd[:2].tolist() == [0.0, 0.0]
    assert sd[2] > 0.9
    summary = Summary.from_draws({"p": flat[:, :2]})
    assert summary.to_dict()["p[0]"]["sd"] == 0.0 and summary.to_dict()["p[1]"]["mean"] == 0.1
