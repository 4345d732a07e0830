"""The control variate of mean field's gradient (control.py): exact on a Gaussian, unbiased
elsewhere, and switched off row by row where the Hessian says nothing of the gradient."""
import autograd.numpy as anp
import numpy as np

from ppl.guides import MEAN_FIELD
from ppl.infer import control
from ppl.infer.elbo import make_objective
from ppl.infer.precondition import Coordinates, LowRank, whiten

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
    assert_noiseless(log_joint, precision, theta, matrix, rng, atol=1e-10)


def assert_noiseless(log_joint, precision, theta, matrix, rng, atol):
    """At the Gaussian's mean the ELBO's gradient is 0 for mu and -P_ii sigma_i^2 + 1 for log
    sigma_i: the plain gradient misses it at 1 and 5 draws, the corrected one hits it."""
    D = precision.shape[0]
    sigma = np.exp(theta[D:])
    exact = -np.concatenate([np.zeros(D), -np.diag(precision) * sigma ** 2 + 1])
    for S in (1, 5):
        eps = rng.standard_normal((S, D))
        plain = loss(log_joint)(theta, eps)[1]
        assert not np.allclose(plain, exact, atol=1e-3)
        assert np.allclose(control.corrected(plain, theta, eps, matrix), exact, atol=atol)


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


def low_rank_gaussian(rng, D=40, k=3):
    """A Gaussian whose precision is diag(1 / s^2) but for k directions (in s-scaled
    coordinates, U orthonormal): exactly what a low-rank whitening of rank k holds."""
    s = rng.uniform(0.5, 2.0, D)
    U = np.linalg.qr(rng.normal(size=(D, k)))[0]
    lam = rng.uniform(3.0, 30.0, k)            # the directions' curvatures, in s units
    precision = (np.eye(D) + (U * (lam - 1.0)) @ U.T) / np.outer(s, s)
    m = rng.normal(size=D)
    log_joint = (lambda z: -0.5 * anp.sum(((z - m) @ precision) * (z - m), axis=1))
    return log_joint, precision, m, LowRank(s, U, 1.0 / np.sqrt(lam))


def test_a_low_rank_control_is_the_inverse_of_its_whitenings_l_l_t(rng):
    _, _, _, L = low_rank_gaussian(rng)
    D = L.scale.size
    unit = control.LowRankControl(np.ones(D), L.scale, L.U, L.root ** -2.0 - 1.0)
    dense = L.matrix()
    B = -np.linalg.inv(dense @ dense.T)
    d = rng.normal(size=(6, D))
    assert np.allclose(unit.apply(d), d @ B, rtol=1e-10, atol=1e-12)
    assert np.allclose(unit.diagonal(), np.diagonal(B), rtol=1e-10)
    rows = rng.uniform(0, 1, D)
    scaled = control.LowRankControl(rows, L.scale, L.U, L.root ** -2.0 - 1.0)
    assert np.allclose(scaled.apply(d), rows * (d @ B), rtol=1e-10, atol=1e-12)


def test_on_a_gaussian_its_low_rank_whitening_holds_the_control_is_exact(rng):
    # the mean field's sds at the rest's 1 / s: the draws' gradients are affine, each row's
    # coefficient exactly 1, and the corrected gradient at the mean has no noise
    log_joint, precision, m, L = low_rank_gaussian(rng)
    D = m.size
    theta = np.concatenate([m, np.log(L.scale) + rng.normal(0, 0.2, D)])
    low = control.matrix(log_joint, theta, L, rng.standard_normal((20, D)))
    assert isinstance(low, control.LowRankControl) and np.allclose(low.rows, 1.0, atol=1e-8)
    assert_noiseless(log_joint, precision, theta, low, rng, atol=1e-9)


def test_a_low_rank_control_that_leaves_most_of_the_noise_is_refused(rng):
    # pairs at correlation 0.9 that the whitening knows nothing of (its directions are
    # another Gaussian's): three quarters of the rows keep 92-99% of their noise (seeds 0-9
    # of this setup), and the variate (with the shorter rule it would bring, advi._run) is
    # refused; on the Gaussian the whitening holds it leaves none
    log_joint, precision, m, L = low_rank_gaussian(rng)
    D = m.size
    pair = np.linalg.inv(np.array([[1.0, 0.9], [0.9, 1.0]]))
    correlated = np.kron(np.eye(D // 2), pair) / np.outer(L.scale, L.scale)
    # at mean field's optimum of the pairs: sd s sqrt(1 - 0.9^2)
    theta = np.concatenate([m, np.log(L.scale * np.sqrt(1 - 0.81))])

    def paired(z):
        return -0.5 * anp.sum(((z - m) @ correlated) * (z - m), axis=1)
    assert control.matrix(paired, theta, L, rng.standard_normal((20, D))) is None
    assert control.matrix(log_joint, theta, L, rng.standard_normal((20, D))) is not None
