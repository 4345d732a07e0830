"""A latent-dependent tree of + - * / and unary minus over lifted operands as one primitive.

On a small model autograd's bookkeeping, about 15 microseconds per traced operation whatever
its size, is most of a step (issue 15). ``let theta = mu + tau * eta`` in eight schools was four
traced operations (the lifts of mu and tau from [S] to [S, 1], the product, the sum); as a
``Tree`` it is one. ``evaluate.py`` calls ``fuse`` for every such operation it builds.

Forward and VJP repeat the traced operations and autograd's own VJPs of them (``+ - * /``,
``negative``, the lifts' ``reshape``) in the traced order, so value and gradient are the traced
path's bit for bit, up to the order in which autograd adds the gradients of a node used again
outside the tree (rounding; tests/unit/test_elementwise.py). Under a second-order trace (the
whitening's Hessian-vector products) the traced closure is used: the VJP is plain numpy.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import isbox

from . import ir

NEG = "neg"
_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}


class Instr(NamedTuple):
    """One operation: ``op`` of registers ``a`` and ``b`` (b unused by NEG), each first lifted
    by ``ka`` / ``kb`` singleton axes after the draw axis (``evaluate.lift``)."""
    op: str
    a: int
    ka: int
    b: int
    kb: int


class Tree(NamedTuple):
    """Registers are the leaves' values (the primitive's arguments, in order), then the
    constants, then one per instruction; the last instruction's is the result."""
    leaves: tuple            # closures env -> [S or 1, ...]: the operands that are no + - * /
    constants: tuple         # data operands, already lifted (and real where / needs it)
    code: tuple              # Instr, in the traced evaluation order
    plain: Callable          # the traced closure of the same expression


def in_tree(expr: ir.Expr) -> bool:
    """An operation a Tree computes: + - * / or unary minus, real, per draw (a division of an
    int that varies by draw is left out: the traced path makes it real first)."""
    if not expr.deps or expr.dtype != "real":
        return False
    if isinstance(expr, ir.Neg):
        return True
    return (isinstance(expr, ir.BinOp) and expr.op in _BINARY
            and not (expr.op == "/" and expr.left.deps and expr.left.dtype != "real"))


def fuse(expr: ir.Expr, plain: Callable, node: Callable, lift: Callable) -> Callable:
    """The closure of ``expr`` as one Tree primitive, or ``plain`` (its traced closure) when
    ``expr`` is not a tree operation or the traced path traces fewer than two operations there
    (lifts included).

    Parameters
    ----------
    node : e -> (closure, constant [1, ...] or None), ``evaluate._node`` for the operands.
    lift : (x, k) -> x with k singleton axes after the draw axis, ``evaluate.lift``.
    """
    if not in_tree(expr):
        return plain
    leaves, constants, code = [], [], []

    def register(e, k):
        """(kind, index) of the register holding ``e``, and the lift still to apply to it."""
        if in_tree(e):
            return ("code", emit(e)), k
        fn, constant = node(e)
        if constant is None:
            leaves.append(fn)
            return ("leaf", len(leaves) - 1), k
        constants.append(lift(constant, k))
        return ("constant", len(constants) - 1), 0

    def emit(e) -> int:
        if isinstance(e, ir.Neg):
            code.append((NEG, *register(e.operand, 0), None, 0))
            return len(code) - 1
        rank = max(len(e.left.shape), len(e.right.shape))
        left = register(e.left, rank - len(e.left.shape))
        right = register(e.right, rank - len(e.right.shape))
        if e.op == "/" and left[0][0] == "constant":   # int data / x is real (evaluate._real)
            constants[left[0][1]] = np.asarray(constants[left[0][1]], dtype=np.float64)
        code.append((e.op, *left, *right))
        return len(code) - 1

    emit(expr)
    lifts = sum(1 for _, a, ka, b, kb in code for r, k in ((a, ka), (b, kb))
                if r is not None and r[0] != "constant" and k)
    if len(code) + lifts < 2:
        return plain
    start = {"leaf": 0, "constant": len(leaves), "code": len(leaves) + len(constants)}

    def index(r):
        return 0 if r is None else start[r[0]] + r[1]
    instrs = tuple(Instr(op, index(a), ka, index(b), kb) for op, a, ka, b, kb in code)
    return closure(Tree(tuple(leaves), tuple(constants), instrs, plain))


