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
    check_grads(solve_lower, modes=["rev"], order=1)(L, b)


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
    check_grads(linalg.gp_exp_quad_cov, modes=["rev"], order=2)(*args)


def test_gp_exp_quad_cov_gradient_in_alpha_at_zero():
    # d/dalpha alpha^2 E = 2 alpha E = 0 at alpha = 0 (not 0/0 from K / alpha)
    x, rho = np.linspace(-1, 1, 4)[None], np.ones(3)
    grad = autograd.grad(lambda a: anp.sum(linalg.gp_exp_quad_cov(x, a, rho)))(np.zeros(3))
    np.testing.assert_array_equal(grad, np.zeros(3))
