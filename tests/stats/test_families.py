"""The richer families against exact answers: full-rank and low-rank covariances of Gaussian
posteriors, and KL(q || p) of every family on a banana and a funnel with known normalization
(the Gaussian families' optima in closed form).

The covariance checks' errors are optimizer jitter only (compared on the guides' own
parameters, no draws), measured once across seeds by running this file (``python
tests/stats/test_families.py``), which prints per check the largest error of each seed;
tolerances are z = 4 times the jitter sd below. The KL checks' tolerances are z = 4 standard
errors of their Monte Carlo estimates, measured from the draws used.
"""
import sys

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from scipy.optimize import minimize

from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.infer.advi import fit
from ppl.options import FitOptions

Z = 4.0
# Jitter sds (in exact-posterior units) measured over seeds 0-2 with FitOptions defaults by
# `python tests/stats/test_families.py 3`: the rms of the covariance entries' errors was 0.023,
# 0.010, 0.017 (full rank) and 0.021, 0.013, 0.016 (low rank), pooled 0.017; the largest
# entry error 0.054. The largest mean error over 3 (8) coordinates and 3 seeds was 0.038
# (0.041), so a coordinate's sd is about 0.02. Both rounded up to 0.02: tolerance 0.08.
JITTER_COV = 0.02      # an entry of C^-1/2 (Sigma_fit - C) C^-1/2
JITTER_MEAN = 0.02     # a coordinate of C^-1/2 (mu_fit - mean)


class Target:
    """A log density on R^D shaped like compiler.Compiled, for the fit loop."""

    def __init__(self, log_density, D):
        self.log_density, self.dim = log_density, D

    def log_joint(self, zeta):
        return self.log_density(zeta)

    def terms(self, zeta):
        return [(None, self.log_density(zeta))]

    def unconstrained_names(self):
        return [f"z[{i}]" for i in range(self.dim)]


def gaussian_target(mean, cov):
    P = np.linalg.inv(cov)
    log_norm = -0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]

    def log_density(z):
        d = z - mean
        return -0.5 * anp.sum((d @ P) * d, axis=1) + log_norm
    return Target(log_density, len(mean))


def whitened_errors(guide, theta, mean, cov):
    """(C^-1/2 (mu - mean), C^-1/2 Sigma C^-1/2 - I) of a Gaussian family's fit."""
    lam, V = np.linalg.eigh(cov)
    root = V @ np.diag(lam ** -0.5) @ V.T
    if hasattr(guide, "R"):
        _, log_sigma, F = guide.split(theta)
        sigma = np.diag(np.exp(2 * log_sigma)) + F @ F.T
    else:
        _, L = guide.split(theta)
        sigma = L @ L.T
    return root @ (guide.mean(theta) - mean), root @ sigma @ root - np.eye(len(mean))


# ----- full rank: conjugate linear regression, known noise, strongly correlated predictors -----

REGRESSION = """\
data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample beta: real[K] ~ Normal(0, 10)
observe y ~ Normal(X @ beta, 1.0)
"""


def regression_case():
    """x1 = x0 + small noise: the posterior correlation of beta0 and beta1 is about -0.99."""
    rng = np.random.default_rng(7)
    N = 30
    x0, x2 = rng.standard_normal(N), rng.standard_normal(N)
    X = np.stack([x0, x0 + 0.15 * rng.standard_normal(N), 0.5 * x0 + x2], axis=1)
    y = X @ np.array([1.0, -0.5, 2.0]) + rng.standard_normal(N)
    precision = np.eye(3) / 100 + X.T @ X
    cov = np.linalg.inv(precision)
    return {"N": N, "K": 3, "X": X, "y": y}, cov @ X.T @ y, cov


def regression_errors(seed):
    data, mean, cov = regression_case()
    program = parse(REGRESSION, "model.ppl")
    values, dims = load_data(check(program), data)
    compiled = compile_model(check(program, dims), values)
    result = fit(compiled, FitOptions(guide="fullrank", seed=seed), np.random.default_rng(seed))
    assert result.converged, result.reason
    return whitened_errors(result.guide, result.theta, mean, cov)


def test_regression_case_is_strongly_correlated():
    _, _, cov = regression_case()
    assert cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) < -0.95


@pytest.mark.slow
def test_fullrank_recovers_the_whole_covariance():
    mean_error, cov_error = regression_errors(0)
    assert np.all(np.abs(mean_error) < Z * JITTER_MEAN), mean_error
    assert np.all(np.abs(cov_error) < Z * JITTER_COV), cov_error


# ----- low rank: a Gaussian whose covariance is diagonal plus rank 2 --------------------------

def lowrank_case():
    rng = np.random.default_rng(11)
    D = 8
    V = rng.standard_normal((D, 2)) * 1.5
    cov = np.diag(rng.uniform(0.3, 1.0, D) ** 2) + V @ V.T
    return rng.standard_normal(D), cov


def lowrank_errors(seed, spec="lowrank:2"):
    mean, cov = lowrank_case()
    result = fit(gaussian_target(mean, cov), FitOptions(guide=spec, seed=seed),
                 np.random.default_rng(seed))
    assert result.converged, result.reason
    return whitened_errors(result.guide, result.theta, mean, cov)


