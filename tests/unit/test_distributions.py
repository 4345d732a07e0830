"""Every registered distribution against scipy.stats: log densities, samplers, gradients.

One row per distribution and signature in ``ROWS``; a test fails if a registered distribution
or one of its signatures has no row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from autograd import grad

from ppl import constraints as c
from ppl.distributions import DISTRIBUTIONS, lookup

K = 4  # categories / simplex size of the event rows


def real(rng, shape):
    return rng.normal(0.0, 2.0, shape)


def positive(rng, shape):
    return rng.uniform(0.5, 3.0, shape)


def prob(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def count(rng, shape):
    return rng.integers(1, 20, shape)


def simplex(rng, shape):
    return rng.dirichlet(np.ones(K), size=shape)


def real_vec(rng, shape):
    return rng.normal(0.0, 2.0, tuple(shape) + (K,))


def positive_vec(rng, shape):
    return rng.uniform(0.5, 3.0, tuple(shape) + (K,))


def _nb(mu, phi):
    # NegativeBinomial(mu, phi) is scipy's nbinom with n = phi, p = phi / (mu + phi)
    return st.nbinom(phi, phi / (mu + phi))


@dataclass
class Row:
    """One distribution under one signature.

    params: generator per parameter name (in signature order), called as gen(rng, batch_shape).
    scipy: params -> frozen scipy.stats distribution (univariate rows).
    moments: fixed parameters for the sampler test (all its moments up to the 4th finite,
        except where the test says otherwise).
    support_params: parameters the support depends on (kept free of the draw axis in the
        broadcasting case, so that one value is valid under every draw).
    """
    name: str
    params: dict[str, Callable]
    scipy: Callable[..., Any] | None
    moments: dict[str, Any]
    support_params: tuple[str, ...] = ()
    event: str | None = None              # 'simplex' (Dirichlet) or 'categorical'
    grad_x: bool = True                   # differentiate w.r.t. the value (continuous only)
    extra: dict = field(default_factory=dict)

    @property
    def id(self):
        return f"{self.name}({','.join(self.params)})"


ROWS = [
    Row("Normal", {"mu": real, "sigma": positive}, lambda mu, sigma: st.norm(mu, sigma),
        {"mu": 1.5, "sigma": 2.0}),
    Row("HalfNormal", {"sigma": positive}, lambda sigma: st.halfnorm(scale=sigma),
        {"sigma": 1.7}),
    Row("StudentT", {"nu": lambda rng, s: rng.uniform(1.0, 10.0, s), "mu": real,
                     "sigma": positive},
        lambda nu, mu, sigma: st.t(nu, mu, sigma),
        {"nu": 7.0, "mu": -1.0, "sigma": 2.0}),     # nu > 4: finite 4th moment
    Row("Cauchy", {"mu": real, "sigma": positive}, lambda mu, sigma: st.cauchy(mu, sigma),
        {"mu": 0.5, "sigma": 1.5}),
    Row("HalfCauchy", {"sigma": positive}, lambda sigma: st.halfcauchy(scale=sigma),
        {"sigma": 2.5}),
    Row("Laplace", {"mu": real, "b": positive}, lambda mu, b: st.laplace(mu, b),
        {"mu": 2.0, "b": 0.7}),
    Row("LogNormal", {"mu": real, "sigma": positive},
        lambda mu, sigma: st.lognorm(sigma, scale=np.exp(mu)),
        {"mu": 0.3, "sigma": 0.4}),
    Row("Exponential", {"rate": positive}, lambda rate: st.expon(scale=1 / rate),
        {"rate": 2.5}),
    Row("Gamma", {"shape": positive, "rate": positive},
        lambda shape, rate: st.gamma(shape, scale=1 / rate), {"shape": 2.5, "rate": 0.8}),
    Row("InverseGamma", {"shape": positive, "scale": positive},
        lambda shape, scale: st.invgamma(shape, scale=scale),
        {"shape": 6.0, "scale": 2.0}),                # shape > 4: finite 4th moment
    Row("Beta", {"a": positive, "b": positive}, lambda a, b: st.beta(a, b),
        {"a": 2.0, "b": 3.5}),
    Row("Uniform", {"lower": lambda rng, s: rng.uniform(-3, -1, s),
                    "upper": lambda rng, s: rng.uniform(1, 3, s)},
        lambda lower, upper: st.uniform(lower, upper - lower),
        {"lower": -1.0, "upper": 3.0}, support_params=("lower", "upper")),
    Row("Dirichlet", {"alpha": positive_vec}, None,
        {"alpha": np.array([0.5, 1.0, 2.0, 4.0])}, event="simplex"),
    Row("Bernoulli", {"p": prob}, lambda p: st.bernoulli(p), {"p": 0.3}, grad_x=False),
    Row("Bernoulli", {"logit": real}, lambda logit: st.bernoulli(sp.expit(logit)),
        {"logit": -0.8}, grad_x=False),
    Row("Binomial", {"n": count, "p": prob}, lambda n, p: st.binom(n, p),
        {"n": 12, "p": 0.35}, support_params=("n",), grad_x=False),
    Row("Binomial", {"n": count, "logit": real},
        lambda n, logit: st.binom(n, sp.expit(logit)),
        {"n": 7, "logit": 1.2}, support_params=("n",), grad_x=False),
    Row("BetaBinomial", {"n": count, "a": positive, "b": positive},
        lambda n, a, b: st.betabinom(n, a, b),
        {"n": 15, "a": 2.0, "b": 1.5}, support_params=("n",), grad_x=False),
    Row("Poisson", {"rate": positive}, lambda rate: st.poisson(rate), {"rate": 3.5},
        grad_x=False),
    Row("Poisson", {"log_rate": real}, lambda log_rate: st.poisson(np.exp(log_rate)),
        {"log_rate": 0.4}, grad_x=False),
    Row("NegativeBinomial", {"mu": positive, "phi": positive}, _nb,
        {"mu": 4.0, "phi": 2.5}, grad_x=False),
    Row("NegativeBinomial", {"log_mu": real, "phi": positive},
        lambda log_mu, phi: _nb(np.exp(log_mu), phi),
        {"log_mu": 1.1, "phi": 1.5}, grad_x=False),
    Row("Categorical", {"p": simplex}, None,
        {"p": np.array([0.1, 0.2, 0.3, 0.4])}, event="categorical", grad_x=False),
    Row("Categorical", {"logits": real_vec}, None,
        {"logits": np.array([1.0, -0.5, 0.0, 2.0])}, event="categorical", grad_x=False),
]


def _probs(params):
    """Category probabilities of a Categorical row's parameters."""
    if "logits" in params:
        return sp.softmax(params["logits"], axis=-1)
    return params["p"]


