"""IR expressions -> array computations: the one place where expressions are evaluated.

``compile_expr`` turns an expression into a closure over a run-time environment, folding every
data-only subtree into a constant once; the compiler calls it for every expression and
``data.py`` evaluates data-only expressions (bounds, observed values) through the same path.
Run-time values carry a leading draw axis (S draws, or 1 for data); ``lift`` lines a value's
batch axes up after it.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, get_args

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from . import elementwise, errors, ir

Fn = Callable[[Mapping[str, Any]], Any]
_DTYPES = {"int": np.int64, "real": np.float64}
_ELEMENTWISE = {"+": anp.add, "-": anp.subtract, "*": anp.multiply, "/": anp.true_divide,
                "**": anp.power}


def _comparison(op):
    # 0/1 ints, as LANGUAGE.md says; comparisons have no gradient (autograd's nograd functions)
    return lambda a, b: op(a, b).astype(np.int64)


_ELEMENTWISE.update({"<": _comparison(anp.less), "<=": _comparison(anp.less_equal),
                     ">": _comparison(anp.greater), ">=": _comparison(anp.greater_equal),
                     "==": _comparison(anp.equal), "!=": _comparison(anp.not_equal)})


def compile_expr(expr: ir.Expr, data_env: Mapping[str, np.ndarray]) -> Fn:
    """Build once a closure computing ``expr`` from a run-time environment.

    Parameters
    ----------
    expr : a checked IR expression.
    data_env : data names and data-only let names -> numpy arrays, WITHOUT a draw axis.

    Returns
    -------
    ``fn(env) -> array [S, *expr.shape]`` where ``env`` maps latent names and latent-dependent
    let names to arrays ``[S, *shape]``. A data-only ``expr`` gives a constant ``[1, *shape]``
    computed here, once. Written in ``autograd.numpy`` without in-place updates, so the
    closure can be differentiated with respect to the arrays in ``env``.
    """
    fn, _ = _node(expr, data_env)
    return fn


def evaluate_data(expr: ir.Expr, data_env: Mapping[str, np.ndarray]) -> np.ndarray:
    """The value of a data-only expression, shape ``expr.shape`` (no draw axis).

    Raises
    ------
    ValueError : if ``expr`` depends on a latent (a bug in the caller).
    """
    if expr.deps:
        raise ValueError(f"expression depends on latents {sorted(expr.deps)}")
    _, value = _node(expr, data_env)
    return np.asarray(value)[0]


def data_lets(model: ir.Model, data_env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compute every data-only let of ``model`` in source order.

    Returns
    -------
    let name -> value (no draw axis), only the data-only lets; each sees ``data_env`` and the
    lets before it.
    """
    env = dict(data_env)
    lets = {}
    for statement in model.statements:
        if isinstance(statement, ir.Let) and statement.data_only:
            lets[statement.name] = env[statement.name] = data_let(statement, env)
    return lets


def data_let(statement: ir.Let, env: Mapping[str, np.ndarray],
             warn: bool = True) -> np.ndarray:
    """The value of a data-only let. numpy's own warnings ('divide by zero') name no
    statement: a value that is not finite gets one warning naming the let
    and its first such element instead (data is finite, so it came from this arithmetic),
    unless not ``warn`` (the data's checks compute the lets before the compiler does).
    np.errstate is per thread; warnings.catch_warnings is not (two fits in threads could
    leave its 'ignore RuntimeWarning' filter set for the whole process), and numpy's other
    RuntimeWarnings (a mean of no values) are refused by the checker before this runs."""
    with np.errstate(all="ignore"):
        value = evaluate_data(statement.value, env)
    bad = ~np.isfinite(value) if np.asarray(value).dtype.kind == "f" else None
    if warn and bad is not None and bad.any():
        from .data import _first
        where, found = _first(statement.name, bad, value)
        warnings.warn(errors.let_not_finite(statement.span, statement.name, where, found),
                      stacklevel=2)
    return value


# ----- building closures --------------------------------------------------------------------
# Each builder returns a closure; ``_node`` evaluates a data-only one once and keeps the
# result, so that parents can prepare constants (lifted, transposed) at build time.

