"""Minibatch ADVI (--batch) against an exact posterior: the convergence rule under batch noise
(schedule_batch.BatchConvergence; docs/minibatch.md)."""
import numpy as np
import pytest

import ppl
from ppl.infer.schedule_batch import average_se

REGRESSION = """
data N: int
data X: real[N, 2]
data y: real[N]
sample a ~ Normal(0, 5)
sample b: real[2] ~ Normal(0, 5)
observe y ~ Normal(a + X @ b, 0.5)
"""


@pytest.mark.slow
def test_minibatch_fit_reaches_the_exact_mean_field_optimum():
    # Normal-Normal regression with a known noise sd: the posterior of (a, b) is Gaussian with
    # precision L = Z'Z / 0.25 + I / 25 (Z = [1, X]) and mean L^-1 Z'y / 0.25, and the
    # mean-field optimum is exact: means equal to the posterior means, sds 1 / sqrt(L_ii).
    # N = 2000 rows in batches of B = 100 (a step's gradient is about sqrt(N / B) = 4.5
    # posterior sds off on the means). The rule stops when its estimate of the Monte Carlo
    # standard error of the averaged guide is at most average_se(tol) = 0.1 guide sds (log sds
    # in absolute units) for every coordinate, so each error is allowed 3 of those standard
    # errors (a normal error beyond that has probability 0.3%; the estimates at the stop were
    # 0.05-0.1). Measured over seeds 0-9: mean errors at most 0.27 sds (0.18 at seed 0), log
    # sd errors at most 0.05; advi's rule alone (before this one) left 0.38 sds at seed 0.
    rng = np.random.default_rng(0)
    N, B = 2000, 100
    X = rng.standard_normal((N, 2))
    y = 0.3 + X @ [1.0, -2.0] + 0.5 * rng.standard_normal(N)
    Z = np.column_stack([np.ones(N), X])
    precision = Z.T @ Z / 0.25 + np.eye(3) / 25
    mean = np.linalg.solve(precision, Z.T @ y / 0.25)
    sd = 1 / np.sqrt(np.diag(precision))
    fit = ppl.compile(REGRESSION).fit({"N": N, "X": X, "y": y}, guide="meanfield",
                                      correct="none", batch={"N": B}, seed=0)
    assert fit.converged
    bound = 3 * average_se(1e-3)
    np.testing.assert_array_less(np.abs(fit.result.mu - mean) / sd, bound)
    np.testing.assert_array_less(np.abs(fit.result.log_sigma - np.log(sd)), bound)
