"""Discrete latents summed out by enumeration: the log joint against brute-force summation over
every joint value of the discrete latents, exact conditional probabilities, gradients, and the
reported rows. The located errors are pinned by tests/cases/bad/*.ppl."""
import functools
import itertools

import numpy as np
import pytest
import scipy.stats
from autograd import grad
from scipy.special import logsumexp

import ppl
from ppl.compiler import compile_model
from ppl.errors import PplError
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.enumeration import plan
from ppl.frontend.parse import parse

Y = np.array([-1.3, 0.4, 2.2])


def compile_text(text, data=None):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data or {})
    return compile_model(check(program, dims), values)


def _mixture_brute(u):
    # mu = u[0:2]; z in {0,1}^3 with P(z=1) = 0.7; y_n ~ Normal(mu[z_n], 1)
    mu = u[:2]
    prior = scipy.stats.norm.logpdf(mu, 0, 3).sum()
    joint = [np.log([0.3, 0.7])[list(z)].sum()
             + scipy.stats.norm.logpdf(Y, mu[list(z)], 1).sum()
             for z in itertools.product([0, 1], repeat=3)]
    return prior + logsumexp(joint)


def _change_point_brute(u):
    # e1, e2 = exp(u); s uniform on {0..3}; y[t] ~ Poisson(t < s ? e1 : e2)
    e1, e2 = np.exp(u[:2])
    counts = np.array([3, 4, 0, 1])
    prior = (scipy.stats.expon.logpdf([e1, e2]) + u[:2]).sum()
    t = np.arange(4)
    joint = [np.log(0.25) + scipy.stats.poisson.logpmf(counts, np.where(t < s, e1, e2)).sum()
             for s in range(4)]
    return prior + logsumexp(joint)


def _binomial_brute(u):
    # k[i] ~ Binomial(n[i], 0.4) with n = [2, 3]; y[i] ~ Normal(k[i] * b, 1), b = u[0]
    b = u[0]
    y = np.array([1.0, 2.5])
    joint = [scipy.stats.binom.logpmf(k, [2, 3], 0.4).sum()
             + scipy.stats.norm.logpdf(y, np.array(k) * b, 1).sum()
             for k in itertools.product(range(3), range(4))]
    return scipy.stats.norm.logpdf(b) + logsumexp(joint)


def _matrix_brute(u):
    # z [2] Bernoulli(0.5) reaches y [3, 2] through mu[z][newaxis, :]: rows share z's elements
    mu = u[:2]
    y = np.array([[0.1, 1.0], [0.3, 1.2], [-0.2, 0.8]])
    joint = [2 * np.log(0.5) + scipy.stats.norm.logpdf(y, mu[list(z)][None, :], 1).sum()
             for z in itertools.product([0, 1], repeat=2)]
    return scipy.stats.norm.logpdf(mu).sum() + logsumexp(joint)


def _occupancy_brute(u):
    # z[i] ~ Bernoulli(psi) site occupied; detections y[i, j] ~ Bernoulli(z[i] * p): an
    # unoccupied site with a detection has probability 0 (psi, p = sigmoid(u))
    psi, p = 1 / (1 + np.exp(-u[:2]))
    jacobian = np.log(psi * (1 - psi) * p * (1 - p))
    total = 0.0
    for row in OCCUPANCY:
        occupied = np.log(psi) + scipy.stats.bernoulli.logpmf(row, p).sum()
        empty = np.log1p(-psi) if row.sum() == 0 else -np.inf
        total += logsumexp([occupied, empty])
    return jacobian + total


def _certain_binomial_brute(u):
    # y[i] ~ Binomial(3, 1 - z[i] * q): at z = 0, p = 1 and only y = 3 is possible
    psi, q = 1 / (1 + np.exp(-u[:2]))
    jacobian = np.log(psi * (1 - psi) * q * (1 - q))
    counts = np.array([3, 1, 2])
    one = np.log(psi) + scipy.stats.binom.logpmf(counts, 3, 1 - q)
    zero = np.log1p(-psi) + np.where(counts == 3, 0.0, -np.inf)
    return jacobian + np.logaddexp(one, zero).sum()


def _zero_inflated_brute(u):
    # y[i] ~ Poisson(lam * (1 - z[i])): at z = 1 the rate is 0, so only y = 0 is possible
    lam, pi = np.exp(u[0]), 1 / (1 + np.exp(-u[1]))
    prior = scipy.stats.expon.logpdf(lam) + u[0] + np.log(pi * (1 - pi))
    counts = np.array([0, 3, 0, 1])
    poisson = np.log1p(-pi) + scipy.stats.poisson.logpmf(counts, lam)
    zero = np.log(pi) + np.where(counts == 0, 0.0, -np.inf)
    return prior + np.logaddexp(poisson, zero).sum()


