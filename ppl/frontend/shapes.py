"""Shape rules on tuples of dims: broadcasting, matmul, indexing, slicing and reductions.

A dim is an int, a str (the name of the int data scalar it equals) or None (unknown until the
data is seen); see ``ppl/ir.py``. The rules are pure: a definite conflict raises ShapeError,
which carries an ``errors.py`` constructor; the checker adds the span with ``ShapeError.at``.
Anything that cannot be decided without data (a symbol against an int, two different symbols)
is allowed, so checking with data later (all dims ints) is where such conflicts are caught.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .. import errors
from ..source import Span

Dim = Union[int, str, None]
Shape = tuple[Dim, ...]

# The most axes a value may have: numpy broadcasts at most 32 axes (np.broadcast; beyond it
# some of its functions fail or crash), and the fit adds one, the draws'.
MAX_RANK = 31


class ShapeError(Exception):
    """A definite shape conflict; ``at(span)`` builds the located PplError."""

    def __init__(self, constructor, *args):
        super().__init__(*args)
        self.constructor = constructor
        self.arguments = args

    def at(self, span: Span) -> errors.PplError:
        """The PplError for this conflict, located at ``span``."""
        return self.constructor(span, *self.arguments)


def _known(d: Dim) -> bool:
    return isinstance(d, int)


def _conflict(x: Dim, y: Dim) -> bool:
    """True only when two dims are both ints and differ (everything else may still match)."""
    return _known(x) and _known(y) and x != y


def _broadcast_dim(x: Dim, y: Dim) -> Dim:
    """Broadcast two dims, numpy rules; None (not an error) when data could still decide."""
    if x == y:
        return x
    if x == 1:
        return y
    if y == 1:
        return x
    if _known(x) and _known(y):
        raise ValueError  # caller reports both whole shapes
    # A symbol or None against something else: if they match or one of them is 1, the result
    # is the other, so an int or a symbol against None/another unknown gives the known one.
    if x is None:
        return y
    if y is None:
        return x
    if _known(x) or _known(y):
        return x if _known(x) else y
    return None  # two different symbols


def broadcast(a: Shape, b: Shape, what: str = "shapes") -> Shape:
    """The numpy broadcast of ``a`` and ``b``.

    Raises
    ------
    ShapeError
        When two known ints on the same (right-aligned) axis differ and neither is 1.
    """
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    try:
        return tuple(_broadcast_dim(x, y) for x, y in zip(pa, pb))
    except ValueError:
        raise ShapeError(errors.shape_mismatch, tuple(a), tuple(b), what) from None


def broadcast_all(shapes: list[Shape], what: str = "shapes") -> Shape:
    """Broadcast several shapes together (``()`` for none)."""
    result: Shape = ()
    for shape in shapes:
        result = broadcast(result, shape, what)
    return result


def fits(shape: Shape, target: Shape) -> bool:
    """Whether ``shape`` broadcasts into ``target`` without enlarging it (when it may: symbols
    and unknowns are given the benefit of the doubt)."""
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s != t and s != 1 and _conflict(s, t):
            return False
    return True


def same(a: Shape, b: Shape) -> bool:
    """Whether two shapes may be equal (same rank, no conflicting known dims)."""
    return len(a) == len(b) and not any(_conflict(x, y) for x, y in zip(a, b))


def matmul(a: Shape, b: Shape) -> Shape:
    """The shape of ``a @ b`` under numpy's matmul rules (1-D operands promoted, batch axes
    broadcast).

    Raises
    ------
    ShapeError
        For a scalar operand, or inner dims that are known and differ.
    """
    mismatch = ShapeError(errors.shape_mismatch, tuple(a), tuple(b), "operands of '@'")
    if not a or not b:
        raise mismatch
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if _conflict(a2[-1], b2[-2]):
        raise mismatch
    try:
        batch = broadcast(a2[:-2], b2[:-2])
    except ShapeError:
        raise mismatch from None
    return batch + (a2[-2],) * (len(a) > 1) + (b2[-1],) * (len(b) > 1)


@dataclass(frozen=True)
class Slice:
    """A slice item with its bounds evaluated: an int, None for an open end, or UNKNOWN."""
    start: object = None
    stop: object = None


UNKNOWN = object()  # a slice bound that is only known once the data is seen
NEW_AXIS = object()  # a `newaxis` index item: a new axis of length 1


def slice_length(dim: Dim, item: Slice) -> Dim:
    """Length of ``x[start:stop]`` on an axis of size ``dim`` (Python slice semantics:
    negative bounds count from the end, bounds are clamped)."""
    if item.start is None and item.stop is None:
        return dim
    if not _known(dim) or item.start is UNKNOWN or item.stop is UNKNOWN:
        return None
    return len(range(*slice(item.start, item.stop).indices(dim)))


def index(shape: Shape, items: tuple) -> Shape:
    """The shape of ``x[items]``: each item a Slice, or the shape of an int index (``()`` for a
    scalar, which removes its axis; an array gathers, numpy fancy indexing). Axes beyond the
    items are kept whole.

    Index arrays (int scalars among them, once any array is present) broadcast together; numpy
    puts their broadcast shape where they stand when they are adjacent, else in front.
    NEW_AXIS items insert an axis of length 1 and, like slices, separate index arrays.

    Raises
    ------
    ShapeError
        Too many indices, or index arrays that do not broadcast.
    """
    used = sum(item is not NEW_AXIS for item in items)
    if used > len(shape):
        raise ShapeError(errors.bad_index,
                         f"too many indices ({used}) for a value of shape "
                         f"{errors.format_shape(shape)}")
    arrays = [i for i, item in enumerate(items)
              if not isinstance(item, Slice) and item is not NEW_AXIS]
    gathered = broadcast_all([items[i] for i in arrays], "shapes of the index arrays")
    kept: list[Dim] = []
    axis = 0
    for item in items:
        if item is NEW_AXIS:
            kept.append(1)
            continue
        if isinstance(item, Slice):
            kept.append(slice_length(shape[axis], item))
        axis += 1
    kept.extend(shape[used:])
    if not arrays:
        return tuple(kept)
    adjacent = arrays == list(range(arrays[0], arrays[-1] + 1))
    # Position of the gathered axes among the kept ones: the slices and new axes before them.
    at = sum(isinstance(item, Slice) or item is NEW_AXIS
             for item in items[:arrays[0]]) if adjacent else 0
    return tuple(kept[:at]) + gathered + tuple(kept[at:])


def normalize_axis(axis: int, ndim: int) -> int:
    """``axis`` in ``range(ndim)`` (negative axes count from the end).

    Raises
    ------
    ShapeError
        When ``axis`` is outside ``-ndim .. ndim-1``.
    """
    if not -ndim <= axis < ndim:
        raise ShapeError(errors.bad_axis, axis, ndim)
    return axis % ndim


def reduce(shape: Shape, axis: int | None) -> Shape:
    """Shape after reducing over all elements (``axis`` None: a scalar) or over one axis."""
    if axis is None:
        return ()
    k = normalize_axis(axis, len(shape))
    return tuple(shape[:k]) + tuple(shape[k + 1:])


def at_least(shape: Shape, ndim: int, what: str) -> Shape:
    """``shape`` unchanged if it has at least ``ndim`` axes.

    Raises
    ------
    ShapeError
        Otherwise (``too_few_dimensions`` naming ``what``).
    """
    if len(shape) < ndim:
        raise ShapeError(errors.too_few_dimensions, what, ndim, tuple(shape))
    return tuple(shape)
