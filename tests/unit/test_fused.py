"""fused.py: location-scale densities and the sum of terms as single primitives, against the
traced path (``compile_model(..., fuse=False)``): value and gradient bit for bit, Hessian."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.fused import Pending, add_terms, settle
from ppl.infer.precondition import expected_hessian

N, K, J = 40, 3, 4
_HEAD = """data N: int
data X: real[N, 3]
data x: real[N]
data g: int[N]
"""


def draws(compiled, S=5):
    return np.random.default_rng(3).normal(0, 0.7, (S, compiled.dim))


def _total(compiled):
    return lambda z: anp.sum(compiled.log_joint(z) * np.arange(1.0, z.shape[0] + 1.0))


# name -> model text after the data; every Normal, HalfNormal, Cauchy and HalfCauchy term below
# is fused, none by a likelihood kernel (kernels.py: a vector or latent-shaped sigma), so fuse=False
# is the traced path exactly.
NORMAL_CASES = {
    "scalar_prior": "sample b ~ Normal(1.5, 2)\nobserve x ~ Laplace(b, 1)\n",
    "vector_prior": "sample b: real[4] ~ Normal(0, 1)\nobserve x ~ Laplace(sum(b), 1)\n",
    "matrix_prior": "sample b: real[2, 3] ~ Normal(-1, 0.5)\nobserve x ~ Laplace(sum(b), 1)\n",
    "half_normal_and_cauchy": """sample s ~ HalfNormal(2)
sample m: real[2] ~ Cauchy(0.5, 3)
observe x ~ Cauchy(m[0] * x, s + m[1] * m[1])
""",
    "half_cauchy_vector": """sample s: real<lower=0>[N] ~ HalfCauchy(abs(x) + 1)
observe x ~ HalfNormal(s)
""",
    "hierarchical": """sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(2)
sample a: real[4] ~ Normal(mu, tau)
observe x ~ Normal(a[g], abs(x) + 0.5)
""",
    "eight_schools": """sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(5)
sample eta: real[N] ~ Normal(0, 1)
let theta = mu + tau * eta
observe x ~ Normal(theta, abs(x) + 1)
""",
    "vector_scales": """sample s: real<lower=0>[3] ~ Exponential(1)
sample b: real[3] ~ Normal(X[0], s)
observe x ~ Normal(X @ b, s[0] + abs(x))
""",
    "reused_latent": """sample b: real[N] ~ Normal(0, 1)