def _node(expr: ir.Expr, data_env) -> tuple[Fn, "np.ndarray | None"]:
    """(closure, constant): the constant is the value [1, *shape] when ``expr`` is data-only,
    in the checker's dtype (``dot`` of ints is real at run time too, as the checker says)."""
    fn = _BUILDERS[type(expr)](expr, data_env)
    if expr.deps:
        return fn, None
    # numpy's warnings here had no location, and were often spurious: where(x > 0, log(x), 0)
    # computes log(x) at every x. A value that matters is checked where it is used: a data
    # let's non-finite value is warned of, a statement's NaN density is a located error.
    with np.errstate(all="ignore"):
        value = np.asarray(fn({}), dtype=_DTYPES[expr.dtype])
    return (lambda env: value), value


_INT64 = (-2 ** 63, 2 ** 63 - 1)


def _int_result(expr: ir.Expr, op, *operands) -> Fn:
    """The closure of an int operation on data: computed once, here, and refused with a
    located error when int64 wrapped. The same operation on Python ints (object arrays) is
    exact: it shows a wrap. (An int that depends on an enumerated discrete latent, or a
    comparison of latents, is computed per draw instead: its values are bounded by the
    latent's finite support.)"""
    with np.errstate(all="ignore"):
        value = op(*operands)
    try:
        exact = np.asarray(op(*(np.asarray(x).astype(object) for x in operands)), dtype=object)
    except (OverflowError, ValueError):     # floor of an infinity or NaN (functions._floor)
        raise errors.int_of_non_finite(expr.span) from None
    if any(not _INT64[0] <= int(v) <= _INT64[1] for v in exact.ravel()):
        raise errors.int_overflow(expr.span)
    return lambda env: value


def _const(expr: ir.Const, data_env) -> Fn:
    value = np.reshape(np.asarray(expr.value, dtype=_DTYPES[expr.dtype]), (1,))
    return lambda env: value


def _ref(expr: ir.Ref, data_env) -> Fn:
    if expr.deps:
        return itemgetter(expr.name)
    return lambda env: np.asarray(data_env[expr.name])[None]


def _neg(expr: ir.Neg, data_env) -> Fn:
    operand, constant = _node(expr.operand, data_env)
    if expr.dtype == "int" and not expr.deps:
        return _int_result(expr, np.negative, constant)
    return _fused(expr, lambda env: anp.negative(operand(env)), ((operand, constant, 0),))


def _binop(expr: ir.BinOp, data_env) -> Fn:
    if expr.op == "@":
        return _matmul(expr, data_env)
    rank_l, rank_r = len(expr.left.shape), len(expr.right.shape)
    rank = max(rank_l, rank_r)
    nodes = ((*_node(expr.left, data_env), rank - rank_l),
             (*_node(expr.right, data_env), rank - rank_r))
    left, right = _lifted(*nodes[0]), _lifted(*nodes[1])
    op = _ELEMENTWISE[expr.op]
    if expr.dtype == "int" and not expr.deps:       # + - * of int data
        return _int_result(expr, op, left({}), right({}))
    if expr.op in ("**", "/"):
        # the checker types int ** int and int / int as real: compute them so (numpy would
        # refuse an int to a negative int power, and wrap 2 ** 64 to 0)
        return _fused(expr, lambda env: op(_real(left(env)), right(env)), nodes)
    return _fused(expr, lambda env: op(left(env), right(env)), nodes)


def _real(x):
    """Ints as float64 (data only: latents are floats already and pass through)."""
    return x.astype(np.float64) if isinstance(x, np.ndarray) and x.dtype.kind in "iub" else x


def lift(x, k: int):
    """Insert ``k`` singleton axes right after the draw axis: [S, *shape] -> [S, 1.., *shape]."""
    if k == 0:
        return x
    return anp.reshape(x, (x.shape[0],) + (1,) * k + tuple(x.shape[1:]))


def _lifted(fn: Fn, constant, k: int) -> Fn:
    if k == 0:
        return fn
    if constant is not None:
        value = lift(constant, k)
        return lambda env: value
    return lambda env: lift(fn(env), k)


# ----- elementwise trees as one primitive ---------------------------------------------------

FUSE_ELEMENTWISE = True     # tests turn it off to compare with the traced path


def _fused(expr: ir.Expr, plain: Fn, operands: tuple) -> Fn:
    """``plain``, or the tree of + - * / and minus rooted at ``expr`` as one primitive
    (elementwise.py) where the traced path would trace two operations or more. ``operands``:
    (closure, constant or None, lift) of each operand, as built for ``plain``."""
    if not FUSE_ELEMENTWISE or not elementwise.in_tree(expr):
        return plain
    op = elementwise.NEG if isinstance(expr, ir.Neg) else expr.op
    return elementwise.fuse(op, operands, plain, lift)


