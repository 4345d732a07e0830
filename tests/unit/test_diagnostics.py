"""The end-of-fit stationarity check (ppl/infer/diagnostics.py, issue 9 item 3)."""
from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest

import ppl
from ppl.infer import diagnostics, newton

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
# the model at extreme scales and its exact posterior by quadrature
from extreme_scales import SMALL, exact_small  # noqa: E402

M, S = np.array([1.0, -2.0, 300.0]), np.array([0.5, 3.0, 1e-4])


def _gaussian(zeta):
    return -0.5 * anp.sum(((zeta - M) / S) ** 2, axis=1)


def test_newton_sds_is_the_error_of_the_mean_in_sds_on_a_gaussian(rng):
    # on a Gaussian log density with the guide's sd equal to the posterior's, sigma * E[g] is
    # exactly -(mu - m) / s per coordinate, whatever the draws
    offset = np.array([2.0, -0.5, 10.0])
    steps, se = diagnostics.newton_sds(_gaussian, M + offset * S, np.log(S), rng)
    np.testing.assert_allclose(steps, -offset, atol=4 * se.max() + 1e-9)  # z = 4


class _Stub:
    dim = 3

    @staticmethod
    def log_joint(zeta):
        return _gaussian(zeta)

    @staticmethod
    def unconstrained_names():
        return ["a", "b", "c"]


def test_no_warning_at_the_optimum():
    assert diagnostics.check_optimum(_Stub, M, np.log(S), 0.1, -3.0) is None


def test_warning_names_the_worst_element_and_the_narrow_sd():
    warning = diagnostics.check_optimum(_Stub, M + np.array([0, 0, 5e-4]), np.log(S), 0.1, -3.0)
    # the step is -5 plus the mean of 64 standard normals (sd 1/8): within z = 4 of -5
    found = float(re.search(r"mean of 'c' \(unconstrained\) by (\S+) guide sds",
                            warning.message).group(1))
    assert abs(found + 5) < 4 / 8
    assert "the guide sd of 'c' is 0.0001, far below the step size 0.1" in warning.message


def test_polish_reaches_the_mean_field_optimum_of_a_correlated_gaussian():
    # Newton with the exact expected Hessian: the exact mean and mean-field sds in one step
    P = np.array([[4.0, 3.0, 0.5], [3.0, 4.0, 1.0], [0.5, 1.0, 9.0]]) * 1e6
    m = np.array([1e3, -2.0, 0.5])

    def log_joint(zeta):
        d = zeta - m
        return -0.5 * anp.sum((d @ P) * d, axis=1)

    mu, log_sigma, rounds = diagnostics.polish(log_joint, m + 1.0, np.zeros(3))
    np.testing.assert_allclose(mu, m, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.exp(log_sigma), 1 / np.sqrt(np.diag(P)), rtol=1e-9)
    assert rounds == 1


# (chunk 31, between the 16 draws and their 2 M = 32, is large data too; 32 is not: mutation13)
@pytest.mark.parametrize("chunk, hessian", [(None, "expected_hessian"),
                                            (10, "difference_hessian"),
                                            (31, "difference_hessian"),
                                            (32, "expected_hessian")])
def test_polish_on_large_data_takes_the_hessian_from_differences_of_the_gradient(chunk, hessian,
                                                                                 monkeypatch):
    # chunk 10 (the score chunk of a model with 10^5 values a draw) is below the 2 * 16 draws
    # of a column: H by differences, which the fused kernels serve, not traced products; on
    # a quadratic both are exact, so the polish reaches the same optimum in one step
    from ppl.infer import precondition
    P = np.array([[4.0, 3.0, 0.5], [3.0, 4.0, 1.0], [0.5, 1.0, 9.0]])
    m = np.array([1.0, -2.0, 0.5])

    def log_joint(zeta):
        d = zeta - m
        return -0.5 * anp.sum((d @ P) * d, axis=1)

    used = []
    for name in ("difference_hessian", "expected_hessian"):
        monkeypatch.setattr(diagnostics, name, lambda *a, f=getattr(precondition, name),
                            name=name, **k: used.append(name) or f(*a, **k))
    mu, log_sigma, rounds = diagnostics.polish(log_joint, m + 1.0, np.zeros(3), chunk)
    np.testing.assert_allclose(mu, m, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.exp(log_sigma), 1 / np.sqrt(np.diag(P)), rtol=1e-9)
    assert set(used) == {hessian}
    # sds below 1e-8 of |mu| (extreme scales): a step of the differences would be lost to
    # rounding against the mean, so the traced products (at the first round: such sds are
    # collapsed for this H, diagnostics.short_sd, so the polish goes on at the sds it sets)
    used.clear()
    diagnostics.polish(log_joint, m + 1.0, np.full(3, np.log(4e-9)), chunk)
    assert used[0] == "expected_hessian"


