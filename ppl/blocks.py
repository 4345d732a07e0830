"""A slot's block of the unconstrained draws zeta [S, D], as few autograd operations as can be.

Each traced operation costs microseconds, which add up on small models (a VAE's step traces
about 70). The compiler cuts each latent's and param's block out of zeta; a user guide
(guides/user.py) builds zeta from the blocks (``assemble``), and the log joint of that very
zeta then reads the blocks back instead of cutting them again.
"""
from __future__ import annotations

import math

import autograd.numpy as anp
import numpy as np
from autograd.core import VJPNode, add_outgrads
from autograd.extend import defvjp, defvjp_argnum, primitive
from autograd.tracer import box_types, isbox, new_box, trace_stack


@primitive
def block(zeta, rows, start: int, stop: int, free: tuple | None = None):
    """``zeta[:rows, start:stop]`` (rows None: every row), reshaped to [rows or S, *free]
    when ``free`` is given, as one autograd primitive."""
    out = zeta[:rows, start:stop]
    if free is None:
        return out
    shape = (out.shape[0],) + tuple(free)
    return out.reshape(shape) if type(out) is np.ndarray else np.reshape(out, shape)


_block = block.fun     # the function inside the primitive, for plain arrays


@primitive
def unblock(g, shape: tuple, rows, start: int, stop: int):
    """zeros of ``shape`` with ``g`` at ``[:rows, start:stop]``: ``block``'s gradient,
    written by assignment (autograd's gradient of an index adds with numpy's ufunc.at, about
    20 ns per element of the block, every step)."""
    out = np.zeros(shape)
    out[:rows, start:stop] = np.reshape(g, (np.shape(g)[0], stop - start))
    return out


defvjp(block, lambda ans, zeta, rows, start, stop, free=None:
       lambda g: unblock(g, np.shape(zeta), rows, start, stop))
defvjp(unblock, lambda ans, g, shape, rows, start, stop:
       lambda h: block(h, rows, start, stop, tuple(np.shape(g)[1:])))


@primitive
def stack_columns(S: int, *pieces):
    """The blocks [S or 1, *free_k] flattened and side by side: [S, sum of sizes], a one-row
    block repeated over the S rows (a param's), as one autograd primitive."""
    flat = [np.reshape(p, (np.shape(p)[0], -1)) for p in pieces]
    out = np.empty((S, sum(f.shape[1] for f in flat)))
    at = 0
    for f in flat:
        out[:, at:at + f.shape[1]] = f
        at += f.shape[1]
    return out


def _stack_columns_vjp(argnum, ans, args, kwargs):
    # piece k (argument k + 1): its columns of g, summed over the rows it was repeated on
    S, pieces = args[0], args[1:]
    shape = np.shape(pieces[argnum - 1])
    start = sum(math.prod(np.shape(p)[1:]) for p in pieces[:argnum - 1])
    stop = start + math.prod(shape[1:])

    def vjp(g):
        part = anp.reshape(g[:, start:stop], (S,) + tuple(shape[1:]))
        return part if shape[0] == S else anp.sum(part, axis=0, keepdims=True)
    return vjp


defvjp_argnum(stack_columns, _stack_columns_vjp)


# (zeta, its slots' blocks by first column) of the last zeta ``assemble`` built while autograd
# traced (a box: never changed in place), one reference replaced whole; the log joint of that
# zeta reads each slot's block from there, then lets it go.
ASSEMBLED: list = [None]


def assemble(S: int, pieces: list):
    """zeta [S, D] from the slots' blocks [S or 1, *free_shape] in layout order.

    Under autograd the blocks are remembered, so that the log joint of this zeta takes each
    slot's block from there instead of cutting it out again: the same values and gradients,
    with one or two fewer traced operations per slot."""
    zeta = stack_columns(S, *pieces)
    if isbox(zeta):
        starts, at = [], 0
        for p in pieces:
            starts.append(at)
            at += math.prod(np.shape(p)[1:])
        ASSEMBLED[0] = (zeta, dict(zip(starts, pieces)))
    return zeta


