"""NumPyro translations of the benchmark's models, for the end-to-end comparison (issue 15).

Each function takes the same data dict that ppl gets and states the same model as its ``.ppl``:
same priors, likelihood, parameterization and constraints, with the latents in source order
(so that ppl's unconstrained vector splits into NumPyro's unconstrained sites in order).
``python benchmarks/numpyro_models.py --check`` checks every translation: at a few random
unconstrained points, NumPyro's log density (minus its potential energy, Jacobians included)
minus ppl's compiled log joint is the same constant (to 1e-8 of the log density's size).
NumPyro is imported lazily, so this module imports without it (``--check`` then says
it needs NumPyro and exits with 2).

Run: ``JAX_ENABLE_X64=1 python benchmarks/numpyro_models.py --check [--only NAME ...]``.
The check passes at 1e-16..1e-13 except overdispersed_counts (~6e-9) and tumor_rates
(~1e-9): NumPyro's NegativeBinomial2 and BetaBinomial go through JAX's ``betaln``, whose
sums over these data are off by 1e-6..1e-7 from mpmath where ppl's (scipy's ``gammaln``) are
off by 1e-13; with other random points overdispersed_counts can reach 1.5e-8.

Notes on the translation:

- A truncated prior (``real<lower=0> ~ StudentT``, ``real<lower=-1, upper=1> ~ Normal``) is
  NumPyro's truncated distribution; the normalizing constant ppl drops is a constant.
- ``ordered[K] ~ Normal(0, 5)`` is an ImproperUniform on ordered vectors plus the Normal's
  log density as a factor: NumPyro has no ordered-constrained Normal, and both use Stan's
  ordered transform.
- ``h ~ AR1(mu, phi, sigma)`` (stochastic volatility): ppl fits it through its standardized
  innovations (``bijectors.AR1Innovations``), so NumPyro samples the innovations ``h_std``
  and builds ``h`` from them, the same non-centred parameterization.

Example models left out (not plain continuous models):
``change_point`` (a discrete latent, summed out), ``mixture_enumerated`` (enumerated discrete
latents), ``bnn_regression`` (a BNN), ``bnn_regression_map`` (BNN with ``param`` point
estimates), ``vae_digits`` (a VAE: ``param``s and a user-written amortized guide).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]


def _lib():
    """(numpyro, numpyro.distributions, jax.numpy), imported only when a model runs."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    return numpyro, dist, jnp


def _real(d, name):
    return _lib()[2].asarray(d[name], dtype=float)


def _int(d, name):
    return _lib()[2].asarray(d[name], dtype=int)


def _vec(name, prior, n):
    """A sample site of ``n`` iid draws of ``prior`` (one event)."""
    numpyro, _, _ = _lib()
    return numpyro.sample(name, prior.expand([n]).to_event(1))


def _observe(name, likelihood, y):
    numpyro, _, _ = _lib()
    numpyro.sample(name, likelihood.to_event(likelihood.batch_shape.__len__()), obs=y)


def _ordered(name, k, sd):
    """``name: ordered[k] ~ Normal(0, sd)``: ordered support, Normal density as a factor."""
    numpyro, dist, _ = _lib()
    from numpyro.distributions import constraints
    x = numpyro.sample(name, dist.ImproperUniform(constraints.ordered_vector, (), (k,)))
    numpyro.factor(f"{name}_prior", dist.Normal(0, sd).log_prob(x).sum())
    return x


def _normal_regression(d, y, columns, beta_sd, sigma):
    """``beta: real[len(columns)] ~ Normal(0, beta_sd)``, ``sigma ~ sigma`` (a distribution)
    and ``y ~ Normal(beta[0] * columns[0] + ..., sigma)``; a column None is the intercept."""
    numpyro, dist, jnp = _lib()
    beta = _vec("beta", dist.Normal(0, beta_sd), len(columns))
    s = numpyro.sample("sigma", sigma)
    mu = sum(beta[i] * (1.0 if c is None else c) for i, c in enumerate(columns))
    _observe("y", dist.Normal(mu + jnp.zeros(y.shape), s), y)


def _sd(x):
    """Sample standard deviation (N - 1), as the models write it."""
    jnp = _lib()[2]
    return jnp.sqrt(jnp.sum(jnp.square(x - x.mean())) / (x.shape[0] - 1))


