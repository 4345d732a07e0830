"""ir.Model + data -> Compiled: the log joint on the unconstrained space and its layout.

Expressions are turned into closures by ``evaluate.compile_expr`` (data-only subtrees folded
once, here); supports pick their bijector through ``bijectors.biject_to``; densities and
samplers come from the distribution registry. The guide, ELBO and fit loop live elsewhere.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_args

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from . import enumeration, ir
from .bijectors import AR1Innovations, Identity, biject_to
from .blocks import ASSEMBLED, cutter as _cutter
from .constraints import Ordered, PositiveOrdered, Real, real
from .data import source_text
from .errors import bad_draw_parameter, draw_failed
from .evaluate import compile_expr, data_lets, dist_param_fns, evaluate_data, lift
from .frontend.enumeration import plan
from .fused import DENSITIES, Pending, add_terms, density_total, settle
from .kernels import fuse_model

_EXPR_TYPES = get_args(ir.Expr)
_REJECTION_ROUNDS = 1000
# sd of a param's default start on its unconstrained scale: small, never all zeros (identical
# hidden units of a network would stay identical); LANGUAGE.md, New statements
PARAM_START_SCALE = 0.1


@dataclass(frozen=True)
class Slot:
    """Where one latent lives in the unconstrained vector: ``zeta[:, offset:offset + size]``,
    reshaped to ``[S, *free_shape]``, maps to its value ``[S, *shape]``."""
    name: str
    shape: tuple
    free_shape: tuple
    offset: int
    size: int


_LOG_SQRT_2PI = 0.9189385332046727  # log(sqrt(2 pi))


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
    raw = {name: fn(env) for name, (fn, _) in step.raw.items()}
    mu, sigma = raw.get("mu", 0.0), raw["sigma"]
    k_mu, k_sigma = step.raw["mu"][1] if "mu" in raw else 0, step.raw["sigma"][1]
    if step.count.covers_shapes((_lifted_shape(value, 0), _lifted_shape(mu, k_mu),
                                 _lifted_shape(sigma, k_sigma))):
        total = Pending(step.cls.name, value, mu, sigma, (k_mu, k_sigma))
    else:
        lifted = {name: lift(v, step.raw[name][1]) for name, v in raw.items()}
        total = step.count(step.cls.log_density(value, **lifted))
    return _outside(step.guarded, raw, total)


def _lifted_shape(value, k: int) -> tuple:
    """The shape of ``evaluate.lift(value, k)``."""
    shape = getattr(value, "shape", None)     # an array's or a box's, without np.shape's layer
    shape = np.shape(value) if shape is None else shape
    return shape if k == 0 else shape[:1] + (1,) * k + shape[1:]


def _param_fns(dist: ir.Dist, value_rank: int, data_env, raw=None) -> dict[str, Any]:
    """Closures of a distribution's parameters lined up against a value of rank
    ``value_rank`` (``evaluate.dist_param_fns``; ``raw`` receives them before lifting)."""
    return dist_param_fns(dist, value_rank, data_env, raw)


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


def _bounds(support, rank: int, data_env):
    """The support with its data-only bounds evaluated once (floats, or arrays lined up to
    [1, *shape]), and closures for the bounds that depend on latents (field name -> fn)."""
    constant, dynamic = {}, {}
    for field in dataclasses.fields(support):
        bound = getattr(support, field.name)
        if not isinstance(bound, _EXPR_TYPES):
            continue
        k = rank - len(bound.shape)
        if bound.deps:
            fn = compile_expr(bound, data_env)
            dynamic[field.name] = lambda env, fn=fn, k=k: lift(fn(env), k)
        else:
            value = np.asarray(evaluate_data(bound, data_env), dtype=float)
            constant[field.name] = float(value) if value.ndim == 0 else lift(value[None], k)
    return dataclasses.replace(support, **constant), dynamic


class _LatentStep:
    """One ``sample`` statement: its slot, bijector (built once when its bounds are constant),
    and prior parameters."""

    def __init__(self, latent: ir.Latent, offset: int, data_env):
        self.statement = latent
        self.name = latent.name
        self.cls = latent.dist.cls
        self.unlifted = {}
        self.params = _param_fns(latent.dist, len(latent.shape), data_env, self.unlifted)
        self.guarded = _guarded(latent.dist)
        self.support, self.bounds = _bounds(latent.support, len(latent.shape), data_env)
        self.bijector = None if self.bounds else biject_to(self.support)
        free_shape = tuple(biject_to(self.support).free_shape(tuple(latent.shape)))
        size = int(np.prod(free_shape, dtype=np.int64))
        self.slot = Slot(latent.name, tuple(latent.shape), free_shape, offset, size)
        self.count = _Counter(self.slot.shape[:len(self.slot.shape) - self.cls.event_dim])
        self.cut = _cutter(offset, size, free_shape)

    # True for an AR1 latent on the whole real line: its bijector is AR1Innovations (set by
    # compile_model, which knows the guide statements and the enumeration plan)
    innovations = False
    # its term is one primitive (fused.density_total); set by compile_model
    fused = False
    # when fused: its parameters before lifting (``unlifted``); set by compile_model
    raw = None

    def bijector_at(self, env):
        if self.innovations:
            return AR1Innovations(**{name: fn(env) for name, fn in self.params.items()})
        if self.bijector is not None:
            return self.bijector
        return biject_to(dataclasses.replace(
            self.support, **{name: fn(env) for name, fn in self.bounds.items()}))

    def value(self, zeta, env):
        """(x [S, *shape], bijector, u) for the draws ``zeta`` [S, D]."""
        u = self.cut(zeta)
        bijector = self.bijector_at(env)
        return bijector.forward(u), bijector, u

    def term(self, zeta, env):
        """Sets env[name]; returns log prior + log|det J| [S]."""
        return settle(self.pending(zeta, env))

    def pending(self, zeta, env):
        """``term`` as a term of fused.add_terms: the log prior a fused.Pending where it can
        be, and a group (log prior, log|det J|) where there is a log-Jacobian."""
        x, bijector, u = self.value(zeta, env)
        env[self.name] = x
        if self.innovations:
            # AR1Innovations: the prior density of x times |det dx/du| is u's standard normal
            params = {name: fn(env) for name, fn in self.params.items()}
            return _outside(self.guarded, params, _sum_rest(-0.5 * u * u - _LOG_SQRT_2PI))
        # Truncated priors keep the untruncated density: the normalizing constant is dropped,
        # as in Stan (LANGUAGE.md, Types).
        log_prior = _pending_density(self, x, env)
        if isinstance(bijector, Identity):
            return log_prior          # log|det J| = 0: no need to trace a sum of zeros
        return log_prior, bijector.log_det_jacobian(u)

    def elements(self, env):
        """The log prior per element [n, *batch] in an enumerated environment."""
        return self.cls.log_density(env[self.name], **{n: f(env) for n, f in self.params.items()})


class _ParamStep(_LatentStep):
    """One ``param`` statement: a slot like a latent's, whose columns hold the same value in
    every draw (the guide family puts theta's entries there), so only the first row is read.
    Its term is the log density of its ``~ DIST`` (a penalty), without a log-Jacobian: the
    optimum is the MAP (or maximum likelihood) point on the constrained scale, as Stan's
    ``optimize`` (jacobian=false)."""

    def __init__(self, param: ir.Param, offset: int, data_env):
        self.statement, self.name = param, param.name
        self.cls = None if param.dist is None else param.dist.cls
        self.unlifted = {}
        self.params = {} if param.dist is None else _param_fns(param.dist, len(param.shape),
                                                               data_env, self.unlifted)
        self.guarded = () if param.dist is None else _guarded(param.dist)
        self.support, self.bounds = _bounds(param.support, len(param.shape), data_env)
        self.bijector = None if self.bounds else biject_to(self.support)
        free_shape = tuple(biject_to(self.support).free_shape(tuple(param.shape)))
        size = int(np.prod(free_shape, dtype=np.int64))
        self.slot = Slot(param.name, tuple(param.shape), free_shape, offset, size)
        self.count = _Counter(self.slot.shape)
        self.cut = _cutter(offset, size, free_shape, rows=1)

    def term(self, zeta, env):
        return settle(self.pending(zeta, env))

    def pending(self, zeta, env):
        x, _, _ = self.value(zeta, env)
        env[self.name] = x
        if self.cls is None:
            return None
        return _pending_density(self, x, env)


class _GuideStep:
    """A ``guide`` statement: closures of its loc and scale, lined up against the latent's
    shape ([S or 1, *shape]); evaluated by the user-guide family (guides/user.py), never by
    the log joint."""

    def __init__(self, guide: ir.Guide, latent: _LatentStep, data_env):
        self.statement, self.name, self.latent = guide, guide.name, latent
        rank = len(latent.slot.shape)
        self.loc = _lined_up(guide.loc, rank, data_env)
        self.scale = _lined_up(guide.scale, rank, data_env)


def _lined_up(expr: ir.Expr, rank: int, data_env):
    fn, k = compile_expr(expr, data_env), rank - len(expr.shape)
    return fn if k == 0 else (lambda env: lift(fn(env), k))


class _DiscreteStep:
    """A discrete latent: no slot; its values are enumerated (``enumeration.py``)."""

    def __init__(self, latent: ir.Latent, data_env):
        self.statement, self.name, self.cls = latent, latent.name, latent.dist.cls
        self.params = _param_fns(latent.dist, len(latent.shape), data_env)
        self.values = enumeration.Values(latent, data_env)

    def elements(self, env):
        return self.cls.log_density(env[self.name], **{n: f(env) for n, f in self.params.items()})


class _LetStep:
    def __init__(self, let: ir.Let, data_env):
        self.statement, self.name = let, let.name
        self.fn = compile_expr(let.value, data_env)

    def term(self, zeta, env):
        env[self.name] = self.fn(env)
        return None

    pending = term


class _InputStep(_LetStep):
    """A batched data array or data-only let, read at run time from ``inputs`` (name ->
    [1, *shape]): a minibatch puts each batch's rows there without compiling again
    (infer/minibatch.py). A let to the steps that read it (guides/user.py orders it so)."""

    def __init__(self, name: str, data, inputs: dict):
        self.statement = ir.Let(name, ir.Ref(name, "data", tuple(data.shape), data.dtype),
                                reported=False, span=data.span)
        self.name, self.enum = name, None
        self.fn = lambda env: inputs[name]


class _ObserveStep:
    """One ``observe`` statement; its value is data ([1, *shape]), computed here once."""

    fused = False     # its term is one primitive (fused.density_total)
    raw = None        # when fused: its parameters before lifting (``unlifted``)

    def __init__(self, observe: ir.Observe, data_env, kernel=None):
        self.statement = observe
        self.cls = observe.dist.cls
        self.value = np.asarray(evaluate_data(observe.value, data_env))[None]
        self.unlifted = {}
        self.params = _param_fns(observe.dist, len(observe.value.shape), data_env,
                                 self.unlifted)
        self.guarded = _guarded(observe.dist)
        self.count = _Counter(tuple(observe.value.shape[:len(observe.value.shape)
                                                        - self.cls.event_dim]))
        self.constant = None
        if not observe.dist.deps:
            # a likelihood of data alone is a constant: computed once, added every time
            self.constant = float(self._log_density({})[0])
        self.kernel = kernel          # a kernels.FusedTerm, which falls back on the plain path
        if kernel is not None:
            kernel.plain = self._log_density

    def _log_density(self, env):
        params = {name: fn(env) for name, fn in self.params.items()}
        return _outside(self.guarded, params, _density_total(self, self.value, params))

    def elements(self, env):
        """The log density per element [S, *batch] (for enumeration; not guarded)."""
        params = {name: fn(env) for name, fn in self.params.items()}
        return self.cls.log_density(self.value, **params)

    def term(self, zeta, env):
        return settle(self.pending(zeta, env))

    def pending(self, zeta, env):
        if self.constant is not None:
            return self.constant
        if self.kernel is not None:
            return self.kernel(env)
        return _pending_density(self, self.value, env)

    def pointwise(self, env, n: int) -> np.ndarray:
        """log p(value element | parameters) per draw and per element: [n, *batch] (numpy),
        batch = the value's shape without the distribution's event axes."""
        params = {name: np.asarray(fn(env)) for name, fn in self.params.items()}
        density = np.asarray(self.cls.log_density(self.value, **params), dtype=float)
        batch = self.value.shape[1:self.value.ndim - self.cls.event_dim]
        # A density that ignores some value axes (Uniform with a constant width) comes back
        # with fewer trailing axes: every element of the batch has that same density.
        density = density.reshape(density.shape + (1,) * (1 + len(batch) - density.ndim))
        return np.array(np.broadcast_to(density, (n,) + batch))

    def draw(self, env, rng, n):
        """One draw of the observed value per draw in env: [n, *shape] (numpy)."""
        params = {name: np.asarray(fn(env)) for name, fn in self.params.items()}
        return _sample(self.statement, rng, (n,) + self.value.shape[1:], params)


class _FactorStep:
    """One ``factor`` statement: adds sum(value) to the log joint (Stan's ``target +=``)."""

    def __init__(self, factor: ir.Factor, data_env):
        self.statement = factor
        self.fn = compile_expr(factor.value, data_env)
        self.constant = None
        if not factor.value.deps:
            # a factor of data alone is a constant: computed once, added every time
            self.constant = float(np.sum(evaluate_data(factor.value, data_env)))

    def term(self, zeta, env):
        if self.constant is not None:
            return self.constant
        return _sum_rest(self.fn(env))

    pending = term

    def elements(self, env):
        return self.fn(env)


class Compiled:
    """A model compiled against its data: the log joint of the unconstrained draws and more.

    Attributes
    ----------
    model : the concretely checked ir.Model.
    dim : D, the size of the unconstrained vector.
    slots : one Slot per latent, in source order.
    """

    def __init__(self, model: ir.Model, steps: list, slots: tuple[Slot, ...],
                 inlined: frozenset = frozenset(), guides: dict | None = None):
        self.model = model
        # user-written guides (latent name -> _GuideStep) and the params' names, for the
        # user-guide family (guides/user.py)
        self.guides = guides or {}
        self.params = tuple(s.name for s in steps if isinstance(s, _ParamStep))
        self._steps = steps
        self._constant = sum(s.constant for s in steps
                             if isinstance(s, (_ObserveStep, _FactorStep))
                             and s.constant is not None)
        # lets inlined into a fused kernel are computed by it, not by the log joint
        self._live = [s for s in steps if getattr(s, "constant", None) is None
                      and getattr(s, "name", None) not in inlined]
        self._discrete = {s.name: s for s in steps if isinstance(s, _DiscreteStep)}
        self.slots = slots
        self.dim = sum(slot.size for slot in slots)

    @property
    def steps(self) -> list:
        """Every step in source order (latents, params, lets, terms), for guides/user.py."""
        return self._steps

    def log_joint(self, zeta):
        """log p(data, T(zeta)) + log|det J_T(zeta)| [S] for zeta [S, D], in one pass.

        Differentiable with autograd; constant likelihood terms were summed at compile time.
        Discrete latents are summed out (``enumeration.py``).
        """
        if self._discrete:
            total, acc, _ = self._enumerate(zeta, {})
            s = zeta.shape[0]
            for d, step in self._discrete.items():
                total = total + enumeration.marginal(acc[d], step.values, s)
            return total
        env = {}
        S = zeta.shape[0]
        # a zero constant is not added (nor traced): 0 + x is x exactly
        terms = [self._constant + np.zeros(S)] if self._constant else []
        for step in self._live:
            term = step.pending(zeta, env)
            if term is not None:
                terms.append(term)
        # one traced operation for the whole sum and its densities (fused.add_terms), not
        # one per term and one per density
        total = add_terms(terms) if terms else None
        if total is None or anp.shape(total) != (S,):
            total = anp.zeros(S) if total is None else total + anp.zeros(S)
        if ASSEMBLED[0] is not None and ASSEMBLED[0][0] is zeta:
            ASSEMBLED[0] = None       # its blocks were read: keep no trace alive
        return total

    def _enumerate(self, zeta, env, pieces=None):
        """One pass over the steps with the discrete latents enumerated: the total of the
        terms they do not reach [S], and per discrete latent the per-element, per-value sum
        of the terms it reaches [K*S, *shape]; ``env`` is filled with the other values.
        ``pieces``, if a list, receives (statement, [S]) for each term not enumerated."""
        s = zeta.shape[0]
        total = self._constant + anp.zeros(s)
        acc, tiles = {}, {}
        for step in (self._live if pieces is None else self._steps):
            if step.enum is None:
                term = step.term(zeta, env)
                if term is not None and pieces is not None:
                    pieces.append((step.statement, term + anp.zeros(s)))
                total = total if term is None else total + term
                continue
            d, pos = step.enum
            values = self._discrete[d].values
            if isinstance(step, _DiscreteStep):
                tiles[d] = enumeration.Tiled(env, values.k, s)
                tiles[d].own[d] = values.tiled(s)
            tiled = tiles[d]
            if isinstance(step, _LetStep):
                tiled.own[step.name] = step.fn(tiled)
                continue
            if isinstance(step, _LatentStep):
                x, bijector, u = step.value(zeta, env)
                env[step.name] = x
                if not isinstance(bijector, Identity):
                    total = total + bijector.log_det_jacobian(u)
            piece = enumeration.to_elements(step.elements(tiled), pos, len(values.shape),
                                            step.full)
            acc[d] = piece if d not in acc else acc[d] + piece
        return total, acc, tiles

    def probabilities(self, zeta) -> dict[str, np.ndarray]:
        """Each discrete latent's conditional posterior given each draw: name ->
        [S, *shape, K] (numpy), K its number of values (``values()``)."""
        zeta = np.asarray(zeta, dtype=float)
        _, acc, _ = self._enumerate(zeta, {})
        return {d: enumeration.conditional(acc[d], step.values, zeta.shape[0])
                for d, step in self._discrete.items()}

    def values(self) -> dict[str, np.ndarray]:
        """The values each discrete latent takes: name -> [K] ints."""
        return {d: step.values.values for d, step in self._discrete.items()}

    def terms(self, zeta) -> list:
        """The log joint's pieces: ``[(statement, [S] values)]``, one per sample, observe and
        factor statement in source order (a latent's piece includes its log-Jacobian).
        With discrete latents, each one's piece is its marginal: the terms it reaches are
        summed out with it and given no piece of their own."""
        if self._discrete:
            return self._enumerated_terms(zeta)
        env, pieces = {}, []
        for step in self._steps:
            term = step.term(zeta, env)
            if term is not None:
                pieces.append((step.statement, term + anp.zeros(zeta.shape[0])))
        return pieces

    def _enumerated_terms(self, zeta) -> list:
        pieces = []
        _, acc, _ = self._enumerate(zeta, {}, pieces)
        s = zeta.shape[0]
        for d, step in self._discrete.items():
            pieces.append((step.statement, enumeration.marginal(acc[d], step.values, s)))
        return pieces

    def _forward(self, zeta, rng=None) -> dict:
        """Every latent and let (data-only ones excepted) at the draws, plain numpy; discrete
        latents drawn from their conditional posterior given each draw (``rng``, or a
        generator seeded 0)."""
        zeta = np.asarray(zeta, dtype=float)
        env = {}
        if self._discrete:
            rng = np.random.default_rng(0) if rng is None else rng
            for d, p in self.probabilities(zeta).items():
                env[d] = enumeration.draw(p, self._discrete[d].values, rng)
        for step in self._steps:
            if isinstance(step, _LatentStep):
                env[step.name] = np.asarray(step.value(zeta, env)[0])
            elif isinstance(step, _LetStep):
                env[step.name] = np.asarray(step.fn(env))
        return env

    def constrained(self, zeta, rng=None) -> dict[str, np.ndarray]:
        """Reported latents and lets at the draws: name -> [S, *shape] (numpy).

        Names starting with '_' are computed but not reported (LANGUAGE.md, Reporting).
        Discrete latents are drawn from their conditional posterior with ``rng``.
        """
        env = self._forward(zeta, rng)
        n = np.shape(zeta)[0]
        return {s.statement.name: _full(env[s.statement.name], n, s.statement)
                for s in self._steps if _reported(s.statement)}

    def unconstrained_names(self) -> list[str]:
        """Element names of the D unconstrained coordinates: ``ir.element_names`` of each
        latent's free shape (a simplex ``p`` of K values has free ``p[0]`` .. ``p[K-2]``)."""
        return [name for slot in self.slots for name in ir.element_names(slot.name,
                                                                          slot.free_shape)]

    def predictive(self, zeta, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One draw of every observed expression per draw of zeta (posterior predictive).

        Returns label -> [S, *shape]; the label is the observed expression's source text.
        """
        env = self._forward(zeta, rng)
        return self._draw_observed(env, rng, np.shape(zeta)[0])

    def pointwise_log_likelihood(self, zeta) -> dict[str, np.ndarray]:
        """The log density of every observed element at each draw (for LOO, WAIC, ArviZ).

        Returns label -> [S, *batch], labels as in ``predictive``; batch is the observed
        expression's shape without its distribution's event axes. Summed over the batch, each
        is the statement's term in ``terms``.

        Raises PplError for a model with discrete latents: its observations' terms are summed
        out with them (enumeration), so they have no log density of their own.
        """
        if self._discrete:
            from .errors import no_pointwise_with_discrete
            raise no_pointwise_with_discrete(sorted(self._discrete))
        env = self._forward(zeta)
        out = {}
        for step in self._steps:
            if isinstance(step, _ObserveStep):
                out[_label(step, out)] = step.pointwise(env, np.shape(zeta)[0])
        return out

    def observed(self) -> dict[str, np.ndarray]:
        """The observed values: label -> [*shape] (numpy), labels as in ``predictive``."""
        out = {}
        for step in self._steps:
            if isinstance(step, _ObserveStep):
                out[_label(step, out)] = step.value[0]
        return out

    def sample_prior(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Ancestral draws from the prior: reported latents and lets, and the observed
        expressions given them (prior predictive); name or label -> [n, *shape].

        A truncated latent (declared bounds narrowing its distribution's support) is drawn by
        rejection: elements outside the bounds are drawn again, up to 1000 rounds; any still
        outside are then clipped to the bounds (only a truncation to a region of prior
        probability below about 1% gets there with noticeable probability).
        """
        env = {}
        for step in self._steps:
            if isinstance(step, (_LatentStep, _DiscreteStep)):
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


def _reported(statement) -> bool:
    if isinstance(statement, (ir.Latent, ir.Param)):
        return not statement.name.startswith("_")
    return isinstance(statement, ir.Let) and statement.reported


def _full(value, n: int, statement) -> np.ndarray:
    """``value`` as [n, *shape] (a let that ignores the draws comes back as [1, *shape])."""
    shape = statement.value.shape if isinstance(statement, ir.Let) else statement.shape
    return np.array(np.broadcast_to(value, (n,) + tuple(shape)), dtype=float)


def _draw_latent(step: _LatentStep, env, rng, n: int) -> np.ndarray:
    if isinstance(step, _ParamStep) and step.cls is None:
        # no distribution: the param's default start, small random unconstrained values
        u = PARAM_START_SCALE * rng.standard_normal((n,) + step.slot.free_shape)
        return np.asarray(step.bijector_at(env).forward(u))
    params = {name: np.asarray(fn(env)) for name, fn in step.params.items()}
    size = (n,) + tuple(step.statement.shape)
    x = np.asarray(_sample(step.statement, rng, size, params), dtype=float)
    if isinstance(step, _DiscreteStep):
        return x.astype(np.int64)  # (a truncated discrete prior is drawn untruncated)
    if isinstance(step.support, (Ordered, PositiveOrdered)):
        return _ordered_draws(step, x, rng, params)
    if not step.statement.truncated:
        return x
    support = dataclasses.replace(step.support, **{k: np.asarray(fn(env))
                                                   for k, fn in step.bounds.items()})
    # Rejection, redrawing only the elements outside the bounds (a truncated latent is never
    # a simplex, so its elements are independent given the parameters).
    params = {name: np.broadcast_to(value, size) for name, value in params.items()}
    for _ in range(_REJECTION_ROUNDS):
        outside = ~support.check(x)
        if not outside.any():
            return x
        redraw = step.cls.sample(rng, (int(outside.sum()),),
                                 **{name: value[outside] for name, value in params.items()})
        x = x.copy()
        x[outside] = redraw
    return np.clip(x, getattr(support, "lower", -np.inf), getattr(support, "upper", np.inf))


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


def _sample(statement, rng, size: tuple, params: dict) -> np.ndarray:
    """The statement's distribution sampled in numpy; parameters outside their constraints,
    and numpy's refusals (a Poisson rate too large), are errors located at the statement."""
    cls = statement.dist.cls
    for name, value in params.items():
        if name in cls.dist_params:   # Mixture's component: a distribution, checked inside
            continue
        constraint = cls.constraints.get(name, real)
        inside = True if isinstance(constraint, Real) else constraint.check(value)
        ok = np.asarray(inside) & ~np.isnan(value)
        if not ok.all():
            found = np.asarray(np.broadcast_to(value, ok.shape))[~ok].flat[0]
            raise bad_draw_parameter(statement.span, cls.name, name, constraint.describe(),
                                     f"{found:g}")
    try:
        return np.asarray(cls.sample(rng, size, **params))
    except ValueError as error:  # numpy's samplers refuse e.g. lam > 9.2e18 with ValueError
        raise draw_failed(statement.span, cls.name, str(error)) from None


def compile_model(model: ir.Model, values: dict[str, np.ndarray], fuse: bool = True,
                  lets: dict | None = None, scales: dict | None = None,
                  inputs: dict | None = None) -> Compiled:
    """Compile a concretely checked model against its loaded data.

    Data-only work happens here, once: data-only lets, data-only subtrees of every expression
    (folded by ``evaluate.compile_expr``), observed values, constant bounds and their
    bijectors, and observe statements whose parameters are all data (a constant term).

    Parameters
    ----------
    model : ir.Model checked with dims (every shape a tuple of ints).
    values : data name -> numpy array, as returned by ``data.load_data``.
    fuse : compute likelihoods over a linear predictor with ``kernels.FusedTerm`` (same values
        up to rounding, fewer passes over the data), and Normal, HalfNormal, Cauchy and
        HalfCauchy terms with ``fused.density_total`` (the same values and gradients, fewer
        traced operations); False keeps the traced path everywhere.
    lets : the data-only lets' values, when computed elsewhere (a minibatch takes its rows of
        lets computed once on the whole data); None computes them from ``values``.
    scales : statement index -> factor multiplying that statement's term (a minibatch's N / B
        on the terms of the batched dimension); None for none.
    inputs : name -> [1, *shape], the data and data-only lets read at run time (a minibatch's
        rows, swapped by the caller between evaluations): ``model``'s Refs to them carry the
        name in their deps, so nothing reading them is folded, except observed values, which
        the caller refreshes too (``step.value``); their observe terms are computed per call
        (no constant, no fused kernel). None for none.

    Returns
    -------
    Compiled.
    """
    data_env = dict(values)
    data_env.update(data_lets(model, data_env) if lets is None else lets)
    kernels, inlined = fuse_model(model, data_env) if fuse else ({}, frozenset())
    inputs = {} if inputs is None else inputs
    if inputs:     # a kernel folds its data once: none where a batch's rows are read
        kernels = {i: k for i, k in kernels.items() if not _reads(model.statements[i], inputs)}
        inlined = frozenset(k.inlined[0] for k in kernels.values() if k.inlined is not None)
    steps = [_InputStep(name, _declared(model, name), inputs) for name in inputs]
    slots, offset, guides = [], 0, {}
    enumerated = plan(model)
    for i, statement in enumerate(model.statements):
        if isinstance(statement, ir.Latent) and statement.discrete:
            step = _DiscreteStep(statement, data_env)
        elif isinstance(statement, (ir.Latent, ir.Param)):
            kind = _LatentStep if isinstance(statement, ir.Latent) else _ParamStep
            step = kind(statement, offset, data_env)
            slots.append(step.slot)
            offset += step.slot.size
        elif isinstance(statement, ir.Guide):
            latent = next(s for s in steps if getattr(s, "name", None) == statement.name)
            guides[statement.name] = _GuideStep(statement, latent, data_env)
            continue
        elif isinstance(statement, ir.Let) and not statement.data_only:
            step = _LetStep(statement, data_env)
        elif isinstance(statement, ir.Observe):
            step = _ObserveStep(statement, data_env, kernels.get(i))
            if inputs and _reads(statement, inputs):
                step.constant = None      # its value changes with the batch
        elif isinstance(statement, ir.Factor):
            step = _FactorStep(statement, data_env)
        else:
            continue
        _enumerated_at(step, enumerated.get(i), steps)
        if isinstance(statement, ir.Latent) and not statement.discrete:
            step.innovations = _innovations(step, model)
        if isinstance(step, (_LatentStep, _ObserveStep)):
            step.fused = fuse and getattr(step.cls, "name", None) in DENSITIES
            if step.fused:
                step.raw = step.unlifted
        if scales and i in scales:
            step = _scaled(step, scales[i])
        steps.append(step)
    return Compiled(model, steps, tuple(slots), inlined, guides)


def _reads(statement: ir.Observe, names) -> bool:
    """Whether an observe statement reads one of ``names`` (its value or its parameters)."""
    return any(isinstance(e, ir.Ref) and e.name in names
               for e in (*ir.walk(statement.value), *ir.walk(statement.dist)))


def _declared(model: ir.Model, name: str):
    """The Data or Let statement declaring ``name`` (its shape, dtype and span); a let's
    dtype is its value's."""
    s = next(s for s in model.statements if isinstance(s, (ir.Data, ir.Let)) and s.name == name)
    return s if isinstance(s, ir.Data) else s.value


def _innovations(step: _LatentStep, model: ir.Model) -> bool:
    """Whether a latent is parameterized by its AR1 innovations: an unbounded AR1 latent
    with no ``guide`` statement (a user's guide is on the value itself, LANGUAGE.md) and no
    discrete latent reaching it (an enumerated environment holds its parameters elsewhere)."""
    guided = any(isinstance(s, ir.Guide) and s.name == step.name for s in model.statements)
    return (step.cls.name == "AR1" and isinstance(step.support, Real) and not step.bounds
            and not step.statement.truncated and step.enum is None and not guided)


def _scaled(step, factor: float):
    """The step with its term (and constant) multiplied by ``factor`` (minibatch scaling)."""
    pending = step.pending
    # a scaled term is summed as a value (term() reads pending(): wrap that one)
    step.pending = lambda zeta, env: _times(settle(pending(zeta, env)), factor)
    step.term = step.pending
    if getattr(step, "constant", None) is not None:
        step.constant = step.constant * factor
    return step


def _times(term, factor: float):
    return None if term is None else term * factor


def _enumerated_at(step, where, steps) -> None:
    """Mark a step reached by a discrete latent: ``step.enum`` = (name, block start), and
    ``step.full`` its batch shape; refuse a term too large to enumerate."""
    step.enum = where
    if where is None:
        return
    statement = step.statement
    if isinstance(statement, ir.Factor):
        step.full = tuple(statement.value.shape)
    elif not isinstance(statement, ir.Let):
        shape = statement.shape if isinstance(statement, ir.Latent) else statement.value.shape
        step.full = tuple(shape[:len(shape) - statement.dist.cls.event_dim])
    if not isinstance(statement, ir.Let):
        discrete = next(s for s in steps + [step] if getattr(s, "name", None) == where[0])
        discrete.values.check_size(statement, step.full)
