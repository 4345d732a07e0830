"""kernels.py: each fused log likelihood and its hand-written VJP against the traced path
(``compile_model(..., fuse=False)``), at the value, the gradient and the Hessian. Every Normal
case runs twice: through the pass over the rows (FusedTerm) and through the Gram matrix
(GramTerm, its row threshold lowered to these 40 rows)."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, jacobian, make_vjp

from ppl import kernels
from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.infer.precondition import (FD_STEP, HESSIAN_STEP, difference_hessian,
                                    expected_hessian)

N, K, J = 40, 3, 4
_HEAD = """data N: int
data X: real[N, 3]
data x: real[N]
data g: int[N]
data h: int[N]
data m: int[N]
"""
# name -> (model text after the data, y kind); each predictor exercises one kind of term
CASES = {
    "normal_matrix": ("""data y: real[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + X @ beta, sigma)
""", "real"),
    "normal_data_sigma_columns": ("""data y: real[N]
sample beta: real[3] ~ Normal(0, 1)
observe y ~ Normal(beta[0] - beta[1] * x + beta[2] * x * x + 0.5 * x, 2.0)
""", "real"),
    "normal_gather_private_let": ("""data y: real[N]
sample a: real[4] ~ Normal(0, 1)
sample b ~ Normal(0, 1)
sample sigma ~ Exponential(1)
let _mu = -a[g] + X @ (b * X[0]) - b
observe y ~ Normal(_mu, sigma)
""", "real"),
    # crossed groupings and an intercept: the design's columns are linearly dependent (the
    # ones column is the sum of each grouping's indicators)
    "normal_crossed_groups": ("""data y: real[N]
sample alpha ~ Normal(0, 1)
sample a: real[4] ~ Normal(0, 1)
sample c: real[3] ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + a[g] - c[h] + X @ beta, sigma)
""", "real"),
    # lme4-style varying slopes: b[g] * x is a gather weighted by data; (b0 + c[h, 1]) * x
    # is split into a column and a weighted gather from a matrix read flat
    "normal_varying_slopes": ("""data y: real[N]
sample alpha ~ Normal(0, 1)
sample a: real[4] ~ Normal(0, 1)
sample b: real[4] ~ Normal(0, 1)
sample b0 ~ Normal(0, 1)
sample c: real[3, 2] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + a[g] + b[g] * x - 2.0 * x * b[g] * x + c[h, 0]
                   + (b0 - c[h, 1]) * x, sigma)
