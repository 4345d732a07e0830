"""The user-guide family: ``param`` point estimates and ``guide`` statements around an automatic
family (LANGUAGE.md, Version 2: New statements, Guides).

The unconstrained vector zeta [S, D] (the compiler's layout, source order) has three kinds of
slots: a param's (the same value in every draw: q is a point mass there), a guided latent's
(``guide z ~ Normal(loc, scale)``: zeta_z = loc + scale * eps, with loc and scale computed from
data, params and earlier latents, so the draw stays reparameterized), and the rest, drawn by
the automatic family (``--guide``) on its own D_auto coordinates.

``theta`` is one flat vector: the automatic family's parameters, then the params' unconstrained
values [P]. The guide's own parameters are params too (an encoder's weights).

q(zeta) = q_auto(zeta_auto) * prod over guided latents q(zeta_z | what it depends on), so its
entropy is the automatic family's (closed form, or a flow's estimate) plus, for each guided
latent, E[sum log scale] + n_z / 2 (1 + log 2 pi): the conditional entropy of a Normal, averaged
over the draws (Monte Carlo where scale depends on other latents; exact where it does not).
"""
from __future__ import annotations

import dataclasses
from typing import get_args

import autograd.numpy as anp
import numpy as np

from .. import ir
from ..blocks import assemble, block
from ..errors import bad_init

_LOG_2PI = float(np.log(2 * np.pi))
_EXPR_TYPES = get_args(ir.Expr)
PREFIX = "user+"


def applies(compiled) -> bool:
    """Whether the model has ``param`` or ``guide`` statements (this family is then used)."""
    return bool(getattr(compiled, "params", ())) or bool(getattr(compiled, "guides", {}))


def auto_dim(compiled) -> int:
    """D_auto: the coordinates the automatic family (``--guide``) draws, neither a param's
    nor a guided latent's."""
    return int(_split_columns(compiled)[0].size)


def point_only(compiled) -> bool:
    """Params and nothing to draw: the fit is a deterministic optimization (ML or MAP)."""
    return applies(compiled) and _split_columns(compiled)[0].size == 0 and not compiled.guides


def _split_columns(compiled):
    """Columns of zeta: (automatic [D_auto], params [P], guided [G]) index arrays."""
    auto, params, guided = [], [], []
    for slot in compiled.slots:
        cols = list(range(slot.offset, slot.offset + slot.size))
        if slot.name in compiled.params:
            params += cols
        elif slot.name in compiled.guides:
            guided += cols
        else:
            auto += cols
    return (np.array(auto, dtype=int), np.array(params, dtype=int), np.array(guided, dtype=int))


def _names(expr_or_none) -> set:
    """Names of the non-data values an expression reads (latents, params, lets)."""
    return {e.name for e in ir.walk(expr_or_none) if isinstance(e, ir.Ref) and e.deps}


