"""Supports and constraints that latents reach (issue 9, items 1 and 2): the checker refuses
or warns, and at run time a parameter outside its constraint, or a value outside a moving
support, has log density -inf; predictive draws name their statement."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate

import ppl
from ppl.errors import PplError, PplWarning

UNIFORM_BOUND = """data y: real[5]
data y_max: real
sample u: real<lower=y_max> ~ Uniform(1, 100)
observe y ~ Uniform(0, u)
"""
Y = [3.0, 7.0, 12.0, 40.0, 1.0]


def test_latent_declared_with_its_data_bound_is_accepted():
    ppl.compile(UNIFORM_BOUND)


def test_latent_declared_with_a_bound_on_the_wrong_side_is_refused():
    text = UNIFORM_BOUND.replace("<lower=y_max>", "<upper=y_max>")
    with pytest.raises(PplError, match="moves with its parameter 'upper'"):
        ppl.compile(text)


@pytest.mark.parametrize("bound, refused", [("upper", False), ("lower", True)])
def test_uniforms_lower_end_needs_a_latent_bounded_above(bound, refused):
    # the data need l <= min(y): only <upper=y_min> keeps l there; <lower=y_min> does not
    text = ("data y: real[5]\ndata y_min: real\n"
            f"sample l: real<{bound}=y_min> ~ Normal(0, 10)\nobserve y ~ Uniform(l, 100)\n")
    if refused:
        with pytest.raises(PplError, match="moves with its parameter 'lower'"):
            ppl.compile(text)
    else:
        ppl.compile(text)


def test_moving_support_is_fine_for_a_latent():
    ppl.compile("sample u ~ Exponential(1)\nsample v ~ Uniform(0, u)\n")


def test_uniform_with_a_declared_bound_fits_above_the_data(rng):
    # posterior of u: proportional to u^-5 on [40, 100]; every draw must respect u >= 40
    fit = ppl.compile(UNIFORM_BOUND).fit({"y": Y, "y_max": 40.0}, seed=0, draws=2000)
    draws = fit.draws()["u"]
    assert draws.min() >= 40.0
    # exact posterior moments by quadrature: E[(u - c)^k] = int (u - c)^k u^-5 / int u^-5
    def moment(k, c=0.0):
        return (scipy.integrate.quad(lambda u: (u - c) ** k * u ** -5, 40.0, 100.0)[0]
                / scipy.integrate.quad(lambda u: u ** -5, 40.0, 100.0)[0])
    mean = moment(1)
    var, mu4 = moment(2, mean), moment(4, mean)
    sd = np.sqrt(var)
    # z = 4 combined errors: the Monte Carlo error of 2000 draws (sd / sqrt(n) on the mean,
    # sd sqrt((mu4 / var^2 - 1) / 4n) on the sd by the delta method: 0.022 and 0.024 sd, this
    # posterior's kurtosis being 5.7) and 0.03 sd for the optimizer's jitter and the guide's
    # gap from this truncated power law (the largest jitter of tests/stats/test_posteriors.py;
    # seeds 0-3, auto choosing the flow or mean field: means within 0.025 sd, sds within 3.3%)
    n = draws.size
    mc_mean, mc_sd = sd / np.sqrt(n), sd * np.sqrt((mu4 / var ** 2 - 1) / (4 * n))
    assert fit.converged
    assert abs(draws.mean() - mean) < 4 * np.hypot(mc_mean, 0.03 * sd)
    assert abs(draws.std() - sd) < 4 * np.hypot(mc_sd, 0.03 * sd)


def test_uniform_density_is_minus_inf_outside_its_support():
    from ppl.distributions.continuous import Uniform
    values = Uniform.log_density(np.array([-1.0, 0.5, 2.0]), 0.0, 1.0)
    np.testing.assert_array_equal(values, [-np.inf, 0.0, -np.inf])


def test_a_latent_that_can_leave_a_constraint_warns_at_the_parameter():
    text = "data y: real[2]\nsample a ~ Normal(-3, 0.3)\nobserve y ~ Beta(a, 2)\n"
    with pytest.warns(PplWarning) as record:
        ppl.compile(text)
    warning = record[0].message
    assert (warning.span.line, warning.span.col) == (3, 18)
    assert "parameter 'a' of Beta must be (0, inf)" in warning.message


def test_a_mixture_component_that_can_leave_a_constraint_warns_at_the_parameter():
    # the components' parameters were not looked at: no warning, and at s < 0 a NaN term
    text = ("data y: real[2]\nsample s ~ Normal(1, 0.5)\n"
            "observe y ~ Mixture([0.5, 0.5], Normal([-1.0, 1.0], s))\n")
    with pytest.warns(PplWarning) as record:
        ppl.compile(text)
    warning = record[0].message
    assert (warning.span.line, warning.span.col) == (3, 53)
    assert "parameter 'sigma' of Normal must be (0, inf)" in warning.message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppl.compile(text.replace("Normal(1, 0.5)", "LogNormal(0, 0.5)"))


# A parameter with event axes whose constraint holds elementwise (Dirichlet's alpha) was never
# range-checked: 'Dirichlet([v, 1.0, 1.0])' with v ~ Normal(0, 1) compiled without a word, and
# the fit met alpha <= 0 (log density -inf) on half of v's prior. (text, line:col, message)
EVENT_PARAMETERS_OUT_OF_RANGE = [
    ("sample v ~ Normal(0, 1)\nsample x: real[3] ~ Dirichlet([v, 1.0, 1.0])\n", "2:32",
     "latent variable 'v' can take it outside"),
    ("sample z: real[3] ~ Normal(0, 1)\nlet a = [z[0], 1.0]\nsample x: real[2] ~ Dirichlet(a)\n",
     "3:31", "latent variable 'z' can take it outside"),
    ("sample z: real[3] ~ Normal(0, 1)\nsample x: real[3] ~ Dirichlet(-exp(z))\n", "2:31",
     "outside that for every value of the latent variable 'z'"),
    ("sample v ~ Normal(0, 1)\nsample x: real[3] ~ Dirichlet([exp(v), -1.0, 2.0])\n", "2:40",
     "found -1"),
    # a nested literal is flattened: the -1 is refused, not merged into a warning of its row
    ("sample v ~ Normal(0, 1)\n"
     "sample x: real[2, 3] ~ Dirichlet([[exp(v), -1.0, 2.0], [1.0, 1.0, 1.0]])\n", "2:44",
     "found -1"),
]


@pytest.mark.parametrize("text, where, message", EVENT_PARAMETERS_OUT_OF_RANGE)
def test_an_event_parameter_is_range_checked_elementwise(text, where, message):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            ppl.compile(text)
            found = record[0].message
        except PplError as error:
            found = error
    assert f"{found.span.line}:{found.span.col}" == where
    assert "parameter 'alpha' of Dirichlet must be (0, inf)" in found.message
    assert message in found.message


@pytest.mark.parametrize("param", ["exp(a)", "softplus(a)", "square(a) + 1", "sigmoid(a) * 3"])
def test_transformed_latents_that_fit_do_not_warn(param):
    text = f"data y: real[2]\nsample a ~ Normal(0, 1)\nobserve y ~ Gamma({param}, 2)\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppl.compile(text)


def test_bernoulli_probability_from_sigmoid_does_not_warn():
    text = "data y: int[2]\nsample a ~ Normal(0, 1)\nobserve y ~ Bernoulli(sigmoid(a))\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppl.compile(text)


def test_parameter_outside_its_constraint_has_log_density_minus_inf():
    with pytest.warns(PplWarning):
        model = ppl.compile("data y: real[2]\nsample a ~ Normal(0, 1)\nobserve y ~ Beta(a, 2)\n")
    _, _, compiled = model.prepare({"y": [0.2, 0.5]})
    values = compiled.log_joint(np.array([[-0.5], [0.5]]))
    assert values[0] == -np.inf and np.isfinite(values[1])


def test_beta_fit_with_a_negative_prior_is_an_error_not_a_wrong_answer():
    with pytest.warns(PplWarning):
        model = ppl.compile("data y: real[3]\nsample a ~ Normal(-3, 0.3)\n"
                            "observe y ~ Beta(a, 2)\n")
    with pytest.raises(PplError) as info:
        model.fit({"y": [0.1, 0.5, 0.3]}, seed=0)
    assert info.value.span.line == 3


def test_predictive_draw_outside_a_constraint_names_the_statement():
    with pytest.warns(PplWarning):
        model = ppl.compile("data y: real[2]\nsample a ~ Normal(-3, 0.3)\n"
                            "observe y ~ Beta(a, 2)\n")
    with pytest.raises(PplError) as info:
        model.prior_predictive({"y": [0.2, 0.5]}, n=10)
    assert info.value.span.line == 3 and "parameter 'a' must be (0, inf)" in info.value.message


def test_predictive_draw_numpy_refuses_names_the_statement():
    model = ppl.compile("data y: int[2]\nsample a ~ Normal(50, 1)\n"
                        "observe y ~ Poisson(log_rate=a)\n")
    with pytest.raises(PplError) as info:
        model.prior_predictive({"y": [1, 2]}, n=10)
    assert info.value.span.line == 3 and "lam value too large" in info.value.message
    # the draws were the prior's: the hint said "the fit's draws put ..."
    assert info.value.hint.startswith("the draws (of the prior in prior_predictive")


def test_a_bound_that_moves_with_a_latent_is_clipped_to_the_support():
    # bounds narrow a support, never widen it: real<lower=b> ~ HalfNormal(1) with b at -2
    # drew s below 0; the bound is maximum(b, 0) (an upper one minimum(b, 1) under a Beta)
    from ppl.frontend.check import check
    from ppl.frontend.parse import parse
    model = check(parse("sample b ~ Normal(0, 1)\nsample s: real<lower=b> ~ HalfNormal(1)\n"
                        "sample t: real<upper=b> ~ Beta(1, 1)\n"))
    support = {st.name: st.support for st in model.statements}
    lower, upper = support["s"].lower, support["t"].upper
    assert (lower.func, lower.args[0].name, lower.args[1].value) == ("maximum", "b", 0.0)
    assert (upper.func, upper.args[0].name, upper.args[1].value) == ("minimum", "b", 1.0)


def test_an_int_latents_bounds_may_sit_on_the_ends_of_its_support():
    # {0..5} is closed: lower=0 and upper=5 are inside it, upper=6 is not
    text = "data p: real<lower=0, upper=1>\nsample n: int<lower=0, upper=5> ~ Binomial(5, p)\n"
    ppl.compile(text)
    with pytest.raises(PplError, match="upper=6"):
        ppl.compile(text.replace("upper=5", "upper=6"))


def test_a_long_constant_parameter_is_shown_with_its_first_eight_items():
    text = ("data y: int[2]\n"
            "observe y ~ Categorical([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])\n")
    with pytest.raises(PplError, match=r"found \[0\.1(, 0\.1){7}, \.\.\.\]"):
        ppl.compile(text)


def test_a_latents_bound_that_moves_with_another_latent_does_not_carry_the_data():
    # u >= m does not keep u above the data when m itself is fitted
    text = ("data y: real[2]\nsample m ~ Exponential(1)\n"
            "sample u: real<lower=m> ~ Exponential(1)\nobserve y ~ Uniform(0, u)\n")
    with pytest.raises(PplError, match="moves with its parameter 'upper'"):
        ppl.compile(text)


def test_a_parameter_outside_its_constraint_for_every_latent_value_is_an_error():
    text = "data y: real[2]\nsample v ~ Normal(0, 1)\nobserve y ~ Normal(0, -exp(v))\n"
    with pytest.raises(PplError, match="outside that for every value of the latent"):
        ppl.compile(text)


@pytest.mark.parametrize("text", [
    # a truncation at the distribution's own parameter cuts nothing: no normalizer dropped
    "param b: real\nsample u: real<lower=b> ~ Uniform(b, 10)\n",
    # an event parameter is range-checked element by element: e1, e2 and 1.0 are positive
    "sample e1 ~ Exponential(1)\nsample e2 ~ Exponential(1)\n"
    "sample x: real[3] ~ Dirichlet([e1, e2, 1.0])\n",
])
def test_models_that_must_not_warn(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppl.compile(text)
