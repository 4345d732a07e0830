"""Bijectors from unconstrained space to a latent's support, and the ``biject_to`` registry.

Each continuous constraint type in ``constraints.py`` has one factory here. The guide and the
compiler only call ``biject_to(support)``; discrete supports never get here (the checker
refuses discrete latents first).

Arrays carry a leading draw axis ([S, *shape]); bounds are floats or arrays lined up the same
way ([S or 1, ...]) and broadcast against ``u``. Everything is ``autograd.numpy``.

Far out, a bounded value rounds onto its bound (``lower + exp(u)`` below u = -745 at 0, below
u = -37 at 1; an interval's upper end 1 above u = 37), where a density is +-inf or NaN: such a
draw counts as not finite (a fit that keeps landing there stops with a located error, the
verdict counts the others). The values are not clipped inside the bound: floats next to it
cannot hold the mass beyond, and a clip truncates that mass silently (a Beta(0.01, 0.01) prior,
35% of whose mass lies within 1e-16 of 1, gave a "reliable" mean 0.27 for the exact 0.5).
The log-Jacobians and their gradients stay finite there (test_bijectors.py, far out).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_vjps import unbroadcast_f

from . import constraints as c
from .fused import record, shape_of
from .special import softplus


_LOG_2 = 0.6931471805599453  # log(2)
_LOG_TINY = float(np.log(np.finfo(float).tiny))   # -708.4: exp of it is the smallest normal


def _log_sigmoid(u):
    """``log(sigmoid(u)) = -softplus(-u)``, stable for large |u|."""
    return -softplus(-u)


def _sum_draws(t):
    """Sum over every axis but the leading draw axis: [S, ...] -> [S]."""
    ndim = len(shape_of(t))     # a box's .ndim is an autograd call of its own
    if ndim <= 1:
        return t
    return anp.sum(t, axis=tuple(range(1, ndim)))


class Bijector:
    """A smooth invertible map ``x = forward(u)`` from free ``u`` to the support.

    Methods
    -------
    forward(u) : [S, *free_shape] -> [S, *shape]
    inverse(x) : [S, *shape] -> [S, *free_shape]
    log_det_jacobian(u) : [S]; log|det dx/du| summed over all axes but the draw axis.
    forward_and_log_det(u) : both; a bijector whose two share work overrides it.
    free_shape(shape) : the unconstrained shape of a latent of constrained ``shape``.
    """

    def forward(self, u):
        raise NotImplementedError

    def forward_and_log_det(self, u):
        return self.forward(u), self.log_det_jacobian(u)

    def inverse(self, x):
        raise NotImplementedError

    def log_det_jacobian(self, u):
        raise NotImplementedError

    def free_shape(self, shape: tuple) -> tuple:
        return tuple(shape)


class Identity(Bijector):
    """The real line: ``x = u``."""

    def forward(self, u):
        return u

    def inverse(self, x):
        return x

    def log_det_jacobian(self, u):
        return _sum_draws(anp.zeros_like(u))


class LowerBound(Bijector):
    """``(lower, inf)``: ``x = lower + exp(u)``, log-Jacobian ``u``."""

    def __init__(self, lower: Any):
        self.lower = lower
        # a constant bound at 0 (every positive latent) is not added: 0.0 + exp(u) is exp(u)
        # exactly, and the addition would be one more traced operation in every step
        self._at_zero = isinstance(lower, (int, float)) and lower == 0

    def forward(self, u):
        if self._at_zero:     # anp.exp recorded in one pass (fused.record)
            return record(anp.exp, (u,))
        return self.lower + anp.exp(u)

    def inverse(self, x):
        return anp.log(x - self.lower)

    def log_det_jacobian(self, u):
        return _sum_draws(u)


class UpperBound(Bijector):
    """``(-inf, upper)``: ``x = upper - exp(u)``, log-Jacobian ``u``."""

    def __init__(self, upper: Any):
        self.upper = upper

    def forward(self, u):
        return self.upper - anp.exp(u)

    def inverse(self, x):
        return anp.log(self.upper - x)

    def log_det_jacobian(self, u):
        return _sum_draws(u)


class IntervalBound(Bijector):
    """``(lower, upper)``: ``x = lower + (upper - lower) * sigmoid(u)``.

    log-Jacobian ``log(upper - lower) + log sigmoid(u) + log sigmoid(-u)``.
    """

    def __init__(self, lower: Any, upper: Any):
        self.lower = lower
        self.upper = upper

    def forward(self, u):
        width = self.upper - self.lower
        # measure from the nearer end: near a bound at 0, x = upper - small keeps the digits
        # that lower + (width - small) would cancel (so inverse(forward(u)) == u for large u)
        near_lower = self.lower + width * anp.exp(_log_sigmoid(u))
        near_upper = self.upper - width * anp.exp(_log_sigmoid(-u))
        return anp.where(u < 0, near_lower, near_upper)

    def inverse(self, x):
        # logit((x - lower) / (upper - lower)) without forming the ratio
        return anp.log(x - self.lower) - anp.log(self.upper - x)

    def log_det_jacobian(self, u):
        return _sum_draws(anp.log(self.upper - self.lower) + _log_sigmoid(u) + _log_sigmoid(-u))


class StickBreaking(Bijector):
    """The unit simplex on the last axis: K-1 free values -> K non-negative values summing to 1.

    Stan Reference Manual 2.26, section 10.7 "Unit simplex"
    (https://mc-stan.org/docs/2_26/reference-manual/simplex-transform-section.html):
    for 0-based k = 0..K-2, ``z_k = sigmoid(u_k - log(K - k - 1))`` (the offset maps u = 0
    to the simplex centre), ``x_k = (1 - sum_{j<k} x_j) z_k``, and the last x is the
    remainder. ``log|J| = sum_k log z_k + log(1 - z_k) + log(1 - sum_{j<k} x_j)``.
    """

    @staticmethod
    def _offset(k_free):
        return anp.log(anp.arange(k_free, 0, -1.0))       # log(K-1), ..., log(1)

    def _parts(self, u):
        """log z, log(1 - z) and log of the stick left before each break, each [..., K-1]."""
        v = u - self._offset(u.shape[-1])
        log_z, log_1mz = _log_sigmoid(v), _log_sigmoid(-v)
        # 1 - sum_{j<k} x_j = prod_{j<k} (1 - z_j): an exclusive cumulative sum of log(1 - z),
        # built in log space (stable, and no in-place assignment for autograd)
        log_left = anp.cumsum(log_1mz, axis=-1) - log_1mz
        return log_z, log_1mz, log_left

    def forward(self, u):
        return self._forward(self._parts(u))

    @staticmethod
    def _forward(parts):
        log_z, log_1mz, log_left = parts
        # the last x is the stick left after every break (a sum, so K = 1 gives x = [1])
        log_rest = anp.sum(log_1mz, axis=-1, keepdims=True)
        log_x = anp.concatenate([log_z + log_left, log_rest], axis=-1)
        # no x below the smallest normal float, as numpyro's stick-breaking clips: a sparse
        # Dirichlet (alpha = 0.01) puts u_k near -1000, where exp underflows to 0 and
        # (alpha - 1) log x is +inf (the fit diverged)
        return anp.exp(anp.maximum(log_x, _LOG_TINY))

    def forward_and_log_det(self, u):
        parts = self._parts(u)     # once for both: a traced operation costs microseconds
        return self._forward(parts), self._log_det(parts)

    def inverse(self, x):
        # stick left before break k is sum_{j>=k} x_j: a reversed cumulative sum, more
        # accurate than 1 - sum_{j<k} x_j; then logit(z_k) = log x_k - log(left after k)
        left = anp.cumsum(x[..., ::-1], axis=-1)[..., ::-1]
        k_free = x.shape[-1] - 1
        return anp.log(x[..., :-1]) - anp.log(left[..., 1:]) + self._offset(k_free)

    def log_det_jacobian(self, u):
        return self._log_det(self._parts(u))

    @staticmethod
    def _log_det(parts):
        log_z, log_1mz, log_left = parts
        return _sum_draws(log_z + log_1mz + log_left)

    def free_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class OrderedBijector(Bijector):
    """Strictly increasing vectors on the last axis: ``x_0 = u_0``, ``x_k = x_{k-1} + exp(u_k)``.

    Stan Reference Manual 2.26, section 10.6 "Ordered vector"
    (https://mc-stan.org/docs/2_26/reference-manual/ordered-vector.html); log-Jacobian
    ``sum_{k>=1} u_k``. ``positive`` gives ``positive_ordered`` (section 10.6 too):
    ``x_0 = exp(u_0)``, log-Jacobian ``sum_k u_k``.
    """

    def __init__(self, positive: bool = False):
        self.positive = positive

    def forward(self, u):
        first = anp.exp(u[..., :1]) if self.positive else u[..., :1]
        # a cumulative sum of positive increments: no in-place assignment for autograd
        return anp.concatenate([first, first + anp.cumsum(anp.exp(u[..., 1:]), axis=-1)],
                               axis=-1)

    def inverse(self, x):
        first = anp.log(x[..., :1]) if self.positive else x[..., :1]
        return anp.concatenate([first, anp.log(x[..., 1:] - x[..., :-1])], axis=-1)

    def log_det_jacobian(self, u):
        return _sum_draws(u if self.positive else u[..., 1:])


class AR1Innovations(Bijector):
    """A latent ``x ~ AR1(mu, phi, sigma)`` through its standardized innovations (non-centred).

    ``u`` [S, *batch, T] maps to x[0] = mu + s0 u[0], x[t] = mu + phi (x[t-1] - mu) + sigma
    u[t], s0 = sigma / sqrt(1 - phi^2): under the prior, u is standard normal whatever mu,
    phi and sigma are, so a mean-field guide on u keeps the series' correlations (one on x
    itself cannot hold them, and settles at phi near 0: docs/accuracy.md, stochastic
    volatility). log-Jacobian ``log s0 + (T - 1) log sigma`` per series. The parameters are lined up
    with the batch axes ([S or 1, *batch], or floats), as AR1's log density takes them.
    """

    def __init__(self, mu: Any, phi: Any, sigma: Any):
        self.mu, self.phi, self.sigma = (anp.expand_dims(v, -1) for v in (mu, phi, sigma))
        self.first = self.sigma / anp.sqrt((1 - self.phi) * (1 + self.phi))

    def forward(self, u):
        shocks = anp.concatenate([self.first * u[..., :1], self.sigma * u[..., 1:]], axis=-1)
        return self.mu + _ar1_filter(shocks, self.phi)

    def inverse(self, x):
        x = x - self.mu
        shocks = anp.concatenate([x[..., :1], x[..., 1:] - self.phi * x[..., :-1]], axis=-1)
        return anp.concatenate([shocks[..., :1] / self.first, shocks[..., 1:] / self.sigma],
                               axis=-1)

    def log_det_jacobian(self, u):
        per_series = anp.log(self.first) + (u.shape[-1] - 1) * anp.log(self.sigma)
        return _sum_draws(per_series + anp.zeros(u.shape[:-1] + (1,)))


@primitive
def _ar1_filter(e, phi):
    """y[t] = phi y[t-1] + e[t] along the last axis (y[0] = e[0]); phi [..., 1].

    ceil(log2 T) doubling rounds in numpy: after the round with lag L, y[t] = sum over s < 2L
    of phi^s e[t-s]. A primitive, so autograd records one node, not the rounds' dozens (the
    gradient of a traced version cost 2.4 ms of a 6 ms step at T = 400, S = 5).
    """
    y = np.array(np.broadcast_to(e, np.broadcast(e, phi).shape), dtype=float)
    power, lag, n = np.asarray(phi, dtype=float), 1, y.shape[-1]
    while lag < n:
        y[..., lag:] = y[..., lag:] + power * y[..., :-lag]
        power, lag = power * power, 2 * lag
    return y


def _ar1_filter_transposed(g, phi):
    """The filter's adjoint: sum over s of phi^s g[t+s] (the filter run backwards in time)."""
    return _ar1_filter(g[..., ::-1], phi)[..., ::-1]


