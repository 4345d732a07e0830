"""MeanField: initial parameters, reparameterized draws, closed-form entropy, log q."""
import numpy as np
import pytest
import scipy.stats

from ppl.guides import MEAN_FIELD

THETAS = [
    np.array([0.0, 0.0]),                                   # D = 1, standard normal
    np.array([1.0, -2.0, 3.0, np.log(0.5), 0.0, np.log(4.0)]),
]


def test_init_is_origin_with_init_scale():
    theta = MEAN_FIELD.init(3, 0.1)
    mu, log_sigma = MEAN_FIELD.split(theta)
    assert theta.shape == (6,) and theta.dtype == np.float64
    np.testing.assert_array_equal(mu, np.zeros(3))
    np.testing.assert_allclose(np.exp(log_sigma), 0.1)


@pytest.mark.parametrize("theta", THETAS)
def test_draw_is_mu_plus_sigma_eps(theta, rng):
    mu, log_sigma = MEAN_FIELD.split(theta)
    eps = rng.standard_normal((7, mu.size))
    np.testing.assert_allclose(MEAN_FIELD.draw(theta, eps), mu + np.exp(log_sigma) * eps)


@pytest.mark.parametrize("theta", THETAS)
def test_entropy_matches_scipy(theta):
    mu, log_sigma = MEAN_FIELD.split(theta)
    expected = np.sum(scipy.stats.norm(mu, np.exp(log_sigma)).entropy())
    np.testing.assert_allclose(MEAN_FIELD.entropy(theta), expected, rtol=1e-12)


@pytest.mark.parametrize("theta", THETAS)
def test_entropy_matches_monte_carlo(theta, rng):
    # -E[log q] from n draws; tolerance z = 4 Monte Carlo standard errors
    n = 20_000
    log_q = MEAN_FIELD.log_q(theta, MEAN_FIELD.sample(theta, rng, n))
    se = np.std(log_q) / np.sqrt(n)
    assert abs(-np.mean(log_q) - MEAN_FIELD.entropy(theta)) < 4 * se


@pytest.mark.parametrize("theta", THETAS)
def test_log_q_matches_scipy(theta, rng):
    mu, log_sigma = MEAN_FIELD.split(theta)
    zeta = rng.standard_normal((5, mu.size)) * 3
    expected = scipy.stats.norm(mu, np.exp(log_sigma)).logpdf(zeta).sum(axis=1)
    np.testing.assert_allclose(MEAN_FIELD.log_q(theta, zeta), expected, rtol=1e-12)


def test_sample_shape_and_moments(rng):
    theta = THETAS[1]
    mu, log_sigma = MEAN_FIELD.split(theta)
    n = 40_000
    draws = MEAN_FIELD.sample(theta, rng, n)
    assert draws.shape == (n, 3)
    # means within z = 4 standard errors sigma / sqrt(n)
    sigma = np.exp(log_sigma)
    assert np.all(np.abs(draws.mean(axis=0) - mu) < 4 * sigma / np.sqrt(n))
