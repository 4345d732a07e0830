"""Supports and parameter constraints as frozen dataclasses.

A bound is an IR expression at check time and a number or array at run time: the same
classes serve both (``Interval(lower, upper)`` from a Uniform's parameters, say). Bijectors
for the continuous ones are registered in ``bijectors.py``; discrete ones only validate data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import linalg


def _fmt(bound: Any) -> str:
    if isinstance(bound, (int, float, np.integer, np.floating)):
        return f"{bound:g}"
    span = getattr(bound, "span", None)  # an IR expression: show it as written
    return span.text if span is not None else "<expr>"


class Constraint:
    """Base class: ``discrete`` supports hold integers; ``check`` tests run-time values.

    ``parameter_only`` constraints restrict distribution parameters (a covariance matrix)
    and are never a latent's support, so they have no bijector. ``event_dim``: the trailing
    axes one value spans (1 for a vector such as a simplex, 2 for a matrix), which its
    bijector mixes; elementwise supports have 0 (numpyro's ``constraint.event_dim``).
    """
    discrete = False
    parameter_only = False
    event_dim = 0

    def check(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask, True where ``x`` lies in the support (numeric bounds only)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Real(Constraint):
    def check(self, x):
        return np.isfinite(x)

    def describe(self):
        return "real"


@dataclass(frozen=True)
class GreaterThan(Constraint):
    """``(lower, inf)``; ``inclusive`` makes it ``[lower, inf)`` for data checks."""
    lower: Any
    inclusive: bool = False

    def check(self, x):
        return (x >= self.lower) if self.inclusive else (x > self.lower)

    def describe(self):
        return f"{'[' if self.inclusive else '('}{_fmt(self.lower)}, inf)"


@dataclass(frozen=True)
class LessThan(Constraint):
    """``(-inf, upper)``; ``inclusive`` makes it ``(-inf, upper]`` for data checks."""
    upper: Any
    inclusive: bool = False

    def check(self, x):
        return (x <= self.upper) if self.inclusive else (x < self.upper)

    def describe(self):
        return f"(-inf, {_fmt(self.upper)}{']' if self.inclusive else ')'}"


@dataclass(frozen=True)
class Interval(Constraint):
    """``(lower, upper)``, or closed ends where ``inclusive`` (data checks only)."""
    lower: Any
    upper: Any
    inclusive: bool = False

    def check(self, x):
        if self.inclusive:
            return (x >= self.lower) & (x <= self.upper)
        return (x > self.lower) & (x < self.upper)

    def describe(self):
        left, right = ("[", "]") if self.inclusive else ("(", ")")
        return f"{left}{_fmt(self.lower)}, {_fmt(self.upper)}{right}"


# Rounding slack for checks of computed matrices (unit rows, symmetry) and of a probability
# vector's sum: Stan's CONSTRAINT_TOLERANCE, far above float64 rounding of a K x K product, far
# below any real violation.
_TOL = 1e-8


@dataclass(frozen=True)
class Simplex(Constraint):
    """Non-negative vectors summing to one along the last axis, within ``tolerance``.

    The default is numpy's ``isclose`` slack (1e-8 + 1e-5), so that observed simplex data
    rounded to a few digits still load; a parameter (Categorical's p) takes Stan's 1e-8.
    """
    event_dim = 1
    tolerance: float = 1e-8 + 1e-5

    def check(self, x):
        ok = np.all(x >= 0, axis=-1) & (np.abs(np.sum(x, axis=-1) - 1.0) <= self.tolerance)
        return np.broadcast_to(ok[..., None], np.shape(x))

    def describe(self):
        return "simplex"


@dataclass(frozen=True)
class Ordered(Constraint):
    """Strictly increasing vectors along the last axis (Stan's ``ordered``)."""
    event_dim = 1

    def check(self, x):
        x = np.asarray(x, dtype=float)
        ok = np.all(np.diff(x, axis=-1) > 0, axis=-1) & np.all(np.isfinite(x), axis=-1)
        return np.broadcast_to(ok[..., None], x.shape)

    def describe(self):
        return "ordered"


@dataclass(frozen=True)
class PositiveOrdered(Constraint):
    """Strictly increasing positive vectors along the last axis (Stan's ``positive_ordered``)."""
    event_dim = 1

    def check(self, x):
        x = np.asarray(x, dtype=float)
        ok = Ordered().check(x)[..., 0] & np.all(x > 0, axis=-1)
        return np.broadcast_to(ok[..., None], x.shape)

    def describe(self):
        return "positive_ordered"


@dataclass(frozen=True)
class CorrCholesky(Constraint):
    """Cholesky factors of correlation matrices on the last two axes [..., K, K]: lower
    triangular, positive diagonal, every row of unit length (so L @ L.T has a unit diagonal)."""
    event_dim = 2

    def check(self, x):
        x = np.asarray(x, dtype=float)
        upper = np.triu(x, 1)
        ok = (np.all(upper == 0, axis=(-2, -1))
              & np.all(np.diagonal(x, axis1=-2, axis2=-1) > 0, axis=-1)
              & np.all(np.abs(np.sum(x * x, axis=-1) - 1.0) <= _TOL, axis=-1))
        return np.broadcast_to(ok[..., None, None], x.shape)

    def describe(self):
        return "Cholesky factor of a correlation matrix"


@dataclass(frozen=True)
class PositiveDefinite(Constraint):
    """Symmetric positive definite matrices on the last two axes (MvNormal's ``cov``)."""
    event_dim = 2
    parameter_only = True

    def check(self, x):
        x = np.asarray(x, dtype=float)
        symmetric = np.all(np.abs(x - np.swapaxes(x, -1, -2))
                           <= _TOL * (1 + np.abs(x)), axis=(-2, -1))
        # the test MvNormal's density applies: a Cholesky factor of the symmetric part (an
        # eigenvalue of 1e-16 can pass eigvalsh and fail the factorization, and then the
        # density is NaN at every draw)
        factor = linalg.cholesky_symmetric(x)
        ok = symmetric & np.all(np.isfinite(factor), axis=(-2, -1))
        return np.broadcast_to(ok[..., None, None], x.shape)

    def describe(self):
        return "symmetric positive definite"


@dataclass(frozen=True)
class LowerCholesky(Constraint):
    """Lower-triangular matrices with a positive diagonal (MvNormal's ``scale_tril``)."""
    event_dim = 2
    parameter_only = True

    def check(self, x):
        x = np.asarray(x, dtype=float)
        ok = (np.all(np.triu(x, 1) == 0, axis=(-2, -1))
              & np.all(np.diagonal(x, axis1=-2, axis2=-1) > 0, axis=-1))
        return np.broadcast_to(ok[..., None, None], x.shape)

    def describe(self):
        return "lower triangular with a positive diagonal"


# ----- discrete supports: data validation only; the checker refuses them for latents -------

@dataclass(frozen=True)
class Boolean(Constraint):
    discrete = True

    def check(self, x):
        return (x == 0) | (x == 1)

    def describe(self):
        return "{0, 1}"


@dataclass(frozen=True)
class IntegerInterval(Constraint):
    """``{lower, ..., upper}``."""
    discrete = True
    lower: Any
    upper: Any

    def check(self, x):
        return (x >= self.lower) & (x <= self.upper) & (np.floor(x) == x)

    def describe(self):
        return f"{{{_fmt(self.lower)}..{_fmt(self.upper)}}}"


@dataclass(frozen=True)
class NonNegativeInteger(Constraint):
    discrete = True

    def check(self, x):
        return (x >= 0) & (np.floor(x) == x)

    def describe(self):
        return "{0, 1, ...}"


@dataclass(frozen=True)
class Integer(Constraint):
    """All integers (DiscreteUniform's bounds)."""
    discrete = True

    def check(self, x):
        return np.floor(x) == x

    def describe(self):
        return "integer"


@dataclass(frozen=True)
class CountVector(Constraint):
    """Non-negative integer vectors summing to ``total`` along the last axis (Multinomial).

    A run-time ``total`` array keeps a trailing axis of length 1 for the event, so that it
    broadcasts against the value like any other bound.
    """
    discrete = True
    total: Any

    def check(self, x):
        x = np.asarray(x)
        ok = (np.all((x >= 0) & (np.floor(x) == x), axis=-1, keepdims=True)
              & (np.sum(x, axis=-1, keepdims=True) == np.asarray(self.total)))
        return np.broadcast_to(ok, np.broadcast_shapes(ok.shape, x.shape))

    def describe(self):
        return f"counts summing to {_fmt(self.total)}"


# Shared instances for parameter constraints.
real = Real()
positive = GreaterThan(0.0)
non_negative = GreaterThan(0.0, inclusive=True)
unit_interval = Interval(0.0, 1.0, inclusive=True)
simplex = Simplex()
probabilities = Simplex(tolerance=_TOL)
non_negative_integer = NonNegativeInteger()
boolean = Boolean()
integer = Integer()
ordered = Ordered()
positive_ordered = PositiveOrdered()
corr_cholesky = CorrCholesky()
positive_definite = PositiveDefinite()
lower_cholesky = LowerCholesky()