# ----- shapes: (parameter batch shape, support-parameter batch shape, value batch shape) -----
# 'draws' lines up like the compiler does: params depending on latents [S, 1] against data
# [1, N]; 'latent_x' is a value with a draw axis under data parameters.
CASES = {
    "scalar": ((), (), (5,)),
    "vector": ((3,), (3,), (3,)),
    "draws": ((4, 1), (1, 3), (1, 3)),
    "latent_x": ((1, 3), (1, 3), (4, 3)),
}


def _make_params(row, rng, case):
    shape, support_shape, _ = CASES[case]
    return {name: gen(rng, support_shape if name in row.support_params else shape)
            for name, gen in row.params.items()}


def _batch_shape(row, params):
    return np.broadcast_shapes(*[np.shape(v)[:-1] if row.event else np.shape(v)
                                 for v in params.values()])


def _make_value(row, rng, params, x_shape):
    """A valid value of batch shape ``x_shape`` (broadcastable against the params)."""
    if row.event == "simplex":
        return rng.dirichlet(np.ones(K), size=x_shape)
    if row.event == "categorical":
        return rng.integers(0, K, size=x_shape)
    full_shape = np.broadcast_shapes(x_shape, _batch_shape(row, params))
    full = row.scipy(**params).rvs(size=full_shape, random_state=rng)
    # the support depends on support params only, which have no draw axis: slicing keeps
    # every value valid under every draw
    pad = (1,) * (len(full_shape) - len(x_shape)) + tuple(x_shape)
    return full[tuple(slice(0, 1) if d == 1 else slice(None) for d in pad)].reshape(x_shape)


