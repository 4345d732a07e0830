"""Location-scale densities and the log joint's sum of terms, each as one autograd primitive.

On a small model autograd's bookkeeping, 15-20 microseconds per traced operation whatever its
size, is most of a step (issue 15): eight schools traced 49 operations per gradient. The
compiler computes every Normal, HalfNormal, Cauchy and HalfCauchy term (prior or likelihood)
with ``density_total`` and adds the terms with ``add_terms``. Unlike the likelihood kernels
(kernels.py) these are bit for bit the traced path: forward and VJP repeat the traced
operations and autograd's own VJPs of them, in the traced order.
"""
from __future__ import annotations

from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.core import VJPNode
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import box_types, isbox, new_box

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


def _density_steps(name, x, mu, sigma, np_=np, known=None):
    """The traced formula's intermediates: (d, z, a (Normal) or z * z (Cauchy), density).
    ``known``: a ``Known`` of these very mu and sigma (plain numpy only), whose operations
    on constants are skipped or taken from it with the same result bit for bit."""
    formula, shift = DENSITIES[name]
    if known is None:
        d = x - mu
        z = d / sigma
        log_sigma = None
    else:
        d = x if _exact(x, known.zero_mu) else x - mu           # x - 0 is x
        z = d if _exact(d, known.unit_sigma) else d / sigma     # d / 1 is d
        log_sigma = known.log_sigma
    if log_sigma is None:
        log_sigma = np_.log(sigma)
    if formula == "normal":
        a = -0.5 * z
        density = a * z - log_sigma - _LOG_SQRT_2PI
    else:
        a = z * z
        density = -_LOG_PI - log_sigma - np_.log1p(a)
    return d, z, a, density if shift is None else shift + density


class Known(NamedTuple):
    """What a density's constant parameters let ``_density_steps`` and ``_density_grads``
    skip: ``zero_mu`` / ``unit_sigma``, the number of axes of mu lifted when mu is all
    zeros / of sigma lifted when sigma is all ones (else None; adding 0 and dividing by 1
    change no bit, so the operation is left out where it would not broadcast), and log(sigma
    lifted) when sigma is a constant (computed once, by the same operation)."""
    zero_mu: int | None
    unit_sigma: int | None
    log_sigma: np.ndarray | None
    lifted: tuple = (None, None)    # the constant mu and sigma lifted, or None

    @staticmethod
    def of(mu, sigma, lifts: tuple) -> Known | None:
        """The Known of constant parameters ``mu`` and ``sigma`` before lifting (each None
        where it is not a constant), or None when there is nothing to skip."""
        k_mu, k_sigma = lifts
        zero_mu = unit_sigma = log_sigma = None
        mu_lifted = None if mu is None else _lift(mu, k_mu)
        sigma_lifted = None if sigma is None else _lift(sigma, k_sigma)
        if mu is not None and np.all(np.asarray(mu) == 0):
            zero_mu = np.ndim(mu_lifted)
        if sigma is not None:
            log_sigma = np.log(sigma_lifted)
            unit_sigma = np.ndim(sigma_lifted) if np.all(np.asarray(sigma) == 1) else None
        if zero_mu is None and unit_sigma is None and log_sigma is None:
            return None
        return Known(zero_mu, unit_sigma, log_sigma, (mu_lifted, sigma_lifted))


_FLOAT64 = np.dtype(np.float64)


def _exact(x, ndim) -> bool:
    """Whether ``x`` + 0 or ``x`` / 1 is ``x`` itself, the constant having ``ndim`` axes of
    size one (None: not such a constant): a float64 array with at least as many axes."""
    return (ndim is not None and type(x) is np.ndarray and x.dtype is _FLOAT64
            and x.ndim >= ndim)


def _sum_rest(t, np_=np):
    """Sum over every axis but the first, as compiler/density.py's _sum_rest: [S, ...] -> [S]."""
    if type(t) is np.ndarray:    # np.sum's own reduction, without its Python layer
        return t if t.ndim <= 1 else np.add.reduce(t, axis=tuple(range(1, t.ndim)))
    ndim = np_.ndim(t)
    return t if ndim <= 1 else np_.sum(t, axis=tuple(range(1, ndim)))


