"""Compiled's plain-numpy outputs, no gradients: reported latents and lets at given draws,
posterior predictive draws, pointwise log-likelihoods, observed values, and ancestral draws
from the prior (truncated and ordered latents included).

Separate from joint.py so the log joint's hot path reads alone; ``Draws`` is Compiled's base
class and uses its ``_steps``, ``_discrete`` and ``probabilities``.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .. import enumeration, ir
from ..constraints import Ordered, PositiveOrdered
from ..data import source_text
from ..errors import truncated_draws_on_bound
from .steps import (_EXPR_TYPES, _DiscreteStep, _InputStep, _LatentStep, _LetStep,
                    _ObserveStep, _ParamStep, _sample)

_REJECTION_ROUNDS = 1000
# sd of a param's default start on its unconstrained scale: small, never all zeros (identical
# hidden units of a network would stay identical); LANGUAGE.md, New statements
PARAM_START_SCALE = 0.1


class Draws:
    """The numpy half of Compiled (joint.py): outputs at given draws, and prior draws."""

    def _forward(self, zeta, rng=None, lets=None, uniforms=None) -> dict:
        """Every latent and let (data-only ones excepted) at the draws, plain numpy; discrete
        latents drawn from their conditional posterior given each draw, at ``uniforms``
        (name -> [S, *shape, 1]) or else at uniforms drawn from ``rng`` (or a generator
        seeded 0). ``lets``, if given, names the only lets to compute."""
        zeta = np.asarray(zeta, dtype=float)
        env = {}
        if self._discrete:
            if uniforms is None:
                rng = np.random.default_rng(0) if rng is None else rng
                uniforms = self.uniforms(rng, zeta.shape[0])
            for d, p in self.probabilities(zeta).items():
                env[d] = enumeration.draw(p, self._discrete[d].values, uniforms[d])
        for step in self._steps:
            if isinstance(step, _LatentStep):
                env[step.name] = np.asarray(step.value(zeta, env)[0])
            elif isinstance(step, _LetStep) and (lets is None or step.name in lets):
                # numpy's warnings ('overflow encountered in exp') name no let: a reported
                # value that is not finite is named by the summary's warning instead
                # (errors.non_finite_summary)
                with np.errstate(all="ignore"):
                    env[step.name] = np.asarray(step.fn(env))
        return env

    def uniforms(self, rng: np.random.Generator, s: int) -> dict[str, np.ndarray]:
        """The uniforms S draws of the discrete latents are made from: name -> [S, *shape, 1],
        each latent's in one call of ``rng``, in source order."""
        return {d: enumeration.uniforms(step.values, rng, s)
                for d, step in self._discrete.items()}

    def constrained(self, zeta, rng=None, uniforms=None) -> dict[str, np.ndarray]:
        """Reported latents and lets at the draws: name -> [S, *shape] (numpy).

        Names starting with '_' are not reported (LANGUAGE.md, Reporting), and computed only
        when a reported value reads them. Discrete latents are drawn from their conditional
        posterior at ``uniforms`` (``self.uniforms``), or at uniforms drawn from ``rng``.
        """
        env = self._forward(zeta, rng, _read_lets(self._steps), uniforms)
        n = np.shape(zeta)[0]
        return {s.statement.name: _full(env[s.statement.name], n, s.statement)
                for s in self._steps if _reported(s.statement)}

    def slot_values(self, zeta) -> dict[str, np.ndarray]:
        """Every continuous latent and param at the draws zeta [S, D]: name -> [S, *shape]
        (numpy), hidden ones (``_h``) too."""
        env = self._forward(zeta)
        return {slot.name: np.asarray(env[slot.name]) for slot in self.slots}

    def predictive(self, zeta, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One draw of every observed expression per draw of zeta (posterior predictive).

        Returns label -> [S, *shape]; the label is the observed expression's source text. A
        draw that overflows is inf, without numpy's warning (as the prior's below).
        """
        with np.errstate(all="ignore"):
            env = self._forward(zeta, rng)
            return self._draw_observed(env, rng, np.shape(zeta)[0])

    def pointwise_log_likelihood(self, zeta) -> dict[str, np.ndarray]:
        """The log density of every observed element at each draw (for LOO, WAIC, ArviZ).

        Returns label -> [S, *batch], labels as in ``predictive``; batch is the observed
        expression's shape without its distribution's event axes. Summed over the batch, each
        is the statement's term in ``terms``: an element whose parameters leave their
        constraint (a negative scale, p outside [0, 1]) is -inf, as the log joint is there.

        Raises PplError for a model with discrete latents: its observations' terms are summed
        out with them (enumeration), so they have no log density of their own.
        """
        if self._discrete:
            from ..errors import no_pointwise_with_discrete
            raise no_pointwise_with_discrete(sorted(self._discrete))
        env = self._forward(zeta)
        out = {}
        for step in self._steps:
            if isinstance(step, _ObserveStep):
                out[_label(step, out)] = step.pointwise(env, np.shape(zeta)[0])
        return out

    def first_element_not_finite(self, statement, zeta) -> str | None:
        """'t[2] = 0': the first element of the observe ``statement`` whose log density is
        not finite at every draw of zeta, with its observed value (a scalar element's); None
        for another statement, a model with discrete latents (their observations have no
        density of their own), or when no element or every element is so (then the datum is
        not what singles it out). Names the datum an error's hint blames."""
        step = next((s for s in self._steps if isinstance(s, _ObserveStep)
                     and s.statement is statement), None)
        if step is None or self._discrete:
            return None
        with np.errstate(all="ignore"):
            density = step.pointwise(self._forward(zeta), np.shape(zeta)[0])
        bad = (~np.isfinite(density)).all(axis=0)
        if not bad.ndim or not bad.any() or bad.all():  # every element: the parameters' doing
            return None
        index = np.unravel_index(int(np.argmax(bad)), bad.shape)
        name = f"{_label(step, {})}[{', '.join(map(str, index))}]"
        if step.cls.event_dim:
            return name
        value = step.value[(0,) + index].item()
        return f"{name} = {value:g}" if isinstance(value, float) else f"{name} = {value}"

    def observed(self) -> dict[str, np.ndarray]:
        """The observed values: label -> [*shape] (numpy), labels as in ``predictive``."""
        out = {}
        for step in self._steps:
            if isinstance(step, _ObserveStep):
                out[_label(step, out)] = step.value[0]
        return out

    def sample_prior(self, rng: np.random.Generator, n: int,
                     params: dict | None = None) -> dict[str, np.ndarray]:
        """Ancestral draws from the prior: reported latents and lets, and the observed
        expressions given them (prior predictive); name or label -> [n, *shape]. ``params``
        (name -> value) fixes those params at those values in every draw (a fit's: its
        ``prior_predictive``) instead of drawing them.

        A truncated latent (declared bounds narrowing its distribution's support) is drawn by
        rejection: elements outside the bounds are drawn again (whole events, for AR1,
        RandomWalk and MvNormal), up to 1000 rounds; any still
        outside are then clipped to the bounds, with a warning (only a truncation to a region
        of prior probability below about 1% gets there with noticeable probability). A
        truncated discrete latent is drawn from its prior mass at each value inside the
        bounds, renormalized. A draw that overflows (a wide prior's square, its exp) is inf,
        without numpy's warning.
        """
        env = {}
        with np.errstate(all="ignore"):
            for step in self._steps:
                if isinstance(step, _ParamStep) and params and step.name in params:
                    env[step.name] = np.broadcast_to(np.asarray(params[step.name], dtype=float),
                                                     (n,) + tuple(step.statement.shape))
                elif isinstance(step, (_LatentStep, _DiscreteStep)):
                    env[step.name] = _draw_latent(step, env, rng, n)
                elif isinstance(step, _LetStep):
                    env[step.name] = np.asarray(step.fn(env))
            draws = {s.statement.name: _full(env[s.statement.name], n, s.statement)
                     for s in self._steps if _reported(s.statement)}
            draws.update(self._draw_observed(env, rng, n))
        return draws

    def _draw_observed(self, env, rng, n) -> dict[str, np.ndarray]:
        out = {}
        for step in self._steps:
            if isinstance(step, _ObserveStep):
                out[_label(step, out)] = step.draw(env, rng, n)
        return out


def _label(step: _ObserveStep, taken) -> str:
    """An observe statement's label: its value's source text, primed if already ``taken``."""
    label = source_text(step.statement.value)
    while label in taken:          # the same expression observed twice
        label += "'"
    return label


def _read_lets(steps) -> set[str]:
    """The lets that reported values and latents read, directly or through other lets.

    The others (a hidden ``let _mu = alpha + X @ beta`` that only an observe reads) are left
    out of ``constrained``: at 4000 summary draws of 10^5 rows such a let was 3.2 GB of the
    summary's 6.2 GB and most of its CPU. A let can only read earlier statements, so one
    backward pass closes the set."""
    # batched data (minibatch inputs) is read, not computed: always kept
    wanted = {s.name for s in steps if isinstance(s, _InputStep)
              or isinstance(s, _LetStep) and _reported(s.statement)}
    for step in reversed(steps):
        if isinstance(step, _LatentStep) or getattr(step, "name", None) in wanted:
            wanted |= {ref.name for ref in _refs(step.statement) if ref.kind == "let"}
    return wanted


def _refs(statement):
    """The Refs in a let's value, or in a latent's (or param's) distribution and bounds."""
    if isinstance(statement, ir.Let):
        yield from (e for e in ir.walk(statement.value) if isinstance(e, ir.Ref))
        return
    support = statement.support
    roots = [statement.dist] + [getattr(support, f.name) for f in dataclasses.fields(support)]
    for root in roots:
        if isinstance(root, (ir.Dist, *_EXPR_TYPES)):
            yield from (e for e in ir.walk(root) if isinstance(e, ir.Ref))


def _reported(statement) -> bool:
    if isinstance(statement, (ir.Latent, ir.Param)):
        return not statement.name.startswith("_")
    return isinstance(statement, ir.Let) and statement.reported


def _full(value, n: int, statement) -> np.ndarray:
    """``value`` as [n, *shape] (a let that ignores the draws comes back as [1, *shape]), as
    ints when the statement's type is int (a discrete latent, a comparison), else floats."""
    typed = statement.value if isinstance(statement, ir.Let) else statement
    dtype = np.int64 if getattr(typed, "dtype", "real") == "int" else float  # a param: real
    return np.array(np.broadcast_to(value, (n,) + tuple(typed.shape)), dtype=dtype)


def _draw_latent(step: _LatentStep, env, rng, n: int, warn: bool = True) -> np.ndarray:
    """``n`` prior draws [n, *shape] of a latent or param given the earlier ones in ``env``;
    ``warn``: a PplWarning when draws of a truncated prior are set onto a bound
    (``sample_prior``'s docstring)."""
    if isinstance(step, _ParamStep) and step.cls is None:
        # no distribution: the param's default start, small random unconstrained values
        u = PARAM_START_SCALE * rng.standard_normal((n,) + step.slot.free_shape)
        return np.asarray(step.bijector_at(env).forward(u))
    params = {name: np.asarray(fn(env)) for name, fn in step.params.items()}
    size = (n,) + tuple(step.statement.shape)
    x = np.asarray(_sample(step.statement, rng, size, params), dtype=float)
    if isinstance(step, _DiscreteStep):
        if step.statement.truncated:
            return _truncated_discrete_draws(step, env, rng, n)
        return x.astype(np.int64)
    if isinstance(step.support, (Ordered, PositiveOrdered)):
        return _ordered_draws(step, x, rng, params)
    if not step.statement.truncated:
        return x
    support = dataclasses.replace(step.support, **{k: np.asarray(fn(env))
                                                   for k, fn in step.bounds.items()})
    # Rejection. The elements of an event (AR1, RandomWalk, MvNormal) depend on each other:
    # an event with any element outside the bounds is drawn again whole. Elements without an
    # event are independent given the parameters: only those outside are drawn again.
    event_axes = tuple(range(-step.cls.event_dim, 0))
    batch, event = size[:len(size) - len(event_axes)], size[len(size) - len(event_axes):]
    rows = _rows(step.cls, params, batch)
    for _ in range(_REJECTION_ROUNDS):
        outside = ~support.check(x)
        if event_axes:
            outside = outside.any(axis=event_axes)
        if not outside.any():
            return x
        redraw = step.cls.sample(rng, (int(outside.sum()),) + event, **rows(outside))
        x = x.copy()
        x[outside] = redraw
    outside = ~support.check(x)
    if outside.any() and warn:
        # a spike of draws on the bound, not the truncated prior (real<lower=3> ~ Normal(0, 1):
        # 26% of the draws at exactly 3, their mean 3.21 where the truncated prior's is 3.28)
        warnings.warn(truncated_draws_on_bound(step.statement.span, step.name,
                                               int(outside.sum()), outside.size,
                                               _REJECTION_ROUNDS), stacklevel=2)
    return np.clip(x, getattr(support, "lower", -np.inf), getattr(support, "upper", np.inf))


def _truncated_discrete_draws(step: _DiscreteStep, env, rng, n: int) -> np.ndarray:
    """Draws [n, *shape] of a discrete latent whose declared bounds narrow its distribution's
    support (``int<lower=1, upper=5> ~ Poisson(3)``): its prior mass at each value inside the
    bounds, renormalized, given each draw of the earlier latents. The values are enumerated
    as in the log joint (enumeration.py); drawing untruncated gave values outside the bounds
    (k = 0 and 6 to 11 in the example), which the model gives no mass."""
    values = step.values
    tiled = enumeration.Tiled(env, values.k, n)
    tiled.own[step.name] = values.tiled(n)
    with np.errstate(divide="ignore"):
        log_mass = enumeration.to_elements(np.asarray(step.elements(tiled)), 0,
                                           len(values.shape), values.shape)
    probabilities = enumeration.conditional(log_mass, values, n)
    return enumeration.draw(probabilities, values, enumeration.uniforms(values, rng, n))


def _rows(cls, params: dict, batch: tuple):
    """A function of a mask over ``batch`` giving the parameters of the masked events: each
    parameter broadcast to ``batch`` plus its own event axes (a Mixture's component
    parameters have one, the components'), then masked."""
    def lined_up(value, event_dims):
        return np.broadcast_to(value, batch + np.shape(value)[np.ndim(value) - event_dims:])
    full = {name: ((value[0], {k: lined_up(v, 1) for k, v in value[1].items()})
                   if name in cls.dist_params else
                   lined_up(value, cls.param_event_dims.get(name, 0)))
            for name, value in params.items()}
    return lambda mask: {name: ((value[0], {k: v[mask] for k, v in value[1].items()})
                                if name in cls.dist_params else value[mask])
                         for name, value in full.items()}


def _ordered_draws(step: _LatentStep, x: np.ndarray, rng, params: dict) -> np.ndarray:
    """Draws of an ordered latent from its prior: the declared distribution applies
    elementwise on the ordered region, a density proportional to prod f(x_i) there, and
    independent draws sorted have exactly that density (times K!). positive_ordered first
    redraws the elements that are not positive."""
    if isinstance(step.support, PositiveOrdered):
        params = {name: np.broadcast_to(value, x.shape) for name, value in params.items()}
        for _ in range(_REJECTION_ROUNDS):
            outside = ~(x > 0)
            if not outside.any():
                break
            x = x.copy()
            x[outside] = step.cls.sample(rng, (int(outside.sum()),),
                                         **{name: value[outside] for name, value in params.items()})
        x = np.maximum(x, np.finfo(float).tiny)
    return np.sort(x, axis=-1)
