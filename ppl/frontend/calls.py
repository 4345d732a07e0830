"""Calls of built-in functions at check time: arity, keywords, ``axis=``, static arguments
(``eye(K)``, ``reshape(x, [d1, d2])``), data-only functions, and the shape and dtype rules of
``functions.py``. The checker calls ``check_call`` with itself as ``checker``.
"""
from __future__ import annotations

from .. import distributions, errors, functions, ir
from . import shapes, syntax
from .shapes import ShapeError


def check_call(checker, e: syntax.Call) -> ir.Call:
    """Check a call of a built-in function (``functions.py``) and build its IR."""
    f = functions.lookup(e.func)
    if f is None:
        if e.func in distributions.DISTRIBUTIONS:
            raise errors.not_a_function(e.func_span, e.func)
        raise errors.unknown_function(e.func_span, e.func, functions.FUNCTIONS)
    axis_kw = None
    for kw in e.kwargs:
        if kw.name not in f.keywords:
            raise errors.unknown_keyword(kw.span, f.name, kw.name, f.keywords)
        if axis_kw is not None:
            raise errors.duplicate_keyword(kw.span, kw.name)
        axis_kw = kw
    if len(e.args) != f.arity:
        raise errors.wrong_arguments(e.span, f.name, f.forms)
    args = tuple(checker._expr(a) for a in e.args)
    if getattr(f, "data_only", False):
        for a in args:
            if a.deps:
                raise errors.data_only_argument(a.span, f.name, checker._dependency(a.deps))
    # stack inserts an axis: its axis= ranges over one more dimension
    ndim = len(args[0].shape) + (f.name == "stack")
    axis = None if axis_kw is None else axis_value(axis_kw.value, ndim)
    arg_shapes = [a.shape for a in args]
    for i in getattr(f, "static", ()):
        arg_shapes[i] = static_argument(checker, args[i], f.name, f.params[i])
    try:
        shape = f.shape(tuple(arg_shapes), axis)
    except ShapeError as err:
        raise err.at(e.span) from None
    deps = frozenset().union(*(a.deps for a in args))
    return checker._within_rank(ir.Call(f.name, args, axis, shape,
                                        f.dtype(tuple(a.dtype for a in args)), deps,
                                        span=e.span))


def static_argument(checker, arg: ir.Expr, func: str, param: str):
    """The value of an argument that must be static: a Dim, or for a vector literal of
    them (``reshape(x, [N, 2])``) a tuple of Dims."""
    if isinstance(arg, ir.Vector) and len(arg.shape) == 1:
        return tuple(static_argument(checker, item, func, param) for item in arg.items)
    value = checker._static_value(arg)
    if value is checker.not_static or arg.shape:
        raise errors.static_argument(arg.span, func, param)
    if value is None and isinstance(arg, ir.Ref) and checker.scope[arg.name].kind == "data":
        return arg.name  # symbolic: an int data scalar is its own name
    if value is not None and value < 0:  # a size: reshape's shape rule refuses 0 as well
        raise errors.wrong_type(arg.span, f"argument '{param}' of '{func}'", "a size >= 0",
                                str(value))
    return value


def axis_value(value: syntax.Expr, ndim: int) -> int:
    """The int literal given as ``axis=`` (possibly negated), in range for ``ndim`` axes."""
    sign, e = 1, value
    if isinstance(e, syntax.Unary) and isinstance(e.operand, syntax.Number):
        sign, e = -1, e.operand
    if not (isinstance(e, syntax.Number) and e.is_int):
        found = e.text if isinstance(e, syntax.Number) else "an expression"
        raise errors.wrong_type(value.span, "axis", "an int literal", found)
    try:
        shapes.normalize_axis(sign * e.value, ndim)
    except ShapeError as err:
        raise err.at(value.span) from None
    return sign * e.value
