"""ppl.linalg: values against numpy/scipy, gradients against autograd's traced formulas and
central differences (second order too: ``precondition.expected_hessian`` and DADVI take
Hessian-vector products through these primitives), batched inputs, NaN for bad matrices."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.numpy.linalg import cholesky as traced_cholesky
from autograd.test_util import check_grads

from ppl import linalg
from ppl.linalg import solve_lower


def _spd(rng, *shape):
    k = shape[-1]
    a = rng.normal(size=shape)
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


def _traced_cholesky_symmetric(a):
    # the path before the primitive: autograd's own cholesky and grad_cholesky (LU solves)
    return traced_cholesky(0.5 * (a + anp.swapaxes(a, -1, -2)))


def _traced_gp(x, alpha, rho):
    # the path before the primitive: Stan's formula in traced autograd operations
    d = x[..., :, None] - x[..., None, :]
    a, r = alpha[..., None, None], rho[..., None, None]
    return a * a * anp.exp(-0.5 * (d / r) ** 2)


def test_solve_lower_matches_a_dense_solve_and_its_gradients():
    rng = np.random.default_rng(0)
    L = np.tril(rng.normal(size=(4, 4))) + 3 * np.eye(4)
    b = rng.normal(size=(4, 3))
    np.testing.assert_allclose(solve_lower(L, b), np.linalg.solve(L, b), rtol=1e-12)
    check_grads(solve_lower, modes=["rev"], order=1, argnum=(0, 1))(L, b)


@pytest.mark.parametrize("shape", [(4, 4), (5, 4, 4), (2, 3, 4, 4),
                                   (linalg.BATCHED_INVERSE, 4, 4), (2, 80, 4, 4)])
def test_inverse_lower_values_and_gradients(shape):
    # (the last two by forward substitution across the batch, the others by trtri)
    rng = np.random.default_rng(1)
    L = np.linalg.cholesky(_spd(rng, *shape))
    np.testing.assert_allclose(linalg.inverse_lower(L), np.linalg.inv(L), rtol=1e-12,
                               atol=1e-14)
    # the upper triangle is not read: a perturbation there must not count, so tril first
    check_grads(lambda m: linalg.inverse_lower(anp.tril(m)), modes=["rev"], order=2)(L)


@pytest.mark.parametrize("n", [3, linalg.BATCHED_INVERSE])
def test_inverse_lower_is_nan_for_a_singular_matrix_only(n):
    L = np.tril(np.ones((n, 3, 3))) + np.eye(3)
    L[1, 2, 2] = 0.0
    out = linalg.inverse_lower(L)
    assert np.all(np.isnan(out[1][np.tri(3, dtype=bool)]))
    others = np.arange(n) != 1
    np.testing.assert_allclose(out[others], np.linalg.inv(L[others]), rtol=1e-14)


def test_cholesky_gradient_of_empty_matrices():
    # a 0 x 0 latent (real[K, K] with K = 0 in the data): the gradient's triangular inverse
    # reshaped its empty batch with -1 and raised ValueError
    a = np.zeros((3, 0, 0))
    assert linalg.inverse_lower(a).shape == (3, 0, 0)
    g = autograd.grad(lambda x: anp.sum(linalg.cholesky_symmetric(x)))(a)
    assert g.shape == (3, 0, 0)


@pytest.mark.parametrize("shape", [(4, 4), (5, 4, 4), (2, 3, 4, 4), (5, 11, 11)])
def test_cholesky_symmetric_matches_the_traced_path(shape):
    rng = np.random.default_rng(2)
    a = _spd(rng, *shape) + 0.1 * rng.normal(size=shape)      # not symmetric: both halves count
    np.testing.assert_allclose(linalg.cholesky_symmetric(a), _traced_cholesky_symmetric(a),
                               rtol=1e-12, atol=1e-13)
    g = rng.normal(size=shape)
    ours = autograd.grad(lambda m: anp.sum(linalg.cholesky_symmetric(m) * g))(a)
    traced = autograd.grad(lambda m: anp.sum(_traced_cholesky_symmetric(m) * g))(a)
    # both are exact formulas; they differ by rounding in different solves (K = 11 with
    # condition numbers ~1e2)
    np.testing.assert_allclose(ours, traced, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 4), (3, 4, 4), (2, 2, 3, 3)])
def test_cholesky_symmetric_gradients_to_second_order(shape):
    rng = np.random.default_rng(3)
    a = _spd(rng, *shape) + 0.1 * rng.normal(size=shape)
    check_grads(linalg.cholesky_symmetric, modes=["rev"], order=2)(a)


def test_cholesky_gradient_is_the_symmetric_one():
    # cholesky reads one triangle; its gradient, as autograd's, is the symmetric cotangent
    rng = np.random.default_rng(4)
    a, g = _spd(rng, 3, 5, 5), rng.normal(size=(3, 5, 5))
    ours = autograd.grad(lambda m: anp.sum(linalg.cholesky(m) * g))(a)
    traced = autograd.grad(lambda m: anp.sum(traced_cholesky(m) * g))(a)
    np.testing.assert_allclose(ours, traced, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", [linalg.cholesky, linalg.cholesky_symmetric])
def test_cholesky_of_a_non_positive_definite_matrix_is_nan_there_only(fn):
    rng = np.random.default_rng(5)
    a = _spd(rng, 4, 3, 3)
    a[1] = -a[1]
    value = fn(a)
    grad = autograd.grad(lambda m: anp.sum(fn(m)))(a)
    assert np.all(np.isnan(value[1])) and np.all(np.isnan(grad[1]))
    keep = [0, 2, 3]
    np.testing.assert_allclose(value[keep], np.linalg.cholesky(a[keep]), rtol=1e-13)
    np.testing.assert_allclose(grad[keep], autograd.grad(
        lambda m: anp.sum(_traced_cholesky_symmetric(m)))(a[keep]), rtol=1e-10, atol=1e-12)


# (x shape, alpha/rho shape): x as data (one row for all draws) or latent (a row per draw)
GP_SHAPES = [((1, 6), (5,)), ((5, 6), (5,)), ((5, 6), (1,)), ((6,), ()), ((2, 3, 4), (2, 3))]


@pytest.mark.parametrize("x_shape, p_shape", GP_SHAPES)
def test_gp_exp_quad_cov_matches_the_traced_path(x_shape, p_shape):
    rng = np.random.default_rng(6)
    x = 3 * rng.normal(size=x_shape)
    alpha, rho = rng.uniform(0.5, 2, p_shape), rng.uniform(0.5, 3, p_shape)
    args = (x, alpha, rho)
    np.testing.assert_allclose(linalg.gp_exp_quad_cov(*args), _traced_gp(*args),
                               rtol=1e-13, atol=1e-15)
    g = rng.normal(size=np.shape(_traced_gp(*args)))
    for i in range(3):
        ours = autograd.grad(lambda *a: anp.sum(linalg.gp_exp_quad_cov(*a) * g), i)(*args)
        traced = autograd.grad(lambda *a: anp.sum(_traced_gp(*a) * g), i)(*args)
        assert np.shape(ours) == np.shape(args[i])
        np.testing.assert_allclose(ours, traced, rtol=1e-11, atol=1e-13)
    check_grads(linalg.gp_exp_quad_cov, modes=["rev"], order=2, argnum=(0, 1, 2))(*args)


def test_gp_exp_quad_cov_gradient_in_alpha_at_zero():
    # d/dalpha alpha^2 E = 2 alpha E = 0 at alpha = 0 (not 0/0 from K / alpha)
    x, rho = np.linspace(-1, 1, 4)[None], np.ones(3)
    grad = autograd.grad(lambda a: anp.sum(linalg.gp_exp_quad_cov(x, a, rho)))(np.zeros(3))
    np.testing.assert_array_equal(grad, np.zeros(3))


# ----- mutation pass (session 40): what the tests above could not tell apart ------------------
# check_grads(f)(x, y) differentiates in x only (autograd's default argnum=0): every argument
# is named (here and in the two tests above that take several). The matrices are not
# symmetric, so a^{-1} and a^{-T} differ.

def _general(rng, *shape):
    """Well-conditioned matrices that are not symmetric."""
    k = shape[-1]
    return rng.normal(size=shape) + 2 * k * np.eye(k)


@pytest.mark.parametrize("n", [3, linalg.BATCHED_INVERSE])
def test_inverse_lower_reads_the_lower_triangle_only(n):
    # by trtri (n = 3) and by substitution (n = BATCHED_INVERSE): what lies above the diagonal
    # changes neither the value nor the gradient (which is 0 there), to second order
    rng = np.random.default_rng(12)
    L = np.linalg.cholesky(_spd(rng, n, 4, 4))
    full = L + np.triu(rng.normal(size=L.shape), 1)
    np.testing.assert_allclose(linalg.inverse_lower(full), np.linalg.inv(L), rtol=1e-12,
                               atol=1e-14)
    check_grads(linalg.inverse_lower, modes=["rev"], order=2 if n == 3 else 1)(full)


def test_inverse_lower_of_a_batch_in_fortran_order():
    # trtri inverts in place only a Fortran-ordered view of each matrix, which a C-ordered batch
    # gives (np.tril keeps a Fortran batch's order); otherwise it works on a copy, whose result
    # must be copied back
    L = np.linalg.cholesky(_spd(np.random.default_rng(18), 3, 4, 4))
    np.testing.assert_allclose(linalg.inverse_lower(np.asfortranarray(L)), np.linalg.inv(L),
                               rtol=1e-12, atol=1e-14)


# (a's shape, b's shape): a vector or columns per matrix, each side broadcast in turn
SOLVE_SHAPES = [((3, 3), (3,)), ((4, 3, 3), (4, 3)), ((4, 3, 3), (4, 3, 2)),
                ((4, 3, 3), (1, 3, 2)), ((1, 3, 3), (4, 3, 2)), ((4, 3, 3), (1, 3))]


@pytest.mark.parametrize("a_shape, b_shape", SOLVE_SHAPES)
def test_solve_values_and_gradients_in_both_arguments(a_shape, b_shape):
    rng = np.random.default_rng(14)
    a, b = _general(rng, *a_shape), rng.normal(size=b_shape)
    vector = len(b_shape) == len(a_shape) - 1
    want = np.linalg.solve(a, b[..., None])[..., 0] if vector else np.linalg.solve(a, b)
    np.testing.assert_allclose(linalg.solve(a, b), want, rtol=1e-12)
    check_grads(linalg.solve, modes=["rev"], order=2, argnum=(0, 1))(a, b)


def test_log_abs_det_value_and_gradient_of_a_matrix_that_is_not_symmetric():
    rng = np.random.default_rng(15)
    a = _general(rng, 3, 4, 4)
    a[1] *= -1.0                        # a negative determinant: |det| is read
    np.testing.assert_allclose(linalg.log_abs_det(a), np.linalg.slogdet(a)[1], rtol=1e-13)
    check_grads(linalg.log_abs_det, modes=["rev"], order=2)(a)
    # d log|det a| / da = a^{-T}, in closed form
    np.testing.assert_allclose(autograd.grad(lambda m: anp.sum(linalg.log_abs_det(m)))(a),
                               np.swapaxes(np.linalg.inv(a), -1, -2), rtol=1e-12)


def test_log_abs_det_of_a_determinant_beyond_the_float_range():
    # det = 1e600 and 1e-600 overflow and underflow; their logs are plain numbers
    a = np.array([np.diag([1e200, 1e200, 1e200]), np.diag([1e-200, -1e-200, 1e-200])])
    np.testing.assert_allclose(linalg.log_abs_det(a), [600 * np.log(10), -600 * np.log(10)],
                               rtol=1e-14)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_matrix_that_is_not_finite_gives_nan_everywhere_in_it(bad):
    # beside a matrix that is not positive definite (or singular), so the masked path runs
    rng = np.random.default_rng(16)
    a = _spd(rng, 4, 3, 3)
    a[1] = -a[1]
    a[2, 0, 0] = bad
    chol = linalg.cholesky(a)
    assert np.all(np.isnan(chol[1])) and np.all(np.isnan(chol[2]))
    np.testing.assert_allclose(chol[[0, 3]], np.linalg.cholesky(a[[0, 3]]), rtol=1e-13)
    a[1] = 0.0
    x = linalg.solve(a, np.ones((4, 3)))
    assert np.all(np.isnan(x[1])) and np.all(np.isnan(x[2]))
    np.testing.assert_allclose(x[[0, 3]], np.linalg.solve(a[[0, 3]], np.ones((2, 3, 1)))[..., 0],
                               rtol=1e-13)


def test_cholesky_where_eigvalsh_and_potrf_disagree_is_nan_there_only(monkeypatch):
    # the last-resort loop: eigvalsh can call a matrix positive (smallest eigenvalue 7e-17 on
    # this machine for B B^T + 1e-17 I, B 3 x 2 of rank 2) while potrf fails on it. Which
    # matrices do that depends on the LAPACK build, so the disagreement is forced here: every
    # finite matrix is called positive, and the negative definite one must still come out NaN,
    # as must those that are not finite (the loop had factored them: inf gave a factor finite
    # but for one entry)
    monkeypatch.setattr(linalg, "_is_positive_definite", lambda m: np.ones(m.shape[:-2], bool))
    rng = np.random.default_rng(17)
    a = _spd(rng, 2, 3, 3, 3)
    a[1, 2] = -a[1, 2]
    a[0, 1, 0, 0], a[1, 0, 2, 1] = np.inf, np.nan
    out = linalg.cholesky(a)
    bad = np.zeros((2, 3), bool)
    bad[1, 2] = bad[0, 1] = bad[1, 0] = True
    assert np.all(np.isnan(out[bad]))
    keep = ~bad
    np.testing.assert_allclose(out[keep], np.linalg.cholesky(a[keep]), rtol=1e-13)