def _ragged_offset_brute(u, lo=(0, 2, 1), hi=(1, 3, 3), y=(0.3, -1.2, 2.0)):
    # z[i] uniform on {lo[i]..hi[i]}; y[i] ~ Normal(mu[z[i] - lo[i]], 1), mu = u
    lo, hi, y = np.array(lo), np.array(hi), np.array(y)
    total = scipy.stats.norm.logpdf(u).sum()
    for i in range(len(y)):
        values = np.arange(lo[i], hi[i] + 1)
        total += logsumexp(scipy.stats.norm.logpdf(y[i], u[values - lo[i]], 1)) \
            - np.log(len(values))
    return total


def _matrix_latent_brute(u):
    # z [2, 2] Bernoulli(0.3), four independent elements; y[i, j] ~ Normal(mu[z[i, j]], 1)
    y = np.array([0.4, -1.0, 1.5, 0.2])
    joint = [scipy.stats.bernoulli.logpmf(z, 0.3).sum()
             + scipy.stats.norm.logpdf(y, u[list(z)], 1).sum()
             for z in itertools.product([0, 1], repeat=4)]
    return scipy.stats.norm.logpdf(u, 0, 2).sum() + logsumexp(joint)


def _reached_latent_brute(u):
    # z ~ Bernoulli(0.4); sigma = exp(u) ~ HalfNormal(1 + z), reached by z, log|det J| = u;
    # y ~ Normal(0, sigma); w ~ Normal(0, 2) reads data alone: a constant term
    sigma = np.exp(u[0])
    y, w = np.array([0.7, -1.9, 0.2]), np.array([0.5, -3.0])
    joint = [scipy.stats.bernoulli.logpmf(z, 0.4)
             + scipy.stats.halfnorm.logpdf(sigma, scale=1 + z)
             + scipy.stats.norm.logpdf(y, 0, sigma).sum() for z in (0, 1)]
    return scipy.stats.norm.logpdf(w, 0, 2).sum() + u[0] + logsumexp(joint)


def _event_term_brute(u):
    # z ~ Bernoulli(0.3) reaches an MvNormal observe: one term per event, not per element
    joint = [scipy.stats.bernoulli.logpmf(z, 0.3)
             + scipy.stats.multivariate_normal.logpdf([0.4, -0.3], z * u, EVENT_COV)
             for z in (0, 1)]
    return scipy.stats.norm.logpdf(u).sum() + logsumexp(joint)


def _reached_ar1_brute(u, y=(0.3, -0.8, 1.1)):
    # x = u ~ AR1(0, 0.5, 1 + z) reached by z ~ Bernoulli(0.4): x keeps its values as
    # coordinates (not innovations, whose scale would depend on z); y ~ Normal(x, 1)
    def ar1(x, sigma):
        return (scipy.stats.norm.logpdf(x[0], 0, sigma / np.sqrt(1 - 0.25))
                + scipy.stats.norm.logpdf(x[1:], 0.5 * x[:-1], sigma).sum())
    joint = [scipy.stats.bernoulli.logpmf(z, 0.4) + ar1(u, 1 + z) for z in (0, 1)]
    return scipy.stats.norm.logpdf(y, u, 1).sum() + logsumexp(joint)


EVENT_COV = [[1.0, 0.5], [0.5, 2.0]]
OCCUPANCY = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1]])