def _reference(row, x, params):
    """scipy.stats log density, looping over the batch for the multivariate rows."""
    if row.event is None:
        dist = row.scipy(**params)
        return dist.logpmf(x) if hasattr(dist, "logpmf") else dist.logpdf(x)
    if row.event == "simplex":
        xb, ab = np.broadcast_arrays(x, params["alpha"])
        out = np.empty(xb.shape[:-1])
        for i in np.ndindex(out.shape):
            out[i] = st.dirichlet.logpdf(xb[i], ab[i])
        return out
    xb, pb = np.broadcast_arrays(np.asarray(x)[..., None], _probs(params))
    out = np.empty(xb.shape[:-1])
    for i in np.ndindex(out.shape):
        out[i] = st.multinomial.logpmf(np.eye(K)[int(xb[i][0])], 1, pb[i])
    return out


def test_every_registered_distribution_and_signature_has_a_row():
    registered = {(name, sig) for name, cls in DISTRIBUTIONS.items() for sig in cls.signatures}
    assert registered == {(row.name, tuple(row.params)) for row in ROWS}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_constraints_cover_every_parameter(name):
    cls = lookup(name)
    assert {p for sig in cls.signatures for p in sig} == set(cls.constraints)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_log_density_matches_scipy(row, case, rng):
    params = _make_params(row, rng, case)
    cls = lookup(row.name)
    for name, value in params.items():
        assert np.all(cls.constraints[name].check(value)), name
    x = _make_value(row, rng, params, CASES[case][2])
    if case == "vector":
        x = x.astype(float)               # discrete data may arrive as floats holding ints
    got = cls.log_density(x, **params)
    want = _reference(row, x, params)
    batch = np.broadcast_shapes(CASES[case][2], _batch_shape(row, params))
    assert got.shape == want.shape == batch
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def _marginals(row, params):
    """scipy distributions of each event component of a draw (one for univariate rows)."""
    if row.event == "simplex":
        a = params["alpha"]
        return [st.beta(a_k, a.sum() - a_k) for a_k in a]   # Dirichlet marginals are Beta
    if row.event == "categorical":
        return [st.rv_discrete(values=(np.arange(K), _probs(params)))]
    return [row.scipy(**row.moments)]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_sampler_matches_moments_and_cdf(row, rng):
    # Tolerances are z = 4 Monte Carlo standard errors (about 6e-5 false alarms per check):
    # SE(mean) = sd/sqrt(n), SE(var) = sqrt((mu4 - var^2)/n), SE(cdf at q) = sqrt(F(1-F)/n).
    n, z = 200_000, 4.0
    size = (n, K) if row.event == "simplex" else (n,)
    draws = lookup(row.name).sample(rng, size, **row.moments)
    assert draws.shape == size
    columns = draws.T if row.event == "simplex" else draws[None]
    for col, dist in zip(columns, _marginals(row, row.moments), strict=True):
        q = dist.ppf([0.1, 0.5, 0.9])
        f = dist.cdf(q)
        assert np.all(np.abs(np.mean(col[:, None] <= q, axis=0) - f)
                      <= z * np.sqrt(f * (1 - f) / n) + 1e-12)
        if row.name in ("Cauchy", "HalfCauchy"):
            continue        # no mean or variance: the quantile check above is the test
        mean, var, kurt = (float(m) for m in dist.stats(moments="mvk"))
        assert abs(col.mean() - mean) <= z * np.sqrt(var / n)
        mu4 = (kurt + 3.0) * var ** 2
        assert abs(col.var() - var) <= z * np.sqrt((mu4 - var ** 2) / n)


