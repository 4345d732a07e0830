"""Built-in functions: each implementation against numpy/scipy on batched inputs (leading draw
axis, axis shifting), its shape rule against the shape it really returns, and its gradient."""
from __future__ import annotations

import autograd
import autograd.numpy
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
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
                                            ((2, 3), (2, 3))]]
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
    assert sorted(functions.FUNCTIONS) == sorted(names + list(REFERENCE_V2))
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
    # every argument named (dot's second too): check_grads alone differentiates in the first
    check_grads(lambda *a: f.impl(*a, axis=axis), modes=["rev"], order=1,
                argnum=tuple(range(len(args))))(*args)


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
                                              ("dot", ((3,), ())), ("dot", ((3,), (4,))),
                                              # the summed axis is not broadcast: dot(X, b)
                                              # with b [1] was b * sum(X, axis=-1) (found by
                                              # the shapes audit)
                                              ("dot", ((2, 3), (1,))), ("dot", ((2, 1), (3,)))])
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


@pytest.mark.parametrize("name", ["sum", "mean", "log_sum_exp"])
def test_a_reduction_of_a_scalar_per_draw_is_the_identity(name):
    # no axes to reduce: x itself, bit for bit (numpy's sum over axis=() adds into +0.0, so
    # -0.0 came back as 0.0 without functions._reduction's shortcut; mutation pass, session 41)
    x = np.array([-0.0, np.inf, -np.inf, 1.5, -2e300])
    got = functions.lookup(name).impl(x)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(x))


@pytest.mark.parametrize("name", ["mean", "log_sum_exp"])
@pytest.mark.parametrize("x", [np.array([3, -2, 0]), np.array([True, False])],
                         ids=["int", "bool"])
def test_a_real_reduction_of_an_int_scalar_per_draw_is_real(name, x):
    # the dtype rule says real (mean(int) is real, as over an axis): the shortcut for no
    # axes returned the int array itself (session 43)
    assert functions.lookup(name).dtype(("int",)) == "real"
    got = functions.lookup(name).impl(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, x.astype(np.float64))


def test_sum_of_an_int_scalar_per_draw_stays_int():
    x = np.array([3, -2, 0])
    assert functions.lookup("sum").impl(x).dtype == x.dtype


def test_log_sum_exp_of_a_matrix_of_no_elements_is_minus_inf():
    # a [0, 3] matrix (data of length 0) reduced over both of its axes: log 0 per draw, not
    # scipy's IndexError (special.log_sum_exp; mutation pass, session 41)
    got = functions.lookup("log_sum_exp").impl(np.zeros((2, 0, 3)))
    np.testing.assert_array_equal(got, [-np.inf, -np.inf])


# ----- language version 2 -------------------------------------------------------------------
# name -> reference on ONE draw's values (no draw axis); static arguments as plain ints.

def _gp(x, alpha, rho):
    return alpha ** 2 * np.exp(-np.subtract.outer(x, x) ** 2 / (2 * rho ** 2))


REFERENCE_V2 = {
    "lgamma": lambda x: scipy.special.gammaln(x),
    "digamma": lambda x: scipy.special.digamma(x),
    "erf": lambda x: scipy.special.erf(x),
    "Phi": lambda x: scipy.stats.norm.cdf(x),
    "inv_logit": lambda x: scipy.special.expit(x),
    "floor": lambda x: np.floor(x),
    "minimum": np.minimum,
    "maximum": np.maximum,
    "where": lambda c, a, b: np.where(c != 0, a, b),
    "concat": lambda a, b, axis=0: np.concatenate([a, b], axis=axis),
    "stack": lambda a, b, axis=0: np.stack([a, b], axis=axis),
    "reshape": lambda x, dims: np.reshape(x, dims),
    "eye": lambda k: np.eye(k),
    "cholesky": np.linalg.cholesky,
    "diag": lambda v: np.apply_along_axis(np.diag, -1, v) if v.ndim > 1 else np.diag(v),
    "diagonal": lambda a: np.diagonal(a, axis1=-2, axis2=-1),
    "outer": lambda u, v: np.multiply.outer(u, v),
    "solve": lambda a, b: scipy.linalg.solve(a, b),
    "log_det": lambda a: np.linalg.slogdet(a)[1],
    "gp_exp_quad_cov": _gp,
}


def _u(rng, s, shape):
    return rng.uniform(0.05, 0.95, (s, *shape))


def _spd(rng, s, k):
    a = rng.normal(size=(s, k, k))
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