def closure(tree: Tree) -> Callable[[Mapping[str, Any]], Any]:
    """``fn(env)``: the tree's value, as one primitive when autograd traces a first order."""
    leaves, plain = tree.leaves, tree.plain

    def fn(env):
        values = [leaf(env) for leaf in leaves]
        boxed = [v for v in values if isbox(v)]
        if not boxed:
            return _run(tree, values)[0]
        if any(isbox(v._value) for v in boxed):
            return plain(env)
        return _tree(tree, *values)
    return fn


def _lift(x, k: int):
    return x if k == 0 else x.reshape((x.shape[0],) + (1,) * k + x.shape[1:])


def _run(tree: Tree, values: list):
    """(result, operands): the forward pass, with each instruction's lifted operands kept."""
    regs = list(values) + list(tree.constants)
    operands = []
    for op, a, ka, b, kb in tree.code:
        x = _lift(regs[a], ka)
        if op == NEG:
            operands.append((x, None))
            regs.append(np.negative(x))
        else:
            y = _lift(regs[b], kb)
            operands.append((x, y))
            regs.append(_BINARY[op](x, y))
    return regs[-1], operands


@primitive
def _tree(tree, *values):
    out, operands = _run(tree, values)
    _KEPT[0] = (out, operands)   # for the VJP made right after, in the same trace
    return out


# (the last result, its operands), replaced whole: autograd makes a primitive's VJP right after
# calling it, which then need not compute the forward pass again (as fused.py)
_KEPT: list = [None]


def _tree_vjp(argnums, ans, args, kwargs):
    tree, values = args[0], args[1:]
    kept, _KEPT[0] = _KEPT[0], None
    operands = kept[1] if kept is not None and kept[0] is ans else _run(tree, list(values))[1]
    n_in = len(values) + len(tree.constants)
    # which registers lead to an argument whose gradient is asked for (argnums count `tree`)
    needed = [False] * (n_in + len(tree.code))
    for i in argnums:
        needed[i - 1] = True
    for j, (op, a, _, b, _) in enumerate(tree.code):
        needed[n_in + j] = needed[a] or (op != NEG and needed[b])

    def vjp(g):
        grads = [None] * len(needed)
        grads[-1] = g
        for j in range(len(tree.code) - 1, -1, -1):
            op, a, ka, b, kb = tree.code[j]
            g, (x, y) = grads[n_in + j], operands[j]
            if needed[a]:
                grads[a] = _unlift(_unbroadcast(_vjp_left(op, g, x, y), x), ka)
            if op != NEG and needed[b]:
                grads[b] = _unlift(_unbroadcast(_vjp_right(op, g, x, y), y), kb)
        return tuple(grads[i - 1] for i in argnums)
    return vjp


def _vjp_left(op, g, x, y):
    """autograd's VJP of ``op`` to its first operand (numpy_vjps.py), before unbroadcasting."""
    if op == "*":
        return y * g
    if op == "/":
        return g / y
    return -g if op == NEG else g


def _vjp_right(op, g, x, y):
    if op == "*":
        return x * g
    if op == "/":
        return -g * x / y**2
    return -g if op == "-" else g


def _unbroadcast(g, target):
    """autograd's ``unbroadcast`` (numpy_vjps.py): the leading axes summed away first, then
    every axis of size 1 in ``target``'s shape, in order."""
    # ndarray.sum is np.sum's own reduction (np.add.reduce), without its Python layer
    shape = np.shape(target)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _unlift(g, k: int):
    """The lift's VJP (autograd's reshape VJP): the singleton axes after the draw axis removed."""
    return g if k == 0 else g.reshape((g.shape[0],) + g.shape[1 + k:])


defvjp_argnums(_tree, _tree_vjp)