def test_the_line_search_evaluates_a_zero_direction_once():
    # the sds alone: every step length has the same value, one evaluation tells
    calls = []

    def log_joint(zeta):
        calls.append(len(zeta))
        return -0.5 * anp.sum(zeta ** 2, axis=1)

    eps = np.random.default_rng(0).standard_normal((8, 2))
    for sds in (np.zeros(2), np.full(2, -3.0)):     # the optimum's sds, then worse ones
        calls.clear()
        t = newton.line_search(log_joint, np.zeros(2), np.zeros(2), np.zeros(2), sds, eps)
        assert t == 0.0 and len(calls) == 2      # the start and one step


def test_polish_beyond_the_dense_hessian_uses_its_diagonal():
    # D > precondition.MAX_DIM: Stein's lemma on the draws' gradients, exact on a diagonal
    # Gaussian with antithetic draws (the regression slope of g_i on eps_i has no noise)
    D = 301
    m, s = np.linspace(-5, 5, D), np.geomspace(1e-6, 1e3, D)

    def log_joint(zeta):
        return -0.5 * anp.sum(((zeta - m) / s) ** 2, axis=1)

    mu, log_sigma, _ = diagnostics.polish(log_joint, m + 3 * s, np.log(s) + 2.0)
    np.testing.assert_allclose((mu - m) / s, 0.0, atol=1e-6)
    np.testing.assert_allclose(log_sigma, np.log(s), atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1e12, 1e-12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_data_on_an_extreme_scale_ends_at_the_exact_posterior(scale, seed):
    # Before the polish these fits stopped 30 to 1.5e7 posterior sds away (see the report of
    # issue 9 item 3). The polish stops once no Newton step is above 0.1 sds, or significant
    # at z = 4 with up to 1024 draws (se <= 0.1 sds: at most 0.4 sds left); the largest errors
    # measured over these 6 fits were 0.11 sds (mean) and 7% (sd, from 16 draws of the
    # expected Hessian): 0.5 sds and a factor 1.25.
    y = np.random.default_rng(5).normal(1.0, 0.5, 20) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ppl.compile(SMALL).fit({"y": y}, seed=seed, guide="meanfield")
    assert fit.converged
    mean, sd = exact_small(y)   # mu and s are uncorrelated here: mean field's sds are exact
    r = fit.result
    assert np.all(np.abs(r.mu - mean) / sd < 0.5), (r.mu, mean, sd)
    assert np.all(np.abs(r.log_sigma - np.log(sd)) < np.log(1.25)), (np.exp(r.log_sigma), sd)


def test_a_model_at_ordinary_scale_gives_no_warning():
    y = np.random.default_rng(5).normal(1.0, 0.5, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ppl.compile(SMALL).fit({"y": y}, seed=0)
    assert fit.converged


# ----- a 100,000-row, 20-predictor regression (issue 9 item 3) ---------------------------------

def _big_regression(N):
    """Data as in benchmarks/end_to_end.py, noise sd 0.7 known: the posterior of (alpha, beta)
    is Gaussian with precision P = Z^T Z / 0.49 + prior precision, Z = [1, X]."""
    rng = np.random.default_rng(20240601)
    X = rng.standard_normal((N, 20))
    y = 0.5 + X @ rng.normal(0, 1, 20) + rng.normal(0, 0.7, N)
    Z = np.column_stack([np.ones(N), X])
    P = Z.T @ Z / 0.49 + np.diag([1 / 100] + [1 / 4] * 20)
    return {"N": N, "K": 20, "X": X, "y": y}, P, np.linalg.solve(P, Z.T @ y / 0.49)


BIG = """data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
observe y ~ Normal(alpha + X @ beta, 0.7)
"""


def test_polish_puts_a_mean_off_by_sds_at_the_exact_regression_posterior():
    # a fit 1.6 posterior sds off (what an earlier run reported for seed 1) along every
    # coordinate: one Newton step with the exact expected Hessian lands on the exact mean
    _, P, m = _big_regression(100_000)
    sd = 1 / np.sqrt(np.diag(P))

    def log_joint(zeta):
        d = zeta - m
        return -0.5 * anp.sum((d @ P) * d, axis=1)

    start = m + 1.6 * np.sqrt(np.diag(np.linalg.inv(P))) * np.sign(np.sin(np.arange(21)))
    mu, log_sigma, _ = diagnostics.polish(log_joint, start, np.log(sd) + 0.3)
    np.testing.assert_allclose((mu - m) / sd, 0.0, atol=1e-6)
    np.testing.assert_allclose(log_sigma, np.log(sd), atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(32))
def test_a_large_regression_ends_at_its_exact_posterior(seed):
    # 20,000 rows keep this under a second a fit; posterior sds (~0.005) are still far below
    # the step size. A converged fit is either within its optimizer jitter or polished to
    # within 0.1 sds (POLISH_SDS). Jitter: 0.025 sds (tests/stats/test_posteriors.py, JITTER
    # regression_mu, measured over 30 seeds); at N = 100,000 the largest of the 21 errors was
    # 0.047 at seeds 0, 1 (see the report of issue 9 item 3), i.e. about 0.02 each. z = 4:
    # 0.1 sds. Seeds 0-31: where the search after the Newton steps took the grid's smallest
    # step size, which scored best by barely moving, the fit froze there, 0.12-0.19 sds off at
    # seeds 6, 19, 20 and 22 (schedule.SEARCH_TIE); 0.081 at most since.
    data, P, m = _big_regression(20_000)
    fit = ppl.compile(BIG).fit(data, seed=seed, guide="meanfield")
    r = fit.result
    assert fit.converged
    np.testing.assert_array_less(np.abs(r.mu - m) * np.sqrt(np.diag(P)), 0.1)
    np.testing.assert_array_less(np.abs(r.log_sigma + 0.5 * np.log(np.diag(P))), 0.1)


# ----- families other than mean field: the check uses the family's own draws ---------------
COVARIANCE = np.array([[1.0, 0.95], [0.95, 1.0]])


def _correlated(scale, covariance=COVARIANCE):
    """A stub of the Gaussian N(0, scale^2 covariance): the check's steps, in the family's sds,
    are the same at every scale."""
    precision = np.linalg.inv(covariance)

    class Correlated:
        dim = len(covariance)

        @staticmethod
        def log_joint(zeta):
            return -0.5 * anp.sum((zeta @ precision) * zeta, axis=1) / scale ** 2

        @staticmethod
        def unconstrained_names():
            return ["a", "b", "c"][:len(covariance)]
    return Correlated


def _fullrank_theta(mu, scale=1.0):
    from ppl.guides import FullRank
    L = np.linalg.cholesky(COVARIANCE) * scale
    M = np.tril(L, -1) + np.diag(np.log(np.diag(L)))
    return FullRank(2), np.concatenate([mu, M.ravel()])


# at sds of 0.01 and 100 too: the steps are sd_i E_q[g_i], in the family's sds (mutation13: in
# the model's units, E_q[g_i] alone, the off fit at sd 100 passed and the fit at its optimum
# with sds of 0.01 was flagged)
@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_a_fullrank_fit_at_its_optimum_is_not_flagged(scale):
    guide, theta = _fullrank_theta(np.zeros(2), scale)
    assert diagnostics.settle(_correlated(scale), guide, theta, 0.1, -1.0)[2] is None


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_a_fullrank_fit_off_its_optimum_is_flagged(scale):
    # shifted by 3 sds along (1, -1), the posterior's narrow direction (sd sqrt(0.05)): the
    # gradient's mean, sd_i * E_q[g_i] = -(P shift)_i, is 6.7 sds per coordinate (P has 10.3 on its diagonal)
    shift = 3 * np.sqrt(0.05) * np.array([1.0, -1.0]) / np.sqrt(2) * scale
    guide, theta = _fullrank_theta(shift, scale)
    warning = diagnostics.settle(_correlated(scale), guide, theta, 0.1, -1.0)[2]
    assert warning is not None and "guide sds" in warning.message


# A ridge as narrow as diamonds' (correlation 0.9999: conditional sds 1/70 of the marginal
# ones). The check steps in the family's whitened coordinates: mean field's form,
# sd_i E_q[g_i], has draws of sd sqrt(precision_ii) sd_i = 70 here, so its standard errors
# (8.8 at 64 draws) are above MAX_SDS and a fit at its very optimum read as one the draws
# cannot place (diagnostics._unbounded): diamonds' full rank at k̂ 0.00 was reported not
# converged on every seed.
RIDGE = np.array([[1.0, 0.9999], [0.9999, 1.0]])


def _ridge_theta(family: str, mu):
    """theta of q = N(mu, RIDGE) in full rank's or low rank's (R = 1) layout."""
    from ppl.guides import FullRank, LowRank
    if family == "fullrank":
        L = np.linalg.cholesky(RIDGE)
        return FullRank(2), np.concatenate([mu, (np.tril(L, -1) + np.diag(np.log(np.diag(L))))
                                            .ravel()])
    # RIDGE = (1 - rho) I + f f^T with f = sqrt(rho) (1, 1)
    rho = RIDGE[0, 1]
    return LowRank(2, 1), np.concatenate([mu, np.full(2, 0.5 * np.log(1 - rho)),
                                          np.full(2, np.sqrt(rho))])


@pytest.mark.parametrize("family", ["fullrank", "lowrank"])
def test_a_fit_at_its_optimum_on_a_narrow_ridge_is_not_flagged(family):
    guide, theta = _ridge_theta(family, np.zeros(2))
    assert diagnostics.settle(_correlated(1.0, RIDGE), guide, theta, 0.1, -1.0)[2] is None


@pytest.mark.parametrize("family", ["fullrank", "lowrank"])
def test_a_fit_off_its_optimum_across_a_narrow_ridge_is_flagged(family):
    # 0.03 marginal sds per element, across the ridge: 4.2 of its narrow direction's sds, and
    # whitened steps L^-1 shift = (0.03, -4.2) (the check's draws add noise of sd 1 / 8 to each)
    shift = 3 * np.sqrt(1 - 0.9999 ** 2) * np.array([1.0, -1.0]) / np.sqrt(2)
    guide, theta = _ridge_theta(family, shift)
    warning = diagnostics.settle(_correlated(1.0, RIDGE), guide, theta, 0.1, -1.0)[2]
    assert warning is not None and "guide sds" in warning.message


def test_a_low_rank_whose_covariance_is_singular_in_floating_point_is_checked_all_the_same():
    # sigma = e^-800 underflows to 0 beside a rank-1 F: sigma^2 + F F^T has no Cholesky
    # factor, and the check takes the diagonal form (it had raised LinAlgError, a traceback)
    from ppl.guides import LowRank
    theta = np.concatenate([np.zeros(3), np.full(3, -800.0), np.ones(3)])
    with pytest.raises(np.linalg.LinAlgError):
        LowRank(3, 1).frame(theta)
    _, _, warning = diagnostics.settle(_correlated(1.0, np.eye(3)), LowRank(3, 1), theta, 0.1,
                                       -1.0)
    assert warning is None     # each draw's steps are sd_i g_i = 0 at sd 0


def _poisson_on_years(rate: str):
    """y ~ Poisson(<rate>) on the years 1950-2020, uncentred, with priors Normal(0, 100) on a
    and Normal(0, 1) on b, compiled."""
    from .test_advi import compiled
    years = np.arange(1950, 2021, dtype=float)
    y = np.random.default_rng(4).poisson(np.exp(3.0 + 0.02 * (years - 1985)))
    return compiled("data N: int\ndata year: real[N]\ndata y: int[N]\n"
                    "sample a ~ Normal(0, 100)\nsample b ~ Normal(0, 1)\n"
                    f"observe y ~ Poisson({rate})\n", {"N": len(years), "year": years, "y": y})


def _poisson_mode():
    """The mode and Laplace sds of _poisson_on_years' posterior, by Newton's method in numpy
    (log-concave: from anywhere on the ridge)."""
    years = np.arange(1950, 2021, dtype=float)
    y = np.random.default_rng(4).poisson(np.exp(3.0 + 0.02 * (years - 1985)))
    X = np.stack([np.ones_like(years), years], axis=1)
    mode = np.array([3.0 - 0.02 * 1985, 0.02])
    for _ in range(50):
        rate = np.exp(X @ mode)
        H = X.T @ (rate[:, None] * X) + np.diag([1e-4, 1.0])
        mode = mode + np.linalg.solve(H, X.T @ (y - rate) - mode * np.array([1e-4, 1.0]))
    return mode, np.sqrt(np.diag(np.linalg.inv(H)))


def test_a_polish_that_ends_where_the_elbo_is_not_finite_keeps_the_fit_and_its_warning():
    # Poisson counts on uncentred years: the mean-field fit (seed 0) stopped far off, and its
    # polish, each round's step raising the ELBO on that round's draws only, set the sds to
    # the priors' (b's sd 1 on a slope of 0.02): exp of the log rate overflowed, the final ELBO
    # was -inf, the check's gradients were not finite and the fit passed as 'converged' with
    # no warning (found by the scales audit). Now the fit is kept as it was, with the warning.
    from ppl.guides import MEAN_FIELD
    c = _poisson_on_years("log_rate=a + b * year")
    theta = np.array([7.05098743, -0.08671916, -0.59598611, -3.852955])  # where the fit stopped
    settled, final_elbo, warning = diagnostics.settle(c, MEAN_FIELD, theta, 0.1, -280572.2)
    np.testing.assert_array_equal(settled, theta)
    assert final_elbo == -280572.2
    assert warning is not None and "'b'" in warning.message


def test_a_collapsed_mean_field_fit_is_polished_to_its_optimum():
    # Where the fit (mean field, seed 2) stopped 'converged': its first whitening's Newton step
    # took the sds to the curvature of draws of b * year at +-200 (e^-226, e^-234), and Adam's
    # steps of lr climbed 4 nats from there in 8,000 steps. Its means were 15.5 posterior sds
    # off, and the check's Newton steps, in guide sds, were 3e-98: no warning (found by the
    # collapse audit). The sds' check (short_sd) sees it; the polish, its sds first taken to
    # the curvature, ends where seed 0's fit did: within 0.1 posterior sd (issue 11's target
    # for a mean; seed 0's error was 0.007) of the mode, which for this near-Gaussian posterior
    # (correlation -0.99995) is its mean, with mean field's sds at 1 / sqrt(H_ii).
    from ppl.guides import MEAN_FIELD
    c, (mode, sd) = _poisson_on_years("exp(a + b * year)"), _poisson_mode()
    theta = np.array([-0.37075345, 1.76776008e-03, -226.335833, -234.291354])
    assert abs((theta[0] - mode[0]) / sd[0]) > 10
    warning = diagnostics.check_optimum(c, theta[:2], theta[2:], 0.01, -799.0)
    assert warning is not None
    assert "the guide sd of 'b' (unconstrained) is 1.77e-102" in warning.message
    settled, final_elbo, warning = diagnostics.settle(c, MEAN_FIELD, theta, 0.01, -799.0)
    assert warning is None
    np.testing.assert_array_less(np.abs(settled[:2] - mode) / sd, 0.1)
    # the polish's sds are 1 / sqrt(E_q[-H_ii]) over its draws; -H_ii at the mean alone
    # differs from it by the spread of the log rate under the guide: 0.8% here (measured);
    # 5% allows for that, and the collapsed sds it replaces are off by a factor e^100
    curvature = diagnostics._curvature(c.log_joint, settled[None, :2], np.arange(2))
    np.testing.assert_allclose(np.exp(settled[2:]), 1 / np.sqrt(curvature), rtol=0.05)


def test_an_sd_below_the_means_float_resolution_is_not_called_collapsed():
    # a posterior of sd 1e-12 about 1e6 (resolution 1.2e-10): the guide's draws all round to
    # its mean, so Stein's estimate of the curvature is 0; the exact Hessian says the sd fits
    def log_joint(zeta):
        return -0.5 * anp.sum(((zeta - 1e6) / 1e-12) ** 2, axis=1)

    mu, sigma = np.array([1e6]), np.array([1e-12])
    eps = diagnostics._antithetic(np.random.default_rng(0), 1)
    g = diagnostics._gradients(log_joint, mu, sigma, eps)
    assert diagnostics.short_sd(log_joint, mu, sigma, eps, g) is None
    assert diagnostics.short_sd(log_joint, mu, sigma * 1e-3, eps, g) == (0, pytest.approx(1e-3))


def test_the_check_after_a_polish_judges_the_polished_elbo(monkeypatch):
    # the warning after a polish names the ELBO the fit ends with, and chooses its cause by it
    # ('the ELBO is about ...: the data are on a scale far from the priors'' beyond 1e8): the
    # polished ELBO, not the one before the polish (mutation3 audit)
    from ppl.guides import MEAN_FIELD
    from .test_advi import compiled
    seen, check_optimum = [], diagnostics.check_optimum

    def spy(compiled, mu, log_sigma, lr, final_elbo, rounds=0):
        seen.append(final_elbo)
        return check_optimum(compiled, mu, log_sigma, lr, final_elbo, rounds)
    monkeypatch.setattr(diagnostics, "check_optimum", spy)
    c = compiled("sample mu ~ Normal(0, 1)\n", {})
    # 3 sds off: the check fails and the polish moves the mean to 0
    theta, final_elbo, _ = diagnostics.settle(c, MEAN_FIELD, np.array([3.0, 0.0]), 0.1, -123.0)
    assert abs(theta[0]) < 1e-6
    assert seen == [-123.0, final_elbo] and final_elbo != -123.0


@pytest.mark.parametrize("sd_b, step", [(0.08227863, "inf"), (0.07, "-1.35e+11")])
def test_a_step_the_draws_cannot_bound_is_flagged(sd_b, step):
    # Where the mean-field fit (seed 1; Adam's second moment no longer overflowing) stopped
    # 'converged' with a final ELBO of -7.6e77, 143 posterior sds off: its mean had not moved
    # since the first whitening. b's sd 0.08 puts most of the check's draws at steps of +2.7e5
    # sds and a few, in e^(b * year)'s tail, at -1e39 or at a gradient that overflows (0.08:
    # step inf, se nan) or at a mean of -1.35e11 sds with an se as large (0.07): 'not
    # significant' at Z = 4, and no warning. A step above MAX_SDS whose se is not below it is
    # one the draws cannot bound (diagnostics._unbounded).
    c = _poisson_on_years("exp(a + b * year)")
    mu = np.array([-0.17873489, -0.16118613])
    warning = diagnostics.check_optimum(c, mu, np.log([0.10243603, sd_b]), 0.01, -7.6e77)
    assert warning is not None and f"by {step} guide sds" in warning.message


# ----- the check's and the polish's rules, exactly (mutation13) ---------------------------------

def test_the_steps_standard_error_is_that_of_the_mean_of_independent_pairs():
    # the antithetic draws (eps, -eps) are dependent; their pairs' means p_i are independent:
    # the step is mean(p), its standard error sd(p, ddof 1) / sqrt(pairs). Each pair's halves
    # differ by d (cancelling in p). (mutation13: the se over all 2 n draws, sqrt 2 too small,
    # survived)
    p = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [6.0, 10.0]])
    d = np.array([[5.0, -1.0], [-2.0, 7.0], [0.5, 0.0], [3.0, 2.0]])
    steps, se = diagnostics._moments(np.concatenate([p + d, p - d]))
    np.testing.assert_allclose(steps, [3.0, 10.0], rtol=1e-15)
    np.testing.assert_allclose(se, [np.sqrt(14 / 3) / 2, 0.0], rtol=1e-15, atol=1e-15)