# (case id, function, builder rng -> (batched args, static), axis). Arguments carry the draw
# axis: S for those that would depend on latents, 1 for data. Static arguments are plain.
V2_CASES = (
    [(f"{f}-{shape}", f, lambda rng, sh=shape: ((_u(rng, S, sh),), ()), None)
     for f in ["lgamma", "digamma", "erf", "Phi", "inv_logit"] for shape in [(), (3,)]]
    + [(f"{f}-{sa}-{sb}", f, lambda rng, sa=sa, sb=sb: ((_u(rng, S, sa), _u(rng, 1, sb)), ()),
        None)
       for f in ["minimum", "maximum"] for sa, sb in [((3,), (3,)), ((), (3,)), ((2, 3), (3,))]]
    + [("where-mixed", "where",
        lambda rng: ((rng.integers(0, 2, (1, 3)), _u(rng, S, ()), _u(rng, 1, (3,))), ()), None),
       ("where-matrix", "where",
        lambda rng: ((rng.integers(0, 2, (1, 2, 3)), _u(rng, S, (2, 3)), _u(rng, S, (3,))), ()),
        None)]
    # a condition of any nonzero int is true, a negative one too (np.where(c != 0, ...))
    + [("where-negative", "where",
        lambda rng: ((rng.integers(-2, 3, (1, 5)), _u(rng, S, (5,)), _u(rng, 1, (5,))), ()), None)]
    + [(f"concat-axis={ax}", "concat", lambda rng: ((_u(rng, S, (2, 3)), _u(rng, 1, (2, 3))), ()),
        ax) for ax in [None, 0, 1, -1]]
    + [(f"stack-axis={ax}", "stack", lambda rng: ((_u(rng, S, (3,)), _u(rng, 1, (3,))), ()), ax)
       for ax in [None, 0, 1, -1]]
    + [("reshape", "reshape", lambda rng: ((_u(rng, S, (6,)),), ((2, 3),)), None),
       ("reshape-flat", "reshape", lambda rng: ((_u(rng, S, (2, 3)),), ((6,),)), None),
       ("cholesky", "cholesky", lambda rng: ((_spd(rng, S, 3),), ()), None),
       ("cholesky-batch", "cholesky",
        lambda rng: ((_spd(rng, S * 2, 3).reshape(S, 2, 3, 3),), ()), None),
       ("diag", "diag", lambda rng: ((_u(rng, S, (3,)),), ()), None),
       ("diagonal", "diagonal", lambda rng: ((_u(rng, S, (3, 3)),), ()), None),
       ("outer", "outer", lambda rng: ((_u(rng, S, (3,)), _u(rng, 1, (2,))), ()), None),
       ("solve-vector", "solve", lambda rng: ((_spd(rng, S, 3), _u(rng, 1, (3,))), ()), None),
       ("solve-matrix", "solve", lambda rng: ((_spd(rng, 1, 3), _u(rng, S, (3, 2))), ()), None),
       ("log_det", "log_det", lambda rng: ((_spd(rng, S, 3),), ()), None),
       ("gp_exp_quad_cov", "gp_exp_quad_cov",
        lambda rng: ((_u(rng, 1, (4,)) * 5, _u(rng, S, ()) + 0.5, _u(rng, S, ()) + 0.5), ()),
        None),
       ("gp_exp_quad_cov-latent-x", "gp_exp_quad_cov",
        lambda rng: ((_u(rng, S, (4,)) * 5, _u(rng, S, ()) + 0.5, _u(rng, 1, ()) + 0.5), ()),
        None)]
)
V2_STATIC = {"reshape": 1, "eye": 0}
_V2_IDS = [c[0] for c in V2_CASES]


def _v2_call(name, args, static, axis):
    """Call the implementation with static values where the function takes them (as the
    compiler passes data: an int array with a draw axis of 1)."""
    pos = V2_STATIC.get(name)
    args = list(args)
    if pos is not None:
        args.insert(pos, np.asarray(static[0])[None])
    return functions.lookup(name).impl(*args, axis=axis)


def _v2_reference(name, args, static, axis):
    def one(s):
        per_draw = [a[min(s, len(a) - 1)] for a in args]
        kw = {} if axis is None else {"axis": axis}
        return REFERENCE_V2[name](*per_draw, *static, **kw)
    return np.stack([one(s) for s in range(S)])


