"""The richer families against exact answers: full-rank and low-rank covariances of Gaussian
posteriors, and KL(q || p) of every family on a banana and a funnel with known normalization.

Errors are optimizer jitter only (compared on the guides' own parameters, no draws), measured
once across seeds by running this file (``python tests/stats/test_families.py``), which prints
per check the largest error of each seed; tolerances are z = 4 times the jitter sd below.
"""
import sys

import autograd.numpy as anp
import numpy as np
import pytest

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


def banana():
    """x0 ~ N(0, 1), x1 | x0 ~ N(x0^2 - 1, 0.5), then rotated by 30 degrees and scaled."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    A = np.array([[c, -s], [s, c]]) @ np.diag([1.0, 2.0])
    return Target(_mapped(lambda x: _normal(x[:, 0], 0.0, 1.0)
                          + _normal(x[:, 1], x[:, 0] ** 2 - 1.0, 0.5), A), 2)


def funnel():
    """Neal's funnel in 5-D with v ~ N(0, 1.5) (x_i | v ~ N(0, exp(v / 2))), then mapped by a
    fixed unit-triangular A (det 1) that correlates the coordinates."""
    A = np.eye(5) + np.tril(np.full((5, 5), 0.5), -1)
    return Target(_mapped(lambda x: _normal(x[:, 0], 0.0, 1.5)
                          + anp.sum(_normal(x[:, 1:], 0.0, anp.exp(x[:, :1] / 2)), axis=1),
                          A), 5)


KL_DRAWS = 20_000


def kl(target, spec, seed=0):
    """(KL(q || p) estimate, its Monte Carlo standard error) for the fitted family."""
    result = fit(target, FitOptions(guide=spec, seed=seed), np.random.default_rng(seed))
    zeta = result.guide.sample(result.theta, np.random.default_rng([seed, 5]), KL_DRAWS)
    gap = result.guide.log_q(result.theta, zeta) - target.log_joint(zeta)
    return float(np.mean(gap)), float(np.std(gap) / np.sqrt(KL_DRAWS))


def kl_table(target, seed=0):
    return {spec: kl(target, spec, seed) for spec in ("meanfield", "fullrank", "flow")}


def assert_ordered(table, margins):
    """KL decreases mean field -> full rank -> flow by at least the stated margins, beyond
    z = 4 standard errors of each difference (the draws are independent between fits)."""
    (kl_mf, se_mf), (kl_fr, se_fr), (kl_flow, se_flow) = (
        table["meanfield"], table["fullrank"], table["flow"])
    assert kl_mf - kl_fr > margins[0] + Z * np.hypot(se_mf, se_fr), table
    assert kl_fr - kl_flow > margins[1] + Z * np.hypot(se_fr, se_flow), table


# Measured with seed 0 (the module's main, and benchmarks/flow_architectures.py for the flow):
# KL of mean field, full rank, flow (se <= 0.009): banana 0.770, 0.560, 0.480; funnel 1.307,
# 0.857, 0.047 (the default IAF flow; RealNVP coupling gave 0.259 and 0.306). The margins
# asserted are about half of the measured gaps, rounded down. (Flow figures measured with
# 5 draws per step in the flow's phase and 4 layers; the tests pass with today's defaults:
# 2 layers, the path gradient, 60 draws (Flow.draws_scale), the default window
# (Flow.window_scale) and the mean-field warm start with half its window.)
BANANA_MARGINS = (0.1, 0.04)
FUNNEL_MARGINS = (0.2, 0.4)


@pytest.mark.slow
def test_kl_banana_flow_below_fullrank_below_meanfield():
    assert_ordered(kl_table(banana()), BANANA_MARGINS)


@pytest.mark.slow
def test_kl_funnel_flow_below_fullrank_below_meanfield():
    assert_ordered(kl_table(funnel()), FUNNEL_MARGINS)


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
        print(name, kl_table(target), flush=True)