@pytest.mark.parametrize("case, batch", [("vector", (5, 3)), ("draws", (4, 3))])
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_sampler_broadcasts_params_to_size(row, case, batch, rng):
    cls = lookup(row.name)
    # run-time arrays may hold int parameters (Binomial's n) as floats
    params = {k: np.asarray(v, dtype=float) for k, v in _make_params(row, rng, case).items()}
    size = batch + (K,) if row.event == "simplex" else batch
    draws = cls.sample(rng, size, **params)
    assert draws.shape == size
    assert np.all(cls.support_of(params).check(draws))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_log_density_gradient_matches_central_difference(row, rng):
    # A seeded central difference (autograd's check_grads draws from numpy's global RNG).
    # Truncation error ~ h^2, rounding ~ 1e-16/h: both far below the 1e-6 tolerance.
    cls = lookup(row.name)
    params = _make_params(row, rng, "vector")
    x = _make_value(row, rng, params, CASES["vector"][2])
    args = dict(params, x=x)
    names = [p for p in params if p not in cls.int_params] + (["x"] if row.grad_x else [])
    for name in names:
        def f(v, name=name):
            return anp.sum(cls.log_density(**dict(args, **{name: v})))
        v0 = np.asarray(args[name], dtype=float)
        direction = rng.normal(size=v0.shape)
        h = 1e-6
        numeric = (f(v0 + h * direction) - f(v0 - h * direction)) / (2 * h)
        exact = np.sum(grad(f)(v0) * direction)
        assert abs(numeric - exact) <= 1e-6 * (1 + abs(exact)), name


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_gradient_of_a_broadcast_parameter_has_its_shape(row, rng):
    # A scalar parameter against a vector of data (observe y ~ Bernoulli(p)): the gradient
    # must be summed back to the parameter's shape (autograd's `where` does not do it).
    cls = lookup(row.name)
    params = _make_params(row, rng, "scalar")
    x = _make_value(row, rng, params, CASES["scalar"][2])
    for name in [p for p in params if p not in cls.int_params]:
        def f(v, name=name):
            return anp.sum(cls.log_density(x, **dict(params, **{name: v})))
        value = np.asarray(params[name], dtype=float)
        assert np.shape(grad(f)(value)) == value.shape, name


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_is_discrete_matches_support_kind(name):
    discrete = {"Bernoulli", "Binomial", "BetaBinomial", "Poisson", "NegativeBinomial",
                "Categorical"}
    assert lookup(name).is_discrete() == (name in discrete)


class _Expr:
    """Stands in for an IR expression at check time: only ``shape`` is read."""

    def __init__(self, shape):
        self.shape = shape


@pytest.mark.parametrize("p", [np.full((1, 3, 5), 0.2), _Expr(("N", 5)), _Expr((5,))],
                         ids=["array", "expr_2d", "expr_1d"])
@pytest.mark.parametrize("key", ["p", "logits"])
def test_categorical_support_from_last_axis(p, key):
    assert lookup("Categorical").support_of({key: p}) == c.IntegerInterval(0, 4)


def test_categorical_support_with_unknown_size_has_no_upper_bound():
    support = lookup("Categorical").support_of({"p": _Expr(("N", "K"))})
    assert support.discrete and support.upper is None


@pytest.mark.parametrize("name", ["Binomial", "BetaBinomial"])
def test_count_support_is_zero_to_n(name):
    n = np.array([[3, 5]])
    support = lookup(name).support_of({"n": n, "p": 0.5, "a": 1.0, "b": 1.0})
    assert support.check(np.array([[3, 6]])).tolist() == [[True, False]]


def test_uniform_support_is_its_interval():
    assert lookup("Uniform").support_of({"lower": -1.0, "upper": 2.0}) == c.Interval(-1.0, 2.0)


def test_discrete_log_density_is_finite_at_boundary_probabilities():
    # p = 0 or 1 is a valid parameter: 0 * log(0) counts as 0, not nan
    lp = lookup("Bernoulli").log_density(np.array([0, 1]), p=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(lp, [0.0, 0.0])
    lp = lookup("Binomial").log_density(np.array([0, 4]), n=4, p=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(lp, [0.0, 0.0])


def test_logit_forms_are_stable_for_extreme_logits():
    logit = np.array([-800.0, 800.0])
    lp = lookup("Bernoulli").log_density(np.array([0, 1]), logit=logit)
    np.testing.assert_allclose(lp, [0.0, 0.0], atol=1e-300)
    lp = lookup("Categorical").log_density(np.array(0), logits=np.array([800.0, -800.0]))
    assert lp == 0.0
