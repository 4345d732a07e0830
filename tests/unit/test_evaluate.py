"""Tests for ppl.evaluate: every expression form against plain numpy, draw by draw.

The reference for a batched result ``[S, *shape]`` is numpy applied to each draw's values
separately (stacked); an unbatched (data-only) result must equal numpy on the data itself.
IR is built by hand here so these tests exercise evaluate alone; test_data.py and the text
model tests at the end go through parse and check.
"""
from __future__ import annotations

import numpy as np
import pytest
import autograd.numpy as anp
from autograd import grad
from autograd.test_util import check_grads

from ppl import ir
from ppl.evaluate import compile_expr, data_lets, evaluate_data, general_matmul

S = 5  # draws; distinct from every event dim below so a misplaced draw axis shows up


# ----- hand-built IR -----------------------------------------------------------------------

def latent(name, shape):
    return ir.Ref(name, "latent", tuple(shape), "real", frozenset({name}))


def data(name, shape, dtype="real"):
    return ir.Ref(name, "data", tuple(shape), dtype)


def const(value):
    return ir.Const(value, (), "int" if isinstance(value, int) else "real")


def binop(op, left, right):
    dummy_l, dummy_r = np.ones(left.shape), np.ones(right.shape)
    shape = np.matmul(dummy_l, dummy_r).shape if op == "@" else np.broadcast_shapes(
        left.shape, right.shape)
    # the checker's rule (check.py, _binary): int only for + - * @ of ints; ** and / are real
    dtype = "int" if left.dtype == right.dtype == "int" and op in ("+", "-", "*", "@") else "real"
    return ir.BinOp(op, left, right, shape, dtype, left.deps | right.deps)


def index(base, items, data_env):
    """``base[items]``; each item an int, ('slice', start, stop) or the name of an int array."""
    ir_items, key = [], []
    for item in items:
        if isinstance(item, int):
            ir_items.append(const(item))
            key.append(item)
        elif isinstance(item, tuple):
            _, start, stop = item
            ir_items.append(ir.SliceItem(None if start is None else const(start),
                                         None if stop is None else const(stop)))
            key.append(slice(start, stop))
        else:
            ir_items.append(data(item, np.shape(data_env[item]), "int"))
            key.append(data_env[item])
    shape = np.ones(base.shape)[tuple(key)].shape
    return ir.Index(base, tuple(ir_items), shape, base.dtype, base.deps)


def call(func, args, shape, axis=None):
    deps = frozenset().union(*(a.deps for a in args))
    return ir.Call(func, tuple(args), axis, tuple(shape), "real", deps)


def batched_values(names_shapes, rng, positive=False):
    values = {}
    for name, shape in names_shapes.items():
        draw = rng.normal(size=(S,) + tuple(shape))
        values[name] = np.abs(draw) + 0.5 if positive else draw
    return values


def per_draw(fn, env, data_env):
    """numpy reference: ``fn(values)`` on each draw's values (data has no draw axis)."""
    out = []
    for s in range(S):
        values = dict(data_env)
        values.update({name: value[s] for name, value in env.items()})
        out.append(fn(values))
    return np.stack(out)


# ----- elementwise --------------------------------------------------------------------------

OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}
SHAPE_PAIRS = [((), ()), ((), (3,)), ((3,), ()), ((2, 3), (3,)), ((3,), (2, 3)),
               ((2, 1), (1, 3)), ((4, 2, 3), (2, 1))]


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("left_shape,right_shape", SHAPE_PAIRS)
@pytest.mark.parametrize("kinds", [("latent", "latent"), ("latent", "data"),
                                   ("data", "latent"), ("data", "data")])