def cutter(offset: int, size: int, free_shape: tuple, rows: int | None = None):
    """zeta [S, D] -> this latent's block [S, *free_shape] (a param's: [1, *free_shape], its
    first row), with as few autograd ops as possible (each costs microseconds, which add up
    on small models)."""
    free = None if len(free_shape) == 1 else free_shape

    def plain(zeta):
        if type(zeta) is np.ndarray:    # no trace: the primitive's function, no wrapper
            return _block(zeta, rows, offset, offset + size, free)
        return block(zeta, rows, offset, offset + size, free)

    def cut(zeta):
        drawn = ASSEMBLED[0]
        if drawn is not None and drawn[0] is zeta:
            found = drawn[1].get(offset)
            want = anp.shape(zeta)[0] if rows is None else rows
            if found is not None and anp.shape(found) == (want,) + free_shape:
                return found
        rooted = ROOTED[0]
        if rooted is not None and rooted[0] is zeta:
            return _root_block(rooted, rows, offset, offset + size, free)
        return plain(zeta)
    return cut


# (zeta's box, its trace, {block: box}, {root node: (rows, start, stop)}) while ``trace_blocks``
# traces a function of zeta; None otherwise
ROOTED: list = [None]


def _root_block(rooted, rows, start: int, stop: int, free):
    """``block(zeta, rows, start, stop, free)`` as a root of the trace of its own, cut once."""
    zeta, trace, made, roots = rooted
    key = (rows, start, stop, free)
    box = made.get(key)
    if box is None:
        box = made[key] = new_box(_block(zeta._value, rows, start, stop, free), trace,
                                  _root())
        roots[box._node] = (rows, start, stop)
    return box


def _no_vjp(g):
    return ()


def _root() -> VJPNode:
    """``VJPNode.new_root()``, with one shared VJP function instead of a lambda made for each
    root: a root's VJP is never called by ``trace_blocks``' pass, which stops there."""
    node = VJPNode.__new__(VJPNode)
    node.parents, node.vjp = [], _no_vjp
    return node


def trace_blocks(fun, zeta: np.ndarray):
    """``(fun(zeta), vjp)`` as autograd's ``make_vjp``, vjp(g) -> the gradient in zeta
    [S, D], with each block that ``cutter`` cuts from zeta a root of the trace instead of a
    traced slice: no operation traced per latent, and its gradient written into zeta's by
    assignment. Values and gradients are ``make_vjp``'s (the other nodes are visited in
    the same order; a block's gradient was added to zeros). No warning when fun(zeta) does
    not depend on zeta: its gradient is zeros."""
    start = _root()
    roots: dict = {}
    # trace_stack.new_trace(), without its context manager's generator
    trace_stack.top += 1
    trace = trace_stack.top
    try:
        box = new_box(zeta, trace, start)
        ROOTED[0] = (box, trace, {}, roots)
        try:
            out = fun(box)
        finally:
            ROOTED[0] = None
        end = out._node if type(out) in box_types and out._trace == trace else None
    finally:
        trace_stack.top -= 1
    value = out if end is None else out._value

    def vjp(g):
        grad = np.zeros(zeta.shape if type(zeta) is np.ndarray else np.shape(zeta))
        if end is None:
            return grad
        outgrads = {end: (g, False)}
        whole = None
        for node in _toposort(end):
            outgrad = outgrads.pop(node)[0]
            where = roots.get(node)
            if where is not None:
                rows, a, b = where
                grad[:rows, a:b] = outgrad.reshape((outgrad.shape[0], b - a))
            elif node is start:      # zeta read other than by a cutter
                whole = outgrad
            else:
                for parent, ingrad in zip(node.parents, node.vjp(outgrad)):
                    outgrads[parent] = _add(outgrads.get(parent), ingrad)
        return grad if whole is None else grad + whole
    return value, vjp


def _toposort(end) -> list:
    """The nodes from ``end`` back, children before parents, in the very order of autograd's
    ``util.toposort`` (so gradients are added in the same order), as a list built in one
    loop rather than its generator with an ``attrgetter`` per node."""
    counts: dict = {}
    stack = [end]
    while stack:
        node = stack.pop()
        if node in counts:
            counts[node] += 1
        else:
            counts[node] = 1
            stack.extend(node.parents)
    order, childless = [], [end]
    while childless:
        node = childless.pop()
        order.append(node)
        for parent in node.parents:
            if counts[parent] == 1:
                childless.append(parent)
            else:
                counts[parent] -= 1
    return order


def _add(prev, g):
    """autograd's ``add_outgrads`` (prev: (sum so far, may it be changed in place) or None),
    for two arrays without its vector-space look-ups: the same sum, np.add."""
    if type(g) is np.ndarray:
        if prev is None:
            return g, False
        if type(prev[0]) is np.ndarray:
            return np.add(prev[0], g), True
    return add_outgrads(prev, g)
