"""Compiled.pointwise_log_likelihood and Compiled.observed (the ArviZ log_likelihood and
observed_data groups): exact references are the log joint's own terms and scipy.stats."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

import ppl
from ppl import ir
from ppl.errors import PplWarning

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "models").glob("*.ppl"))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_pointwise_sums_to_each_observe_term(path):
    _, _, compiled = ppl.load(path).prepare()
    zeta = 0.3 * np.random.default_rng(0).standard_normal((4, compiled.dim))
    if compiled.values():   # discrete latents: observations are summed out with them
        with pytest.raises(ppl.PplError, match="not available for a model with discrete"):
            compiled.pointwise_log_likelihood(zeta)
        return
    pointwise = compiled.pointwise_log_likelihood(zeta)
    terms = [t for s, t in compiled.terms(zeta) if isinstance(s, ir.Observe)]
    assert len(pointwise) == len(terms) >= 1
    for values, term in zip(pointwise.values(), terms):
        assert values.shape[0] == 4
        np.testing.assert_allclose(values.reshape(4, -1).sum(axis=1), term, rtol=1e-12)


def test_pointwise_equals_scipy_per_element():
    model = ppl.compile("data y: real[3]\nsample mu ~ Normal(0, 1)\nsample s ~ HalfNormal(1)\n"
                        "observe y ~ Normal(mu, s)\n")
    y = np.array([0.5, -1.0, 2.0])
    _, _, compiled = model.prepare({"y": y})
    zeta = np.array([[0.2, -0.3], [1.0, 0.4]])  # mu, log s
    got = compiled.pointwise_log_likelihood(zeta)["y"]
    expected = scipy.stats.norm.logpdf(y, zeta[:, :1], np.exp(zeta[:, 1:]))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_array_equal(compiled.observed()["y"], y)


def test_pointwise_drops_event_axes_and_repeats_constant_densities():
    # Dirichlet's value axis is its event: one density per row. Uniform with a constant
    # width has the same density for every element.
    model = ppl.compile("data p: real[2, 3]\ndata u: real[4]\nsample a: real<lower=0>[3] ~ "
                        "Exponential(1)\nobserve p ~ Dirichlet(a)\n"
                        "observe u ~ Uniform(0, 2)\n")
    data = {"p": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], "u": [0.1, 0.5, 1.5, 1.9]}
    _, _, compiled = model.prepare(data)
    zeta = np.zeros((5, 3))
    pointwise = compiled.pointwise_log_likelihood(zeta)
    assert pointwise["p"].shape == (5, 2)
    np.testing.assert_allclose(pointwise["u"], np.full((5, 4), np.log(0.5)))


def test_the_same_expression_observed_twice_gets_a_primed_label():
    model = ppl.compile("data y: real[2]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"
                        "observe y ~ Normal(mu, 2)\n")
    _, _, compiled = model.prepare({"y": [0.0, 1.0]})
    assert list(compiled.pointwise_log_likelihood(np.zeros((1, 1)))) == ["y", "y'"]
    assert list(compiled.observed()) == ["y", "y'"]


# A parameter outside its constraint at the first draw only; (text, data, zeta, the elements
# of the first draw whose own parameters leave it). Unguarded, these elements were finite
# numbers (Dirichlet: +0.42, Bernoulli at p = 1.2: +0.18, Gamma at shape -0.5) or NaN.
OUT_OF_RANGE = [
    ("data y: real[3]\nsample a ~ Normal(1, 1)\nobserve y ~ Gamma(a, 1)\n",
     {"y": [0.5, 1.0, 2.0]}, [[-0.5], [0.5]], [True, True, True]),
    ("data y: int[3]\nsample p ~ Normal(0.5, 1)\nobserve y ~ Bernoulli(p)\n",
     {"y": [0, 1, 1]}, [[1.2], [0.3]], [True, True, True]),
    ("data y: real[3]\nsample s: real[3] ~ Normal(1, 1)\nobserve y ~ Normal(0, s)\n",
     {"y": [0.5, 1.0, 2.0]}, [[1.0, -0.5, 1.0], [0.5, 1.0, 1.0]], [False, True, False]),
    ("data d: real[2, 3]\nsample a: real[2, 3] ~ Normal(1, 1)\nobserve d ~ Dirichlet(a)\n",
     {"d": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]}, [[1, -0.5, 1, 1, 1, 1], [1.0] * 6],
     [True, False]),
    ("data y: real[3, 2]\nsample r ~ Normal(0, 1)\n"
     "observe y ~ MvNormal([0.0, 0.0], [[1.0, r], [r, 1.0]])\n",
     {"y": [[0.0, 0.0]] * 3}, [[2.0], [0.5]], [True, True, True]),
    ("data y: int[3]\nsample c: real[2] ~ Normal(0, 5)\nobserve y ~ OrderedLogistic(0.5, c)\n",
     {"y": [0, 1, 2]}, [[0.5, -0.5], [-0.5, 0.5]], [True, True, True]),
    ("data y: real[2, 4]\nsample s: real[2] ~ Normal(1, 1)\nobserve y ~ RandomWalk(s, 1)\n",
     {"y": [[0.0] * 4] * 2}, [[-1.0, 1.0], [1.0, 1.0]], [True, False]),
    ("data y: real[3]\nsample w ~ Normal(0.5, 1)\n"
     "observe y ~ Mixture([w, 1 - w], Normal([0.0, 1.0], 1))\n",
     {"y": [0.0, 1.0, 2.0]}, [[-0.2], [0.3]], [True, True, True]),
]


@pytest.mark.parametrize("text, data, zeta, outside", OUT_OF_RANGE,
                         ids=lambda c: c.split("~")[-1].split("(")[0].strip() if isinstance(c, str) else "")
def test_pointwise_is_minus_inf_where_a_parameter_leaves_its_constraint(text, data, zeta,
                                                                        outside):
    # the log joint's guard (density._outside), element by element: each element whose own
    # parameters are outside is -inf, the others keep their density, and they sum to the
    # statement's term, -inf at that draw
    with warnings.catch_warnings():  # the checker's warning that the parameter can leave it
        warnings.simplefilter("ignore", PplWarning)
        _, _, compiled = ppl.compile(text).prepare(data)
    zeta = np.array(zeta, dtype=float)
    (values,) = compiled.pointwise_log_likelihood(zeta).values()
    with np.errstate(invalid="ignore"):
        (term,) = [t for s, t in compiled.terms(zeta) if isinstance(s, ir.Observe)]
    assert not np.isnan(values).any()
    np.testing.assert_array_equal(values[0] == -np.inf, outside)
    assert np.isfinite(values[1]).all()
    np.testing.assert_allclose(values.reshape(2, -1).sum(axis=1), term, rtol=1e-12)
