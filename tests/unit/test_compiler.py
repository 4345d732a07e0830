"""compile_model: layout, the batched log joint against scipy and finite differences, data-only
work done once, and the numpy views (terms, constrained, predictive, prior draws)."""
import dataclasses
import json
import warnings
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
import scipy.stats
from autograd import grad

from ppl import functions
from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.errors import PplError, PplWarning
from ppl.distributions.continuous import Laplace
from ppl.frontend.check import check
from ppl.frontend.parse import parse


MODELS = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.ppl"))


def compile_text(text, data=None):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data or {})
    return compile_model(check(program, dims), values)


def compile_file(path):
    return compile_text(path.read_text(), json.loads(path.with_suffix(".json").read_text()))


def logit(x):
    return np.log(x) - np.log1p(-x)


# ----- log joint against scipy.stats and hand-written log-Jacobians ---------------------------
# Each row: model text, data, and the expected log joint at unconstrained u [D] (one draw).
Y = np.array([0.3, -1.2, 2.0])

SIMPLE = {
    "normal_normal": (
        "data y: real[3]\nsample mu ~ Normal(1, 2)\nobserve y ~ Normal(mu, 0.5)\n", {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[0], 1, 2)
        + scipy.stats.norm.logpdf(Y, u[0], 0.5).sum()),
    "gamma_lower_bound": (            # x = exp(u), log-Jacobian u
        "sample s ~ Gamma(2, 3)\n", None,
        lambda u: scipy.stats.gamma.logpdf(np.exp(u[0]), 2, scale=1 / 3) + u[0]),
    "beta_interval": (                # x = sigmoid(u), log-Jacobian log x (1 - x)
        "sample p ~ Beta(2, 3)\n", None,
        lambda u: scipy.stats.beta.logpdf(scipy.special.expit(u[0]), 2, 3)
        + np.log(scipy.special.expit(u[0]) * scipy.special.expit(-u[0]))),
    "truncated_normal": (             # no normalizing constant (as Stan)
        "sample x: real<lower=1, upper=3> ~ Normal(0, 1)\n", None,
        lambda u: scipy.stats.norm.logpdf(1 + 2 * scipy.special.expit(u[0]))
        + np.log(2 * scipy.special.expit(u[0]) * scipy.special.expit(-u[0]))),
    "upper_bound": (                  # x = 2 - exp(u)
        "sample x: real<upper=2> ~ Normal(0, 1)\n", None,
        lambda u: scipy.stats.norm.logpdf(2 - np.exp(u[0])) + u[0]),
    "uniform_data_bounds": (          # support from the parameters: a + (b - a) sigmoid(u)
        "data a: real\ndata b: real\nsample m ~ Uniform(a, b)\n", {"a": -1.0, "b": 3.0},
        lambda u: -np.log(4.0)
        + np.log(4 * scipy.special.expit(u[0]) * scipy.special.expit(-u[0]))),
    "latent_lower_bound": (           # x = lo + exp(u1), lo itself a latent
        "sample lo ~ Normal(0, 1)\nsample x: real<lower=lo> ~ Normal(0, 3)\n", None,
        lambda u: scipy.stats.norm.logpdf(u[0]) + scipy.stats.norm.logpdf(u[0] + np.exp(u[1]), 0, 3)
        + u[1]),
    "vector_with_let": (
        "data y: real[3]\nsample b: real[3] ~ Normal(0, 2)\nsample s ~ HalfNormal(1)\n"
        "let m = 2 * b\nobserve y ~ Normal(m, s)\n", {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[:3], 0, 2).sum()
        + scipy.stats.halfnorm.logpdf(np.exp(u[3])) + u[3]
        + scipy.stats.norm.logpdf(Y, 2 * u[:3], np.exp(u[3])).sum()),
    "factor_adds_sum": (              # factor adds sum(EXPR); a data-only factor is a constant
        "data y: real[3]\nsample mu ~ Normal(0, 1)\nfactor -square(y - mu)\nfactor y\n",
        {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[0]) - ((Y - u[0]) ** 2).sum() + Y.sum()),
    "lpdf_in_factor": (
        "data y: real[3]\nsample mu ~ Normal(0, 1)\nfactor lpdf(Laplace(mu, 2), y)\n",
        {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[0]) + scipy.stats.laplace.logpdf(Y, u[0], 2).sum()),
    "comparison_is_zero_one": (       # (y > mu) counts the data above mu
        "data y: real[3]\nsample mu ~ Normal(0, 1)\nfactor (y > mu) * mu\n", {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[0]) + (Y > u[0]).sum() * u[0]),
    "vector_literal_and_newaxis": (   # [mu, 2 mu][:, newaxis] + y broadcasts to [2, 3]
        "data y: real[3]\nsample mu ~ Normal(0, 1)\n"
        "observe y ~ Normal(sum([mu, 2 * mu][:, newaxis] + y[newaxis], axis=0), 1)\n",
        {"y": Y},
        lambda u: scipy.stats.norm.logpdf(u[0])
        + scipy.stats.norm.logpdf(Y, 3 * u[0] + 2 * Y, 1).sum()),
    "ar1_innovations": (              # h from its innovations: prior + log|J| is N(0, 1) of them
        "data y: real[3]\nsample s ~ HalfNormal(1)\nsample h: real[3] ~ AR1(0.5, 0.8, s)\n"
        "observe y ~ Normal(h, 1)\n", {"y": Y},
        lambda u: scipy.stats.halfnorm.logpdf(np.exp(u[0])) + u[0]
        + scipy.stats.norm.logpdf(u[1:4]).sum()
        + scipy.stats.norm.logpdf(Y, _ar1(u[1:4], 0.5, 0.8, np.exp(u[0])), 1).sum()),
}