def test_binary_op_matches_numpy(op, left_shape, right_shape, kinds, rng):
    make = {"latent": latent, "data": data}
    left, right = make[kinds[0]]("a", left_shape), make[kinds[1]]("b", right_shape)
    values = batched_values({"a": left_shape, "b": right_shape}, rng, positive=True)
    env = {n: values[n] for n, k in zip("ab", kinds) if k == "latent"}
    data_env = {n: values[n][0] for n, k in zip("ab", kinds) if k == "data"}
    expr = binop(op, left, right)
    expected = per_draw(lambda v: OPS[op](v["a"], v["b"]), env, data_env)
    if not env:
        np.testing.assert_allclose(evaluate_data(expr, data_env), expected[0])
        expected = expected[:1]
    result = compile_expr(expr, data_env)(env)
    np.testing.assert_allclose(result, expected)


def test_lift_puts_singleton_axes_after_draw_axis(rng):
    # a latent scalar [S] against data [N] must become [S, 1] against [1, N], giving [S, N]
    mu, x = rng.normal(size=S), rng.normal(size=4)
    result = compile_expr(binop("+", latent("mu", ()), data("x", (4,))), {"x": x})({"mu": mu})
    np.testing.assert_allclose(result, mu[:, None] + x[None, :])


def test_neg_matches_numpy(rng):
    a = rng.normal(size=(S, 3))
    expr = ir.Neg(latent("a", (3,)), (3,), "real", frozenset({"a"}))
    np.testing.assert_allclose(compile_expr(expr, {})({"a": a}), -a)


def test_const_has_leading_axis_of_one():
    assert compile_expr(const(2), {})({}).shape == (1,)
    assert compile_expr(const(2), {})({}).dtype == np.int64
    assert compile_expr(const(2.5), {})({}).dtype == np.float64


def test_int_power_with_negative_exponent_is_real():
    expr = binop("**", data("n", (), "int"), ir.Const(-1, (), "int"))
    assert evaluate_data(expr, {"n": np.array(2)}) == 0.5


def test_int_arithmetic_stays_int():
    value = evaluate_data(binop("+", data("n", (2,), "int"), const(1)), {"n": np.array([1, 2])})
    assert value.dtype == np.int64


# ----- matmul -------------------------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((4, 3), (3,)), ((3,), (3, 2)), ((4, 3), (3, 2)),
                 ((2, 4, 3), (3, 2)), ((4, 3), (2, 3, 2)), ((2, 4, 3), (3,)), ((3,), (2, 3, 2)),
                 ((2, 4, 3), (2, 3, 2))]


@pytest.mark.parametrize("left_shape,right_shape", MATMUL_SHAPES)
@pytest.mark.parametrize("kinds", [("latent", "latent"), ("latent", "data"),
                                   ("data", "latent"), ("data", "data")])
def test_matmul_matches_numpy(left_shape, right_shape, kinds, rng):
    make = {"latent": latent, "data": data}
    expr = binop("@", make[kinds[0]]("a", left_shape), make[kinds[1]]("b", right_shape))
    values = batched_values({"a": left_shape, "b": right_shape}, rng)
    env = {n: values[n] for n, k in zip("ab", kinds) if k == "latent"}
    data_env = {n: values[n][0] for n, k in zip("ab", kinds) if k == "data"}
    expected = per_draw(lambda v: v["a"] @ v["b"], env, data_env)
    result = compile_expr(expr, data_env)(env)
    np.testing.assert_allclose(result, expected[: result.shape[0]], rtol=1e-12)


@pytest.mark.parametrize("left_shape,right_shape", MATMUL_SHAPES)
def test_general_matmul_matches_numpy(left_shape, right_shape, rng):
    a = rng.normal(size=(S,) + left_shape)
    b = rng.normal(size=(S,) + right_shape)
    expected = np.stack([a[s] @ b[s] for s in range(S)])
    np.testing.assert_allclose(general_matmul(a, b, len(left_shape), len(right_shape)), expected)