# y = F(phi) e is linear in e, so d/de is the adjoint; dy/dphi = F(phi) applied to y shifted
# one step (differentiate y[t] = phi y[t-1] + e[t]), whose pairing with g is sum_t
# adjoint(g)[t] y[t-1]. Written with autograd ops, so Hessian-vector products trace through.
defvjp(_ar1_filter,
       lambda ans, e, phi: unbroadcast_f(e, lambda g: _ar1_filter_transposed(g, phi)),
       lambda ans, e, phi: unbroadcast_f(phi, lambda g: anp.sum(
           _ar1_filter_transposed(g, phi)[..., 1:] * ans[..., :-1], axis=-1, keepdims=True)))


def _log1m_tanh_sq(u):
    """``log(1 - tanh(u)^2) = 2 log sech(u)``, stable for large |u| (no 1 - 1 cancellation)."""
    a = anp.abs(u)
    return 2.0 * (_LOG_2 - a - anp.log1p(anp.exp(-2.0 * a)))


@lru_cache(maxsize=None)
def _lower(k):
    """(rows, cols) of the strict lower triangle of a K x K matrix, row-major (as
    ``numpy.tril_indices(K, -1)``), and the [K, K] index of each entry into ``[0, v...]``
    (0 off the triangle). Cached: ``tril_indices`` takes longer than the small maps it serves."""
    rows, cols = np.tril_indices(k, -1)
    index = np.zeros((k, k), dtype=int)
    index[rows, cols] = np.arange(1, len(rows) + 1)
    return rows, cols, index


