"""Newton steps at the first whitening (ppl/infer/newton.py): where they land, when they run,
and what they change in a fit."""
from __future__ import annotations

import json
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad

import ppl
from ppl.guides import MEAN_FIELD
from ppl.infer import newton, schedule
from ppl.infer.precondition import Coordinates, estimate

MODELS = Path(__file__).resolve().parents[2] / "models"

# A Gaussian target with correlations up to -0.99: N(m, P^-1)
M_TRUE = np.array([1.0, -2.0, 0.5])
COV = np.array([[1.0, -0.99, 0.3], [-0.99, 1.0, -0.2], [0.3, -0.2, 4.0]])
P = np.linalg.inv(COV)


def gaussian(zeta):
    d = zeta - M_TRUE
    return -0.5 * anp.sum((d @ P) * d, axis=1)


def _whitened(log_joint, theta, eps):
    D = eps.shape[1]
    return estimate(log_joint, theta, MEAN_FIELD.draw(theta, eps), np.exp(theta[D:]))


def test_one_step_lands_on_the_mean_field_optimum_of_a_gaussian():
    # The mean-field optimum of N(m, P^-1) is mu = m, sigma_i = P_ii^-1/2. With antithetic
    # draws (mean of eps 0) the draws' gradient is -P (mu - m) exactly, and the whitening's
    # central differences of a quadratic are P exactly, so one step lands there up to rounding
    # and the next finds nothing to do.
    half = np.random.default_rng(0).standard_normal((10, 3))
    eps = np.concatenate([half, -half])
    theta = np.concatenate([M_TRUE + 40 * np.sqrt(np.diag(COV)), np.full(3, np.log(0.1))])
    fitted, coords, taken = newton.newton_steps(gaussian, MEAN_FIELD, theta, eps,
                                                _whitened(gaussian, theta, eps), None)
    assert taken == 1
    np.testing.assert_allclose(fitted[:3], M_TRUE, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fitted[3:], -0.5 * np.log(np.diag(P)), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(coords.m0, fitted[:3])
    np.testing.assert_allclose(coords.L @ coords.L.T, COV, rtol=1e-9, atol=1e-12)


def test_a_guide_near_its_optimum_is_left_as_it_was():
    # At the optimum the whitened gradient of 20 draws is noise of size sqrt(D / 20) at most;
    # the steps run from 3 times that, so nothing moves and the very same objects come back
    eps = np.random.default_rng(1).standard_normal((20, 3))
    theta = np.concatenate([M_TRUE, -0.5 * np.log(np.diag(P))])
    coords = _whitened(gaussian, theta, eps)
    fitted, kept, taken = newton.newton_steps(gaussian, MEAN_FIELD, theta, eps, coords, None)
    assert taken == 0 and fitted is theta and kept is coords


def _logistic():
    """A logistic regression with an unscaled predictor (x around 2000, as kilpisjarvi's
    years): intercept and slope correlated at about -0.99999."""
    rng = np.random.default_rng(2)
    x = 2000.0 + rng.normal(0.0, 10.0, 40)
    y = np.where(rng.random(40) < 1 / (1 + np.exp(-(x - 2000.0) / 10)), 1.0, -1.0)

    def log_joint(zeta):
        eta = zeta[:, :1] + zeta[:, 1:2] * x
        return anp.sum(-anp.logaddexp(0.0, -y * eta), axis=1) - 0.5 * anp.sum(
            zeta ** 2 / anp.array([1e6, 1.0]), axis=1)
    return log_joint


def test_steps_raise_the_elbo_on_their_draws_and_end_where_the_gradient_is_small():
    log_joint = _logistic()
    eps = np.random.default_rng(3).standard_normal((20, 2))
    theta = np.array([0.0, 0.0, np.log(0.1), np.log(0.1)])
    coords = _whitened(log_joint, theta, eps)
    fitted, coords, taken = newton.newton_steps(log_joint, MEAN_FIELD, theta, eps, coords, None)

    def elbo(th):
        return np.mean(log_joint(MEAN_FIELD.draw(th, eps))) + np.sum(th[2:])
    assert taken >= 1 and elbo(fitted) > elbo(theta)
    # the stop: the whitened gradient below the gate (3 Monte Carlo sizes), the sds settled
    v = coords.L.T @ np.mean(elementwise_grad(log_joint)(MEAN_FIELD.draw(fitted, eps)), axis=0)
    assert np.linalg.norm(v) < newton.FAR * max(1.0, np.sqrt(2 / 20))


REGRESSION = """
data N: int
data x: real[N]
data y: real[N]
sample a ~ Normal(0, 1000)
sample b ~ Normal(0, 10)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(a + b * x, sigma)
"""


@pytest.mark.slow
def test_a_far_guide_converges_sooner_to_the_same_answer(monkeypatch):
    # A regression on an unscaled predictor (x around 2000, as posteriordb kilpisjarvi's
    # years): intercept and slope correlated at about -0.99999, and the guide still far from
    # its optimum at the first whitening. The steps move only the start, so both fits end at
    # mean field's optimum. Means within 0.1 posterior sds of each other: each averaged mean is
    # within about 0.02 posterior sds of the optimum (five windows of 100 steps of 5 draws,
    # 1 / sqrt(2500); 0.012-0.027 measured in tests/stats/test_posteriors.py), so a difference
    # of two has an sd of about 0.03. Posterior sds: (a, b) given sigma is Gaussian with
    # precision Z^T Z / sigma^2 plus the prior's; log sigma's sd is about 1 / sqrt(2 N).
    rng = np.random.default_rng(4)
    x = 2000.0 + rng.normal(0.0, 10.0, 50)
    data = {"N": 50, "x": x.tolist(), "y": (1.0 + 0.05 * (x - 2000.0)
                                            + rng.normal(0.0, 0.5, 50)).tolist()}
    model = ppl.compile(REGRESSION)
    taken = []

    def counted(*args):
        out = newton.newton_steps(*args)
        taken.append(out[2])
        return out
    monkeypatch.setattr(schedule, "newton_steps", counted)
    with_steps = model.fit(data, seed=0, guide="meanfield").result
    monkeypatch.setattr(newton, "MAX_STEPS", 0)
    without = model.fit(data, seed=0, guide="meanfield").result
    assert taken[0] >= 1 and with_steps.converged and without.converged
    assert with_steps.steps < without.steps
    Z = np.stack([np.ones(50), x], axis=1)
    sigma = np.exp(without.mu[2])
    precision = Z.T @ Z / sigma ** 2 + np.diag([1e-6, 1e-2])
    sd = np.append(np.sqrt(np.diag(np.linalg.inv(precision))), 1 / np.sqrt(100))
    gap = np.abs(with_steps.mu - without.mu) / sd
    assert np.all(gap < 0.1), gap


@pytest.mark.parametrize("distance, taken", [(4.0, 0), (4.5, 1)])
def test_the_steps_run_from_three_monte_carlo_sizes_of_the_whitened_gradient(distance, taken):
    # The gate is FAR = 3 Monte Carlo sizes, each sqrt(D / M) when D > M: 3 sqrt(2) = 4.24 at
    # D = 4, M = 2. On a Gaussian with antithetic draws the whitened gradient is exact: |v| =
    # |L^T P d| = sqrt(d^T P d) for the mean's offset d (L L^T = P^-1, central differences of a
    # quadratic), so a guide 4.0 off is left, one 4.5 off lands on the optimum in one step
    # (mutation13: the gate at 3 D / M, or at 3.3 sizes, left it too)
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 4))
    precision, m = A @ A.T + np.eye(4), rng.normal(size=4)

    def log_joint(zeta):
        d = zeta - m
        return -0.5 * anp.sum((d @ precision) * d, axis=1)
    half = rng.standard_normal((1, 4))
    eps = np.concatenate([half, -half])
    d = rng.normal(size=4)
    d *= distance / np.sqrt(d @ precision @ d)
    theta = np.concatenate([m + d, -0.5 * np.log(np.diag(precision))])
    fitted, _, got = newton.newton_steps(log_joint, MEAN_FIELD, theta, eps,
                                         _whitened(log_joint, theta, eps), None)
    assert got == taken
    np.testing.assert_allclose(fitted[:4], m if taken else m + d, rtol=0, atol=1e-9)


