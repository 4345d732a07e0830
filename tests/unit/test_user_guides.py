"""``guide`` statements: the user-guide family (guides/user.py) — amortized and structured
guides, their reparameterized gradient and their entropy."""
import numpy as np
import pytest
from autograd import grad, value_and_grad

import ppl
from ppl.guides import user
from ppl.infer.elbo import elbo

AMORTIZED = """
data N: int
data y: real[N]
sample z: real[N] ~ Normal(0, 2)
observe y ~ Normal(z, 1)
param a: real
param b: real
param c: real
guide z ~ Normal(a * y + b, exp(c))
"""

FUNNEL = """
data J: int
data y: real[J]
sample tau: real<lower=0> ~ Normal(0, 2)
sample eta: real[J] ~ Normal(0, 1)
observe y ~ Normal(tau * eta, 1)
param a: real[J]
param b: real[J]
param s: real<lower=0>[J]
guide eta ~ Normal(a + b * log(tau), s)
"""


def test_amortized_guide_learns_the_exact_per_row_posterior():
    # z_i ~ N(0, 2^2), y_i | z_i ~ N(z_i, 1): z_i | y_i ~ N(0.8 y_i, 0.8), exactly the guide
    # with a = 0.8, b = 0, exp(c) = sqrt(0.8). The convergence rule leaves an error of about
    # 0.02 posterior sds in each fitted mean (advi.fit's docstring: 1/sqrt(5 windows x 100
    # steps x 5 draws)); we allow 5x that, 0.1 sds, per row, and 0.1 in log sd.
    rng = np.random.default_rng(4)
    y = rng.standard_normal(30) * np.sqrt(5.0)
    fit = ppl.compile(AMORTIZED).fit({"N": 30, "y": y}, guide="meanfield", seed=3)
    assert fit.converged
    p = fit.params()
    sd = np.sqrt(0.8)
    np.testing.assert_allclose(p["a"] * y + p["b"], 0.8 * y, atol=0.1 * sd)
    assert abs(p["c"] - np.log(sd)) < 0.1
    draws = fit.draws(4000)["z"]
    # the reported draws are the guide's, N(a y + b, exp(c)) per row: each row's mean and sd
    # within z = 4 Monte Carlo errors of 4000 draws (exp(c) / sqrt(4000) = 0.016 guide sds on a
    # mean, exp(c) / sqrt(8000) = 0.011 on an sd); the checks above tie the guide to the exact
    # posterior
    guide_sd = np.exp(p["c"])
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - (p["a"] * y + p["b"])),
                                 4 * guide_sd / np.sqrt(4000))
    np.testing.assert_array_less(np.abs(draws.std(axis=0) - guide_sd),
                                 4 * guide_sd / np.sqrt(8000))


def _funnel():
    rng = np.random.default_rng(5)
    model = ppl.compile(FUNNEL)
    _, _, compiled = model.prepare({"J": 3, "y": rng.standard_normal(3)})
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    theta = guide.init(compiled.dim, 0.5) + 0.3 * rng.standard_normal(
        guide.init(compiled.dim, 0.5).size)
    return compiled, guide, theta, rng


def test_structured_guide_gradient_matches_finite_differences():
    compiled, guide, theta, rng = _funnel()
    eps = rng.standard_normal((7, guide.eps_dim(compiled.dim)))

    def f(t):
        return elbo(compiled.log_joint, t, eps, guide)
    g = grad(f)(theta)
    h = 1e-6
    fd = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    # central differences: error O(h^2 f''') plus rounding O(eps_mach |f| / h) ~ 1e-9 |f|
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)
    assert np.all(g != 0)   # every parameter (loc, scale, tau's guide) reaches the ELBO


def test_structured_guide_entropy_is_minus_mean_log_q():
    # The entropy the ELBO uses (closed form for tau's mean field, E[sum log scale] + const
    # for eta's guide) against -mean(log q) of the whole guide over many draws; the tolerance
    # is 4 Monte Carlo standard errors of that mean plus those of the entropy estimate.
    compiled, guide, theta, rng = _funnel()
    eps = rng.standard_normal((20000, guide.eps_dim(compiled.dim)))
    zeta, entropy = guide.draw_and_entropy(theta, eps)
    log_q = guide.log_q(theta, zeta)
    se = log_q.std() / np.sqrt(len(log_q))
    assert float(entropy) == pytest.approx(-log_q.mean(), abs=4 * 2 * se)


def test_guided_and_automatic_latents_together():
    # tau keeps the automatic family; only eta has a guide: theta = mean field of tau (2
    # numbers) then the params (3 J).
    compiled, guide, theta, _ = _funnel()
    assert guide.d_auto == 1 and guide.n_guided == 3 and guide.n_params == 9
    assert theta.size == 2 + 9
    assert guide.name == "user+meanfield"


