"""Supports at check time: a distribution's support narrowed by declared bounds, the
numeric folding of literal bounds that the checks on them need (bounds outside the support,
lower >= upper, literal parameters outside their constraints), and the checks of supports and
parameter constraints that latents reach (ranges from ``ranges.py``).
"""
from __future__ import annotations

import dataclasses
import operator
import warnings
from typing import get_args

import numpy as np

from .. import constraints as c
from .. import errors, ir
from . import syntax


def narrow(name: str, declared: "syntax.Type | None", support: c.Constraint, lower, upper):
    """The distribution's support narrowed by the declared bounds (IR expressions or None),
    and whether it was narrowed (a truncated prior)."""
    if lower is None and upper is None:
        return support, False
    if not isinstance(support, (c.Real, c.GreaterThan, c.LessThan, c.Interval)):
        raise errors.bounds_on_support(declared.span, name, support.describe())
    lo, hi = _interval_bounds(support)
    n_lo, n_hi = number(lo), number(hi)
    new_lo, new_hi = lo, hi
    for bound, side in ((lower, "lower"), (upper, "upper")):
        if bound is None:
            continue
        v = literal_value(bound)
        if v is not None and bound_outside(v, side, n_lo, n_hi):
            raise errors.bounds_outside_support(bound.span, name, f"{side}={v:g}",
                                                describe(support))
        if v is None or v != (n_lo if side == "lower" else n_hi):
            end = lo if side == "lower" else hi
            if bound.deps and end is not None:
                bound = _clipped(bound, side, end)
            new_lo, new_hi = (bound, new_hi) if side == "lower" else (new_lo, bound)
    if new_lo is lo and new_hi is hi:
        return support, False
    if new_lo is None:
        return c.LessThan(new_hi), True
    if new_hi is None:
        return c.GreaterThan(new_lo), True
    return c.Interval(new_lo, new_hi), True


def _clipped(bound: ir.Expr, side: str, end) -> ir.Expr:
    """``maximum(bound, end)`` for a lower bound, ``minimum(bound, end)`` for an upper one.

    Bounds narrow the distribution's support, never widen it (LANGUAGE.md, Types). A literal
    or data bound outside the support is refused (here, or when the data is loaded); a bound
    that moves with a latent can only be clipped, draw by draw: ``real<lower=b> ~
    HalfNormal(1)`` with b at -2 drew s down to -2 and gave those values HalfNormal's formula.
    """
    if not isinstance(end, get_args(ir.Expr)):
        end = ir.Const(float(end), (), "real")
    return ir.Call("maximum" if side == "lower" else "minimum", (bound, end), None,
                   bound.shape, "real", bound.deps, bound.span)


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def literal_value(e: ir.Expr | None) -> float | None:
    """The value of a scalar expression of numeric literals alone (see ``constant_value``)."""
    v = constant_value(e)
    return None if v is None or v.ndim else float(v)


def constant_value(e: ir.Expr | None) -> np.ndarray | None:
    """The value of an expression of numeric literals alone: + - * /, unary minus and vector
    literals ``[...]``; None for anything else, and for 1 / 0 or 0 * inf (no number)."""
    if isinstance(e, ir.Const):
        return np.asarray(float(e.value))
    if isinstance(e, ir.Neg):
        v = constant_value(e.operand)
        return None if v is None else np.negative(v)
    if isinstance(e, ir.Vector):
        items = [constant_value(item) for item in e.items]
        return None if any(v is None for v in items) else np.stack(items)
    if isinstance(e, ir.BinOp) and e.op in ARITHMETIC:
        a, b = constant_value(e.left), constant_value(e.right)
        if a is None or b is None:
            return None
        # an overflow gives inf, which the checks report; a division by zero has no value
        with np.errstate(over="ignore", divide="raise", invalid="raise"):
            try:
                return np.asarray(ARITHMETIC[e.op](a, b))
            except FloatingPointError:
                return None
    return None