# ----- matmul -------------------------------------------------------------------------------

def _matmul(expr: ir.BinOp, data_env) -> Fn:
    """numpy matmul per draw, with fast forms when one side is data (a constant [1, ...])."""
    a_fn, a_const = _node(expr.left, data_env)
    b_fn, b_const = _node(expr.right, data_env)
    rank_a, rank_b = len(expr.left.shape), len(expr.right.shape)
    if expr.dtype == "int" and not expr.deps:
        return _int_result(expr, lambda a, b: general_matmul(a, b, rank_a, rank_b),
                           a_const, b_const)
    if a_const is not None and rank_a == 2 and rank_b == 1:
        # Regression X @ beta: [S, K] @ [K, N] is one matrix product, not S batched ones.
        x_t = np.ascontiguousarray(a_const[0].T)
        return lambda env: anp.matmul(b_fn(env), x_t)
    if a_const is not None and rank_a == 1 and rank_b == 1:
        a0 = a_const[0]
        return lambda env: anp.matmul(b_fn(env), a0)
    if b_const is not None and rank_b <= 2:
        # numpy's own matmul broadcasts a data vector/matrix over the draw axis correctly
        b0 = b_const[0]
        return lambda env: anp.matmul(a_fn(env), b0)
    if a_const is not None and rank_a <= 2:
        a0 = a_const[0]  # [K] or [N, K] against [S, ..., K, M]: the draw axis is a stack axis
        return lambda env: anp.matmul(a0, b_fn(env))
    return lambda env: general_matmul(a_fn(env), b_fn(env), rank_a, rank_b)


def general_matmul(a, b, rank_a: int, rank_b: int):
    """numpy matmul of the events of ``a`` [Sa, *A] and ``b`` [Sb, *B] (event ranks given).

    A vector operand becomes a one-row (left) or one-column (right) matrix and the added axis
    is dropped afterwards, as numpy does; stacks line up after the draw axis.
    """
    if rank_a == 1 and rank_b == 1:
        return anp.sum(a * b, axis=-1)
    if rank_a == 1:
        a = anp.reshape(a, tuple(a.shape[:-1]) + (1, a.shape[-1]))
    if rank_b == 1:
        b = anp.reshape(b, tuple(b.shape) + (1,))
    event_a, event_b = max(rank_a, 2), max(rank_b, 2)
    event = max(event_a, event_b)
    out = anp.matmul(lift(a, event - event_a), lift(b, event - event_b))
    if rank_a == 1:
        out = anp.reshape(out, tuple(out.shape[:-2]) + (out.shape[-1],))
    if rank_b == 1:
        out = anp.reshape(out, tuple(out.shape[:-1]))
    return out


# ----- indexing -----------------------------------------------------------------------------

def _index(expr: ir.Index, data_env) -> Fn:
    base, _ = _node(expr.base, data_env)
    if any(isinstance(item, get_args(ir.Expr)) and item.deps for item in expr.items):
        return _gather_per_draw(expr, base, data_env)
    items = tuple(index_value(item, data_env) for item in expr.items)
    key = (slice(None),) + items
    first = _advanced_first(items)
    if first is None:
        return lambda env: base(env)[key]
    # numpy put the broadcast index axes before the draw axis; move the draw axis back to 0
    ndim = 1 + len(expr.shape)
    perm = (first,) + tuple(range(first)) + tuple(range(first + 1, ndim))
    return lambda env: anp.transpose(base(env)[key], perm)