def test_significance_is_at_four_standard_errors_and_blindness_at_an_se_of_one_sd():
    # _worst: the largest step above Z = 4 se (-4.5 at 3.9 se is not; 4.1 at 4.1 se is; a
    # step whose se is not finite is left out); _unbounded: the largest step above MAX_SDS = 1
    # whose se is not below 1 (mutation13: Z 3.5, and blindness only at se >= 4, survived)
    steps, se = np.array([-4.5, 4.1, 10.0]), np.array([4.5 / 3.9, 1.0, np.nan])
    assert diagnostics._worst(steps, se) == (1, 4.1)
    assert diagnostics._unbounded(np.array([2.0, 3.0]), np.array([1.0, 0.99])) == 0
    assert diagnostics._unbounded(np.array([0.99, 3.0]), np.array([5.0, 0.5])) is None


@pytest.mark.parametrize("offset, warned", [(0.9, False), (1.1, True)])
def test_the_check_warns_from_one_guide_sd(offset, warned):
    # the Gaussian stub with the guide's sds the posterior's: the step is -offset exactly
    # (antithetic draws of a linear gradient: se at rounding level, so significant); the check
    # warns above MAX_SDS = 1 guide sd (mutation13: at 1.2, a step of 1.1 passed)
    warning = diagnostics.check_optimum(_Stub, M + np.array([0.0, 0.0, offset]) * S, np.log(S),
                                        0.1, -3.0)
    assert (warning is not None) == warned