def check_constant(cls, name: str, value: ir.Expr) -> None:
    """Refuse a parameter written with literals alone that lies outside its constraint or is
    not finite: ``Normal(0, -1)``, ``Normal(0, 1e400)``, ``Categorical([0.3, 0.3])``, a
    covariance that is not symmetric positive definite. The found value names the element, or
    for a parameter with event axes (a vector of probabilities, a matrix) the whole event."""
    v = constant_value(value)
    if v is not None:
        check_parameter_value(cls, name, v, value.span)


def check_parameter_value(cls, name: str, v: np.ndarray, span) -> None:
    """Refuse the value ``v`` of parameter ``name`` of distribution ``cls`` (a constant, or
    a data-only expression evaluated on the data) when it is not finite or lies outside the
    parameter's constraint, naming the element or event (as :func:`check_constant`)."""
    constraint = cls.constraints.get(name)
    if constraint is None:
        return
    v = np.asarray(v, dtype=float)
    finite = np.isfinite(v)
    # checked finite first: eigenvalues of a matrix holding inf are not defined
    ok = finite if not finite.all() else np.asarray(constraint.check(v))
    if ok.all():
        return
    event = cls.param_event_dims.get(name, 0)
    at = np.unravel_index(int(np.argmin(ok)), ok.shape)[:v.ndim - event]
    found = _format(v[at]) + (f" at {name}[{', '.join(str(i) for i in at)}]" if at else "")
    raise errors.bad_parameter(span, cls.name, name, constraint.describe(), found)


def _format(v: np.ndarray) -> str:
    """A constant as written in the language: ``-1``, ``[0.3, 0.3]``, ``[[1, 0.9], [0, 1]]``."""
    if v.ndim == 0:
        return f"{float(v):g}"
    shown = [_format(item) for item in v[:8]] + (["..."] if len(v) > 8 else [])
    return "[" + ", ".join(shown) + "]"


def number(bound) -> float | None:
    """A support bound's numeric value: floats as they are, literal expressions folded."""
    if bound is None or isinstance(bound, (int, float, np.integer, np.floating)):
        return None if bound is None else float(bound)
    return literal_value(bound)


def _interval_bounds(support: c.Constraint):
    """(lower, upper) of a support on the real line, None for an infinite end."""
    if not isinstance(support, (c.Real, c.GreaterThan, c.LessThan, c.Interval)):
        raise TypeError(f"check: no bounds rule for the support {support!r}")
    return getattr(support, "lower", None), getattr(support, "upper", None)


def bound_outside(v, side: str, lo, hi, closed: bool = False):
    """Whether a declared bound ``v`` (a number, or elementwise an array) leaves no room inside
    the support ``(lo, hi)`` (None for an infinite end); ``closed``: an int support
    ``{lo..hi}``, where a bound may sit on either end. Literal bounds are checked with it at
    check time, bounds computed from data when the data is loaded (data.py)."""
    v = np.asarray(v)
    if closed:
        low, high = lo is not None and v < lo, hi is not None and v > hi
    elif side == "lower":
        low, high = lo is not None and v < lo, hi is not None and v >= hi
    else:
        low, high = lo is not None and v <= lo, hi is not None and v > hi
    return np.logical_or(low, high)


def describe(support: c.Constraint) -> str:
    """``support.describe()`` with literal expression bounds shown as numbers."""
    fields = {f.name: getattr(support, f.name) for f in dataclasses.fields(support)}
    numeric = {k: number(v) if k in ("lower", "upper") and number(v) is not None else v
               for k, v in fields.items()}
    return dataclasses.replace(support, **numeric).describe()


# ----- supports and constraints reached by latents -----------------------------------------

