"""Built-in functions: each implementation against numpy/scipy on batched inputs (leading draw
axis, axis shifting), its shape rule against the shape it really returns, and its gradient."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from autograd.test_util import check_grads

from ppl import functions
from ppl.frontend.shapes import ShapeError

S = 4  # draws: the leading axis every run-time value carries


def _sum_last(a, b):
    return np.sum(a * b, axis=-1)


# name -> reference on ONE draw's value (no draw axis): f(*args, axis)
REFERENCE = {
    "exp": lambda x, axis: np.exp(x),
    "log": lambda x, axis: np.log(x),
    "log1p": lambda x, axis: np.log1p(x),
    "expm1": lambda x, axis: np.expm1(x),
    "sqrt": lambda x, axis: np.sqrt(x),
    "square": lambda x, axis: np.square(x),
    "abs": lambda x, axis: np.abs(x),
    "sigmoid": lambda x, axis: scipy.special.expit(x),
    "logit": lambda x, axis: scipy.special.logit(x),
    "softplus": lambda x, axis: np.log1p(np.exp(x)),
    "tanh": lambda x, axis: np.tanh(x),
    "sin": lambda x, axis: np.sin(x),
    "cos": lambda x, axis: np.cos(x),
    "sum": lambda x, axis: np.sum(x, axis=axis),
    "mean": lambda x, axis: np.mean(x, axis=axis),
    "log_sum_exp": lambda x, axis: scipy.special.logsumexp(x, axis=axis),
    "dot": lambda a, b, axis: _sum_last(a, b),
    "softmax": lambda x, axis: scipy.special.softmax(x, axis=-1),
    "log_softmax": lambda x, axis: scipy.special.log_softmax(x, axis=-1),
    "cumsum": lambda x, axis: np.cumsum(x, axis=-1),
    "transpose": lambda x, axis: np.swapaxes(x, -1, -2) if np.ndim(x) >= 2 else x,
}

ELEMENTWISE = ["exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sigmoid", "logit",
               "softplus", "tanh", "sin", "cos"]
# (function, argument shapes without the draw axis, axis)
CASES = (
    [(f, shape, None) for f in ELEMENTWISE for shape in [(), (3,), (2, 3)]]
    + [(f, shape, axis) for f in ["sum", "mean", "log_sum_exp"]
       for shape, axis in [((), None), ((3,), None), ((3,), 0), ((3,), -1), ((2, 3), None),
                           ((2, 3), 0), ((2, 3), 1), ((2, 3), -1), ((2, 3), -2),
                           ((2, 3, 4), 1)]]
    + [(f, shape, None) for f in ["softmax", "log_softmax", "cumsum"]
       for shape in [(3,), (2, 3)]]
    + [("dot", shapes, None) for shapes in [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)),
                                            ((2, 3), (2, 3)), ((2, 3), (1,))]]
    + [("transpose", shape, None) for shape in [(), (3,), (2, 3), (4, 2, 3)]]
)


def _args(name, shape, rng):
    """Batched arguments: the first with S draws, a second (dot) with one, like data."""
    arg_shapes = shape if isinstance(shape[0] if shape else None, tuple) else (shape,)
    # (0.05, 0.95) is inside every function's domain (log, sqrt, logit).
    return tuple(rng.uniform(0.05, 0.95, size=(S if i == 0 else 1, *s))
                 for i, s in enumerate(arg_shapes)), arg_shapes


def _id(case):
    return f"{case[0]}-{case[1]}-axis={case[2]}"


def test_every_language_function_is_registered():
    names = ("exp log log1p expm1 sqrt square abs sigmoid logit softplus tanh sin cos sum mean "
             "dot softmax log_softmax log_sum_exp cumsum transpose").split()
    assert sorted(functions.FUNCTIONS) == sorted(names)
    assert set(REFERENCE) == set(names)
    assert all(functions.lookup(n).name == n for n in names)
    assert functions.lookup("Normal") is None


@pytest.mark.parametrize("case", CASES, ids=map(_id, CASES))
def test_impl_matches_numpy_per_draw(case, rng):
    name, shape, axis = case
    f = functions.lookup(name)
    args, arg_shapes = _args(name, shape, rng)
    result = f.impl(*args, axis=axis)
    expected = np.stack([REFERENCE[name](*(a[min(s, len(a) - 1)] for a in args), axis)
                         for s in range(S)])
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=map(_id, CASES))
def test_shape_rule_matches_impl(case, rng):
    name, shape, axis = case
    f = functions.lookup(name)
    args, arg_shapes = _args(name, shape, rng)
    assert f.impl(*args, axis=axis).shape == (S, *f.shape(arg_shapes, axis))


@pytest.mark.parametrize("case", CASES, ids=map(_id, CASES))
def test_gradient(case, rng):
    name, shape, axis = case
    f = functions.lookup(name)
    args, _ = _args(name, shape, rng)
    check_grads(lambda *a: f.impl(*a, axis=axis), modes=["rev"], order=1)(*args)


DTYPES = [
    ("exp", ("int",), "real"), ("sqrt", ("int",), "real"), ("mean", ("int",), "real"),
    ("sum", ("int",), "int"), ("cumsum", ("int",), "int"), ("abs", ("int",), "int"),
    ("square", ("int",), "int"), ("sum", ("real",), "real"), ("transpose", ("int",), "int"),
    ("dot", ("int", "int"), "real"), ("softmax", ("int",), "real"),
]


@pytest.mark.parametrize("name, arg_dtypes, expected", DTYPES)
def test_dtype_rule(name, arg_dtypes, expected):
    assert functions.lookup(name).dtype(arg_dtypes) == expected


@pytest.mark.parametrize("name, arg_shapes", [("softmax", ((),)), ("log_softmax", ((),)),
                                              ("cumsum", ((),)), ("dot", ((), (3,))),
                                              ("dot", ((3,), ())), ("dot", ((3,), (4,)))])
def test_shape_rule_refuses(name, arg_shapes):
    with pytest.raises(ShapeError):
        functions.lookup(name).shape(arg_shapes, None)


def test_symbolic_shape_rules():
    assert functions.lookup("sum").shape((("N", "K"),), 0) == ("K",)
    assert functions.lookup("transpose").shape((("N", "K"),), None) == ("K", "N")
    assert functions.lookup("dot").shape((("N", "K"), ("K",)), None) == ("N",)


def test_keywords_and_arity():
    assert functions.lookup("sum").keywords == {"axis"}
    assert functions.lookup("exp").keywords == frozenset()
    assert functions.lookup("dot").arity == 2
    assert functions.lookup("sum").forms == ("x", "x, axis=INT")


def test_softplus_and_log_softmax_are_stable():
    x = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_allclose(functions.lookup("softplus").impl(x), [[0.0, np.log(2), 1000.0]])
    log_p = functions.lookup("log_softmax").impl(x)
    assert np.all(np.isfinite(log_p[0, 1:]))
    np.testing.assert_allclose(log_p[0, 2], 0.0)
    np.testing.assert_allclose(functions.lookup("softmax").impl(x).sum(axis=-1), [1.0])
    np.testing.assert_allclose(functions.lookup("log_sum_exp").impl(x), [1000.0])