def _gather_per_draw(expr: ir.Index, base: Fn, data_env) -> Fn:
    """``mu[z]`` with an index that varies by draw (an enumerated discrete latent): a row
    index for the draw axis joins the other index arrays, and numpy's gathered axes (which
    then come first) are moved to where the event result has them (``shapes.index``)."""
    arrays = [i for i, item in enumerate(expr.items) if not isinstance(item, ir.SliceItem)]
    rank = len(np.broadcast_shapes(*[tuple(expr.items[i].shape) for i in arrays]))
    adjacent = arrays == list(range(arrays[0], arrays[-1] + 1))
    at = sum(isinstance(item, ir.SliceItem) for item in expr.items[:arrays[0]]) if adjacent else 0
    parts = []
    for item in expr.items:
        if isinstance(item, get_args(ir.Expr)) and item.deps:
            fn = compile_expr(item, data_env)
            parts.append(lambda env, fn=fn, k=rank - len(item.shape): lift(fn(env), k))
        else:
            value = index_value(item, data_env)
            parts.append(lambda env, value=value: value)
    perm = None
    if at:
        ndim = 1 + len(expr.shape)
        gathered = list(range(1, 1 + rank))
        rest = list(range(1 + rank, ndim))
        perm = [0] + rest[:at] + gathered + rest[at:]

    def gather(env):
        b = base(env)
        key = [part(env) for part in parts]
        n = max([b.shape[0]] + [np.shape(k)[0] for k in key if np.ndim(k) > rank])
        rows = np.arange(n) if b.shape[0] == n else np.zeros(n, dtype=np.intp)
        out = b[(rows.reshape((n,) + (1,) * rank),) + tuple(key)]
        return out if perm is None else anp.transpose(out, perm)
    return gather


def index_value(item, data_env):
    """An index item as numpy takes it: a Python int, an int array, a slice, or None."""
    if isinstance(item, ir.NewAxisItem):
        return None
    if isinstance(item, ir.SliceItem):
        return slice(*(None if bound is None else int(evaluate_data(bound, data_env))
                       for bound in (item.start, item.stop)))
    value = evaluate_data(item, data_env)
    return int(value) if value.ndim == 0 else value.astype(np.intp)


def _advanced_first(items) -> "int | None":
    """When numpy moves the advanced-index axes to the front, their number; else None.

    numpy's rule: with at least one array index, ints count as advanced indices too; if the
    advanced indices are not all adjacent (a slice between them), the broadcast index axes
    come first in the result. Our leading ``slice(None)`` for the draw axis never separates
    them, so the event result matches numpy's exactly once the draw axis is moved back.
    """
    arrays = [i for i, item in enumerate(items) if isinstance(item, np.ndarray)]
    if not arrays:
        return None
    advanced = [i for i, item in enumerate(items) if not isinstance(item, slice) and
                item is not None]
    if advanced[-1] - advanced[0] + 1 == len(advanced):
        return None
    return np.broadcast(*[items[i] for i in arrays]).ndim


# ----- calls --------------------------------------------------------------------------------

def _call(expr: ir.Call, data_env) -> Fn:
    from .functions import lookup
    impl = lookup(expr.func).impl
    axis = expr.axis
    if expr.dtype == "int" and not expr.deps:
        return _int_result(expr, lambda *xs: impl(*xs, axis=axis),
                           *(_node(arg, data_env)[1] for arg in expr.args))
    args = tuple(_node(arg, data_env)[0] for arg in expr.args)
    if len(args) == 1:
        (arg,) = args
        return lambda env: impl(arg(env), axis=axis)
    return lambda env: impl(*(arg(env) for arg in args), axis=axis)


# ----- vector literals and densities --------------------------------------------------------

def _vector(expr: ir.Vector, data_env) -> Fn:
    items = tuple(_node(item, data_env)[0] for item in expr.items)

    def stack(env):
        values = [item(env) for item in items]
        n = max(v.shape[0] for v in values)
        # a data item [1, ...] beside a latent one [S, ...]: stack needs equal draw axes
        values = [v if v.shape[0] == n else v + anp.zeros((n,) + tuple(v.shape[1:]))
                  for v in values]
        return anp.stack(values, axis=1)
    return stack


def dist_param_fns(dist: ir.Dist, value_rank: int, data_env,
                   raw: dict | None = None) -> dict[str, Any]:
    """Closures of a distribution's parameters, each lined up against a value of rank
    ``value_rank``: its batch axes get singleton axes after the draw axis (:func:`lift`).
    ``raw``, if given, receives name -> (closure before lifting, k) for each parameter that
    is an expression (the fused densities lift it themselves; compiled once for both).

    A distribution-valued parameter (Mixture's components) gives a closure returning
    ``(class, {name: array})``, its parameters lined up against ``value_rank + 1`` axes: the
    last one indexes the components.
    """
    cls = dist.cls
    fns = {}
    for name, expr in dist.params:
        if isinstance(expr, ir.Dist):
            inner = dist_param_fns(expr, value_rank + 1, data_env)
            fns[name] = (lambda env, c=expr.cls, inner=inner:
                         (c, {n: fn(env) for n, fn in inner.items()}))
            continue
        batch_rank = len(expr.shape) - cls.param_event_dims.get(name, 0)
        k = max(0, value_rank - cls.event_dim - batch_rank)
        fn = compile_expr(expr, data_env)
        fns[name] = fn if k == 0 else (lambda env, fn=fn, k=k: lift(fn(env), k))
        if raw is not None:
            raw[name] = (fn, k)
    return fns