""", "real"),
    # a private let read again elsewhere: the log joint computes it, the kernel reads it whole
    "normal_generic_let_read_twice": ("""data y: real[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
let _mu = alpha + X @ beta
observe y ~ Normal(_mu, sigma)
factor -0.01 * sum(_mu * _mu)
""", "real"),
    "normal_generic_term": ("""data y: real[N]
sample alpha ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(exp(alpha) * x + sin(alpha * x), sigma)
""", "real"),
    "bernoulli": ("""data y: int[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample a: real[4] ~ Normal(0, 1)
observe y ~ Bernoulli(logit=alpha + X @ beta + a[g])
""", "binary"),
    # a product of data and a sum with a generic term in it: the generic term is weighted too
    "bernoulli_weighted_terms": ("""data y: int[N]
sample alpha ~ Normal(0, 1)
sample b: real[4] ~ Normal(0, 1)
sample c: real[3] ~ Normal(0, 1)
sample ab: real[4, 2] ~ Normal(0, 1)
observe y ~ Bernoulli(logit=x * (alpha + b[g] + sin(alpha * x) + X @ c * 0.5) + ab[g, 1])
""", "binary"),
    "binomial": ("""data y: int[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample a: real[4] ~ Normal(0, 1)
observe y ~ Binomial(m, logit=alpha + X @ beta + a[g])
""", "binomial"),
    "binomial_scalar_trials": ("""data y: int[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
observe y ~ Binomial(7, logit=alpha - X @ beta)
""", "binomial7"),
    # params (one row for all draws) first in the predictor and among the columns, with
    # latents (a row per draw) after them: the predictor has a row per draw
    "normal_params": ("""data y: real[N]
param p: real[3]
param q: real ~ Normal(0, 1)
sample a: real[4] ~ Normal(0, 1)
sample b ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(X @ p + a[g] + q * x - b * x, sigma)
""", "real"),
    "bernoulli_params": ("""data y: int[N]
param p: real[4]
sample alpha ~ Normal(0, 1)
observe y ~ Bernoulli(logit=p[g] + alpha)
""", "binary"),
    "poisson": ("""data y: int[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 0.5)
observe y ~ Poisson(log_rate=x + alpha + X @ beta)
""", "count"),
}


def compile_case(name, fuse):
    text, kind = CASES[name]
    rng = np.random.default_rng(7)
    m = rng.integers(1, 9, N)
    y = {"real": rng.normal(0, 1, N), "binary": rng.integers(0, 2, N),
         "count": rng.poisson(2.0, N), "binomial": rng.binomial(m, 0.4),
         "binomial7": rng.binomial(7, 0.6, N)}[kind]
    data = {"N": N, "X": rng.normal(0, 1, (N, K)), "x": rng.normal(0, 1, N),
            "g": rng.integers(-J, J, N), "h": rng.integers(0, 3, N), "m": m,
            "y": y}     # negative indices count from the end
    program = parse(_HEAD + text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values, fuse=fuse)


GRAM = [name for name in CASES if "normal" in name and "generic" not in name]
# (case, kernel) pairs: every case through its kernel, the Normal ones through the Gram form too
PATHS = [(name, "FusedTerm") for name in CASES] + [(name, "GramTerm") for name in GRAM]


@pytest.fixture
def path(request, monkeypatch):
    """Compiles a case so that it takes the kernel named: (compile(fuse), kernel's class name,
    case name)."""
    name, kind = request.param
    if kind == "GramTerm":
        monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
        monkeypatch.setattr(kernels, "GRAM_ROWS_PER_COLUMN", 1)
    return (lambda fuse: compile_case(name, fuse)), kind, name


def draws(compiled, S=5):
    return np.random.default_rng(3).normal(0, 0.7, (S, compiled.dim))


def _total(compiled):
    return lambda z: anp.sum(compiled.log_joint(z) * np.arange(1.0, z.shape[0] + 1.0))


@pytest.mark.parametrize("path", PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_kernel_is_used(path):
    compile_, kind, _ = path
    fused = compile_(True)
    assert [type(s.kernel).__name__ for s in fused._steps if getattr(s, "kernel", None)
            is not None] == [kind]


@pytest.mark.parametrize("path", PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_fused_value_matches_traced(path):
    compile_, _, name = path
    fused, traced = compile_(True), compile_(False)
    z = draws(fused)
    np.testing.assert_allclose(fused.log_joint(z), traced.log_joint(z), rtol=1e-12)


@pytest.mark.parametrize("S", [1, 5])
@pytest.mark.parametrize("path", PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_fused_gradient_matches_traced(path, S):
    # weights 1..S per draw, so that a VJP mixing up draws cannot pass; one draw takes a
    # matrix's gradient by its own product (X^T g)
    compile_, _, name = path
    fused, traced = compile_(True), compile_(False)
    z = draws(fused, S)
    want = grad(_total(traced))(z)
    np.testing.assert_allclose(grad(_total(fused))(z), want, rtol=1e-10,
                               atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("path", PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_fused_jacobian_matches_traced(path):
    # autograd's jacobian makes the VJP once and calls it once per draw: each call must find
    # the forward pass's buffers as they were, not as the call before left them
    compile_, _, name = path
    fused, traced = compile_(True), compile_(False)
    z = draws(fused, 3)
    want = jacobian(traced.log_joint)(z)
    np.testing.assert_allclose(jacobian(fused.log_joint)(z), want, rtol=1e-10,
                               atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("path", PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_fused_hessian_matches_traced(path):
    # second order (the polish's expected Hessian, DADVI) goes through the plain path, or for
    # the Gram form through its own formula on [S, P] arrays: the plain path is taken away
    compile_, kind, name = path
    fused, traced = compile_(True), compile_(False)
    if kind == "GramTerm":
        for step in fused._steps:
            if getattr(step, "kernel", None) is not None:
                step.kernel.plain = None
    z = draws(fused, 2)
    np.testing.assert_allclose(expected_hessian(fused.log_joint, z),
                               expected_hessian(traced.log_joint, z), rtol=1e-10, atol=1e-10)


# the cases whose kernel sums terms of a logit or a log rate (no scale)
COUNT_PATHS = [(name, "FusedTerm") for name in CASES if "normal" not in name]


@pytest.mark.parametrize("path", COUNT_PATHS, indirect=True, ids=lambda p: "-".join(p))
def test_fused_likelihood_at_infinite_and_overflowing_predictors_matches_traced(path):
    # the intercept alpha at +-inf or +-1e308 makes the predictor infinite or its sums over the
    # rows overflow: the fused sums gave nan (sum(eta) - sum|eta| is inf - inf, 0 * -inf) where
    # the plain path sums its rows' terms (0 for a row an infinite logit makes sure, -inf for
    # one it rules out, and no gradient in an infinite logit): the likelihood's term and its
    # gradient at each draw, draw 0 finite
    compile_, _, name = path
    fused, traced = compile_(True), compile_(False)
    z = draws(fused, 5)
    z[1:, fused.unconstrained_names().index("alpha")] = [np.inf, -np.inf, 1e308, -1e308]

    def likelihood(compiled):
        return lambda z: anp.sum(compiled.terms(z)[-1][1] * np.arange(1.0, len(z) + 1.0))
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(fused.terms(z)[-1][1], traced.terms(z)[-1][1], rtol=1e-12)
        np.testing.assert_allclose(grad(likelihood(fused))(z), grad(likelihood(traced))(z),
                                   rtol=1e-10)


@pytest.mark.parametrize("family, x, y", [("Bernoulli(logit=b * x)", [1e17, -1.0], [1, 0]),
                                          ("Binomial(2, logit=b * x)", [1e17, 1.0], [2, 0])])
def test_fused_likelihood_beside_a_huge_logit_keeps_its_small_rows(family, x, y):
    # 0.5 (sum(eta) - sum|eta|) lost the row of logit -1 beside one of 1e17 (an unscaled
    # column, nanosecond timestamps): a log likelihood of +0.687 where the rows give -0.313
    # (found by the leftalone6 audit); Binomial's 0.5 (eta + |eta|) . n the row of logit 1,
    # -0.627 for -2.627. Draw 1's rows are on the plain path's scale (no cancellation), draw
    # 0's are not; both must be the plain path's to rounding
    text = f"data N: int\ndata x: real[N]\ndata y: int[N]\nsample b ~ Normal(0, 1)\n" \
        f"observe y ~ {family}\n"
    program = parse(text, "m.ppl")
    values, dims = load_data(check(program), {"N": 2, "x": x, "y": y})
    fused, plain = (compile_model(check(program, dims), values, fuse=fuse) for fuse in (True, False))
    assert [type(s.kernel).__name__ for s in fused._steps if getattr(s, "kernel", None)] \
        == ["FusedTerm"]
    z = np.array([[1.0], [1e-18]])
    np.testing.assert_allclose(fused.terms(z)[-1][1], plain.terms(z)[-1][1], rtol=1e-12)
    np.testing.assert_allclose(grad(lambda z: anp.sum(fused.terms(z)[-1][1]))(z),
                               grad(lambda z: anp.sum(plain.terms(z)[-1][1]))(z), rtol=1e-12)


@pytest.mark.parametrize("family, trials, x, y", [
    ("Bernoulli(logit=b * x)", [1, 1], [1e10, -0.3], [1, 0]),
    # 1e5 trials at a logit of 1e5: n |eta| summed is 1e10 where |eta| summed is 1e5
    ("Binomial(m, logit=b * x)", [100000, 1], [1e5, 0.3], [100000, 0])])
def test_the_fused_sums_fall_back_a_little_above_the_cancellation_limit(family, trials, x, y):
    # sum n |eta| = 1e10, 2.3 times CANCELLATION_LIMIT (2^32): the small row's logit of 0.3
    # loses about ulp(1e10) / 2 = 1e-6 in the fused sums (0.5 (sum eta - sum |eta|), 0.5 (eta +
    # |eta|) . n), 1e-6 of its term -softplus(+-0.3); so the draw takes the plain path's row
    # terms, which are exact to rounding (hence rtol 1e-12). A limit of 2^52, or the Binomial's
    # measured without its trials (1e5 here), would keep the fused sums
    assert 1e10 > kernels.CANCELLATION_LIMIT > 1e5 + 1
    text = "data N: int\ndata m: int[N]\ndata x: real[N]\ndata y: int[N]\n" \
        f"sample b ~ Normal(0, 1)\nobserve y ~ {family}\n"
    program = parse(text, "m.ppl")
    values, dims = load_data(check(program), {"N": 2, "m": trials, "x": x, "y": y})
    fused, plain = (compile_model(check(program, dims), values, fuse=fuse) for fuse in (True, False))
    assert type(_kernel(fused)).__name__ == "FusedTerm"
    z = np.array([[1.0]])
    np.testing.assert_allclose(fused.terms(z)[-1][1], plain.terms(z)[-1][1], rtol=1e-12)
    # the reference itself: row 0 is sure (0), row 1 is -softplus(logit) for y = 0
    np.testing.assert_allclose(plain.terms(z)[-1][1], -trials[1] * np.logaddexp(0, x[1]),
                               rtol=1e-12)


# a param's coordinates are read from the first draw only: a difference along them in the
# other draws is no difference of the log joint (the whitening is of latents)
LATENT_PATHS = [(name, kind) for name, kind in PATHS if "params" not in name]


@pytest.mark.parametrize("path", LATENT_PATHS, indirect=True, ids=lambda p: "-".join(p))
@pytest.mark.parametrize("rule", ["central", "forward"])
def test_difference_hessian_through_the_kernel_matches_the_traced_one(path, rule):
    # The dense whitening's H by differences of the fused gradient (precondition.py) against
    # reverse-over-reverse on the traced path. In sd units (S H S, sds those of the curvature) a
    # column's error is, central (a chunk holds its 2 M draws), FD_STEP^2 / 6 times the
    # gradient's third derivative there, forward (large data) HESSIAN_STEP / 2 times its second,
    # O(1) for these likelihoods: below that multiple of |S H S| (measured: 1e-3 to 0.05 of the
    # bound, central, 0.01 to 0.09 forward, scaling as the step's power); to rounding where the
    # model is quadratic.
    compile_, _, name = path
    fused, traced = compile_(True), compile_(False)
    z = draws(fused, 4)
    H = expected_hessian(traced.log_joint, z)
    sd = 1 / np.sqrt(np.abs(np.diag(H)))
    chunk, bound = (10 ** 6, FD_STEP ** 2 / 6) if rule == "central" else (1, HESSIAN_STEP / 2)
    error = sd[:, None] * (difference_hessian(fused.log_joint, z, sd, chunk) - H) * sd
    bound = 1e-10 if name == "normal_data_sigma_columns" else bound
    assert np.linalg.norm(error) < bound * np.linalg.norm(sd[:, None] * H * sd)


def _kernel(compiled):
    return next(s.kernel for s in compiled._steps if getattr(s, "kernel", None) is not None)


def test_products_with_data_are_split_into_weighted_terms():
    # the varying slopes' predictor has no generic term left: b[g] * x and 2 x^2 b[g] are
    # gathers weighted by data, c[h, 0] and c[h, 1] gathers from c read flat [6], b0 * x a
    # column; in the Bernoulli case only sin(alpha * x) stays generic, weighted by x
    slopes = _kernel(compile_case("normal_varying_slopes", True))
    assert not slopes.generic_weights
    assert [(np.ndim(weight), size) for weight, _, size in slopes.gathers] == \
        [(0, 4), (1, 4), (1, 4), (0, 6), (1, 6)]
    weighted = _kernel(compile_case("bernoulli_weighted_terms", True))
    assert [np.ndim(weight) for weight in weighted.generic_weights] == [1]
    assert [(np.ndim(weight), size) for weight, _, size in weighted.gathers] == \
        [(1, 4), (0, 8)]


def test_group_sums_over_all_draws_at_once_are_the_per_draw_sums(monkeypatch):
    # the gather's gradient: one bincount over the draws' blocks (small S x N) or one per draw;
    # the same sums in the same order, so bit for bit
    rng = np.random.default_rng(0)
    g, idx = rng.normal(size=(7, 50)), rng.integers(0, 6, 50)
    cache = {}
    flat = kernels._group_rows(g, idx, 6, cache)
    assert cache                                    # the flat index was built and kept
    monkeypatch.setattr(kernels, "FLAT_BINCOUNT_MAX", 0)
    per_draw = kernels._group_rows(g, idx, 6, {})
    np.testing.assert_array_equal(flat, per_draw)
    np.testing.assert_allclose(flat[3], [g[3, idx == j].sum() for j in range(6)], rtol=1e-14)


def test_fused_terms_and_predictive_keep_inlined_let():
    fused, traced = compile_case("normal_gather_private_let", True), compile_case(
        "normal_gather_private_let", False)
    z = draws(fused)
    for (_, a), (_, b) in zip(fused.terms(z), traced.terms(z)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    pa = fused.predictive(z, np.random.default_rng(0))
    pb = traced.predictive(z, np.random.default_rng(0))
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key])


def _compile_on_seed_0(text, fuse=True):
    """The whole model ``text`` compiled on the table's data drawn from seed 0."""
    rng = np.random.default_rng(0)
    data = {"N": N, "X": rng.normal(0, 1, (N, K)), "x": rng.normal(0, 1, N),
            "g": rng.integers(0, J, N), "h": rng.integers(0, 3, N), "m": rng.integers(1, 9, N),
            "y": rng.normal(0, 1, N)}
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values, fuse=fuse)


def test_reported_let_is_not_inlined():
    text = _HEAD + """data y: real[N]
sample alpha ~ Normal(0, 1)
let mu = alpha + x
observe y ~ Normal(mu, 1.0)
"""
    compiled = _compile_on_seed_0(text)
    assert any(getattr(s, "name", None) == "mu" for s in compiled._live)


def test_a_likelihood_a_discrete_latent_reaches_keeps_the_plain_path():
    # its term is enumerated per value of z (compiler/joint.py): no kernel, and the private
    # let it reads is computed with z's values, not inlined into a kernel that never runs
    text = _HEAD + """data y: real[N]
sample alpha ~ Normal(0, 1)
sample z: int ~ Bernoulli(0.3)
let _mu = alpha + z * x
observe y ~ Normal(_mu, 1.0)
"""
    fused, traced = (_compile_on_seed_0(text, fuse) for fuse in (True, False))
    assert not any(getattr(s, "kernel", None) is not None for s in fused._steps)
    z = draws(fused)
    np.testing.assert_array_equal(fused.log_joint(z), traced.log_joint(z))


@pytest.mark.parametrize("kind", ["FusedTerm", "GramTerm"])
def test_scale_outside_its_support_gives_minus_infinity(kind, monkeypatch):
    # a latent-dependent sigma that goes negative or is 0: no density there, and a zero
    # gradient; under a second-order trace too (the Gram form's own formula)
    if kind == "GramTerm":
        monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
    text = _HEAD + """data y: real[N]
sample a ~ Normal(0, 1)
observe y ~ Normal(a * x, a)
"""
    compiled = _compile_on_seed_0(text)
    assert type(_kernel(compiled)).__name__ == kind
    z = np.array([[-0.5], [0.0], [0.7]])
    value = compiled.log_joint(z)
    assert value[0] == value[1] == -np.inf and np.isfinite(value[2])
    np.testing.assert_array_equal(compiled.log_joint(z[1:]), value[1:])   # no negative draw
    g = grad(lambda z: anp.sum(compiled.log_joint(z)))(z)
    # the prior's -a alone at a = -0.5 and at 0
    assert g[0, 0] == 0.5 and g[1, 0] == 0.0 and np.isfinite(g[2, 0])
    # the value inside a second trace (make_vjp within make_vjp): the second-order path
    _, second = make_vjp(lambda z: make_vjp(compiled.log_joint)(z)[1])(z)
    np.testing.assert_allclose(second, value, rtol=1e-13)    # the plain path: rounding


def test_the_gram_form_keeps_the_digits_of_data_far_from_zero(monkeypatch):
    # y near 1e6 with sd 1 and the 1e6 in the predictor: the Gram form works with y - 1e6
    # (exact here, by Sterbenz's lemma) and sums squares only, so it matches the log likelihood
    # computed from y - 1e6 to 1e-13; the pass over the rows forms eta near 1e6 and loses
    # about 1e-16 * 1e6 per residual (measured: 8e-12 relative; the Gram form 7e-16)
    monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
    text = _HEAD + """data y: real[N]
sample alpha ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(1e6 + alpha + X @ beta, sigma)
"""
    rng = np.random.default_rng(0)
    X, noise = rng.normal(0, 1, (N, K)), rng.normal(0, 1, N)
    data = {"N": N, "X": X, "x": rng.normal(0, 1, N), "g": rng.integers(0, J, N),
            "h": rng.integers(0, 3, N), "m": rng.integers(1, 9, N), "y": 1e6 + noise}
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    compiled = compile_model(check(program, dims), values)
    assert [type(s.kernel).__name__ for s in compiled._steps
            if getattr(s, "kernel", None) is not None] == ["GramTerm"]
    z = draws(compiled)
    alpha, beta, sigma = z[:, 0], z[:, 1:4], np.exp(z[:, 4])    # sigma's log transform
    r = (data["y"] - 1e6) - alpha[:, None] - beta @ X.T
    likelihood = -0.5 * np.sum(r * r, axis=1) / sigma ** 2 - N * np.log(sigma) - \
        N * 0.5 * np.log(2 * np.pi)
    prior = (-0.5 * alpha ** 2 - 0.5 * np.sum(beta ** 2, axis=1) - 4 * 0.5 * np.log(2 * np.pi)
             + np.log(2) - 0.5 * sigma ** 2 - 0.5 * np.log(2 * np.pi) + z[:, 4])
    np.testing.assert_allclose(compiled.log_joint(z), likelihood + prior, rtol=1e-13)


def test_the_gram_form_holds_columns_in_units_far_apart(monkeypatch):
    # a timestamp in seconds (1.6e9, sd 3e7) beside the intercept: the Gram matrix's
    # eigenvalues span 1e-22 and the small one fell below the cut, as if the design were
    # rank-deficient: the log likelihood was 25 off here near the least-squares fit (1000 on
    # 2000 rows); with the columns scaled to unit norm first it is the traced one to rounding
    monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
    text = """data N: int
data X: real[N, 2]
data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[2] ~ Normal(0, 10)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + X @ beta, sigma)
"""
    rng = np.random.default_rng(0)
    X = np.stack([rng.uniform(1.6e9, 1.7e9, N), rng.normal(0, 1, N)], axis=1)
    y = 1 + X @ [1e-8, 1.0] + rng.normal(0, 1, N)
    fit = np.linalg.lstsq(np.column_stack([np.ones(N), X]), y, rcond=None)[0]
    z = np.concatenate([fit, [0.0]]) + np.outer([0, 1e-3], np.abs(fit).tolist() + [1]) * \
        rng.normal(size=(2, 4))

    def compile_(fuse):
        program = parse(text, "model.ppl")
        values, dims = load_data(check(program), {"N": N, "X": X, "y": y})
        return compile_model(check(program, dims), values, fuse=fuse)
    fused, traced = compile_(True), compile_(False)
    assert [type(s.kernel).__name__ for s in fused._steps
            if getattr(s, "kernel", None) is not None] == ["GramTerm"]
    np.testing.assert_allclose(fused.log_joint(z), traced.log_joint(z), rtol=1e-12)
    want = grad(_total(traced))(z)
    np.testing.assert_allclose(grad(_total(fused))(z), want, rtol=0,
                               atol=1e-10 * np.abs(want).max())


def test_the_gram_form_holds_an_intercept_far_from_its_fit_along_the_null_space(monkeypatch):
    # an intercept beside full sets of group effects (crossed, so the design is rank-deficient
    # twice) with y near 1e6 and sd 1: the likelihood is flat along the trade of the mean
    # between alpha and a, c, and the draws put it in alpha (near 1e6) where the Gram form's
    # least-squares fit puts it elsewhere. Z^T (u - Z b)'s rounding along that null space
    # (1.5e-8 here) times d there (about 1e6) put the log likelihood 2.4e-4 off (5e-6
    # relative) and sigma's gradient 5e-4 (2.6e-5 of the largest); the plain path's residuals
    # lose eps * 1e6 each (measured 7e-12 relative on the value, 2.5e-10 of the largest
    # gradient), hence 1e-9 and 1e-8
    monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
    monkeypatch.setattr(kernels, "GRAM_ROWS_PER_COLUMN", 1)
    text = """data N: int
data X: real[N, 3]
data g: int[N]
data h: int[N]
data y: real[N]
sample alpha ~ Normal(0, 1e7)
sample a: real[4] ~ Normal(0, 1)
sample c: real[3] ~ Normal(0, 1)
sample beta: real[3] ~ Normal(0, 1)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + a[g] - c[h] + X @ beta, sigma)
"""
    rng = np.random.default_rng(0)
    X, g, h = rng.normal(0, 1, (N, K)), rng.integers(0, J, N), rng.integers(0, 3, N)
    y = 1e6 + X @ [0.5, -1.0, 2.0] + rng.normal(0, 1, N)

    def compile_(fuse):
        program = parse(text, "model.ppl")
        values, dims = load_data(check(program), {"N": N, "X": X, "g": g, "h": h, "y": y})
        return compile_model(check(program, dims), values, fuse=fuse)
    fused, plain = compile_(True), compile_(False)
    assert type(_kernel(fused)).__name__ == "GramTerm"
    # near the minimum-norm least-squares fit, which has the mean in alpha
    Z = np.column_stack([np.ones(N), np.eye(J)[g], -np.eye(3)[h], X])
    fit = np.linalg.lstsq(Z, y, rcond=None)[0]
    z = np.concatenate([fit, [0.0]]) + 1e-2 * rng.normal(size=(3, 12))

    def likelihood(compiled):
        return lambda z: anp.sum(compiled.terms(z)[-1][1] * np.arange(1.0, len(z) + 1.0))
    np.testing.assert_allclose(fused.terms(z)[-1][1], plain.terms(z)[-1][1], rtol=1e-9)
    want = grad(likelihood(plain))(z)
    np.testing.assert_allclose(grad(likelihood(fused))(z), want, rtol=0,
                               atol=1e-8 * np.abs(want).max())


@pytest.mark.parametrize("rows, predictors, kind", [
    (kernels.GRAM_MIN_ROWS, 3, "GramTerm"),
    (kernels.GRAM_MIN_ROWS - 1, 3, "FusedTerm"),            # few rows: the pass is cheap
    (kernels.GRAM_MIN_ROWS, kernels.GRAM_MIN_ROWS // kernels.GRAM_ROWS_PER_COLUMN, "FusedTerm"),
    # at the bound: the intercept's column and N / GRAM_ROWS_PER_COLUMN - 1 predictors
    (kernels.GRAM_MIN_ROWS, kernels.GRAM_MIN_ROWS // kernels.GRAM_ROWS_PER_COLUMN - 1, "GramTerm"),
])
def test_the_gram_form_is_taken_on_many_rows_and_few_columns(rows, predictors, kind):
    # the default thresholds: an intercept and `predictors` columns
    text = """data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample alpha ~ Normal(0, 1)
sample beta: real[K] ~ Normal(0, 1)
observe y ~ Normal(alpha + X @ beta, 1.0)
"""
    rng = np.random.default_rng(0)
    data = {"N": rows, "K": predictors, "X": rng.normal(0, 1, (rows, predictors)),
            "y": rng.normal(0, 1, rows)}
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    compiled = compile_model(check(program, dims), values)
    assert [type(s.kernel).__name__ for s in compiled._steps
            if getattr(s, "kernel", None) is not None] == [kind]


def test_a_normal_predictor_infinite_from_the_data_keeps_the_plain_path(monkeypatch):
    # log(0) in a Normal's location: the plain path's density is -inf at every draw (its
    # gradient inf); the Gram form's sums over the rows would be nan (u = y - offset infinite
    # and its least-squares fit nan), so such a predictor takes no kernel
    monkeypatch.setattr(kernels, "GRAM_MIN_ROWS", 0)
    monkeypatch.setattr(kernels, "GRAM_ROWS_PER_COLUMN", 1)
    text = """data N: int
data w: real<lower=0>[N]
data x: real[N]
data y: real[N]
sample alpha ~ Normal(0, 1)
sample beta ~ Normal(0, 1)
observe y ~ Normal(log(w) + alpha + beta * x, 1.0)
"""
    data = {"N": 4, "w": [1.0, 0.0, 2.0, 1.0], "x": [0.1, 0.2, 0.3, 0.4],
            "y": [0.5, -1.0, 2.0, 0.3]}

    def compile_(fuse):
        program = parse(text, "model.ppl")
        with np.errstate(divide="ignore"):
            values, dims = load_data(check(program), data)
        return compile_model(check(program, dims), values, fuse=fuse)
    fused, plain = compile_(True), compile_(False)
    assert not any(getattr(s, "kernel", None) is not None for s in fused._steps)
    z = np.random.default_rng(0).normal(0, 1, (3, 2))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(fused.log_joint(z), plain.log_joint(z))
        assert np.all(fused.log_joint(z) == -np.inf)


@pytest.mark.parametrize("scale", ["s", "exp(b * x)", "sigma * s"])
def test_a_normal_scale_per_row_keeps_the_plain_path(scale):
    # the kernels take a scalar sigma only (one log sigma times N, one 1 / sigma^2): a scale
    # per row, data or latent, is the plain path's, whose sums are the same terms in the same
    # order (bit for bit)
    text = _HEAD + f"""data y: real[N]
data s: real<lower=0>[N]
sample alpha ~ Normal(0, 1)
sample b ~ Normal(0, 0.5)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + x, {scale})
"""
    rng = np.random.default_rng(0)
    data = {"N": N, "X": rng.normal(0, 1, (N, K)), "x": rng.normal(0, 1, N),
            "g": rng.integers(0, J, N), "h": rng.integers(0, 3, N), "m": rng.integers(1, 9, N),
            "y": rng.normal(0, 1, N), "s": rng.uniform(0.5, 2.0, N)}
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    fused, plain = (compile_model(check(program, dims), values, fuse=fuse) for fuse in (True, False))
    assert not any(getattr(s, "kernel", None) is not None for s in fused._steps)
    z = draws(fused)
    np.testing.assert_array_equal(fused.log_joint(z), plain.log_joint(z))
    np.testing.assert_array_equal(grad(_total(fused))(z), grad(_total(plain))(z))


_INFINITE_PREDICTOR_CASES = {
    # log(0) = -inf in the offset: Poisson(0 | log rate -inf) is 1, as Stan's poisson_log has it
    "poisson": ("""data exposure: real<lower=0>[N]
let offset = log(exposure)
observe y ~ Poisson(log_rate=offset + alpha + beta * x)
""", {"exposure": [1.0, 0.0, 2.0, 1.0], "y": [1, 0, 3, 2]}),
    # a base rate p0 of 0 or 1 makes the logit -inf or +inf: y = 0 or 1 (all n trials) is sure,
    # as scipy.stats.binom.logpmf(n, n, 1.0) = 0 and Stan's bernoulli_logit have it
    "bernoulli": ("""data p0: real<lower=0, upper=1>[N]
let offset = log(p0) - log1p(-p0)
observe y ~ Bernoulli(logit=offset + alpha + beta * x)
""", {"p0": [0.5, 0.0, 1.0, 0.3], "y": [1, 0, 1, 0]}),
    "binomial": ("""data p0: real<lower=0, upper=1>[N]
let offset = log(p0) - log1p(-p0)
observe y ~ Binomial(3, logit=offset + alpha + beta * x)
""", {"p0": [0.5, 0.0, 1.0, 0.3], "y": [1, 0, 3, 2]}),
    # a logit of +inf in a row makes its category sure (probability 1, the others 0), the
    # limit of the softmax; logsumexp made it inf - inf = nan
    "categorical": ("""data P0: real<lower=0, upper=1>[N, 3]
data W: real[N, 3]
let offset = log(P0) - log1p(-P0)
observe y ~ Categorical(logits=offset + alpha * x[1] + beta * W)
""", {"P0": [[0.5, 0.2, 0.3], [1.0, 0.5, 0.0], [0.1, 0.0, 1.0], [0.3, 0.3, 0.3]],
      "W": [[0.0, 1.0, 2.0], [0.5, -1.0, 0.2], [1.0, 0.0, -2.0], [0.3, 0.1, 0.0]],
      "y": [1, 0, 2, 2]}),
}


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("case", sorted(_INFINITE_PREDICTOR_CASES))
def test_a_row_sure_under_an_infinite_predictor_adds_nothing(case, fuse):
    # the rows with a predictor infinite from the data and the y it makes sure: their
    # terms are 0 and so are their gradients, the same log joint as with the rows dropped
    # (0 * inf and inf - inf made it nan at every draw, and the fit refused the model)
    statements, columns = _INFINITE_PREDICTOR_CASES[case]
    text = """data N: int
data x: real[N]
data y: int[N]
sample alpha ~ Normal(0, 5)
sample beta ~ Normal(0, 1)
""" + statements
    rows = {"x": [0.1, 0.2, 0.3, 0.4], **columns}
    kept = [0, 3] if case != "poisson" else [0, 2, 3]

    def log_joint(data):
        program = parse(text, "model.ppl")
        with np.errstate(divide="ignore"):
            values, dims = load_data(check(program), data)
        return compile_model(check(program, dims), values, fuse=fuse).log_joint

    everything = log_joint({"N": 4, **rows})
    dropped = log_joint({"N": len(kept), **{k: [v[i] for i in kept] for k, v in rows.items()}})
    z = np.random.default_rng(0).normal(0, 1, (5, 2))
    np.testing.assert_allclose(everything(z), dropped(z), rtol=1e-13)
    gradient = grad(lambda z: anp.sum(everything(z)))(z)
    np.testing.assert_allclose(gradient, grad(lambda z: anp.sum(dropped(z)))(z), rtol=1e-12)
