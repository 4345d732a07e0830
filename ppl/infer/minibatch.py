"""Minibatch ADVI: ``--batch DIM=B`` (LANGUAGE.md, Minibatches; docs/minibatch.md).

Each step draws B of the N indices of the data dimension DIM (without replacement, sorted so a
memory-mapped file is read in order). Every data array, data-only let and latent whose first
axis is DIM is taken at those rows; the model, checked once with DIM = B, is compiled once,
with the batched arrays read at run time (``compile_model``'s inputs), so a step only takes
the batch's rows (an O(B) cost: data-only lets are computed once, on the whole data, and only
their rows are taken). Every term whose first axis is DIM (observe, factor, a batched latent's
prior and log-Jacobian) is scaled by N / B, and so is the entropy of the batched latents' guide
coordinates, so the ELBO estimate and its gradient are unbiased for the full-data ones.

A batched latent with a ``guide`` statement (amortized: loc and scale computed from its data
row) needs nothing per row. One without keeps per-row mean-field parameters for all N rows in
theta; a step's draws use the batch's rows only, so only those rows' means and log sigmas get
a gradient (their entropy scaled by N / B, like their terms); Adam's moments still move the
other rows a little (their momentum), as in any sparse-gradient use of Adam.
"""
from __future__ import annotations

import dataclasses
import time

import autograd.numpy as anp
import numpy as np

from .. import errors, ir
from . import batchaxis
from ..compiler import compile_model
from ..compiler.steps import _ObserveStep
from ..evaluate import data_lets, evaluate_data
from ..frontend.check import check
from ..guides import check_spec, user


def prepare(program, symbolic: ir.Model, concrete: ir.Model, values: dict, options,
            rng: np.random.Generator) -> "Minibatch":
    """Validate ``options.batch`` against the model and build the step's batched model.

    Raises
    ------
    PplError : a dimension no data declares, B larger than it, a dimension that is the first
        axis of no data, data-only let or latent (option errors); a statement
        that combines rows of the batched dimension, a param over it (located errors);
        discrete latents, multiple starts or DADVI with --batch.
    """
    (dim, size), = options.batch.items()
    dims = {name: int(np.asarray(values[name])) for name, d in concrete.data.items()
            if d.dtype == "int" and not d.shape}
    if dim not in dims:
        raise errors.batch_unknown_dimension(dim, dims)
    if size > dims[dim]:
        raise errors.batch_too_large(dim, size, dims[dim])
    if not any(_first(shape, dim) for shape in _shapes(symbolic)):
        raise errors.batch_nothing_on(dim)
    if any(latent.discrete for latent in concrete.latents.values()):
        raise errors.batch_not_supported("models with discrete latents are not supported")
    if options.starts > 1 or options.method != "advi":
        raise errors.batch_not_supported(f"minibatches fit with method advi from one start; "
                                         f"found method {options.method}, starts "
                                         f"{options.starts}")
    refuse_mixing(symbolic, dim, dims)
    batch = Minibatch(program, symbolic, concrete, values, dims, dim, size, rng)
    family = check_spec("meanfield" if options.guide == "auto" else options.guide)[0]
    if family != "meanfield" and batch.meanfield_only:
        # refused here, before the fit's warnings, not when the fit builds its guide
        raise errors.batch_not_supported(
            f"a batched latent without a guide statement needs --guide meanfield (found "
            f"{options.guide}): its per-row guide parameters are taken at the batch's rows")
    return batch


def _first(shape, dim) -> bool:
    return len(shape) > 0 and shape[0] == dim


def _shapes(model: ir.Model):
    """The shapes of the data, the data-only lets and the latents: what a batch takes rows of."""
    for s in model.statements:
        if isinstance(s, (ir.Data, ir.Latent)):
            yield s.shape
        elif isinstance(s, ir.Let) and s.data_only:
            yield s.value.shape


def refuse_mixing(model: ir.Model, dim: str, dims: dict | None = None) -> None:
    """Located errors for what a minibatch cannot compute from its rows (infer/batchaxis.py):
    anything that combines rows of the batched axis outside a data-only let (those are computed
    once on the whole data), a batched axis that is not a value's first, a param over it, a
    value of another dimension lined up with the rows (``dims``: the int data scalars)."""
    batchaxis.refuse(model, dim, dims)