# ----- models/*.ppl -----------------------------------------------------------------------------

def eight_schools(d):
    numpyro, dist, _ = _lib()
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    eta = _vec("eta", dist.Normal(0, 1), d["J"])
    _observe("y", dist.Normal(mu + tau * eta, _real(d, "sigma")), _real(d, "y"))


def regression(d, alpha_sd=10.0, beta_sd=2.0, family="normal"):
    """linear_regression, logistic_regression and end_to_end's big regression."""
    numpyro, dist, _ = _lib()
    X = _real(d, "X")
    alpha = numpyro.sample("alpha", dist.Normal(0, alpha_sd))
    beta = _vec("beta", dist.Normal(0, beta_sd), X.shape[1])
    eta = alpha + X @ beta
    if family == "normal":
        sigma = numpyro.sample("sigma", dist.HalfNormal(1))
        likelihood = dist.Normal(eta, sigma)
    else:
        likelihood = dist.Bernoulli(logits=eta)
    _observe("y", likelihood, _real(d, "y"))


def ar1(d):
    numpyro, dist, _ = _lib()
    y = _real(d, "y")
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    phi = numpyro.sample("phi", dist.TruncatedNormal(0, 0.5, low=-1, high=1))
    sigma = numpyro.sample("sigma", dist.Exponential(1))
    _observe("y", dist.Normal(mu + phi * (y[:-1] - mu), sigma), y[1:])


def beta_binomial(d):
    numpyro, dist, _ = _lib()
    p = numpyro.sample("p", dist.Beta(2, 2))
    _observe("y", dist.Binomial(_int(d, "n"), probs=p), _int(d, "y"))


def dirichlet_categorical(d):
    numpyro, dist, _ = _lib()
    p = numpyro.sample("p", dist.Dirichlet(_real(d, "alpha")))
    _observe("y", dist.Categorical(probs=p).expand([d["N"]]), _int(d, "y"))


def gamma_outcome(d):
    numpyro, dist, jnp = _lib()
    alpha = numpyro.sample("alpha", dist.Normal(0, 5))
    beta = numpyro.sample("beta", dist.Normal(0, 1))
    shape = numpyro.sample("shape", dist.Gamma(2, 0.5))
    mean = jnp.exp(alpha + beta * _real(d, "x"))
    _observe("y", dist.Gamma(shape, shape / mean), _real(d, "y"))


def hierarchical_intercepts(d):
    numpyro, dist, _ = _lib()
    x = _real(d, "x")
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(0, 5))
    sigma_alpha = numpyro.sample("sigma_alpha", dist.HalfCauchy(2))
    alpha = _vec("alpha", dist.Normal(mu_alpha, sigma_alpha), d["G"])
    beta = numpyro.sample("beta", dist.Normal(0, 2))
    sigma = numpyro.sample("sigma", dist.Exponential(1))
    _observe("y", dist.Normal(alpha[_int(d, "group")] + beta * (x - x.mean()), sigma),
             _real(d, "y"))


def lognormal_outcome(d):
    numpyro, dist, jnp = _lib()
    alpha = numpyro.sample("alpha", dist.Normal(0, 5))
    beta = numpyro.sample("beta", dist.Normal(0, 1))
    sigma_sq = numpyro.sample("sigma_sq", dist.InverseGamma(3, 2))
    _observe("y", dist.LogNormal(alpha + beta * _real(d, "x"), jnp.sqrt(sigma_sq)),
             _real(d, "y"))


def mixture(d):
    numpyro, dist, jnp = _lib()
    w = numpyro.sample("w", dist.Dirichlet(jnp.array([2.0, 2.0])))
    mu = _ordered("mu", 2, 5.0)
    sigma = numpyro.sample("sigma", dist.HalfNormal(2))
    components = dist.MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(mu, sigma))
    _observe("y", components.expand([d["N"]]), _real(d, "y"))


def multinomial_logistic(d):
    numpyro, dist, _ = _lib()
    C, D = d["C"], d["D"]
    intercept = _vec("intercept", dist.Normal(0, 2), C)
    W = numpyro.sample("W", dist.Normal(0, 1).expand([D, C]).to_event(2))
    _observe("y", dist.Categorical(logits=intercept + _real(d, "X") @ W), _int(d, "y"))


