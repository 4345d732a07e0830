"""Where a discrete latent's elements sit in each expression, so that they can be summed out one
element at a time (parallel enumeration, LANGUAGE.md "Discrete latents").

A discrete latent ``z`` of shape Z reaches an expression as a block of len(Z) axes of the
expression's shape; ``Tracker.position`` finds where that block starts. An operation that
mixes elements of ``z`` (a reduction over the block, a matrix product, a gather along it) is a
located error: after it, the elements are no longer conditionally independent. A scalar ``z``
has no elements to mix, so every expression may use it, and so may a ``z`` of one element
(``int[1]``, ``int[1, 1]``): ``z[0]`` and ``sum(z)`` are its one value.
"""
from __future__ import annotations

from .. import errors, ir
from ..functions import ELEMENTWISE, REDUCTION, lookup
from . import shapes

# The most values one term may be evaluated at: draws are multiplied by this (LANGUAGE.md).
MAX_ENUMERATION = 10 ** 6


def one_element(shape) -> bool:
    """Whether a discrete latent of ``shape`` has one element (a scalar, ``int[1]``): its
    terms keep no block of axes apart, and every expression may combine its value."""
    return all(isinstance(n, int) and n == 1 for n in shape)


class Tracker:
    """The discrete latents seen so far and, per let, where each one's block sits."""

    def __init__(self):
        self.discrete: dict[str, tuple] = {}    # name -> shape
        self.lets: dict[str, dict[str, int]] = {}

    def add_latent(self, name: str, shape) -> None:
        self.discrete[name] = tuple(shape)

    def reached(self, deps: frozenset, span) -> "str | None":
        """The one discrete latent among ``deps``, or None.

        Raises
        ------
        PplError : two discrete latents reach the same statement.
        """
        found = sorted(d for d in deps if d in self.discrete)
        if len(found) > 1:
            raise errors.two_discrete_latents(span, found[0], found[1])
        return found[0] if found else None

    def position(self, expr: ir.Expr, d: str) -> "int | None":
        """Start of ``d``'s block of axes in ``expr.shape`` (None if ``expr`` ignores ``d``)."""
        if d not in expr.deps:
            return None
        if one_element(self.discrete[d]):
            return 0  # nothing to keep apart
        return _Walk(self, d).pos(expr)

    def add_let(self, let: ir.Let, d: "str | None") -> None:
        if d is not None:
            self.lets[let.name] = {d: self.position(let.value, d)}

    def term_position(self, span, d: str, pieces, batch) -> int:
        """Where ``d``'s block sits in a term of batch shape ``batch``, from the pieces that
        broadcast into it (``(expr, its batch rank)``)."""
        if one_element(self.discrete[d]):
            return 0
        walk = _Walk(self, d)
        found = None
        for expr, rank in pieces:
            p = self.position(expr, d)
            if p is None:
                continue
            if p + len(self.discrete[d]) > rank:
                raise errors.reduction_across_discrete(expr.span, d, "an event of a "
                                                       "multivariate distribution gathers")
            found = walk.merge(found, p + len(batch) - rank, span)
        walk.check_block(found, batch, span)
        return found