def _marked(node, names):
    """``node`` (an IR statement or expression) with every Ref to one of ``names`` carrying
    that name in its deps, and every node above it too: the compiler then reads those names
    at run time instead of folding them as data. Returns (node, the names marked below)."""
    if isinstance(node, ir.Ref):
        return (dataclasses.replace(node, deps=node.deps | {node.name}), {node.name}) \
            if node.name in names else (node, set())
    if isinstance(node, tuple):
        pairs = [_marked(item, names) for item in node]
        return tuple(p[0] for p in pairs), set().union(*(p[1] for p in pairs))
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return node, set()
    changes, found = {}, set()
    for field in dataclasses.fields(node):
        if field.name in ("span", "deps"):
            continue
        new, below = _marked(getattr(node, field.name), names)
        if below:
            changes[field.name], found = new, found | below
    if not found:
        return node, found
    if any(f.name == "deps" for f in dataclasses.fields(node)):
        changes["deps"] = node.deps | found
    return dataclasses.replace(node, **changes), found


def _live_model(model: ir.Model, names: set) -> ir.Model:
    """The batch model with ``names`` (batched data and data-only lets) read at run time.
    Data-only lets keep their statements (computed once on the whole data) and observed
    values stay data (the minibatch refreshes them per batch)."""
    out = []
    for s in model.statements:
        if isinstance(s, ir.Data) or (isinstance(s, ir.Let) and s.data_only):
            out.append(s)
        elif isinstance(s, ir.Observe):
            out.append(dataclasses.replace(s, dist=_marked(s.dist, names)[0]))
        else:
            out.append(_marked(s, names)[0])
    return dataclasses.replace(model, statements=tuple(out))


class Minibatch:
    """The model as the fit loop sees it under --batch: ``log_joint`` and ``terms`` of the
    current batch (compiled once for B rows, reading the batch's rows from ``inputs``),
    ``next_batch`` called once per step (advi.py's noise draw), ``dim`` and
    ``unconstrained_names`` of the full model (theta's layout)."""

    def __init__(self, program, symbolic: ir.Model, concrete: ir.Model, values: dict,
                 dims: dict, dim: str, size: int, rng: np.random.Generator):
        self.dim_name, self.N, self.B = dim, dims[dim], size
        self.rng = rng
        try:
            self.model = check(program, {**dims, dim: size})
        except errors.PplError as error:   # the whole data's model passed: it is the batch's
            raise errors.batch_check_failed(error, dim, size) from None
        self.values, self.lets = values, data_lets(concrete, values)
        self.rows = {name for name, d in symbolic.data.items() if _first(d.shape, dim)}
        self.rows |= {s.name for s in symbolic.statements if isinstance(s, ir.Let)
                      and s.data_only and _first(s.value.shape, dim)}
        self.batched = {s.name for s in symbolic.statements
                        if isinstance(s, ir.Latent) and _first(s.shape, dim)}
        _check_let_shapes(self.model, self.lets, self.rows, dim, size)
        factor = self.N / size
        self.scales = {i: factor for i, s in enumerate(symbolic.statements) if _term_rows(s, dim)}
        self.listeners = []
        self.idx = np.arange(size)
        # compiled once against the first rows; each batch's rows go into ``inputs`` and the
        # observed values of the observe steps that read them
        self.inputs, self.env = {}, {**values, **self.lets}
        first = self._take(self.idx)
        self.inputs.update((name, first[name][None]) for name in self.rows)
        self.current = compile_model(_live_model(self.model, self.rows), first,
                                     lets={k: first[k] for k in self.lets}, scales=self.scales,
                                     inputs=self.inputs)
        observes = [s for s in self.current.steps if isinstance(s, _ObserveStep)]
        self.observed = [(step, step.statement.value) for step in observes
                         if any(isinstance(e, ir.Ref) and e.name in self.rows
                                for e in ir.walk(step.statement.value))]
        self.set_batch(self.idx)
        # theta's layout: the whole data's, derived from the batch's without compiling it
        self.full = _Layout(self.current, self.batched, self.N, size)
        self.dim = self.full.dim
        self.params, self.guides = self.current.params, self.current.guides

    @property
    def meanfield_only(self) -> bool:
        """Whether a batched latent has no guide statement: its per-row mean-field parameters
        are taken at each batch's rows, so mean field is the only family that fits it."""
        return any(name not in self.guides for name in self.batched)

    def next_batch(self) -> None:
        """Draw the next batch: B distinct indices, sorted."""
        self.set_batch(np.sort(self.rng.choice(self.N, self.B, replace=False)))

    def _take(self, idx: np.ndarray) -> dict:
        """Data and data-only lets with the batched ones at the rows ``idx`` [B]."""
        env = dict(self.env)
        for name in self.rows:
            env[name] = np.asarray(self.env[name][idx])
        env[self.dim_name] = np.asarray(self.B, dtype=np.int64)
        return env

    def set_batch(self, idx: np.ndarray) -> None:
        """Put the rows ``idx`` [B] in the compiled model (tests enumerate a partition so)."""
        idx = np.asarray(idx, dtype=np.int64)
        env = self._take(idx)
        for name in self.rows:
            self.inputs[name] = env[name][None]
        for step, value in self.observed:
            step.value = np.asarray(evaluate_data(value, env))[None]
        self.idx = idx
        for listener in self.listeners:
            listener(idx)

    def log_joint(self, zeta):
        return self.current.log_joint(zeta)

    def terms(self, zeta):
        return self.current.terms(zeta)

    def unconstrained_names(self):
        return self.full.unconstrained_names()


