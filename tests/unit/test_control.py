"""The control variate of mean field's gradient (control.py): exact on a Gaussian, unbiased
elsewhere, and switched off row by row where the Hessian says nothing of the gradient."""
import autograd.numpy as anp
import numpy as np

from ppl.guides import MEAN_FIELD
from ppl.infer import control
from ppl.infer.elbo import make_objective
from ppl.infer.precondition import Coordinates, whiten

D = 3


def gaussian(rng):
    A = rng.normal(size=(D, D))
    precision = A @ A.T + 0.5 * np.eye(D)
    m = rng.normal(size=D)
    return (lambda z: -0.5 * anp.sum(((z - m) @ precision) * (z - m), axis=1)), precision, m


def loss(log_joint):
    objective = make_objective(log_joint, MEAN_FIELD)

    def minus(theta, eps):
        value, gradient = objective(theta, eps)
        return -value, -gradient
    return minus


def test_on_a_gaussian_the_coefficients_are_one_and_the_gradient_has_no_noise(rng):
    log_joint, precision, m = gaussian(rng)
    theta = np.concatenate([m, rng.normal(0, 0.3, D)])   # at the mean: no noise left at all
    L = whiten(theta, precision).L
    matrix = control.matrix(log_joint, theta, L, rng.standard_normal((20, D)))
    # g is affine in the draw, so each row's regression coefficient is exactly 1: a B = -P
    assert np.allclose(matrix, -precision, rtol=1e-8)
    # the ELBO's gradient at the mean: 0 for mu; -P_ii sigma_i^2 + 1 for log sigma_i
    sigma = np.exp(theta[D:])
    exact = -np.concatenate([np.zeros(D), -np.diag(precision) * sigma ** 2 + 1])
    for S in (1, 5):
        eps = rng.standard_normal((S, D))
        plain = loss(log_joint)(theta, eps)[1]
        assert not np.allclose(plain, exact, atol=1e-3)
        assert np.allclose(control.corrected(plain, theta, eps, matrix), exact, atol=1e-10)


def test_the_corrected_gradient_has_the_plain_ones_expectation(rng):
    # log p far from quadratic, with a matrix that is not its Hessian: the correction's mean
    # over N draws is 0 within its Monte Carlo error. Each coordinate is held to 4 standard
    # errors of that mean (the sample sd of the per-draw corrections over sqrt(N)): 8
    # coordinates at 4 se, a false alarm about 5e-4 of the time.
    def log_joint(z):
        return -anp.sum(anp.cosh(z) + 0.3 * z * anp.roll(z, 1, axis=1), axis=1)
    theta = np.concatenate([rng.normal(size=4), rng.normal(0, 0.3, size=4)])
    A = rng.normal(size=(4, 4))
    matrix = -(A @ A.T) * rng.uniform(0, 1, size=(4, 1))
    N = 20_000
    eps = rng.standard_normal((N, 4))
    gradients = np.zeros((N, 8))
    per_draw = np.array([control.corrected(gradients[0], theta, eps[i:i + 1], matrix)
                         for i in range(N)])
    mean, se = per_draw.mean(axis=0), per_draw.std(axis=0, ddof=1) / np.sqrt(N)
    assert np.all(se > 0) and np.all(np.abs(mean) < 4 * se)
    # row i of the matrix is coordinate i's control (rows are scaled by their coefficients,
    # so the matrix is not symmetric): the mean's part is the mean of matrix @ d
    d = np.exp(theta[4:]) * eps[:3]
    assert np.allclose(control.corrected(gradients[0], theta, eps[:3], matrix)[:4],
                       np.mean([matrix @ row for row in d], axis=0))
    # and the batch form is the mean of the draws' own
    assert np.allclose(control.corrected(gradients[0], theta, eps[:7], matrix),
                       per_draw[:7].mean(axis=0))


def test_a_row_the_hessian_does_not_predict_gets_no_correction(rng):
    # coordinate 0's gradient is even in z0 (-z0^2), coordinate 1's linear: on draws in +-
    # pairs about mu0 = 0 the first row's sample covariance with its control is exactly 0, so
    # is its coefficient, and the second's is exactly 1
    def log_joint(z):
        return -z[:, 0] ** 3 / 3 - 0.5 * z[:, 1] ** 2
    theta = np.array([0.0, 0.4, -1.0, -0.2])
    half = rng.standard_normal((10, 2))
    matrix = control.matrix(log_joint, theta, np.eye(2), np.concatenate([half, -half]))
    assert np.allclose(matrix, [[0.0, 0.0], [0.0, -1.0]], atol=1e-12)


def test_coordinates_take_the_control_out_before_the_chain_rule(rng):
    log_joint, precision, m = gaussian(rng)
    theta = np.concatenate([m + 0.2, rng.normal(0, 0.3, D)])
    L = whiten(theta, precision).L
    matrix = control.matrix(log_joint, theta, L, rng.standard_normal((20, D)))
    eps = rng.standard_normal((5, D))
    plain = loss(log_joint)(theta, eps)[1]
    controlled = Coordinates(theta[:D], L, matrix)
    expected = Coordinates(theta[:D], L).pull_gradient(
        control.corrected(plain, theta, eps, matrix))
    assert np.allclose(controlled.pull_gradient(plain, theta, eps), expected)
    assert np.allclose(Coordinates(theta[:D], L).pull_gradient(plain, theta, eps),
                       Coordinates(theta[:D], L).pull_gradient(plain))