def ordinal_regression(d):
    numpyro, dist, _ = _lib()
    beta = numpyro.sample("beta", dist.Normal(0, 3))
    c = _ordered("c", d["K"], 5.0)
    _observe("y", dist.OrderedLogistic(beta * _real(d, "x"), c), _int(d, "y"))


def overdispersed_counts(d):
    numpyro, dist, jnp = _lib()
    alpha = numpyro.sample("alpha", dist.Normal(0, 5))
    beta = numpyro.sample("beta", dist.Normal(0, 1))
    phi = numpyro.sample("phi", dist.Exponential(0.1))
    _observe("y", dist.NegativeBinomial2(jnp.exp(alpha + beta * _real(d, "x")), phi),
             _int(d, "y"))


def _gp_poisson(d, rho_prior, jitter, eta_name, y_name):
    """poisson_gp and posteriordb's gp_pois_regr: a latent GP, non-centred, Poisson counts."""
    numpyro, dist, jnp = _lib()
    x, n = _real(d, "x"), d["N"]
    rho = numpyro.sample("rho", rho_prior)
    alpha = numpyro.sample("alpha", dist.HalfNormal(2))
    eta = _vec(eta_name, dist.Normal(0, 1), n)
    diff = x[:, None] - x[None, :]
    K = alpha * alpha * jnp.exp(-0.5 * (diff / rho) ** 2) + jitter * jnp.eye(n)
    f = jnp.linalg.cholesky(K) @ eta
    _observe("y", dist.Poisson(jnp.exp(f)), _int(d, y_name))


def poisson_gp(d):
    _gp_poisson(d, _lib()[1].Gamma(5, 2), 1e-6, "eta", "y")


def poisson_regression(d):
    numpyro, dist, jnp = _lib()
    alpha = numpyro.sample("alpha", dist.Normal(0, 5))
    beta = numpyro.sample("beta", dist.Normal(0, 1))
    log_rate = jnp.log(_real(d, "exposure")) + alpha + beta * _real(d, "x")
    _observe("y", dist.Poisson(jnp.exp(log_rate)), _int(d, "y"))


def robust_regression(d):
    numpyro, dist, _ = _lib()
    X = _real(d, "X")
    alpha = numpyro.sample("alpha", dist.Cauchy(0, 10))
    beta = _vec("beta", dist.Laplace(0, 1), X.shape[1])
    sigma = numpyro.sample("sigma", dist.HalfCauchy(1))
    nu = numpyro.sample("nu", dist.Gamma(2, 0.1))
    _observe("y", dist.StudentT(nu, alpha + X @ beta, sigma), _real(d, "y"))


def seeds(d):
    numpyro, dist, _ = _lib()
    x = _real(d, "x")
    x1, x2 = x[:, 0], x[:, 1]
    alpha = numpyro.sample("alpha", dist.Normal(0, 2))
    beta = _vec("beta", dist.Normal(0, 1), 3)
    sigma = numpyro.sample("sigma", dist.HalfNormal(1))
    z = _vec("_z", dist.Normal(0, 1), d["N"])
    logit = alpha + beta[0] * x1 + beta[1] * x2 + beta[2] * x1 * x2 + sigma * z
    _observe("y", dist.Binomial(_int(d, "n"), logits=logit), _int(d, "y"))


def stochastic_volatility(d):
    """h ~ AR1(mu, phi, sigma) through its standardized innovations, as ppl fits it."""
    import jax
    numpyro, dist, jnp = _lib()
    mu = numpyro.sample("mu", dist.Normal(0, 2))
    phi = numpyro.sample("phi", dist.Uniform(-1, 1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1))
    u = _vec("h_std", dist.Normal(0, 1), d["T"])
    shocks = jnp.concatenate([sigma / jnp.sqrt(1 - phi * phi) * u[:1], sigma * u[1:]])

    def step(prev, shock):
        x = phi * prev + shock
        return x, x
    _, centred = jax.lax.scan(step, jnp.zeros(()), shocks)
    _observe("y", dist.Normal(0, jnp.exp((mu + centred) / 2)), _real(d, "y"))


def tumor_rates(d):
    numpyro, dist, _ = _lib()
    m = numpyro.sample("m", dist.Uniform(0, 1))
    kappa = numpyro.sample("kappa", dist.LogNormal(3, 1))
    _observe("y", dist.BetaBinomial(m * kappa, (1 - m) * kappa, _int(d, "n")), _int(d, "y"))


