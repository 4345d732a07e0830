"""Shape rules, table-driven: concrete rows are also checked against numpy itself."""
from __future__ import annotations

import numpy as np
import pytest

from ppl.errors import PplError, format_shape
from ppl.frontend import shapes
from ppl.frontend.shapes import NEW_AXIS, UNKNOWN, ShapeError, Slice


def _concrete(*shape_tuples) -> bool:
    return all(all(isinstance(d, int) for d in s) for s in shape_tuples)


BROADCAST = [
    ((), (), ()),
    ((3,), (), (3,)),
    ((3,), (1,), (3,)),
    ((2, 1), (3,), (2, 3)),
    ((4, 1, 3), (2, 1), (4, 2, 3)),
    (("N",), ("N",), ("N",)),
    (("N",), (1,), ("N",)),
    (("N",), (3,), (3,)),           # N could be 1 or 3: the known one
    ((3,), ("N",), (3,)),
    (("N",), ("K",), (None,)),      # two different symbols: undecided
    ((None,), (3,), (3,)),
    (("N",), (None,), ("N",)),
    ((None,), (None,), (None,)),
    (("N", 1), ("K",), ("N", "K")),
]


@pytest.mark.parametrize("a, b, expected", BROADCAST)
def test_broadcast(a, b, expected):
    assert shapes.broadcast(a, b) == expected
    assert shapes.broadcast(b, a) == expected
    if _concrete(a, b):
        assert expected == np.broadcast_shapes(a, b)


@pytest.mark.parametrize("a, b", [((3,), (4,)), ((2, 3), (3, 2)), ((2, "N"), (3, "N"))])
def test_broadcast_conflict_shows_both_shapes(a, b):
    with pytest.raises(ShapeError) as info:
        shapes.broadcast(a, b)
    error = info.value.at(None)
    assert isinstance(error, PplError)
    assert error.message == f"shapes do not match: {format_shape(a)} and {format_shape(b)}"


FITS = [
    ((), (3,), True),
    ((3,), (3,), True),
    ((1,), (3,), True),
    ((3,), (1,), False),            # would enlarge the target
    ((2, 3), (3,), False),          # more axes than the target
    ((3,), (2, 3), True),
    ((4,), (3,), False),
    (("N",), ("K",), True),         # undecided without data
    (("N",), (3,), True),
    ((None,), (3,), True),
    ((3,), (None,), True),
]


@pytest.mark.parametrize("shape, target, ok", FITS)
def test_fits(shape, target, ok):
    assert shapes.fits(shape, target) is ok


SAME = [
    ((3,), (3,), True),
    ((3,), (4,), False),
    ((3,), (3, 1), False),          # another rank is never the same shape
    ((), (3,), False),
    ((2, 3), (3,), False),
    (("N", 2), ("K", 2), True),     # undecided without data
    ((None,), (3,), True),
]


@pytest.mark.parametrize("a, b, ok", SAME)
def test_same(a, b, ok):
    assert shapes.same(a, b) is ok
    assert shapes.same(b, a) is ok


MATMUL = [
    ((3,), (3,), ()),
    ((2, 3), (3,), (2,)),
    ((3,), (3, 4), (4,)),
    ((2, 3), (3, 4), (2, 4)),
    ((5, 2, 3), (3, 4), (5, 2, 4)),
    ((5, 2, 3), (1, 3, 4), (5, 2, 4)),
    ((2, 3), (5, 3, 4), (5, 2, 4)),
    (("N", "K"), ("K",), ("N",)),
    (("N", "K"), ("D",), ("N",)),   # inner dims undecided: allowed
    (("N", None), ("Kc",), ("N",)),
    (("N", "D"), ("D", "C"), ("N", "C")),
]


@pytest.mark.parametrize("a, b, expected", MATMUL)
def test_matmul(a, b, expected):
    assert shapes.matmul(a, b) == expected
    if _concrete(a, b):
        assert expected == np.matmul(np.zeros(a), np.zeros(b)).shape


@pytest.mark.parametrize("a, b", [((), (3,)), ((3,), ()), ((3,), (4,)), ((2, 3), (4, 2)),
                                  ((2, 2, 3), (3, 3, 4))])
def test_matmul_conflict(a, b):
    with pytest.raises(ShapeError):
        shapes.matmul(a, b)