def test_regression_fast_path_agrees_with_general_matmul(rng):
    x, beta = rng.normal(size=(50, 4)), rng.normal(size=(S, 4))
    fast = compile_expr(binop("@", data("X", (50, 4)), latent("beta", (4,))), {"X": x})
    general = general_matmul(x[None], beta, 2, 1)
    assert fast({"beta": beta}).shape == (S, 50)
    np.testing.assert_allclose(fast({"beta": beta}), general, rtol=1e-12)


# ----- indexing -----------------------------------------------------------------------------

INDEX_DATA = {"idx": np.array([2, 0, 2]), "idx2": np.array([1, 0, 1]),
              "grid": np.array([[0, 1], [2, 2]]), "neg": np.array([-1, -3])}
INDEX_CASES = [  # (base shape, items)
    ((4,), [1]), ((4,), [-1]), ((3, 4), [1, 2]), ((3, 4), ["idx"]), ((3, 4), ["idx", 0]),
    ((3, 4), [("s", None, None), 0]), ((4,), [("s", 1, None)]), ((4,), [("s", None, -1)]),
    ((3, 4), [("s", 1, 3)]), ((3, 4), ["neg"]), ((3, 4), ["grid"]), ((3, 4), ["idx", "idx2"]),
    # numpy's rule: advanced indices separated by a slice put their axes first
    ((3, 4, 2), ["idx", ("s", None, None), 0]), ((3, 4, 3), [0, ("s", None, None), "idx"]),
    ((3, 4, 3), ["idx", ("s", None, None), "idx2"]), ((3, 4, 3), ["grid", ("s", 1, 3), 1]),
    ((3, 4, 2), [("s", None, None), "idx", 1]), ((3, 3, 2), ["idx", "idx2"]),
]


@pytest.mark.parametrize("base_shape,items", INDEX_CASES)
@pytest.mark.parametrize("batched", [True, False])
def test_index_matches_numpy(base_shape, items, batched, rng):
    key = tuple(INDEX_DATA[i] if isinstance(i, str) else slice(i[1], i[2])
                if isinstance(i, tuple) else i for i in items)
    x = rng.normal(size=(S,) + base_shape)
    data_env = dict(INDEX_DATA)
    if batched:
        base, env = latent("x", base_shape), {"x": x}
    else:
        base, env = data("x", base_shape), {}
        data_env["x"] = x[0]
    expr = index(base, items, data_env)
    expected = per_draw(lambda v: v["x"][key], env, data_env)
    result = compile_expr(expr, data_env)(env)
    assert result.shape == expected[: result.shape[0]].shape
    np.testing.assert_array_equal(result, expected[: result.shape[0]])


def test_slice_bounds_may_be_data_expressions(rng):
    x = rng.normal(size=(S, 6))
    n = data("n", (), "int")
    expr = ir.Index(latent("x", (6,)), (ir.SliceItem(n, binop("+", n, const(2))),),
                    (2,), "real", frozenset({"x"}))
    np.testing.assert_array_equal(compile_expr(expr, {"n": np.array(3)})({"x": x}), x[:, 3:5])


# ----- calls --------------------------------------------------------------------------------

@pytest.mark.parametrize("func,shape,axis,reference", [
    ("exp", (3,), None, np.exp),
    ("sum", (2, 3), None, np.sum),
    ("sum", (2, 3), 0, lambda v: np.sum(v, axis=0)),
    ("mean", (2, 3), -1, lambda v: np.mean(v, axis=-1)),
    ("transpose", (2, 3), None, np.transpose),
])
def test_call_matches_numpy(func, shape, axis, reference, rng):
    x = rng.normal(size=(S,) + shape)
    out_shape = np.shape(reference(x[0]))
    expr = call(func, [latent("x", shape)], out_shape, axis)
    np.testing.assert_allclose(compile_expr(expr, {})({"x": x}),
                               np.stack([reference(v) for v in x]))


def test_two_argument_call_gets_lined_up_arguments(rng):
    a, b = rng.normal(size=(S, 3)), rng.normal(size=(2, 3))
    expr = call("dot", [latent("a", (3,)), data("b", (2, 3))], (2,))
    np.testing.assert_allclose(compile_expr(expr, {"b": b})({"a": a}),
                               np.stack([b @ v for v in a]))


