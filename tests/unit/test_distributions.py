"""Every registered distribution against scipy.stats: log densities, samplers, gradients.

One row per distribution and signature in ``ROWS``; a test fails if a registered distribution
or one of its signatures has no row.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from autograd import grad, jacobian

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


def spd(rng, shape):
    """Symmetric positive definite K x K matrices of batch ``shape``."""
    a = rng.normal(0.0, 1.0, tuple(shape) + (K, K))
    return a @ np.swapaxes(a, -1, -2) + K * np.eye(K)


def tril(rng, shape):
    return np.linalg.cholesky(spd(rng, shape))


def ordered_vec(rng, shape):
    # spacings of at least 0.5 keep every category's probability well away from rounding
    steps = rng.uniform(0.5, 2.0, tuple(shape) + (K,))
    return rng.normal(-3.0, 1.0, tuple(shape) + (1,)) + np.cumsum(steps, axis=-1)


def low_int(rng, shape):
    return rng.integers(-5, 1, shape)


def high_int(rng, shape):
    return rng.integers(1, 6, shape)


def ar_phi(rng, shape):
    return rng.uniform(-0.9, 0.9, shape)


class _ZeroInflated:
    """scipy.stats-like reference for a zero-inflated count: 0 with probability zi, else a
    draw from ``base`` (a frozen scipy distribution)."""

    def __init__(self, base, zi):
        self.base, self.zi = base, np.asarray(zi, dtype=float)

    def logpmf(self, x):
        return np.log(self.zi * (x == 0) + (1 - self.zi) * self.base.pmf(x))

    def rvs(self, size, random_state):
        keep = random_state.random(size) >= self.zi
        return np.where(keep, self.base.rvs(size=size, random_state=random_state), 0)

    def cdf(self, q):
        return self.zi + (1 - self.zi) * self.base.cdf(q)

    def ppf(self, p):
        p = np.asarray(p)
        inner = np.clip((p - self.zi) / (1 - self.zi), 0.0, 1.0)
        return np.where(p <= self.cdf(0), 0, self.base.ppf(inner))

    def stats(self, moments):
        # raw moments of the mixture are (1 - zi) times the base's; then central ones
        m1, m2, m3, m4 = ((1 - self.zi) * self.base.moment(r) for r in (1, 2, 3, 4))
        var = m2 - m1 ** 2
        mu4 = m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4
        return m1, var, mu4 / var ** 2 - 3.0


def _nb(mu, phi):
    # NegativeBinomial(mu, phi) is scipy's nbinom with n = phi, p = phi / (mu + phi)
    return st.nbinom(phi, phi / (mu + phi))


@dataclass
class Event:
    """How to test a row whose reference is computed one event at a time.

    shape: the value's event shape. value(rng, params, batch): valid values [*batch, *shape]
    under every parameter draw. logpdf(x, **params): the reference log density of ONE event.
    columns(draws [n, *shape], **params): (column [n], scipy distribution) pairs with exact
    marginal laws, including sums or differences that depend on the joint law.
    """
    shape: tuple
    value: Callable
    logpdf: Callable
    columns: Callable


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
    mv: "Event | None" = None             # multivariate rows: reference per event
    cdf: bool = False                     # offers log_cdf / log_ccdf (against scipy)

    @property
    def id(self):
        return f"{self.name}({','.join(self.params)})"


# ----- references for the multivariate rows (one event at a time) ----------------------------

def _mvn_cov(cov=None, scale_tril=None):
    return cov if cov is not None else scale_tril @ scale_tril.T


def _mvn_columns(draws, mu, cov=None, scale_tril=None):
    cov = _mvn_cov(cov, scale_tril)
    cols = [(draws[:, k], st.norm(mu[k], np.sqrt(cov[k, k]))) for k in range(K)]
    # a sum of two components depends on their covariance
    sd01 = np.sqrt(cov[0, 0] + cov[1, 1] + 2 * cov[0, 1])
    return cols + [(draws[:, 0] + draws[:, 1], st.norm(mu[0] + mu[1], sd01))]


def _mvn_event(form):
    return Event(
        shape=(K,),
        value=lambda rng, params, batch: rng.normal(0.0, 2.0, tuple(batch) + (K,)),
        logpdf=lambda x, mu, **m: st.multivariate_normal(mu, _mvn_cov(**m)).logpdf(x),
        columns=_mvn_columns)


KL = 3  # size of the LKJ rows' correlation matrices


def _lkj_log_c(eta, k):
    """log c_K, the normalizer of det(Omega)^(eta - 1) over correlation matrices:
    Lewandowski, Kurowicka and Joe (2009), equation (16)."""
    j = np.arange(1, k)
    b = eta + (k - j - 1) / 2.0
    return (np.sum((2 * eta - 2 + k - j) * (k - j)) * np.log(2.0)
            + np.sum((k - j) * sp.betaln(b, b)))


def _l_from_lower(v, k):
    """autograd: the factor whose strict lower triangle is v (row-major) and rows unit length."""
    rows, start = [], 0
    for i in range(k):
        below = v[start:start + i]
        start += i
        diag = anp.sqrt(1.0 - anp.sum(below * below))
        rows.append(anp.concatenate([below, anp.reshape(diag, (1,)), anp.zeros(k - i - 1)]))
    return anp.stack(rows)


def _lkj_logpdf(x, eta):
    """The LKJ density of Omega = L L^T times |d Omega_lower / d L_lower| (autograd): the
    density of L's free elements, derived independently of the implementation's CPC form."""
    k = x.shape[-1]
    rows, cols = np.tril_indices(k, -1)

    def omega_lower(v):
        factor = _l_from_lower(v, k)
        return (factor @ factor.T)[rows, cols]
    log_jac = np.linalg.slogdet(jacobian(omega_lower)(x[rows, cols]))[1]
    return (eta - 1) * np.linalg.slogdet(x @ x.T)[1] - _lkj_log_c(eta, k) + log_jac


def _lkj_value(rng, params, batch):
    from ppl.bijectors import CorrCholeskyBijector
    u = rng.normal(0.0, 1.0, tuple(batch) + (KL * (KL - 1) // 2,))
    return CorrCholeskyBijector().forward(u)


def _lkj_columns(draws, eta):
    # every off-diagonal correlation is 2 Beta(b, b) - 1 with b = eta - 1 + K/2 (LKJ 2009)
    omega = draws @ np.swapaxes(draws, -1, -2)
    b = eta - 1 + KL / 2
    return [(omega[:, i, j], st.beta(b, b, loc=-1, scale=2))
            for i, j in zip(*np.tril_indices(KL, -1))]


def _multinomial_columns(draws, n, p):
    cols = [(draws[:, k], st.binom(n, p[k])) for k in range(K)]
    return cols + [(draws[:, 0] + draws[:, 1], st.binom(n, p[0] + p[1]))]


def _multinomial_value(rng, params, batch):
    n = np.broadcast_to(params["n"], tuple(batch))
    return rng.multinomial(n, np.full(K, 1.0 / K))


def _ordered_logistic_probs(eta, cutpoints):
    """P(y = k), k = 0..K, straight from the definition: P(y > k) = sigmoid(eta - c_k)."""
    above = np.concatenate([[1.0], sp.expit(eta - cutpoints), [0.0]])
    return above[:-1] - above[1:]


def _rw_cov(sigma, init):
    t = np.arange(K)
    return init ** 2 + sigma ** 2 * np.minimum.outer(t, t)


def _rw_columns(draws, sigma, init):
    cols = [(draws[:, t], st.norm(0.0, np.sqrt(init ** 2 + t * sigma ** 2))) for t in range(K)]
    # every increment is Normal(0, sigma) (the joint law, not only the marginals)
    return cols + [(draws[:, t] - draws[:, t - 1], st.norm(0.0, sigma)) for t in range(1, K)]


def _ar1_cov(phi, sigma):
    t = np.arange(K)
    return sigma ** 2 / (1 - phi ** 2) * phi ** np.abs(np.subtract.outer(t, t))


def _ar1_columns(draws, mu, phi, sigma):
    sd = sigma / np.sqrt(1 - phi ** 2)
    cols = [(draws[:, t], st.norm(mu, sd)) for t in range(K)]
    # every innovation x[t] - phi x[t-1] is Normal(mu (1 - phi), sigma)
    return cols + [(draws[:, t] - phi * draws[:, t - 1], st.norm(mu * (1 - phi), sigma))
                   for t in range(1, K)]


def _real_series(rng, params, batch):
    return rng.normal(0.0, 2.0, tuple(batch) + (K,))


EVENTS = {
    "MvNormal": _mvn_event("cov"),
    "LKJCholesky": Event((KL, KL), _lkj_value, _lkj_logpdf, _lkj_columns),
    "Multinomial": Event(
        (K,), _multinomial_value,
        lambda x, n, p: st.multinomial(int(n), p).logpmf(x), _multinomial_columns),
    "OrderedLogistic": Event(
        (), lambda rng, params, batch: rng.integers(0, K + 1, tuple(batch)),
        lambda x, eta, cutpoints: np.log(_ordered_logistic_probs(eta, cutpoints)[int(x)]),
        lambda draws, eta, cutpoints: [(draws, st.rv_discrete(
            values=(np.arange(K + 1), _ordered_logistic_probs(eta, cutpoints))))]),
    "RandomWalk": Event(
        (K,), _real_series,
        lambda x, sigma, init: st.multivariate_normal(np.zeros(K), _rw_cov(sigma, init)).logpdf(x),
        _rw_columns),
    "AR1": Event(
        (K,), _real_series,
        lambda x, mu, phi, sigma: st.multivariate_normal(
            np.full(K, mu), _ar1_cov(phi, sigma)).logpdf(x),
        _ar1_columns),
}


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
    # language version 2
    Row("Weibull", {"shape": positive, "scale": positive},
        lambda shape, scale: st.weibull_min(shape, scale=scale),
        {"shape": 1.8, "scale": 2.0}, cdf=True),
    Row("Gumbel", {"mu": real, "beta": positive}, lambda mu, beta: st.gumbel_r(mu, beta),
        {"mu": 0.5, "beta": 1.3}, cdf=True),
    Row("Logistic", {"mu": real, "s": positive}, lambda mu, s: st.logistic(mu, s),
        {"mu": -1.0, "s": 0.8}, cdf=True),
    Row("ZeroInflatedPoisson", {"rate": positive, "zi": prob},
        lambda rate, zi: _ZeroInflated(st.poisson(rate), zi), {"rate": 3.0, "zi": 0.3},
        grad_x=False),
    Row("ZeroInflatedNegativeBinomial", {"mu": positive, "phi": positive, "zi": prob},
        lambda mu, phi, zi: _ZeroInflated(_nb(mu, phi), zi),
        {"mu": 4.0, "phi": 2.0, "zi": 0.25}, grad_x=False),
    Row("DiscreteUniform", {"lower": low_int, "upper": high_int},
        lambda lower, upper: st.randint(lower, upper + 1), {"lower": -2, "upper": 4},
        support_params=("lower", "upper"), grad_x=False),
    Row("OrderedLogistic", {"eta": real, "cutpoints": ordered_vec}, None,
        {"eta": 0.3, "cutpoints": np.array([-2.0, -0.5, 1.0, 2.5])},
        mv=EVENTS["OrderedLogistic"], grad_x=False),
    Row("MvNormal", {"mu": real_vec, "cov": spd}, None,
        {"mu": np.array([1.0, -1.0, 0.5, 2.0]), "cov": spd(np.random.default_rng(1), ())},
        mv=EVENTS["MvNormal"]),
    Row("MvNormal", {"mu": real_vec, "scale_tril": tril}, None,
        {"mu": np.array([0.0, 2.0, -1.0, 1.0]),
         "scale_tril": tril(np.random.default_rng(2), ())}, mv=EVENTS["MvNormal"]),
    Row("LKJCholesky", {"eta": positive}, None, {"eta": 2.0}, mv=EVENTS["LKJCholesky"]),
    Row("Multinomial", {"n": count, "p": simplex}, None,
        {"n": 9, "p": np.array([0.1, 0.2, 0.3, 0.4])}, support_params=("n",),
        mv=EVENTS["Multinomial"], grad_x=False),
    Row("RandomWalk", {"sigma": positive, "init": positive}, None,
        {"sigma": 0.7, "init": 2.0}, mv=EVENTS["RandomWalk"]),
    Row("AR1", {"mu": real, "phi": ar_phi, "sigma": positive}, None,
        {"mu": 1.0, "phi": 0.6, "sigma": 0.5}, mv=EVENTS["AR1"]),
]
# rows whose distribution offers log_cdf / log_ccdf
for _row in ROWS:
    _row.cdf = _row.cdf or _row.name in {"Normal", "StudentT", "LogNormal", "Exponential",
                                         "Gamma", "Poisson"}
SEPARATELY_TESTED = {"Mixture"}   # takes a distribution as a parameter: tests at the end


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
    event_dims = lookup(row.name).param_event_dims
    return np.broadcast_shapes(*[np.shape(v)[:np.ndim(v) - event_dims.get(n, 0)]
                                 for n, v in params.items()])


def _make_value(row, rng, params, x_shape):
    """A valid value of batch shape ``x_shape`` (broadcastable against the params)."""
    if row.mv is not None:
        return row.mv.value(rng, params, x_shape)
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


def _event_loop(row, x, params):
    """The row's per-event reference over the broadcast batch of ``x`` and the params."""
    event_dims = lookup(row.name).param_event_dims
    ev = len(row.mv.shape)
    batch = np.broadcast_shapes(np.shape(x)[:np.ndim(x) - ev], _batch_shape(row, params))
    xb = np.broadcast_to(x, batch + row.mv.shape)
    pb = {n: np.broadcast_to(v, batch + np.shape(v)[np.ndim(v) - event_dims.get(n, 0):])
          for n, v in params.items()}
    out = np.empty(batch)
    for i in np.ndindex(batch):
        out[i] = row.mv.logpdf(xb[i], **{n: v[i] for n, v in pb.items()})
    return out