class UserGuide:
    """The family of a model with params or guides; see the module docstring.

    Parameters
    ----------
    compiled : compiler.Compiled with ``params``, ``guides`` and ``steps``.
    auto : the automatic family for the latents without a guide, built for D_auto coordinates.
    start : [P] the params' starting unconstrained values (:func:`param_start`).
    """

    dense_frame = False
    window_scale = 1

    def __init__(self, compiled, auto, start: np.ndarray):
        self.compiled, self.auto = compiled, auto
        self.auto_cols, self.param_cols, self.guided_cols = _split_columns(compiled)
        self.d_auto, self.n_params = self.auto_cols.size, self.param_cols.size
        self.n_guided = self.guided_cols.size
        self.n_auto_theta = auto.init(self.d_auto, 1.0).size
        self.eps_auto = auto.eps_dim(self.d_auto)
        self.start = np.asarray(start, dtype=float)
        self.name = PREFIX + auto.name
        self.order = _order(compiled)
        # Minibatches (infer/minibatch.py): the entropy of the batched latents' coordinates
        # is scaled by N / B like their terms. Guided latent name -> factor; and positions
        # among the automatic (mean-field) coordinates with their factor.
        self.entropy_factor: dict[str, float] = {}
        self.auto_local: tuple[np.ndarray, float] | None = None

    # ----- parameters and draws ----------------------------------------------------------------

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """The automatic family's start, then the params' starting values."""
        return np.concatenate([self.auto.init(self.d_auto, init_scale), self.start])

    def eps_dim(self, D: int) -> int:
        return self.eps_auto + self.n_guided

    def _parts(self, theta):
        if not self.n_auto_theta:       # params only: nothing to cut (each cut is traced)
            return np.zeros(0), theta
        return theta[:self.n_auto_theta], theta[self.n_auto_theta:]

    def draw_and_entropy(self, theta, eps):
        """Reparameterized draws zeta [S, D] and the entropy of q (a scalar; see the module)."""
        theta_auto, values = self._parts(theta)
        S = eps.shape[0]
        if self.d_auto:
            z_auto, entropy = self.auto.draw_and_entropy(theta_auto, eps[:, :self.eps_auto])
        else:
            z_auto, entropy = anp.zeros((S, 0)), 0.0
        zeta, log_scale, _ = self._pass(z_auto, values, S, eps=eps[:, self.eps_auto:])
        if self.auto_local is not None:   # mean field: its entropy is a sum over coordinates
            local, factor = self.auto_local
            log_sigma = theta_auto[self.d_auto:]
            entropy = entropy + (factor - 1.0) * (anp.sum(log_sigma[local])
                                                  + 0.5 * local.size * (1.0 + _LOG_2PI))
        count = sum(self.entropy_factor.get(step.name, 1.0) * step.slot.size
                    for kind, step in self.order if kind == "guided")
        constant = 0.5 * count * (1.0 + _LOG_2PI)
        if isinstance(entropy, float):    # no automatic coordinates: one traced add, not two
            return zeta, anp.mean(log_scale) + (entropy + constant)
        return zeta, entropy + anp.mean(log_scale) + constant

    def draw(self, theta, eps):
        return self.draw_and_entropy(theta, eps)[0]

    # ----- a fit on fixed draws (infer/fixed_draws.py: advi polishes the params so) ----------

    @property
    def D(self) -> int:
        return self.compiled.dim

    def entropy(self, theta):
        """The entropy of q, as :meth:`draw_and_entropy` gives it; with guided latents it
        varies with the draws (their log scales), so it is only for a guide without them."""
        if self.n_guided:
            raise ValueError("a guide with guided latents has no closed-form entropy")
        return self.draw_and_entropy(theta, np.zeros((1, self.eps_dim(0))))[1]

    def units(self, theta) -> np.ndarray:
        """Per-parameter units for L-BFGS-B's first steps: 1 each, as Adam's jitter reads the
        params (:meth:`jitter_scale`)."""
        return np.ones(len(theta))

    def log_q(self, theta, zeta):
        """log q(zeta) [S] over the automatic and guided coordinates (the params' point mass
        is left out: every draw has the same param values)."""
        theta_auto, values = self._parts(theta)
        S = zeta.shape[0]
        z_auto = zeta[:, self.auto_cols] if self.d_auto else anp.zeros((S, 0))
        total = self.auto.log_q(theta_auto, z_auto) if self.d_auto else anp.zeros(S)
        _, _, log_q = self._pass(z_auto, values, S, zeta=zeta)
        return total + log_q

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(np.asarray(theta, dtype=float),
                         rng.standard_normal((n, self.eps_dim(0))))

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, eps_dim] and their log q [n], from the
        noise: the automatic family's own (``draw_and_log_q`` where it has one) and, for each
        guided coordinate, log N(eps; 0, 1) - log scale, (u - loc) / scale being eps itself.
        Equal to :meth:`log_q` at the draws to rounding, except where the draws round to the
        guide's centre (a collapsed scale): log q recomputed from such draws is the same at
        all of them, and PSIS read the tied weights as bounded (k̂ -inf, 'reliable': the
        mean-field case of MeanField.draw_and_log_q, behind guide statements)."""
        theta = np.asarray(theta, dtype=float)
        theta_auto, values = self._parts(theta)
        S = eps.shape[0]
        log_q = np.zeros(S)
        if self.d_auto:
            forward = getattr(self.auto, "draw_and_log_q", None)
            if forward is not None:
                z_auto, log_q = forward(theta_auto, eps[:, :self.eps_auto])
            else:
                z_auto = self.auto.draw(theta_auto, eps[:, :self.eps_auto])
                log_q = self.auto.log_q(theta_auto, z_auto)
        else:
            z_auto = np.zeros((S, 0))
        scales = []     # each guided latent's log scale, in the order its noise is read
        zeta, _, _ = self._pass(z_auto, values, S, eps=eps[:, self.eps_auto:], scales=scales)
        if scales:
            log_scale = np.concatenate([np.reshape(s, (S, -1)) for s in scales], axis=1)
            e = eps[:, self.eps_auto:]
            log_q = log_q + np.sum(-log_scale - 0.5 * e * e - 0.5 * _LOG_2PI, axis=1)
        return zeta, np.asarray(log_q, dtype=float)

    def _pass(self, z_auto, values, S: int, eps=None, zeta=None, scales=None):
        """Walk the model in dependency order filling every slot's block: params from
        ``values``, automatic latents from ``z_auto``, guided latents drawn from ``eps`` (or,
        given ``zeta``, read from it). Returns (zeta [S, D], sum of log scale [S], log q of
        the guided coordinates [S] (zero when drawing)); ``scales``, a list, receives each
        guided latent's log scale [S, *shape] in layout order."""
        env, blocks = {}, {}
        row = anp.reshape(values, (1, -1))
        log_scale, log_q = None, anp.zeros(S)     # (None: nothing added yet, nothing traced)
        cursor = {"auto": 0, "param": 0, "guided": 0}
        for kind, step in self.order:
            if kind == "let":
                env[step.name] = step.fn(env)
                continue
            size, free = step.slot.size, step.slot.free_shape
            if kind == "param":
                i = cursor["param"]
                u = block(row, None, i, i + size, free)
            elif kind == "auto":
                i = cursor["auto"]
                u = z_auto[:, i:i + size]
            else:   # on the latent's own shape [S, *shape] (its free shape: a real latent)
                i = cursor["guided"]
                guide = self.compiled.guides[step.name]
                shape = (S,) + step.slot.shape
                axes = tuple(range(1, len(shape)))
                loc = _full(guide.loc(env), shape)
                scale = _full(guide.scale(env), shape)
                factor = self.entropy_factor.get(step.name, 1.0)
                term = factor * anp.sum(anp.log(scale), axis=axes)
                log_scale = term if log_scale is None else log_scale + term
                if scales is not None:
                    scales.append(anp.log(scale))
                if zeta is None:
                    u = loc + scale * anp.reshape(eps[:, i:i + size], shape)
                else:
                    u = anp.reshape(zeta[:, step.slot.offset:step.slot.offset + size], shape)
                    z = (u - loc) / scale
                    log_q = log_q + anp.sum(-anp.log(scale) - 0.5 * z * z - 0.5 * _LOG_2PI,
                                            axis=axes)
            cursor[kind] = i + size
            if kind == "auto" and free != (size,):
                u = anp.reshape(u, (S,) + free)
            blocks[step.name] = u            # [S, *free], a param's [1, *free]
            env[step.name] = step.bijector_at(env).forward(u)
        pieces = [blocks[slot.name] for slot in self.compiled.slots]
        full = assemble(S, pieces) if pieces else anp.zeros((S, 0))
        return full, anp.zeros(S) if log_scale is None else log_scale, log_q

    def blame(self, theta, eps):
        """The ir.Guide of the first guided latent whose scale is not positive and finite, or
        whose loc is not finite, at these draws; None when every guide is (a step that failed
        then failed in the log joint)."""
        theta_auto, values = self._parts(np.asarray(theta, dtype=float))
        S = eps.shape[0]
        z_auto = self.auto.draw(theta_auto, eps[:, :self.eps_auto]) if self.d_auto \
            else np.zeros((S, 0))
        scales = []
        with np.errstate(all="ignore"):
            zeta, _, _ = self._pass(z_auto, values, S, eps=eps[:, self.eps_auto:],
                                    scales=scales)
        guided = [step for kind, step in self.order if kind == "guided"]
        for step, log_scale in zip(guided, scales):
            u = zeta[:, step.slot.offset:step.slot.offset + step.slot.size]
            if not (np.all(np.isfinite(log_scale)) and np.all(np.isfinite(u))):
                return self.compiled.guides[step.name].statement
        return None

    # ----- reports ------------------------------------------------------------------------------

    def mean(self, theta) -> np.ndarray:
        """zeta at eps = 0 [D]: the automatic family's centre, each guided latent's loc there,
        the params' values."""
        return np.asarray(self.draw(np.asarray(theta, dtype=float),
                                    np.zeros((1, self.eps_dim(0)))))[0]

    def log_sd(self, theta) -> np.ndarray:
        """Log marginal sds [D]: the automatic family's, each guided coordinate's log scale at
        eps = 0, and -inf for the params (a point mass)."""
        theta = np.asarray(theta, dtype=float)
        theta_auto, values = self._parts(theta)
        out = np.full(self.compiled.dim, -np.inf)
        if self.d_auto:
            out[self.auto_cols] = self.auto.log_sd(theta_auto)
        if self.n_guided:
            z_auto = self.auto.draw(theta_auto, np.zeros((1, self.eps_auto))) if self.d_auto \
                else np.zeros((1, 0))
            scales = []
            self._pass(z_auto, values, 1, eps=np.zeros((1, self.n_guided)), scales=scales)
            out[self.guided_cols] = np.concatenate([np.ravel(s) for s in scales])
        return out

    def jitter_scale(self, theta) -> np.ndarray:
        """The automatic family's units, then 1 per param (absolute units: no sd). With no
        automatic coordinates the family may still have parameters (a flow's hidden biases
        at D = 0), which reach nothing: 1 each, so the units match theta's length."""
        theta_auto, _ = self._parts(np.asarray(theta, dtype=float))
        auto = self.auto.jitter_scale(theta_auto) if self.d_auto else np.ones(self.n_auto_theta)
        return np.concatenate([auto, np.ones(self.n_params)])

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W * zeta (W diagonal [D]) on the automatic coordinates and
        the params; guided coordinates are left as their guides make them (multi-start)."""
        theta_auto, values = self._parts(np.asarray(theta, dtype=float))
        m0, W = np.asarray(m0, dtype=float), np.asarray(W, dtype=float)
        if self.d_auto:
            theta_auto = self.auto.push_affine(theta_auto, m0[self.auto_cols],
                                               W[self.auto_cols])
        values = m0[self.param_cols] + W[self.param_cols] * values
        return np.concatenate([theta_auto, values])

    def warm_start(self, source, theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    def to_dict(self, theta, names) -> dict:
        """fit.json: {"auto": the automatic family's parameters, "params": element name ->
        unconstrained value}."""
        theta_auto, values = self._parts(np.asarray(theta, dtype=float))
        names = list(names)
        auto = self.auto.to_dict(theta_auto, [names[i] for i in self.auto_cols])
        return {"auto": auto, "params": {names[i]: float(v)
                                         for i, v in zip(self.param_cols, values)}}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        """The inverse of :meth:`to_dict` (KeyError when an entry is missing)."""
        names = list(names)
        auto = self.auto.from_dict(parameters["auto"], [names[i] for i in self.auto_cols])
        values = [parameters["params"][names[i]] for i in self.param_cols]
        return np.concatenate([np.asarray(auto, dtype=float).reshape(-1),
                               np.asarray(values, dtype=float)])

    def param_values(self, theta) -> dict[str, np.ndarray]:
        """Each param's constrained value: name -> [*shape]."""
        _, values = self._parts(np.asarray(theta, dtype=float))
        out, env, i = {}, {}, 0
        for kind, step in self.order:
            if kind != "param":
                continue
            u = np.reshape(values[i:i + step.slot.size], (1,) + step.slot.free_shape)
            env[step.name] = step.bijector_at(env).forward(u)
            out[step.name] = np.asarray(env[step.name])[0]
            i += step.slot.size
        return out