def varying_slopes(d):
    numpyro, dist, jnp = _lib()
    g, x = _int(d, "g"), _real(d, "x")
    a0 = numpyro.sample("a0", dist.Normal(0, 5))
    b0 = numpyro.sample("b0", dist.Normal(0, 5))
    tau = _vec("tau", dist.HalfNormal(1), 2)
    L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    z = numpyro.sample("z", dist.Normal(0, 1).expand([d["J"], 2]).to_event(2))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2))
    ab = z @ (jnp.diag(tau) @ L).T
    _observe("y", dist.Normal(a0 + ab[g, 0] + (b0 + ab[g, 1]) * x, sigma), _real(d, "y"))


def weibull_survival(d):
    numpyro, dist, jnp = _lib()
    k = numpyro.sample("k", dist.Gamma(2, 1))
    lam = numpyro.sample("lam", dist.Gamma(2, 0.5))
    _observe("t", dist.Weibull(lam, k), _real(d, "t"))
    # log P(T > t) = -(t / lam)^k for the right-censored times
    numpyro.factor("censored", -jnp.sum((_real(d, "t_cens") / lam) ** k))


def zero_inflated_poisson(d):
    numpyro, dist, jnp = _lib()
    a = numpyro.sample("a", dist.Normal(0, 2))
    b = numpyro.sample("b", dist.Normal(0, 2))
    zi = numpyro.sample("zi", dist.Beta(1, 1))
    _observe("y", dist.ZeroInflatedPoisson(zi, jnp.exp(a + b * _real(d, "x"))), _int(d, "y"))


# ----- models/posteriordb/*.ppl -----------------------------------------------------------------

def ark(d):
    numpyro, dist, _ = _lib()
    y, K, T = _real(d, "y"), d["K"], d["T"]
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = _vec("beta", dist.Normal(0, 10), K)
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    mu = alpha + sum(beta[k] * y[K - 1 - k:T - 1 - k] for k in range(K))
    _observe("y", dist.Normal(mu, sigma), y[K:])


def diamonds(d):
    numpyro, dist, _ = _lib()
    X = _real(d, "X")[:, 1:]
    Xc = X - X.mean(axis=0)
    b = _vec("b", dist.Normal(0, 1), d["K"] - 1)
    intercept = numpyro.sample("Intercept", dist.StudentT(3, 8, 10))
    sigma = numpyro.sample("sigma", dist.TruncatedDistribution(dist.StudentT(3, 0, 10), low=0))
    _observe("Y", dist.Normal(intercept + Xc @ b, sigma), _real(d, "Y"))


def earnings_log10(d):
    _, dist, jnp = _lib()
    y = jnp.log(_real(d, "earn")) / jnp.log(10.0)
    _normal_regression(d, y, [None, _real(d, "height")], 1000, dist.HalfNormal(1000))


def earnings_interaction_z(d):
    _, dist, jnp = _lib()
    height, male = _real(d, "height"), _real(d, "male")
    z = (height - height.mean()) / _sd(height)
    _normal_regression(d, jnp.log(_real(d, "earn")), [None, z, male, z * male], 1000,
                       dist.HalfNormal(1000))


def eight_schools_centered(d):
    numpyro, dist, _ = _lib()
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta = _vec("theta", dist.Normal(mu, tau), d["J"])
    _observe("y", dist.Normal(theta, _real(d, "sigma")), _real(d, "y"))


def eight_schools_noncentered(d):
    numpyro, dist, _ = _lib()
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta_trans = _vec("theta_trans", dist.Normal(0, 1), d["J"])
    _observe("y", dist.Normal(mu + tau * theta_trans, _real(d, "sigma")), _real(d, "y"))


def gp_pois_regr(d):
    _gp_poisson(d, _lib()[1].Gamma(25, 4), 1e-10, "f_tilde", "k")


def kidscore_interaction(d):
    dist = _lib()[1]
    hs, iq = _real(d, "mom_hs"), _real(d, "mom_iq")
    _normal_regression(d, _real(d, "kid_score"), [None, hs, iq, hs * iq], 1000,
                       dist.HalfCauchy(2.5))


def kidscore_momiq(d):
    dist = _lib()[1]
    _normal_regression(d, _real(d, "kid_score"), [None, _real(d, "mom_iq")], 1000,
                       dist.HalfCauchy(2.5))


