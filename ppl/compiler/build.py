"""compile_model: ir.Model + data -> Compiled. Folds the data-only work once, makes one step per
statement (steps.py), and marks the steps that are enumerated, fused, AR1-innovation
parameterized or scaled (minibatches).
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..constraints import Real
from ..evaluate import data_lets
from ..frontend.enumeration import plan
from ..fused import DENSITIES, settle
from ..kernels import fuse_model
from .joint import Compiled
from .steps import (_DiscreteStep, _FactorStep, _GuideStep, _InputStep, _LatentStep, _LetStep,
                    _ObserveStep, _ParamStep)


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
    innovations = innovation_latents(model)
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
            step.innovations = statement.name in innovations
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


def innovation_latents(model: ir.Model) -> frozenset[str]:
    """The latents parameterized by their AR1 innovations (AR1Innovations): unbounded AR1
    latents with no ``guide`` statement (a user's guide is on the value itself, LANGUAGE.md)
    and no discrete latent reaching them (an enumerated environment holds their parameters
    elsewhere). ``ppl check`` lists their bijector from here too."""
    enumerated = plan(model)
    guided = {s.name for s in model.statements if isinstance(s, ir.Guide)}
    return frozenset(
        s.name for i, s in enumerate(model.statements)
        if isinstance(s, ir.Latent) and not s.discrete and s.dist.cls.name == "AR1"
        and isinstance(s.support, Real) and not s.truncated and i not in enumerated
        and s.name not in guided)


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