@pytest.mark.parametrize("guide", ["Normal(0, sc)", "Normal(log(sc), 1)"])
def test_a_guide_scale_below_zero_is_blamed_on_the_guide(guide):
    # 'param sc: real' as a scale starts at small random values of either sign; where it is
    # negative every step's entropy was nan and the fit ended in 'the log density was not
    # finite', unlocated, though the log joint was finite at every draw. A loc that is not
    # finite (log of the negative sc) is blamed alike.
    model = ppl.compile(f"sample s ~ Normal(0, 1)\nparam sc: real\nguide s ~ {guide}\n")
    with pytest.raises(ppl.PplError, match="the scale of the guide of 's' was not positive") \
            as error:
        model.fit({}, init={"sc": -1.0}, iter=100)
    assert error.value.span.line == 3


def test_draw_and_log_q_is_log_q_at_the_draws():
    # log q from the noise (the automatic family's and each guided coordinate's
    # log N(eps) - log scale) against log q recomputed from the draws: equal to rounding
    compiled, guide, theta, rng = _funnel()
    eps = rng.standard_normal((50, guide.eps_dim(compiled.dim)))
    zeta, log_q = guide.draw_and_log_q(theta, eps)
    np.testing.assert_array_equal(zeta, guide.draw(theta, eps))
    np.testing.assert_allclose(log_q, guide.log_q(theta, zeta), rtol=1e-12)


ORDERED = """
data y: real[2]
sample g ~ Normal(0, 1)
sample a ~ Normal(g, 1)
sample b: real[2] ~ Normal(a, 1)
sample h ~ Normal(g, 1)
observe y ~ Normal(b + h, 1)
param m: real
guide g ~ Normal(m, 0.5)
guide h ~ Normal(g, exp(0.5 * g + 0.25 * a))
"""


def test_guided_latents_around_the_automatic_ones_keep_their_columns_and_entropy():
    # The automatic coordinates (a, b) are zeta's columns 1-3, between the guided g and h:
    # the funnel above has a single automatic latent first, so reading z_auto's columns from
    # 0 for each latent, or taking zeta's first D_auto columns as the automatic ones, passed.
    # Exact references at the same noise: the draws (the automatic family's own in order, each
    # guide's loc + scale * its noise), log q from zeta's columns against log q from the noise,
    # the entropy's closed form given the draws (mean field's log sds, log 0.5 for g, h's mean
    # log scale, 0.5 (1 + log 2 pi) per coordinate) traced (the value a gradient step reports)
    # as untraced, and the reports at eps = 0: mean and log sd (-inf for the param).
    _, _, compiled = ppl.compile(ORDERED).prepare({"y": [0.3, -1.2]})
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    assert list(guide.auto_cols) == [1, 2, 3] and list(guide.guided_cols) == [0, 4]
    rng = np.random.default_rng(1)
    start = guide.init(compiled.dim, 1.0)
    theta = start + 0.3 * rng.standard_normal(start.size)
    mu, log_sigma, m = theta[:3], theta[3:6], theta[6]
    eps = rng.standard_normal((5, guide.eps_dim(compiled.dim)))
    zeta, log_q = guide.draw_and_log_q(theta, eps)
    g, a = zeta[:, 0], zeta[:, 1]
    np.testing.assert_array_equal(zeta[:, 1:4], guide.auto.draw(theta[:6], eps[:, :3]))
    np.testing.assert_allclose(g, m + 0.5 * eps[:, 3], rtol=1e-15)
    np.testing.assert_allclose(zeta[:, 4], g + np.exp(0.5 * g + 0.25 * a) * eps[:, 4],
                               rtol=1e-14)
    np.testing.assert_allclose(log_q, guide.log_q(theta, zeta), rtol=1e-12)
    exact = (np.sum(log_sigma) + np.log(0.5) + np.mean(0.5 * g + 0.25 * a)
             + 0.5 * 5 * (1 + np.log(2 * np.pi)))
    traced, _ = value_and_grad(lambda t: guide.draw_and_entropy(t, eps)[1])(theta)
    assert traced == pytest.approx(exact, rel=1e-14)
    assert guide.draw_and_entropy(theta, eps)[1] == pytest.approx(exact, rel=1e-14)
    np.testing.assert_allclose(guide.mean(theta), [m, *mu, m, m], rtol=1e-15)
    np.testing.assert_allclose(guide.log_sd(theta), [np.log(0.5), *log_sigma,
                                                     0.5 * m + 0.25 * mu[0], -np.inf],
                               rtol=1e-15)