def _scatter_lower(v, k):
    """[..., K(K-1)/2] -> [..., K, K]: v on the strict lower triangle (see :func:`_lower`),
    zeros elsewhere. A gather from ``[0, v...]`` by a constant index matrix: autograd
    differentiates it and nothing is assigned in place."""
    padded = anp.concatenate([anp.zeros(tuple(shape_of(v)[:-1]) + (1,)), v], axis=-1)
    return padded[..., _lower(k)[2]]


def _corr_parts(u, k):
    """z = tanh(u) [..., K, K] (strict lower), a = log(1 - z^2) there, and the exclusive
    cumulative sum of a along each row, log(1 - sum_{m<j} L_im^2) (CorrCholeskyBijector)."""
    z = _scatter_lower(anp.tanh(u), k)
    a = _scatter_lower(_log1m_tanh_sq(u), k)
    return z, a, anp.cumsum(a, axis=-1) - a


@primitive
def _corr_cholesky(u, k):
    """[..., K K + K(K-1)/2]: the Cholesky factor L of CorrCholeskyBijector, flattened, then
    the log-Jacobian's terms at the strict lower entries, log(1 - z_ij^2) + 0.5 log left_ij.
    One primitive with its gradient written out (_corr_cholesky_vjp): traced, these were about
    25 autograd operations; value and gradient at 60 draws of a 2 x 2 factor went 343 -> 170
    microseconds (docs/performance.md)."""
    z, a, log_left = _corr_parts(u, k)
    rows, cols, _ = _lower(k)
    # z is 0 on and above the diagonal: adding eye puts 1 on the diagonal, so the product is
    # z_ij * sqrt(left) below it, sqrt(left) on it and 0 above it
    x = (z + np.eye(k)) * np.exp(0.5 * log_left)
    terms = a[..., rows, cols] + 0.5 * log_left[..., rows, cols]
    return np.concatenate([np.reshape(x, np.shape(x)[:-2] + (k * k,)), terms], axis=-1)