def _density_total_vjp(argnums, ans, args, kwargs):
    name, x, mu, sigma = args
    kept, _DENSITY_KEPT[0] = _DENSITY_KEPT[0], None
    steps = kept[1] if kept is not None and kept[0] is ans else _density_steps(name, x, mu,
                                                                                 sigma)
    return lambda g: _density_grads(name, x, mu, sigma, steps, g, argnums)


def _density_grads(name, x, mu, sigma, steps, g, argnums, known=None) -> tuple:
    """The gradients of (x, mu, sigma) = arguments (1, 2, 3) listed in ``argnums``, for an
    incoming gradient ``g`` of the density total [S] and the formula's ``steps`` (``known``
    as they were computed with)."""
    d, z, a, density = steps        # numpy results: their .shape needs no np.shape
    shape = density.shape
    # the sum's VJP: g repeated over the summed axes (autograd: reshape + zeros)
    if len(shape) > 1:
        g = _reshaped(g, shape[:1] + (1,) * (len(shape) - 1)) + np.zeros(shape)
    if _NORMAL[name]:   # a * z - log sigma - c: the product's VJPs, then a = -0.5 z's
        gz = a * g + _to_shape(-0.5 * (z * g), z.shape)
    else:        # -log pi - log sigma - log1p(z * z): z * z's VJPs, both to z
        gzz = _to_shape(-g, a.shape) / (a + 1)
        gz = z * gzz + z * gzz
    unit = known is not None and _exact(gz, known.unit_sigma)
    gd = _to_shape(gz if unit else gz / sigma, d.shape)     # gz / 1 is gz
    out = []
    for i in argnums:
        if i == 1:
            out.append(_to_shape(gd, _shape(x)))
        elif i == 2:
            out.append(_to_shape(-gd, _shape(mu)))
        else:    # the division's VJP plus the log's (-g / sigma)
            out.append(_to_shape(-gz * d / sigma ** 2, _shape(sigma))
                       + _to_shape(-g, _shape(sigma)) / sigma)
    return tuple(out)


# name -> whether its formula is the Normal's (else the Cauchy's), looked up once a density
_NORMAL = {name: formula == "normal" for name, (formula, _) in DENSITIES.items()}


def _reshaped(g, shape: tuple):
    """``np.reshape(g, shape)``; an array's own method, without np.reshape's Python layer."""
    return g.reshape(shape) if type(g) is np.ndarray else np.reshape(g, shape)


def _shape(value) -> tuple:
    """``np.shape``, without its dispatch for an array (called many times a step)."""
    return value.shape if type(value) is np.ndarray else np.shape(value)


def shape_of(value) -> tuple:
    """The shape of a value or of a box's value: a box's ``.shape`` is an autograd
    primitive call (``anp.shape``), about a microsecond each, several times a step."""
    while type(value) in box_types:
        value = value._value
    if type(value) is float:     # a constant parameter such as mu = 0: np.shape's dispatch
        return ()
    return value.shape if type(value) is np.ndarray else np.shape(value)


def _to_shape(g, shape):
    """autograd's ``unbroadcast`` in plain numpy, summing in its order: leading axes first,
    then each axis of size 1 in ``shape`` (keepdims)."""
    have = g.shape if type(g) is np.ndarray else np.shape(g)
    if have == shape:      # most calls: nothing to sum
        return g
    # np.add.reduce: np.sum's own reduction, without its Python layer
    while len(have) > len(shape):
        g = np.add.reduce(g, axis=0)
        have = have[1:]
    for axis, size in enumerate(shape):
        if size == 1 and have[axis] != 1:
            g = np.add.reduce(g, axis=axis, keepdims=True)
    return g


defvjp_argnums(_density_total, _density_total_vjp)