@pytest.mark.parametrize("gap, taken", [(0.45, 1), (0.55, 2)])
def test_the_steps_go_on_while_some_sd_would_move_more_than_half_in_log(gap, taken,
                                                                        monkeypatch):
    # Scripted: the first step (a far gradient) sets log sigma to the first whitening's
    # target, 0; the next whitening's target is -gap, with a zero gradient (the mean at its
    # optimum). The steps go on while some log sigma_i would move by more than SD_SETTLED =
    # 0.5 (mutation13: stopped on the gradient alone, or at 0.6, the sds were left unsettled)
    D = 2
    shrunk = np.exp(-gap) * np.eye(D)     # diag(H) = e^(2 gap): target -gap
    calls = []
    monkeypatch.setattr(newton, "_mean_gradient",
                        lambda log_joint, zeta: np.array([100.0, 0.0]) if not calls else
                        np.zeros(D))
    monkeypatch.setattr(newton, "step", lambda log_joint, mu, log_sigma, direction, target, eps:
                        calls.append(target) or (mu + direction, target, True))
    monkeypatch.setattr(newton, "estimate", lambda log_joint, theta, *a: Coordinates(
        theta[:D].copy(), shrunk))
    theta = np.zeros(2 * D)
    fitted, _, got = newton.newton_steps(gaussian, MEAN_FIELD, theta, np.zeros((20, D)),
                                         Coordinates(np.zeros(D), np.eye(D)), None)
    assert got == taken
    np.testing.assert_allclose(fitted[D:], 0.0 if taken == 1 else -gap, rtol=0, atol=1e-12)


def test_the_line_search_takes_the_first_maximum_along_the_halvings():
    # Scripted values along the ray: t = 1 worse than the start, 1/2 better, 1/4 worse than
    # 1/2 (the search stops there), 1/8 better still: 1/2, from four evaluations (mutation13:
    # searching on past the first decrease gave 1/8, quarter steps 1/4)
    table = {0.0: 0.0, 1.0: -10.0, 0.5: 1.0, 0.25: 0.5, 0.125: 2.0}
    calls = []

    def log_joint(zeta):
        calls.append(float(zeta[0, 0]))
        return np.array([table.get(float(zeta[0, 0]), -100.0)])
    t = newton.line_search(log_joint, np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1),
                           np.zeros((1, 1)))
    assert t == 0.5 and calls == [0.0, 1.0, 0.5, 0.25]
