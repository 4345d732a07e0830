"""Bijectors from unconstrained space to a latent's support, and the ``biject_to`` registry.

Each continuous constraint type in ``constraints.py`` has one factory here. The guide and the
compiler only call ``biject_to(support)``; discrete supports never get here (the checker
refuses discrete latents first).

Arrays carry a leading draw axis ([S, *shape]); bounds are floats or arrays lined up the same
way ([S or 1, ...]) and broadcast against ``u``. Everything is ``autograd.numpy``.
"""
from __future__ import annotations

from typing import Any, Callable

import autograd.numpy as anp

from . import constraints as c


def _log_sigmoid(u):
    """``log(sigmoid(u)) = -softplus(-u)``, stable for large |u|."""
    return -anp.logaddexp(0.0, -u)


def _sum_draws(t):
    """Sum over every axis but the leading draw axis: [S, ...] -> [S]."""
    if anp.ndim(t) <= 1:
        return t
    return anp.sum(t, axis=tuple(range(1, anp.ndim(t))))


class Bijector:
    """A smooth invertible map ``x = forward(u)`` from free ``u`` to the support.

    Methods
    -------
    forward(u) : [S, *free_shape] -> [S, *shape]
    inverse(x) : [S, *shape] -> [S, *free_shape]
    log_det_jacobian(u) : [S]; log|det dx/du| summed over all axes but the draw axis.
    free_shape(shape) : the unconstrained shape of a latent of constrained ``shape``.
    """

    def forward(self, u):
        raise NotImplementedError

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

    def forward(self, u):
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
        log_z, log_1mz, log_left = self._parts(u)
        # the last x is the stick left after every break (a sum, so K = 1 gives x = [1])
        log_rest = anp.sum(log_1mz, axis=-1, keepdims=True)
        log_x = anp.concatenate([log_z + log_left, log_rest], axis=-1)
        return anp.exp(log_x)

    def inverse(self, x):
        # stick left before break k is sum_{j>=k} x_j: a reversed cumulative sum, more
        # accurate than 1 - sum_{j<k} x_j; then logit(z_k) = log x_k - log(left after k)
        left = anp.cumsum(x[..., ::-1], axis=-1)[..., ::-1]
        k_free = x.shape[-1] - 1
        return anp.log(x[..., :-1]) - anp.log(left[..., 1:]) + self._offset(k_free)

    def log_det_jacobian(self, u):
        log_z, log_1mz, log_left = self._parts(u)
        return _sum_draws(log_z + log_1mz + log_left)

    def free_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] - 1,)


_FACTORIES: dict[type, Callable[[Any], Bijector]] = {
    c.Real: lambda con: Identity(),
    c.GreaterThan: lambda con: LowerBound(con.lower),
    c.LessThan: lambda con: UpperBound(con.upper),
    c.Interval: lambda con: IntervalBound(con.lower, con.upper),
    c.Simplex: lambda con: StickBreaking(),
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