def record(fun, args):
    """``fun(*args)`` for an autograd primitive ``fun``: what its wrapper does, in one pass
    over the arguments. The wrapper looks at every argument twice (boxed, then again
    unboxed) with a type look-up each: a dozen microseconds for the sum of terms' long list,
    every step. Boxes of more than one trace, or not of a reverse pass, go to the wrapper.
    Under a second-order trace (the DADVI Hessian) the unboxed values are the outer trace's
    boxes, which numpy's ufuncs hand back to autograd through ArrayBox.__array_ufunc__
    (autograd 1.9+, pyproject's lower bound)."""
    raw = getattr(fun, "fun", None)          # None: not a primitive (a test's wrapper)
    if raw is None:
        return fun(*args)
    argvals, argnums, parents, trace = list(args), [], [], None
    for i, a in enumerate(args):
        if type(a) in box_types:
            if type(a._node) is not VJPNode or (trace is not None and a._trace != trace):
                return fun(*args)
            trace = a._trace
            argvals[i] = a._value
            argnums.append(i)
            parents.append(a._node)
    if trace is None:
        return raw(*args)
    argvals = tuple(argvals)
    ans = raw(*argvals)
    return new_box(ans, trace, VJPNode(ans, fun, argvals, {}, tuple(argnums), tuple(parents)))


# ----- the log joint's sum of terms as one primitive ---------------------------------------

class Pending:
    """``density_total(name, x, lift(mu, k_mu), lift(sigma, k_sigma))`` not computed yet:
    ``add_terms`` computes it inside its one primitive (one traced operation for the whole
    sum, instead of one per density and one per lifted parameter). ``lifts`` = (k_mu,
    k_sigma): ``evaluate.lift``'s singleton axes after the draw axis."""
    __slots__ = ("name", "x", "mu", "sigma", "lifts", "known")

    def __init__(self, name: str, x, mu, sigma, lifts: tuple = (0, 0), known=None):
        self.name, self.x, self.mu, self.sigma, self.lifts = name, x, mu, sigma, lifts
        self.known = known      # a Known of these mu and sigma, or None


def _lift(value, k: int, np_=np):
    """``evaluate.lift``: [S, *shape] -> [S, 1 (k times), *shape]."""
    if k == 0:
        return value
    shape = _shape(value)
    if type(value) is np.ndarray:
        return value.reshape(shape[:1] + (1,) * k + shape[1:])
    return np_.reshape(value, shape[:1] + (1,) * k + shape[1:])


def settle(term):
    """A term of ``add_terms`` as a value: a Pending density computed (``density_total``), a
    group (tuple) summed left to right; anything else as it is."""
    if isinstance(term, Pending):
        k_mu, k_sigma = term.lifts
        return density_total(term.name, term.x, _lift(term.mu, k_mu, anp),
                             _lift(term.sigma, k_sigma, anp))
    if isinstance(term, tuple):
        total = settle(term[0])
        for part in term[1:]:
            total = total + settle(part)
        return total
    return term


def add_terms(terms: list):
    """``terms[0] + terms[1] + ...`` (left to right, as a loop of ``+`` would add them).

    A term is a value ([S], [1] or a float), a ``Pending`` density, or a group: a tuple of
    values and densities summed first (a latent's log prior plus its log-Jacobian). One
    autograd primitive instead of one addition per term and one operation per density: a
    value's gradient is the incoming one summed to its shape, as autograd's VJP of ``+``
    gives it, and a density's that of ``density_total``; so value and gradient are those of
    the loop over ``settle``d terms bit for bit, up to the order in which a value with three
    or more uses adds its gradients: this primitive is traced last, so its parts come first
    (rounding; tests/unit/test_fused.py). Under a second-order trace the loop is used.
    """
    if len(terms) == 1 and not isinstance(terms[0], (Pending, tuple)):
        return terms[0]
    args: list = [None]            # argument 0 of the primitive is the spec
    spec = tuple([_flatten(term, args) for term in terms])
    boxed = [a for a in args if type(a) in box_types]
    if not boxed:     # no trace: no primitive, and nothing kept for a VJP
        return _total(spec, args, {})
    if any(type(a._value) in box_types for a in boxed):
        total = settle(terms[0])
        for term in terms[1:]:
            total = total + settle(term)
        return total
    args[0] = spec
    return record(_sum_terms, args)


