"""Whitened coordinates for the guide's mean: Hessians, the whitening, and what it buys."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import hessian, jacobian
from autograd.tracer import isbox

from ppl.infer import advi
from ppl.options import FitOptions
from ppl.infer.precondition import (EIGEN_FLOOR, FD_STEP, HESSIAN_STEP, PRODUCT_DRAWS, RANK, WHOLE_MAX_DIM,
                                    Coordinates, Frame, LowRank,
                                    difference_hessian, estimate, expected_hessian, lanczos,
                                    scaled_hessian_product, whiten, whiten_low_rank)

from .test_advi import Stub, compiled


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
    # no curvature at all (a flat log density): the identity, not L = V / 0 (mutation13)
    assert whiten(np.zeros(4), np.zeros((2, 2))).L is None


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


def gaussian_with_known_directions(rng, D, values):
    """(log_joint, mean [D], sd [D], H [D, D], V [D, k]) of a Gaussian whose Hessian, scaled by
    sd (P = S H S), is the identity plus k orthonormal directions V with eigenvalues ``values``."""
    V = np.linalg.qr(rng.normal(size=(D, len(values))))[0]
    P = np.eye(D) + V @ np.diag(np.asarray(values) - 1.0) @ V.T
    sd = np.exp(rng.normal(scale=2.0, size=D))          # scales e^+-4 apart
    H = P / np.outer(sd, sd)
    mean = rng.normal(size=D)
    def log_joint(z):
        return -0.5 * anp.sum(((z - mean) @ H) * (z - mean), axis=1)
    return log_joint, mean, sd, H, V


def test_low_rank_estimate_is_exact_on_known_directions(rng):
    # P = I + three directions (a long valley at 1e-5, a pull at 300, one at 0.3): its Krylov
    # space from any start is at most 4-dimensional, so Lanczos spans it exactly (through a
    # breakdown) and L^T H L is the identity to rounding, with D = 200 well above RANK.
    D = 200
    log_joint, mean, sd, H, V = gaussian_with_known_directions(rng, D, [1e-5, 300.0, 0.3])
    draws = mean + sd * rng.normal(size=(20, D))
    coords = estimate(log_joint, np.concatenate([mean, np.zeros(D)]), draws, sd)
    assert isinstance(coords.L, LowRank) and coords.L.U.shape == (D, RANK)
    L = coords.matrix()   # a square factor with the coordinates' L L^T
    assert np.allclose(L.T @ H @ L, np.eye(D), atol=1e-7)
    # the known directions are among the Ritz vectors, with their eigenvalues
    found = np.abs(V.T @ coords.L.U) > 1 - 1e-8
    assert found.sum(axis=1).tolist() == [1, 1, 1]
    assert np.allclose(np.sort(coords.L.root[found.any(axis=0)] ** -2.0),
                       [1e-5, 0.3, 300.0], rtol=1e-6)


def test_low_rank_products_average_over_the_first_draws_only(rng):
    # Each product is one gradient of 2 x PRODUCT_DRAWS draws (the first ones given, so the
    # estimate is that of those draws alone), RANK of them; a quadratic's Hessian is the same
    # at every draw, so the Ritz values are those of all the draws.
    D = 2 * WHOLE_MAX_DIM
    log_joint, mean, sd, H, V = gaussian_with_known_directions(rng, D, [1e-3, 50.0])
    draws = mean + sd * rng.normal(size=(2 * PRODUCT_DRAWS, D))
    sizes = []
    def counted(z):
        if isbox(z):
            sizes.append(z.shape[0])
        return log_joint(z)
    theta = np.concatenate([mean, np.zeros(D)])
    coords = estimate(counted, theta, draws, sd)
    assert sizes == [2 * PRODUCT_DRAWS] * RANK
    assert np.array_equal(coords.L.U, estimate(log_joint, theta, draws[:PRODUCT_DRAWS], sd).L.U)
    assert np.allclose(np.sort(coords.L.root ** -2.0)[[0, -1]], [1e-3, 50.0], rtol=1e-6)


def test_only_low_rank_coordinates_keep_the_step_size(rng):
    # a LowRank moves the mean in guide sds, so the fit keeps its step size (advi._run); a dense
    # L has unit curvature whatever the model's scale, and identity coordinates are the model's
    D = 2 * WHOLE_MAX_DIM
    log_joint, mean, sd, _, _ = gaussian_with_known_directions(rng, D, [1e-3])
    draws = mean + sd * rng.normal(size=(5, D))
    assert estimate(log_joint, np.concatenate([mean, np.zeros(D)]), draws, sd).keeps_step_size
    assert not whiten(np.zeros(4), np.eye(2)).keeps_step_size
    assert not Coordinates(np.zeros(2)).keeps_step_size


def test_lanczos_finds_both_ends_of_a_spread_spectrum(rng):
    # 496 eigenvalues in [0.5, 2] plus two far above and two far below (condition 1e7). The top
    # ones are separated by gaps as large as the spread and converge to rounding in RANK steps;
    # the bottom ones' gap is 5e-4 of the spread, so their Ritz values are only near (Kaniel-
    # Paige). What the whitening needs holds either way: L^T P L has the bulk's spectrum.
    D = 500
    bulk = rng.uniform(0.5, 2.0, D - 4)
    spectrum = np.concatenate([bulk, [1e3, 1e2, 1e-3, 1e-4]])
    Q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    P = (Q * spectrum) @ Q.T
    values, vectors = lanczos(lambda x: P @ x, rng.normal(size=D), RANK)
    assert vectors.shape == (D, RANK)
    assert np.allclose(vectors.T @ vectors, np.eye(RANK), atol=1e-10)
    assert np.allclose(values[-2:], [1e2, 1e3], rtol=1e-10)
    assert np.allclose(values[:2], [1e-4, 1e-3], rtol=0.1)
    L = whiten_low_rank(np.zeros(D), np.ones(D), values, vectors).matrix()
    whitened = np.linalg.eigvalsh(L.T @ P @ L)
    # within 1% of the bulk's ends (a Ritz value's relative error becomes the whitened one's)
    assert bulk.min() * 0.99 < whitened.min() and whitened.max() < bulk.max() * 1.01


def test_low_rank_coordinates_round_trip_and_chain_rule(rng):
    D, k = 30, 4
    U = np.linalg.qr(rng.normal(size=(D, k)))[0]
    low = LowRank(np.exp(rng.normal(size=D)), U, np.exp(rng.normal(size=k)))
    coords = Coordinates(rng.normal(size=D), low)
    theta = rng.normal(size=2 * D)
    params = coords.from_theta(theta)
    assert params.shape == (k + 2 * D,)
    assert np.allclose(coords.to_theta(params), theta)
    # L as a [D, k + D] matrix, column by column; the square factor has the same L L^T
    L = np.stack([low.apply(e) for e in np.eye(k + D)], axis=1)
    assert np.allclose(L @ L.T, coords.matrix() @ coords.matrix().T)
    g = rng.normal(size=2 * D)
    assert np.allclose(coords.pull_gradient(g), np.concatenate([L.T @ g[:D], g[D:]]))
    assert Coordinates(np.zeros(3)).matrix() is None


def test_finite_difference_product_matches_the_exact_hessian(rng):
    # The central difference's error is FD_STEP^2 / 6 times the third derivative of the
    # gradient along x in units of the sds (O(1) here, with the sds of the curvature, as a
    # mean-field guide's are, and a unit x, as Lanczos passes): 0.015 of |P x|. On a quadratic
    # it is exact up to rounding.
    def log_joint(z):
        return -anp.sum(anp.cosh(z) * anp.roll(z, 1, axis=1) ** 2 + z ** 4 / 12, axis=1)
    zeta, x = rng.normal(size=(7, 4)), rng.normal(size=4)
    H = expected_hessian(log_joint, zeta)
    sd, x = 1 / np.sqrt(np.abs(np.diag(H))), x / np.linalg.norm(x)
    exact = sd * (H @ (sd * x))
    error = scaled_hessian_product(log_joint, zeta, sd)(x) - exact
    assert np.linalg.norm(error) < FD_STEP ** 2 / 6 * np.linalg.norm(exact)
    A = rng.normal(size=(4, 4))
    Q = A @ A.T + np.eye(4)
    def quadratic(z):
        return -0.5 * anp.sum((z @ Q) * z, axis=1)
    product = scaled_hessian_product(quadratic, zeta, sd)(x)
    assert np.allclose(product, sd * (Q @ (sd * x)), rtol=1e-12, atol=1e-12)


CENTRAL = 10 ** 6   # a chunk that holds every column's 2 M draws: central differences


def test_whitening_a_precision_beyond_eigh_by_its_jacobi_scaled_form():
    # A known-noise regression on uncentred years and their squares: its precision's
    # eigenvalues span 5e-22 of the largest, beyond float64's eigh (rounding ~1e-16 of the
    # largest), and the floor at EIGEN_FLOOR left the valley direction a curvature of 6e-9 in
    # the new coordinates; full rank then stopped 4.6 sds off (found by the scales audit).
    # Jacobi-scaled, the eigenvalues span 5e-10: the whitened precision is the identity to
    # about 1e-16 / 5e-10 ~ 2e-7.
    years = np.arange(1950, 2021, dtype=float)
    X = np.column_stack([np.ones_like(years), years, years ** 2])
    precision = X.T @ X / 4 + np.diag([1e-10, 1e-4, 1.0])
    L = whiten(np.zeros(6), precision, jacobi=True).L
    assert np.allclose(np.linalg.eigvalsh(L.T @ precision @ L), 1.0, atol=1e-5)


def test_difference_hessian_matches_the_exact_one(rng):
    # Where a chunk holds a column's 2 M draws, column j is a central difference of the gradient
    # over +-FD_STEP sd_j: its error is
    # FD_STEP^2 / 6 times the gradient's third derivative along e_j in sd units (O(1) here, the
    # sds being those of the curvature as a mean-field guide's are), so in sd units (S H S) the
    # error is below FD_STEP^2 / 6 of |S H S|; on a quadratic it is exact up to rounding.
    def log_joint(z):
        return -anp.sum(anp.cosh(z) * anp.roll(z, 1, axis=1) ** 2 + z ** 4 / 12, axis=1)
    zeta = rng.normal(size=(7, 4))
    H = expected_hessian(log_joint, zeta)
    sd = 1 / np.sqrt(np.abs(np.diag(H)))
    error = sd[:, None] * (difference_hessian(log_joint, zeta, sd, CENTRAL) - H) * sd
    assert np.linalg.norm(error) < FD_STEP ** 2 / 6 * np.linalg.norm(sd[:, None] * H * sd)
    A = rng.normal(size=(4, 4))
    Q = A @ A.T + np.eye(4)
    def quadratic(z):
        return -0.5 * anp.sum((z @ Q) * z, axis=1)
    for chunk in (1, CENTRAL):   # forward, central: both exact on a quadratic
        assert np.allclose(difference_hessian(quadratic, zeta, sd, chunk), Q, rtol=1e-10,
                           atol=1e-10)


def test_difference_hessian_steps_beyond_the_draws_float_resolution(rng):
    # A mean-field guide far from a sharp optimum can have sds far below its mean's float
    # resolution at the first whitening (y ~ Normal(b0, 0.001), y near 1e6: b0 at 1000 with sd
    # e^-62); steps of FD_STEP sds did not move the draws, H came out 0 and the fit was never
    # whitened (found by the scales audit). On a quadratic both rules are exact up to rounding.
    precision = np.array([[3e7, 1e6], [1e6, 2e5]])
    mode = np.array([1e6, -2e3])

    def quadratic(z):
        return -0.5 * anp.sum(((z - mode) @ precision) * (z - mode), axis=1)
    sd = np.array([np.exp(-62.0), 0.1])
    zeta = np.array([1000.0, 3.0]) + sd * rng.normal(size=(7, 2))
    # the gradient is ~3e13 here, so its rounding (~1e-16 of that) over the shortest step
    # (2^-26 * 1000) is ~1e-5 of each difference: 1e-4 allows for it
    for chunk in (1, CENTRAL):   # forward, central
        assert np.allclose(difference_hessian(quadratic, zeta, sd, chunk), precision,
                           rtol=1e-4)
    x = np.array([1.0, 0.0])   # the low-rank estimate's products, P x = S H S x
    # (atol 0: P x is ~1e-47 here, and steps that left the draws as they were gave P x = 0,
    # which the default atol took as close; mutation3 audit)
    assert np.allclose(scaled_hessian_product(quadratic, zeta, sd)(x),
                       sd * (precision @ (sd * x)), rtol=1e-4, atol=0)


def test_difference_hessian_steps_each_column_beyond_its_own_draws_resolution(rng):
    # The shortest step is RESOLUTION_STEP of the column's own largest draw: a latent near 0
    # beside one near 1e6 keeps its step of FD_STEP sds. Central differences of the gradient
    # -x^3 / s^4 of a quartic over +-h give (3 x^2 + h^2) / s^4 where the exact Hessian has
    # 3 x^2 / s^4: exactly FD_STEP^2 / s^2 more at h = FD_STEP s. A step of 2^-26 * 1e6
    # (15 of its sds) would give 2.5e3 times that (mutation3 audit)
    s = 1e-3

    def log_joint(z):
        return -(z[:, 0] / s) ** 4 / 4 - 0.5 * ((z[:, 1] - 1e6) / s) ** 2
    sd = np.array([s, s])
    zeta = np.array([0.0, 1e6]) + sd * rng.normal(size=(7, 2))
    exact = expected_hessian(log_joint, zeta)
    H = difference_hessian(log_joint, zeta, sd, CENTRAL)
    assert np.isclose(H[0, 0], exact[0, 0] + FD_STEP ** 2 / s ** 2, rtol=1e-6)
    assert np.isclose(H[1, 1], exact[1, 1], rtol=1e-6)


def test_the_jacobi_scaled_frame_is_taken_only_where_the_floor_would_raise_an_eigenvalue(rng):
    # Elsewhere the frame is the floored form's, bit for bit (fits whose precision eigh
    # resolves are unchanged); just past the floor (an eigenvalue at a tenth of EIGEN_FLOOR)
    # the scaled form whitens H exactly, where the floor left that eigenvalue at 0.1; a zero
    # on the diagonal cannot be scaled: the floored form (mutation3 audit)
    A = rng.normal(size=(3, 3))
    H = A @ A.T + np.eye(3)
    assert np.array_equal(whiten(np.zeros(6), H, jacobi=True).L, whiten(np.zeros(6), H).L)
    H = np.diag([1.0, 0.1 * EIGEN_FLOOR])
    L = whiten(np.zeros(4), H, jacobi=True).L
    assert np.allclose(L.T @ H @ L, np.eye(2), rtol=1e-12, atol=0)
    H = np.diag([1.0, 0.0])
    assert np.array_equal(whiten(np.zeros(4), H, jacobi=True).L, whiten(np.zeros(4), H).L)


def test_estimate_whitens_in_the_jacobi_scaled_frame_when_asked():
    # estimate passes ``jacobi`` on to whiten: the year-squared precision above, from its
    # finite differences (exact on a quadratic up to rounding), whitened to the identity
    # (mutation3 audit)
    years = np.arange(1950, 2021, dtype=float)
    X = np.column_stack([np.ones_like(years), years, years ** 2])
    precision = X.T @ X / 4 + np.diag([1e-10, 1e-4, 1.0])
    mode = np.linalg.solve(precision, X.T @ (0.02 * years) / 4)

    def quadratic(z):
        return -0.5 * anp.sum(((z - mode) @ precision) * (z - mode), axis=1)
    sd = 1 / np.sqrt(np.diag(precision))
    draws = mode + sd * np.random.default_rng(0).normal(size=(10, 3))
    L = estimate(quadratic, np.concatenate([mode, np.log(sd)]), draws, sd, jacobi=True).L
    assert np.allclose(np.linalg.eigvalsh(L.T @ precision @ L), 1.0, atol=1e-3)


def test_a_far_sharp_optimum_is_reached_by_the_first_whitening():
    # The same model fitted: before, Adam's coordinates were kept and it stopped at the
    # iteration cap with b0 near 1e5 (1e9 posterior sds off); now the Newton steps at the first
    # whitening land on the posterior, b0 = mean(y) +- 0.001 / sqrt(N).
    y = 1e6 + 1e-3 * np.array([-1.2, 0.4, 0.9, -0.3, 0.6, -0.8, 1.1, 0.2, -0.5, 0.0])
    c = compiled("data y: real[10]\nsample b0 ~ Normal(0, 1e7)\n"
                 "observe y ~ Normal(b0, 0.001)\n", {"y": y})
    r = advi.fit(c, FitOptions(seed=0, guide="meanfield", iter=400), np.random.default_rng(0))
    sd = 1e-3 / np.sqrt(10)
    # a converged mean-field mean is within a few Monte Carlo errors of the exact one (a tenth
    # of a posterior sd is many of them at 20 draws a step averaged over a window); the guide's
    # sd, exact for a Gaussian, within 20%
    assert r.converged
    assert abs(r.mu[0] - y.mean()) < 0.1 * sd
    assert abs(np.exp(r.log_sigma[0]) / sd - 1) < 0.2


def test_forward_difference_hessian_matches_its_first_order_error(rng):
    # Where a chunk does not hold a column's 2 M draws (large data), column j is a forward
    # difference of the gradient over h_j = HESSIAN_STEP sd_j: the Hessian at the draws plus
    # h_j / 2 times the gradient's second derivative along e_j (the third derivative of log p,
    # T[:, j, j]; exp(z) gives it a nonzero mean), plus O(h^2). In sd units (S H S, the sds
    # those of the curvature as a mean-field guide's are) the error is below HESSIAN_STEP / 2
    # of |S H S| (the third derivative being O(1) there); against the first-order prediction
    # from the exact third derivatives it is below HESSIAN_STEP^2 of it, and a tenth of the
    # whole error (measured: 1e-2 of it, 2e-5 of |S H S|), so a wrong step or sign would show.
    def log_joint(z):
        return -anp.sum(anp.cosh(z) * anp.roll(z, 1, axis=1) ** 2 + anp.exp(z) + z ** 4 / 12,
                        axis=1)
    zeta = rng.normal(size=(7, 4))
    H = expected_hessian(log_joint, zeta)
    sd = 1 / np.sqrt(np.abs(np.diag(H)))
    T = np.mean([jacobian(hessian(lambda x: log_joint(x[None])[0]))(z) for z in zeta], axis=0)
    first = -np.stack([HESSIAN_STEP * sd[j] / 2 * T[:, j, j] for j in range(len(sd))], axis=1)
    predicted = H + 0.5 * (first + first.T)
    in_sds = lambda A: np.linalg.norm(sd[:, None] * A * sd)
    F = difference_hessian(log_joint, zeta, sd, 2 * len(zeta) - 1)
    assert in_sds(F - H) < HESSIAN_STEP / 2 * in_sds(H)
    assert in_sds(F - predicted) < min(HESSIAN_STEP ** 2 * in_sds(H), 0.1 * in_sds(F - H))
    # from a chunk of 2 M draws up, the central rule
    central = difference_hessian(log_joint, zeta, sd, 2 * len(zeta))
    np.testing.assert_array_equal(central, difference_hessian(log_joint, zeta, sd, CENTRAL))
    assert in_sds(F - central) > 0.1 * in_sds(F - H)


def test_difference_hessian_leaves_out_broken_draws_and_refuses_bad_sds():
    def log_joint(z):   # NaN where z[:, 0] > 1 (and its gradient with it)
        return -0.5 * anp.sum(z ** 2, axis=1) + anp.log(1 - z[:, 0])
    # the second draw is left out, the third's pair for column 0 reaches z = 1.02 (NaN)
    zeta = np.array([[0.0, 0.0], [2.0, 0.0], [0.99, 0.5], [-1.0, 1.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        H = difference_hessian(log_joint, zeta, np.array([0.1, 1.0]), CENTRAL)
        for chunk in (1, CENTRAL):
            assert np.all(np.isnan(difference_hessian(log_joint, zeta, np.array([0.0, 1.0]),
                                                      chunk)))
            assert np.all(np.isnan(difference_hessian(log_joint, zeta[1:2], np.ones(2), chunk)))
    # -d2/dz2 log(1 - z) = 1 / (1 - z)^2; its secant over z +- h, 1 / ((1 - z)^2 - h^2), is
    # within h^2 / ((1 - z)^2 - h^2) < 1e-3 of it at h = FD_STEP * 0.1 = 0.03 and |1 - z| >= 1
    exact = np.diag([1 + np.mean([1 / (1 - 0.0) ** 2, 1 / (1 + 1.0) ** 2]), 1.0])
    assert np.allclose(H, exact, rtol=1e-3, atol=1e-12)


def test_forward_difference_hessian_leaves_out_broken_draws():
    def log_joint(z):   # NaN where z[:, 0] > 1 (and its gradient with it)
        return -0.5 * anp.sum(z ** 2, axis=1) + anp.log(1 - z[:, 0])
    # the second draw is left out, the third's shift along column 0 reaches z = 1.002 (NaN)
    zeta = np.array([[0.0, 0.0], [2.0, 0.0], [0.999, 0.5], [-1.0, 1.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        H = difference_hessian(log_joint, zeta, np.array([0.1, 1.0]), 1)   # forward
    # d/dz log(1 - z) = -1 / (1 - z); its forward difference over h is -1 / ((1 - z)(1 - z - h)),
    # at h = HESSIAN_STEP * 0.1 for the first and last draws (along z[:, 1] log p is quadratic)
    kept, h = np.array([0.0, -1.0]), HESSIAN_STEP * 0.1
    exact = np.diag([1 + np.mean(1 / ((1 - kept) * (1 - kept - h))), 1.0])
    assert np.allclose(H, exact, rtol=1e-10, atol=1e-12)


def test_difference_hessian_in_chunks_is_the_same_bit_for_bit(rng):
    # several columns' draws in one gradient (chunk) give each row the gradient it has alone:
    # the log joint is a sum of one term per draw. The model's fused densities and kernel,
    # the broken draws of the test above (NaN values and gradients) and a partial last chunk
    text = ("data x: real[6]\ndata y: real[6]\nsample a ~ Normal(0, 5)\n"
            "sample b ~ Normal(0, 2)\nsample s ~ HalfCauchy(2)\n"
            "sample e: real[3] ~ Normal(0, 1)\nobserve y ~ Normal(a + b * x + e[1], s)\n")
    model = compiled(text, {"x": rng.normal(size=6).tolist(), "y": rng.normal(size=6).tolist()})
    cases = [(lambda z: -0.5 * anp.sum(z ** 2, axis=1) + anp.log(1 - z[:, 0]),
              np.array([[0.0, 0.0, 0.3], [2.0, 0.0, 0.1], [0.99, 0.5, 0.2], [-1.0, 1.0, 0.0]])),
             (model.log_joint, rng.normal(size=(5, model.dim)))]
    for log_joint, zeta in cases:
        sd = rng.uniform(0.1, 1.0, size=zeta.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            M = np.isfinite(log_joint(zeta)).sum()   # the draws kept
            # central from a chunk of 2 M draws (one column a gradient) up
            alone = difference_hessian(log_joint, zeta, sd, 2 * M)
            for chunk in (4 * M + 1, 10 ** 6):
                np.testing.assert_array_equal(difference_hessian(log_joint, zeta, sd, chunk),
                                              alone)
            # forward below (one block of M draws a gradient, whatever the chunk)
            np.testing.assert_array_equal(difference_hessian(log_joint, zeta, sd, 2 * M - 1),
                                          difference_hessian(log_joint, zeta, sd, 1))
            # without a model's chunk (None): central, a column a gradient
            np.testing.assert_array_equal(difference_hessian(log_joint, zeta, sd), alone)


def test_small_models_whiten_with_the_whole_hessian(rng):
    D = WHOLE_MAX_DIM   # up to here H is formed whole, by differences of the gradient
    log_joint, mean, sd, H, _ = gaussian_with_known_directions(rng, D, [1e-3])
    draws = mean + sd * rng.normal(size=(5, D))
    theta = np.concatenate([mean, np.zeros(D)])
    coords = estimate(log_joint, theta, draws, sd)
    assert np.array_equal(coords.L, whiten(theta, difference_hessian(log_joint, draws, sd)).L)
    assert np.allclose(coords.L.T @ H @ coords.L, np.eye(D), atol=1e-6)


def test_whitening_above_rank_finds_the_mean_of_a_correlated_posterior():
    # The kilpisjarvi-like pair of the test above, in 60 latents (38 others independent, 20
    # more pairs at correlation 0.9): above WHOLE_MAX_DIM, the low-rank whitening must still find the
    # valley. Tolerance as above: 0.13 mean-field sds (z = 4 on ~0.03).
    D = 60
    sd = np.ones(D)
    sd[:2] = [30.0, 0.0075]
    corr = np.eye(D)
    corr[0, 1] = corr[1, 0] = -0.99999
    for i in range(2, 42, 2):
        corr[i, i + 1] = corr[i + 1, i] = 0.9
    cov = corr * np.outer(sd, sd)
    mean = np.concatenate([[-60.0, 0.0175], np.linspace(-3, 3, D - 2)])
    target = correlated_gaussian(mean, cov)
    meanfield_sd = 1 / np.sqrt(np.diag(np.linalg.inv(cov)))
    fit = advi.fit(target, FitOptions(seed=0), np.random.default_rng(0))
    assert fit.converged
    assert np.all(np.abs(fit.mu - mean) / meanfield_sd < 0.13)
    plain = advi.fit(target, FitOptions(seed=0, precondition="none"), np.random.default_rng(0))
    assert np.max(np.abs(plain.mu - mean) / meanfield_sd) > 100


@pytest.mark.parametrize("values, lam", [
    # a negative Ritz value (a direction of local convexity) by its magnitude, as in whiten
    ([-4.0, 0.25, 9.0], [4.0, 0.25, 9.0]),
    # the floor is EIGEN_FLOOR of the largest or of 1 (the rest of P counts as 1), whichever
    # is larger: Ritz values all far below 1 are raised to EIGEN_FLOOR itself
    ([1e-30, 1e-20, 2.0], [2.0 * EIGEN_FLOOR, 2.0 * EIGEN_FLOOR, 2.0]),
    ([1e-30, 1e-20, 1e-15], [EIGEN_FLOOR] * 3),
])
def test_low_rank_whitening_takes_ritz_values_in_magnitude_and_floored(values, lam, rng):
    # L = S (I + U (lam^-1/2 - 1) U^T) exactly; a signed value was floored to a curvature of
    # 1e-13 (a step of 3e6 sds along it), a floor relative to tiny Ritz values alone was no
    # floor at all (mutation13)
    D = 6
    U = np.linalg.qr(rng.normal(size=(D, 3)))[0]
    sd = np.exp(rng.normal(size=D))
    coords = whiten_low_rank(np.zeros(D), sd, np.array(values), U)
    np.testing.assert_allclose(coords.L.root, np.asarray(lam) ** -0.5, rtol=1e-12)
    expected = sd[:, None] * (np.eye(D) + (U * (np.asarray(lam) ** -0.5 - 1.0)) @ U.T)
    np.testing.assert_allclose(coords.matrix(), expected, rtol=1e-12, atol=1e-12)


def test_frame_log_det_is_log_abs_det_of_w(rng):
    # the constant the ELBO in u omits: log |det W|, whatever W's sign (a dense W with a
    # negative determinant, a diagonal one with a negative entry), against np.linalg.det
    W = rng.normal(size=(4, 4))
    W[:, 0] *= np.sign(np.linalg.det(W)) * -1.0     # det W < 0
    assert np.linalg.det(W) < 0
    assert np.isclose(Frame(None, np.zeros(4), W).log_det, np.log(abs(np.linalg.det(W))),
                      rtol=1e-12)
    w = np.array([0.5, -3.0, 2.0])
    assert np.isclose(Frame(None, np.zeros(3), w).log_det, np.log(3.0), rtol=1e-12)