def test_push_affine_moves_the_automatic_coordinates_and_the_params():
    # theta of the law of m0 + W zeta: the automatic family's pushed on its columns (1-3),
    # each param's value moved as m0 + W value (a later start's shift, infer/starts.py)
    _, _, compiled = ppl.compile(ORDERED).prepare({"y": [0.3, -1.2]})
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    rng = np.random.default_rng(2)
    theta = guide.init(compiled.dim, 1.0) + 0.3 * rng.standard_normal(7)
    m0, W = rng.standard_normal(6), rng.uniform(0.5, 2.0, 6)
    pushed = guide.push_affine(theta, m0, W)
    np.testing.assert_array_equal(pushed[:6], guide.auto.push_affine(theta[:6], m0[1:4],
                                                                     W[1:4]))
    assert pushed[6] == m0[5] + W[5] * theta[6]


def test_a_latents_bound_read_through_a_let_is_computed_for_the_guide():
    # z's bound reads the let lo, which reads the let t, and no guide reads either: the walk
    # must still compute both (a bound's names count, not only a guide's, and a let's lets),
    # or z's transform finds no 'lo'
    source = ("sample s ~ Normal(0, 1)\nlet t = 2 * s\nlet lo = t - 1\n"
              "sample z: real<lower=lo> ~ Normal(s, 1)\nparam m: real\nguide s ~ Normal(m, 1)\n"
              "observe 1.0 ~ Normal(z, 1)\n")
    _, _, compiled = ppl.compile(source).prepare({})
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    zeta = guide.draw(guide.init(compiled.dim, 1.0), np.random.default_rng(1).standard_normal(
        (4, guide.eps_dim(compiled.dim))))
    values = compiled.constrained(zeta)
    np.testing.assert_allclose(values["lo"], 2 * values["s"] - 1.0, rtol=1e-15)
    assert np.all(values["z"] > values["lo"])


