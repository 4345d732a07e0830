"""ppl/distributions/incomplete.py: the shape derivatives of the incomplete gamma functions and
of Student t's CDF (central differences) against an independent reference. Their values and
x-derivatives are tested through the CDFs in test_distributions.py."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from autograd import grad

from ppl.distributions import incomplete


def _richardson(f, a):
    """d f / d a from central differences at steps h and h / 2, combined to cancel their h^2
    error. h = 1e-2 min(a, sqrt(a)): these functions vary in a on the scale of a below 1 and
    sqrt(a) above (P(a, x) is near Phi((x - a) / sqrt(a)) for a large a), so truncation is
    ~1e-8 relative, rounding ~1e-16 / h. At the points below it agreed with mpmath's
    derivatives at 40 digits to 4e-10 (checked when this test was written)."""
    h = 1e-2 * min(a, np.sqrt(a))
    wide, narrow = [(f(a + d) - f(a - d)) / (2 * d) for d in (h, h / 2)]
    return (4 * narrow - wide) / 3


GAMMA_POINTS = [(a, sp.gammaincinv(a, q)) for a in (0.3, 3.0, 100.0) for q in (0.5, 0.99)]
T_POINTS = [(nu, t) for nu in (0.5, 3.0, 100.0) for t in (-3.0, 0.5, 2.0)]


@pytest.mark.parametrize("name, points", [("gammainc", GAMMA_POINTS), ("gammaincc", GAMMA_POINTS),
                                          ("stdtr", T_POINTS)])
def test_shape_derivative_matches_richardsons_extrapolation(name, points):
    # 1e-7 relative: the code's step, 1e-5 relative (absolute below 1), is within 7e-9 of
    # mpmath at these points; an absolute step of 1e-5 above 1 too was 5e-7 off at nu = 100,
    # t = 0.5 (rounding: 1e-16 over a step of 1e-5, against a derivative of 5e-6)
    primitive, reference = getattr(incomplete, name), getattr(sp, name)
    for a, x in points:
        got = grad(lambda s: primitive(s, x))(a)
        np.testing.assert_allclose(got, _richardson(lambda s: reference(s, x), a), rtol=1e-7,
                                   err_msg=f"{name} at {a}, {x}")


# The far tails: where scipy's Q or P underflows (below 2.2e-308), log Q and log P come from the
# continued fraction and the series in logs. Exact references: for an integer n,
# Q(n, x) = e^-x sum_{k<n} x^k / k! and P(1, x) = 1 - e^-x.

def _log_q_integer(n, x):
    """log Q(n, x) for an integer n in closed form, the sum's log by logsumexp (no underflow)."""
    k = np.arange(n)
    return -x + sp.logsumexp(k * np.log(x) - sp.gammaln(k + 1))


def _dlog_q_integer_dx(n, x):
    # d/dx log Q(n, x) = -(x^(n-1) e^-x / (n-1)!) / Q(n, x): the e^-x cancels
    k = np.arange(n)
    return -np.exp((n - 1) * np.log(x) - sp.gammaln(n)
                   - sp.logsumexp(k * np.log(x) - sp.gammaln(k + 1)))


FAR_Q_POINTS = [(n, x) for n in (1, 2, 5, 30) for x in (800.0, 5000.0, 1e5)]


@pytest.mark.parametrize("n, x", FAR_Q_POINTS)
def test_log_q_far_in_the_upper_tail_matches_the_integer_closed_form(n, x):
    # the continued fraction converges to a few ulps; log Q is ~ -x, so 1e-14 relative is
    # within ~10 ulps of the result
    np.testing.assert_allclose(incomplete.log_gammaincc(float(n), x), _log_q_integer(n, x),
                               rtol=1e-14)
    np.testing.assert_allclose(grad(incomplete.log_gammaincc, 1)(float(n), x),
                               _dlog_q_integer_dx(n, x), rtol=1e-12)


@pytest.mark.parametrize("x", [1e-320, 5e-324])
def test_log_p_one_for_a_tiny_x_is_log_of_minus_expm1(x):
    # P(1, x) = x is subnormal here, so scipy's value is not accurate enough to keep: the
    # series takes over, and must give log x
    a = 1.0
    np.testing.assert_allclose(incomplete.log_gammainc(a, x), np.log(-np.expm1(-x)), rtol=1e-14)


