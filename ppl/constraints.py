"""Supports and parameter constraints as frozen dataclasses.

A bound is an IR expression at check time and a number or array at run time: the same
classes serve both (``Interval(lower, upper)`` from a Uniform's parameters, say). Bijectors
for the continuous ones are registered in ``bijectors.py``; discrete ones only validate data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def _fmt(bound: Any) -> str:
    if isinstance(bound, (int, float, np.integer, np.floating)):
        return f"{bound:g}"
    span = getattr(bound, "span", None)  # an IR expression: show it as written
    return span.text if span is not None else "<expr>"


class Constraint:
    """Base class: ``discrete`` supports hold integers; ``check`` tests run-time values."""
    discrete = False

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


@dataclass(frozen=True)
class Simplex(Constraint):
    """Non-negative vectors summing to one along the last axis."""

    def check(self, x):
        ok = np.all(x >= 0, axis=-1) & np.isclose(np.sum(x, axis=-1), 1.0)
        return np.broadcast_to(ok[..., None], np.shape(x))

    def describe(self):
        return "simplex"


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


# Shared instances for parameter constraints.
real = Real()
positive = GreaterThan(0.0)
non_negative = GreaterThan(0.0, inclusive=True)
unit_interval = Interval(0.0, 1.0, inclusive=True)
simplex = Simplex()
non_negative_integer = NonNegativeInteger()
boolean = Boolean()