def _full(x, shape: tuple):
    """``x`` broadcast to ``shape`` (no traced operation when it has that shape already)."""
    return x if anp.shape(x) == shape else x + anp.zeros(shape)


def _order(compiled) -> list:
    """(kind, step) in an order where everything a guide or a dynamic bound reads comes first:
    kinds 'param', 'auto', 'guided' (latents) and 'let' (only the lets some guide or bound
    needs). Source order, except that a guided latent waits for the lets its guide reads."""
    from ..compiler.steps import _LatentStep, _LetStep, _ParamStep
    needs, kinds = {}, {}
    for step in compiled.steps:
        if isinstance(step, _ParamStep):
            kinds[step.name] = "param"
        elif isinstance(step, _LatentStep):
            kinds[step.name] = "guided" if step.name in compiled.guides else "auto"
        elif isinstance(step, _LetStep):
            kinds[step.name] = "let"
        else:
            continue
        names = _names(step.statement.value) if kinds[step.name] == "let" else set()
        if kinds[step.name] != "let":
            for bound in vars(step.statement.support).values():
                names |= _names(bound) if isinstance(bound, _EXPR_TYPES) else set()
        if step.name in compiled.guides:
            guide = compiled.guides[step.name].statement
            names |= _names(guide.loc) | _names(guide.scale)
        needs[step.name] = (names, step)
    wanted = _wanted_lets(needs, kinds)
    pending = [n for n in needs if kinds[n] != "let" or n in wanted]
    order, done = [], set()
    while pending:
        ready = next(n for n in pending if needs[n][0] <= done)  # the checker ensures one is
        order.append((kinds[ready], needs[ready][1]))
        done.add(ready)
        pending.remove(ready)
    return order


