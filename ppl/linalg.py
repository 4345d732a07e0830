"""Batched linear algebra for differentiated code that never raises on a bad matrix.

numpy.linalg raises LinAlgError for a whole batch when one matrix is not positive definite
(cholesky) or is singular (solve, inv). A draw can reach such a matrix during a fit; that must
be a non-finite value handled like any other, so these autograd primitives return NaN for the
offending matrices (and only those) instead. Used by ``functions.py`` and MvNormal.
All arrays are [..., K, K] (any leading batch axes, the draw axis among them).
"""
from __future__ import annotations

from functools import lru_cache

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, defvjp_argnums, primitive
# autograd's inverse of broadcasting, in autograd ops (the GP's VJP is differentiated again)
from autograd.numpy.numpy_vjps import unbroadcast


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


def _cholesky_value(a):
    a = np.asarray(a, dtype=float)
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        ok = _batch_mask(a, _is_positive_definite)
    try:
        return _fill(a, ok, np.linalg.cholesky)
    except np.linalg.LinAlgError:
        # eigvalsh said positive, potrf disagreed (an eigenvalue at rounding level): the
        # tie goes to "not positive definite"; this loop runs only in that corner. Only the
        # matrices the mask kept: potrf factors one holding inf without failing (a factor
        # finite but for that entry), and the mask had made it NaN
        flat = a.reshape((-1,) + a.shape[-2:])
        out = np.full(flat.shape, np.nan)
        for i in np.flatnonzero(ok):
            try:
                out[i] = np.linalg.cholesky(flat[i])
            except np.linalg.LinAlgError:
                pass
        return out.reshape(a.shape)


@primitive
def cholesky(a):
    """Lower Cholesky factor [..., K, K] of each matrix (its lower triangle is read); NaN for a
    matrix that is not positive definite or not finite."""
    return _cholesky_value(a)


@primitive
def cholesky_symmetric(a):
    """The Cholesky factor of the symmetric part of ``a`` [..., K, K]: the same value for a
    symmetric matrix, and a gradient right in every direction (``cholesky`` itself reads one
    triangle only, so a perturbation of the other would have no effect). NaN as ``cholesky``."""
    a = np.asarray(a, dtype=float)
    sym = a + np.swapaxes(a, -1, -2)
    sym *= 0.5
    return _cholesky_value(sym)


# From this many matrices on, inverse_lower substitutes row by row across the whole batch
# instead of calling trtri once per matrix: at K = 11, 2.1x faster at 256 matrices and 2.4x at
# 1024 (the scaled family's fixed-draw rounds on gp_pois_regr), level at 60 (the flow's draws),
# 3.6x slower at 5 (mean field's).
BATCHED_INVERSE = 128


@primitive
def inverse_lower(L):
    """``L^{-1}`` [..., K, K] of each lower-triangular L (its lower triangle is read); NaN for
    a singular one. One LAPACK ``trtri`` per matrix (scipy, imported on first use): a third of
    the work of an LU inverse, and numpy has no batched triangular routine; from
    BATCHED_INVERSE matrices on, forward substitution across the batch instead."""
    L = np.asarray(L, dtype=float)
    if L.shape[-1] and np.prod(L.shape[:-2], dtype=np.int64) >= BATCHED_INVERSE:
        return _substitute_inverse(L.reshape((-1,) + L.shape[-2:])).reshape(L.shape)
    out = np.tril(L)
    if out.shape[-1] == 0:      # 0 x 0 matrices: nothing to invert (and -1 cannot be reshaped)
        return out
    from scipy.linalg import lapack
    # a C-ordered copy with zeros above the diagonal; each matrix's transpose is the
    # Fortran-ordered upper factor that trtri inverts in place (no copy per call), and
    # (L^T)^{-1} = (L^{-1})^T
    for m in out.reshape((-1,) + out.shape[-2:]):
        inv, info = lapack.dtrtri(m.T, lower=0, overwrite_c=1)
        if info != 0:
            m[...] = np.nan
        elif not np.may_share_memory(inv, m):
            m[...] = inv.T
    return out


def _substitute_inverse(L: np.ndarray) -> np.ndarray:
    """The inverse of each lower-triangular matrix of ``L`` [n, K, K] (its strict lower
    triangle and diagonal are read): row k of L^{-1} is -(L[k, :k] @ L^{-1}[:k, :k]) / L[k, k],
    then 1 / L[k, k] on the diagonal, for the whole batch at once, into one new array (a
    triangle's copy and a copy of that, fresh memory each, had cost as much as the
    substitution). A matrix with a zero on its diagonal (or an overflow) becomes NaN, as
    trtri's are."""
    out = np.zeros_like(L)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_diag = 1.0 / np.diagonal(L, axis1=-2, axis2=-1)
        out[:, 0, 0] = inv_diag[:, 0]
        for k in range(1, L.shape[-1]):
            out[:, k, :k] = np.matmul(L[:, k, None, :k], out[:, :k, :k])[:, 0, :] * \
                -inv_diag[:, k, None]
            out[:, k, k] = inv_diag[:, k]
    out[~np.all(np.isfinite(out), axis=(-2, -1))] = np.nan
    return out