def test_a_collapsed_guide_behind_guide_statements_is_not_called_reliable():
    # The automatic coordinates (tau, eta) at sds of e^-80 next to means of order 1: every
    # draw rounds to the mean. log q recomputed from the rounded draws was the same at all of
    # them, the weights varied only with mu's guide, and PSIS called the fit reliable (k̂ -1.8,
    # sds of 1e-15 for tau and eta; `ppl fit` of eight schools with a guide for mu, --guide
    # meanfield --init-scale 1e-100 --iter 10: k̂ -1.75, importance-corrected). From the
    # noise, log q varies as the guide's density does and the weights have its heavy tail.
    from ppl.infer.advi import AdviResult
    from ppl.options import FitOptions
    from ppl.posterior import Fit
    source = ("data J: int\ndata y: real[J]\ndata sigma: real<lower=0>[J]\n"
              "sample mu ~ Normal(0, 5)\nsample tau ~ HalfCauchy(5)\n"
              "sample eta: real[J] ~ Normal(0, 1)\nobserve y ~ Normal(mu + tau * eta, sigma)\n"
              "param a: real\nparam b: real\nguide mu ~ Normal(a, exp(b))\n")
    data = {"J": 3, "y": [28.0, 8.0, -3.0], "sigma": [15.0, 10.0, 16.0]}
    _, _, compiled = ppl.compile(source).prepare(data)
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    D = guide.d_auto
    theta = np.concatenate([np.full(D, 0.7), np.full(D, -80.0), [4.0, 1.0]])
    result = AdviResult(guide, theta, tuple(compiled.unconstrained_names()), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    fit = Fit(None, compiled, result, FitOptions(guide="meanfield"), {})
    assert np.all(fit._zeta(4000)[:, 1:1 + D] == 0.7)     # the automatic draws: the mean
    assert fit.khat > 0.7 and fit.verdict().level == "unreliable"
    # the hint named no family ('reparameterize the model, or check it with MCMC'), though
    # --guide still draws tau and eta here (guides/user.py's 'user+' family name was not
    # one the hints knew)
    assert "; try --guide flow for the latents without a guide statement" in fit.verdict().line


@pytest.mark.parametrize("spec", ["meanfield", "fullrank", "lowrank", "flow", "flow:3"])
def test_jitter_scale_has_thetas_length_when_every_latent_has_a_guide(spec):
    # No automatic coordinates: a flow still has parameters (its layers' hidden biases at
    # D = 0), and the units were np.zeros(0) for them: the convergence rule's first window
    # comparison was an internal error ('operands could not be broadcast together with
    # shapes (27,) (11,)', `ppl fit` of a linear VAE with --guide flow)
    _, _, compiled = ppl.compile(AMORTIZED).prepare({"N": 4, "y": [0.5, -1.0, 2.0, 0.1]})
    guide = user.family_for(compiled, spec, np.random.default_rng(0))
    assert guide.d_auto == 0
    theta = guide.init(compiled.dim, 1.0)
    assert guide.jitter_scale(theta).shape == theta.shape


def test_a_flow_with_every_latent_guided_fits_the_guides():
    # the whole fit, past the convergence rule's window comparisons; the guide learns the
    # per-row posterior z_i | y_i ~ N(0.8 y_i, 0.8) as under mean field (the first test:
    # its tolerance, 0.1 posterior sds per row)
    rng = np.random.default_rng(4)
    y = rng.standard_normal(30) * np.sqrt(5.0)
    fit = ppl.compile(AMORTIZED).fit({"N": 30, "y": y}, guide="flow", seed=3)
    assert fit.converged
    p = fit.params()
    np.testing.assert_allclose(p["a"] * y + p["b"], 0.8 * y, atol=0.1 * np.sqrt(0.8))


def test_a_familys_size_limit_counts_only_the_latents_it_draws():
    # sigma is the one latent without a guide; the 30 guided coordinates and 3 params are
    # not the family's. 'scaled' (at most 20 coordinates) was refused before the fit with
    # "this model has 34", while the fit itself builds the family on sigma alone
    rng = np.random.default_rng(4)
    source = AMORTIZED.replace("observe y ~ Normal(z, 1)",
                               "sample sigma ~ HalfNormal(1)\nobserve y ~ Normal(z, sigma)")
    fit = ppl.compile(source).fit({"N": 30, "y": rng.standard_normal(30)},
                                  guide="scaled", iter=200)
    assert fit.result.guide.name == "user+scaled" and fit.result.guide.d_auto == 1


@pytest.mark.parametrize("guide, message", [
    ("lowrank:3", "rank 3 is larger than the 2 unconstrained dimensions of the latents "
                  "without a guide statement"),
    ("scaled", "'scaled' is limited to 20 unconstrained dimensions and the latents without a "
               "guide statement have 21")])
def test_a_familys_limit_errors_name_the_dimensions_it_draws(guide, message):
    # the family draws sigma (and w) alone, 30 coordinates being guided and 3 params; the
    # errors said "the model's 2 unconstrained dimensions" and "this model has 21" of a
    # model with 35 and 54
    width = 1 if guide.startswith("lowrank") else 20
    source = AMORTIZED.replace("observe y ~ Normal(z, 1)",
                               f"sample w: real[{width}] ~ Normal(0, 1)\n"
                               "sample sigma ~ HalfNormal(1)\n"
                               "observe y ~ Normal(z + w[0], sigma)")
    with pytest.raises(ppl.PplError, match=message.replace("(", r"\(")):
        ppl.compile(source).fit({"N": 30, "y": np.zeros(30)}, guide=guide, iter=10)


def test_a_guide_scale_read_through_a_let_declared_after_the_latent():
    # s comes first in the source, but its guide's scale is the later let w = exp(c): the walk
    # must compute w (a let the scale reads, not only the loc) before drawing s. Exact
    # references at the same noise: the draw m + e^c eps, log q by scipy.stats.norm and the
    # entropy's closed form c + (1 + log 2 pi) / 2.
    from scipy import stats
    source = ("sample s ~ Normal(0, 1)\nparam m: real\nparam c: real\nlet w = exp(c)\n"
              "guide s ~ Normal(m, w)\nobserve 1.0 ~ Normal(s, 1)\n")
    _, _, compiled = ppl.compile(source).prepare({})
    guide = user.family_for(compiled, "meanfield", np.random.default_rng(0))
    m, c = 0.3, -0.4
    theta = np.array([m, c])
    eps = np.random.default_rng(1).standard_normal((4, guide.eps_dim(compiled.dim)))
    zeta, entropy = guide.draw_and_entropy(theta, eps)
    np.testing.assert_allclose(zeta[:, 0], m + np.exp(c) * eps[:, 0], rtol=1e-15)
    np.testing.assert_allclose(guide.log_q(theta, zeta),
                               stats.norm.logpdf(zeta[:, 0], m, np.exp(c)), rtol=1e-13)
    assert entropy == pytest.approx(c + 0.5 * (1 + np.log(2 * np.pi)), rel=1e-14)


@pytest.mark.parametrize("declaration", ["data y: real", "param y: real"])
def test_a_guide_for_data_or_a_param_is_refused(declaration):
    # only a latent has a distribution for a guide to stand in for; a data name or a param of
    # that name is not one (a guide statement for it was an internal error, not this one)
    with pytest.raises(ppl.PplError) as info:
        ppl.compile(f"{declaration}\nsample v ~ Normal(0, 1)\nguide y ~ Normal(0, 1)\n")
    assert info.value.message == ("guide for 'y', which is not a latent variable defined "
                                  "earlier")
    assert (info.value.span.line, info.value.span.col) == (3, 7)
