"""Built-in functions of the language: name -> arity, keywords, shape and dtype rules, and the
``autograd.numpy`` implementation used by the compiler.

Implementations follow the compiler's run-time convention: every argument carries a leading
draw axis (S draws, or 1 for data), so a non-negative ``axis`` shifts by one and "all elements"
means axes 1... The checker validates ``axis`` before any implementation sees it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import autograd.numpy as anp
import numpy as np

from .special import digamma, erf, expit, gammaln, logit, logsumexp, ndtr, softplus

from . import errors, linalg

# How a function treats its arguments' axes, for the passes that follow an axis through
# expressions (frontend/enumeration.py: enumerated values; infer/batchaxis.py: --batch rows):
# element by element, broadcasting its arguments; a reduction over ``axis`` (all axes without
# one); or mixing the elements along the last axis. Declared here once, so a new function is
# never treated by those passes as a kind it is not (they refuse a function of none).
ELEMENTWISE, REDUCTION, LAST_AXIS = "elementwise", "reduction", "last axis"
from .frontend import shapes
from .frontend.shapes import Shape, ShapeError


@dataclass(frozen=True)
class Function:
    """One built-in function.

    Attributes
    ----------
    name : the language name.
    params : positional parameter names, for messages (``arity`` is their number).
    keywords : allowed keyword arguments (only ``axis``: reductions, ``concat``, ``stack``).
    shape : ``shape(arg_shapes, axis) -> Shape``; raises ``shapes.ShapeError``. At the
        positions in ``static``, ``arg_shapes`` holds the argument's static value instead of
        its shape: a Dim for an int scalar (``eye(K)``: 3, 'K' or None), a tuple of Dims for
        a list of them (``reshape(x, [d1, d2])``).
    dtype : ``dtype(arg_dtypes) -> 'int' | 'real'``.
    impl : ``impl(*args, axis=None)`` on run-time arrays with a leading draw axis; a static
        argument arrives as an int array (any draw axis of size 1) or a Python int.
    static : positions of arguments that must be int literals or int data scalars (a list
        of them for ``reshape``), known before the fit: they set shapes.
    data_only : the argument must not depend on latents (``floor`` has no useful gradient).
    axes : ELEMENTWISE, REDUCTION or LAST_AXIS (above), or "" for a rule of its own.
    """

    name: str
    params: tuple[str, ...]
    keywords: frozenset[str]
    shape: Callable[[tuple[Shape, ...], "int | None"], Shape]
    dtype: Callable[[tuple[str, ...]], str]
    impl: Callable
    static: tuple[int, ...] = ()
    data_only: bool = False
    axes: str = ""

    @property
    def arity(self) -> int:
        return len(self.params)

    @property
    def forms(self) -> tuple[str, ...]:
        """The accepted argument lists, as written in ``wrong_arguments`` messages."""
        plain = ", ".join(self.params)
        return (plain,) + tuple(f"{plain}, {k}=INT" for k in sorted(self.keywords))


# ----- run-time helpers ---------------------------------------------------------------------

def _axes(x, axis):
    """The run-time axes for ``axis`` of the value's own axes (draw axis first, so shift +1)."""
    if axis is None:
        return tuple(range(1, anp.ndim(x)))
    return axis + 1 if axis >= 0 else axis


def _reduction(op, real):
    def impl(x, axis=None):
        axes = _axes(x, axis)
        if axes == ():  # a scalar per draw: reducing over no axes is the identity
            return _as_real(x) if real else x
        return op(x, axis=axes)
    return impl


def _as_real(x):
    """An int or bool array as float64 (same values), as a real-valued reduction over an axis
    returns it; a float, or autograd's box of one, as it is, bit for bit (-0.0 stays -0.0)."""
    if isinstance(x, (np.ndarray, np.generic, int)) and np.asarray(x).dtype.kind in "biu":
        return np.asarray(x, dtype=np.float64)
    return x


def _elementwise(op):
    def impl(x, axis=None):
        return op(x)
    return impl