def _reference(row, x, params):
    """scipy.stats log density, looping over the batch for the multivariate rows."""
    if row.mv is not None:
        return _event_loop(row, x, params)
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
    registered = {(name, sig) for name, cls in DISTRIBUTIONS.items() for sig in cls.signatures
                  if name not in SEPARATELY_TESTED}
    assert registered == {(row.name, tuple(row.params)) for row in ROWS}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_constraints_cover_every_parameter(name):
    cls = lookup(name)
    names = {p for sig in cls.signatures for p in sig}
    assert names - cls.dist_params == set(cls.constraints)


UNIVARIATE_CONTINUOUS = [row for row in ROWS
                         if row.grad_x and row.event is None and row.mv is None]


@pytest.mark.parametrize("row", [r for r in UNIVARIATE_CONTINUOUS if r.name != "Uniform"],
                         ids=lambda r: r.id)
def test_parameter_constraints_refuse_what_scipy_refuses(row):
    # A constraint is all that stands between a bad parameter and a silently wrong posterior:
    # Gamma's formula at shape -1.5 is finite (gammaln of a negative non-integer is), and the
    # compiler makes it -inf only if the constraint refuses it. scipy's logpdf at the valid
    # row's median is finite exactly where the parameters are valid (nan, or -inf for a rate
    # of 0 as scale inf). Uniform's ends are checked together, by its support.
    cls = lookup(row.name)
    x = row.scipy(**row.moments).median()
    for name in row.params:
        for value in np.array([-1.5, 0.0, 0.7]):
            with np.errstate(all="ignore"):
                valid = np.isfinite(row.scipy(**dict(row.moments, **{name: value})).logpdf(x))
            assert bool(cls.constraints[name].check(value)) == valid, (name, value)