def _check_let_shapes(model: ir.Model, lets: dict, rows: set, dim: str, size: int) -> None:
    """A data-only let is computed once, on the whole data, and a step takes the rows of those
    on ``dim``: every other one must have the same shape in the model checked with ``dim`` = B
    as on the whole data. One that does not (``let ys = y[:6]``: [6], but [min(6, B)] in the
    batch's model) would be read at the wrong shape: the batch's terms were not the whole
    data's (its Normal term 10% off). Raises PplError batch_let_shape, at the let."""
    for s in model.statements:
        if isinstance(s, ir.Let) and s.data_only:
            whole = np.shape(lets[s.name])
            want = (size,) + whole[1:] if s.name in rows else whole
            if tuple(s.value.shape) != want:
                raise errors.batch_let_shape(s.span, s.name, dim, whole, s.value.shape)


class _Layout:
    """The whole data's unconstrained layout (slots, element names) from a batch's compiled
    model: a batched latent's slot has N rows instead of B. Its steps are the batch's (the
    user-guide family reads their statements and the params' bijectors from them)."""

    def __init__(self, batch_compiled, batched: set, N: int, B: int):
        from ..compiler import Slot
        slots, offset = [], 0
        for s in batch_compiled.slots:
            shape, free, size = s.shape, s.free_shape, s.size
            if s.name in batched:
                shape, free, size = (N,) + shape[1:], (N,) + free[1:], s.size // B * N
            slots.append(Slot(s.name, shape, free, offset, size))
            offset += size
        self.slots, self.dim = tuple(slots), offset
        self.params, self.guides = batch_compiled.params, batch_compiled.guides
        self.steps = batch_compiled.steps

    def unconstrained_names(self) -> list[str]:
        return [n for slot in self.slots for n in ir.element_names(slot.name, slot.free_shape)]


class Lazy:
    """A value built on first use (the model compiled on the whole data, its guide): a
    minibatch fit does not pay for it unless its summaries or draws are asked for."""

    def __init__(self, build, **known):
        self._build, self._value = build, None
        self.__dict__.update(known)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_build", "_value"):
            raise AttributeError(name)
        if self._value is None:
            self._value = self._build()
        return getattr(self._value, name)


def _term_rows(s, dim) -> bool:
    """Whether a statement's term is one per row of the batched dimension."""
    if isinstance(s, ir.Latent):
        return _first(s.shape, dim)
    if isinstance(s, (ir.Observe, ir.Factor)):
        return _first(s.value.shape, dim)
    return False