# ----- constants, data, lets ----------------------------------------------------------------

class CountingDict(dict):
    reads = 0

    def __getitem__(self, key):
        CountingDict.reads += 1
        return super().__getitem__(key)


def test_data_subtrees_are_evaluated_once_at_compile_time(rng):
    data_env = CountingDict(x=rng.normal(size=3))
    subtree = call("exp", [binop("*", data("x", (3,)), const(2.0))], (3,))
    fn = compile_expr(binop("+", latent("mu", ()), subtree), data_env)
    reads = CountingDict.reads
    mu = rng.normal(size=S)
    for _ in range(3):
        result = fn({"mu": mu})
    assert CountingDict.reads == reads
    np.testing.assert_allclose(result, mu[:, None] + np.exp(2 * data_env["x"]))


def test_evaluate_data_has_no_draw_axis():
    value = evaluate_data(binop("*", data("x", (2, 3)), const(2)), {"x": np.ones((2, 3))})
    assert value.shape == (2, 3)


def test_evaluate_data_refuses_latent_expressions():
    with pytest.raises(ValueError):
        evaluate_data(latent("mu", ()), {})


def test_data_lets_are_computed_in_order():
    x = data("x", (3,))
    first = ir.Let("a", binop("*", x, const(2.0)), False)
    second = ir.Let("b", binop("+", ir.Ref("a", "let", (3,), "real"), const(1.0)), False)
    latent_let = ir.Let("c", binop("+", latent("mu", ()), x), True)
    model = ir.Model((first, second, latent_let), source=None)
    lets = data_lets(model, {"x": np.array([1.0, 2.0, 3.0])})
    assert list(lets) == ["a", "b"]
    np.testing.assert_allclose(lets["b"], [3.0, 5.0, 7.0])