@pytest.mark.parametrize("ratio, short", [(0.05, True), (0.09, True), (0.11, False)])
def test_an_sd_below_a_tenth_of_its_curvatures_is_collapsed(ratio, short):
    # a Gaussian of sd 2 and a guide sd of ratio * 2; draws eps = +-1, for which Stein's
    # screen is exact (mean of eps^2 is 1): sigma sqrt(E[-H]) = ratio, collapsed below SHORT =
    # 0.1 (mutation13: SHORT 0.08, and the screen at a quarter of it, survived)
    def log_joint(zeta):
        return -0.5 * anp.sum((zeta / 2.0) ** 2, axis=1)

    mu, sigma, eps = np.array([0.3]), np.array([2.0 * ratio]), np.array([[1.0], [-1.0]])
    g = diagnostics._gradients(log_joint, mu, sigma, eps)
    found = diagnostics.short_sd(log_joint, mu, sigma, eps, g)
    assert found == ((0, pytest.approx(ratio, rel=1e-12)) if short else None)


def _gaussian_at(m, s):
    def log_joint(zeta):
        return -0.5 * anp.sum(((zeta - m) / s) ** 2, axis=1)
    return log_joint


@pytest.mark.parametrize("step, se, rounds", [
    (0.9, 1.0, 0),            # not significant, below MAX_SDS: done
    (1.1, 1.0, 1),            # above MAX_SDS, significant or not: a Newton step
    (0.15, 0.15 / 4.1, 1),    # significant at Z = 4 and above POLISH_SDS = 0.1: a step
    (0.15, 0.15 / 3.9, 0),    # not significant at Z = 4: done
    (0.05, 0.001, 0),         # significant but below POLISH_SDS: done
])
def test_the_polish_stops_by_its_rule(step, se, rounds, monkeypatch):
    # The first round's step and se scripted (the draws, gradients and Hessian real): a
    # Gaussian with the guide's sds the posterior's, its mean off by (0.5, -0.3) sds. Done:
    # the sds only, the mean as it was, 0 rounds; else the Newton step lands on the mean and
    # the next round is done (mutation13: done above MAX_SDS, at MAX_SDS 1.2, Z 3.5 or
    # POLISH_SDS 0.2, and 'collapsed' at sds within 10x of the curvature's, all survived)
    m, s = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    expected_gradient, calls = diagnostics._expected_gradient, []

    def scripted(*args):
        eps, g, steps, errors = expected_gradient(*args)
        calls.append(None)
        if len(calls) == 1:
            steps, errors = np.array([step, 0.0]), np.array([se, 1.0])
        return eps, g, steps, errors
    monkeypatch.setattr(diagnostics, "_expected_gradient", scripted)
    start = m + np.array([0.5, -0.3]) * s
    mu, log_sigma, got = diagnostics.polish(_gaussian_at(m, s), start, np.log(s))
    assert got == rounds
    np.testing.assert_allclose(mu, m if rounds else start, rtol=0, atol=1e-12)
    np.testing.assert_allclose(log_sigma, np.log(s), rtol=0, atol=1e-12)


