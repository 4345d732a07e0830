"""Discrete latents summed out of the log joint by parallel enumeration (LANGUAGE.md v2).

A discrete latent ``z`` with K values is never part of zeta. Every statement it reaches is
evaluated once for all K values at once: the draw axis of those statements is replicated K
times (block k of the rows holds value k for every element of ``z``), so the existing closures,
functions and densities run unchanged. Their per-element log densities, reduced to ``z``'s
elements, are added up per value and ``log_sum_exp`` over the K values is taken per element
(Pyro's TraceEnum_ELBO does the same with a new tensor dimension per enumerated site).
``frontend/enumeration.py`` has already checked that the elements stay independent.
"""
from __future__ import annotations

from collections.abc import Mapping

import autograd.numpy as anp
import numpy as np
from .special import logsumexp

from . import errors, ir
from .evaluate import evaluate_data
from .frontend.enumeration import MAX_ENUMERATION, one_element
from .frontend.latent_types import MAX_VALUES


class Tiled(Mapping):
    """A run-time environment seen with its draw axis repeated K times: [S, ...] values come
    back as [K*S, ...] (block k = rows k*S .. (k+1)*S - 1); names set here stay here."""

    def __init__(self, env, k: int, s: int):
        self.env, self.k, self.s = env, k, s
        self.own: dict = {}
        self._cache: dict = {}

    def __getitem__(self, name):
        if name in self.own:
            return self.own[name]
        if name not in self._cache:
            value = self.env[name]
            if anp.shape(value)[0] == self.s and self.k > 1:
                value = _tile_rows(value, self.k)
            self._cache[name] = value
        return self._cache[name]

    def __iter__(self):
        return iter(set(self.env) | set(self.own))

    def __len__(self):
        return len(set(self.env) | set(self.own))


def _tile_rows(value, k: int):
    """[S, ...] -> [k*S, ...], block j of the rows a copy of ``value``: one broadcast and a
    reshape. A concatenate of k copies has a VJP quadratic in k for autograd (each copy's
    gradient looks up the shapes of all the copies before it): at k = 60, models/change_point.ppl
    spent most of a step there."""
    shape = anp.shape(value)
    copies = anp.broadcast_to(anp.expand_dims(value, 0), (k,) + tuple(shape))
    return anp.reshape(copies, (k * shape[0],) + tuple(shape[1:]))


class Values:
    """The values of one discrete latent: ``values`` [K] and, per element, which are in its
    support (``log_mask`` [K, 1, *shape]: 0 inside, -inf outside)."""

    def __init__(self, latent: ir.Latent, data_env):
        lower, upper = (_bound(getattr(latent.support, side), data_env)
                        for side in ("lower", "upper"))
        count = int(np.max(upper)) - int(np.min(lower)) + 1
        if count > MAX_VALUES:  # bounds from the data: known only now
            raise errors.too_many_values(latent.span, latent.name, count, MAX_VALUES)
        self.values = np.arange(int(np.min(lower)), int(np.max(upper)) + 1)
        self.shape = tuple(latent.shape)
        v = self.values.reshape((-1,) + (1,) * len(self.shape))
        inside = (v >= lower) & (v <= upper)
        inside = np.broadcast_to(inside, (len(self.values),) + self.shape)
        self.log_mask = np.where(inside, 0.0, -np.inf)[:, None]
        # Every element's value in each block [K, *shape]: the block's value, or, where that
        # is outside the element's support (its term is masked out), the element's first
        # value, so that nothing is evaluated at a value the element cannot take (an index
        # mu[z - lo] there would leave mu's range); None when every element takes every value.
        first = self.values[np.argmax(inside, axis=0)] if inside.size else None
        self.settings = None if inside.all() else np.where(inside, v, first)

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def block_rank(self) -> int:
        """The axes of a term kept apart for this latent's elements: none for a latent of
        one element, whose terms may have combined it (frontend/enumeration.py)."""
        return 0 if one_element(self.shape) else len(self.shape)

    def tiled(self, s: int) -> np.ndarray:
        """Every element's value per row of a [K*S] draw axis: [K*S, *shape] ints."""
        if self.settings is not None:
            rows = np.broadcast_to(self.settings[:, None], (self.k, s) + self.shape)
            return rows.reshape((self.k * s,) + self.shape)
        column = np.repeat(self.values, s).reshape((-1,) + (1,) * len(self.shape))
        return np.broadcast_to(column, (self.k * s,) + self.shape)

    def check_size(self, statement, batch: tuple) -> None:
        """A located error if one term would be evaluated at too many values at once."""
        size = self.k * int(np.prod(batch, dtype=np.int64))
        if size > MAX_ENUMERATION:
            raise errors.enumeration_too_large(statement.span, size, MAX_ENUMERATION)


def _bound(bound, data_env) -> np.ndarray:
    if isinstance(bound, (int, float, np.integer, np.floating)):
        return np.asarray(bound)
    return np.asarray(evaluate_data(bound, data_env))


def to_elements(term, pos: int, rank: int, full: tuple):
    """A term's per-element log density [n, *batch] summed down to the discrete latent's
    elements [n, *shape] (its block of ``rank`` axes starts at ``pos`` of batch)."""
    term = term if tuple(anp.shape(term)[1:]) == tuple(full) else \
        term + anp.zeros((anp.shape(term)[0],) + tuple(full))
    axes = tuple(1 + a for a in range(len(full)) if not pos <= a < pos + rank)
    return anp.sum(term, axis=axes) if axes else term


def marginal(acc, values: Values, s: int):
    """log sum over each element's values of exp(acc): [K*S, *shape] -> [S]."""
    per_value = anp.reshape(acc, (values.k, s) + values.shape) + values.log_mask
    per_element = logsumexp(per_value, axis=0)
    if anp.ndim(per_element) == 1:
        return per_element
    return anp.sum(anp.reshape(per_element, (s, -1)), axis=1)


def conditional(acc, values: Values, s: int) -> np.ndarray:
    """Each element's posterior probabilities given each draw: [S, *shape, K] (numpy)."""
    per_value = np.reshape(np.asarray(acc), (values.k, s) + values.shape) + values.log_mask
    with np.errstate(invalid="ignore"):
        log_p = per_value - logsumexp(per_value, axis=0, keepdims=True)
    return np.moveaxis(np.exp(log_p), 0, -1)


def uniforms(values: Values, rng: np.random.Generator, s: int) -> np.ndarray:
    """The uniforms [S, *shape, 1] that ``draw`` turns into S draws of every element: drawn
    apart from the probabilities, so draws made a chunk of draws at a time are the same."""
    return rng.random((s,) + values.shape + (1,))


def draw(probabilities: np.ndarray, values: Values, u: np.ndarray) -> np.ndarray:
    """One value per element per draw from ``probabilities`` [S, *shape, K], by inverting
    their cumulative sums at ``u`` [S, *shape, 1] (``uniforms``): [S, *shape]."""
    cumulative = np.cumsum(probabilities, axis=-1)
    index = np.minimum((u > cumulative).sum(axis=-1), values.k - 1)
    return values.values[index]