def _corr_cholesky_vjp(ans, u, k):
    """The gradient of <g, _corr_cholesky(u, k)> in u. With a_ij = log(1 - z_ij^2) and P_ij
    = sum_{m<j} a_im: L_ij = z_ij e^{P_ij / 2} below the diagonal, L_ii = e^{P_ii / 2}, and the
    term t_ij = a_ij + P_ij / 2, so a_ij reaches L_im and t_im for every m > j of its row:
    d/da_ij = sum_{m>j} (G L)_im / 2 + g_ij + sum_{j<m<i} g_im / 2, d/dz_ij = G_ij e^{P_ij / 2},
    and dz/du = 1 - z^2 = e^a, da/du = -2 z. Written with autograd operations, so Hessian-vector
    products trace through it (as _ar1_filter's)."""
    rows, cols, _ = _lower(k)

    def after(v):   # the sum over m > j along each row: an exclusive reversed cumulative sum
        return anp.cumsum(v[..., ::-1], axis=-1)[..., ::-1] - v

    def vjp(g):
        z, a, log_left = _corr_parts(u, k)
        lead = tuple(shape_of(u)[:-1])
        G = anp.reshape(g[..., :k * k], lead + (k, k))
        x = anp.reshape(ans[..., :k * k], lead + (k, k))
        g_terms = _scatter_lower(g[..., k * k:], k)
        d_a = 0.5 * after(G * x) + g_terms + 0.5 * after(g_terms)
        d_u = G * anp.exp(0.5 * log_left + a) - 2.0 * z * d_a
        return d_u[..., rows, cols]
    return vjp