def _convex_in_b(zeta):
    """log p = -2 (a - 1)^2 + b^2 / 8: H = diag(4, -1/4), b a direction of local convexity."""
    return -2.0 * (zeta[:, 0] - 1.0) ** 2 + zeta[:, 1] ** 2 / 8


@pytest.mark.parametrize("dense", [True, False])
def test_a_direction_of_local_convexity_moves_by_its_curvatures_magnitude_or_not(dense,
                                                                                 monkeypatch):
    # The dense Newton step takes each scaled eigenvalue's magnitude: -g_i / |H_ii| here
    # (H diagonal), 2 along b; the diagonal step (Stein's lemma, beyond MAX_DIM) takes no step
    # where the curvature is not positive (mutation13: signed eigenvalues, floored at 1e-8,
    # stepped 4e8 along b; a negative curvature stepped -2, downhill in the ELBO: survived)
    if not dense:
        monkeypatch.setattr(diagnostics, "MAX_DIM", 0)
    mu, sigma = np.array([3.0, 2.0]), np.array([0.5, 0.5])
    eps = diagnostics._antithetic(np.random.default_rng(0), 2)
    g = diagnostics._gradients(_convex_in_b, mu, sigma, eps)   # mean (-8, 0.5)
    direction, curvature = diagnostics._newton(_convex_in_b, mu, sigma, eps, g)
    np.testing.assert_allclose(curvature, [4.0, -0.25], rtol=1e-12)
    np.testing.assert_allclose(direction, [-2.0, 2.0 if dense else 0.0], rtol=1e-12, atol=1e-12)