@pytest.mark.parametrize("row", UNIVARIATE_CONTINUOUS, ids=lambda r: r.id)
def test_support_is_scipys(row):
    # data are validated against the support, and a density does not check its value:
    # HalfNormal's and Exponential's formulas are finite at -1, so a support too wide counts
    # a negative observation silently (Beta's at 1.5 and Weibull's at -0.5 are NaN instead of
    # a located error). The ends themselves (open or closed) are left to each bound's tests
    lower, upper = row.scipy(**row.moments).support()
    points = np.array([-40.0, -2.5, -1e-3, 1e-3, 0.5, 0.999, 1.5, 40.0])
    np.testing.assert_array_equal(lookup(row.name).support_of(row.moments).check(points),
                                  (lower < points) & (points < upper))


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
    if row.mv is not None:
        raise AssertionError("multivariate rows give their own columns")
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
    if row.mv is not None:
        size = (n,) + row.mv.shape
    draws = lookup(row.name).sample(rng, size, **row.moments)
    assert draws.shape == size
    if row.mv is not None:
        pairs = row.mv.columns(draws, **row.moments)
    else:
        columns = draws.T if row.event == "simplex" else draws[None]
        pairs = list(zip(columns, _marginals(row, row.moments), strict=True))
    for col, dist in pairs:
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
    if row.mv is not None:
        size = batch + row.mv.shape
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
    # must be summed back to the parameter's shape (autograd's `where` does not do it), for
    # the CDFs too (a scalar shape against a vector of censoring bounds: incomplete.py's
    # primitives sum their parameter gradients back themselves).
    cls = lookup(row.name)
    params = _make_params(row, rng, "scalar")
    x = _make_value(row, rng, params, CASES["scalar"][2])
    methods = [cls.log_density] + ([cls.log_cdf, cls.log_ccdf] if row.cdf else [])
    names = [p for p in params if p not in cls.int_params]
    for method, name in itertools.product(methods, names):
        def f(v, name=name, method=method):
            return anp.sum(method(x, **dict(params, **{name: v})))
        value = np.asarray(params[name], dtype=float)
        assert np.shape(grad(f)(value)) == value.shape, (method.__name__, name)


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


def test_uniform_density_is_closed_at_both_ends():
    # scipy's support is [loc, loc + scale]: a value at either end (an observation of 0 under
    # Uniform(0, 1), a saturated bijector's draw) has the density 1 / width, not 0
    x = np.array([-1.0, 2.0, -1.0 - 1e-12, 2.0 + 1e-12])
    np.testing.assert_allclose(lookup("Uniform").log_density(x, -1.0, 2.0),
                               st.uniform.logpdf(x, loc=-1.0, scale=3.0), rtol=1e-14)