def _ar1(e, mu, phi, sigma):
    """The AR1 series whose standardized innovations are ``e`` [T], step by step."""
    h = [mu + sigma / np.sqrt(1 - phi ** 2) * e[0]]
    for t in range(1, len(e)):
        h.append(mu + phi * (h[-1] - mu) + sigma * e[t])
    return np.array(h)


def test_guided_or_bounded_ar1_latent_keeps_its_values_as_coordinates(rng):
    # a user's guide is on the value itself (LANGUAGE.md, Guides); a bounded one is centred
    for line in ("guide h ~ Normal(y, 0.5)\n", ""):
        decl = "real[3]" if line else "real<lower=-5>[3]"
        model = compile_text(f"data y: real[3]\nsample h: {decl} ~ AR1(0.5, 0.8, 0.6)\n"
                             f"observe y ~ Normal(h, 1)\n{line}", {"y": Y})
        u = rng.normal(size=(1, 3))
        h = u[0] if line else -5 + np.exp(u[0])
        jacobian = 0.0 if line else u[0].sum()
        ar1 = (scipy.stats.norm.logpdf(h[0], 0.5, 0.6 / np.sqrt(1 - 0.64))
               + scipy.stats.norm.logpdf(h[1:], 0.5 + 0.8 * (h[:-1] - 0.5), 0.6).sum())
        want = ar1 + jacobian + scipy.stats.norm.logpdf(Y, h, 1).sum()
        np.testing.assert_allclose(model.log_joint(u), [want], rtol=1e-10)


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_log_joint_matches_scipy(name, rng):
    text, data, expected = SIMPLE[name]
    model = compile_text(text, data)
    zeta = rng.normal(0, 1.5, (4, model.dim))
    np.testing.assert_allclose(model.log_joint(zeta), [expected(u) for u in zeta], rtol=1e-10)


# lpdf/lcdf/lccdf of a value outside the support: log 0 = -inf for lpdf, and below the
# support P(X <= x) = 0, P(X > x) = 1; the formulas alone gave a number (lpdf(Exponential(1),
# -1) was 1, lpdf(Bernoulli(0.3), 2) -2.05, lccdf(Exponential(1), -1) 1, lcdf(Gamma(2, 1), -1)
# nan). Each row: the factor's expression and its value.
OUTSIDE = {
    "lpdf(Exponential(1), -1.0)": -np.inf,
    "lpdf(HalfNormal(1), -1.0)": -np.inf,
    "lpdf(Beta(2, 2), 1.5)": -np.inf,
    "lpdf(Bernoulli(0.3), 2)": -np.inf,
    "lpdf(Poisson(2.0), 2.5)": -np.inf,
    "lpdf(DiscreteUniform(0, 3), 7)": -np.inf,
    "lpdf(OrderedLogistic(0.0, [0.0, 1.0]), 5)": -np.inf,
    "lpdf(Multinomial(3, [0.5, 0.5]), [1, 1])": -np.inf,
    "lpdf(Dirichlet([1.0, 1.0]), [0.2, 0.2])": -np.inf,
    "lpdf(Mixture([0.5, 0.5], Poisson([1.0, 2.0])), 1.5)": -np.inf,
    "lcdf(Exponential(1), -1.0)": -np.inf,
    "lccdf(Exponential(1), -1.0)": 0.0,
    "lcdf(Gamma(2, 1), -1.0)": -np.inf,
    "lccdf(LogNormal(0, 1), -1.0)": 0.0,
    "lccdf(Weibull(2, 1), -1.0)": 0.0,
    "lpdf(Exponential(1), 0.5)": scipy.stats.expon.logpdf(0.5),        # inside: unchanged
    "lcdf(Gamma(2, 1), 0.5)": scipy.stats.gamma.logcdf(0.5, 2),
}


@pytest.mark.parametrize("expr", sorted(OUTSIDE))
def test_density_of_a_value_outside_the_support(expr):
    model = compile_text(f"sample mu ~ Normal(0, 1)\nfactor {expr}\n")
    want = scipy.stats.norm.logpdf(0.0) + OUTSIDE[expr]
    np.testing.assert_allclose(model.log_joint(np.zeros((1, 1))), [want], rtol=1e-12)


def test_a_truncated_likelihood_written_with_factor_is_scipys_truncated_normal():
    # the parse hint for Stan's 'y ~ normal(mu, 1) T[0, ]' (errors._statement_hint): each
    # y's density over the mass above 0, lccdf subtracted once per element
    y = [0.1, 0.3, 1.5]
    model = compile_text("data y: real[3]\nsample mu ~ Normal(0, 5)\n"
                         "factor lpdf(Normal(mu, 1), y) - lccdf(Normal(mu, 1), 0)\n",
                         {"y": y})
    mu = np.array([-3.0, 0.2, 2.0])
    want = scipy.stats.norm.logpdf(mu, 0, 5) + [
        scipy.stats.truncnorm.logpdf(y, -m, np.inf, loc=m).sum() for m in mu]
    np.testing.assert_allclose(model.log_joint(mu[:, None]), want, rtol=1e-12)