def _flatten(term, args: list):
    """The term's entry in the primitive's spec, its arrays appended to ``args``: an argument
    index (a value), (name, i_x, i_mu, i_sigma, (k_mu, k_sigma), known) (a density) or a
    list of entries (a group)."""
    if type(term) is tuple:
        return [_flatten(part, args) for part in term]
    if type(term) is Pending:
        at = len(args)
        args += (term.x, term.mu, term.sigma)
        return term.name, at, at + 1, at + 2, term.lifts, term.known
    args.append(term)
    return len(args) - 1


def _total(spec, args, kept: dict):
    """The sum of the entries (plain numpy). Into ``kept``, for the VJP: each density's
    intermediates under the index of its x, each group's shape under its id."""
    total = None
    for entry in spec:
        value = _entry_value(entry, args, kept)
        total = value if total is None else total + value
    return total


def _entry_value(entry, args, kept: dict):
    kind = type(entry)
    if kind is int:
        return args[entry]
    if kind is list:
        total = _total(entry, args, kept)
        kept[id(entry)] = _shape(total)
        return total
    name, i, j, k, (k_mu, k_sigma), known = entry
    # a Known's constants come lifted already (they are these arguments: density._plan)
    mu, sigma = (None, None) if known is None else known.lifted
    mu = _lift(args[j], k_mu) if mu is None else mu
    sigma = _lift(args[k], k_sigma) if sigma is None else sigma
    steps = _density_steps(name, args[i], mu, sigma, np, known)
    kept[i] = (steps, mu, sigma)
    return _sum_rest(steps[-1])


@primitive
def _sum_terms(spec, *values):
    kept: dict = {}
    total = _total(spec, (spec,) + values, kept)
    _TERMS_KEPT[0] = (total, kept)   # for the VJP made right after, in the same trace
    return total


# (the last total, its densities' intermediates), replaced whole, as _DENSITY_KEPT
_TERMS_KEPT: list = [None]


def _sum_terms_vjp(argnums, ans, args, kwargs):
    kept, _TERMS_KEPT[0] = _TERMS_KEPT[0], None
    if kept is None or kept[0] is not ans:
        kept = (ans, {})
        _total(args[0], args, kept[1])
    wanted = frozenset(argnums)

    def vjp(g):
        grads: dict = {}
        for entry in args[0]:
            _entry_grads(entry, g, args, kept[1], wanted, grads)
        return tuple(grads[i] for i in argnums)
    return vjp


def _entry_grads(entry, g, args, kept: dict, wanted, grads: dict) -> None:
    """Into ``grads``: the gradients of the arguments in ``wanted`` that ``entry`` reads, for
    an incoming gradient ``g`` of the sum it is part of."""
    kind = type(entry)
    if kind is int:
        if entry in wanted:
            grads[entry] = _to_shape(g, _shape(args[entry]))
        return
    if kind is list:
        g = _to_shape(g, kept[id(entry)])
        for part in entry:
            _entry_grads(part, g, args, kept, wanted, grads)
        return
    name, i, j, k, _, known = entry
    which = [n for n in (i, j, k) if n in wanted]
    if not which:
        return
    steps, mu, sigma = kept[i]
    g = _to_shape(g, steps[-1].shape[:1])  # to this density's total [S or 1] (or ())
    for n, grad in zip(which, _density_grads(name, args[i], mu, sigma, steps, g,
                                             [n - i + 1 for n in which], known)):
        # a lifted parameter's gradient reshaped back, as autograd's VJP of reshape does
        grads[n] = grad if n == i else _reshaped(grad, _shape(args[n]))


defvjp_argnums(_sum_terms, _sum_terms_vjp)