def _align(a, b):
    """Insert singleton axes after the draw axis so ``a`` and ``b`` have the same rank."""
    na, nb = anp.ndim(a), anp.ndim(b)
    if na < nb:
        a = anp.reshape(a, anp.shape(a)[:1] + (1,) * (nb - na) + anp.shape(a)[1:])
    elif nb < na:
        b = anp.reshape(b, anp.shape(b)[:1] + (1,) * (na - nb) + anp.shape(b)[1:])
    return a, b


def _dot(a, b, axis=None):
    a, b = _align(a, b)
    return anp.sum(a * b, axis=-1)


def _softplus(x, axis=None):
    # log(1 + exp(x)) without overflow for large x (special.softplus: numpy's formula, faster)
    return softplus(x)


def _log_softmax(x, axis=None):
    # Subtracting the log-sum-exp keeps exp from overflowing.
    return x - logsumexp(x, axis=-1, keepdims=True)


def _softmax(x, axis=None):
    return anp.exp(_log_softmax(x))


def _cumsum(x, axis=None):
    return anp.cumsum(x, axis=-1)


def _transpose(x, axis=None):
    # Only a matrix (or a stack of them) has two axes to swap; a scalar or vector is unchanged.
    return anp.swapaxes(x, -1, -2) if anp.ndim(x) >= 3 else x


def _align_all(*args):
    """Every argument at the same rank, singleton axes inserted after the draw axis."""
    rank = max(anp.ndim(a) for a in args)
    return tuple(anp.reshape(a, anp.shape(a)[:1] + (1,) * (rank - anp.ndim(a)) + anp.shape(a)[1:])
                 for a in args)


def _broadcast_all(*args):
    """Aligned and broadcast to one shape by adding zeros, whose gradient sums back to each
    argument's shape (autograd's ``where`` and ``concatenate`` do not unbroadcast)."""
    args = _align_all(*args)
    shape = np.broadcast_shapes(*(anp.shape(a) for a in args))
    return tuple(a + anp.zeros(shape) for a in args)


def _binary(op):
    def impl(a, b, axis=None):
        return op(*_align_all(a, b))
    return impl


def _where(cond, a, b, axis=None):
    cond, a, b = _broadcast_all(cond, a, b)
    return anp.where(cond != 0, a, b)


def _floor(x, axis=None):
    # data only (the checker refuses a latent argument), so plain numpy; int for indexing
    x = np.asarray(x)
    if x.dtype == object:
        # evaluate._int_result's exact pass: Python ints of any size, so that a floor beyond
        # int64 is refused there; math.floor raises for an infinity or NaN
        return np.frompyfunc(math.floor, 1, 1)(x)
    return np.floor(x).astype(np.int64)


def _static_ints(value) -> tuple[int, ...]:
    """A static argument's value(s) at run time: an int, or an array with a draw axis of 1."""
    return tuple(int(v) for v in np.ravel(value))


def _run_axis(axis, ndim_with_draws):
    """A value's own axis (default 0) as a run-time axis: non-negative ones shift past the
    draw axis, negative ones already count from the end."""
    axis = 0 if axis is None else axis
    return axis + 1 if axis >= 0 else axis + ndim_with_draws


def _concat(a, b, axis=None):
    # only the draw axis broadcasts: the checker makes the other axes agree
    s = max(anp.shape(a)[0], anp.shape(b)[0])
    a = a + anp.zeros((s,) + anp.shape(a)[1:])
    b = b + anp.zeros((s,) + anp.shape(b)[1:])
    return anp.concatenate([a, b], axis=_run_axis(axis, anp.ndim(a)))


def _stack(a, b, axis=None):
    a, b = _broadcast_all(a, b)
    return anp.stack([a, b], axis=_run_axis(axis, anp.ndim(a) + 1))


def _reshape(x, dims, axis=None):
    return anp.reshape(x, anp.shape(x)[:1] + _static_ints(dims))