def _wanted_lets(needs: dict, kinds: dict) -> set:
    """The lets read, directly or through other lets, by a guide or a latent's bound."""
    wanted, stack = set(), [n for name in needs if kinds[name] != "let"
                            for n in needs[name][0] if kinds.get(n) == "let"]
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack += [n for n in needs[name][0] if kinds.get(n) == "let"]
    return wanted


def check_init_names(init: dict | None, params, latents=(), data=()) -> None:
    """Raise bad_init for a name in ``init`` that is none of ``params`` (the model's param
    statements), before any fit: on a model without params nothing reads ``init``, so a name
    given for a sample statement's latent (CmdStan's ``init`` names those) or a typo would
    otherwise be ignored without a word. ``latents``, ``data``: the model's latents and data
    names, said in the message when the name is one of them (a data file given as --init)."""
    for name in init or {}:
        if name in params:
            continue
        listed = f"(params: {', '.join(params) or 'none'})"
        if name in latents:
            raise bad_init(name, "a sample statement's latent, not a param; init gives "
                           f"starting values to param statements only {listed}")
        if name in data:
            raise bad_init(name, "data, not a param; init gives starting values to param "
                           f"statements only {listed}; the data goes with --data")
        raise bad_init(name, f"the model has no such param {listed}")


def param_start(compiled, rng: np.random.Generator, init: dict | None) -> np.ndarray:
    """The params' starting unconstrained values [P], in layout order.

    A value given in ``init`` (name -> array of the param's shape, inside its support) is used
    as is; otherwise a draw of the param's ``~ DIST`` (its parameters from data and earlier
    params), or small seeded random values (sd PARAM_START_SCALE on the unconstrained scale),
    as also for the elements of a draw that fell on a bound.

    Raises
    ------
    PplError (bad_init) : a value for an unknown param, of the wrong shape or outside the
        param's support.
    """
    from ..compiler.draws import PARAM_START_SCALE, _draw_latent
    from ..compiler.steps import _ParamStep
    init = dict(init or {})
    check_init_names(init, compiled.params)
    env, values = {}, []
    for step in compiled.steps:
        if not isinstance(step, _ParamStep):
            continue
        bijector = step.bijector_at(env)
        if step.name in init:
            x = np.asarray(init[step.name], dtype=float)
            if x.shape != step.slot.shape:
                raise bad_init(step.name, f"shape {x.shape} given; the param's is "
                               f"{step.slot.shape}")
            # bounds that read earlier params are checked at those params' starts: unchecked,
            # a value below such a bound was refused as 'on a bound of its support'
            support = dataclasses.replace(step.support, **{
                field: fn(env) for field, fn in step.bounds.items()})
            if not np.all(np.isfinite(x)):
                # NaN or 1e400 on a param: real was said to be 'outside its support'
                raise bad_init(step.name, "a value that is not finite (NaN or an infinity)")
            if not np.all(support.check(x)):
                raise bad_init(step.name, "a value outside its support" + (
                    ", whose bounds read other params: checked at their starting values "
                    "(give those in init too)" if step.bounds else ""))
            x = x[None]
        else:
            x = _draw_latent(step, env, rng, 1, warn=False)   # on a bound: below
        with np.errstate(divide="ignore"):
            unconstrained = np.ravel(np.asarray(bijector.inverse(x), dtype=float))
        on_bound = ~np.isfinite(unconstrained)
        if step.name in init and on_bound.any():
            # on a bound (0 for <lower=0>): the unconstrained start is -inf and no step can
            # leave it (the fit "converged" after 0 steps at the bound)
            raise bad_init(step.name, "a value on a bound of its support; the fit starts "
                           "strictly inside it")
        if on_bound.any():
            # a truncated prior with little mass inside its bounds (real<lower=5> ~ Normal(0,
            # 1)): a draw still outside after the redraws is clipped onto the bound
            # (draws._draw_latent), where the fit stayed, "converged after 0 steps"; those
            # elements start as a param without a distribution does
            unconstrained[on_bound] = PARAM_START_SCALE * rng.standard_normal(on_bound.sum())
            x = bijector.forward(np.reshape(unconstrained, (1,) + step.slot.free_shape))
        env[step.name] = x
        values.append(unconstrained)
    return np.concatenate(values) if values else np.zeros(0)


def family_for(compiled, spec: str, rng: np.random.Generator | None = None,
               init: dict | None = None) -> UserGuide:
    """The user-guide family around the automatic family ``spec`` (``--guide``; 'user+' is
    stripped, as fit.json records it), the params starting at :func:`param_start` (drawn
    from ``rng``; zeros when restoring a saved fit, whose values are read back)."""
    from . import family
    spec = spec.removeprefix(PREFIX)
    auto = family(spec, auto_dim(compiled), guided=True)
    P = _split_columns(compiled)[1].size
    start = np.zeros(P) if rng is None else param_start(compiled, rng, init)
    return UserGuide(compiled, auto, start)
