"""elementwise.py: trees of + - * / and minus over lifted operands as one primitive, against
the traced path (``evaluate.FUSE_ELEMENTWISE`` off): value and gradient bit for bit, Hessian."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from ppl import elementwise, evaluate
from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.infer.precondition import expected_hessian

_HEAD = """data x: real[4]
data X: real[3, 4]
data n: int
data k: int[4]
sample a ~ Normal(0, 1)
sample s ~ HalfNormal(1)
sample b: real[4] ~ Normal(0, 1)
sample M: real[3, 4] ~ Normal(0, 1)
param c: real ~ Normal(0, 1)
"""
# let expressions -> how many trees of two or more traced operations they hold
CASES = {
    "eight_schools": ("a + s * b", 1),
    "data_and_division": ("a * x - b / (s + 2)", 1),
    "minus_of_a_difference": ("-(b - x) * a", 1),
    "data_over_latent": ("x / b + a", 1),
    "int_data_over_latent": ("n / (a * s + 3)", 1),
    "int_vector_over_latent": ("k / s - b", 1),
    "matrix_against_scalar": ("(a - b[0]) / (M + 1) * X", 1),
    "vector_against_matrix": ("M * b - X / s", 1),
    "function_leaves": ("exp(a) * b - M * sum(b)", 1),
    "same_leaf_twice": ("b * b + a", 1),
    "minus_a_lifted_scalar": ("-a + b", 1),
    # a param's block is one row [1]: its gradient summed over the draws too
    "param_against_draws": ("c * b - a", 1),
    "one_operation": ("b * x", 0),
    # the lift of a [S] to [S, 1] is traced too: two operations
    "one_operation_and_a_lift": ("a * x", 1),
    "two_trees_around_a_call": ("exp(a * s + 1) * b - s", 2),
}


def compile_case(expr, fuse, monkeypatch):
    monkeypatch.setattr(evaluate, "FUSE_ELEMENTWISE", fuse)
    rng = np.random.default_rng(5)
    data = {"x": rng.normal(0, 1, 4), "X": rng.normal(0, 1, (3, 4)), "n": 3,
            "k": np.array([1, -2, 0, 5])}
    text = _HEAD + f"let v = {expr}\nobserve x ~ Normal(sum(v) * 0.1, 2)\n"
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values)


def draws(compiled, S=5):
    return np.random.default_rng(3).normal(0, 0.7, (S, compiled.dim))


def _total(compiled):
    return lambda z: anp.sum(compiled.log_joint(z) * np.arange(1.0, z.shape[0] + 1.0))


def _lets(compiled, z):
    """The let v [S, ...] at the draws z."""
    env = {}
    for step in compiled._steps:
        if hasattr(step, "cut"):        # a latent: its term sets env[name]
            step.term(z, env)
        elif getattr(step, "name", None) == "v":
            return step.fn(env)


@pytest.mark.parametrize("name", CASES)
def test_tree_value_and_gradient_are_the_traced_ones(name, monkeypatch):
    # Forward and VJP repeat autograd's operations and its VJPs in the traced order: equal,
    # not merely close. The weights make a gradient sent to the wrong element fail.
    traced = compile_case(CASES[name][0], False, monkeypatch)
    fused = compile_case(CASES[name][0], True, monkeypatch)
    z = draws(fused)
    np.testing.assert_array_equal(_lets(fused, z), _lets(traced, z))
    np.testing.assert_array_equal(fused.log_joint(z), traced.log_joint(z))
    weights = np.random.default_rng(1).normal(size=_lets(fused, z).shape)
    got = grad(lambda q: anp.sum(_lets(fused, q) * weights))(z)
    want = grad(lambda q: anp.sum(_lets(traced, q) * weights))(z)
    np.testing.assert_array_equal(got, want)
    # The log joint's gradient: equal up to the order in which a latent's three or more
    # contributions are added (the sum of terms adds the prior's first, fused.add_terms; the
    # tree adds its own leaves' together): a few ulps, so 1e-15 relative
    np.testing.assert_allclose(grad(_total(fused))(z), grad(_total(traced))(z),
                               rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_tree_is_one_primitive_where_two_operations_were_traced(name, monkeypatch):
    calls = []
    real = elementwise._tree

    def counted(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(elementwise, "_tree", counted)
    fused = compile_case(CASES[name][0], True, monkeypatch)
    grad(_total(fused))(draws(fused))
    assert len(calls) == CASES[name][1]


@pytest.mark.parametrize("name", ["eight_schools", "matrix_against_scalar", "same_leaf_twice"])
def test_tree_hessian_is_the_traced_one(name, monkeypatch):
    # second order goes through the traced closure (the VJP is plain numpy): the same Hessian
    traced = compile_case(CASES[name][0], False, monkeypatch)
    fused = compile_case(CASES[name][0], True, monkeypatch)
    z = draws(fused, 2)
    np.testing.assert_array_equal(expected_hessian(fused.log_joint, z),
                                  expected_hessian(traced.log_joint, z))


def test_tree_gradient_matches_finite_differences(monkeypatch):
    # an independent reference: central differences of the fused log joint itself
    fused = compile_case(CASES["matrix_against_scalar"][0], True, monkeypatch)
    z = draws(fused, 2)
    total = _total(fused)
    got, h = grad(total)(z), 1e-6
    want = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = h
        want[index] = (total(z + step) - total(z - step)) / (2 * h)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_each_operand_is_built_once_however_deep_the_nesting(monkeypatch):
    # exp(exp(... * 0.5 + a) * 0.5 + a): each tree joins its operands' trees instead of
    # building them again (building them again made nested calls and trees exponential)
    built = []
    real = evaluate._BUILDERS[evaluate.ir.Call]

    def counted(expr, data_env):
        built.append(expr)
        return real(expr, data_env)
    monkeypatch.setitem(evaluate._BUILDERS, evaluate.ir.Call, counted)
    expr = "a"
    for _ in range(14):
        expr = f"exp({expr} * 0.5 + s * b)"
    fused = compile_case(expr, True, monkeypatch)
    assert len(built) == 14 + 1     # the exps, and the sum(v) of the likelihood
    traced = compile_case(expr, False, monkeypatch)
    z = draws(fused) * 0.1
    np.testing.assert_array_equal(fused.log_joint(z), traced.log_joint(z))
    np.testing.assert_array_equal(grad(_total(fused))(z), grad(_total(traced))(z))
