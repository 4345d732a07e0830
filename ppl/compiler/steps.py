"""One step per statement of an ir.Model, built once against the data: latents and params
(their Slot in zeta [S, D] and bijector), discrete latents, lets, data inputs, guides, observes
and factors. Each has ``term(zeta, env)`` (and ``pending``), its piece of the log joint.

joint.py sums the steps' terms; draws.py reads the same steps in plain numpy; build.py makes them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from .. import enumeration, ir
from ..bijectors import AR1Innovations, Identity, biject_to
from ..blocks import cutter as _cutter
from ..constraints import Real, real
from ..errors import bad_draw_parameter, draw_failed
from ..evaluate import compile_expr, dist_param_fns, evaluate_data, lift
from ..fused import settle
from .density import (_Counter, _density_total, _guarded, _outside, _outside_elements,
                      _pending_density, _sum_rest)

_EXPR_TYPES = get_args(ir.Expr)


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


def _param_fns(dist: ir.Dist, value_rank: int, data_env, raw=None) -> dict[str, Any]:
    """Closures of a distribution's parameters lined up against a value of rank
    ``value_rank`` (``evaluate.dist_param_fns``; ``raw`` receives them before lifting)."""
    return dist_param_fns(dist, value_rank, data_env, raw)


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

    def value_and_log_det(self, zeta, env):
        """(x [S, *shape], log|det J| [S], or None where the bijector is the identity) for the
        draws ``zeta`` [S, D]; one pass where the two share work (a simplex, a correlation
        Cholesky factor: Bijector.forward_and_log_det)."""
        u = self.cut(zeta)
        bijector = self.bijector_at(env)
        if isinstance(bijector, Identity):
            return bijector.forward(u), None    # log|det J| = 0: no sum of zeros to trace
        return bijector.forward_and_log_det(u)

    def term(self, zeta, env):
        """Sets env[name]; returns log prior + log|det J| [S]."""
        return settle(self.pending(zeta, env))

    def pending(self, zeta, env):
        """``term`` as a term of fused.add_terms: the log prior a fused.Pending where it can
        be, and a group (log prior, log|det J|) where there is a log-Jacobian."""
        if self.innovations:
            # AR1Innovations: the prior density of x times |det dx/du| is u's standard normal
            u = self.cut(zeta)
            env[self.name] = self.bijector_at(env).forward(u)
            params = {name: fn(env) for name, fn in self.params.items()}
            return _outside(self.guarded, params, _sum_rest(-0.5 * u * u - _LOG_SQRT_2PI))
        x, log_det = self.value_and_log_det(zeta, env)
        env[self.name] = x
        # Truncated priors keep the untruncated density: the normalizing constant is dropped,
        # as in Stan (LANGUAGE.md, Types).
        log_prior = _pending_density(self, x, env)
        return log_prior if log_det is None else (log_prior, log_det)

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
        # one density per event, as a latent's: counted per element, a penalty of MvNormal,
        # RandomWalk or AR1 was counted once per element of its event
        event_dim = 0 if self.cls is None else self.cls.event_dim
        self.count = _Counter(self.slot.shape[:len(self.slot.shape) - event_dim])
        self.cut = _cutter(offset, size, free_shape, rows=1)

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
            # a likelihood of data alone is a constant: computed once, added every time (not
            # finite, it is the start check's located error: numpy's raw 'divide by zero in
            # log' of a Weibull time of 0 reached the user first)
            with np.errstate(all="ignore"):
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
        with np.errstate(invalid="ignore", divide="ignore"):  # outside: -inf, set below
            density = np.asarray(self.cls.log_density(self.value, **params), dtype=float)
        batch = self.value.shape[1:self.value.ndim - self.cls.event_dim]
        # A density that ignores some value axes (Uniform with a constant width) comes back
        # with fewer trailing axes: every element of the batch has that same density.
        density = density.reshape(density.shape + (1,) * (1 + len(batch) - density.ndim))
        density = np.broadcast_to(density, (n,) + batch)
        return np.array(np.broadcast_to(_outside_elements(self, params, density), (n,) + batch))

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
            # a factor of data alone is a constant: computed once, added every time (as an
            # observe's, numpy's warnings are the start check's error instead)
            with np.errstate(all="ignore"):
                self.constant = float(np.sum(evaluate_data(factor.value, data_env)))

    def term(self, zeta, env):
        if self.constant is not None:
            return self.constant
        return _sum_rest(self.fn(env))

    pending = term

    def elements(self, env):
        return self.fn(env)


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
