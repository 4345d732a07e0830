"""The checker's rules for ``param`` and ``guide`` statements (LANGUAGE.md, Version 2).

A param is a point estimate: its Refs carry its own name in ``deps`` (so nothing that uses it is
folded as data), it has no draw of its own. A guide is ``Normal(loc, scale)`` on a latent's
unconstrained coordinates, with loc and scale computed from data, params and earlier latents.
"""
from __future__ import annotations

from .. import constraints as c
from .. import errors, ir
from . import supports, syntax

# Supports whose unconstrained coordinates have the latent's own shape: a guide's loc and scale
# are written against that shape.
_GUIDABLE = (c.Real, c.GreaterThan, c.LessThan, c.Interval, c.Ordered, c.PositiveOrdered)


def check_param(checker, s: syntax.Param) -> ir.Param:
    """``param name: type [~ dist]`` -> ir.Param; the checker's scope gains the param."""
    from .check import _Entry
    checker._check_new_name(s.name, s.name_span)
    if s.type.elem != "real":
        raise errors.param_not_real(s.type.span, s.name, s.type.elem)
    shape = checker._shape(s.type)
    lower, upper = checker._bounds(s.type, shape)
    for bound in (lower, upper):
        latents = _latents(checker, bound.deps) if bound is not None else []
        if latents:
            raise errors.param_prior_depends_on_latent(bound.span, s.name, latents[0],
                                                       "bound")
    support, dist = c.real, None
    if s.dist is not None:
        dist = checker._dist(s.dist)
        latents = _latents(checker, dist.deps)
        if latents:
            raise errors.param_prior_depends_on_latent(s.dist.span, s.name, latents[0])
        support = dist.cls.support_of(dist.param_dict)
        if support.discrete:
            raise errors.param_prior_discrete(s.dist.span, s.name, dist.name)
        checker._fit(dist, shape, s.dist.span, "declared")
    if not isinstance(support, _GUIDABLE[:4]):
        raise errors.param_support(s.dist.span, s.name, dist.name, supports.describe(support))
    support, truncated = supports.narrow(s.name, s.type, support, lower, upper)
    if truncated and dist is not None:
        supports.warn_truncation_moved_by_param(s.name, dist, lower, upper,
                                                lambda n: checker.scope[n].kind)
    checker.scope[s.name] = _Entry("param", shape, "real", frozenset({s.name}), s.name_span)
    return ir.Param(s.name, shape, dist, support, span=s.span,
                    truncated=truncated and dist is not None)


def check_guide(checker, s: syntax.Guide) -> ir.Guide:
    """``guide name ~ Normal(loc, scale)`` -> ir.Guide, refusing a guide for anything but an
    earlier continuous latent, a second guide, a non-Normal guide and a guide that depends on
    the latent itself or a later one."""
    entry = checker.scope.get(s.name)
    if entry is None or entry.kind != "latent":
        latents = [n for n, e in checker.scope.items() if e.kind == "latent"]
        raise errors.guide_unknown_latent(s.name_span, s.name, latents)
    guided = getattr(checker, "guided", None)
    if guided is None:
        guided = checker.guided = {}
    if s.name in guided:
        raise errors.guide_twice(s.span, s.name, guided[s.name])
    latent = checker.statements[s.name]
    if latent.discrete:
        raise errors.guide_unsupported_latent(s.name_span, s.name, "it is discrete (summed "
                                              "out by enumeration)")
    if not isinstance(latent.support, _GUIDABLE):
        raise errors.guide_unsupported_latent(s.name_span, s.name, "its support "
                                              f"({supports.describe(latent.support)}) has "
                                              "fewer free coordinates than elements")
    if s.dist.func != "Normal":
        raise errors.guide_not_reparameterizable(s.dist.func_span, s.name, s.dist.func)
    dist = checker._dist(s.dist)
    checker._fit(dist, latent.shape, s.dist.span, "guided latent's")
    order = checker.latent_order[s.name]
    later = [d for d in _latents(checker, dist.deps) if checker.latent_order[d] >= order]
    if later:
        raise errors.guide_depends_on_later(s.dist.span, s.name, later[0])
    discrete = [d for d in _latents(checker, dist.deps) if checker.statements[d].discrete]
    if discrete:    # summed out of the log joint: q has no draws of it to read
        raise errors.guide_reads_discrete(s.dist.span, s.name, discrete[0])
    guided[s.name] = s.span
    params = dict(dist.params)
    return ir.Guide(s.name, params["mu"], params["sigma"], span=s.span)


def _latents(checker, deps) -> list[str]:
    """The latent variables among ``deps`` (params excluded), earliest first."""
    found = [d for d in deps if d in checker.latent_order]
    return sorted(found, key=checker.latent_order.get)
