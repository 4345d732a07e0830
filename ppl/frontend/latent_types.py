"""Latent types beyond ``real`` at check time: ``ordered[K]`` and ``positive_ordered[K]``, and
``int`` latents with a finite support (summed out by enumeration in the compiler).
"""
from __future__ import annotations

from .. import constraints as c
from .. import errors, ir
from . import supports, syntax

# The most values one discrete latent may take: its values are laid along a new axis of
# every term it reaches (LANGUAGE.md, Discrete latents).
MAX_VALUES = 10_000


def ordered_support(s: syntax.Sample, dist: ir.Dist, shape, support: c.Constraint):
    """The support of ``sample NAME: ordered[K] ~ DIST`` (or positive_ordered).

    DIST applies elementwise, as in Stan; its support must contain the ordered type's values.

    Raises
    ------
    PplError : bounds on an ordered type, a shape that is not one vector, a multivariate DIST,
        or a DIST whose support does not contain the declared type's values.
    """
    elem = s.type.elem
    if s.type.lower is not None or s.type.upper is not None:
        raise errors.bounds_on_ordered(s.type.span, s.name, elem)
    if len(shape) != 1:
        raise errors.ordered_shape(s.type.span, s.name, elem, shape)
    if dist.cls.event_dim:
        raise errors.ordered_distribution(s.dist.span, s.name, elem, dist.name,
                                          supports.describe(support))
    positive = isinstance(support, c.GreaterThan) and supports.number(support.lower) == 0.0
    if not isinstance(support, c.Real) and not (elem == "positive_ordered" and positive):
        raise errors.ordered_distribution(s.dist.span, s.name, elem, dist.name,
                                          supports.describe(support))
    return c.positive_ordered if elem == "positive_ordered" else c.ordered


def finite_support(s: syntax.Sample, dist: ir.Dist, support: c.Constraint, lower, upper):
    """The support of a discrete latent ``sample NAME: int... ~ DIST``, narrowed by declared
    bounds, as an IntegerInterval whose bounds are data-only expressions or numbers.

    Raises
    ------
    PplError : a continuous DIST, a joint one (Multinomial), a support without both bounds
        known from the data.
    """
    if not support.discrete:
        raise errors.int_latent_continuous(s.dist.span, s.name, s.dist.func)
    if dist.cls.event_dim:      # its elements are not independent: no element-by-element sum
        raise errors.joint_discrete_latent(s.dist.span, s.name, s.dist.func)
    # An IntegerInterval bound of None is unknown until the data gives the shapes
    # (Categorical's K); only a support without an upper end is infinite.
    infinite = not isinstance(support, (c.Boolean, c.IntegerInterval))
    if isinstance(support, c.Boolean):
        lo, hi = 0, 1
    elif isinstance(support, c.IntegerInterval):
        lo, hi = support.lower, support.upper
    else:
        lo, hi = 0, None
    # declared bounds outside the support are refused, as for real latents: enumerated values
    # outside it got Bernoulli's or DiscreteUniform's formula, not zero mass
    own_lo, own_hi = supports.number(lo), supports.number(hi)
    for bound, side in ((lower, "lower"), (upper, "upper")):
        v = supports.literal_value(bound)
        if v is not None and supports.bound_outside(v, side, own_lo, own_hi, closed=True):
            raise errors.bounds_outside_support(bound.span, s.name, f"{side}={v:g}",
                                                supports.describe(support))
    truncated = False
    if lower is not None:
        lo, truncated = lower, True
    if upper is not None:
        hi, truncated, infinite = upper, True, False
    if infinite:
        raise errors.infinite_support(s.dist.span, s.name, supports.describe(support))
    for bound in (lo, hi):
        if isinstance(bound, ir.Expr.__args__) and bound.deps:
            raise errors.discrete_bounds_depend_on_latent(bound.span, s.name,
                                                          sorted(bound.deps)[0])
    n_lo, n_hi = supports.number(lo), supports.number(hi)
    if n_lo is not None and n_hi is not None and n_hi - n_lo + 1 > MAX_VALUES:
        raise errors.too_many_values(s.type.span, s.name, int(n_hi - n_lo + 1), MAX_VALUES)
    return c.IntegerInterval(lo, hi), truncated


def check_square(s: syntax.Sample, support: c.Constraint, shape) -> None:
    """A latent whose support is a Cholesky factor of a correlation matrix is one square
    matrix [K, K] (its distribution takes K from the declared shape).

    Raises
    ------
    PplError : any other declared shape.
    """
    if not isinstance(support, c.CorrCholesky):
        return
    square = len(shape) == 2 and not (isinstance(shape[0], int) and isinstance(shape[1], int)
                                      and shape[0] != shape[1])
    if not square:
        raise errors.not_square_latent(s.name_span if s.type is None else s.type.span, s.name,
                                       s.dist.func, shape)