def _eye(k, axis=None):
    (k,) = _static_ints(k)
    return anp.eye(k)[None]


def _positional(op):
    """``op`` as an implementation: the registry calls every impl with ``axis=``."""
    def impl(*args, axis=None):
        return op(*args)
    return impl


def _diag(v, axis=None):
    return v[..., None] * anp.eye(anp.shape(v)[-1])


def _diagonal(a, axis=None):
    # axes in this order: autograd's gradient of diagonal supports only (-1, -2)
    return anp.diagonal(a, axis1=-1, axis2=-2)


def _outer(u, v, axis=None):
    u, v = _align_all(u, v)
    return u[..., :, None] * v[..., None, :]


# ----- shape and dtype rules ----------------------------------------------------------------

def _same_shape(arg_shapes, axis):
    return arg_shapes[0]


def _reduce_shape(arg_shapes, axis):
    return shapes.reduce(arg_shapes[0], axis)


def _mean_shape(arg_shapes, axis):
    """As a reduction's, but a mean of no values (an axis of length 0 with the data) is an
    error here, at the call: numpy's nan and 'Mean of empty slice' warning ended, far from
    it, in 'the log density of this statement is nan at every starting point'."""
    shape = arg_shapes[0]
    reduced = shape if axis is None else (shape[shapes.normalize_axis(axis, len(shape))],)
    if 0 in reduced:
        raise ShapeError(errors.mean_of_nothing, tuple(shape), axis)
    return shapes.reduce(shape, axis)


def _last_axis_shape(name):
    def rule(arg_shapes, axis):
        return shapes.at_least(arg_shapes[0], 1, f"the argument of '{name}'")
    return rule


def _dot_shape(arg_shapes, axis):
    a = shapes.at_least(arg_shapes[0], 1, "the first argument of 'dot'")
    b = shapes.at_least(arg_shapes[1], 1, "the second argument of 'dot'")
    # the summed axis must match, as for '@': a length 1 would broadcast (dot(X, b) with
    # b [1] is b * sum(X, axis=-1)) and hide a vector of the wrong size
    if not shapes.same(a[-1:], b[-1:]):
        raise ShapeError(errors.shape_mismatch, a, b, "arguments of 'dot'")
    return shapes.broadcast(a, b, "arguments of 'dot'")[:-1]


def _transpose_shape(arg_shapes, axis):
    shape = arg_shapes[0]
    return shape if len(shape) < 2 else shape[:-2] + (shape[-1], shape[-2])


def _broadcast_shape(name):
    def rule(arg_shapes, axis):
        return shapes.broadcast_all(list(arg_shapes), f"arguments of '{name}'")
    return rule


def _concat_shape(arg_shapes, axis):
    a, b = arg_shapes
    a = shapes.at_least(a, 1, "the first argument of 'concat'")
    if len(b) != len(a):
        raise ShapeError(errors.shape_mismatch, a, b, "arguments of 'concat'")
    k = shapes.normalize_axis(0 if axis is None else axis, len(a))
    rest_a, rest_b = a[:k] + a[k + 1:], b[:k] + b[k + 1:]
    if not shapes.same(rest_a, rest_b):
        raise ShapeError(errors.shape_mismatch, a, b, "arguments of 'concat'")
    both = isinstance(a[k], int) and isinstance(b[k], int)
    # a symbolic length ('N' + 'M') has no Dim: unknown until the data is seen
    return a[:k] + (a[k] + b[k] if both else None,) + a[k + 1:]


def _stack_shape(arg_shapes, axis):
    a, b = arg_shapes
    if not shapes.same(a, b):
        raise ShapeError(errors.shape_mismatch, a, b, "arguments of 'stack'")
    k = shapes.normalize_axis(0 if axis is None else axis, len(a) + 1)
    return a[:k] + (2,) + a[k:]


