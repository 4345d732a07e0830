"""Continuous distributions, one class each (formulas cite the matching scipy.stats density).

A log density assumes its value lies in the support and does not check it: latents are kept
inside by their bijector and data are validated when loaded. Outside the support the formula
is evaluated as written (finite, nan or inf), except for Uniform, whose support moves with its
parameters. Parameters outside their constraints are turned into -inf by the compiler.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval
from ..special import betaln, gammaln, log_ndtr, softplus

from .. import constraints as c
from . import Distribution, register
from .incomplete import log1mexp, log_gammainc, log_gammaincc, stdtr

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_LOG_2 = np.log(2.0)
_LOG_PI = np.log(np.pi)


def _xlogy(x, y):
    """``x * log(y)`` with ``0 * log(0) = 0`` (a simplex or a probability may hold zeros).

    The inner ``where`` keeps log(0) out of the gradient of the unused branch. autograd's
    ``where`` does not sum its gradient back to a broadcast operand's shape, so ``y`` is first
    broadcast against ``x`` by an addition (whose gradient does).
    """
    zero = x == 0
    y = y + 0.0 * x
    pole = (y == 0) & ~zero
    safe = zero | pole
    return _at_pole(pole, x, anp.where(safe, 0.0, x * anp.log(anp.where(safe, 1.0, y))))


def _at_pole(pole, x, value):
    """``value`` with ``x * log(0)`` (-inf for x > 0) where ``pole``, as a constant: a value
    of probability 0 (``Bernoulli(z * p)`` at 1 where the enumerated z is 0) then gets gradient
    0 from the log-sum-exp over z's values, not 0 * inf = NaN (enumeration.py)."""
    if not np.any(pole):
        return value
    return anp.where(pole, np.where(np.asarray(getval(x)) > 0, -np.inf, np.inf), value)


@register
class Normal(Distribution):
    """Normal(mu, sigma): mean mu, standard deviation sigma."""
    name = "Normal"
    signatures = (("mu", "sigma"),)
    constraints = {"mu": c.real, "sigma": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, mu, sigma):
        # scipy.stats.norm.logpdf
        z = (x - mu) / sigma
        return -0.5 * z * z - anp.log(sigma) - _LOG_SQRT_2PI

    @classmethod
    def log_cdf(cls, x, mu, sigma):
        # scipy.stats.norm.logcdf: log_ndtr stays accurate far in the lower tail
        return log_ndtr((x - mu) / sigma)

    @classmethod
    def log_ccdf(cls, x, mu, sigma):
        # the upper tail is the lower tail of the reflection
        return log_ndtr((mu - x) / sigma)

    @classmethod
    def sample(cls, rng, size, mu, sigma):
        return rng.normal(mu, sigma, size=size)


@register
class HalfNormal(Distribution):
    """HalfNormal(sigma): |Normal(0, sigma)|, on [0, inf)."""
    name = "HalfNormal"
    signatures = (("sigma",),)
    constraints = {"sigma": c.positive}
    support = c.non_negative

    @classmethod
    def log_density(cls, x, sigma):
        # scipy.stats.halfnorm.logpdf(x, scale=sigma): twice the Normal(0, sigma) density
        return _LOG_2 + Normal.log_density(x, 0.0, sigma)

    @classmethod
    def sample(cls, rng, size, sigma):
        return np.abs(rng.normal(0.0, sigma, size=size))


@register
class StudentT(Distribution):
    """StudentT(nu, mu, sigma): nu degrees of freedom, location mu, scale sigma."""
    name = "StudentT"
    signatures = (("nu", "mu", "sigma"),)
    constraints = {"nu": c.positive, "mu": c.real, "sigma": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, nu, mu, sigma):
        # scipy.stats.t.logpdf(x, df=nu, loc=mu, scale=sigma); log1p keeps small z accurate.
        # gammaln((nu + 1) / 2) - gammaln(nu / 2) - log(pi) / 2 is -log B(nu / 2, 1 / 2): the
        # difference of gammalns loses every digit by nu = 1e16 (scipy takes log poch there)
        z = (x - mu) / sigma
        return (-betaln(0.5 * nu, 0.5) - 0.5 * anp.log(nu) - anp.log(sigma)
                - 0.5 * (nu + 1) * anp.log1p(z * z / nu))

    @classmethod
    def log_cdf(cls, x, nu, mu, sigma):
        # scipy.stats.t.logcdf: the lower tail where t < 0, else log1p of minus the upper
        # tail, each accurate; each branch sees only arguments where it is finite (gradients
        # included). I_{nu/(nu+t^2)}(nu/2, 1/2) had an infinite x-derivative at t = 0 (NaN
        # gradients of lccdf(StudentT(nu, 0, sigma), 0), a half-t's normalizer)
        t = (x - mu) / sigma
        lower = t < 0
        return anp.where(lower, anp.log(stdtr(nu, anp.where(lower, t, 0.0))),
                         anp.log1p(-stdtr(nu, anp.where(lower, 0.0, -t))))

    @classmethod
    def log_ccdf(cls, x, nu, mu, sigma):
        return cls.log_cdf(-x, nu, -mu, sigma)

    @classmethod
    def sample(cls, rng, size, nu, mu, sigma):
        return mu + sigma * rng.standard_t(np.broadcast_to(nu, size))


