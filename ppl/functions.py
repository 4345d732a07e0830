"""Built-in functions of the language: name -> arity, keywords, shape and dtype rules, and the
``autograd.numpy`` implementation used by the compiler.

Implementations follow the compiler's run-time convention: every argument carries a leading
draw axis (S draws, or 1 for data), so a non-negative ``axis`` shifts by one and "all elements"
means axes 1... The checker validates ``axis`` before any implementation sees it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import autograd.numpy as anp
from .special import expit, logit, logsumexp

from .frontend import shapes
from .frontend.shapes import Shape


@dataclass(frozen=True)
class Function:
    """One built-in function.

    Attributes
    ----------
    name : the language name.
    params : positional parameter names, for messages (``arity`` is their number).
    keywords : allowed keyword arguments (only ``axis``, only for reductions).
    shape : ``shape(arg_shapes, axis) -> Shape``; raises ``shapes.ShapeError``.
    dtype : ``dtype(arg_dtypes) -> 'int' | 'real'``.
    impl : ``impl(*args, axis=None)`` on run-time arrays with a leading draw axis.
    """

    name: str
    params: tuple[str, ...]
    keywords: frozenset[str]
    shape: Callable[[tuple[Shape, ...], "int | None"], Shape]
    dtype: Callable[[tuple[str, ...]], str]
    impl: Callable

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


def _reduction(op):
    def impl(x, axis=None):
        axes = _axes(x, axis)
        if axes == ():  # a scalar per draw: reducing over no axes is the identity
            return x
        return op(x, axis=axes)
    return impl


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
    # log(1 + exp(x)) without overflow for large x.
    return anp.logaddexp(0.0, x)


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


# ----- shape and dtype rules ----------------------------------------------------------------

def _same_shape(arg_shapes, axis):
    return arg_shapes[0]


def _reduce_shape(arg_shapes, axis):
    return shapes.reduce(arg_shapes[0], axis)


def _last_axis_shape(name):
    def rule(arg_shapes, axis):
        return shapes.at_least(arg_shapes[0], 1, f"the argument of '{name}'")
    return rule


def _dot_shape(arg_shapes, axis):
    a = shapes.at_least(arg_shapes[0], 1, "the first argument of 'dot'")
    b = shapes.at_least(arg_shapes[1], 1, "the second argument of 'dot'")
    return shapes.broadcast(a, b, "arguments of 'dot'")[:-1]


def _transpose_shape(arg_shapes, axis):
    shape = arg_shapes[0]
    return shape if len(shape) < 2 else shape[:-2] + (shape[-1], shape[-2])


def _real(arg_dtypes):
    return "real"


def _keep(arg_dtypes):
    return arg_dtypes[0]


# ----- the registry -------------------------------------------------------------------------

def _elementwise_function(name, op, dtype=_real):
    return Function(name, ("x",), frozenset(), _same_shape, dtype, _elementwise(op))


def _reducing_function(name, op, dtype=_real):
    return Function(name, ("x",), frozenset({"axis"}), _reduce_shape, dtype, _reduction(op))


def _last_axis_function(name, impl, dtype=_real):
    return Function(name, ("x",), frozenset(), _last_axis_shape(name), dtype, impl)


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
    _reducing_function("mean", anp.mean),
    _reducing_function("log_sum_exp", logsumexp),
    Function("dot", ("a", "b"), frozenset(), _dot_shape, _real, _dot),
    _last_axis_function("softmax", _softmax),
    _last_axis_function("log_softmax", _log_softmax),
    _last_axis_function("cumsum", _cumsum, _keep),
    Function("transpose", ("x",), frozenset(), _transpose_shape, _keep, _transpose),
]}


def lookup(name: str) -> Function | None:
    """The built-in function called ``name`` in the language, or None."""
    return FUNCTIONS.get(name)