def kidscore_interaction_z(d):
    dist = _lib()[1]
    hs, iq = _real(d, "mom_hs"), _real(d, "mom_iq")
    z_hs, z_iq = (hs - hs.mean()) / (2 * _sd(hs)), (iq - iq.mean()) / (2 * _sd(iq))
    _normal_regression(d, _real(d, "kid_score"), [None, z_hs, z_iq, z_hs * z_iq], 1000,
                       dist.HalfNormal(1000))


def kilpisjarvi(d):
    numpyro, dist, _ = _lib()
    alpha = numpyro.sample("alpha", dist.Normal(d["pmualpha"], d["psalpha"]))
    beta = numpyro.sample("beta", dist.Normal(d["pmubeta"], d["psbeta"]))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1000))
    _observe("y", dist.Normal(alpha + beta * _real(d, "x"), sigma), _real(d, "y"))


def logmesquite(d):
    _, dist, jnp = _lib()
    logs = [jnp.log(_real(d, name)) for name in
            ("diam1", "diam2", "canopy_height", "total_height", "density")]
    _normal_regression(d, jnp.log(_real(d, "weight")), [None, *logs, _real(d, "group")],
                       1000, dist.HalfNormal(1000))


def logmesquite_logvolume(d):
    _, dist, jnp = _lib()
    volume = _real(d, "diam1") * _real(d, "diam2") * _real(d, "canopy_height")
    _normal_regression(d, jnp.log(_real(d, "weight")), [None, jnp.log(volume)], 1000,
                       dist.HalfNormal(1000))


def nes(d):
    dist = _lib()[1]
    a = _real(d, "age_discrete")
    ages = [(a - 1) * (a - 3) * (a - 4) / 2, -(a - 1) * (a - 2) * (a - 4) / 2,
            (a - 1) * (a - 2) * (a - 3) / 6]
    columns = [None, _real(d, "real_ideo"), _real(d, "race_adj"), *ages,
               _real(d, "educ1"), _real(d, "gender"), _real(d, "income")]
    _normal_regression(d, _real(d, "partyid7"), columns, 1000, dist.HalfNormal(1000))


def blr(d):
    numpyro, dist, _ = _lib()
    beta = _vec("beta", dist.Normal(0, 10), d["D"])
    sigma = numpyro.sample("sigma", dist.HalfNormal(10))
    _observe("y", dist.Normal(_real(d, "X") @ beta, sigma), _real(d, "y"))


# ----- the registry -----------------------------------------------------------------------------

MODELS = {
    # models/*.ppl
    "ar1": ar1, "beta_binomial": beta_binomial, "dirichlet_categorical": dirichlet_categorical,
    "eight_schools": eight_schools, "gamma_outcome": gamma_outcome,
    "hierarchical_intercepts": hierarchical_intercepts, "linear_regression": regression,
    "logistic_regression": lambda d: regression(d, 2.5, 1.0, "bernoulli"),
    "lognormal_outcome": lognormal_outcome, "mixture": mixture,
    "multinomial_logistic": multinomial_logistic, "ordinal_regression": ordinal_regression,
    "overdispersed_counts": overdispersed_counts, "poisson_gp": poisson_gp,
    "poisson_regression": poisson_regression, "robust_regression": robust_regression,
    "seeds": seeds, "stochastic_volatility": stochastic_volatility, "tumor_rates": tumor_rates,
    "varying_slopes": varying_slopes, "weibull_survival": weibull_survival,
    "zero_inflated_poisson": zero_inflated_poisson,
    # end_to_end.py's 100,000-row regression
    "big_regression": regression,
    # models/posteriordb/*.ppl
    "arK-arK": ark, "diamonds-diamonds": diamonds,
    "earnings-log10earn_height": earnings_log10,
    "earnings-logearn_interaction_z": earnings_interaction_z,
    "eight_schools-eight_schools_centered": eight_schools_centered,
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "gp_pois_regr-gp_pois_regr": gp_pois_regr,
    "kidiq-kidscore_interaction": kidscore_interaction,
    "kidiq-kidscore_momiq": kidscore_momiq,
    "kidiq_with_mom_work-kidscore_interaction_z": kidscore_interaction_z,
    "kilpisjarvi_mod-kilpisjarvi": kilpisjarvi,
    "mesquite-logmesquite": logmesquite,
    "mesquite-logmesquite_logvolume": logmesquite_logvolume,
    "nes2000-nes": nes, "sblrc-blr": blr, "sblri-blr": blr,
}