@register
class Cauchy(Distribution):
    """Cauchy(mu, sigma): location mu, scale sigma."""
    name = "Cauchy"
    signatures = (("mu", "sigma"),)
    constraints = {"mu": c.real, "sigma": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, mu, sigma):
        # scipy.stats.cauchy.logpdf(x, loc=mu, scale=sigma)
        z = (x - mu) / sigma
        return -_LOG_PI - anp.log(sigma) - anp.log1p(z * z)

    @classmethod
    def sample(cls, rng, size, mu, sigma):
        return mu + sigma * rng.standard_cauchy(size=size)


@register
class HalfCauchy(Distribution):
    """HalfCauchy(sigma): |Cauchy(0, sigma)|, on [0, inf)."""
    name = "HalfCauchy"
    signatures = (("sigma",),)
    constraints = {"sigma": c.positive}
    support = c.non_negative

    @classmethod
    def log_density(cls, x, sigma):
        # scipy.stats.halfcauchy.logpdf(x, scale=sigma): twice the Cauchy(0, sigma) density
        return _LOG_2 + Cauchy.log_density(x, 0.0, sigma)

    @classmethod
    def sample(cls, rng, size, sigma):
        return np.abs(sigma * rng.standard_cauchy(size=size))


@register
class Laplace(Distribution):
    """Laplace(mu, b): location mu, scale b (double exponential)."""
    name = "Laplace"
    signatures = (("mu", "b"),)
    constraints = {"mu": c.real, "b": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, mu, b):
        # scipy.stats.laplace.logpdf(x, loc=mu, scale=b)
        return -_LOG_2 - anp.log(b) - anp.abs(x - mu) / b

    @classmethod
    def sample(cls, rng, size, mu, b):
        return rng.laplace(mu, b, size=size)


@register
class LogNormal(Distribution):
    """LogNormal(mu, sigma): exp of Normal(mu, sigma)."""
    name = "LogNormal"
    signatures = (("mu", "sigma"),)
    constraints = {"mu": c.real, "sigma": c.positive}
    support = c.positive

    @classmethod
    def log_density(cls, x, mu, sigma):
        # scipy.stats.lognorm.logpdf(x, s=sigma, scale=exp(mu)): Normal density of log x,
        # times the Jacobian 1/x
        log_x = anp.log(x)
        return Normal.log_density(log_x, mu, sigma) - log_x

    @classmethod
    def log_cdf(cls, x, mu, sigma):
        # scipy.stats.lognorm.logcdf: the Normal CDF of log x
        return Normal.log_cdf(anp.log(x), mu, sigma)

    @classmethod
    def log_ccdf(cls, x, mu, sigma):
        return Normal.log_ccdf(anp.log(x), mu, sigma)

    @classmethod
    def sample(cls, rng, size, mu, sigma):
        return rng.lognormal(mu, sigma, size=size)


@register
class Exponential(Distribution):
    """Exponential(rate): mean 1/rate."""
    name = "Exponential"
    signatures = (("rate",),)
    constraints = {"rate": c.positive}
    support = c.non_negative

    @classmethod
    def log_density(cls, x, rate):
        # scipy.stats.expon.logpdf(x, scale=1/rate)
        return anp.log(rate) - rate * x

    @classmethod
    def log_cdf(cls, x, rate):
        # scipy.stats.expon.logcdf: log(1 - exp(-rate x)), without cancellation at small x
        return log1mexp(rate * x)

    @classmethod
    def log_ccdf(cls, x, rate):
        return -rate * x

    @classmethod
    def sample(cls, rng, size, rate):
        return rng.exponential(1.0 / np.asarray(rate, dtype=float), size=size)