CASES = {
    "mixture": (
        "data y: real[3]\nsample mu: real[2] ~ Normal(0, 3)\n"
        "sample z: int[3] ~ Categorical([0.3, 0.7])\nobserve y ~ Normal(mu[z], 1)\n",
        {"y": Y}, _mixture_brute),
    "change_point_let_and_comparison": (
        "data T: int\ndata y: int[T]\ndata t: int[T]\nsample e1 ~ Exponential(1)\n"
        "sample e2 ~ Exponential(1)\nsample s: int<lower=0, upper=T - 1> ~ "
        "Categorical([0.25, 0.25, 0.25, 0.25])\n"
        "let rate = e1 * (t < s) + e2 * (t >= s)\nobserve y ~ Poisson(rate)\n",
        {"T": 4, "y": [3, 4, 0, 1], "t": [0, 1, 2, 3]}, _change_point_brute),
    "binomial_ragged_support_and_factor": (
        "data n: int[2]\ndata y: real[2]\nsample b ~ Normal(0, 1)\n"
        "sample k: int[2] ~ Binomial(n, 0.4)\nfactor lpdf(Normal(k * b, 1), y)\n",
        {"n": [2, 3], "y": [1.0, 2.5]}, _binomial_brute),
    "newaxis_broadcast_over_rows": (
        "data y: real[3, 2]\nsample mu: real[2] ~ Normal(0, 1)\n"
        "sample z: int[2] ~ Bernoulli(0.5)\nobserve y ~ Normal(mu[z][newaxis, :], 1)\n",
        {"y": [[0.1, 1.0], [0.3, 1.2], [-0.2, 0.8]]}, _matrix_brute),
    "occupancy_zero_probability_configuration": (
        "data y: int[4, 3]\nsample psi ~ Beta(1, 1)\nsample p ~ Beta(1, 1)\n"
        "sample z: int[4] ~ Bernoulli(psi)\nobserve y ~ Bernoulli(z[:, newaxis] * p)\n",
        {"y": OCCUPANCY}, _occupancy_brute),
    "binomial_certain_at_one_value": (
        "data y: int[3]\nsample psi ~ Beta(1, 1)\nsample q ~ Beta(1, 1)\n"
        "sample z: int[3] ~ Bernoulli(psi)\nobserve y ~ Binomial(3, 1 - z * q)\n",
        {"y": [3, 1, 2]}, _certain_binomial_brute),
    "zero_inflated_rate_zero_at_one_value": (
        "data y: int[4]\nsample lam ~ Exponential(1)\nsample pi ~ Beta(1, 1)\n"
        "sample z: int[4] ~ Bernoulli(pi)\nobserve y ~ Poisson(lam * (1 - z))\n",
        {"y": [0, 3, 0, 1]}, _zero_inflated_brute),
    # each element's values outside its support were enumerated too (masked out) and indexed
    # mu out of range: an IndexError (found by the shapes audit)
    "ragged_support_offset_index": (
        "data lo: int[3]\ndata hi: int[3]\ndata y: real[3]\nsample mu: real[3] ~ Normal(0, 1)\n"
        "sample z: int[3] ~ DiscreteUniform(lo, hi)\nobserve y ~ Normal(mu[z - lo], 1)\n",
        {"lo": [0, 2, 1], "hi": [1, 3, 3], "y": [0.3, -1.2, 2.0]}, _ragged_offset_brute),
    # an element's values outside its support are evaluated at its own first value: at the
    # first value outside it (z[0] = 2, z[1] = 0) mu[z - lo] leaves mu's range: an
    # IndexError, and prepare's index check refused the model when its data was loaded
    "ragged_support_narrow_first_element": (
        "data lo: int[2]\ndata hi: int[2]\ndata y: real[2]\nsample mu: real[2] ~ Normal(0, 1)\n"
        "sample z: int[2] ~ DiscreteUniform(lo, hi)\nobserve y ~ Normal(mu[z - lo], 1)\n",
        {"lo": [0, 3], "hi": [1, 4], "y": [0.5, -0.4]},
        functools.partial(_ragged_offset_brute, lo=(0, 3), hi=(1, 4), y=(0.5, -0.4))),
    # a latent of two axes keeps both apart (a block of rank 2 in the term)
    "matrix_shaped_latent": (
        "data y: real[2, 2]\nsample mu: real[2] ~ Normal(0, 2)\n"
        "sample z: int[2, 2] ~ Bernoulli(0.3)\nobserve y ~ Normal(mu[z], 1)\n",
        {"y": [[0.4, -1.0], [1.5, 0.2]]}, _matrix_latent_brute),
    # a continuous latent whose prior reads z is enumerated with it, its log-Jacobian added
    # outside the marginal; and a constant term (summed at compile time) beside enumeration
    "latent_reached_by_discrete_and_constant_term": (
        "data y: real[3]\ndata w: real[2]\nsample z: int ~ Bernoulli(0.4)\n"
        "sample sigma ~ HalfNormal(1 + z)\nobserve y ~ Normal(0, sigma)\n"
        "observe w ~ Normal(0, 2)\n",
        {"y": [0.7, -1.9, 0.2], "w": [0.5, -3.0]}, _reached_latent_brute),
    # a term with an event axis reached by z: its batch (no axis) is what z's values repeat over
    "event_term_reached_by_discrete": (
        "data y: real[2]\nsample mu: real[2] ~ Normal(0, 1)\nsample z: int ~ Bernoulli(0.3)\n"
        "observe y ~ MvNormal(z * mu, [[1.0, 0.5], [0.5, 2.0]])\n",
        {"y": [0.4, -0.3]}, _event_term_brute),
    "ar1_latent_reached_by_discrete": (
        "data y: real[3]\nsample z: int ~ Bernoulli(0.4)\n"
        "sample x: real[3] ~ AR1(0, 0.5, 1 + z)\nobserve y ~ Normal(x, 1)\n",
        {"y": [0.3, -0.8, 1.1]}, _reached_ar1_brute),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_joint_equals_brute_force_summation(name, rng):
    text, data, brute = CASES[name]
    model = compile_text(text, data)
    zeta = rng.normal(0, 1, (3, model.dim))
    np.testing.assert_allclose(model.log_joint(zeta), [brute(u) for u in zeta], rtol=1e-10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_terms_sum_to_the_log_joint(name, rng):
    # the terms (blamed one by one when a fit diverges) left out the log-Jacobian of a latent
    # reached by a discrete latent: they summed to the log joint minus log sigma
    text, data, _ = CASES[name]
    model = compile_text(text, data)
    zeta = rng.normal(0, 1, (3, model.dim))
    pieces = model.terms(zeta)
    assert all(np.shape(values) == (3,) for _, values in pieces)
    np.testing.assert_allclose(sum(values for _, values in pieces), model.log_joint(zeta),
                               rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_of_the_marginal_matches_central_differences(name, rng):
    text, data, brute = CASES[name]
    model = compile_text(text, data)
    u = rng.normal(0, 1, model.dim)
    g = grad(lambda v: model.log_joint(v[None])[0])(u)
    h = 1e-6
    numeric = [(brute(u + h * e) - brute(u - h * e)) / (2 * h) for e in np.eye(model.dim)]
    np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_conditional_probabilities_are_exact_for_known_components():
    # No continuous latent reaches z: P(z_n = 1 | y_n) = 0.3 N(y|2) / (0.3 N(y|2) + 0.7 N(y|-2))
    model = compile_text("data y: real[3]\nsample tau ~ Normal(0, 1)\n"
                         "sample z: int[3] ~ Bernoulli(0.3)\n"
                         "observe y ~ Normal([-2.0, 2.0][z], 1)\n", {"y": Y})
    p = model.probabilities(np.zeros((2, model.dim)))["z"]
    one = 0.3 * scipy.stats.norm.pdf(Y, 2, 1)
    expected = one / (one + 0.7 * scipy.stats.norm.pdf(Y, -2, 1))
    assert p.shape == (2, 3, 2)
    np.testing.assert_allclose(p[..., 1], np.broadcast_to(expected, (2, 3)), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


def test_conditional_probabilities_match_brute_force_for_a_change_point(rng):
    text, data, _ = CASES["change_point_let_and_comparison"]
    model = compile_text(text, data)
    u = rng.normal(0, 1, model.dim)
    e1, e2 = np.exp(u)
    t, counts = np.arange(4), np.array(data["y"])
    log_p = np.array([scipy.stats.poisson.logpmf(counts, np.where(t < s, e1, e2)).sum()
                      for s in range(4)])
    np.testing.assert_allclose(model.probabilities(u[None])["s"][0],
                               np.exp(log_p - logsumexp(log_p)), rtol=1e-10)


def test_conditional_probabilities_are_zero_outside_each_elements_support(rng):
    # z[i] uniform on {lo[i]..hi[i]}: P(z[i] = v | y) is proportional to
    # N(y[i] | mu[v - lo[i]], 1) inside and exactly 0 outside, whatever the value stood in there
    text, data, _ = CASES["ragged_support_offset_index"]
    model = compile_text(text, data)
    u = rng.normal(0, 1, model.dim)
    lo, hi, y = (np.array(data[k]) for k in ("lo", "hi", "y"))
    values = model.values()["z"]
    log_p = np.full((3, values.size), -np.inf)
    for i in range(3):
        inside = (values >= lo[i]) & (values <= hi[i])
        log_p[i, inside] = scipy.stats.norm.logpdf(y[i], u[values[inside] - lo[i]], 1)
    expected = np.exp(log_p - logsumexp(log_p, axis=1, keepdims=True))
    np.testing.assert_allclose(model.probabilities(u[None])["z"][0], expected, rtol=1e-12,
                               atol=0)


def test_draws_invert_the_conditional_distribution_at_given_uniforms():
    # s on {2..5}: a uniform u draws the first value whose cumulative probability reaches u;
    # u halfway through each value's probability draws that value, every one in turn
    model = compile_text("data y: real[2]\nsample mu ~ Normal(0, 1)\n"
                         "sample s: int ~ DiscreteUniform(2, 5)\n"
                         "observe y ~ Normal(mu + s, 2)\n", {"y": [3.0, 4.5]})
    zeta = np.zeros((4, 1))
    p = model.probabilities(zeta)["s"]          # the same row at each of the 4 draws
    u = (np.cumsum(p, axis=1) - p / 2).diagonal()[:, None]
    np.testing.assert_array_equal(model.constrained(zeta, uniforms={"s": u})["s"], [2, 3, 4, 5])


def test_draws_of_discrete_latents_follow_their_conditional_probabilities():
    model = compile_text("data y: real[3]\nsample tau ~ Normal(0, 1)\n"
                         "sample z: int[3] ~ Bernoulli(0.3)\n"
                         "observe y ~ Normal([-0.5, 0.5][z], 1)\n", {"y": Y})
    n = 20000
    draws = model.constrained(np.zeros((n, model.dim)), np.random.default_rng(1))["z"]
    p = model.probabilities(np.zeros((1, model.dim)))["z"][0, :, 1]
    # z = 4 standard errors of a proportion from n draws
    assert np.all(np.abs(draws.mean(axis=0) - p) < 4 * np.sqrt(p * (1 - p) / n))


def test_discrete_draws_are_made_from_the_callers_generator():
    # constrained(zeta, rng) draws the discrete latents at uniforms from rng, as
    # uniforms(rng, S) gives them: a generator of its own (seeded 0) made every call's draws
    # the same, whatever rng was passed
    model = compile_text("data y: real[3]\nsample tau ~ Normal(0, 1)\n"
                         "sample z: int[3] ~ Bernoulli(0.5)\n"
                         "observe y ~ Normal([-0.5, 0.5][z], 1)\n", {"y": Y})
    zeta = np.zeros((50, model.dim))
    draws = model.constrained(zeta, np.random.default_rng(7))["z"]
    uniforms = model.uniforms(np.random.default_rng(7), 50)
    np.testing.assert_array_equal(draws, model.constrained(zeta, uniforms=uniforms)["z"])
    assert draws.dtype == np.int64


def test_discrete_latent_takes_no_unconstrained_coordinates():
    text, data, _ = CASES["mixture"]
    model = compile_text(text, data)
    assert model.dim == 2 and [slot.name for slot in model.slots] == ["mu"]
    assert model.values()["z"].tolist() == [0, 1]


def test_prior_draws_of_a_discrete_latent_are_ints_in_its_support(rng):
    text, data, _ = CASES["mixture"]
    draws = compile_text(text, data).sample_prior(rng, 50)
    assert draws["z"].shape == (50, 3) and set(np.unique(draws["z"])) <= {0, 1}


def test_an_enumeration_too_large_is_a_located_error():
    text = ("data N: int\ndata y: real[N]\ndata K: int\nsample mu ~ Normal(0, 1)\n"
            "sample k: int<lower=0, upper=K - 1> ~ Categorical(softmax(y[:K]))\n"
            "observe y ~ Normal(mu + k, 1)\n")
    with pytest.raises(PplError) as info:
        compile_text(text, {"N": 2000, "K": 1000, "y": np.linspace(0, 1, 2000)})
    assert info.value.message == ("enumerating the discrete latents of this statement needs "
                                  "2000000 values at once; the limit is 1000000")
    assert (info.value.span.line, info.value.span.col) == (6, 1)


def test_enumerated_labels_and_mixture_have_the_same_log_joint(rng):
    head = ("data y: real[3]\nsample w: real[2] ~ Dirichlet([2.0, 2.0])\n"
            "sample mu: ordered[2] ~ Normal(0, 5)\nsample sigma ~ HalfNormal(2)\n")
    mixture = compile_text(head + "observe y ~ Mixture(w, Normal(mu, sigma))\n", {"y": Y})
    labels = compile_text(head + "sample z: int[3] ~ Categorical(w)\n"
                          "observe y ~ Normal(mu[z], sigma)\n", {"y": Y})
    zeta = rng.normal(0, 1, (4, mixture.dim))
    np.testing.assert_allclose(labels.log_joint(zeta), mixture.log_joint(zeta), rtol=1e-12)


@pytest.mark.parametrize("latent, shape, use", [
    ("int<lower=0, upper=3>[1] ~ Poisson(1.5)", (1,), "2 * z[0]"),
    ("int[1, 1] ~ Bernoulli(0.3)", (1, 1), "sum(z)"),
    ("int[1] ~ Bernoulli(0.3)", (1,), "mean(z)"),
    ("int<lower=0, upper=1>[1] ~ Bernoulli(0.3)", (1,), "m[z]"),   # [1], broadcast to [3]
])
def test_a_discrete_latent_of_one_element_is_enumerated_as_a_scalar(latent, shape, use, rng):
    # int[1] was refused ("'sum' combines values across the elements"), though its one
    # element has nothing to stay independent of; its log joint is the scalar latent's
    tail = "sample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu + {}, 1)\n"
    data = {"y": Y, "m": np.array([0.0, 3.0])}
    head = "data y: real[3]\ndata m: real[2]\nsample z: "
    scalar = latent.replace("[1, 1]", "").replace("[1]", "")
    one = compile_text(head + latent + "\n" + tail.format(use), data)
    reference = compile_text(head + scalar + "\n" + tail.format(
        use.replace("z[0]", "z").replace("sum(z)", "z").replace("mean(z)", "z")), data)
    zeta = rng.normal(0, 1, (4, 1))
    np.testing.assert_allclose(one.log_joint(zeta), reference.log_joint(zeta), rtol=1e-12)
    probabilities = one.probabilities(zeta)["z"]
    assert probabilities.shape == (4, *shape, reference.values()["z"].size)
    np.testing.assert_allclose(probabilities.reshape(4, -1),
                               reference.probabilities(zeta)["z"], rtol=1e-12)


def test_fit_reports_probability_rows_and_probabilities():
    import ppl
    model = ppl.compile("data y: real[3]\nsample tau ~ Normal(0, 1)\n"
                        "sample z: int[3] ~ Bernoulli(0.3)\n"
                        "observe y ~ Normal([-2.0, 2.0][z], 1)\n")
    fit = model.fit({"y": Y.tolist()}, seed=0, iter=200, draws=50)
    p = fit.probabilities()["z"]
    rows = fit.summary().to_dict()
    assert p.shape == (3, 2) and fit.values()["z"].tolist() == [0, 1]
    assert [name for name in rows if name.startswith("z")] == [
        "z[0]=0", "z[0]=1", "z[1]=0", "z[1]=1", "z[2]=0", "z[2]=1"]
    assert rows["z[2]=1"]["mean"] == pytest.approx(p[2, 1], rel=1e-12)
    assert fit.draws()["z"].shape == (50, 3)


@pytest.mark.parametrize("correct", ["none", "psis"])
def test_probability_rows_come_from_the_summarys_own_draws(correct):
    # they came from the draws option's draws (here 50; 1000 by default), resampled when
    # corrected, while the continuous rows used the summary's 4000 (weighted when corrected):
    # twice the Monte Carlo error, or more; now they are the summary's draws and weights
    import ppl
    fit = ppl.compile("data y: real[3]\nsample mu ~ Normal(0, 1)\n"
                      "sample z: int[3] ~ Bernoulli(0.3)\nobserve y ~ Normal(mu + 2 * z, 1)\n"
                      ).fit({"y": Y.tolist()}, guide="meanfield", seed=0, iter=200, draws=50,
                            correct=correct)
    assert fit.corrected == (correct == "psis")
    if fit.corrected:
        p = fit._summary_weights()
        weights, zeta = np.exp(p.log_weights), fit._zeta(p.log_weights.size)
    else:
        zeta = fit._zeta(4000)
        weights = np.full(len(zeta), 1 / len(zeta))
    expected = weights @ fit.compiled.probabilities(zeta)["z"][:, 2, 1]
    assert fit.summary().rows["z[2]=1"][0] == pytest.approx(expected, rel=1e-12)
    assert fit.probabilities()["z"][2, 1] == pytest.approx(expected, rel=1e-12)  # fit.json's


@pytest.mark.parametrize("text, data, message", [
    # at most MAX_VALUES = 10,000 values of one discrete latent
    ("data T: int\nsample mu ~ Normal(0, 1)\nsample s: int ~ DiscreteUniform(0, T - 1)\n",
     {"T": 10_000}, None),
    ("data T: int\nsample mu ~ Normal(0, 1)\nsample s: int ~ DiscreteUniform(0, T - 1)\n",
     {"T": 10_001}, "discrete latent 's' takes 10001 values; at most 10000 can be enumerated"),
    # at most MAX_ENUMERATION = 10^6 values of one statement at once: K = 1000 times N
    ("data N: int\ndata y: real[N]\nsample k: int ~ DiscreteUniform(0, 999)\n"
     "observe y ~ Normal(k, 1)\n", {"N": 1000, "y": np.zeros(1000)}, None),
    ("data N: int\ndata y: real[N]\nsample k: int ~ DiscreteUniform(0, 999)\n"
     "observe y ~ Normal(k, 1)\n", {"N": 1001, "y": np.zeros(1001)},
     "enumerating the discrete latents of this statement needs 1001000 values at once; the "
     "limit is 1000000"),
], ids=["values_at_limit", "values_over", "enumeration_at_limit", "enumeration_over"])
def test_the_enumeration_limits_can_be_reached_not_passed(text, data, message):
    if message is not None:
        with pytest.raises(PplError) as info:
            compile_text(text, data)
        assert info.value.message == message
        return
    model = compile_text(text, data)
    assert np.isfinite(model.log_joint(np.zeros((1, model.dim)))).all()


def test_too_many_values_from_the_data_is_a_located_error():
    with pytest.raises(PplError) as info:
        compile_text("data T: int\nsample mu ~ Normal(0, 1)\n"
                     "sample s: int ~ DiscreteUniform(0, T - 1)\n", {"T": 20000})
    assert info.value.message == ("discrete latent 's' takes 20000 values; at most 10000 can "
                                  "be enumerated")
    assert info.value.span.line == 3


@pytest.mark.parametrize("index, latent, message", [
    ("mu[z - 1]", "Bernoulli(0.5)", "index 'z - 1' is -1 at (z - 1)[0] when the discrete "
     "latent 'z' is 0, out of range for a dimension of size 3 (indexing is 0-based: 0 to 2) "
     "(a negative index is not counted from the end)"),
    ("mu[z]", "Categorical([0.25, 0.25, 0.25, 0.25])", "index 'z' is 3 at z[0] when the "
     "discrete latent 'z' is 3, out of range for a dimension of size 3 (indexing is 0-based: "
     "0 to 2)"),
    ("mu[k]", "DiscreteUniform(0, 2)", "index 'k' is 3 at k[0] when the discrete latent 'z' "
     "is 2, out of range for a dimension of size 3 (indexing is 0-based: 0 to 2)")])
def test_an_index_computed_from_a_discrete_latent_must_stay_in_range(index, latent, message):
    # mu[z - 1] at z = 0 was silently mu's last element (numpy counts -1 from the end), and
    # mu[z] with a fourth category an IndexError in the middle of the fit (found by the
    # shapes audit): now a located error when the data is loaded, at every value of z
    text = ("data y: real[2]\nsample mu: real[3] ~ Normal(0, 1)\n"
            f"sample z: int[2] ~ {latent}\nlet k = z + 1\nobserve y ~ Normal({index}, 1)\n")
    with pytest.raises(PplError) as info:
        ppl.compile(text).prepare({"y": [0.5, 1.0]})
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.col) == (5, 23)


def test_categorical_values_come_from_the_data_shape():
    model = compile_text("data K: int\ndata w: real[K]\nsample mu: real[K] ~ Normal(0, 1)\n"
                         "sample z: int ~ Categorical(w)\n",
                         {"K": 3, "w": [0.2, 0.3, 0.5]})
    assert model.values()["z"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("shape", [(3,), (3, 4), (3, 2, 2)])
def test_tiled_rows_are_k_copies_with_the_summed_gradient(shape, rng):
    # the draw axis repeated K times by one broadcast (a concatenate of K copies had a VJP
    # quadratic in K): the same rows as the concatenate, and the gradient of a weighted sum
    # is the weights summed over the copies (to rounding: the sum's order differs)
    import autograd.numpy as anp

    from ppl.enumeration import _tile_rows
    value, k = rng.normal(size=shape), 5
    np.testing.assert_array_equal(_tile_rows(value, k), np.concatenate([value] * k, axis=0))
    weights = rng.normal(size=(k * shape[0],) + shape[1:])
    gradient = grad(lambda v: anp.sum(_tile_rows(v, k) * weights))(value)
    np.testing.assert_allclose(gradient, weights.reshape((k,) + shape).sum(axis=0),
                               rtol=1e-13, atol=1e-15)


TWO_DISCRETE = ("data y: real[3]\nsample mu: real[2] ~ Normal(0, 3)\n"
                "sample z: int[3] ~ Bernoulli(0.3)\nsample s: int ~ DiscreteUniform(0, 4)\n"
                "observe y ~ Normal(mu[z], 1)\nobserve y[0] ~ Normal(s, 1)\n")


def test_probabilities_and_draws_in_chunks_are_those_of_one_call(monkeypatch):
    # two discrete latents: each draws its uniforms for all the draws first, in source order,
    # as one call did, so chunks of 7 draws give the same draws, and the same probabilities
    # laid out alike (their means over the draws are then the same to the last bit too)
    import ppl
    from ppl import posterior
    fit = ppl.compile(TWO_DISCRETE).fit({"y": Y.tolist()}, seed=0, iter=200, draws=50)
    whole = (fit.probabilities_by_draw(), fit.probabilities(), fit.draws(),
             fit.summary().rows)
    calls, probabilities = [], fit.compiled.probabilities
    fit.compiled.probabilities = lambda z: calls.append(len(z)) or probabilities(z)
    monkeypatch.setattr(posterior, "draw_chunk", lambda compiled: 7)
    fit._cache.clear()
    chunked = (fit.probabilities_by_draw(), fit.probabilities(), fit.draws(),
               fit.summary().rows)
    assert max(calls) == 7
    for one, many in zip(whole[:3], chunked[:3]):
        assert one.keys() == many.keys()
        for name in one:
            np.testing.assert_array_equal(one[name], many[name])
    assert whole[3] == chunked[3]


def test_the_summary_enumerates_a_chunk_of_draws_at_a_time():
    # k's 1000 values at 2 elements a draw: 10^6 / (2 * 1000) = 500 draws a call; in one
    # call the summary's 4000 draws took 364 MB (tracemalloc), in chunks 56 MB
    import ppl
    fit = ppl.compile("data y: real[2]\nsample k: int[2] ~ DiscreteUniform(0, 999)\n"
                      "sample s ~ HalfNormal(1)\nobserve y ~ Normal(k, s)\n").fit(
        {"y": [10.0, 700.0]}, guide="meanfield", seed=0, iter=100, draws=100,
        correct="none")
    calls, probabilities = [], fit.compiled.probabilities
    fit.compiled.probabilities = lambda z: calls.append(len(z)) or probabilities(z)
    fit.summary()
    assert max(calls) == 500


@pytest.mark.parametrize("guide", ["auto", "flow", "scaled", "lowrank", "fullrank"])
def test_every_family_fits_a_model_whose_latents_are_all_discrete(guide):
    # nothing continuous to fit (D = 0): the flow's fit kept no layer parameters and its draws
    # raised ("operands could not be broadcast"), an internal error
    import ppl
    model = ppl.compile("data y: real[3]\nsample s: int ~ DiscreteUniform(0, 3)\n"
                        "observe y ~ Normal(s, 1)\n")
    fit = model.fit({"y": Y.tolist()}, guide=guide)
    # p(s | y) is proportional to exp(-0.5 sum (y - s)^2) over s = 0..3, exactly
    log_p = np.array([-0.5 * np.sum((Y - s) ** 2) for s in range(4)])
    np.testing.assert_allclose(fit.probabilities()["s"], np.exp(log_p - logsumexp(log_p)))
    assert fit.verdict().level == "reliable"


# ----- where the block of a discrete latent sits (frontend/enumeration.py) ------------------

BLOCK_HEAD = ("data x: real[4, 3]\ndata xs: real[3, 3]\ndata x2: real[3, 4]\n"
              "data mu: real[5, 6]\ndata idx: int<lower=0, upper=5>[4, 3]\n"
              "sample z: int[3] ~ Bernoulli(0.5)\n")


@pytest.mark.parametrize("text, positions", [
    # z [3] broadcast against [4, 3]: numpy puts its axis last (block at 1)
    ("let a = x + z\n", {6: 1}),
    ("data y: real[4, 3]\nobserve y ~ Normal(z, 1)\n", {7: 1}),
    # a reduction before the block moves it one axis left
    ("let w = x + z\nlet s = sum(w, axis=0)\n", {6: 1, 7: 0}),
    # a reduction just after the block keeps it
    ("let w = x2 * z[:, newaxis]\nlet s = sum(w, axis=1)\n", {6: 0, 7: 0}),
    # a scalar index before the block removes that axis
    ("let w = x + z\nlet v = w[0]\n", {6: 1, 7: 0}),
    # mu[z, idx]: z [3] and idx [4, 3] broadcast to [4, 3], z's elements along the last axis
    ("let a = mu[z, idx]\n", {6: 1}),
], ids=["broadcast", "observe", "reduce_before", "reduce_after", "index_before", "gather"])
def test_the_block_of_a_discrete_latent_sits_where_numpy_puts_its_axis(text, positions):
    model = check(parse(BLOCK_HEAD + text, "model.ppl"))
    found = plan(model)
    assert found[5] == ("z", 0)
    assert {i: found[i] for i in positions} == {i: ("z", p) for i, p in positions.items()}


@pytest.mark.parametrize("text, message", [
    ("let a = z[:2]\n", "slicing cuts"),
    # z's block at axis 1 in a, at axis 0 in b: a + b lines up different elements of z
    ("let a = xs + z\nlet b = xs * z[:, newaxis]\nlet c = a + b\n", "broadcasting lines up"),
    ("factor lpdf(Mixture([0.5, 0.5, 0.0], Normal(z, 1.0)), 0.0)\n", "a mixture combines values"),
    # an index read from z gathers, whatever the other items do to the block
    ("let w = x2 * z[:, newaxis]\nlet a = w[:2, z]\n", "indexing gathers"),
], ids=["slice_with_a_stop", "blocks_at_different_axes", "lpdf_of_a_mixture", "index_by_z"])
def test_an_expression_that_mixes_the_elements_of_a_discrete_latent_is_refused(text, message):
    with pytest.raises(PplError) as info:
        check(parse(BLOCK_HEAD + text, "model.ppl"))
    assert info.value.message == (f"{message} across the elements of the discrete latent 'z'; "
                                  "they must stay independent to be summed out one by one")
    assert info.value.span.line == BLOCK_HEAD.count("\n") + text.count("\n")


@pytest.mark.parametrize("upper, message", [
    (9999, None),
    (10_000, "discrete latent 's' takes 10001 values; at most 10000 can be enumerated")])
def test_the_limit_on_values_holds_for_literal_bounds(upper, message):
    # the data rows above reach the limit through data.py; literal bounds are checked by the
    # checker (latent_types.finite_support)
    program = parse(f"sample s: int ~ DiscreteUniform(0, {upper})\n", "model.ppl")
    if message is None:
        assert check(program).latents["s"].support.upper.value == upper
        return
    with pytest.raises(PplError) as info:
        check(program)
    assert info.value.message == message
