"""ELBO estimates and gradients against a Gaussian target, where everything has a closed form.

Target: log p(z) = -1/2 (z - m)^T P (z - m) (a full precision matrix P, unnormalized). For the
mean-field guide N(mu, diag(sigma^2)):
    ELBO = -1/2 [(mu - m)^T P (mu - m) + sum_i P_ii sigma_i^2] + sum log sigma + D/2 (1 + log 2pi)
    dELBO/dmu = -P (mu - m),    dELBO/dlog sigma_i = 1 - P_ii sigma_i^2.
"""
import autograd.numpy as anp
import numpy as np
import pytest

from ppl.infer.elbo import elbo, elbo_and_grad, make_objective
from ppl.guides import MEAN_FIELD

M = np.array([1.0, -2.0, 0.5])
P = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
THETA = np.array([0.3, -1.0, 1.5, np.log(0.8), np.log(1.3), np.log(0.4)])


def log_target(zeta):
    d = zeta - M
    return -0.5 * anp.sum((d @ P) * d, axis=1)


def exact_elbo(theta):
    mu, log_sigma = theta[:3], theta[3:]
    d = mu - M
    return (-0.5 * (d @ P @ d + np.sum(np.diag(P) * np.exp(2 * log_sigma)))
            + np.sum(log_sigma) + 1.5 * (1 + np.log(2 * np.pi)))


def exact_grad(theta):
    mu, log_sigma = theta[:3], theta[3:]
    return np.concatenate([-P @ (mu - M), 1 - np.diag(P) * np.exp(2 * log_sigma)])


def test_elbo_is_mean_log_joint_plus_entropy(rng):
    eps = rng.standard_normal((4, 3))
    zeta = MEAN_FIELD.draw(THETA, eps)
    expected = np.mean(log_target(zeta)) + MEAN_FIELD.entropy(THETA)
    np.testing.assert_allclose(elbo(log_target, THETA, eps), expected, rtol=1e-12)


@pytest.mark.parametrize("stl", [False, True])
def test_value_is_the_closed_form_entropy_estimate(stl, rng):
    eps = rng.standard_normal((4, 3))
    value, grad = elbo_and_grad(log_target, THETA, eps, stl=stl)
    np.testing.assert_allclose(value, elbo(log_target, THETA, eps), rtol=1e-12)
    assert grad.shape == (6,)


@pytest.mark.parametrize("stl", [False, True])
def test_elbo_estimate_is_unbiased(stl, rng):
    # mean of n single-draw estimates vs the closed form, within z = 4 standard errors
    n = 4000
    values = np.array([elbo_and_grad(log_target, THETA, rng.standard_normal((1, 3)), stl=stl)[0]
                       for _ in range(n)])
    se = values.std() / np.sqrt(n)
    assert abs(values.mean() - exact_elbo(THETA)) < 4 * se


@pytest.mark.parametrize("stl", [False, True])
def test_gradient_estimate_is_unbiased(stl, rng):
    # each coordinate's mean of n single-draw estimates within z = 4 standard errors of the
    # exact gradient (n = 4000: about 6e-5 false alarms per coordinate)
    n = 4000
    objective = make_objective(log_target, stl=stl)
    grads = np.array([objective(THETA, rng.standard_normal((1, 3)))[1] for _ in range(n)])
    se = grads.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(grads.mean(axis=0) - exact_grad(THETA)) < 4 * se)


def test_stl_gradient_is_zero_at_the_exact_posterior(rng):
    # With a diagonal P the posterior is in the family: q = p up to a constant, so the STL
    # gradient is exactly zero for every draw (zero variance), while the standard one is not.
    precision = np.array([4.0, 1.0, 0.25])

    def log_p(zeta):
        return -0.5 * anp.sum(precision * (zeta - M) ** 2, axis=1)

    theta = np.concatenate([M, -0.5 * np.log(precision)])
    for _ in range(20):
        eps = rng.standard_normal((3, 3))
        _, stl_grad = elbo_and_grad(log_p, theta, eps, stl=True)
        np.testing.assert_allclose(stl_grad, 0.0, atol=1e-12)
    _, plain = elbo_and_grad(log_p, theta, rng.standard_normal((3, 3)))
    assert np.max(np.abs(plain)) > 1e-3