@register
class Gamma(Distribution):
    """Gamma(shape, rate): mean shape/rate."""
    name = "Gamma"
    signatures = (("shape", "rate"),)
    constraints = {"shape": c.positive, "rate": c.positive}
    support = c.positive

    @classmethod
    def log_density(cls, x, shape, rate):
        # scipy.stats.gamma.logpdf(x, a=shape, scale=1/rate)
        return shape * anp.log(rate) - gammaln(shape) + (shape - 1) * anp.log(x) - rate * x

    @classmethod
    def log_cdf(cls, x, shape, rate):
        # scipy.stats.gamma.logcdf / logsf: the regularized incomplete gamma P and Q
        return log_gammainc(shape, rate * x)

    @classmethod
    def log_ccdf(cls, x, shape, rate):
        return log_gammaincc(shape, rate * x)

    @classmethod
    def sample(cls, rng, size, shape, rate):
        return rng.gamma(shape, 1.0 / np.asarray(rate, dtype=float), size=size)


@register
class InverseGamma(Distribution):
    """InverseGamma(shape, scale): 1/x is Gamma(shape, rate=scale)."""
    name = "InverseGamma"
    signatures = (("shape", "scale"),)
    constraints = {"shape": c.positive, "scale": c.positive}
    support = c.positive

    @classmethod
    def log_density(cls, x, shape, scale):
        # scipy.stats.invgamma.logpdf(x, a=shape, scale=scale)
        return (shape * anp.log(scale) - gammaln(shape) - (shape + 1) * anp.log(x)
                - scale / x)

    @classmethod
    def sample(cls, rng, size, shape, scale):
        # 1/X is InverseGamma(shape, scale) when X ~ Gamma(shape, rate=scale). At a small
        # shape X underflows to 0 often (shape 0.01: 1e-30 has probability 0.5): the draw
        # is then inf, as it should be, without numpy's raw 'divide by zero' warning
        with np.errstate(divide="ignore", over="ignore"):
            return scale / rng.gamma(shape, 1.0, size=size)


@register
class Beta(Distribution):
    """Beta(a, b): on (0, 1), mean a/(a+b)."""
    name = "Beta"
    signatures = (("a", "b"),)
    constraints = {"a": c.positive, "b": c.positive}
    support = c.Interval(0.0, 1.0)

    @classmethod
    def log_density(cls, x, a, b):
        # scipy.stats.beta.logpdf; log1p(-x) stays accurate for x near 0
        return (a - 1) * anp.log(x) + (b - 1) * anp.log1p(-x) - betaln(a, b)

    @classmethod
    def sample(cls, rng, size, a, b):
        return rng.beta(a, b, size=size)


@register
class Uniform(Distribution):
    """Uniform(lower, upper): flat on (lower, upper)."""
    name = "Uniform"
    signatures = (("lower", "upper"),)
    constraints = {"lower": c.real, "upper": c.real}
    support_params = {"lower": "upper", "upper": "lower"}

    @classmethod
    def support_of(cls, params):
        return c.Interval(params.get("lower"), params.get("upper"))

    @classmethod
    def log_density(cls, x, lower, upper):
        # scipy.stats.uniform.logpdf(x, loc=lower, scale=upper-lower): -inf outside the
        # support, so that a value outside moving bounds gets no mass (the one density that
        # checks its value: its support moves with its parameters). The x term broadcasts.
        inside = (x >= lower) & (x <= upper)  # closed: a saturated bijector may reach an end
        return anp.where(inside, -anp.log(upper - lower) + 0.0 * x, -anp.inf)

    @classmethod
    def sample(cls, rng, size, lower, upper):
        return rng.uniform(lower, upper, size=size)


@register
class Dirichlet(Distribution):
    """Dirichlet(alpha): a simplex along the last axis, K = alpha's last axis."""
    name = "Dirichlet"
    signatures = (("alpha",),)
    constraints = {"alpha": c.positive}
    param_event_dims = {"alpha": 1}
    event_dim = 1
    support = c.simplex

    @classmethod
    def log_density(cls, x, alpha):
        # scipy.stats.dirichlet.logpdf, reduced over the last (event) axis only
        return (gammaln(anp.sum(alpha, axis=-1)) - anp.sum(gammaln(alpha), axis=-1)
                + anp.sum(_xlogy(alpha - 1, x), axis=-1))

    @classmethod
    def sample(cls, rng, size, alpha):
        # normalized independent Gamma(alpha_k, 1) draws, taken in logs: at alpha = 1e-3 half
        # of the Gamma draws underflow to 0 and a row of zeros would be 0/0 (numpy's dirichlet
        # takes 1-D alpha only)
        log_g = log_gamma_draws(rng, np.broadcast_to(alpha, size))
        g = np.exp(log_g - np.max(log_g, axis=-1, keepdims=True))
        return g / np.sum(g, axis=-1, keepdims=True)