@pytest.mark.parametrize("a, x", [(50.0, 1e-8), (300.0, 1.0), (200.0, 0.5)])
def test_log_p_far_in_the_lower_tail_is_finite_and_its_gradients_match(a, x):
    value = incomplete.log_gammainc(a, x)
    assert np.isfinite(value)
    # the leading term: log P = a log x - x - lgamma(a + 1) + log(1 + x / (a + 1) + ...)
    lead = a * np.log(x) - x - sp.gammaln(a + 1)
    assert 0.0 <= value - lead < 2 * x / (a + 1)
    # d/dx log P = density / P
    density = np.exp((a - 1) * np.log(x) - x - sp.gammaln(a) - value)
    np.testing.assert_allclose(grad(incomplete.log_gammainc, 1)(a, x), density, rtol=1e-12)
    np.testing.assert_allclose(grad(incomplete.log_gammainc, 0)(a, x),
                               _richardson(lambda s: incomplete.log_gammainc(s, x), a), rtol=1e-7)


# Q between ~1e-246 and 1e-302 (x chosen per shape from scipy's log10 Q, tabulated once): scipy's
# value is normal there, so both paths can be compared. 1e-10 relative: scipy's gammaincc is
# accurate to ~1e-13 relative in this region (Temme / continued fraction inside), the log
# halves nothing, and 1e-10 leaves room for either side's last digits.
SCIPY_Q_POINTS = [(a, x) for a, xs in ((0.5, (580.0, 640.0, 690.0)), (3.0, (580.0, 640.0, 690.0)),
                                       (40.0, (730.0, 790.0, 840.0))) for x in xs]


@pytest.mark.parametrize("a, x", SCIPY_Q_POINTS)
def test_the_continued_fraction_matches_scipy_where_q_is_still_representable(a, x):
    q = sp.gammaincc(a, x)
    assert 1e-305 < q < 1e-240
    np.testing.assert_allclose(incomplete._log_q_continued_fraction(a, x), np.log(q), rtol=1e-10)


@pytest.mark.parametrize("a, x", [(30.0, 1e-8), (300.0, 20.0), (10.0, 1e-28)])
def test_the_series_matches_scipy_where_p_is_still_representable(a, x):
    p = sp.gammainc(a, x)
    assert 1e-305 < p < 1e-200
    np.testing.assert_allclose(incomplete._log_p_series(a, x), np.log(p), rtol=1e-10)


def test_the_switch_is_seamless_and_both_paths_mix_in_one_broadcast_call():
    # x from 600 (scipy's Q normal) to 800 (0): the old values, where finite, are kept bit for
    # bit; every value and gradient is finite in one call mixing both paths
    a = np.array([[2.0], [7.5]])
    x = np.linspace(600.0, 800.0, 41)
    with np.errstate(divide="ignore"):        # the old log, -inf where scipy's Q is 0
        old = np.log(sp.gammaincc(a, x))
    new = incomplete.log_gammaincc(a, x)
    kept = sp.gammaincc(a, x) >= np.finfo(float).tiny
    assert kept.any() and not kept.all()
    np.testing.assert_array_equal(new[kept], old[kept])
    assert np.all(np.isfinite(new))
    steps = np.diff(new, axis=1)      # no jump at the switch: steps of -5 (x) + a small log term
    assert np.all(np.abs(steps + 5.0) < 0.1)
    for i in (0, 1):
        g = grad(lambda *args: np.sum(incomplete.log_gammaincc(*args)), i)(a, x)
        assert g.shape == np.shape((a, x)[i]) and np.all(np.isfinite(g))
    for i in (0, 1):                  # the same for log P, small x against a large a
        p_a, p_x = np.array([[60.0], [300.0]]), np.logspace(-12, -1, 12)
        g = grad(lambda *args: np.sum(incomplete.log_gammainc(*args)), i)(p_a, p_x)
        assert np.all(np.isfinite(incomplete.log_gammainc(p_a, p_x))) and np.all(np.isfinite(g))


def test_the_log_space_shape_derivative_matches_richardsons_extrapolation():
    for a, x in [(2.0, 800.0), (40.0, 5000.0), (0.5, 1e4)]:
        got = grad(incomplete.log_gammaincc, 0)(a, x)
        assert np.isfinite(got)
        np.testing.assert_allclose(
            got, _richardson(lambda s: incomplete.log_gammaincc(s, x), a), rtol=1e-7)
