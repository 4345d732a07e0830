"""A latent-dependent tree of + - * / and unary minus over lifted operands as one primitive.

On a small model autograd's bookkeeping, about 15 microseconds per traced operation whatever
its size, is most of a step (issue 15). ``let theta = mu + tau * eta`` in eight schools was four
traced operations (the lifts of mu and tau from [S] to [S, 1], the product, the sum); as a
``Tree`` it is one. ``evaluate.py`` calls ``fuse`` for every such operation it builds.

Forward and VJP repeat the traced operations and autograd's own VJPs of them (``+ - * /``,
``negative``, the lifts' ``reshape``) in the traced order, so value and gradient are the traced
path's bit for bit, up to the order in which autograd adds the gradients of a node used again
outside the tree (rounding; tests/unit/test_elementwise.py). Under a second-order trace (the
whitening's Hessian-vector products) the same operations are traced: the VJP is plain numpy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import box_types

from . import ir
from .fused import record

NEG, LEAF, CONST = "neg", "leaf", "const"
_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}
_TRACED = {"+": anp.add, "-": anp.subtract, "*": anp.multiply, "/": anp.true_divide}


class Tree(NamedTuple):
    """A program with one register per instruction, the last one the result. An instruction
    is ``(op, a, ka, b, kb)``: (LEAF, i, ...) loads the i-th leaf's value (the primitive's
    i-th argument), (CONST, j, ...) the j-th constant; otherwise ``op`` of registers a and b
    (b unused by NEG), each first lifted by ka / kb singleton axes after the draw axis."""
    leaves: tuple            # closures env -> [S or 1, ...]: the operands that are no + - * /
    constants: tuple         # data operands, already lifted (and real where / needs it)
    code: tuple              # in the traced evaluation order
    traced: int              # operations the traced path traces for it, lifts included


def in_tree(expr: ir.Expr) -> bool:
    """An operation a Tree computes: + - * / or unary minus, real, per draw (a division of an
    int that varies by draw is left out: the traced path makes it real first)."""
    if not expr.deps or expr.dtype != "real":
        return False
    if isinstance(expr, ir.Neg):
        return True
    return (isinstance(expr, ir.BinOp) and expr.op in _BINARY
            and not (expr.op == "/" and expr.left.deps and expr.left.dtype != "real"))


def fuse(op: str, operands: tuple, plain: Callable, lift: Callable) -> Callable:
    """The closure of ``op`` (+ - * / or NEG) of ``operands``: one Tree primitive when the
    traced path traces two operations or more there (lifts included), else ``plain`` (its
    traced closure). Either carries the tree as ``.tree``, which a parent operation joins to
    its own: each operand's closure is built once, however deep the expression.

    Parameters
    ----------
    operands : (closure, constant [1, ...] or None, lift k) per operand, as evaluate builds it.
    lift : (x, k) -> x with k singleton axes after the draw axis, ``evaluate.lift``.
    """
    parts = []
    for i, (fn, constant, k) in enumerate(operands):
        if constant is not None:
            value = lift(constant, k)
            if op == "/" and i == 0:     # int data / x is real (evaluate._real)
                value = np.asarray(value, dtype=np.float64)
            parts.append((Tree((), (value,), ((CONST, 0, 0, 0, 0),), 0), 0, False))
        elif hasattr(fn, "tree"):
            parts.append((fn.tree, k, True))
        else:
            parts.append((Tree((fn,), (), ((LEAF, 0, 0, 0, 0),), 0), k, True))
    tree = _join(op, parts)
    fn = closure(tree) if tree.traced >= 2 else plain
    fn.tree = tree
    return fn


def _join(op: str, parts: list) -> Tree:
    """The tree of ``op`` over the operands' trees (each with its lift), registers renumbered."""
    leaves, constants, code, outs, traced = (), (), [], [], 1
    for tree, k, lifted in parts:
        base, nl, nc = len(code), len(leaves), len(constants)
        for o, a, ka, b, kb in tree.code:
            if o == LEAF:
                code.append((o, a + nl, 0, 0, 0))
            elif o == CONST:
                code.append((o, a + nc, 0, 0, 0))
            else:
                code.append((o, a + base, ka, b + base, kb))
        leaves, constants = leaves + tree.leaves, constants + tree.constants
        outs.append((len(code) - 1, k))
        traced += tree.traced + (1 if lifted and k else 0)
    (a, ka), (b, kb) = outs[0], outs[-1]
    code.append((op, a, ka, b, kb))
    return Tree(leaves, constants, tuple(code), traced)