defvjp(_corr_cholesky, _corr_cholesky_vjp)


class CorrCholeskyBijector(Bijector):
    """Cholesky factors of correlation matrices [..., K, K] from K(K-1)/2 free values.

    Stan Reference Manual 2.26, section 10.12 "Cholesky factors of correlation matrices"
    (mc-stan.org/docs/2_26/reference-manual/cholesky-factors-of-correlation-matrices-1.html):
    the free values, row-major over the strict lower triangle (``numpy.tril_indices(K, -1)``),
    map by ``z = tanh(u)`` to canonical partial correlations; then
    ``L_ij = z_ij sqrt(1 - sum_{k<j} L_ik^2)`` for j < i and ``L_ii = sqrt(1 - sum_{k<i} L_ik^2)``.
    log-Jacobian (with respect to the strict lower triangle of L):
    ``sum_{i>j} log(1 - z_ij^2) + 0.5 log(1 - sum_{k<j} L_ik^2)``.
    """

    @staticmethod
    def _size(n_free):
        """K from K(K-1)/2."""
        k = int(round((1 + (1 + 8 * n_free) ** 0.5) / 2))
        if k * (k - 1) // 2 != n_free:
            raise ValueError(f"internal: {n_free} is not K(K-1)/2")
        return k

    def _both(self, u):
        """(x [..., K, K], log-Jacobian [S]) from one call of :func:`_corr_cholesky`."""
        k = self._size(shape_of(u)[-1])
        out = _corr_cholesky(u, k)
        x = anp.reshape(out[..., :k * k], tuple(shape_of(u)[:-1]) + (k, k))
        return x, _sum_draws(out[..., k * k:])

    def forward(self, u):
        return self._both(u)[0]

    def forward_and_log_det(self, u):
        return self._both(u)

    def inverse(self, x):
        k = x.shape[-1]
        rows, cols = anp.tril_indices(k, -1)
        # left_j = 1 - sum_{k<j} L_ik^2 = sum_{k>=j} L_ik^2: summed from the diagonal back,
        # which keeps the digits that 1 - (nearly 1) would cancel
        left = anp.cumsum((x * x)[..., ::-1], axis=-1)[..., ::-1]
        z = x[..., rows, cols] / anp.sqrt(left[..., rows, cols])
        # arctanh(z) = sign(z) (log1p(|z|) - 0.5 log(1 - z^2)), with 1 - z^2 = left_{j+1} / left_j
        # taken from the sums above rather than from z (accurate for |z| near 1)
        log_1mz2 = anp.log(left[..., rows, cols + 1]) - anp.log(left[..., rows, cols])
        return anp.sign(z) * (anp.log1p(anp.abs(z)) - 0.5 * log_1mz2)

    def log_det_jacobian(self, u):
        return self._both(u)[1]

    def free_shape(self, shape):
        k = shape[-1]
        return tuple(shape[:-2]) + (k * (k - 1) // 2,)


_FACTORIES: dict[type, Callable[[Any], Bijector]] = {
    c.Real: lambda con: Identity(),
    c.GreaterThan: lambda con: LowerBound(con.lower),
    c.LessThan: lambda con: UpperBound(con.upper),
    c.Interval: lambda con: IntervalBound(con.lower, con.upper),
    c.Simplex: lambda con: StickBreaking(),
    c.Ordered: lambda con: OrderedBijector(),
    c.PositiveOrdered: lambda con: OrderedBijector(positive=True),
    c.CorrCholesky: lambda con: CorrCholeskyBijector(),
}


def biject_to(constraint: c.Constraint) -> Bijector:
    """The bijector from unconstrained space onto ``constraint``.

    Parameters
    ----------
    constraint : a continuous support; its bounds are floats or run-time arrays.

    Raises
    ------
    NotImplementedError : no factory for this constraint type. The checker refuses discrete
        latents before this point, so reaching it is a bug in ppl, not a user error.
    """
    factory = _FACTORIES.get(type(constraint))
    if factory is None:
        raise NotImplementedError(
            f"internal: no bijector for support {constraint.describe()} "
            f"({type(constraint).__name__}); the checker should have refused it")
    return factory(constraint)