def _density(expr: ir.Density, data_env) -> Fn:
    cls = expr.dist.cls
    rank = len(expr.shape) + cls.event_dim
    params = dist_param_fns(expr.dist, rank, data_env)
    value, constant = _node(expr.value, data_env)
    value = _lifted(value, constant, rank - len(expr.value.shape))
    method = getattr(cls, {"lpdf": "log_density", "lcdf": "log_cdf", "lccdf": "log_ccdf"}[
        expr.kind])

    def density(env):
        x, args = value(env), {name: fn(env) for name, fn in params.items()}
        support = cls.support_of(args)      # once a call: this runs at every step
        bad, below = _outside(cls, support, x, args)
        if expr.kind != "lpdf" and below.any():
            # below the support: P(X <= x) = 0, P(X > x) = 1; the formula is kept off those
            # values (log of a negative) so that no nan reaches the gradient
            x = anp.where(below, getattr(support, "lower", 0) + 1.0, x)
        out = method(x, **args)
        # a density constant along some axis (Uniform's) comes back smaller: broadcast it
        full = (anp.shape(out)[0],) + tuple(expr.shape)
        out = out if anp.shape(out) == full else out + anp.zeros(full)
        if expr.kind == "lpdf":
            bad = bad | ~_inside(cls, support, x)
        elif below.any():
            out = anp.where(np.broadcast_to(below, full), -np.inf if expr.kind == "lcdf"
                            else 0.0, out)
        # a value outside the support has no density, and a parameter outside its constraint
        # defines none: the formula would give a number there (lpdf(Exponential(1), -1) = 1)
        return anp.where(np.broadcast_to(bad, full), -np.inf, out) if bad.any() else out
    return density


def _outside(cls, support, x, params) -> tuple:
    """(parameters outside their constraints, value below the support's lower bound): boolean
    arrays over the value's batch axes [S or 1, ...], for ``lpdf``/``lcdf``/``lccdf``."""
    x = np.asarray(getval(x))
    bad = _bad_params(cls, params, x.ndim)
    lower = getattr(support, "lower", None)
    below = np.zeros((), dtype=bool)
    if lower is not None and not support.discrete:
        below = np.asarray(x < getval(lower))
        below = np.any(below, axis=tuple(range(below.ndim - cls.event_dim, below.ndim)))
    return bad, below


def _bad_params(cls, params, rank: int) -> np.ndarray:
    """True over the batch axes where some parameter leaves its constraint (or is nan); a
    distribution-valued one (a Mixture's components, a component axis last) where any
    component's does."""
    bad = np.zeros((), dtype=bool)
    for name, v in params.items():
        if isinstance(v, tuple):        # (class, parameters) of a Mixture's components
            inner = _bad_params(v[0], v[1], rank + 1)
            bad = bad | (np.any(inner, axis=-1) if inner.ndim else inner)
            continue
        constraint = cls.constraints.get(name)
        if constraint is None:
            continue
        v = np.asarray(getval(v))
        with np.errstate(invalid="ignore"):
            ok = np.asarray(constraint.check(v)) & ~np.isnan(v)
        k = cls.param_event_dims.get(name, 0)
        bad = bad | ~np.all(ok, axis=tuple(range(ok.ndim - k, ok.ndim)))
    return bad


def _inside(cls, support, x) -> np.ndarray:
    """True over the batch axes where the value lies in the distribution's ``support``."""
    ok = np.asarray(support.check(np.asarray(getval(x))))
    return np.all(ok, axis=tuple(range(ok.ndim - cls.event_dim, ok.ndim)))


_BUILDERS = {ir.Const: _const, ir.Ref: _ref, ir.Neg: _neg, ir.BinOp: _binop, ir.Index: _index,
             ir.Call: _call, ir.Vector: _vector, ir.Density: _density}