def test_discrete_log_density_is_finite_at_boundary_probabilities():
    # p = 0 or 1 is a valid parameter: 0 * log(0) counts as 0, not nan
    lp = lookup("Bernoulli").log_density(np.array([0, 1]), p=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(lp, [0.0, 0.0])
    lp = lookup("Binomial").log_density(np.array([0, 4]), n=4, p=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(lp, [0.0, 0.0])


def test_a_zero_of_the_value_under_a_negative_coefficient_is_the_poles_plus_inf():
    # x log(0) is -inf for x > 0 but +inf for x < 0: a Dirichlet with alpha < 1 has an
    # infinite density at a face of the simplex (alpha - 1 = -0.5 times log 0), its limit
    lp = lookup("Dirichlet").log_density(np.array([[0.0, 1.0], [1.0, 0.0]]),
                                         np.array([0.5, 2.0]))
    np.testing.assert_array_equal(lp, [np.inf, -np.inf])


def test_logit_forms_are_stable_for_extreme_logits():
    logit = np.array([-800.0, 800.0])
    lp = lookup("Bernoulli").log_density(np.array([0, 1]), logit=logit)
    np.testing.assert_allclose(lp, [0.0, 0.0], atol=1e-300)
    lp = lookup("Categorical").log_density(np.array(0), logits=np.array([800.0, -800.0]))
    assert lp == 0.0


def test_categorical_with_two_infinite_logits_in_a_row_is_undefined():
    # one +inf logit makes its category sure (the softmax's limit); two leave their
    # probabilities undefined (inf / inf): nan, neither of them sure; a finite logit beside
    # them has probability 0 whatever the split
    logits = np.array([np.inf, np.inf, 0.0])
    with np.errstate(invalid="ignore"):
        lp = lookup("Categorical").log_density(np.array([0, 1, 2]), logits=logits)
    assert np.isnan(lp[:2]).all() and lp[2] == -np.inf


# ----- log_cdf / log_ccdf ---------------------------------------------------------------------

CDF_ROWS = [row for row in ROWS if row.cdf]


def test_cdf_rows_are_the_distributions_that_offer_cdfs():
    offering = {name for name, cls in DISTRIBUTIONS.items()
                if cls.log_cdf is not None and cls.log_ccdf is not None}
    assert offering == {row.name for row in CDF_ROWS}
    assert offering >= {"Normal", "StudentT", "Logistic", "LogNormal", "Exponential", "Weibull",
                        "Gamma", "Poisson"}


@pytest.mark.parametrize("case", ["scalar", "vector", "draws"])
@pytest.mark.parametrize("row", CDF_ROWS, ids=lambda r: r.id)
def test_log_cdf_and_ccdf_match_scipy(row, case, rng):
    # scipy's logcdf and logsf: log P(X <= x) and log P(X > x), to 1e-8 relative
    cls = lookup(row.name)
    params = _make_params(row, rng, case)
    x = _make_value(row, rng, params, CASES[case][2])
    dist = row.scipy(**params)
    np.testing.assert_allclose(cls.log_cdf(x, **params), dist.logcdf(x), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(cls.log_ccdf(x, **params), dist.logsf(x), rtol=1e-8, atol=1e-12)


def _tail_points(dist):
    """Values far in both tails, down to a tail probability of 1e-20. The upper ones are
    isf's: ppf(1 - 1e-12) puts exp(-t) on a double next to 1 exactly (1 - p is exact), where
    log(-expm1(-t)) happens to be exact too; at other points it keeps ~1e-16 / q relative
    (Exponential's lcdf as log(-expm1) at every x had passed) and is 0 below q = 1e-16."""
    return np.concatenate([dist.ppf([1e-20, 1e-12, 1e-6]), dist.isf([1e-6, 1e-12, 1e-20])])


@pytest.mark.parametrize("row", [r for r in CDF_ROWS if r.grad_x], ids=lambda r: r.id)
def test_log_cdf_is_accurate_in_both_tails(row):
    # far tails, where 1 - cdf would cancel: still scipy's value to 1e-8
    cls = lookup(row.name)
    dist = row.scipy(**row.moments)
    x = _tail_points(dist)
    np.testing.assert_allclose(cls.log_cdf(x, **row.moments), dist.logcdf(x), rtol=1e-8)
    np.testing.assert_allclose(cls.log_ccdf(x, **row.moments), dist.logsf(x), rtol=1e-8)


@pytest.mark.parametrize("which", ["log_cdf", "log_ccdf"])
@pytest.mark.parametrize("row", [r for r in CDF_ROWS if r.grad_x], ids=lambda r: r.id)
def test_log_cdf_gradient_is_exact_in_both_tails(row, which):
    # A truncation or censoring bound far in a tail. d/dx log F = f / F and d/dx log(1 - F)
    # = -f / (1 - F), from scipy's logpdf, logcdf and logsf (accurate there, as the test
    # above shows), to 1e-8; the parameters' gradients finite. Each CDF picks a branch with
    # `where`, and the branch not taken must see arguments where it is finite: one that is
    # log1p(-1) there (StudentT's upper branch at t = -1446, the incomplete gamma's complement
    # at P = 1e-20) gives 0 * inf = NaN in the gradient.
    cls, dist = lookup(row.name), row.scipy(**row.moments)
    fn = getattr(cls, which)
    x = _tail_points(dist)
    tail, sign = (dist.logcdf(x), 1.0) if which == "log_cdf" else (dist.logsf(x), -1.0)
    np.testing.assert_allclose(grad(lambda v: anp.sum(fn(v, **row.moments)))(x),
                               sign * np.exp(dist.logpdf(x) - tail), rtol=1e-8)
    for name, value in row.moments.items():
        def f(v, name=name):
            return anp.sum(fn(x, **dict(row.moments, **{name: v})))
        assert np.isfinite(grad(f)(float(value))), name


@pytest.mark.parametrize("which", ["log_cdf", "log_ccdf"])
@pytest.mark.parametrize("row", CDF_ROWS, ids=lambda r: r.id)
def test_log_cdf_gradient_matches_central_difference(row, which, rng):
    # as test_log_density_gradient_matches_central_difference: seeded direction, h = 1e-6
    cls = lookup(row.name)
    fn = getattr(cls, which)
    params = _make_params(row, rng, "vector")
    x = _make_value(row, rng, params, CASES["vector"][2])
    args = dict(params, x=x)
    names = [p for p in params if p not in cls.int_params] + (["x"] if row.grad_x else [])
    for name in names:
        def f(v, name=name):
            return anp.sum(fn(**dict(args, **{name: v})))
        v0 = np.asarray(args[name], dtype=float)
        direction = rng.normal(size=v0.shape)
        h = 1e-6
        numeric = (f(v0 + h * direction) - f(v0 - h * direction)) / (2 * h)
        exact = np.sum(grad(f)(v0) * direction)
        assert abs(numeric - exact) <= 1e-6 * (1 + abs(exact)), name


# ----- series rows at lengths 0 and 1 ---------------------------------------------------------

SERIES_ROWS = [row for row in ROWS if row.name in ("RandomWalk", "AR1")]
SERIES_FIRST = {   # the law of x[0] alone: Normal(mean, sd), read off the exact joint
    "RandomWalk": lambda sigma, init: st.norm(0.0, np.sqrt(_rw_cov(sigma, init)[0, 0])),
    "AR1": lambda mu, phi, sigma: st.norm(mu, np.sqrt(_ar1_cov(phi, sigma)[0, 0])),
}


@pytest.mark.parametrize("row", SERIES_ROWS, ids=lambda r: r.id)
def test_series_of_length_zero_and_one(row, rng):
    # T = 0 from the data is allowed (docs/language.md, sizes of 0): an empty series has
    # density 1 and draws of shape [n, 0]. The first element was read as x[..., 0], an
    # IndexError that reached the user as an internal error (observe, prior draws, RandomWalk
    # latents). T = 1: the first element's law alone.
    cls = lookup(row.name)
    np.testing.assert_array_equal(cls.log_density(np.zeros((3, 0)), **row.moments), np.zeros(3))
    assert cls.sample(rng, (4, 0), **row.moments).shape == (4, 0)
    x = rng.normal(0.0, 2.0, (3, 1))
    np.testing.assert_allclose(cls.log_density(x, **row.moments),
                               SERIES_FIRST[row.name](**row.moments).logpdf(x[:, 0]), rtol=1e-12)
    assert cls.sample(rng, (4, 1), **row.moments).shape == (4, 1)


# ----- Mixture (its component is a distribution, so it has no row above) ----------------------

def _mixture_reference(x, w, comp, params):
    """log sum_k w_k f_k(x) with scipy densities, straight from the definition."""
    x = np.asarray(x)[..., None]
    dens = comp(**params).pdf(x) if hasattr(comp(**params), "pdf") else comp(**params).pmf(x)
    return np.log(np.sum(w * dens, axis=-1))


@pytest.mark.parametrize("case", ["scalar", "draws"])
def test_mixture_of_normals_matches_the_definition(case, rng):
    from ppl.distributions.continuous import Normal
    batch, x_shape = {"scalar": ((), (5,)), "draws": ((4, 1), (1, 3))}[case]
    w = rng.dirichlet(np.ones(K), size=batch)
    mu, sigma = real(rng, batch + (K,)), positive(rng, batch + (K,))
    x = rng.normal(0.0, 3.0, x_shape)
    got = lookup("Mixture").log_density(x, w=w, component=(Normal, {"mu": mu, "sigma": sigma}))
    want = _mixture_reference(x, w, st.norm, {"loc": mu, "scale": sigma})
    assert got.shape == want.shape == np.broadcast_shapes(x_shape, batch)
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_mixture_of_poissons_matches_the_definition(rng):
    from ppl.distributions.discrete import Poisson
    w, rate = rng.dirichlet(np.ones(K)), positive(rng, (K,)) * 3
    x = rng.integers(0, 10, (6,))
    got = lookup("Mixture").log_density(x, w=w, component=(Poisson, {"rate": rate}))
    np.testing.assert_allclose(got, _mixture_reference(x, w, st.poisson, {"mu": rate}),
                               rtol=1e-8)


def test_mixture_is_stable_when_every_component_underflows():
    from ppl.distributions.continuous import Normal
    w = np.array([0.5, 0.5])
    lp = lookup("Mixture").log_density(np.array(100.0), w=w, component=(
        Normal, {"mu": np.array([0.0, 1.0]), "sigma": np.array([1.0, 1.0])}))
    # log(0.5 e^{-5000} + 0.5 e^{-4900.5}) computed by hand around the larger term
    want = np.log(0.5) - 0.5 * 99.0 ** 2 - 0.5 * np.log(2 * np.pi) + np.log1p(np.exp(-99.5))
    np.testing.assert_allclose(lp, want, rtol=1e-12)


def test_mixture_is_minus_inf_where_a_component_parameter_leaves_its_constraint():
    # as the log joint makes any other distribution's term (issue 9): Poisson's formula at rate
    # -0.5 and y = 0 is +0.5, a number, not a density; Normal's at sigma -1 was NaN
    from ppl.distributions.continuous import Normal
    from ppl.distributions.discrete import Poisson
    w, x = np.array([0.5, 0.5]), np.array([0.0, 1.0])
    rate = np.array([[-0.5, 2.0], [0.5, 2.0]])                   # draws [2, 1, K]
    got = lookup("Mixture").log_density(x, w=w, component=(Poisson, {"rate": rate[:, None]}))
    assert np.all(got[0] == -np.inf)
    np.testing.assert_allclose(got[1], _mixture_reference(x, w, st.poisson, {"mu": rate[1]}),
                               rtol=1e-12)
    with np.errstate(invalid="ignore"):
        got = lookup("Mixture").log_density(x, w=w, component=(
            Normal, {"mu": np.array([0.0, 1.0]), "sigma": np.array([[-1.0], [1.0]])}))
    assert got[0] == -np.inf and np.isfinite(got[1])


def test_mixture_gradient_matches_central_difference(rng):
    from ppl.distributions.continuous import Normal
    w = rng.dirichlet(np.ones(K), size=(3,))
    params = {"mu": real(rng, (3, K)), "sigma": positive(rng, (3, K))}
    x = rng.normal(0.0, 2.0, (3,))

    def total(w, mu, sigma, x):
        return anp.sum(lookup("Mixture").log_density(
            x, w=w, component=(Normal, {"mu": mu, "sigma": sigma})))
    args = [w, params["mu"], params["sigma"], x]
    for i in range(4):
        def f(v, i=i):
            return total(*(args[:i] + [v] + args[i + 1:]))
        direction = rng.normal(size=np.shape(args[i]))
        h = 1e-6
        numeric = (f(args[i] + h * direction) - f(args[i] - h * direction)) / (2 * h)
        exact = np.sum(grad(f)(args[i]) * direction)
        assert abs(numeric - exact) <= 1e-6 * (1 + abs(exact)), i


def test_mixture_sampler_matches_moments_and_cdf(rng):
    # z = 4 Monte Carlo standard errors, as test_sampler_matches_moments_and_cdf
    from ppl.distributions.continuous import Normal
    n, z = 200_000, 4.0
    w, mu, sigma = np.array([0.2, 0.5, 0.3]), np.array([-2.0, 0.0, 3.0]), np.array([0.5, 1.0, 0.7])
    draws = lookup("Mixture").sample(rng, (n,), w=w,
                                     component=(Normal, {"mu": mu, "sigma": sigma}))
    assert draws.shape == (n,)
    mean = np.sum(w * mu)
    second = np.sum(w * (sigma ** 2 + mu ** 2))
    var = second - mean ** 2
    assert abs(draws.mean() - mean) <= z * np.sqrt(var / n)
    for q in (-2.0, 0.5, 3.0):
        f = np.sum(w * st.norm.cdf(q, mu, sigma))
        assert abs(np.mean(draws <= q) - f) <= z * np.sqrt(f * (1 - f) / n)


def test_mixture_sampler_broadcasts_a_batch_of_weights(rng):
    from ppl.distributions.discrete import Poisson
    w = rng.dirichlet(np.ones(K), size=(4, 1))
    draws = lookup("Mixture").sample(rng, (4, 3), w=w,
                                     component=(Poisson, {"rate": positive(rng, (1, 3, K))}))
    assert draws.shape == (4, 3)
    assert np.all(c.non_negative_integer.check(draws))


def test_mixture_support_is_the_components():
    from ppl.distributions.continuous import Normal
    from ppl.distributions.discrete import Binomial
    mixture = lookup("Mixture")
    assert mixture.support_of({"w": None, "component": (Normal, {})}) == c.real
    n = np.array([5])
    assert mixture.support_of({"w": None, "component": (Binomial, {"n": n, "p": 0.5})}) == \
        Binomial.support_of({"n": n})
    assert mixture.dist_params == {"component"}


# ----- numerical edge cases of the v2 distributions ---------------------------------------------

def test_mvnormal_with_a_matrix_that_is_not_positive_definite_gives_nan_not_an_error(rng):
    # one draw's cov is indefinite: that draw's log density (and gradient) is NaN, the others
    # match scipy; numpy.linalg must not raise for the whole batch
    cov = spd(rng, (3,))
    cov[1] = np.array([[1.0, 2.0], [2.0, 1.0]]).repeat(2, 0).repeat(2, 1)   # eigenvalue < 0
    mu, x = real_vec(rng, (3,)), real_vec(rng, (3,))
    mvn = lookup("MvNormal")
    lp = mvn.log_density(x, mu, cov=cov)
    assert np.isnan(lp[1])
    for s in (0, 2):
        np.testing.assert_allclose(lp[s], st.multivariate_normal(mu[s], cov[s]).logpdf(x[s]),
                                   rtol=1e-8)
    g = grad(lambda m: anp.sum(mvn.log_density(x, m, cov=cov)))(mu)
    assert np.all(np.isfinite(g[[0, 2]]))


def test_ordered_logistic_is_finite_far_beyond_the_cutpoints():
    cut = np.array([-1.0, 0.0, 1.0])
    eta = np.array([-60.0, 60.0, 0.5])
    lp = lookup("OrderedLogistic").log_density(np.array([0, 3, 1]), eta=eta, cutpoints=cut)
    # P(y=0 | eta=-60) and P(y=3 | eta=60) are 1 - e^-59 or so: log p ~ -e^-59, not -inf or nan
    assert np.all(np.isfinite(lp)) and abs(lp[0]) < 1e-20 and abs(lp[1]) < 1e-20
    want = np.log(sp.expit(0.5 + 1.0) - sp.expit(0.5 - 0.0))
    np.testing.assert_allclose(lp[2], want, rtol=1e-12)


def test_lkj_with_eta_one_is_uniform_for_two_by_two():
    # K = 2, eta = 1: the correlation r = L[1,0] is uniform on (-1, 1), density 1/2
    factor = np.array([[1.0, 0.0], [0.6, 0.8]])
    np.testing.assert_allclose(lookup("LKJCholesky").log_density(factor, 1.0), np.log(0.5),
                               rtol=1e-12)


@pytest.mark.parametrize("phi", [1e8, 1e12, 1e15])
def test_negative_binomial_is_accurate_at_a_large_phi(phi):
    # Poisson-like counts drive phi up. The reference is cancellation-free for small x:
    # gammaln(x + phi) - gammaln(phi) - x log(mu + phi) = sum_{j<x} log1p((j - mu) / (mu + phi))
    mu, x = 2.5, np.arange(6)
    want = np.array([np.sum(np.log1p((np.arange(k) - mu) / (mu + phi))) for k in x])
    want += x * np.log(mu) - sp.gammaln(x + 1.0) - phi * np.log1p(mu / phi)
    nb = lookup("NegativeBinomial")
    np.testing.assert_allclose(nb.log_density(x, phi, mu=mu), want, rtol=1e-10)
    np.testing.assert_allclose(nb.log_density(x, phi, log_mu=np.log(mu)), want, rtol=1e-10)


def test_negative_binomial_sampler_at_a_large_phi_is_poisson(rng):
    # phi = 1e20: numpy's negative_binomial(phi, phi / (mu + phi)) has p == 1 and draws only
    # zeros; the draws are Poisson(mu). z = 4 standard errors: SE(mean) = sqrt(mu / n)
    n, mu = 100_000, 3.0
    draws = lookup("NegativeBinomial").sample(rng, (n,), 1e20, mu=mu)
    assert abs(draws.mean() - mu) <= 4.0 * np.sqrt(mu / n)
    zi = lookup("ZeroInflatedNegativeBinomial").sample(rng, (n,), mu, 1e20, 0.5)
    assert abs(zi.mean() - 0.5 * mu) <= 4.0 * np.sqrt((0.5 * mu + 0.25 * mu ** 2) / n)


@pytest.mark.parametrize("nu", [1e10, 1e14, 1e18])
def test_student_t_is_accurate_at_a_large_nu(nu):
    # scipy's t.logpdf takes log poch(nu / 2, 1 / 2), accurate at any nu; a difference of
    # gammalns near 1e17 would leave nothing of the constant (the density tends to Normal's)
    x = np.array([-3.0, 0.0, 1.3, 40.0])
    got = lookup("StudentT").log_density(x, nu, 0.5, 2.0)
    np.testing.assert_allclose(got, st.t.logpdf(x, nu, 0.5, 2.0), rtol=1e-12)


def test_dirichlet_sampler_at_a_small_alpha(rng):
    # alpha = 1e-3: half of plain Gamma(alpha) draws underflow to 0, and a row of zeros was
    # 0/0. The first coordinate is Beta(a_1, a_0 - a_1); z = 4 standard errors of a
    # frequency: sqrt(F (1 - F) / n)
    n, alpha = 50_000, np.array([1e-3, 2e-3, 3e-3])
    draws = lookup("Dirichlet").sample(rng, (n, 3), alpha=alpha)
    assert np.all(np.isfinite(draws)) and np.allclose(draws.sum(axis=-1), 1.0)
    f = st.beta(alpha[0], alpha.sum() - alpha[0]).cdf(0.5)
    assert abs(np.mean(draws[:, 0] <= 0.5) - f) <= 4.0 * np.sqrt(f * (1 - f) / n)


@pytest.mark.parametrize("eta", [1e-3, 0.1])
def test_lkj_sampler_at_a_small_eta(eta, rng):
    # the correlation of a 2 x 2 LKJ(eta) is 2 Beta(eta, eta) - 1, near +-1 at a small eta:
    # rounded to +-1 it gave 0/0 in L. Frequencies within z = 4 standard errors, as above
    n = 50_000
    draws = lookup("LKJCholesky").sample(rng, (n, 2, 2), eta=eta)
    assert np.all(np.isfinite(draws))
    np.testing.assert_allclose(np.sum(draws * draws, axis=-1), 1.0, rtol=1e-12)
    r = st.beta(eta, eta, loc=-1, scale=2)
    for q in (-0.5, 0.0, 0.9):
        f = r.cdf(q)
        assert abs(np.mean(draws[:, 1, 0] <= q) - f) <= 4.0 * np.sqrt(f * (1 - f) / n)
    # 5 x 5 (a diagonal may underflow to 0 at eta = 1e-3: its value is below 1e-308)
    big = lookup("LKJCholesky").sample(rng, (2000, 5, 5), eta=eta)
    assert np.all(np.isfinite(big))
    np.testing.assert_allclose(np.sum(big * big, axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("which", ["log_cdf", "log_ccdf"])
@pytest.mark.parametrize("name, args", [("Gamma", (1.0,)), ("StudentT", (0.0, 1.0))])
def test_cdf_gradient_in_a_shape_below_the_difference_step_is_finite(name, args, which):
    # the shape (nu) derivative is a central difference; with a step of 1e-5 a shape of
    # 1e-6 was stepped below 0, where the CDF is nan. Reference: Richardson's extrapolation
    # of central differences at steps a / 100 and a / 200 (truncation ~(1/100)^4, rounding
    # ~1e-16 / 1e-8), independent of the step the code takes
    method = getattr(lookup(name), which)

    def f(a):                        # at x = 1: Gamma(a, rate 1), StudentT(a, 0, 1)
        return method(1.0, a, *args)

    a = 1e-6
    central = [(f(a + h) - f(a - h)) / (2 * h) for h in (a / 100, a / 200)]
    np.testing.assert_allclose(grad(f)(a), (4 * central[1] - central[0]) / 3, rtol=1e-6)


def test_student_t_lcdf_gradient_at_and_near_its_location():
    # lccdf(StudentT(nu, 0, sigma), 0) is log(1/2) whatever nu and sigma (a half-t's
    # normalizer): gradient 0, was NaN; d lcdf / d mu near x = mu is -pdf / cdf, was -inf
    # within 1e-8 of it and 1% off at 1e-7
    t_cls = lookup("StudentT")
    assert grad(lambda s: t_cls.log_ccdf(0.0, 4.0, 0.0, s))(2.0) == 0.0
    assert grad(lambda nu: t_cls.log_ccdf(0.0, nu, 0.0, 2.0))(4.0) == 0.0
    for t in (0.0, 1e-9, 1e-7, 1e-3):
        got = grad(lambda mu: t_cls.log_cdf(0.0, 4.0, mu, 1.0))(-t)
        np.testing.assert_allclose(got, -st.t.pdf(t, 4) / st.t.cdf(t, 4), rtol=1e-12)


@pytest.mark.parametrize("nu", [1e10, 1e17, 1e20])
def test_student_t_lcdf_is_accurate_at_a_large_nu(nu):
    # nu / (nu + t^2) rounded to 1: the lcdf was log(1/2) everywhere at nu = 1e20
    x, t_cls = np.array([-8.0, -3.0, 0.5, 3.0]), lookup("StudentT")
    np.testing.assert_allclose(t_cls.log_cdf(x, nu, 0.0, 1.0), st.t.logcdf(x, nu), rtol=1e-12)
    np.testing.assert_allclose(t_cls.log_ccdf(x, nu, 0.0, 1.0), st.t.logsf(x, nu), rtol=1e-12)


def test_poisson_cdfs_between_the_integers_are_those_of_the_integer_below():
    # lcdf(Poisson(rate), x) and lccdf take a real x (a truncation or censoring bound, an
    # expression): P(X <= 2.5) is P(X <= 2) and P(X > 2.5) is P(X > 2), as scipy's are
    from ppl.distributions.discrete import Poisson
    x, rate = np.array([0.5, 2.5, 3.999, 7.25]), 3.5
    np.testing.assert_allclose(Poisson.log_cdf(x, rate=rate), st.poisson(rate).logcdf(x),
                               rtol=1e-10)
    np.testing.assert_allclose(Poisson.log_ccdf(x, rate=rate), st.poisson(rate).logsf(x),
                               rtol=1e-10)


def test_gumbel_lccdf_far_below_its_location_has_gradient_zero():
    # A right-censoring bound 710 scales below mu: P(X > x) = 1 - exp(-e^710) is 1 to the last
    # bit, and so is its log 0 with every gradient 0 (scipy's logsf is -0.0 too). exp(-z)
    # overflowed to inf below z = -709.8 and the gradient was inf * 0 = NaN, in x, mu and beta
    gumbel = lookup("Gumbel")
    args = [np.array([-1000.0, -710.0, -700.0]), np.zeros(3), np.ones(3)]    # x, mu, beta
    np.testing.assert_array_equal(gumbel.log_ccdf(*args), st.gumbel_r.logsf(args[0]))
    for i in range(3):
        def f(v, i=i):
            return anp.sum(gumbel.log_ccdf(*args[:i], v, *args[i + 1:]))
        np.testing.assert_array_equal(grad(f)(args[i]), 0.0)


def test_gumbel_lccdf_far_above_its_location_is_minus_z_not_minus_inf():
    # e^-z underflowed to 0 above z = 745 and log(1 - exp(-0)) was -inf (scipy's logsf is too:
    # the reference there is the series -z - e^-z / 2, exact to rounding for z > 30); below,
    # scipy's logsf, across the switch at z = 30; the gradient in x is -1 / beta far above
    gumbel = lookup("Gumbel")
    x = np.array([29.0, 29.999, 30.001, 31.0, 40.0])
    np.testing.assert_allclose(gumbel.log_ccdf(x, 0.0, 1.0), st.gumbel_r.logsf(x), rtol=1e-13)
    far = np.array([745.0, 750.0, 1e4]) * 2.0           # z = x / beta with beta 2
    np.testing.assert_allclose(gumbel.log_ccdf(far, 0.0, 2.0), -far / 2 - 0.5 * np.exp(-far / 2),
                               rtol=1e-15)
    slope = grad(lambda v: anp.sum(gumbel.log_ccdf(v, 0.0, 2.0)))(far)
    np.testing.assert_allclose(slope, -0.5, rtol=1e-15)


# ----- found by the mutation pass over discrete.py, mixture.py and multivariate.py -----------

def test_categorical_gradient_beside_a_zero_probability_is_finite():
    # p = 0 is a valid parameter. Categorical(p) takes the log of the gathered p, so a zero of
    # another category puts no log(0) into the gradient (0 * inf = nan): 1 / p at the chosen
    # category, 0 elsewhere
    p = np.array([0.5, 0.5, 0.0])
    got = grad(lambda p: anp.sum(lookup("Categorical").log_density(np.array([0, 1, 1]), p=p)))(p)
    np.testing.assert_allclose(got, [2.0, 4.0, 0.0], rtol=1e-14)


@pytest.mark.parametrize("name", ["ZeroInflatedPoisson", "ZeroInflatedNegativeBinomial"])
def test_zero_inflated_gradient_at_zi_zero_is_finite(name):
    # zi = 0 is a valid parameter (zi = p * flag with a data flag of 0). Closed form:
    # d/dzi log(zi [x = 0] + (1 - zi) f(x)) at zi = 0 is 1 / f(0) - 1 at x = 0 and -1
    # elsewhere; the rate's (mu's) gradient is the base distribution's. log(zi) at x = 0
    # gave inf times logaddexp's weight 0 = nan (a bug, fixed with this test)
    x, cls = np.array([0, 2, 5]), lookup(name)
    base, args, f0 = {"ZeroInflatedPoisson": (lookup("Poisson"), (1.5,), st.poisson(1.5).pmf(0)),
                      "ZeroInflatedNegativeBinomial": (
                          lookup("NegativeBinomial"), (2.0, 1.5), _nb(2.0, 1.5).pmf(0))}[name]
    got = grad(lambda zi: anp.sum(cls.log_density(x, *args, zi)))(0.0)
    np.testing.assert_allclose(got, 1.0 / f0 - 3.0, rtol=1e-12)
    got = grad(lambda r: anp.sum(cls.log_density(x, r, *args[1:], 0.0)))(args[0])
    if name == "ZeroInflatedPoisson":
        want = grad(lambda r: anp.sum(base.log_density(x, rate=r)))(args[0])
    else:
        want = grad(lambda m: anp.sum(base.log_density(x, args[1], mu=m)))(args[0])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_multinomial_with_a_zero_probability_and_no_counts_in_it_matches_scipy():
    # 0 * log(0) = 0 for the empty category, as scipy's xlogy has it (not nan)
    p, x = np.array([0.3, 0.0, 0.7]), np.array([2.0, 0.0, 3.0])
    np.testing.assert_allclose(lookup("Multinomial").log_density(x, 5, p),
                               st.multinomial(5, p).logpmf(x), rtol=1e-12)


def test_categorical_row_with_two_infinite_logits_stays_undefined_beside_a_sure_row():
    # the sure-row path replaces the +inf of a row with exactly one by a finite stand-in;
    # a row with two of them in the same batch must stay nan, not take a stand-in too
    logits = np.array([[np.inf, 0.0, 1.0], [np.inf, np.inf, 0.0]])
    with np.errstate(invalid="ignore"):
        lp = lookup("Categorical").log_density(np.array([0, 0]), logits=logits)
    assert lp[0] == 0.0 and np.isnan(lp[1])


def test_ordered_logistic_support_is_zero_to_the_number_of_cutpoints():
    # K cutpoints give K + 1 outcomes 0..K; K + 1 must be outside: its one-hot row is empty,
    # so the formula alone gives log 1 = 0 there, a finite density
    support = lookup("OrderedLogistic").support_of({"cutpoints": np.zeros((2, 3))})
    assert support.check(np.array([0, 3, 4])).tolist() == [True, True, False]


def test_ordered_logistic_keeps_precision_between_close_cutpoints():
    # P(y = 1) = sigmoid(eta - c_0) - sigmoid(eta - c_1) = sinh(h / 2) / (2 cosh(a / 2)
    # cosh(b / 2)), a = eta - c_0, b = eta - c_1, h = a - b: free of cancellation, the exact
    # reference (with a and b as rounded, then a - b exact: Sterbenz). log1p(-exp(b - a))
    # would lose about 6 digits at h = 1e-10
    eta, step = 0.3, np.array([1e-10, 1e-6, 1e-3])
    cut = np.stack([np.zeros_like(step), step], axis=-1)
    a, b = eta - cut[:, 0], eta - cut[:, 1]
    h = a - b
    want = np.log(np.sinh(h / 2) / (2 * np.cosh(a / 2) * np.cosh(b / 2)))
    got = lookup("OrderedLogistic").log_density(np.ones(3), eta, cut)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ar1_first_element_is_accurate_near_unit_phi():
    # the stationary variance's 1 - phi^2, against its exact value (fractions): taken as
    # (1 - phi)(1 + phi) it is within 2e-16; as 1 - phi * phi the rounding of phi^2 left
    # 5.5e-10 of it at phi = 1 - 1e-8 (small, but the docstring promises accuracy near 1)
    from fractions import Fraction
    for phi in (1.0 - 1e-8, -(1.0 - 1e-8)):
        sigma, x0 = 0.5, 3.0
        sd = sigma / np.sqrt(float(1 - Fraction(phi) ** 2))
        np.testing.assert_allclose(lookup("AR1").log_density(np.array([x0]), 0.0, phi, sigma),
                                   st.norm.logpdf(x0, 0.0, sd), rtol=1e-13)


def test_mixture_of_poissons_with_a_log_rate_of_minus_inf_is_a_point_mass_at_zero():
    # a zero exposure's log rate, -inf, is a real parameter (Poisson(log_rate) gives y = 0
    # probability 1, as Stan's poisson_log): that component is a point mass, not a bad one
    from ppl.distributions.discrete import Poisson
    w, x = np.array([0.3, 0.7]), np.array([0.0, 2.0])
    got = lookup("Mixture").log_density(x, w=w, component=(
        Poisson, {"log_rate": np.array([-np.inf, 0.5])}))
    want = np.log(0.3 * (x == 0) + 0.7 * st.poisson(np.exp(0.5)).pmf(x))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_gamma_lccdf_far_in_the_tail_is_finite_with_a_finite_gradient():
    # a right-censored Gamma observation far beyond the mass: Q(2, 800) = 801 e^-800 underflows
    # in scipy (0, so the log was -inf and the gradient nan); log Q(2, rate t) = log(1 + rate t)
    # - rate t exactly
    gamma = lookup("Gamma")
    t, shape, rate = 400.0, 2.0, 2.0
    np.testing.assert_allclose(gamma.log_ccdf(t, shape, rate), np.log1p(rate * t) - rate * t,
                               rtol=1e-14)
    d_rate = grad(lambda r: gamma.log_ccdf(t, shape, r))(rate)
    np.testing.assert_allclose(d_rate, t / (1 + rate * t) - t, rtol=1e-12)
    assert np.isfinite(grad(lambda s: gamma.log_ccdf(t, s, rate))(shape))


def test_poisson_cdfs_far_in_their_tails_are_finite_with_a_finite_gradient():
    # lcdf(Poisson(900), 2) = log Q(3, 900) and lccdf(Poisson(1e-3), 150) = log P(151, 1e-3):
    # both underflow in scipy. Exact: log Q(3, r) = -r + log(1 + r + r^2 / 2); P(151, r) is
    # r^151 e^-r / 151! (1 + r / 152 + r^2 / (152 153) + ...)
    from ppl.distributions.discrete import Poisson
    r = 900.0
    np.testing.assert_allclose(Poisson.log_cdf(2.0, rate=r), -r + np.log(1 + r + r * r / 2),
                               rtol=1e-14)
    np.testing.assert_allclose(grad(lambda s: Poisson.log_cdf(2.0, rate=s))(r),
                               -1 + (1 + r) / (1 + r + r * r / 2), rtol=1e-12)
    r = 1e-3
    lead = 151 * np.log(r) - r - sp.gammaln(152)
    np.testing.assert_allclose(Poisson.log_ccdf(150.0, rate=r), lead + np.log1p(r / 152 + r * r / (152 * 153)),
                               rtol=1e-14)
    np.testing.assert_allclose(grad(lambda s: Poisson.log_ccdf(150.0, rate=s))(r),
                               151 / r - 1 + 1 / 152, rtol=1e-6)


def test_counts_at_int64s_largest_do_not_wrap_round():
    # gammaln(x + 1) with x = 2**63 - 1 (int64) wrapped round to a negative number: Poisson's
    # log pmf was -inf and Binomial's +inf at any rate. + 1.0 works in floats
    big = np.array([np.iinfo(np.int64).max])
    rate = np.array([9.2e18])
    poisson = DISTRIBUTIONS["Poisson"].log_density(big, rate=rate)
    np.testing.assert_allclose(poisson, st.poisson.logpmf(float(big[0]), rate), rtol=1e-6)
    binomial = DISTRIBUTIONS["Binomial"].log_density(np.array([5]), n=big, p=np.array([1e-18]))
    np.testing.assert_allclose(binomial, st.binom.logpmf(5, float(big[0]), 1e-18), rtol=1e-6)
