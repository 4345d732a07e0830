"""Distributions inside expressions, at check time: ``lpdf``/``lcdf``/``lccdf(DIST, x)`` and a
distribution call given as a parameter (the components of ``Mixture(w, Normal(mu, sigma))``).

The checker calls in here with itself as ``checker`` (for ``_dist`` and ``_expr``); the compiler
evaluates the resulting ``ir.Density`` and distribution-valued parameters.
"""
from __future__ import annotations

import warnings

from .. import errors, ir
from . import ranges, shapes, syntax
from .shapes import Shape, ShapeError
from .supports import check_param_ranges

# language name -> the distribution method it calls (None: log_density, which every one has)
DENSITY_FUNCTIONS = {"lpdf": "log_density", "lcdf": "log_cdf", "lccdf": "log_ccdf"}


def dist_params(cls) -> frozenset:
    """Names of ``cls``'s parameters that take a distribution call (Mixture's components)."""
    return frozenset(getattr(cls, "dist_params", ()))


def density(checker, e: syntax.Call) -> ir.Density:
    """Check ``lpdf(DIST, x)`` (or lcdf, lccdf): DIST a distribution call, x any expression
    whose batch shape broadcasts with DIST's.

    Raises
    ------
    PplError : a first argument that is not a distribution call, a distribution without the
        CDF asked for, wrong arguments, or shapes that do not broadcast.
    """
    if len(e.args) != 2 or e.kwargs:
        raise errors.wrong_arguments(e.span, e.func, ["DIST, x"])
    call, value_node = e.args
    if not isinstance(call, syntax.Call) or call.func in DENSITY_FUNCTIONS or \
            checker_lookup_function(call.func):
        raise errors.density_needs_distribution(call.span, e.func)
    dist = checker._dist(call)
    method = DENSITY_FUNCTIONS[e.func]
    if getattr(dist.cls, method, None) is None:
        raise errors.no_cdf(call.func_span, e.func, dist.name)
    value = checker._expr(value_node)
    event = dist.cls.event_dim
    if len(value.shape) < event:
        raise errors.too_few_dimensions(value.span, f"a value of {dist.name}", event, value.shape)
    checker._check_event(dist, value.shape, e.span)
    try:
        shape = shapes.broadcast(dist.batch_shape, value.shape[:len(value.shape) - event],
                                 f"shapes of the distribution and the value of '{e.func}'")
    except ShapeError as err:
        raise err.at(e.span) from None
    check_param_ranges(dist, checker.ranges, checker._dependency)   # outside: -inf, as a term's
    if e.func == "lpdf" and value.deps:
        continuous = sorted(d for d in value.deps if checker.scope[d].dtype != "int")
        if dist.cls.support_of(dist.param_dict).discrete and continuous:
            raise errors.density_of_continuous_value(value.span, dist.name, continuous[0])
        _check_value_range(checker, dist, value)
    return ir.Density(e.func, dist, value, shape, "real", dist.deps | value.deps, span=e.span)


def _check_value_range(checker, dist: ir.Dist, value: ir.Expr) -> None:
    """The range of a latent-dependent value against the support of lpdf's distribution, as
    ``supports.check_param_ranges`` does for parameters: outside it lpdf is -inf."""
    support = dist.cls.support_of(dist.param_dict)
    allowed = None if dist.cls.event_dim else ranges.of_constraint(support,
                                                                   checker.ranges.of)
    if allowed is None:
        return
    found = checker.ranges.of(value)
    if ranges.contains(allowed, found):
        return
    args = (value.span, dist.name, support.describe(), checker._dependency(value.deps))
    if ranges.disjoint(allowed, found):
        raise errors.density_value_outside_support(*args)
    warnings.warn(errors.density_value_may_leave_support(*args), errors.PplWarning,
                  stacklevel=2)


def checker_lookup_function(name: str) -> bool:
    from .. import functions
    return functions.lookup(name) is not None


def component(checker, e: syntax.Expr, cls) -> ir.Dist:
    """A distribution-valued parameter: it must be written as a distribution call."""
    if not isinstance(e, syntax.Call) or checker_lookup_function(e.func) or \
            e.func in DENSITY_FUNCTIONS:
        raise errors.component_not_distribution(e.span, cls.name)
    dist = checker._dist(e)
    if dist_params(dist.cls):
        raise errors.component_not_distribution(e.span, cls.name)
    if dist.cls.event_dim:
        raise errors.multivariate_component(e.span, cls.name, dist.name)
    if not dist.batch_shape:
        raise errors.too_few_dimensions(e.span, f"the components of {cls.name}", 1, ())
    return dist


def batch_shape(cls, params: dict) -> Shape:
    """The batch shape of a distribution from its checked parameters.

    Ordinary parameters broadcast their shapes less their event axes. A distribution-valued
    parameter (Mixture's components) contributes its batch shape less its last axis, which
    indexes the components and must match the weights' last axis.

    Raises
    ------
    ShapeError : parameters that do not broadcast; PplError for mismatched components.
    """
    what = f"parameter shapes of {cls.name}"
    batches = []
    for name, p in params.items():
        if isinstance(p, ir.Dist):
            batches.append(p.batch_shape[:-1])
            continue
        batches.append(p.shape[:len(p.shape) - cls.param_event_dims.get(name, 0)])
    _check_components(cls, params)
    _check_event_sizes(cls, params)
    return shapes.broadcast_all(batches, what)


def _check_event_sizes(cls, params: dict) -> None:
    """Every event axis of the parameters has one size K: MvNormal's mu [K] and its cov or
    scale_tril [K, K]."""
    events = [(name, p, p.shape[len(p.shape) - cls.param_event_dims[name]:])
              for name, p in params.items()
              if not isinstance(p, ir.Dist) and cls.param_event_dims.get(name, 0)]
    k = next((d for _, _, event in events for d in event if isinstance(d, int)), None)
    for name, p, event in events:
        expected = (k,) * len(event)
        if not shapes.same(event, expected):
            raise errors.wrong_shape(p.span, f"parameter '{name}' of {cls.name}",
                                     p.shape[:len(p.shape) - len(event)] + expected, p.shape)


def _check_components(cls, params: dict) -> None:
    components = [p for p in params.values() if isinstance(p, ir.Dist)]
    if not components:
        return
    k = components[0].batch_shape[-1]
    for name, p in params.items():
        if isinstance(p, ir.Dist) or not cls.param_event_dims.get(name, 0):
            continue
        if p.shape and isinstance(p.shape[-1], int) and isinstance(k, int) and p.shape[-1] != k:
            raise errors.mixture_mismatch(p.span, cls.name, p.shape[-1], k)
