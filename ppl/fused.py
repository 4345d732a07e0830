"""Location-scale densities and the log joint's sum of terms, each as one autograd primitive.

On a small model autograd's bookkeeping, 15-20 microseconds per traced operation whatever its
size, is most of a step (issue 15): eight schools traced 49 operations per gradient. The
compiler computes every Normal, HalfNormal, Cauchy and HalfCauchy term (prior or likelihood)
with ``density_total`` and adds the terms with ``add_terms``. Unlike the likelihood kernels
(kernels.py) these are bit for bit the traced path: forward and VJP repeat the traced
operations and autograd's own VJPs of them, in the traced order.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import isbox

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_LOG_2, _LOG_PI = np.log(2.0), np.log(np.pi)
# distribution name -> (formula, constant added to the density or None), as written in
# distributions/continuous.py: the half distributions add log 2 to the whole line's density
# at mu = 0
DENSITIES = {"Normal": ("normal", None), "HalfNormal": ("normal", _LOG_2),
             "Cauchy": ("cauchy", None), "HalfCauchy": ("cauchy", _LOG_2)}


def density_total(name: str, x, mu, sigma):
    """``name``'s log density at ``x`` summed over every axis but the first: [S] or [1].

    ``name`` is a key of DENSITIES; mu is 0.0 for the half distributions. One autograd
    primitive where the traced formula is seven to nine operations (each costs microseconds
    of bookkeeping whatever its size: the priors of a small model are most of its step).
    Forward and VJP repeat the traced operations (``distributions.continuous``, then the sum)
    and autograd's own VJPs of them, in the traced order, so value and gradient are those of
    the traced path bit for bit, up to the order in which a node used again outside this term
    adds its gradients (rounding; tests/unit/test_fused.py). Under a second-order trace the
    traced formula is used (the VJP is plain numpy, first order only).
    """
    boxed = [v for v in (x, mu, sigma) if isbox(v)]
    if not boxed:     # no trace: no primitive, and nothing kept for a VJP
        return _sum_rest(_density_steps(name, x, mu, sigma)[-1])
    if any(isbox(v._value) for v in boxed):
        return _sum_rest(_density_steps(name, x, mu, sigma, anp)[-1], anp)
    return _density_total(name, x, mu, sigma)


@primitive
def _density_total(name, x, mu, sigma):
    steps = _density_steps(name, x, mu, sigma)
    total = _sum_rest(steps[-1])
    _DENSITY_KEPT[0] = (total, steps)   # for the VJP made right after, in the same trace
    return total


# (the last total, its intermediates), replaced whole: autograd makes a primitive's VJP right
# after calling it, which then need not compute the intermediates again (as kernels._fused)
_DENSITY_KEPT: list = [None]


def _density_steps(name, x, mu, sigma, np_=np):
    """The traced formula's intermediates: (d, z, a (Normal) or z * z (Cauchy), density)."""
    formula, shift = DENSITIES[name]
    d = x - mu
    z = d / sigma
    if formula == "normal":
        a = -0.5 * z
        density = a * z - np_.log(sigma) - _LOG_SQRT_2PI
    else:
        a = z * z
        density = -_LOG_PI - np_.log(sigma) - np_.log1p(a)
    return d, z, a, density if shift is None else shift + density


def _sum_rest(t, np_=np):
    """Sum over every axis but the first, as compiler._sum_rest: [S, ...] -> [S]."""
    return t if np_.ndim(t) <= 1 else np_.sum(t, axis=tuple(range(1, np_.ndim(t))))


def _density_total_vjp(argnums, ans, args, kwargs):
    name, x, mu, sigma = args
    kept, _DENSITY_KEPT[0] = _DENSITY_KEPT[0], None
    steps = kept[1] if kept is not None and kept[0] is ans else _density_steps(name, x, mu,
                                                                                 sigma)
    d, z, a, density = steps
    shape, normal = np.shape(density), DENSITIES[name][0] == "normal"

    def vjp(g):
        # the sum's VJP: g repeated over the summed axes (autograd: reshape + zeros)
        if len(shape) > 1:
            g = np.reshape(g, shape[:1] + (1,) * (len(shape) - 1)) + np.zeros(shape)
        if normal:   # a * z - log sigma - c: the product's VJPs, then a = -0.5 z's
            gz = a * g + _to_shape(-0.5 * (z * g), np.shape(z))
        else:        # -log pi - log sigma - log1p(z * z): z * z's VJPs, both to z
            gzz = _to_shape(-g, np.shape(a)) / (a + 1)
            gz = z * gzz + z * gzz
        gd = _to_shape(gz / sigma, np.shape(d))
        out = []
        for i in argnums:
            if i == 1:
                out.append(_to_shape(gd, np.shape(x)))
            elif i == 2:
                out.append(_to_shape(-gd, np.shape(mu)))
            else:    # the division's VJP plus the log's (-g / sigma)
                out.append(_to_shape(-gz * d / sigma ** 2, np.shape(sigma))
                           + _to_shape(-g, np.shape(sigma)) / sigma)
        return tuple(out)
    return vjp


def _to_shape(g, shape):
    """autograd's ``unbroadcast`` in plain numpy, summing in its order: leading axes first,
    then each axis of size 1 in ``shape`` (keepdims)."""
    while np.ndim(g) > len(shape):
        g = np.sum(g, axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and np.shape(g)[axis] != 1:
            g = np.sum(g, axis=axis, keepdims=True)
    return g


defvjp_argnums(_density_total, _density_total_vjp)


# ----- the log joint's sum of terms as one primitive ---------------------------------------

def add_terms(terms: list):
    """``terms[0] + terms[1] + ...`` (left to right, as a loop of ``+`` would add them).

    One autograd primitive instead of one addition per term; each term's gradient is the
    incoming one summed to its shape, as autograd's own VJP of ``+`` gives it, so value and
    gradient are those of the loop bit for bit. Under a second-order trace the loop is used.
    """
    if len(terms) == 1:
        return terms[0]
    if any(isbox(t) and isbox(t._value) for t in terms):
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total
    return _add_terms(*terms)


@primitive
def _add_terms(*terms):
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


defvjp_argnums(_add_terms, lambda argnums, ans, args, kwargs: lambda g: tuple(
    _to_shape(g, np.shape(args[i])) for i in argnums))