def test_density_of_a_latent_outside_support_or_constraint_is_minus_inf():
    # a latent value below Exponential's support, or a latent sigma <= 0: no density there
    # (the fit of 'factor lpdf(Exponential(1), s)' with s real had a posterior mean of -0.99)
    with pytest.warns(UserWarning, match="the value of lpdf must lie in the support"):
        model = compile_text("sample s ~ Normal(0, 1)\nfactor lpdf(Exponential(1), s)\n")
    lj = model.log_joint(np.array([[-0.5], [0.5]]))
    assert lj[0] == -np.inf
    np.testing.assert_allclose(lj[1], scipy.stats.norm.logpdf(0.5) - 0.5, rtol=1e-12)
    with pytest.warns(UserWarning):
        model = compile_text("sample s ~ Normal(0, 1)\nsample t ~ Normal(0, 1)\n"
                             "factor lpdf(Normal(0, t), s)\n")
    lj = model.log_joint(np.array([[0.3, -1.0], [0.3, 2.0]]))
    assert lj[0] == -np.inf
    np.testing.assert_allclose(lj[1], scipy.stats.norm.logpdf([0.3, 2.0]).sum()
                               + scipy.stats.norm.logpdf(0.3, 0, 2.0), rtol=1e-12)


def test_a_mixture_with_one_components_parameter_nan_has_no_density():
    # a Mixture's parameters are bad where ANY component's are (found by the mutation pass
    # over evaluate.py: 'all' there gave nan for a nan mean, t / t at t = 0; a sigma <= 0 is
    # also refused inside Mixture.log_density, a nan mean is not)
    model = compile_text("sample t ~ Normal(0, 1)\n"
                         "factor lpdf(Mixture([0.5, 0.5], Normal([0.0, t / t], 1.0)), 0.3)\n")
    lj = model.log_joint(np.array([[0.0], [2.0]]))
    assert lj[0] == -np.inf
    np.testing.assert_allclose(lj[1], scipy.stats.norm.logpdf(2.0) + np.log(
        0.5 * scipy.stats.norm.pdf(0.3) + 0.5 * scipy.stats.norm.pdf(0.3, 1.0)), rtol=1e-12)


NAN_TRIL = "MvNormal([0.0, 0.0], scale_tril=[[1.0, 0.0], [t / t, 1.0]])"


@pytest.mark.parametrize("statement", [f"factor lpdf({NAN_TRIL}, y)", f"observe y ~ {NAN_TRIL}",
                                       f"sample x: real[2] ~ {NAN_TRIL}"],
                         ids=["factor", "observe", "sample"])
def test_a_nan_parameter_that_its_constraint_lets_through_has_no_density(statement):
    # lower_cholesky checks the upper triangle and the diagonal only: a nan below the
    # diagonal (t / t at t = 0) is refused by the nan check (found by the mutation pass over
    # evaluate.py: without it the density was nan); an observe's and a latent's guard
    # (compiler/density.py's _outside) has its own nan check, untested before the mutation
    # pass over it (without it their density was nan too)
    model = compile_text(f"data y: real[2]\nsample t ~ Normal(0, 1)\n{statement}\n",
                         {"y": [0.3, 0.2]})
    with np.errstate(invalid="ignore"):
        lj = model.log_joint(np.array([[0.0, 0.3, 0.2], [2.0, 0.3, 0.2]])[:, :model.dim])
    assert lj[0] == -np.inf
    np.testing.assert_allclose(lj[1], scipy.stats.norm.logpdf(2.0) + scipy.stats.multivariate_normal
                               .logpdf([0.3, 0.2], [0, 0], [[1, 1], [1, 2]]), rtol=1e-12)


@pytest.mark.parametrize("decl, reference", [
    ("real[2] ~ MvNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 2.0]])",
     lambda b: scipy.stats.multivariate_normal.logpdf(b, [0, 0], [[1, 0.5], [0.5, 2]])),
    ("real[3] ~ RandomWalk(1.0, 2.0)",
     lambda b: scipy.stats.norm.logpdf(b[0], 0, 2) + scipy.stats.norm.logpdf(b[1:], b[:-1], 1).sum()),
    ("real[2, 3] ~ AR1(0.5, 0.8, 0.6)",
     lambda b: sum(scipy.stats.norm.logpdf(row[0], 0.5, 0.6 / np.sqrt(1 - 0.64))
                   + scipy.stats.norm.logpdf(row[1:], 0.5 + 0.8 * (row[:-1] - 0.5), 0.6).sum()
                   for row in b.reshape(2, 3))),
], ids=["MvNormal", "RandomWalk", "AR1"])
def test_a_params_multivariate_penalty_is_counted_once_per_event(decl, reference):
    # the penalty's density has one value per event (its last axis); the param's counter
    # took every element for one, and counted it 2, 3 and 3 times (found by the mutation
    # pass over compiler/steps.py: the latent's counter drops the event axes, the param's
    # did not), so a MAP fit shrank such a param 2 to 3 times too hard
    model = compile_text(f"param b: {decl}\n")
    b = np.array([0.3, -0.7, 0.2, 0.1, 0.4, -0.3])[:model.dim]
    np.testing.assert_allclose(model.log_joint(b[None]), [reference(b)], rtol=1e-12)


def test_an_ar1_latent_whose_phi_leaves_its_interval_has_no_density():
    # h from its innovations: inside (-1, 1) its prior and log-Jacobian are N(0, 1) of the
    # innovations; at phi = 1.5 the guard gives -inf (unguarded, the same N(0, 1) sum)
    with pytest.warns(PplWarning):
        model = compile_text("sample phi ~ Normal(0, 1)\nsample h: real[3] ~ AR1(0.0, phi, 1.0)\n")
    zeta = np.array([[1.5, 0.1, 0.2, 0.3], [0.5, 0.1, 0.2, 0.3]])
    with np.errstate(invalid="ignore"):
        lj = model.log_joint(zeta)
    assert lj[0] == -np.inf
    np.testing.assert_allclose(lj[1], scipy.stats.norm.logpdf(zeta[1]).sum(), rtol=1e-12)