class BatchedGuide:
    """The full model's user-guide family (theta in the full layout) seen through the current
    batch: draws, entropy and log q of the batch's coordinates (guides/user.py's UserGuide on
    the batch's compiled model, fed the batch's rows of theta)."""

    dense_frame = False
    window_scale = 1

    def __init__(self, batch: Minibatch, full: user.UserGuide):
        self.batch, self.full, self.name = batch, full, full.name
        g = user.UserGuide(batch.current, full.auto, full.start)
        factor = batch.N / batch.B
        local = [i for i, c in enumerate(g.auto_cols)
                 if _slot_of(batch.current, c) in batch.batched]
        if local:
            g.auto_local = (np.array(local, dtype=np.int64), factor)
        g.entropy_factor = {name: factor for name in batch.guides if name in batch.batched}
        self.g = g
        # per slot of the batch model: (batched, the full slot's offset, its row size or size)
        self.parts = []
        for slot in batch.current.slots:
            whole = next(s for s in batch.full.slots if s.name == slot.name)
            rows = slot.name in batch.batched
            self.parts.append((rows, whole.offset, whole.size // batch.N if rows else whole.size))
        self.on_batch(batch.idx)
        # the automatic coordinates move with the batch only if a batched latent has some
        if any(self.parts[i][0] for i, slot in enumerate(batch.current.slots)
               if slot.name not in batch.guides and slot.name not in batch.params):
            batch.listeners.append(self.on_batch)

    def _columns(self, idx: np.ndarray) -> np.ndarray:
        """The full layout's column of each of the batch model's columns [D_batch]."""
        return np.concatenate(
            [(offset + (idx[:, None] * row + np.arange(row)).ravel()) if rows
             else offset + np.arange(row) for rows, offset, row in self.parts]
            or [np.zeros(0, dtype=np.int64)]).astype(np.int64)

    def on_batch(self, idx: np.ndarray) -> None:
        """``auto_map``: the batch's automatic coordinates among the full model's."""
        column = self._columns(idx)
        self.auto_map = np.searchsorted(self.full.auto_cols, column[self.g.auto_cols])
        self.identity = np.array_equal(self.auto_map, np.arange(self.full.d_auto))

    @property
    def guided_cols(self) -> np.ndarray:
        """The current batch's guided coordinates in the full layout."""
        return self._columns(self.batch.idx)[self.g.guided_cols]

    def theta(self, theta):
        """The batch's theta: the automatic family's parameters at the batch's coordinates
        (mean field: mu and log sigma at auto_map), then the params."""
        if self.identity:         # the same coordinates: theta as it is
            return theta
        k, D = self.full.n_auto_theta, self.full.d_auto
        auto, values = theta[:k], theta[k:]
        auto = anp.concatenate([auto[:D][self.auto_map], auto[D:][self.auto_map]])
        return anp.concatenate([auto, values])

    def init(self, D: int, init_scale: float) -> np.ndarray:
        return self.full.init(D, init_scale)

    def eps_dim(self, D: int) -> int:
        return self.g.eps_dim(0)

    def draw_and_entropy(self, theta, eps):
        return self.g.draw_and_entropy(self.theta(theta), eps)

    def draw(self, theta, eps):
        return self.g.draw(self.theta(theta), eps)

    def log_q(self, theta, zeta):
        return self.g.log_q(self.theta(theta), zeta)

    def sample(self, theta, rng, n):
        return self.g.sample(self.theta(np.asarray(theta, dtype=float)), rng, n)

    def jitter_scale(self, theta) -> np.ndarray:
        return self.full.jitter_scale(theta)


def _slot_of(compiled, column: int) -> str:
    return next(s.name for s in compiled.slots if s.offset <= column < s.offset + s.size)


def fit(batch: Minibatch, options, rng: np.random.Generator, progress=None):
    """The minibatch fit: advi's loop on the batched model and guide; the result carries the
    full model's guide (theta is in its layout) for summaries and predictions."""
    from . import advi
    spec = "meanfield" if options.guide == "auto" else options.guide
    full = user.family_for(batch.full, spec, rng, options.init)
    guide = BatchedGuide(batch, full)
    result = advi._fit_plain(batch, guide, guide.init(batch.dim, options.init_scale), options,
                             rng, progress, False, time.perf_counter())
    return dataclasses.replace(result, guide=full)