def numpyro_models() -> dict:
    """name -> NumPyro model function taking the data dict, or {} without NumPyro."""
    return dict(MODELS) if numpyro_importable() else {}


def numpyro_importable() -> bool:
    """Whether NumPyro (and JAX) import."""
    try:
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError:
        return False
    return True


NEEDS_NUMPYRO = ("needs NumPyro, which is not a dependency of ppl: "
                 "pip install numpyro (it brings JAX), then run this again")
NUMPYRO_ROWS_LEFT_OUT = ("NumPyro is not importable (not a dependency of ppl): its rows are "
                         "left out; pip install numpyro for them")


# ----- the check: same log density up to a constant ---------------------------------------------

def _cases():
    """(name, model text, data dict) for every model in MODELS."""
    sys.path.insert(0, str(_REPO))
    sys.path.insert(0, str(_REPO / "benchmarks"))
    import end_to_end
    import posteriordb_data as pdb
    for name in MODELS:
        path = _REPO / "models" / f"{name}.ppl"
        if path.is_file():
            yield name, path.read_text(), json.loads(path.with_suffix(".json").read_text())
        elif name == "big_regression":
            yield name, end_to_end.BIG_REGRESSION, end_to_end.big_regression_data()
        else:
            yield name, pdb.model_path(name).read_text(), pdb.load_data(name)


def _numpyro_log_density(model, data, zeta, sizes):
    """-potential energy of ``model`` at the unconstrained points ``zeta`` [S, D], split into
    its latent sites in order (each site's unconstrained size must be ppl's slot size)."""
    import jax
    from numpyro import handlers
    from numpyro.distributions import biject_to
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import potential_energy
    # init_to_uniform gives every latent a value, ImproperUniform ones too (no sampler)
    seeded = handlers.seed(lambda: model(data), jax.random.PRNGKey(0))
    trace = handlers.trace(handlers.substitute(seeded, substitute_fn=init_to_uniform)).get_trace()
    sites = [(name, np.shape(biject_to(s["fn"].support).inv(s["value"])))
             for name, s in trace.items()
             if s["type"] == "sample" and not s["is_observed"]]
    got = [int(np.prod(shape, dtype=int)) for _, shape in sites]
    if got != sizes:
        raise AssertionError(f"unconstrained sizes: NumPyro {got}, ppl {sizes}")
    out = []
    for point in zeta:
        pieces = np.split(point, np.cumsum(sizes)[:-1])
        params = {name: piece.reshape(shape) for (name, shape), piece in zip(sites, pieces)}
        out.append(-float(potential_energy(lambda: model(data), (), {}, params)))
    return np.array(out)


def check(name, text, data, points=4, seed=0) -> float:
    """Largest |change in ppl's log joint - change in NumPyro's| between random unconstrained
    points, relative to the largest |log density| (1 + ...): should be ~1e-12."""
    import warnings

    import ppl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # posteriordb data has names a model leaves out
        compiled = ppl.compile(text).prepare(data)[2]
    rng = np.random.default_rng(seed)
    zeta = rng.normal(0.0, 0.5, (points, compiled.dim))
    ours = np.asarray(compiled.log_joint(zeta), dtype=float)
    theirs = _numpyro_log_density(MODELS[name], data, zeta,
                                  [slot.size for slot in compiled.slots])
    delta = (ours - ours[0]) - (theirs - theirs[0])
    return float(np.max(np.abs(delta)) / (1 + np.max(np.abs(ours))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="check every translation against ppl's log joint")
    parser.add_argument("--only", nargs="*", help="model names to check")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 0
    if not numpyro_importable():
        print(f"{Path(__file__).name} --check {NEEDS_NUMPYRO}", file=sys.stderr)
        return 2
    import jax
    jax.config.update("jax_enable_x64", True)
    failed = []
    for name, text, data in _cases():
        if args.only and name not in args.only:
            continue
        err = check(name, text, data)
        print(f"{name:45s} {err:9.2e} {'ok' if err <= 1e-8 else 'DIFFERENT'}", flush=True)
        if not err <= 1e-8:
            failed.append(name)
    print(f"{len(failed)} different: {failed}" if failed else "all the same up to a constant")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