def test_every_v2_function_has_a_reference():
    assert set(REFERENCE_V2) <= set(functions.FUNCTIONS)
    assert {c[1] for c in V2_CASES} | {"floor", "eye"} == set(REFERENCE_V2)


@pytest.mark.parametrize("case", V2_CASES, ids=_V2_IDS)
def test_v2_impl_matches_reference_per_draw(case, rng):
    _, name, build, axis = case
    args, static = build(rng)
    np.testing.assert_allclose(_v2_call(name, args, static, axis),
                               _v2_reference(name, args, static, axis), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", V2_CASES, ids=_V2_IDS)
def test_v2_shape_rule_matches_impl(case, rng):
    _, name, build, axis = case
    args, static = build(rng)
    f = functions.lookup(name)
    arg_shapes = [a.shape[1:] for a in args]
    if name in V2_STATIC:
        arg_shapes.insert(V2_STATIC[name], static[0])
    assert _v2_call(name, args, static, axis).shape == (S, *f.shape(tuple(arg_shapes), axis))


@pytest.mark.parametrize("case", V2_CASES, ids=_V2_IDS)
def test_v2_gradient(case, rng):
    # autograd's check_grads: reverse mode against central differences of every real argument
    # (where's 0/1 condition and static arguments are held fixed)
    _, name, build, axis = case
    args, static = build(rng)
    fixed = {0} if name == "where" else set()
    free = [i for i in range(len(args)) if i not in fixed]

    def f(*free_args):
        full = list(args)
        for i, v in zip(free, free_args):
            full[i] = v
        return _v2_call(name, full, static, axis)
    # every argument named: check_grads alone differentiates in the first only
    check_grads(f, modes=["rev"], order=1, argnum=tuple(range(len(free))))(
        *[args[i] for i in free])


def test_eye_and_floor(rng):
    np.testing.assert_array_equal(functions.lookup("eye").impl(np.array([3])), np.eye(3)[None])
    assert functions.lookup("eye").shape((3,), None) == (3, 3)
    assert functions.lookup("eye").shape(("K",), None) == ("K", "K")
    x = np.array([[-1.5, 0.0, 2.7]])
    got = functions.lookup("floor").impl(x)
    np.testing.assert_array_equal(got, [[-2, 0, 2]])
    assert got.dtype.kind == "i"
    # evaluate's exact pass hands Python numbers of any size in an object array
    exact = np.array([[-1.5, -0.5, 2.7, 2 ** 70, -(2 ** 70) - 1]], dtype=object)
    assert functions.lookup("floor").impl(exact).tolist() == [[-2, -1, 2, 2 ** 70, -(2 ** 70) - 1]]


@pytest.mark.parametrize("name", [n for n, f in functions.FUNCTIONS.items()
                                  if f.axes == functions.ELEMENTWISE])
def test_a_function_declared_elementwise_acts_element_by_element(name, rng):
    # the enumeration and --batch passes follow an axis through it on this word alone
    # (functions.Function.axes): element (i, j) of its result must depend on element (i, j)
    # of its arguments only
    f = functions.lookup(name)
    args = [rng.uniform(0.1, 0.9, size=(1, 3, 4)) for _ in range(f.arity)]
    whole = np.asarray(f.impl(*args))
    for i, j in np.ndindex(3, 4):
        alone = f.impl(*[a[:, i:i + 1, j:j + 1] for a in args])
        np.testing.assert_array_equal(np.asarray(alone)[:, 0, 0], whole[:, i, j])


def test_the_axis_kinds_are_declared_by_the_registry():
    kinds = {n: f.axes for n, f in functions.FUNCTIONS.items() if f.axes}
    assert {n for n, k in kinds.items() if k == functions.REDUCTION} == {
        "sum", "mean", "log_sum_exp"}
    assert {n for n, k in kinds.items() if k == functions.LAST_AXIS} == {
        "softmax", "log_softmax", "cumsum"}
    assert {n for n, k in kinds.items() if k == functions.ELEMENTWISE} >= {
        "exp", "floor", "minimum", "maximum", "where"}


def test_data_only_and_static_flags():
    assert [n for n, f in functions.FUNCTIONS.items() if f.data_only] == ["floor"]
    assert {n: f.static for n, f in functions.FUNCTIONS.items() if f.static} == {
        "reshape": (1,), "eye": (0,)}
    assert functions.lookup("concat").forms == ("a, b", "a, b, axis=INT")


@pytest.mark.parametrize("name, arg_dtypes, expected", [
    ("minimum", ("int", "int"), "int"), ("maximum", ("int", "real"), "real"),
    ("where", ("int", "int", "int"), "int"), ("where", ("int", "real", "int"), "real"),
    ("floor", ("real",), "int"), ("concat", ("int", "int"), "int"),
    ("reshape", ("int", "int"), "int"), ("eye", ("int",), "real"), ("lgamma", ("int",), "real"),
    ("log_det", ("real",), "real"), ("where", ("real", "int", "int"), "int"),
    ("outer", ("int", "int"), "int"), ("outer", ("int", "real"), "real"),
])
def test_v2_dtype_rule(name, arg_dtypes, expected):
    assert functions.lookup(name).dtype(arg_dtypes) == expected


@pytest.mark.parametrize("name, arg_shapes, axis, expected", [
    ("concat", (("N", 3), ("M", 3)), 0, (None, 3)),
    ("concat", (("N", 3), ("N", 2)), 1, ("N", 5)),
    ("stack", (("N",), ("N",)), -1, ("N", 2)),
    ("reshape", (("N", 3), ("K", 6)), None, ("K", 6)),
    ("cholesky", (("K", "K"),), None, ("K", "K")),
    ("diag", (("K",),), None, ("K", "K")),
    ("diagonal", (("G", "K", "K"),), None, ("G", "K")),
    ("outer", (("N",), ("K",)), None, ("N", "K")),
    ("solve", (("K", "K"), ("K",)), None, ("K",)),
    ("solve", (("K", "K"), ("K", "N")), None, ("K", "N")),
    ("log_det", (("G", "K", "K"),), None, ("G",)),
    ("gp_exp_quad_cov", (("N",), (), ()), None, ("N", "N")),
    ("where", (("N",), (), ("N",)), None, ("N",)),
    ("minimum", ((), ("N",)), None, ("N",)),
])
def test_v2_symbolic_shape_rules(name, arg_shapes, axis, expected):
    assert functions.lookup(name).shape(arg_shapes, axis) == expected


@pytest.mark.parametrize("name, arg_shapes, axis", [
    ("cholesky", ((3, 4),), None), ("cholesky", ((3,),), None), ("log_det", ((2, 3),), None),
    ("diagonal", ((2, 3),), None), ("diag", ((),), None), ("solve", ((3, 3), (4,)), None),
    ("solve", ((3, 3), (4, 2)), None), ("concat", ((2, 3), (2, 4)), 0),
    ("concat", ((2, 3), (3,)), 0), ("concat", ((), ()), 0), ("concat", ((3,), (3,)), 1),
    # ranks that differ where the axes left agree: refused, not an IndexError
    ("concat", ((3,), ()), 0), ("concat", ((2, 3), (2,)), 1),
    ("stack", ((3,), (4,)), 0), ("stack", ((3,), (3,)), 2), ("reshape", ((2, 3), (4, 2)), None),
    ("reshape", ((6,), (0, 6)), None), ("reshape", (("N",), (-1, 2)), None),
    ("outer", ((), (3,)), None),
    ("gp_exp_quad_cov", ((3, 2), (), ()), None), ("gp_exp_quad_cov", ((3,), (3,), ()), None),
    ("where", ((2,), (3,), ()), None), ("minimum", ((2,), (3,)), None),
])
def test_v2_shape_rule_refuses(name, arg_shapes, axis):
    with pytest.raises(ShapeError):
        functions.lookup(name).shape(arg_shapes, axis)


def _not_positive_definite(rng):
    a = _spd(rng, S, 3)
    a[1] = -a[1]                                  # the second draw's matrix is negative definite
    return a


@pytest.mark.parametrize("name", ["cholesky", "log_det", "solve"])
def test_bad_matrix_gives_non_finite_values_not_an_exception(name, rng):
    # cholesky: not positive definite; solve, log_det: singular. Only that draw is affected.
    a = _not_positive_definite(rng) if name == "cholesky" else _spd(rng, S, 3)
    if name != "cholesky":
        a[1] = 0.0
    args = (a, _u(rng, 1, (3,))) if name == "solve" else (a,)
    out = functions.lookup(name).impl(*args)
    assert not np.all(np.isfinite(out[1]))
    assert np.all(np.isfinite(out[[0, 2, 3]]))
    grads = autograd.grad(lambda m: autograd.numpy.sum(
        functions.lookup(name).impl(m, *args[1:])))(a)
    assert np.all(np.isfinite(grads[[0, 2, 3]]))
