"""Batched linear algebra for differentiated code that never raises on a bad matrix.

numpy.linalg raises LinAlgError for a whole batch when one matrix is not positive definite
(cholesky) or is singular (solve, inv). A draw can reach such a matrix during a fit; that must
be a non-finite value handled like any other, so these autograd primitives return NaN for the
offending matrices (and only those) instead. Used by ``functions.py`` and MvNormal.
All arrays are [..., K, K] (any leading batch axes, the draw axis among them).
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.numpy.linalg import grad_cholesky


def _t(x):
    return anp.swapaxes(x, -1, -2)


def _batch_mask(a: np.ndarray, ok_one) -> np.ndarray:
    """Per-matrix boolean mask [...]: ``ok_one`` on each finite matrix, False for non-finite."""
    finite = np.all(np.isfinite(a), axis=(-2, -1))
    safe = np.where(finite[..., None, None], a, np.eye(a.shape[-1]))
    return finite & ok_one(safe)


def _fill(a: np.ndarray, ok: np.ndarray, fn) -> np.ndarray:
    """``fn`` applied to the batch with the bad matrices swapped for the identity, NaN there.

    Only reached after the plain batched call raised, so the cost of a second call is paid
    when a draw is already bad.
    """
    safe = np.where(ok[..., None, None], a, np.eye(a.shape[-1]))
    out = fn(safe)
    mask = ok.reshape(ok.shape + (1,) * (out.ndim - ok.ndim))
    return np.where(mask, out, np.nan)


def _is_positive_definite(a):
    # eigvalsh reads the lower triangle, as cholesky does
    return np.linalg.eigvalsh(a)[..., 0] > 0


@primitive
def cholesky(a):
    """Lower Cholesky factor [..., K, K] of each matrix (its lower triangle is read); NaN for a
    matrix that is not positive definite or not finite."""
    a = np.asarray(a, dtype=float)
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        ok = _batch_mask(a, _is_positive_definite)
    try:
        return _fill(a, ok, np.linalg.cholesky)
    except np.linalg.LinAlgError:
        # eigvalsh said positive, potrf disagreed (an eigenvalue at rounding level): the
        # tie goes to "not positive definite"; this loop runs only in that corner
        flat = a.reshape((-1,) + a.shape[-2:])
        out = np.full(flat.shape, np.nan)
        for i, m in enumerate(flat):
            try:
                out[i] = np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                pass
        return out.reshape(a.shape)


# Iain Murray's reverse-mode rule (arXiv:1602.07527), as autograd uses for numpy's cholesky;
# NaN factors give NaN gradients (its solve does not raise on NaN).
defvjp(cholesky, grad_cholesky)


def cholesky_symmetric(a):
    """The Cholesky factor of the symmetric part of ``a`` [..., K, K]: the same value for a
    symmetric matrix, and a gradient right in every direction (``cholesky`` itself reads one
    triangle only, so a perturbation of the other would have no effect)."""
    return cholesky(0.5 * (a + _t(a)))


def _is_invertible(a):
    sign, logdet = np.linalg.slogdet(a)
    return (sign != 0) & np.isfinite(logdet)


@primitive
def _solve_matrix(a, b):
    """``a^{-1} b`` for a [..., K, K] and b [..., K, M] with the same batch axes."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        ok = _batch_mask(np.asarray(a, dtype=float), _is_invertible)
        safe_b = np.where(ok[..., None, None], b, 0.0)
        return np.where(ok[..., None, None], np.linalg.solve(
            np.where(ok[..., None, None], a, np.eye(a.shape[-1])), safe_b), np.nan)


defvjp(_solve_matrix,
       # x = a^{-1} b: d b = a^{-T} g, d a = -(a^{-T} g) x^T
       lambda x, a, b: lambda g: -_solve_matrix(_t(a), g) @ _t(x),
       lambda x, a, b: lambda g: _solve_matrix(_t(a), g))


def solve(a, b):
    """``a^{-1} b`` for a [..., K, K]: b [..., K] (one axis fewer than a: a vector per matrix)
    or [..., K, M] (columns); batch axes broadcast; NaN where a matrix is singular."""
    if anp.ndim(b) == anp.ndim(a) - 1:
        return solve_vector(a, b)
    return solve_matrix(a, b)


def solve_vector(a, b):
    """``a^{-1} b`` for a [..., K, K] and b [..., K]; batch axes broadcast; NaN if singular."""
    return solve_matrix(a, b[..., None])[..., 0]


def solve_matrix(a, b):
    """``a^{-1} b`` for a [..., K, K] and b [..., K, M]; batch axes broadcast; NaN if singular."""
    batch = np.broadcast_shapes(anp.shape(a)[:-2], anp.shape(b)[:-2])
    # adding zeros broadcasts with a gradient that sums back to each operand's shape
    a = a + anp.zeros(batch + anp.shape(a)[-2:])
    b = b + anp.zeros(batch + anp.shape(b)[-2:])
    return _solve_matrix(a, b)


@primitive
def log_abs_det(a):
    """``log|det a|`` [...] of each matrix [..., K, K]; -inf for a singular one."""
    return np.linalg.slogdet(a)[1]


defvjp(log_abs_det,
       # d log|det a| / d a = a^{-T}; NaN (not an exception) for a singular matrix
       lambda ans, a: lambda g: g[..., None, None] * _t(
           _solve_matrix(a, np.broadcast_to(np.eye(a.shape[-1]), a.shape))))


def gp_exp_quad_cov(x, alpha, rho):
    """Stan's ``gp_exp_quad_cov``: ``alpha^2 exp(-(x_i - x_j)^2 / (2 rho^2))`` [..., N, N].

    x [..., N]; alpha and rho have x's leading axes without N (a scalar per draw, [S]).
    """
    d = x[..., :, None] - x[..., None, :]
    alpha = anp.reshape(alpha, anp.shape(alpha) + (1, 1))
    rho = anp.reshape(rho, anp.shape(rho) + (1, 1))
    return alpha * alpha * anp.exp(-0.5 * (d / rho) ** 2)


@primitive
def solve_lower(L, b):
    """L^-1 b for a lower-triangular L [D, D] and b [D, K], by forward substitution
    (scipy.linalg.solve_triangular, imported on first use: it is not needed to import ppl)."""
    from scipy.linalg import solve_triangular
    return solve_triangular(L, b, lower=True)


def _solve_lower_vjp_b(x, L, b):
    # x = L^-1 b: the cotangent of b is L^-T g
    from scipy.linalg import solve_triangular
    return lambda g: solve_triangular(L, g, lower=True, trans="T")


def _solve_lower_vjp_L(x, L, b):
    # d x = -L^-1 (dL) x, so the cotangent of L is -tril(L^-T g x^T)
    from scipy.linalg import solve_triangular
    return lambda g: -np.tril(solve_triangular(L, g, lower=True, trans="T") @ np.transpose(x))


defvjp(solve_lower, _solve_lower_vjp_L, _solve_lower_vjp_b)
