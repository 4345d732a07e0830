"""One statement's log density as a term of the log joint: counted over its batch, computed
in one fused primitive where it can be (fused.py), or left pending for the sum of terms, and
-inf where a parameter leaves its constraint.

Separate from steps.py because this is the hot arithmetic every step shares; the steps decide
what to compute, this module how.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from .. import ir
from ..constraints import Real, real
from ..evaluate import lift
from ..fused import Known, Pending, density_total, settle, shape_of


def _sum_rest(t):
    """Sum over every axis but the first: [S, ...] -> [S]."""
    if anp.ndim(t) <= 1:
        return t
    return anp.sum(t, axis=tuple(range(1, anp.ndim(t))))


class _Counter:
    """Sums a log density [S or 1, *batch'] to [S or 1], counting every element of ``batch``.

    A density that does not depend on some axis of the value (Uniform returns one value per
    draw for a constant width) comes back smaller than the batch; it is repeated there. The
    factor is found once per result shape (cheap Python work stays out of the step).
    """

    def __init__(self, batch: tuple):
        self.want = int(np.prod(batch, dtype=np.int64))
        self.factors: dict[tuple, float] = {}
        self.covered: dict[tuple, bool] = {}

    def __call__(self, log_density):
        total = _sum_rest(log_density)
        shape = anp.shape(log_density)[1:]
        factor = self.factors.get(shape)
        if factor is None:
            size = int(np.prod(shape, dtype=np.int64))
            # an empty value (N = 0) has nothing to count: its sum is 0 whatever the factor
            factor = self.factors[shape] = self.want / size if size else 1.0
        return total if factor == 1.0 else total * factor

    def covers(self, *args) -> bool:
        """Whether a density broadcast from ``args`` [S or 1, ...] has one element per element
        of the batch (no factor), found once per shape."""
        return self.covers_shapes(tuple(np.shape(a) for a in args))  # a box's .shape

    def covers_shapes(self, shapes: tuple) -> bool:
        covered = self.covered.get(shapes)
        if covered is None:
            size = int(np.prod(np.broadcast_shapes(*shapes)[1:], dtype=np.int64))
            covered = self.covered[shapes] = size == self.want and size > 0
        return covered


def _density_total(step, value, params: dict):
    """``step.count(step.cls.log_density(value, **params))`` [S]; a Normal's, HalfNormal's,
    Cauchy's or HalfCauchy's in one autograd primitive (fused.density_total: the same value
    and gradient, one traced operation for seven to nine) when ``step.fused``."""
    if step.fused:
        mu, sigma = params.get("mu", 0.0), params["sigma"]
        if step.count.covers(value, mu, sigma):
            return density_total(step.cls.name, value, mu, sigma)
    return step.count(step.cls.log_density(value, **params))


def _pending_density(step, value, env):
    """``step``'s log density at ``value`` [S or 1] guarded as ``_outside``, as a term of
    fused.add_terms: a fused.Pending where it can be. Its parameters are read before their
    lifting (``step.raw``), which the sum of terms does itself: no traced reshape."""
    if step.raw is None:       # not fused: the density as a value
        params = {name: fn(env) for name, fn in step.params.items()}
        return _outside(step.guarded, params, _density_total(step, value, params))
    plan = step.__dict__.get("_plan")
    if plan is None:
        plan = step._plan = _plan(step)
    mu_fn, sigma_fn, lifts, (mu_const, sigma_const, known) = plan
    mu = 0.0 if mu_fn is None else mu_fn(env)
    sigma = sigma_fn(env)
    covered = _covers(step, lifts, (shape_of(value), shape_of(mu), shape_of(sigma)))
    if covered:
        # the constants the Known was made of, the very objects (else nothing is skipped)
        if known is not None and not ((mu_const is None or mu is mu_const)
                                      and (sigma_const is None or sigma is sigma_const)):
            known = None
        total = Pending(step.cls.name, value, mu, sigma, lifts, known)
        if not step.guarded:
            return total
    raw = {"sigma": sigma} if mu_fn is None else {"mu": mu, "sigma": sigma}
    if not covered:
        lifted = {name: lift(v, step.raw[name][1]) for name, v in raw.items()}
        total = step.count(step.cls.log_density(value, **lifted))
    return _outside(step.guarded, raw, total)


def _plan(step) -> tuple:
    """(mu's closure or None, sigma's, (k_mu, k_sigma), constants) of a fused step's
    parameters before lifting (``step.raw``: a fused density has only these two), found once
    per step. constants = (mu's value or None, sigma's or None, their fused.Known or None):
    a data-only parameter's closure returns one array, made at compile time (evaluate._node)."""
    mu = step.raw.get("mu")
    sigma_fn, k_sigma = step.raw["sigma"]
    lifts = (0 if mu is None else mu[1], k_sigma)
    exprs = dict(step.statement.dist.params)
    mu_const = None if mu is None or exprs["mu"].deps else mu[0]({})
    sigma_const = None if exprs["sigma"].deps else sigma_fn({})
    # an absent mu is the 0.0 that _pending_density passes
    known = Known.of(0.0 if mu is None else mu_const, sigma_const, lifts)
    return (None if mu is None else mu[0], sigma_fn, lifts, (mu_const, sigma_const, known))


def _covers(step, lifts: tuple, shapes: tuple) -> bool:
    """``step.count.covers_shapes`` of the lifted shapes, looked up by the unlifted ones
    (``shapes`` of value, mu, sigma): the lifted shapes are made once per shape, not every
    step."""
    known = step.__dict__.setdefault("_covers", {})
    covered = known.get(shapes)
    if covered is None:
        lifted = (shapes[0],) + tuple(_lifted_shape(s, k) for s, k in zip(shapes[1:], lifts))
        covered = known[shapes] = step.count.covers_shapes(lifted)
    return covered


def _lifted_shape(shape: tuple, k: int) -> tuple:
    """The shape of ``evaluate.lift(value, k)`` for a value of ``shape``."""
    return shape if k == 0 else shape[:1] + (1,) * k + shape[1:]


def _guarded(dist: ir.Dist) -> tuple:
    """(name, constraint) of the parameters that depend on latents and are constrained."""
    return tuple((name, dist.cls.constraints[name]) for name, expr in dist.params
                 if expr.deps and not isinstance(dist.cls.constraints.get(name, real), Real))


def _outside(guarded: tuple, params: dict, total):
    """``total`` [S] with -inf at the draws where a parameter leaves its constraint: a density
    formula evaluated outside its domain gives a finite number, not a density (issue 9)."""
    if not guarded:
        return total
    bad = np.zeros(1, dtype=bool)
    for name, constraint in guarded:
        value = np.asarray(getval(params[name]))
        ok = np.asarray(constraint.check(value)) & ~np.isnan(value)
        bad = bad | ~np.all(np.reshape(ok, (ok.shape[0], -1)), axis=1)
    return anp.where(bad, -np.inf, settle(total)) if bad.any() else total


def _outside_elements(step, params: dict, density: np.ndarray) -> np.ndarray:
    """``_outside`` per element, for the pointwise log-likelihood: ``density`` [S, *batch]
    (numpy) with -inf at each element whose own parameters leave their constraint (a
    parameter's event axes, Dirichlet's alpha, count as one), so that the elements still sum
    to the statement's guarded term. Unguarded, Gamma's density at shape -0.5 was a finite
    number and Poisson's at rate -0.5 and y = 0 was +0.5."""
    for name, constraint in step.guarded:
        value = np.asarray(params[name])
        ok = np.asarray(constraint.check(value)) & ~np.isnan(value)
        event_dims = step.cls.param_event_dims.get(name, 0)
        if event_dims:
            ok = np.all(ok, axis=tuple(range(-event_dims, 0)))
        density = np.where(ok, density, -np.inf)
    return density