sample c: real[N] ~ Normal(b, exp(b))
observe x ~ Normal(b, exp(c))
""",
}


def compile_normal(name, fuse):
    rng = np.random.default_rng(11)
    data = {"N": N, "X": rng.normal(0, 1, (N, K)), "x": rng.normal(0, 1, N),
            "g": rng.integers(-J, J, N)}
    program = parse(_HEAD + NORMAL_CASES[name], "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values, fuse=fuse)


@pytest.mark.parametrize("name", NORMAL_CASES)
def test_normal_primitive_is_used_for_every_normal_term(name):
    compiled = compile_normal(name, True)
    normal = [s for s in compiled._steps if getattr(getattr(s, "cls", None), "name", "") in
              ("Normal", "HalfNormal", "Cauchy", "HalfCauchy")]
    assert normal and all(s.fused for s in normal)
    assert not any(getattr(s, "kernel", None) for s in compiled._steps)
    assert not any(s.fused for s in compile_normal(name, False)._steps if hasattr(s, "fused"))


@pytest.mark.parametrize("name", NORMAL_CASES)
def test_normal_primitive_value_and_gradient_are_the_traced_ones(name):
    # The VJP repeats autograd's operations in its order: equal, not merely close, except
    # where a latent gets three or more gradients (its prior's, and two more uses or an
    # index with repeats: m[0] and m[1], a[g]): the sum of terms, where the priors are
    # computed, is the last operation traced and so the first to send its gradients, where
    # the traced path sends a prior's last; and where a latent is itself a sigma and used
    # elsewhere too: the traced path adds its gradients from the division and the log apart,
    # in between the others (rounding, relative 1e-16 measured).
    fused, traced = compile_normal(name, True), compile_normal(name, False)
    z = draws(fused)
    np.testing.assert_array_equal(fused.log_joint(z), traced.log_joint(z))
    got, want = grad(_total(fused))(z), grad(_total(traced))(z)
    if name in ("vector_scales", "reused_latent", "half_normal_and_cauchy", "hierarchical"):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NORMAL_CASES)
def test_normal_primitive_hessian_is_the_traced_one(name):
    # second order goes through the traced formula (the VJP is plain numpy)
    fused, traced = compile_normal(name, True), compile_normal(name, False)
    z = draws(fused, 2)
    np.testing.assert_allclose(expected_hessian(fused.log_joint, z),
                               expected_hessian(traced.log_joint, z), rtol=1e-12, atol=1e-12)


def test_normal_primitive_outside_sigmas_support_matches_traced():
    # a latent sigma below 0: -inf for that draw and the traced path's gradient
    text = "sample a ~ Normal(0, 1)\nobserve x ~ Normal(0, a * abs(x) + a)\n"
    rng = np.random.default_rng(0)
    data = {"N": N, "X": rng.normal(0, 1, (N, K)), "x": rng.normal(0, 1, N),
            "g": rng.integers(0, J, N)}
    program = parse(_HEAD + text, "model.ppl")
    values, dims = load_data(check(program), data)
    fused, traced = (compile_model(check(program, dims), values, fuse=f) for f in (True, False))
    z = np.array([[-0.5], [0.7]])
    value = fused.log_joint(z)
    assert value[0] == -np.inf and np.isfinite(value[1])
    np.testing.assert_array_equal(value, traced.log_joint(z))
    np.testing.assert_array_equal(grad(_total(fused))(z), grad(_total(traced))(z))


def test_add_terms_is_the_loop_of_additions_bit_for_bit(rng):
    # the log joint's sum of terms as one primitive: terms of shape [S], [1] (a param's) and a
    # constant, each weighted so that a gradient sent to the wrong term cannot pass
    a, b, c = rng.normal(size=5), rng.normal(size=1), rng.normal(size=5)

    def loop(a, b, c):
        return anp.sum((((a * 1.5 + 0.25) + anp.sin(b)) + anp.exp(c)) * np.arange(1.0, 6.0))

    def fused(a, b, c):
        return anp.sum(add_terms([a * 1.5, 0.25, anp.sin(b), anp.exp(c)]) * np.arange(1.0, 6.0))
    for argnum in range(3):
        assert grad(fused, argnum)(a, b, c).shape == (a, b, c)[argnum].shape
        np.testing.assert_array_equal(grad(fused, argnum)(a, b, c), grad(loop, argnum)(a, b, c))
    assert fused(a, b, c) == loop(a, b, c)


def test_add_terms_with_densities_and_groups_is_the_loop_bit_for_bit(rng):
    # pending densities (any shapes, constants among their parameters, parameters lifted
    # inside) and groups (a log prior plus its log-Jacobian) in the one primitive, against
    # the loop of settled terms; each argument's gradient checked, each weighted so that a
    # gradient sent to the wrong argument cannot pass. x, mu and y have two uses each; s's
    # five uses happen to add their gradients in the traced order (a value with three or
    # more uses may not: rounding, see above)
    args = (rng.normal(size=(5, 3)), rng.normal(size=(5, 1)), rng.normal(size=5),
            rng.normal(size=(5, 1)))
    w = np.arange(1.0, 6.0)

    def terms(x, mu, s, y, fuse):
        items = [Pending("Normal", x, mu, anp.reshape(anp.exp(s), (5, 1))), 0.5,
                 # parameters [S] lifted to [S, 1] inside (evaluate.lift)
                 Pending("Normal", x * 2.0, anp.sin(s), anp.exp(s * 0.5), (1, 1)),
                 (Pending("HalfCauchy", anp.exp(s * 2.0), 0.0, 2.0), anp.sin(s * 3.0)),
                 (anp.cos(y) * 2.0,), Pending("Cauchy", y, 1.5, anp.exp(mu))]
        return anp.sum((add_terms(items) if fuse else settle(tuple(items))) * w)
    for argnum in range(4):
        got = grad(terms, argnum)(*args, True)
        want = grad(terms, argnum)(*args, False)
        assert got.shape == want.shape == args[argnum].shape
        np.testing.assert_array_equal(got, want)
    assert terms(*args, True) == terms(*args, False)
    # without a trace: no primitive, the same value
    x, mu, s, _ = args
    np.testing.assert_array_equal(add_terms([Pending("Normal", x, s, 2.0, (1, 0)), s]),
                                  settle((Pending("Normal", x, s, 2.0, (1, 0)), s)))


# (x, mu, sigma) shapes broadcast against each other: [S, 1, 1] against [1, 3, 1] against
# [S, 3, 4] (d = x - mu has an axis that x lacks, z = d / sigma one that d lacks); a scalar sigma
# against [S, 3] (two leading axes summed away)
_BROADCAST_SHAPES = [((5, 1, 1), (1, 3, 1), (5, 3, 4)), ((5, 3), (5, 1), ())]


@pytest.mark.parametrize("shapes", _BROADCAST_SHAPES)
@pytest.mark.parametrize("name", ["Normal", "HalfNormal", "Cauchy", "HalfCauchy"])
def test_density_gradients_are_summed_to_each_arguments_shape_as_traced(name, shapes, rng):
    # The hand-written VJP sums each gradient back as autograd's VJPs do, in their order (the
    # division's to d's shape, then the subtraction's to x's and mu's): against the traced
    # formula (_density_steps with autograd's numpy, as density_total under a second-order
    # trace), bit for bit, through density_total and through add_terms; compiled models'
    # arguments all have one shape, so only these direct calls see a sum left out
    from ppl.fused import _density_steps, _sum_rest, density_total
    x, mu, sigma = (rng.normal(size=shape) for shape in shapes)
    sigma = np.exp(sigma)
    w = np.arange(1.0, 6.0)

    def traced(x, mu, sigma):
        return anp.sum((_sum_rest(_density_steps(name, x, mu, sigma, anp)[-1], anp) + 0.5) * w)

    def single(x, mu, sigma):
        return anp.sum((density_total(name, x, mu, sigma) + 0.5) * w)

    def summed(x, mu, sigma):
        return anp.sum(add_terms([Pending(name, x, mu, sigma), 0.5]) * w)
    for argnum in range(3):
        want = grad(traced, argnum)(x, mu, sigma)
        for fused in (single, summed):
            got = grad(fused, argnum)(x, mu, sigma)
            assert np.shape(got) == np.shape((x, mu, sigma)[argnum])
            np.testing.assert_array_equal(got, want)


def test_record_is_the_primitive_wrapper():
    # fused.record(fun, args) records fun as autograd's own wrapper does: the same value,
    # gradient and (through the wrapper, for boxes nested two deep) second derivative
    from autograd import hessian
    from autograd.extend import defvjp, primitive

    from ppl.fused import record

    @primitive
    def scaled_sum(c, x, y):
        return c * np.sum(x * y)
    defvjp(scaled_sum, None, lambda ans, c, x, y: lambda g: c * g * y,
           lambda ans, c, x, y: lambda g: c * g * x)
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -3.0])
    assert record(scaled_sum, [2.0, x, y]) == scaled_sum(2.0, x, y)
    got = grad(lambda x: record(scaled_sum, [2.0, x, y * x]))(x)
    want = grad(lambda x: scaled_sum(2.0, x, y * x))(x)
    np.testing.assert_array_equal(got, want)
    got = hessian(lambda x: record(scaled_sum, [2.0, x, x]))(x)
    np.testing.assert_array_equal(got, 4.0 * np.eye(3))
    # boxes of two traces side by side (x of the outer one only, y of the inner one): the
    # wrapper's, so that the inner gradient c x keeps its dependence on x
    got = grad(lambda x: anp.sum(grad(lambda y: record(scaled_sum, [2.0, x, y]))(y)))(x)
    np.testing.assert_array_equal(got, np.full(3, 2.0))


@pytest.mark.parametrize("name", ["Normal", "HalfNormal", "Cauchy", "HalfCauchy"])
def test_known_constants_change_no_bit(name):
    # A Pending with a Known (constant mu = 0, sigma = 1 or a constant sigma, int constants
    # too, lifted or not) skips x - 0 and d / 1 and takes log(sigma) from the Known: value and
    # gradient in x must equal the Pending without it bit for bit. The x of one axis against a
    # two-axis constant keeps the operations (they broadcast); a float32 x keeps them too.
    from ppl.fused import Known
    rng = np.random.default_rng(5)
    x2, x1 = rng.normal(size=(5, 3)), rng.normal(size=5)
    half = name.startswith("Half")
    cases = [(x2, np.zeros(1), np.ones(1), (0, 0)), (x2, np.zeros(1), np.full(1, 2.5), (1, 1)),
             (x2, np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), (0, 1)),
             (x2, np.full(1, 0.5), np.ones((1, 3)), (0, 0)),
             (x1, np.zeros(1), np.ones(1), (1, 1)), (x1, np.zeros(1), np.ones(1), (0, 0)),
             (x2.astype(np.float32), np.zeros(1), np.ones(1), (0, 0)),
             # some zeros and ones, not all: nothing skipped, log(sigma) still from the Known
             (x2, np.array([[0.0, 0.5, 0.0]]), np.array([[1.0, 2.0, 1.0]]), (0, 0))]
    for x, mu, sigma, lifts in cases:
        mu = 0.0 if half else mu
        known = Known.of(mu, sigma, lifts)
        assert known is not None

        def total(x, with_known):
            term = Pending(name, x, mu, sigma, lifts, known if with_known else None)
            return anp.sum(add_terms([term, 0.25]) * np.arange(1.0, 6.0))
        assert total(x, True) == total(x, False)
        np.testing.assert_array_equal(grad(total)(x, True), grad(total)(x, False))
        # the gradient's sign of zero too (x = mu makes d and the gradient zero)
        zero = np.zeros_like(x)
        assert (np.signbit(grad(total)(zero, True)) == np.signbit(grad(total)(zero, False))).all()
    assert Known.of(None, None, (0, 0)) is None


def test_shape_of_is_np_shape_for_plain_and_boxed_values():
    # shape_of answers () for a float without np.shape's dispatch; for every other kind of
    # value, and for any value in a box, it is np.shape of the value inside
    from autograd.core import VJPNode
    from autograd.tracer import new_box

    from ppl.fused import shape_of
    for value in [0.0, 1, True, [1.0, 2.0], np.float64(2.0), np.array(3.0), np.zeros((2, 3))]:
        assert shape_of(value) == np.shape(value)
    for value in [0.0, np.float64(2.0), np.array(3.0), np.zeros((2, 3))]:
        assert shape_of(new_box(value, 1, VJPNode.new_root())) == np.shape(value)