def test_a_likelihood_kernel_keeps_its_guard_under_a_second_order_trace():
    # a fused kernel hands over to the plain path under a second-order trace; at s < 0 the
    # term is -inf, a constant, so the Hessian is the priors' alone, -I (b, s ~ Normal(., 1)),
    # as the first-order gradient is theirs alone. Unguarded, the plain path added the
    # likelihood's Hessian at s = -0.5 (-22.4 in b's corner)
    from autograd import hessian
    x, y = np.array([0.1, -0.5, 1.0, 2.0, 0.3]), np.array([0.2, -0.4, 1.3, 1.5, 0.0])
    with pytest.warns(PplWarning):
        model = compile_text("data x: real[5]\ndata y: real[5]\nsample b ~ Normal(0, 1)\n"
                             "sample s ~ Normal(1, 1)\nobserve y ~ Normal(b * x, s)\n",
                             {"x": x, "y": y})
    assert model.steps[-1].kernel is not None
    u = np.array([0.3, -0.5])
    with np.errstate(invalid="ignore", divide="ignore"):
        assert model.log_joint(u[None])[0] == -np.inf
        np.testing.assert_array_equal(grad(lambda v: model.log_joint(v[None])[0])(u), [-0.3, 1.5])
        np.testing.assert_array_equal(hessian(lambda v: model.log_joint(v[None])[0])(u),
                                      -np.eye(2))


def test_a_bound_of_fewer_axes_read_from_a_latent_is_lined_up_with_the_last_axes(rng):
    # lo [2] bounds each row of x [3, 2]: x = lo + exp(u), log-Jacobian sum(u). Not lifted
    # after the draw axis, lo [S, 2] lined up with x's rows: at S = 3 every draw's bound came
    # from another draw (a wrong log joint, without an error); at S = 2 a broadcast error
    model = compile_text("sample lo: real[2] ~ Normal(0, 1)\n"
                         "sample x: real<lower=lo>[3, 2] ~ Normal(0, 1)\n")
    zeta = rng.normal(0, 1, (3, 8))
    lo, u = zeta[:, :2], zeta[:, 2:].reshape(3, 3, 2)
    x = lo[:, None, :] + np.exp(u)
    expected = (scipy.stats.norm.logpdf(lo).sum(axis=1)
                + scipy.stats.norm.logpdf(x).sum(axis=(1, 2)) + u.sum(axis=(1, 2)))
    np.testing.assert_allclose(model.log_joint(zeta), expected, rtol=1e-12)
    np.testing.assert_allclose(model.constrained(zeta)["x"], x, rtol=1e-12)


@pytest.mark.parametrize("dist, message", [
    ("Normal(t / t, 1)", "cannot draw from Normal: parameter 'mu' must be real; found nan at "
     "one of the draws"),
    ("Normal(0, t)", "cannot draw from Normal: parameter 'sigma' must be (0, inf); found 0 at "
     "one of the draws")], ids=["nan_mu", "zero_sigma"])
def test_a_draw_from_a_parameter_outside_its_constraint_is_a_located_error(dist, message):
    # numpy draws nan from Normal(nan, 1) without a word: a nan parameter is refused as a
    # value outside the constraint is (t = 0 at the second draw)
    with warnings.catch_warnings():     # the checker's warning that sigma can leave it
        warnings.simplefilter("ignore", PplWarning)
        model = compile_text(f"data y: real[2]\nsample t ~ Normal(0, 1)\nobserve y ~ {dist}\n",
                             {"y": [0.1, 0.2]})
    with pytest.raises(PplError) as info, np.errstate(invalid="ignore", divide="ignore"):
        model.predictive(np.array([[1.0], [0.0], [-0.5]]), np.random.default_rng(0))
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.col) == (3, 1)


def test_simplex_log_joint_matches_scipy_and_numerical_jacobian(rng):
    # the density of the first K-1 coordinates: Dirichlet pdf times |det d x[:K-1] / du|,
    # the Jacobian by central differences of the constrained values
    alpha = np.array([1.0, 2.0, 3.0, 0.5])
    model = compile_text("data alpha: real[4]\nsample p: real[4] ~ Dirichlet(alpha)\n",
                         {"alpha": alpha})
    assert model.dim == 3 and model.slots[0].free_shape == (3,)
    h = 1e-6
    for u in rng.normal(0, 1, (3, 3)):
        x = model.constrained(u[None])["p"][0]
        steps = np.eye(3) * h
        jac = (model.constrained(u + steps)["p"] - model.constrained(u - steps)["p"]).T / (2 * h)
        _, log_det = np.linalg.slogdet(jac[:3])
        expected = scipy.stats.dirichlet.logpdf(x, alpha) + log_det
        np.testing.assert_allclose(model.log_joint(u[None]), [expected], rtol=1e-7)


# ----- every example model: batching, gradients, views ---------------------------------------