def test_data_lets_in_two_threads_leave_the_warning_filters_as_they_were(monkeypatch):
    # data_let held warnings.catch_warnings(), which saves and restores the process's filters:
    # two threads interleaved (T1 in, T2 in, T1 out, T2 out) left T1's 'ignore
    # RuntimeWarning' set for the whole process; np.errstate is per thread (found by the
    # outdir audit)
    import threading
    import warnings
    from ppl import evaluate
    inside, first_done = threading.Barrier(2), threading.Event()
    real = evaluate.evaluate_data

    def interleaved(expr, env):
        inside.wait(timeout=10)                 # both threads are inside data_let
        if threading.current_thread().name == "second":
            first_done.wait(timeout=10)         # the first leaves data_let before the second
        return real(expr, env)
    monkeypatch.setattr(evaluate, "evaluate_data", interleaved)
    let = ir.Let("a", binop("*", data("x", (3,)), const(2.0)), False)
    env = {"x": np.array([1.0, 2.0, 3.0])}
    with warnings.catch_warnings():             # the test's own filters, put back after it
        before = list(warnings.filters)

        def first():
            evaluate.data_let(let, env)
            first_done.set()
        threads = [threading.Thread(target=first, name="first"),
                   threading.Thread(target=evaluate.data_let, args=(let, env), name="second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert warnings.filters == before


# ----- gradients ----------------------------------------------------------------------------

def test_gradient_through_compiled_expression_matches_finite_differences(rng):
    # sum(exp(X @ beta) * tau[idx] + beta[1:]) exercises the fast matmul, a call, lifting,
    # a gather and a slice; check_grads compares reverse mode with finite differences.
    x = rng.normal(size=(6, 3)) * 0.3
    idx = np.array([0, 2, 1, 2, 0, 1])
    data_env = {"X": x, "idx": idx}
    beta, tau = latent("beta", (3,)), latent("tau", (3,))
    eta = call("exp", [binop("@", data("X", (6, 3)), beta)], (6,))
    gathered = index(tau, ["idx"], data_env)
    total = binop("+", binop("*", eta, gathered), call("sum", [index(beta, [("s", 1, None)],
                                                                      data_env)], ()))
    fn = compile_expr(call("sum", [total], ()), data_env)

    def f(flat):
        return anp.sum(fn({"beta": flat[:, :3], "tau": flat[:, 3:]}))

    flat = rng.normal(size=(S, 6))
    check_grads(f, modes=["rev"], order=1)(flat)
    assert grad(f)(flat).shape == flat.shape


def test_regression_fast_path_does_not_use_the_general_matmul(rng, monkeypatch):
    def refuse(*args):
        raise AssertionError("general_matmul used for data matrix @ batched vector")
    monkeypatch.setattr("ppl.evaluate.general_matmul", refuse)
    x, beta = rng.normal(size=(7, 4)), rng.normal(size=(S, 4))
    fn = compile_expr(binop("@", data("X", (7, 4)), latent("beta", (4,))), {"X": x})
    np.testing.assert_allclose(fn({"beta": beta}), beta @ x.T)


# ----- text models (through parse and check) ------------------------------------------------

TEXT_MODEL = """\
data N: int
data K: int
data X: real[N, K]
data g: int[N]
let Z = (X - mean(X, axis=0)) / 2
sample beta: real[K] ~ Normal(0, 1)
sample alpha: real[3] ~ Normal(0, 1)
sample tau ~ HalfNormal(1)
let eta = X @ beta + alpha[g] * tau
let first = Z[:, 0] * beta[1:2]
let rows = sum(Z[g, 1:] ** 2, axis=1) - tau
"""


def test_text_model_lets_match_numpy(rng):
    from ppl.frontend.check import check
    from ppl.frontend.parse import parse

    x, g = rng.normal(size=(6, 3)), np.array([0, 2, 1, 1, 0, 2])
    model = check(parse(TEXT_MODEL), {"N": 6, "K": 3})
    data_env = {"N": np.array(6), "K": np.array(3), "X": x, "g": g}
    data_env.update(data_lets(model, data_env))
    z = (x - x.mean(axis=0)) / 2
    np.testing.assert_allclose(data_env["Z"], z)
    env = {"beta": rng.normal(size=(S, 3)), "alpha": rng.normal(size=(S, 3)),
           "tau": np.abs(rng.normal(size=S))}
    expected = {
        "eta": lambda v: x @ v["beta"] + v["alpha"][g] * v["tau"],
        "first": lambda v: z[:, 0] * v["beta"][1:2],
        "rows": lambda v: np.sum(z[g, 1:] ** 2, axis=1) - v["tau"],
    }
    for name, reference in expected.items():
        fn = compile_expr(model.lets[name].value, data_env)
        np.testing.assert_allclose(fn(env), per_draw(reference, env, {}), err_msg=name)


def test_folding_data_prints_no_numpy_warning():
    # where(x > 0, log(x), 0) computes log(x) at every x: numpy's 'invalid value encountered
    # in log' printed, without a location, before a fit whose value is fine
    import warnings
    import ppl
    model = ppl.compile("data x: real[3]\ndata y: real[3]\nsample m ~ Normal(0, 1)\n"
                        "observe y ~ Normal(m + where(x > 0, log(x), 0.0), 1)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, compiled = model.prepare({"x": [-1.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0]})
    assert [str(w.message) for w in caught] == []
    assert np.isfinite(compiled.log_joint(np.zeros((1, 1))))


# ----- found by the mutation pass over evaluate.py (session 40) -----------------------------

@pytest.mark.parametrize("op,reference", [("<", np.less), ("<=", np.less_equal),
                                          (">", np.greater), (">=", np.greater_equal),
                                          ("==", np.equal), ("!=", np.not_equal)])
def test_comparisons_are_0_1_ints_and_match_numpy_at_ties(op, reference):
    # LANGUAGE.md: comparisons give 0/1 ints; ties (a == b) separate < from <=
    a = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]])
    b = np.array([[0.0, 2.0, 1.0], [1.0, 0.5, -1.0]])
    expr = ir.BinOp(op, latent("a", (3,)), latent("b", (3,)), (3,), "int", frozenset("ab"))
    result = compile_expr(expr, {})({"a": a, "b": b})
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, reference(a, b).astype(np.int64))