def _reshape_shape(arg_shapes, axis):
    x, dims = arg_shapes
    dims = dims if isinstance(dims, tuple) else (dims,)   # reshape(x, 6): [6], as numpy's
    known = all(isinstance(d, int) for d in x + dims)
    if any(isinstance(d, int) and d < 0 for d in dims) or (
            known and int(np.prod(x, dtype=np.int64)) != int(np.prod(dims, dtype=np.int64))):
        raise ShapeError(errors.shape_mismatch, x, dims,
                         "element counts of the argument of 'reshape' and its new shape")
    return dims


def _eye_shape(arg_shapes, axis):
    (k,) = arg_shapes
    if isinstance(k, tuple):      # a vector literal: sizes are reshape's, eye takes one
        raise ShapeError(errors.static_argument, "eye", "K", False)
    return (k, k)


def _square(shape, name):
    """``shape`` if it is a (stack of) square matrices, else ShapeError."""
    shape = shapes.at_least(shape, 2, f"the argument of '{name}'")
    if not shapes.same(shape[-1:], shape[-2:-1]):
        raise ShapeError(errors.shape_mismatch, shape[-2:-1], shape[-1:],
                         f"rows and columns of the argument of '{name}'")
    return shape


def _cholesky_shape(arg_shapes, axis):
    return _square(arg_shapes[0], "cholesky")


def _diag_shape(arg_shapes, axis):
    v = shapes.at_least(arg_shapes[0], 1, "the argument of 'diag'")
    return v + v[-1:]


def _diagonal_shape(arg_shapes, axis):
    return _square(arg_shapes[0], "diagonal")[:-1]


def _outer_shape(arg_shapes, axis):
    u = shapes.at_least(arg_shapes[0], 1, "the first argument of 'outer'")
    v = shapes.at_least(arg_shapes[1], 1, "the second argument of 'outer'")
    batch = shapes.broadcast(u[:-1], v[:-1], "arguments of 'outer'")
    return batch + u[-1:] + v[-1:]


def _solve_shape(arg_shapes, axis):
    a = _square(arg_shapes[0], "solve")
    b = shapes.at_least(arg_shapes[1], 1, "the second argument of 'solve'")
    # b is a vector when it has one axis fewer than a, else a matrix of columns
    vector = len(b) == len(a) - 1
    rows = b[-1:] if vector else b[-2:-1]
    if not shapes.same(a[-1:], rows):
        raise ShapeError(errors.shape_mismatch, a, b, "arguments of 'solve'")
    batch = shapes.broadcast(a[:-2], b[:-1] if vector else b[:-2], "arguments of 'solve'")
    return batch + a[-1:] + (() if vector else b[-1:])


def _log_det_shape(arg_shapes, axis):
    return _square(arg_shapes[0], "log_det")[:-2]


def _gp_shape(arg_shapes, axis):
    x, alpha, rho = arg_shapes
    if len(x) != 1:
        raise ShapeError(errors.wrong_shape, "the first argument of 'gp_exp_quad_cov'",
                         ("N",), x)
    for what, s in (("alpha", alpha), ("rho", rho)):
        if s != ():
            raise ShapeError(errors.wrong_shape, f"'{what}' of 'gp_exp_quad_cov'", (), s)
    return x + x


def _real(arg_dtypes):
    return "real"


def _int(arg_dtypes):
    return "int"


def _int_if_all(arg_dtypes):
    return "int" if all(d == "int" for d in arg_dtypes) else "real"


def _int_if_branches(arg_dtypes):
    """``where``: int when both branches are (the condition's dtype does not matter)."""
    return _int_if_all(arg_dtypes[1:])


def _keep(arg_dtypes):
    return arg_dtypes[0]


# ----- the registry -------------------------------------------------------------------------

def _elementwise_function(name, op, dtype=_real):
    return Function(name, ("x",), frozenset(), _same_shape, dtype, _elementwise(op),
                    axes=ELEMENTWISE)