# Y = L^{-1}: dY = -Y dL Y, and only L's lower triangle is read
defvjp(inverse_lower, lambda Y, L: lambda g: -anp.tril(_t(Y) @ g @ _t(Y)))


@lru_cache(maxsize=None)
def _half_phi_mask(k: int) -> np.ndarray:
    # Murray's Phi (the lower triangle with the diagonal halved) as one product, and the 1/2
    # of the symmetrisation folded in
    return 0.5 * (np.tri(k) - 0.5 * np.eye(k))


def _cholesky_vjp(L, a):
    """Iain Murray's reverse-mode rule (arXiv:1602.07527), as autograd's ``grad_cholesky``:
    abar = sym(L^{-T} Phi(L^T g) L^{-1}). autograd solves two LU systems and calls einsum;
    one triangular inverse and three matmuls give the same value, several times cheaper at
    K = 11..25. Written in autograd ops (the inverse a primitive), so it has derivatives
    itself: ``precondition.expected_hessian`` and DADVI differentiate it again. The result is
    symmetric, so it is also the gradient of ``cholesky_symmetric`` (the chain through
    ``0.5 (a + a^T)`` maps a symmetric cotangent to itself). NaN factors give NaN gradients,
    for their own matrices only."""
    def vjp(g):
        inv = inverse_lower(L)
        half = _t(inv) @ ((_t(L) @ g) * _half_phi_mask(anp.shape(L)[-1])) @ inv
        return half + _t(half)
    return vjp


defvjp(cholesky, _cholesky_vjp)
defvjp(cholesky_symmetric, _cholesky_vjp)


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


def _per_draw(v):
    """A scalar per draw [...] lined up with the last two axes of an [..., N, N] matrix."""
    return anp.reshape(v, anp.shape(v) + (1, 1))


def _pairs(x):
    """x_i - x_j [..., N, N] for x [..., N]; data-sized when x is data."""
    return x[..., :, None] - x[..., None, :]


def _unit_kernel(d, rho):
    # exp(-d^2 / (2 rho^2)); d * d keeps x's batch axes (one row for data), only the scale is
    # per draw
    r = _per_draw(rho)
    return anp.exp(d * d * (-0.5 / (r * r)))


@primitive
def gp_exp_quad_cov(x, alpha, rho):
    """Stan's ``gp_exp_quad_cov``: ``alpha^2 exp(-(x_i - x_j)^2 / (2 rho^2))`` [..., N, N].

    x [..., N]; alpha and rho have x's leading axes without N (a scalar per draw, [S]).
    One primitive with a hand-written gradient: traced, its eight operations and their
    gradients cost more than the Cholesky factor that usually follows.
    """
    x, alpha, rho = (np.asarray(v, dtype=float) for v in (x, alpha, rho))
    a = _per_draw(alpha)
    return a * a * _unit_kernel(_pairs(x), rho)


def _gp_vjp(argnums, K, args, kwargs):
    """Cotangents of (x, alpha, rho) from g [..., N, N], sharing g K among them. In autograd
    ops, so they can be differentiated again. With K = a^2 E and d = x_i - x_j:
    dK/dalpha = 2 alpha E, dK/drho = K d^2 / rho^3, dK_ij/dx_i = -dK_ij/dx_j = -K_ij d_ij / rho^2.
    """
    x, alpha, rho = args

    def vjp(g):
        d, r = _pairs(x), _per_draw(rho)
        g_k = g * K
        out = []
        for i in argnums:
            if i == 0:
                w = g_k * (d / (r * r))
                out.append(unbroadcast(anp.sum(w, axis=-2) - anp.sum(w, axis=-1),
                                        anp.metadata(x)))
            elif i == 1:
                # 2 alpha E = 2 K / alpha, and 0 at alpha = 0 (not 0 / 0)
                zero = alpha == 0
                grad = anp.where(zero, 0.0, 2 * anp.sum(g_k, axis=(-2, -1))
                                 / anp.where(zero, 1.0, alpha))
                out.append(unbroadcast(grad, anp.metadata(alpha)))
            else:
                grad = anp.sum(g_k * (d * d), axis=(-2, -1)) / (rho * rho * rho)
                out.append(unbroadcast(grad, anp.metadata(rho)))
        return tuple(out)
    return vjp


defvjp_argnums(gp_exp_quad_cov, _gp_vjp)


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