@pytest.mark.slow
def test_lowrank_with_enough_rank_recovers_the_covariance():
    mean_error, cov_error = lowrank_errors(0)
    assert np.all(np.abs(mean_error) < Z * JITTER_MEAN), mean_error
    assert np.all(np.abs(cov_error) < Z * JITTER_COV), cov_error


# ----- KL(q || p) on a banana and a funnel: mean field > full rank > flow -------------------

def _normal(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - anp.log(sd) - 0.5 * np.log(2 * np.pi)


# A fixed linear map z = A x of each density: log p(z) = log p_x(A^-1 z) - log|det A|, so the
# normalizing constant stays known (1) and a full-rank Gaussian has correlations to capture.
def _mapped(log_px, A):
    A_inv, log_det = np.linalg.inv(A), np.linalg.slogdet(A)[1]
    return lambda z: log_px(z @ A_inv.T) - log_det


BANANA_A = (np.array([[np.cos(np.pi / 6), -np.sin(np.pi / 6)],
                     [np.sin(np.pi / 6), np.cos(np.pi / 6)]]) @ np.diag([1.0, 2.0]))
FUNNEL_A = np.eye(5) + np.tril(np.full((5, 5), 0.5), -1)


def banana():
    """x0 ~ N(0, 1), x1 | x0 ~ N(x0^2 - 1, 0.5), then rotated by 30 degrees and scaled."""
    return Target(_mapped(lambda x: _normal(x[:, 0], 0.0, 1.0)
                          + _normal(x[:, 1], x[:, 0] ** 2 - 1.0, 0.5), BANANA_A), 2)


def funnel():
    """Neal's funnel in 5-D with v ~ N(0, 1.5) (x_i | v ~ N(0, exp(v / 2))), then mapped by a
    fixed unit-triangular A (det 1) that correlates the coordinates."""
    return Target(_mapped(lambda x: _normal(x[:, 0], 0.0, 1.5)
                          + anp.sum(_normal(x[:, 1:], 0.0, anp.exp(x[:, :1] / 2)), axis=1),
                          FUNNEL_A), 5)


# E log p_x(x) for x ~ N(m, S), in closed form: the banana's log density is a quartic in x
# (Gaussian moments up to the fourth), the funnel's has x_i^2 exp(-x0), whose expectation is
# E exp(-x0) = exp(-m0 + S00 / 2) times E x_i^2 under the tilted Gaussian N(m - S[:, 0], S).
def _banana_expected_log_px(m, S):
    u = m[1] - (m[0] ** 2 + S[0, 0]) + 1.0                  # E (x1 - x0^2 + 1)
    u2 = u ** 2 + S[1, 1] + 2 * S[0, 0] ** 2 + 4 * m[0] ** 2 * S[0, 0] - 4 * m[0] * S[0, 1]
    return -0.5 * (m[0] ** 2 + S[0, 0]) - u2 / (2 * 0.25) - np.log(0.5) - np.log(2 * np.pi)


def _funnel_expected_log_px(m, S):
    tilt = anp.exp(-m[0] + S[0, 0] / 2)
    x2 = (m[1:] - S[1:, 0]) ** 2 + anp.diag(S)[1:]
    return (-0.5 * (m[0] ** 2 + S[0, 0]) / 1.5 ** 2 - np.log(1.5)
            - anp.sum(0.5 * tilt * x2 + m[0] / 2) - 0.5 * 5 * np.log(2 * np.pi))


CLOSED_FORMS = {"banana": (BANANA_A, _banana_expected_log_px),
                "funnel": (FUNNEL_A, _funnel_expected_log_px)}


def gaussian_kl(name, mu, L):
    """KL(q || p) of q = N(mu, L L^T) against the target ``name``, exactly: z = A x maps q to
    N(A^-1 mu, A^-1 L L^T A^-T) in x, and log p(z) = log p_x(A^-1 z) - log|det A|."""
    A, expected_log_px = CLOSED_FORMS[name]
    A_inv, D = np.linalg.inv(A), len(mu)
    L_x = anp.dot(A_inv, L)
    entropy = anp.sum(anp.log(anp.abs(anp.diag(L)))) + 0.5 * D * (1 + np.log(2 * np.pi))
    return (-entropy - expected_log_px(anp.dot(A_inv, mu), anp.dot(L_x, L_x.T))
            + np.linalg.slogdet(A)[1])


def optimal_gaussian(name, full):
    """(KL, mu, L) of the mean-field (diagonal) or full-rank Gaussian of smallest KL(q || p),
    by BFGS on the closed form from N(0, I) (to a gradient below 1e-8: exact to far below any
    Monte Carlo error here)."""
    D = len(CLOSED_FORMS[name][0])

    def unpack(p):
        if full:
            M = anp.reshape(p[D:], (D, D))
            return p[:D], anp.tril(M, -1) + anp.diag(anp.exp(anp.diag(M)))
        return p[:D], anp.diag(anp.exp(p[D:]))

    def kl_of(p):
        return gaussian_kl(name, *unpack(p))
    start = np.zeros(D + (D * D if full else D))
    found = minimize(kl_of, start, jac=grad(kl_of), method="BFGS", options={"gtol": 1e-8})
    assert found.success, found.message
    return (float(found.fun), *unpack(found.x))


def test_closed_form_kl_matches_its_monte_carlo_estimate():
    # The closed form against 50,000 draws of a Gaussian near full rank's optimum but not at it
    # (sds 1.1 times, the mean moved 0.2 sd): the estimate's standard error is measured from
    # the same draws (0.004-0.005 nats); z = 4.
    rng = np.random.default_rng(3)
    for name, target in (("banana", banana()), ("funnel", funnel())):
        _, mu, L = optimal_gaussian(name, full=True)
        mu, L = mu + L @ (0.2 * rng.standard_normal(len(mu))), 1.1 * L
        z = mu + rng.standard_normal((50_000, len(mu))) @ L.T
        log_q = (-0.5 * np.sum(np.linalg.solve(L, (z - mu).T) ** 2, axis=0)
                 - np.sum(np.log(np.diag(L))) - 0.5 * len(mu) * np.log(2 * np.pi))
        gap = log_q - target.log_joint(z)
        se = np.std(gap) / np.sqrt(len(gap))
        assert abs(np.mean(gap) - gaussian_kl(name, mu, L)) < Z * se, name


KL_DRAWS = 20_000


def kl(target, spec, seed=0):
    """(KL(q || p) estimate, its Monte Carlo standard error) for the fitted family."""
    result = fit(target, FitOptions(guide=spec, seed=seed), np.random.default_rng(seed))
    zeta = result.guide.sample(result.theta, np.random.default_rng([seed, 5]), KL_DRAWS)
    gap = result.guide.log_q(result.theta, zeta) - target.log_joint(zeta)
    return float(np.mean(gap)), float(np.std(gap) / np.sqrt(KL_DRAWS))


def kl_table(target, seed=0):
    return {spec: kl(target, spec, seed) for spec in ("meanfield", "fullrank", "flow")}


def assert_near_the_optimum_and_ordered(table, name):
    """Each fitted Gaussian's KL estimate within z = 4 of its standard errors (from the 20,000
    draws) of its family's exact optimum: it cannot lie below it except by Monte Carlo error,
    and the test holds the optimizer's excess under what the draws resolve (4 se, 0.02-0.04
    nats). The flow's estimate is below full rank's exact optimum by more than 4 se. No
    hand-picked margins: the references are closed forms, the tolerances the estimates' own
    errors. Measured on the seed-0 fits with each family's draws spread 1.2 times (or 1/1.2
    times) about its mean: a Gaussian's KL rises by 0.09-0.33 nats and the check fails; a
    flow's rises to 0.20-0.43, still below full rank's optimum, and passes: the flow's own
    optimum is not known, so its check is the ordering alone."""
    optimum = {"meanfield": optimal_gaussian(name, full=False)[0],
               "fullrank": optimal_gaussian(name, full=True)[0]}
    for spec, best in optimum.items():
        estimate, se = table[spec]
        assert abs(estimate - best) < Z * se, (spec, table[spec], best)
    estimate, se = table["flow"]
    assert estimate + Z * se < optimum["fullrank"], (table["flow"], optimum)


# Exact optima of the Gaussian families (optimal_gaussian): banana 0.776 (mean field),
# 0.561 (full rank); funnel 1.312, 0.852. Seed 0 measured (KL_DRAWS draws, se <= 0.009):
# banana 0.775, 0.562, flow 0.112; funnel 1.312, 0.852, flow 0.011. The fitted Gaussians'
# exact KLs (gaussian_kl) were 0.0004-0.027 nats above their optima on seeds 0-2 (banana)
# and 0-1 (funnel), the largest mean field's on the banana at seed 1 (4 se there: 0.033).


@pytest.mark.slow
def test_kl_banana_each_family_at_its_optimum_and_flow_below_gaussians():
    assert_near_the_optimum_and_ordered(kl_table(banana()), "banana")


@pytest.mark.slow
def test_kl_funnel_each_family_at_its_optimum_and_flow_below_gaussians():
    assert_near_the_optimum_and_ordered(kl_table(funnel()), "funnel")


if __name__ == "__main__":
    seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
    for name, errors in (("fullrank regression", regression_errors),
                         ("lowrank:2 gaussian", lowrank_errors)):
        for seed in seeds:
            m, c = errors(seed)
            print(f"{name} seed {seed}: max|mean err| {np.abs(m).max():.4f} "
                  f"max|cov err| {np.abs(c).max():.4f} rms {np.sqrt(np.mean(c ** 2)):.4f}",
                  flush=True)
    for name, target in (("banana", banana()), ("funnel", funnel())):
        print(name, "optima (mean field, full rank)", optimal_gaussian(name, full=False)[0],
              optimal_gaussian(name, full=True)[0], "fits", kl_table(target), flush=True)