def test_a_folded_constant_has_the_checkers_dtype():
    # dot of ints is real (LANGUAGE.md), though numpy's dot of ints is an int
    g = data("g", (3,), "int")
    value = evaluate_data(call("dot", [g, g], ()), {"g": np.array([1, 2, 3])})
    assert value.dtype == np.float64 and value == 14.0


def test_int_data_arithmetic_is_exact_up_to_the_int64_bounds():
    from ppl.errors import PplError
    n = data("n", (), "int")
    top, bottom = {"n": np.array(2 ** 63 - 2)}, {"n": np.array(-2 ** 63 + 1)}
    assert evaluate_data(binop("+", n, const(1)), top) == 2 ** 63 - 1
    assert evaluate_data(binop("-", n, const(1)), bottom) == -2 ** 63
    with pytest.raises(PplError, match="int overflow"):
        evaluate_data(binop("+", n, const(2)), top)
    with pytest.raises(PplError, match="int overflow"):
        evaluate_data(binop("-", n, const(2)), bottom)


def test_a_let_with_one_non_finite_element_is_warned_of():
    from ppl.evaluate import data_let
    let = ir.Let("a", call("log", [data("x", (2,))], (2,)), False)
    with pytest.warns(UserWarning, match="a"):
        value = data_let(let, {"x": np.array([1.0, 0.0])})
    np.testing.assert_array_equal(value, [0.0, -np.inf])


def test_new_axis_between_array_indices_separates_them_as_in_numpy(rng):
    # numpy: x[i, None, j] has its advanced indices separated, so their axes come first
    m = rng.normal(size=(S, 3, 3))
    g = data("g", (4,), "int")
    data_env = {"g": np.array([0, 2, 1, 2])}
    expr = ir.Index(latent("m", (3, 3)), (g, ir.NewAxisItem(), g), (4, 1), "real",
                    frozenset({"m"}))
    result = compile_expr(expr, data_env)({"m": m})
    np.testing.assert_array_equal(result, np.stack([v[data_env["g"], None, data_env["g"]]
                                                    for v in m]))


def test_an_index_by_draw_after_a_slice_matches_numpy_per_draw(rng):
    # mu[:, z] with z an enumerated discrete latent int[2] (varies by draw), mu data or latent
    z = rng.integers(0, 4, size=(S, 2))
    zref = ir.Ref("z", "latent", (2,), "int", frozenset({"z"}))
    mu = rng.normal(size=(S, 3, 4))
    for base, env, data_env, values in [
            (data("mu", (3, 4)), {"z": z}, {"mu": mu[0]}, [mu[0]] * S),
            (latent("mu", (3, 4)), {"z": z, "mu": mu}, {}, mu)]:
        expr = ir.Index(base, (ir.SliceItem(None, None), zref), (3, 2), "real",
                        base.deps | {"z"})
        result = compile_expr(expr, data_env)(env)
        np.testing.assert_array_equal(result, np.stack([v[:, zs] for v, zs in zip(values, z)]))


def test_a_vector_literal_of_vectors_stacks_on_a_new_leading_event_axis(rng):
    a, b = rng.normal(size=(S, 3)), rng.normal(size=3)
    expr = ir.Vector((latent("a", (3,)), data("b", (3,))), (2, 3), "real", frozenset("a"))
    result = compile_expr(expr, {"b": b})({"a": a})
    np.testing.assert_array_equal(result, np.stack([np.stack([v, b]) for v in a]))