def draws(model, rng, n):
    """n unconstrained draws; a ``param``'s columns hold one value in every draw, as the guide
    families put them (the compiler reads a param from the first draw only)."""
    zeta = rng.normal(0, 0.5, (n, model.dim))
    for slot in model.slots:
        if slot.name in model.params:
            columns = slice(slot.offset, slot.offset + slot.size)
            zeta[:, columns] = zeta[0, columns]
    return zeta


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_batched_log_joint_equals_loop_over_draws(path, rng):
    model = compile_file(path)
    zeta = draws(model, rng, 5)
    batched = model.log_joint(zeta)
    assert batched.shape == (5,)
    looped = [model.log_joint(zeta[i:i + 1])[0] for i in range(5)]
    np.testing.assert_allclose(batched, looped, rtol=1e-12)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_gradient_matches_central_differences(path, rng):
    model = compile_file(path)
    # one draw when the model has params: a param's gradient goes to the first draw's columns
    zeta = draws(model, rng, 1 if model.params else 2)
    analytic = grad(lambda z: anp.sum(model.log_joint(z)))(zeta)
    h = 1e-6
    numeric = np.zeros_like(zeta)
    # at most 200 coordinates (a VAE has ~12,000), chosen by the fixed-seed generator
    columns = (range(model.dim) if model.dim <= 200
               else np.sort(rng.choice(model.dim, 200, replace=False)))
    analytic, numeric = analytic[:, columns], numeric[:, columns]
    for k, j in enumerate(columns):
        step = np.zeros_like(zeta)
        step[:, j] = h
        numeric[:, k] = (model.log_joint(zeta + step) - model.log_joint(zeta - step)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_terms_sum_to_the_log_joint(path, rng):
    model = compile_file(path)
    zeta = rng.normal(0, 0.5, (3, model.dim))
    terms = model.terms(zeta)
    assert all(values.shape == (3,) for _, values in terms)
    np.testing.assert_allclose(sum(values for _, values in terms), model.log_joint(zeta),
                               rtol=1e-12)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_views_have_draw_shapes(path, rng):
    model = compile_file(path)
    n = 6
    zeta = rng.normal(0, 0.5, (n, model.dim))
    assert len(model.unconstrained_names()) == model.dim
    for values in (model.constrained(zeta), model.predictive(zeta, rng),
                   model.sample_prior(rng, n)):
        assert values and all(type(v) is np.ndarray and v.shape[0] == n
                              for v in values.values())
    latents = model.model.latents
    for name, values in model.constrained(zeta).items():
        if name in latents:
            assert values.shape == (n,) + latents[name].shape
    predictive = model.predictive(zeta, rng)
    assert [v.shape for v in predictive.values()] == [(n,) + o.value.shape
                                                      for o in model.model.observes]


def test_layout_and_names():
    model = compile_text("data alpha: real[3]\nsample a ~ Normal(0, 1)\n"
                         "sample p: real[3] ~ Dirichlet(alpha)\n"
                         "sample B: real<lower=0>[2, 2] ~ Exponential(1)\n"
                         "sample _h ~ Normal(0, 1)\n", {"alpha": [1.0, 1.0, 1.0]})
    assert [(s.name, s.shape, s.free_shape, s.offset, s.size) for s in model.slots] == [
        ("a", (), (), 0, 1), ("p", (3,), (2,), 1, 2), ("B", (2, 2), (2, 2), 3, 4),
        ("_h", (), (), 7, 1)]
    assert model.dim == 8
    assert model.unconstrained_names() == ["a", "p[0]", "p[1]", "B[0,0]", "B[0,1]", "B[1,0]",
                                           "B[1,1]", "_h"]
    # names starting with '_' are fitted, not reported
    assert sorted(model.constrained(np.zeros((2, 8)))) == ["B", "a", "p"]


def test_constrained_values_lie_in_their_supports(rng):
    model = compile_text("data alpha: real[3]\nsample lo ~ Normal(0, 1)\n"
                         "sample x: real<lower=lo, upper=lo + 3> ~ Normal(0, 3)\n"
                         "sample p: real[3] ~ Dirichlet(alpha)\nlet d = x - lo\n",
                         {"alpha": [1.0, 1.0, 1.0]})
    draws = model.constrained(rng.normal(0, 3, (100, model.dim)))
    assert np.all(draws["x"] > draws["lo"]) and np.all(draws["x"] < draws["lo"] + 3)
    np.testing.assert_allclose(draws["d"], draws["x"] - draws["lo"])
    np.testing.assert_allclose(draws["p"].sum(axis=1), 1.0)


def test_a_bound_that_moves_with_a_latent_narrows_the_support_never_widens_it(rng):
    # LANGUAGE.md, Types: bounds narrow the distribution's support. With lower=b and b < 0 the
    # support of HalfNormal's s is [0, inf), not [b, inf): s was drawn down to b and given
    # HalfNormal's formula at negative values (a posterior mean of s 0.03 too low, its 5%
    # quantile -0.72, reported as usable)
    model = compile_text("sample b ~ Normal(0, 1)\nsample s: real<lower=b> ~ HalfNormal(1)\n")
    zeta = rng.normal(0, 2, (200, model.dim))
    draws = model.constrained(zeta)
    assert np.all(draws["s"] >= 0) and np.all(draws["s"] >= draws["b"])
    lower = np.maximum(zeta[:, 0], 0.0)
    expected = (scipy.stats.norm.logpdf(zeta[:, 0]) + scipy.stats.halfnorm.logpdf(
        lower + np.exp(zeta[:, 1])) + zeta[:, 1])
    np.testing.assert_allclose(model.log_joint(zeta), expected, rtol=1e-12)


def test_constrained_computes_only_the_hidden_lets_a_reported_value_reads(rng):
    # _mu feeds only an observe: constrained leaves it out (at 4000 summary draws of 10^5 rows
    # it was a [4000, 10^5] array); _h is read by a reported let, _g through _h (a chain, closed
    # by a backward pass) and _lo by a latent's bound, so all are computed, and the reported
    # values equal those of a full forward pass
    from ppl.compiler.draws import _read_lets
    model = compile_text("data y: real[3]\nsample a ~ Normal(0, 1)\nlet _lo = a - 1\n"
                         "sample x: real<lower=_lo> ~ Normal(0, 3)\nlet _g = x\n"
                         "let _h = 2 * _g\nlet r = _h + a\nlet _mu = a + x + y\n"
                         "observe y ~ Normal(_mu, 1)\n", {"y": [1.0, 2.0, 3.0]})
    assert _read_lets(model._steps) == {"_lo", "_g", "_h", "r"}
    zeta = rng.normal(0, 1, (7, model.dim))
    env = model._forward(zeta)
    step = next(s for s in model._steps if getattr(s, "name", None) == "_mu")
    step.fn = None      # calling it would raise: constrained must not
    draws = model.constrained(zeta)
    assert sorted(draws) == ["a", "r", "x"] and "_mu" in env
    for name in draws:
        np.testing.assert_array_equal(draws[name], env[name])
    np.testing.assert_allclose(draws["r"], 2 * draws["x"] + draws["a"])
    assert np.all(draws["x"] > draws["a"] - 1)


def test_log_joint_computes_only_the_lets_a_term_reads(rng):
    # r and _h are read by no term (r is reported, for the summary); _lo is read by a
    # latent's bound, _s by a let a factor reads: the log joint computes those two only, and
    # its value is the one with every let computed
    model = compile_text("data y: real[3]\nsample a ~ Normal(0, 1)\nlet _lo = a - 1\n"
                         "sample x: real<lower=_lo> ~ Normal(0, 3)\nlet _h = 2 * x\n"
                         "let r = _h + a\nlet _s = x * x\nlet _f = -_s\nfactor _f\n"
                         "observe y ~ Normal(a + x, 1)\n", {"y": [1.0, 2.0, 3.0]})
    zeta = rng.normal(0, 1, (7, model.dim))
    every = model._forward(zeta)
    total = sum(term for _, term in model.terms(zeta))
    for step in model._steps:
        if getattr(step, "name", None) in ("r", "_h"):
            step.fn = None       # calling it would raise: the log joint must not
    np.testing.assert_allclose(model.log_joint(zeta), total, rtol=1e-13)
    from ppl.compiler.steps import _LetStep
    assert sorted(s.name for s in model._live if type(s) is _LetStep) == ["_f", "_lo", "_s"]
    np.testing.assert_allclose(every["r"], 2 * every["x"] + every["a"])


def test_predictive_labels_are_source_text(rng):
    model = compile_text("data y: real[4]\ndata t: real[4]\nsample mu ~ Normal(0, 1)\n"
                         "observe y ~ Normal(mu, 1)\nobserve y[1:] - t[1:] ~ Normal(0, 1)\n",
                         {"y": [1.0, 2, 3, 4], "t": [0.0, 1, 2, 3]})
    draws = model.predictive(rng.normal(0, 1, (5, 1)), rng)
    assert {k: v.shape for k, v in draws.items()} == {"y": (5, 4), "y[1:] - t[1:]": (5, 3)}


def test_sample_prior_keeps_truncated_latents_inside_their_bounds(rng):
    # prior probability of x > 2.5 is 0.6%: rejection needs many rounds
    model = compile_text("data y: real[2]\nsample x: real<lower=2.5> ~ Normal(0, 1)\n"
                         "observe y ~ Normal(x, 1)\n", {"y": [1.0, 2.0]})
    draws = model.sample_prior(rng, 500)
    assert draws["x"].shape == (500,) and np.all(draws["x"] > 2.5)
    assert draws["y"].shape == (500, 2)
    # ancestral: y | x ~ Normal(x, 1), so y - x has mean 0 and sd 1 (z = 4 standard errors)
    diff = (draws["y"] - draws["x"][:, None]).ravel()
    assert abs(diff.mean()) < 4 / np.sqrt(diff.size)


def test_sample_prior_warns_when_truncated_draws_are_set_onto_a_bound(rng):
    # prior probability of x > 4 is 3e-5: after 1000 redraws 97% of the draws are still
    # outside and set onto 4, a spike that is no draw of the truncated prior; it was silent
    model = compile_text("sample x: real<lower=4> ~ Normal(0, 1)\n", {})
    with pytest.warns(PplWarning, match="were set onto the nearest bound") as record:
        draws = model.sample_prior(rng, 50)
    assert np.all(draws["x"] >= 4.0)
    assert record[0].message.span.line == 1


def _positive_quadrant_mean(sd, rho):
    """E[x | x > 0] of a bivariate normal with mean 0, sds ``sd`` and correlation ``rho``:
    E[z_1 1{z > 0}] = phi(0) (1 + rho) / 2 for the standardized pair, over the quadrant's
    probability 1/4 + arcsin(rho) / (2 pi) (Tallis 1961)."""
    p = 0.25 + np.arcsin(rho) / (2 * np.pi)
    return np.asarray(sd) * scipy.stats.norm.pdf(0.0) * (1 + rho) / 2 / p


@pytest.mark.parametrize("dist, sd, rho", [
    ("AR1(0, 0.9, 0.4358898943540674)", [1.0, 1.0], 0.9),          # sigma = sqrt(1 - 0.81)
    ("RandomWalk(1, init=1)", [1.0, np.sqrt(2.0)], 1 / np.sqrt(2.0)),
    ("MvNormal([0.0, 0.0], [[1.0, -1.0], [-1.0, 4.0]])", [1.0, 2.0], -0.5),
])
def test_sample_prior_of_a_truncated_event_redraws_whole_events(dist, sd, rho, rng):
    # An event's elements depend on each other: an event with an element outside the bounds
    # is drawn again whole. Redrawing elements alone raised a ValueError (an internal error)
    # for AR1, RandomWalk and MvNormal latents with bounds. Mean within z = 4 standard
    # errors, the sd estimated from the draws.
    n = 20_000
    draws = compile_text(f"sample h: real<lower=0>[2] ~ {dist}\n", {}).sample_prior(rng, n)["h"]
    assert draws.shape == (n, 2) and np.all(draws > 0)
    want = _positive_quadrant_mean(sd, rho)
    assert np.all(np.abs(draws.mean(axis=0) - want) <= 4 * draws.std(axis=0) / np.sqrt(n))


def test_sample_prior_of_a_truncated_mixture(rng):
    # Mixture's component parameters have a component axis of their own: broadcasting them to
    # the value's shape raised a ValueError. The mean of the truncated mixture by quadrature,
    # within z = 4 standard errors
    from scipy.integrate import quad
    n = 20_000
    draws = compile_text("sample x: real<lower=0>[2] ~ "
                         "Mixture([0.3, 0.7], Normal([-1.0, 1.0], [1.0, 2.0]))\n",
                         {}).sample_prior(rng, n)["x"]
    assert draws.shape == (n, 2) and np.all(draws > 0)

    def density(x):
        return 0.3 * scipy.stats.norm.pdf(x, -1, 1) + 0.7 * scipy.stats.norm.pdf(x, 1, 2)
    want = quad(lambda x: x * density(x), 0, np.inf)[0] / quad(density, 0, np.inf)[0]
    assert np.all(np.abs(draws.mean(axis=0) - want) <= 4 * draws.std(axis=0) / np.sqrt(n))


def test_sample_prior_redraws_each_truncated_element_from_its_own_parameters(rng):
    # elements of different means, each truncated to x > 0: a redraw made with one element's
    # parameters must land in that element. Each mean against scipy's truncnorm within z = 4
    # standard errors (the truncated sds, exact from scipy)
    n = 20_000
    mu = np.array([-1.0, 2.0])
    x = compile_text("sample x: real<lower=0>[2] ~ Normal([-1.0, 2.0], 1)\n",
                     {}).sample_prior(rng, n)["x"]
    exact = scipy.stats.truncnorm(-mu, np.inf, loc=mu)
    assert x.shape == (n, 2) and np.all(x > 0)
    assert np.all(np.abs(x.mean(axis=0) - exact.mean()) <= 4 * exact.std() / np.sqrt(n))


def test_a_param_without_a_distribution_is_drawn_at_its_start_scale(rng):
    # its default start: Normal(0, PARAM_START_SCALE) on the unconstrained scale, here the
    # value itself. The sd of 4000 draws within 4 of its relative standard errors,
    # 1 / sqrt(2 * 4000)
    from ppl.compiler.draws import PARAM_START_SCALE
    w = compile_text("param w: real[4000]\n", {}).sample_prior(rng, 1)["w"]
    assert abs(w.std() / PARAM_START_SCALE - 1) < 4 / np.sqrt(2 * 4000)


def test_sample_prior_of_ordered_latents_is_sorted_independent_draws(rng):
    # ordered[3] ~ Normal(0, 1) is the order statistics of three standard normals: each row
    # increasing, means -3 / (2 sqrt(pi)), 0, 3 / (2 sqrt(pi)) (the expected order statistics
    # of three normals); positive_ordered[3] ~ Normal(0, 1) those of three half-normals: every
    # element positive, row sums of mean 3 sqrt(2 / pi). Means within z = 4 standard errors,
    # the sd estimated from the draws.
    n = 20_000
    draws = compile_text("sample c: ordered[3] ~ Normal(0, 1)\n"
                         "sample d: positive_ordered[3] ~ Normal(0, 1)\n", {}).sample_prior(rng, n)
    c, d = draws["c"], draws["d"]
    assert c.shape == d.shape == (n, 3)
    assert np.all(np.diff(c, axis=1) > 0) and np.all(np.diff(d, axis=1) > 0) and np.all(d > 0)
    want = 3 / (2 * np.sqrt(np.pi)) * np.array([-1.0, 0.0, 1.0])
    assert np.all(np.abs(c.mean(axis=0) - want) <= 4 * c.std(axis=0) / np.sqrt(n))
    total = d.sum(axis=1)
    assert abs(total.mean() - 3 * np.sqrt(2 / np.pi)) <= 4 * total.std() / np.sqrt(n)


# ----- data-only work is done once ------------------------------------------------------------

def test_data_only_work_is_done_at_compile_time(monkeypatch, rng):
    calls = {"log": 0, "exp": 0, "laplace": 0}

    def counting(name):
        impl = functions.FUNCTIONS[name].impl

        def counted(*args, **kwargs):
            calls[name] += 1
            return impl(*args, **kwargs)
        return dataclasses.replace(functions.FUNCTIONS[name], impl=counted)

    monkeypatch.setitem(functions.FUNCTIONS, "log", counting("log"))
    monkeypatch.setitem(functions.FUNCTIONS, "exp", counting("exp"))
    laplace = Laplace.log_density.__func__

    def counted_laplace(cls, *args, **kwargs):
        calls["laplace"] += 1
        return laplace(cls, *args, **kwargs)
    monkeypatch.setattr(Laplace, "log_density", classmethod(counted_laplace))

    text = ("data x: real<lower=0>[5]\ndata y: real[5]\n"
            "let lx = log(x)\n"                        # data-only let
            "sample mu ~ Normal(0, 1)\n"
            "let t = exp(mu)\n"                        # depends on a latent: every time
            "observe y ~ Normal(mu + log(x + 1), t)\n"  # log(x + 1): a data-only subtree
            "observe lx ~ Laplace(0, 1)\n")            # all data: a constant term
    model = compile_text(text, {"x": [1.0, 2, 3, 4, 5], "y": [0.0, 1, 2, 3, 4]})
    after_compile = dict(calls)
    for _ in range(3):
        model.log_joint(rng.normal(0, 1, (4, 1)))
    assert calls["log"] == after_compile["log"] >= 2
    assert calls["laplace"] == after_compile["laplace"] == 1
    assert calls["exp"] == after_compile["exp"] + 3


def test_block_gradients_match_indexing_to_second_order():
    # blocks.block (a slot's columns, one primitive with an assignment gradient) against
    # plain indexing: the same value, gradient and Hessian-vector product, exactly.
    from ppl.blocks import block as _block
    rng = np.random.default_rng(0)
    zeta, v = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    w = rng.standard_normal((1, 3))

    def mine(z):
        return (anp.sum(anp.sin(_block(z, None, 2, 5)) ** 2) + anp.sum(_block(z, 1, 4, 7) * w)
                + anp.sum(anp.cos(_block(z, None, 1, 7, (2, 3))[:, 1]) ** 3))

    def plain(z):
        return (anp.sum(anp.sin(z[:, 2:5]) ** 2) + anp.sum(z[:1, 4:7] * w)
                + anp.sum(anp.cos(anp.reshape(z[:, 1:7], (3, 2, 3))[:, 1]) ** 3))

    assert mine(zeta) == plain(zeta)
    np.testing.assert_array_equal(grad(mine)(zeta), grad(plain)(zeta))
    hvp = [grad(lambda z, f=f: anp.sum(grad(f)(z) * v))(zeta) for f in (mine, plain)]
    np.testing.assert_allclose(hvp[0], hvp[1], rtol=1e-14, atol=1e-14)


def test_stack_columns_and_cuts_of_it_are_concatenation_and_indexing():
    # blocks.stack_columns (a user guide's zeta from its slots' blocks: a param's one row
    # repeated over the S rows) against anp.concatenate of the blocks broadcast to S rows, bit
    # for bit, its gradient too (a param's summed over the rows); and under a trace a cutter
    # takes a block back from the assembly only where it has the shape the cutter cuts (a
    # cutter of every row: not the one-row block, zeta's rows)
    from ppl import blocks
    rng = np.random.default_rng(4)
    S, pieces = 4, (rng.standard_normal((4, 2, 3)), rng.standard_normal((1, 5)),
                    rng.standard_normal((4, 1)))
    w = rng.standard_normal((S, 12))
    cut = blocks.cutter(6, 5, (5,))

    def mine(*pieces):
        zeta = blocks.assemble(S, list(pieces))
        return anp.sum(zeta * w) + anp.sum(anp.sin(cut(zeta)))

    def plain(*pieces):
        zeta = anp.concatenate([anp.reshape(p, (p.shape[0], -1)) * np.ones((S, 1))
                                for p in pieces], axis=1)
        return anp.sum(zeta * w) + anp.sum(anp.sin(zeta[:, 6:11]))

    assert mine(*pieces) == plain(*pieces)
    for argnum in range(3):
        got = grad(mine, argnum)(*pieces)
        assert got.shape == pieces[argnum].shape
        np.testing.assert_array_equal(got, grad(plain, argnum)(*pieces))
    blocks.ASSEMBLED[0] = None


def test_log_joint_of_an_assembled_draw_reads_its_blocks_back(monkeypatch):
    # A user guide builds zeta with blocks.assemble; under autograd the log joint of that very
    # zeta takes each slot's block (a matrix and a scalar param, an automatic and a guided
    # latent) from the assembly instead of cutting zeta. A copy of zeta (a new object) takes
    # the plain path: value and gradient must agree to rounding.
    import ppl
    from ppl import blocks
    from ppl.guides import user
    model = ppl.compile("""
data N: int
data y: real[N]
param W: real[2, 3]
param c: real<lower=0>
sample m ~ Normal(0, 1)
sample z: real[N] ~ Normal(m, c)
observe y ~ Normal(z + sum(W), 1)
guide z ~ Normal(y * W[0, 0], exp(W[1, 2]))
""")
    rng = np.random.default_rng(3)
    _, _, full = model.prepare({"N": 4, "y": rng.standard_normal(4)})
    guide = user.family_for(full, "meanfield", np.random.default_rng(2))
    theta = guide.init(full.dim, 0.5) + 0.3 * rng.standard_normal(guide.init(full.dim, 1).size)
    eps = rng.standard_normal((3, guide.eps_dim(full.dim)))

    def elbo(t, copy):
        zeta, entropy = guide.draw_and_entropy(t, eps)
        return anp.mean(full.log_joint(zeta * 1.0 if copy else zeta)) + entropy

    cuts, block = [], blocks.block
    monkeypatch.setattr(blocks, "block", lambda *args: cuts.append(args[2]) or block(*args))
    assert elbo(theta, False) == pytest.approx(elbo(theta, True), rel=1e-14)
    cuts.clear()
    assembled = grad(elbo)(theta, False)
    assert cuts == [] and blocks.ASSEMBLED[0] is None     # read back, then let go
    np.testing.assert_allclose(assembled, grad(elbo)(theta, True), rtol=1e-12)
    assert sorted(cuts) == [s.offset for s in full.slots]