def test_the_polish_keeps_an_sd_with_no_positive_curvature():
    # b's curvature is -1/4: no mean-field optimum for its sd (the target is NaN), which is
    # kept as it was; a's mean lands on 1 with its sd at 1 / sqrt(4) (mutation13: setting such
    # an sd to 1 survived)
    mu, log_sigma, _ = diagnostics.polish(_convex_in_b, np.array([3.0, 0.0]), np.log([0.5, 0.3]))
    np.testing.assert_allclose(mu, [1.0, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(log_sigma, np.log([0.5, 0.3]), rtol=0, atol=1e-12)


def test_the_polish_leaves_a_guide_whose_gradient_is_not_finite_as_it_was():
    # A log density finite everywhere whose derivative in a is NaN past a = 1.5 (a primitive
    # standing for a model's gradient that is 0 * inf where its value is finite): some of the
    # first 64 draws of a ~ N(0, 1) reach it, and the polish returns at once, leaving the fit
    # to its own checks (mutation13: going on, its steps NaN in a and so 'done', it moved
    # both sds, a's to 0.03, from draws whose gradients it could not read)
    from autograd.extend import defvjp, primitive

    @primitive
    def bent(a):
        return -0.5 * a ** 2
    defvjp(bent, lambda ans, a: lambda g: g * anp.where(a > 1.5, np.nan, -a))

    def log_joint(zeta):
        return bent(zeta[:, 0]) - 0.5 * zeta[:, 1] ** 2

    log_sigma = np.log([1.0, 0.3])
    with np.errstate(invalid="ignore"):
        mu, got, rounds = diagnostics.polish(log_joint, np.zeros(2), log_sigma)
    assert rounds == 0
    np.testing.assert_array_equal(mu, np.zeros(2))
    np.testing.assert_array_equal(got, log_sigma)