def refuse_moving_support(dist: ir.Dist, observed: ir.Expr, declared: dict, first) -> None:
    """Refuse an observed distribution whose support moves with a latent (Uniform(0, u)).

    The data bound such a latent (u >= max(y)), and gradient steps on an unconstrained space
    cannot respect a bound they are not told about: the fit would report mass where the
    posterior has none. Allowed: the parameter is a latent declared with the bound on the side
    the data need (``lower=`` for Uniform's ``upper``), given by data. ``declared`` maps a
    latent's name to its declared (lower, upper) IR bounds; ``first`` names a latent in deps.
    """
    cls = dist.cls
    for name, value in dist.params:
        if name not in cls.support_params or not value.deps:
            continue
        side = cls.support_params[name]
        if isinstance(value, ir.Ref) and value.kind == "latent":
            bound = dict(zip(("lower", "upper"), declared.get(value.name, (None, None))))[side]
            if bound is not None and not bound.deps:
                continue
        raise errors.support_depends_on_latent(value.span, cls.name, name, first(value.deps),
                                               side, observed.span.text)


def check_param_ranges(dist: ir.Dist, analysis, dependency) -> None:
    """Compare the range of every latent-dependent parameter with its constraint.

    Raises PplError when no value of the parameter can satisfy the constraint; warns when
    some can and some cannot (the fit gives those a log density of -inf, which the optimizer
    can only stumble on). A range holds every element, so a parameter with event axes is
    checked too when its constraint holds elementwise (Dirichlet's alpha is positive); one
    on the whole event (a simplex, a covariance) is not an interval and is left to the run-time
    guard. ``analysis`` is a ``ranges.Analysis`` of the program so far;
    ``dependency`` names a latent or param of deps as a message does.
    """
    from . import ranges
    cls = dist.cls
    for name, value in dist.params:
        if isinstance(value, ir.Dist):   # a Mixture's component: its own parameters' ranges
            check_param_ranges(value, analysis, dependency)
            continue
        constraint = cls.constraints.get(name)
        if not value.deps or constraint is None:
            continue
        allowed = ranges.of_constraint(constraint, analysis.of)
        if allowed is None:
            continue
        for piece in _elements(value):
            if not piece.deps:           # a literal among latents: [v, -1.0, 1.0]
                check_constant(cls, name, piece)
                continue
            found = analysis.of(piece)
            if ranges.contains(allowed, found):
                continue
            args = (piece.span, cls.name, name, constraint.describe(), dependency(piece.deps))
            if ranges.disjoint(allowed, found):
                raise errors.parameter_outside_constraint(*args)
            warnings.warn(errors.parameter_may_leave_constraint(*args), errors.PplWarning,
                          stacklevel=2)


def _elements(value: ir.Expr):
    """The items of a vector literal (nested ones flattened), each checked and located on its
    own against an elementwise constraint; any other expression as it is."""
    if isinstance(value, ir.Vector):
        for item in value.items:
            yield from _elements(item)
    else:
        yield value


def warn_truncation_moved_by_param(name: str, dist: "ir.Dist", lower, upper, kind) -> None:
    """Warn when a truncated prior or penalty (``truncated``: declared bounds narrow ``dist``'s
    support) has a bound that reads a param. Its normalizing constant is dropped, as for every
    truncation; with a bound of data it is a constant, but with a param's it moves with the
    param, and maximizing over the param no longer maximizes a likelihood: for ``z:
    real<lower=lo>[N] ~ Normal(0, 1)`` the fitted lo runs toward -inf (measured: -2.06 where
    the type-II maximum likelihood with the normalizer is 0.07). ``kind``: name -> the
    checker's kind of that name ('param', 'latent', ...)."""
    ends = _interval_bounds(dist.cls.support_of(dist.param_dict))
    for bound, side, end in ((lower, "lower", ends[0]), (upper, "upper", ends[1])):
        if bound is None or _text(bound) == _text(end):   # Uniform(b, 10) bounded by b: no cut
            continue
        params = sorted(d for d in bound.deps if kind(d) == "param")
        if params:
            warnings.warn(errors.truncation_moves_with_param(bound.span, name, dist.name,
                                                             params[0], side),
                          errors.PplWarning, stacklevel=2)
            return


def _text(expr) -> str | None:
    """The source text of an expression (None for a number or an expression without a span)."""
    return getattr(getattr(expr, "span", None), "text", None) or None
