"""Compiled: a model compiled against its data, and its log joint log p(data, T(zeta)) +
log|det J| [S] of the unconstrained draws zeta [S, D], the sum of its steps' terms (the
differentiable hot path), with discrete latents summed out by enumeration.

Its plain-numpy outputs at given draws (constrained values, predictive and prior draws) are
inherited from draws.Draws; build.compile_model makes it.
"""
from __future__ import annotations

import dataclasses

import autograd.numpy as anp
import numpy as np

from .. import enumeration, ir
from ..blocks import ASSEMBLED
from ..fused import add_terms, shape_of
from .draws import Draws
from .steps import (_EXPR_TYPES, Slot, _DiscreteStep, _FactorStep, _LatentStep, _LetStep,
                    _ObserveStep, _ParamStep)


class Compiled(Draws):
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
        # lets inlined into a fused kernel are computed by it, not by the log joint, and a let
        # no term reads (a reported ``let rho = ...`` for the summary) is not computed at all
        read = _lets_read_by_terms(steps)
        self._live = [s for s in steps if getattr(s, "constant", None) is None
                      and getattr(s, "name", None) not in inlined
                      and (type(s) is not _LetStep or s.name in read)]
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
        S = shape_of(zeta)[0]     # a box's .shape is a call of autograd's anp.shape
        # a zero constant is not added (nor traced): 0 + x is x exactly
        terms = [self._constant + np.zeros(S)] if self._constant else []
        for step in self._live:
            term = step.pending(zeta, env)
            if term is not None:
                terms.append(term)
        # one traced operation for the whole sum and its densities (fused.add_terms), not
        # one per term and one per density
        total = add_terms(terms) if terms else None
        if total is None or shape_of(total) != (S,):
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
                env[step.name], log_det = step.value_and_log_det(zeta, env)
                if log_det is not None:
                    total = total + log_det
                    if pieces is not None:
                        # its prior is summed out with the discrete latent (in that one's
                        # piece), its log-Jacobian is not: without this piece the terms
                        # missed it and did not sum to the log joint
                        pieces.append((step.statement, log_det + anp.zeros(s)))
            piece = enumeration.to_elements(step.elements(tiled), pos, values.block_rank,
                                            step.full)
            acc[d] = piece if d not in acc else acc[d] + piece
        return total, acc, tiles

    def probabilities(self, zeta) -> dict[str, np.ndarray]:
        """Each discrete latent's conditional posterior given each draw: name ->
        [S, *shape, K] (numpy), K its number of values (``values()``)."""
        zeta = np.asarray(zeta, dtype=float)
        # a value of prior probability 0 (Categorical([0, 1])) has log density -inf, and so a
        # probability of 0: numpy's 'divide by zero in log' reached the user raw
        with np.errstate(divide="ignore"):
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
        summed out with it and given no piece of their own (a latent it reaches keeps its
        log-Jacobian as its piece)."""
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

    def unconstrained_names(self) -> list[str]:
        """Element names of the D unconstrained coordinates: ``ir.element_names`` of each
        latent's free shape (a simplex ``p`` of K values has free ``p[0]`` .. ``p[K-2]``)."""
        return [name for slot in self.slots for name in ir.element_names(slot.name,
                                                                          slot.free_shape)]


def _lets_read_by_terms(steps) -> set[str]:
    """The lets that a term of the log joint (a latent's or param's prior and bounds, an
    observe, a factor, a user's guide) reads, directly or through other lets. A let can only
    read earlier statements, so one backward pass closes the set."""
    read: set[str] = set()
    for step in reversed(steps):
        statement = step.statement
        if isinstance(statement, ir.Let) and step.name not in read:
            continue
        roots = [getattr(statement, field.name) for field in dataclasses.fields(statement)]
        support = getattr(statement, "support", None)
        if support is not None:     # bounds that depend on lets
            roots += [getattr(support, field.name) for field in dataclasses.fields(support)]
        for root in roots:
            if isinstance(root, (ir.Dist, *_EXPR_TYPES)):
                read |= {e.name for e in ir.walk(root) if isinstance(e, ir.Ref)
                         and e.kind == "let"}
    return read