INDEX = [
    ((5,), ((),), ()),                                   # x[i]
    ((5, 4), ((),), (4,)),                               # X[i] keeps trailing axes
    ((5, 4), ((), ()), ()),                              # X[i, j]
    ((5, 4), (Slice(), ()), (5,)),                       # X[:, 0]
    ((5,), ((7,),), (7,)),                               # gather
    ((5,), ((7, 2),), (7, 2)),
    ((5, 4), ((7,),), (7, 4)),
    ((5, 4), ((7,), (7,)), (7,)),                        # two arrays broadcast
    ((5, 4), ((7,), ()), (7,)),
    ((5, 4), (Slice(), (7,)), (5, 7)),
    ((5, 4, 3), ((7,), Slice(), (7,)), (7, 4)),          # separated arrays go first (numpy)
    ((5, 4, 3), ((), Slice(), (7,)), (7, 4)),            # an int scalar counts as an array then
    ((5, 4, 3), (Slice(), (7,), ()), (5, 7)),
    ((5, 4, 3, 2), (Slice(), (7,), Slice(), ()), (7, 5, 3)),   # first array not first: still
    ((5, 4, 3, 2), (Slice(), (7,), Slice(), (7,)), (7, 5, 3)),  # in front when separated
    ((10,), (Slice(1, None),), (9,)),
    ((10,), (Slice(None, -1),), (9,)),
    ((10,), (Slice(-3, None),), (3,)),
    ((10,), (Slice(2, 20),), (8,)),                      # clamped
    ((10,), (Slice(8, 2),), (0,)),
    (("T",), (Slice(),), ("T",)),
    (("T",), (Slice(1, None),), (None,)),
    ((10,), (Slice(UNKNOWN, None),), (None,)),
    ((None,), (Slice(0, 3),), (None,)),
    (("N", "K"), ((), Slice()), ("K",)),
    (("N",), (("M",),), ("M",)),
    ((10,), (Slice(0, UNKNOWN),), (None,)),               # x[0:n], n not known yet
    ((5,), (NEW_AXIS, Slice()), (1, 5)),                 # x[newaxis, :]: not an index
    ((5,), ((), NEW_AXIS), (1,)),
    ((5, 4), (NEW_AXIS, (7,)), (1, 7, 4)),               # the gather after the new axis
]


def _known_item(item) -> bool:
    if item is NEW_AXIS:
        return True
    if isinstance(item, Slice):
        return UNKNOWN not in (item.start, item.stop)
    return _concrete(item)


def _numpy_item(item):
    if item is NEW_AXIS:
        return np.newaxis
    if isinstance(item, Slice):
        return slice(item.start, item.stop)
    return np.zeros(item, dtype=int)


@pytest.mark.parametrize("shape, items, expected", INDEX)
def test_index(shape, items, expected):
    assert shapes.index(shape, items) == expected
    if _concrete(shape) and all(_known_item(i) for i in items):
        assert expected == np.zeros(shape)[tuple(_numpy_item(i) for i in items)].shape


@pytest.mark.parametrize("shape, items", [((5,), ((), ())), ((), ((),)),
                                          ((5, 4), ((3,), (2,)))])
def test_index_errors(shape, items):
    with pytest.raises(ShapeError):
        shapes.index(shape, items)


REDUCE = [
    ((3, 4), None, ()),
    ((3, 4), 0, (4,)),
    ((3, 4), 1, (3,)),
    ((3, 4), -1, (3,)),
    ((3, 4), -2, (4,)),
    (("N", "K"), 0, ("K",)),
    ((), None, ()),
]


@pytest.mark.parametrize("shape, axis, expected", REDUCE)
def test_reduce(shape, axis, expected):
    assert shapes.reduce(shape, axis) == expected
    if _concrete(shape):
        assert expected == np.sum(np.zeros(shape), axis=axis).shape


@pytest.mark.parametrize("shape, axis", [((3, 4), 2), ((3, 4), -3), ((), 0)])
def test_reduce_bad_axis(shape, axis):
    with pytest.raises(ShapeError) as info:
        shapes.reduce(shape, axis)
    assert "out of range" in info.value.at(None).message


def test_at_least_names_what_is_short():
    assert shapes.at_least((3,), 1, "x") == (3,)
    with pytest.raises(ShapeError) as info:
        shapes.at_least((), 1, "the argument of 'softmax'")
    assert info.value.at(None).message == ("the argument of 'softmax' must have at least "
                                           "1 dimension(s); found scalar")