class _Walk:
    def __init__(self, tracker: Tracker, d: str):
        self.tracker, self.d = tracker, d
        self.zshape = tracker.discrete[d]
        self.r = len(self.zshape)

    def merge(self, a, b, span):
        if a is None or b is None:
            return b if a is None else a
        if a != b:
            raise errors.reduction_across_discrete(span, self.d, "broadcasting lines up")
        return a

    def check_block(self, p, shape, span) -> None:
        block = tuple(shape[p:p + self.r])
        if len(block) != self.r or any(isinstance(x, int) and isinstance(y, int) and x != y
                                       for x, y in zip(block, self.zshape)):
            raise errors.reduction_across_discrete(span, self.d, "broadcasting repeats")

    def pos(self, e) -> "int | None":
        if self.d not in e.deps:
            return None
        if isinstance(e, ir.Ref):
            return 0 if e.name == self.d else self.tracker.lets[e.name][self.d]
        if isinstance(e, ir.Neg):
            return self.pos(e.operand)
        if isinstance(e, ir.BinOp):
            if e.op == "@":
                raise errors.reduction_across_discrete(e.span, self.d, "'@' multiplies")
            return self._broadcast(e, (e.left, e.right))
        if isinstance(e, ir.Call):
            return self._call(e)
        if isinstance(e, ir.Vector):
            found = None
            for item in e.items:
                p = self.pos(item)
                found = self.merge(found, None if p is None else p + 1, e.span)
            return found
        if isinstance(e, ir.Density):
            return self._density(e)
        if isinstance(e, ir.Index):
            return self._index(e)
        raise TypeError(f"enumeration: not an expression: {e!r}")

    def _broadcast(self, e, operands) -> int:
        found = None
        for operand in operands:
            p = self.pos(operand)
            if p is not None:
                found = self.merge(found, p + len(e.shape) - len(operand.shape), e.span)
        self.check_block(found, e.shape, e.span)
        return found

    def _call(self, e: ir.Call) -> int:
        axes = lookup(e.func).axes
        if axes == ELEMENTWISE:     # one argument, or several broadcast
            return self._broadcast(e, e.args)
        p = self.pos(e.args[0]) if len(e.args) == 1 else None
        if axes == REDUCTION and e.axis is not None and p is not None:
            axis = shapes.normalize_axis(e.axis, len(e.args[0].shape))
            if not p <= axis < p + self.r:
                return p - 1 if axis < p else p
        raise errors.reduction_across_discrete(e.span, self.d, f"'{e.func}' combines values")

    def _density(self, e: ir.Density) -> int:
        cls = e.dist.cls
        pieces = [(expr, len(expr.shape) - cls.param_event_dims.get(name, 0))
                  for name, expr in e.dist.params if isinstance(expr, ir.Expr.__args__)]
        if any(isinstance(expr, ir.Dist) and self.d in expr.deps for _, expr in e.dist.params):
            raise errors.reduction_across_discrete(e.span, self.d, "a mixture combines values")
        pieces.append((e.value, len(e.value.shape) - cls.event_dim))
        return self.tracker.term_position(e.span, self.d, pieces, e.shape)

    def _index(self, e: ir.Index) -> int:
        base = self.pos(e.base)
        dynamic = [i for i, item in enumerate(e.items)
                   if isinstance(item, ir.Expr.__args__) and self.d in item.deps]
        if base is not None:
            if dynamic:
                raise errors.reduction_across_discrete(e.span, self.d, "indexing gathers")
            return self._index_base(e, base)
        if len(dynamic) > 1 or any(isinstance(item, ir.NewAxisItem) for item in e.items):
            raise errors.reduction_across_discrete(e.span, self.d, "indexing gathers")
        return self._index_item(e, dynamic[0])

    def _index_base(self, e: ir.Index, p: int) -> int:
        """Indexing a value that carries the block: only whole slices may touch the block."""
        out = axis = 0
        new = None
        for item in e.items:
            if isinstance(item, ir.NewAxisItem):
                out += 1
                continue
            inside = p <= axis < p + self.r
            whole = isinstance(item, ir.SliceItem) and item.start is None and item.stop is None
            if inside and not whole or (not inside and not isinstance(item, ir.SliceItem)
                                        and item.shape):
                what = "slicing cuts" if isinstance(item, ir.SliceItem) else "indexing gathers"
                raise errors.reduction_across_discrete(e.span, self.d, what)
            if axis == p:
                new = out
            out += isinstance(item, ir.SliceItem)
            axis += 1
        return new if new is not None else out + (p - axis)

    def _index_item(self, e: ir.Index, at_item: int) -> int:
        """``mu[z]``: the block sits where numpy puts the gathered axes."""
        item = e.items[at_item]
        q = self.pos(item)
        arrays = [i for i, it in enumerate(e.items) if not isinstance(it, ir.SliceItem)]
        gathered = len(shapes.broadcast_all([e.items[i].shape for i in arrays]))
        adjacent = arrays == list(range(arrays[0], arrays[-1] + 1))
        at = sum(isinstance(it, ir.SliceItem) for it in e.items[:arrays[0]]) if adjacent else 0
        p = at + q + gathered - len(item.shape)
        self.check_block(p, e.shape, e.span)
        return p


def locate(tracker: Tracker, statement) -> "tuple[str, int] | None":
    """Record ``statement`` in ``tracker``; for a term (or let) reached by a discrete latent,
    that latent and where its block sits in the term's batch shape (the let's shape).

    Raises
    ------
    PplError : the statement mixes the elements of a discrete latent, or two reach it.
    """
    if isinstance(statement, ir.Latent) and statement.discrete:
        if tracker.reached(statement.dist.deps, statement.span) is not None:
            raise errors.two_discrete_latents(statement.span, statement.name,
                                              tracker.reached(statement.dist.deps, None))
        tracker.add_latent(statement.name, statement.shape)
        return statement.name, 0
    if isinstance(statement, ir.Let):
        d = tracker.reached(statement.value.deps, statement.span)
        tracker.add_let(statement, d)
        return None if d is None else (d, tracker.lets[statement.name][d])
    if isinstance(statement, ir.Factor):
        d = tracker.reached(statement.value.deps, statement.span)
        return None if d is None else (d, tracker.position(statement.value, d))
    if isinstance(statement, (ir.Latent, ir.Observe)):
        d = tracker.reached(statement.dist.deps, statement.span)
        if d is None:
            return None
        cls = statement.dist.cls
        shape = statement.shape if isinstance(statement, ir.Latent) else statement.value.shape
        batch = tuple(shape[:len(shape) - cls.event_dim])
        pieces = [(expr, len(expr.shape) - cls.param_event_dims.get(name, 0))
                  for name, expr in statement.dist.params if not isinstance(expr, ir.Dist)]
        if any(isinstance(expr, ir.Dist) and d in expr.deps for _, expr in statement.dist.params):
            pieces += [(e, len(e.shape) - 1) for _, sub in statement.dist.params
                       if isinstance(sub, ir.Dist) for _, e in sub.params]
        return d, tracker.term_position(statement.dist.span, d, pieces, batch)
    return None


def plan(model: ir.Model) -> dict[int, "tuple[str, int]"]:
    """``locate`` over a checked model: statement index -> (discrete latent, block start)."""
    tracker = Tracker()
    found = {}
    for i, statement in enumerate(model.statements):
        where = locate(tracker, statement)
        if where is not None:
            found[i] = where
    return found