def _reducing_function(name, op, dtype=_real, shape=_reduce_shape):
    # the dtype rule decides, once, whether an int per draw comes back as a real
    real = dtype(("int",)) == "real"
    return Function(name, ("x",), frozenset({"axis"}), shape, dtype, _reduction(op, real),
                    axes=REDUCTION)


def _last_axis_function(name, impl, dtype=_real):
    return Function(name, ("x",), frozenset(), _last_axis_shape(name), dtype, impl,
                    axes=LAST_AXIS)


FUNCTIONS: dict[str, Function] = {f.name: f for f in [
    _elementwise_function("exp", anp.exp),
    _elementwise_function("log", anp.log),
    _elementwise_function("log1p", anp.log1p),
    _elementwise_function("expm1", anp.expm1),
    _elementwise_function("sqrt", anp.sqrt),
    _elementwise_function("square", anp.square, _keep),
    _elementwise_function("abs", anp.abs, _keep),
    _elementwise_function("sigmoid", expit),
    _elementwise_function("logit", logit),
    _elementwise_function("softplus", _softplus),
    _elementwise_function("tanh", anp.tanh),
    _elementwise_function("sin", anp.sin),
    _elementwise_function("cos", anp.cos),
    _reducing_function("sum", anp.sum, _keep),
    _reducing_function("mean", anp.mean, shape=_mean_shape),
    _reducing_function("log_sum_exp", logsumexp),
    Function("dot", ("a", "b"), frozenset(), _dot_shape, _real, _dot),
    _last_axis_function("softmax", _softmax),
    _last_axis_function("log_softmax", _log_softmax),
    _last_axis_function("cumsum", _cumsum, _keep),
    Function("transpose", ("x",), frozenset(), _transpose_shape, _keep, _transpose),
    # language version 2
    _elementwise_function("lgamma", gammaln),
    _elementwise_function("digamma", digamma),
    _elementwise_function("erf", erf),
    _elementwise_function("Phi", ndtr),
    _elementwise_function("inv_logit", expit),
    Function("floor", ("x",), frozenset(), _same_shape, _int, _floor, data_only=True,
             axes=ELEMENTWISE),
    Function("minimum", ("a", "b"), frozenset(), _broadcast_shape("minimum"), _int_if_all,
             _binary(anp.minimum), axes=ELEMENTWISE),
    Function("maximum", ("a", "b"), frozenset(), _broadcast_shape("maximum"), _int_if_all,
             _binary(anp.maximum), axes=ELEMENTWISE),
    Function("where", ("cond", "a", "b"), frozenset(), _broadcast_shape("where"),
             _int_if_branches, _where, axes=ELEMENTWISE),
    Function("concat", ("a", "b"), frozenset({"axis"}), _concat_shape, _int_if_all, _concat),
    Function("stack", ("a", "b"), frozenset({"axis"}), _stack_shape, _int_if_all, _stack),
    Function("reshape", ("x", "shape"), frozenset(), _reshape_shape, _keep, _reshape,
             static=(1,)),
    Function("eye", ("K",), frozenset(), _eye_shape, _real, _eye, static=(0,)),
    Function("cholesky", ("A",), frozenset(), _cholesky_shape, _real,
             _positional(linalg.cholesky_symmetric)),
    Function("diag", ("v",), frozenset(), _diag_shape, _keep, _diag),
    Function("diagonal", ("A",), frozenset(), _diagonal_shape, _keep, _diagonal),
    Function("outer", ("u", "v"), frozenset(), _outer_shape, _int_if_all, _outer),
    Function("solve", ("A", "b"), frozenset(), _solve_shape, _real, _positional(linalg.solve)),
    Function("log_det", ("A",), frozenset(), _log_det_shape, _real,
             _positional(linalg.log_abs_det)),
    Function("gp_exp_quad_cov", ("x", "alpha", "rho"), frozenset(), _gp_shape, _real,
             _positional(linalg.gp_exp_quad_cov)),
]}


def lookup(name: str) -> Function | None:
    """The built-in function called ``name`` in the language, or None."""
    return FUNCTIONS.get(name)