def log_gamma_draws(rng, shape):
    """log of Gamma(shape, 1) draws, finite at any shape > 0: Gamma(a) = Gamma(a + 1) U^(1/a)
    (Marsaglia and Tsang 2000, section 8), where a plain draw at a small shape underflows."""
    shape = np.asarray(shape, dtype=float)
    return np.log(rng.gamma(shape + 1.0)) + np.log1p(-rng.random(shape.shape)) / shape


@register
class Weibull(Distribution):
    """Weibull(shape, scale): P(X > x) = exp(-(x/scale)^shape), on [0, inf)."""
    name = "Weibull"
    signatures = (("shape", "scale"),)
    constraints = {"shape": c.positive, "scale": c.positive}
    support = c.non_negative

    @classmethod
    def log_density(cls, x, shape, scale):
        # scipy.stats.weibull_min.logpdf(x, shape, scale=scale)
        log_z = anp.log(x) - anp.log(scale)
        one = np.asarray(getval(shape)) == 1
        if np.any(one):   # x = 0 at shape 1 (the Exponential's density 1 / scale): 0 * -inf
            power = anp.where(one, 0.0, (shape - 1) * anp.where(one, 0.0, log_z))
        else:
            power = (shape - 1) * log_z
        return anp.log(shape) - anp.log(scale) + power - anp.exp(shape * log_z)

    @classmethod
    def log_cdf(cls, x, shape, scale):
        # scipy.stats.weibull_min.logcdf: log(1 - exp(-(x/scale)^shape))
        return log1mexp((x / scale) ** shape)

    @classmethod
    def log_ccdf(cls, x, shape, scale):
        return -((x / scale) ** shape)

    @classmethod
    def sample(cls, rng, size, shape, scale):
        return scale * rng.weibull(np.broadcast_to(shape, size))


@register
class Gumbel(Distribution):
    """Gumbel(mu, beta): the maximum-value extreme distribution, location mu, scale beta."""
    name = "Gumbel"
    signatures = (("mu", "beta"),)
    constraints = {"mu": c.real, "beta": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, mu, beta):
        # scipy.stats.gumbel_r.logpdf(x, mu, beta)
        z = (x - mu) / beta
        return -anp.log(beta) - z - anp.exp(-z)

    @classmethod
    def log_cdf(cls, x, mu, beta):
        # scipy.stats.gumbel_r.logcdf: the CDF is exp(-exp(-z))
        return -anp.exp(-(x - mu) / beta)

    @classmethod
    def log_ccdf(cls, x, mu, beta):
        # below z = -700 the survival 1 - exp(-e^-z) is 1 to the last bit, its log 0 and every
        # gradient 0; exp(-z) overflowed below -709.8 and the gradient was inf * 0 = NaN (a
        # right-censoring bound far below mu). z is held at -700, where all are 0 already
        z = anp.maximum((x - mu) / beta, -700.0)
        # far above mu, e^-z underflowed to 0 (z > 745) and the log survival was -inf, where it
        # is about -z. Above z = 30, t = e^-z is below 1e-13 and log(1 - e^-t) = log t - t/2 +
        # O(t^2) = -z - t/2 to the last bit (t^2 / 24 < 4e-28)
        near = anp.minimum(z, 30.0)
        return anp.where(z > 30.0, -z - 0.5 * anp.exp(-z), log1mexp(anp.exp(-near)))

    @classmethod
    def sample(cls, rng, size, mu, beta):
        return rng.gumbel(mu, beta, size=size)


@register
class Logistic(Distribution):
    """Logistic(mu, s): location mu, scale s; the CDF is sigmoid((x - mu) / s)."""
    name = "Logistic"
    signatures = (("mu", "s"),)
    constraints = {"mu": c.real, "s": c.positive}
    support = c.real

    @classmethod
    def log_density(cls, x, mu, s):
        # scipy.stats.logistic.logpdf: -z - log s - 2 log(1 + exp(-z)), softplus for stability
        z = (x - mu) / s
        return -z - anp.log(s) - 2.0 * softplus(-z)

    @classmethod
    def log_cdf(cls, x, mu, s):
        # log sigmoid(z) = -softplus(-z)
        return -softplus(-(x - mu) / s)

    @classmethod
    def log_ccdf(cls, x, mu, s):
        return -softplus((x - mu) / s)

    @classmethod
    def sample(cls, rng, size, mu, s):
        return rng.logistic(mu, s, size=size)
