"""Whitened coordinates for the guide's mean: Hessians, the whitening, and what it buys."""
import autograd.numpy as anp
import numpy as np
from autograd import hessian

from ppl.infer import advi
from ppl.options import FitOptions
from ppl.infer.precondition import Coordinates, expected_hessian, whiten

from .test_advi import Stub


def correlated_gaussian(mean, cov):
    precision = np.linalg.inv(cov)
    return Stub(lambda z: -0.5 * anp.sum(((z - mean) @ precision) * (z - mean), axis=1),
                len(mean))


def test_expected_hessian_is_the_mean_of_the_draws_hessians(rng):
    def log_joint(z):  # non-quadratic, so each draw has its own Hessian
        return -anp.sum(anp.cosh(z) * anp.roll(z, 1, axis=1) ** 2, axis=1)
    zeta = rng.normal(size=(7, 4))
    exact = -np.mean([hessian(lambda x: log_joint(x[None])[0])(z) for z in zeta], axis=0)
    assert np.allclose(expected_hessian(log_joint, zeta), exact, rtol=1e-10, atol=1e-12)


def test_whitening_turns_the_hessian_into_the_identity(rng):
    A = rng.normal(size=(5, 5))
    H = A @ A.T + 0.1 * np.eye(5)
    coords = whiten(rng.normal(size=10), H)
    assert np.allclose(coords.L.T @ H @ coords.L, np.eye(5), atol=1e-10)


def test_whitening_of_an_indefinite_or_broken_hessian_stays_bounded():
    coords = whiten(np.zeros(4), np.diag([4.0, -1.0]))  # curvature magnitudes are kept
    assert np.allclose(coords.L @ coords.L.T, np.diag([0.25, 1.0]))
    assert whiten(np.zeros(4), np.full((2, 2), np.nan)).L is None


def test_coordinates_round_trip_and_chain_rule(rng):
    A = rng.normal(size=(3, 3))
    coords = whiten(rng.normal(size=6), A @ A.T + np.eye(3))
    theta = rng.normal(size=6)
    assert np.allclose(coords.to_theta(coords.from_theta(theta)), theta)
    # d/dparams of f(to_theta(params)) for a linear f(theta) = c . theta is L^T c, c
    c, params, h = rng.normal(size=6), rng.normal(size=6), 1e-6
    numeric = [(c @ coords.to_theta(params + h * e) - c @ coords.to_theta(params - h * e)) / (2 * h)
               for e in np.eye(6)]
    assert np.allclose(coords.pull_gradient(c), numeric, rtol=1e-6)
    assert Coordinates(np.zeros(3)).to_theta(theta) is theta


def test_whitening_finds_the_mean_of_a_highly_correlated_posterior():
    # Correlation -0.99999 and scales 1e3 apart (like posteriordb kilpisjarvi). For a Gaussian
    # target the mean-field optimum has exactly the posterior mean, and its sds are
    # 1 / sqrt(diag(precision)). Tolerances: the returned mu averages 2 windows of 100 steps
    # with 5 draws each, an error of about 1 / sqrt(1000) = 0.03 mean-field sds; z = 4 -> 0.13.
    mean = np.array([-60.0, 0.0175])
    sd, rho = np.array([30.0, 0.0075]), -0.99999
    cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
    target = correlated_gaussian(mean, cov)
    meanfield_sd = 1 / np.sqrt(np.diag(np.linalg.inv(cov)))
    fit = advi.fit(target, FitOptions(seed=0), np.random.default_rng(0))
    assert fit.converged
    assert np.all(np.abs(fit.mu - mean) / meanfield_sd < 0.13)
    assert np.allclose(np.exp(fit.log_sigma), meanfield_sd, rtol=0.13)
    # Without whitening the same budget leaves the mean thousands of mean-field sds away.
    plain = advi.fit(target, FitOptions(seed=0, precondition="none"), np.random.default_rng(0))
    assert np.max(np.abs(plain.mu - mean) / meanfield_sd) > 100