def closure(tree: Tree) -> Callable:
    """``fn(env)``: the tree's value, as one primitive when autograd traces a first order;
    under a second order, the same operations traced (the VJP below is plain numpy)."""
    leaves = tree.leaves

    def fn(env):
        values = [leaf(env) for leaf in leaves]
        boxed = [v for v in values if type(v) in box_types]
        if not boxed:
            return _run(tree, values)[0]
        if any(type(v._value) in box_types for v in boxed):
            return _run(tree, values, anp, _TRACED)[0]
        return record(_tree, [tree] + values)
    return fn


def _lift(x, k: int, np_):
    if k == 0:
        return x
    if type(x) is np.ndarray:    # ndarray.reshape: np.reshape without its Python layer
        return x.reshape((x.shape[0],) + (1,) * k + x.shape[1:])
    return np_.reshape(x, (x.shape[0],) + (1,) * k + tuple(x.shape[1:]))


def _run(tree: Tree, values, np_=np, ops=_BINARY):
    """(result, operands): the forward pass, with each instruction's lifted operands kept."""
    regs, operands = [], []
    for op, a, ka, b, kb in tree.code:
        x = y = None
        if op == LEAF:
            out = values[a]
        elif op == CONST:
            out = tree.constants[a]
        else:
            x = _lift(regs[a], ka, np_)
            if op == NEG:
                out = np_.negative(x)
            else:
                y = _lift(regs[b], kb, np_)
                out = ops[op](x, y)
        regs.append(out)
        operands.append((x, y))
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
    operands = kept[1] if kept is not None and kept[0] is ans else _run(tree, values)[1]
    needed, register_of = _needed(tree, argnums)

    def vjp(g):
        grads = [None] * len(needed)
        grads[-1] = g
        for r in range(len(needed) - 1, -1, -1):
            op, a, ka, b, kb = tree.code[r]
            if op in (LEAF, CONST) or not needed[r]:
                continue
            g, (x, y) = grads[r], operands[r]
            if needed[a]:
                grads[a] = _unlift(_unbroadcast(_vjp_left(op, g, x, y), x), ka)
            if op != NEG and needed[b]:
                grads[b] = _unlift(_unbroadcast(_vjp_right(op, g, x, y), y), kb)
        return tuple(grads[register_of[i - 1]] for i in argnums)
    return vjp


def _needed(tree: Tree, argnums: tuple) -> tuple:
    """(per register, whether its gradient is needed; leaf -> its register) for the leaves
    asked (``argnums`` count ``tree``), found once per tree and argnums (every step asks the
    same): the tree is kept with its answer, so a cached id is never another tree's."""
    key = (id(tree), argnums)
    found = _NEEDED.get(key)
    if found is not None and found[0] is tree:
        return found[1]
    asked = {i - 1 for i in argnums}
    needed, register_of = [], {}
    for r, (op, a, _, b, _) in enumerate(tree.code):
        if op == LEAF:
            needed.append(a in asked)
            register_of[a] = r
        elif op == CONST:
            needed.append(False)
        else:
            needed.append(needed[a] or (op != NEG and needed[b]))
    if len(_NEEDED) > 10_000:     # trees are made once per model: a bound, never reached
        _NEEDED.clear()
    _NEEDED[key] = (tree, (needed, register_of))
    return needed, register_of


_NEEDED: dict = {}


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
    # np.add.reduce is np.sum's (and ndarray.sum's) own reduction, without their Python layer
    shape = target.shape if type(target) is np.ndarray else np.shape(target)
    if g.shape == shape:     # most calls: nothing to sum
        return g
    while g.ndim > len(shape):
        g = np.add.reduce(g, axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            g = np.add.reduce(g, axis=axis, keepdims=True)
    return g


def _unlift(g, k: int):
    """The lift's VJP (autograd's reshape VJP): the singleton axes after the draw axis removed."""
    return g if k == 0 else g.reshape((g.shape[0],) + g.shape[1 + k:])


defvjp_argnums(_tree, _tree_vjp)
