"""Discrete distributions (observed, or latents with a finite support summed out by the compiler).

Log densities are called with data values (ints, or floats holding ints) but their parameters
may depend on latents, so they are written in ``autograd.numpy`` and differentiate in the
parameters. As in ``continuous.py``, values are assumed to lie in the support (data are
validated when loaded); outside it the formula is evaluated as written.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval
from ..special import betaln, gammaln, logaddexp, logsumexp, softplus

from .. import constraints as c
from . import Distribution, register
from .continuous import _at_pole, _xlogy  # 0 * log(0) = 0: p = 0 or 1 is a valid parameter
from .incomplete import log_gammainc, log_gammaincc


def _xlog1py(x, y):
    """``x * log1p(y)`` with ``0 * log(0) = 0`` (the inner ``where`` as in ``_xlogy``)."""
    zero = x == 0
    y = y + 0.0 * x  # broadcast first: autograd's where does not unbroadcast its gradient
    pole = (y == -1) & ~zero
    safe = zero | pole
    return _at_pole(pole, x, anp.where(safe, 0.0, x * anp.log1p(anp.where(safe, 0.0, y))))




def _logit_log_density(x, n, logit):
    """``x logit - n softplus(logit)``: log of sigmoid(logit)^x (1 - sigmoid(logit))^(n - x).
    A logit of +inf (-inf), from the data (``log(p0) - log1p(-p0)`` at p0 = 1 or 0), makes every
    trial a success (failure): 0 where x = n (x = 0), -inf elsewhere, as scipy.stats.binom at
    p = 1 (0) and Stan's bernoulli_logit have it; the formula gives inf - inf or 0 * inf = nan
    there; the formula is taken at a finite stand-in so that its gradient is 0, not
    0 * nan (softplus's VJP exp(x - ans) is nan at inf), as :func:`_at_pole` does."""
    infinite = np.isinf(getval(logit))
    if not np.any(infinite):
        return x * logit - n * softplus(logit)
    x, n = np.asarray(getval(x)), np.asarray(getval(n))
    sure = np.where(np.asarray(getval(logit)) > 0, x == n, x == 0)
    logit = anp.where(infinite, 0.0, logit)
    return anp.where(infinite, np.where(sure, 0.0, -np.inf), x * logit - n * softplus(logit))


def _log_choose(n, k):
    # + 1.0, not + 1: an int64 count at its largest wrapped round to a negative number
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _expit(x):
    """Plain-numpy sigmoid for samplers, stable for large |x|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def _as_int(n):
    """numpy's binomial sampler refuses float counts; run-time arrays may hold ints as floats."""
    return np.asarray(n).astype(np.int64)


def _last_dim(param):
    """K, the size of the last axis of an array or IR expression; None if unknown."""
    shape = getattr(param, "shape", None)
    if not shape:
        return None
    k = shape[-1]
    return int(k) if isinstance(k, (int, np.integer)) else None


@register
class Bernoulli(Distribution):
    """Bernoulli(p) or Bernoulli(logit=x): 1 with probability p = sigmoid(x)."""
    name = "Bernoulli"
    signatures = (("p",), ("logit",))
    constraints = {"p": c.unit_interval, "logit": c.real}
    support = c.boolean

    @classmethod
    def log_density(cls, x, p=None, logit=None):
        # scipy.stats.bernoulli.logpmf; with a logit: x*l - softplus(l), the stable log-sigmoid
        if logit is not None:
            return _logit_log_density(x, 1, logit)
        return _xlogy(x, p) + _xlog1py(1 - x, -p)

    @classmethod
    def sample(cls, rng, size, p=None, logit=None):
        prob = _expit(logit) if logit is not None else p
        return (rng.random(size) < prob).astype(np.int64)


@register
class Binomial(Distribution):
    """Binomial(n, p) or Binomial(n, logit=x): successes in n trials."""
    name = "Binomial"
    signatures = (("n", "p"), ("n", "logit"))
    constraints = {"n": c.non_negative_integer, "p": c.unit_interval, "logit": c.real}
    int_params = frozenset({"n"})

    @classmethod
    def support_of(cls, params):
        return c.IntegerInterval(0, params.get("n"))

    @classmethod
    def log_density(cls, x, n, p=None, logit=None):
        # scipy.stats.binom.logpmf; with a logit: x*l - n*softplus(l)
        if logit is not None:
            return _log_choose(n, x) + _logit_log_density(x, n, logit)
        return _log_choose(n, x) + _xlogy(x, p) + _xlog1py(n - x, -p)

    @classmethod
    def sample(cls, rng, size, n, p=None, logit=None):
        prob = _expit(logit) if logit is not None else p
        return rng.binomial(_as_int(n), prob, size=size)


@register
class BetaBinomial(Distribution):
    """BetaBinomial(n, a, b): Binomial(n, p) with p ~ Beta(a, b)."""
    name = "BetaBinomial"
    signatures = (("n", "a", "b"),)
    constraints = {"n": c.non_negative_integer, "a": c.positive, "b": c.positive}
    int_params = frozenset({"n"})

    @classmethod
    def support_of(cls, params):
        return c.IntegerInterval(0, params.get("n"))

    @classmethod
    def log_density(cls, x, n, a, b):
        # scipy.stats.betabinom.logpmf
        return _log_choose(n, x) + betaln(x + a, n - x + b) - betaln(a, b)

    @classmethod
    def sample(cls, rng, size, n, a, b):
        return rng.binomial(_as_int(n), rng.beta(a, b, size=size))


@register
class Poisson(Distribution):
    """Poisson(rate) or Poisson(log_rate=x): counts with mean rate = exp(x)."""
    name = "Poisson"
    signatures = (("rate",), ("log_rate",))
    constraints = {"rate": c.non_negative, "log_rate": c.real}
    support = c.non_negative_integer

    @classmethod
    def log_density(cls, x, rate=None, log_rate=None):
        # scipy.stats.poisson.logpmf
        if log_rate is not None:
            # a log rate of -inf (a zero exposure's log) gives no count but 0 probability 1,
            # as Stan's poisson_log does; 0 * -inf would be nan
            return (anp.where(x == 0, 0.0, x * log_rate) - anp.exp(log_rate)
                    - gammaln(x + 1.0))
        return _xlogy(x, rate) - rate - gammaln(x + 1.0)

    @classmethod
    def log_cdf(cls, x, rate=None, log_rate=None):
        # scipy.stats.poisson.logcdf: P(X <= k) = Q(k + 1, rate), the upper incomplete gamma
        rate = anp.exp(log_rate) if log_rate is not None else rate
        return log_gammaincc(anp.floor(x) + 1, rate)

    @classmethod
    def log_ccdf(cls, x, rate=None, log_rate=None):
        # scipy.stats.poisson.logsf: P(X > k) = P(k + 1, rate)
        rate = anp.exp(log_rate) if log_rate is not None else rate
        return log_gammainc(anp.floor(x) + 1, rate)

    @classmethod
    def sample(cls, rng, size, rate=None, log_rate=None):
        lam = np.exp(log_rate) if log_rate is not None else rate
        return rng.poisson(lam, size=size)


@register
class NegativeBinomial(Distribution):
    """NegativeBinomial(mu, phi) or (log_mu=x, phi=p): mean mu, Var = mu + mu^2/phi.

    Stan's ``neg_binomial_2``; scipy's ``nbinom`` with n = phi, p = phi / (mu + phi).
    """
    name = "NegativeBinomial"
    signatures = (("mu", "phi"), ("log_mu", "phi"))
    constraints = {"mu": c.positive, "log_mu": c.real, "phi": c.positive}
    support = c.non_negative_integer

    @classmethod
    def log_density(cls, x, phi, mu=None, log_mu=None):
        # scipy.stats.nbinom.logpmf(x, n=phi, p=phi/(mu+phi)), written as Stan's
        # neg_binomial_2_lpmf so that a large phi (Poisson-like data) does not cancel:
        # log C(x + phi - 1, x) = -log x - log B(phi, x) for x > 0 (0 at x = 0), where
        # gammaln(x + phi) - gammaln(phi) would lose every digit at phi = 1e12; and
        # phi log(phi / (mu + phi)) = -phi softplus(log mu - log phi), without the
        # difference of two logs near log phi. Neither overflows at a large log_mu.
        if log_mu is None:
            log_mu = anp.log(mu)
        d = log_mu - anp.log(phi)
        positive = x > 0
        x_safe = anp.where(positive, x, 1.0)    # keeps betaln(phi, 0) = inf out of the gradient
        log_choose = anp.where(positive, -anp.log(x_safe) - betaln(phi, x_safe), 0.0)
        return log_choose - phi * softplus(d) - x * softplus(-d)

    @classmethod
    def sample(cls, rng, size, phi, mu=None, log_mu=None):
        # the gamma-Poisson mixture that defines it: numpy's negative_binomial(phi, p) takes
        # p = phi / (mu + phi), which rounds to 1 (every draw 0) once phi > 1e16 mu
        mean = np.exp(log_mu) if log_mu is not None else np.asarray(mu, dtype=float)
        return rng.poisson(rng.gamma(phi, mean / phi, size=size))


@register
class Categorical(Distribution):
    """Categorical(p) or Categorical(logits=x): an index 0..K-1, K = last axis."""
    name = "Categorical"
    signatures = (("p",), ("logits",))
    constraints = {"p": c.probabilities, "logits": c.real}
    param_event_dims = {"p": 1, "logits": 1}

    @classmethod
    def support_of(cls, params):
        """``{0..K-1}``, K the last axis of ``p``/``logits`` (upper None while K is unknown)."""
        k = _last_dim(params.get("p", params.get("logits")))
        return c.IntegerInterval(0, None if k is None else k - 1)

    @classmethod
    def log_density(cls, x, p=None, logits=None):
        # scipy.stats.multinomial.logpmf(one_hot(x), 1, p). The one-hot comparison gathers
        # along the last axis without in-place indexing and broadcasts over a draw axis.
        probs = p if p is not None else logits
        one_hot = anp.asarray(x)[..., None] == anp.arange(probs.shape[-1])
        # broadcast the parameter first: autograd's where does not unbroadcast its gradient
        p = None if p is None else p + 0.0 * one_hot
        logits = None if logits is None else logits + 0.0 * one_hot
        if logits is not None:
            return _categorical_logits_log_density(one_hot, logits)
        # the log of the gathered p, so that p_k = 0 elsewhere cannot give 0 * log(0)
        return anp.log(anp.sum(anp.where(one_hot, p, 0.0), axis=-1))

    @classmethod
    def sample(cls, rng, size, p=None, logits=None):
        # Gumbel-max: argmax(log p + Gumbel noise) is a draw from Categorical(p)
        with np.errstate(divide="ignore"):
            log_p = np.asarray(logits, float) if logits is not None else np.log(p)
        shape = tuple(int(d) for d in np.atleast_1d(size)) + (log_p.shape[-1],)
        return np.argmax(log_p + rng.gumbel(size=shape), axis=-1)


def _categorical_logits_log_density(one_hot, logits):
    """log softmax(logits) at the one-hot category. A row with one logit of +inf, from the
    data (``log(p0) - log1p(-p0)`` at p0 = 1), makes its category sure: 0 there, -inf at the
    others, the softmax's limit; logsumexp gave inf - inf = nan. The formula is taken at a
    finite stand-in so that its gradient is 0, as :func:`_logit_log_density` does. Two +inf
    in a row leave the probabilities undefined: nan, as before."""
    infinite = np.isposinf(getval(logits))
    sure_row = infinite.sum(axis=-1) == 1
    if not np.any(sure_row):
        log_p = logits - logsumexp(logits, axis=-1, keepdims=True)
        return anp.sum(anp.where(one_hot, log_p, 0.0), axis=-1)
    stand_in = np.broadcast_to(sure_row[..., None], infinite.shape)
    finite = anp.where(stand_in, 0.0, logits)
    log_p = finite - logsumexp(finite, axis=-1, keepdims=True)
    formula = anp.sum(anp.where(one_hot, log_p, 0.0), axis=-1)
    chosen = np.any(np.asarray(getval(one_hot)) & infinite, axis=-1)
    return anp.where(sure_row, np.where(chosen, 0.0, -np.inf), formula)


def _zero_inflated(x, zi, log_p):
    """log of ``zi [x == 0] + (1 - zi) p(x)``, given ``log p(x)`` (log_p broadcast with x)."""
    log_keep = anp.log1p(-zi) + log_p
    zero = anp.asarray(x) == 0
    # zi broadcast first (autograd's where does not unbroadcast its gradient), and log(zi)
    # taken only where x == 0, so that zi = 0 elsewhere puts no inf into the gradient
    zi = zi + anp.zeros(anp.shape(log_keep))
    # At zi = 0 and x == 0 log(zi) is -inf and its gradient inf, times logaddexp's weight 0:
    # nan, where d/dzi is 1 / f(0) - 1. There log(zi + keep) = log_keep + log1p(zi / keep) is
    # taken to first order: the same value, log_keep, and the exact gradient in zi and f's
    # parameters. Only when some zi is 0, so other models' densities are traced as before
    pole = zero & (np.asarray(getval(zi)) == 0)
    log_zero = logaddexp(anp.log(anp.where(zero & ~pole, zi, 1.0)), log_keep)
    if np.any(pole):
        log_zero = anp.where(pole, log_keep + zi * anp.exp(-anp.where(pole, log_keep, 0.0)),
                             log_zero)
    return anp.where(zero, log_zero, log_keep)


@register
class ZeroInflatedPoisson(Distribution):
    """ZeroInflatedPoisson(rate, zi): 0 with probability zi, else a Poisson(rate) count."""
    name = "ZeroInflatedPoisson"
    signatures = (("rate", "zi"),)
    constraints = {"rate": c.positive, "zi": c.unit_interval}
    support = c.non_negative_integer

    @classmethod
    def log_density(cls, x, rate, zi):
        # log(zi [x = 0] + (1 - zi) Poisson(x | rate)), the zero branch by logaddexp
        return _zero_inflated(x, zi, Poisson.log_density(x, rate=rate))

    @classmethod
    def sample(cls, rng, size, rate, zi):
        return np.where(rng.random(size) < zi, 0, rng.poisson(rate, size=size))


@register
class ZeroInflatedNegativeBinomial(Distribution):
    """ZeroInflatedNegativeBinomial(mu, phi, zi): 0 with probability zi, else a
    NegativeBinomial(mu, phi) count."""
    name = "ZeroInflatedNegativeBinomial"
    signatures = (("mu", "phi", "zi"),)
    constraints = {"mu": c.positive, "phi": c.positive, "zi": c.unit_interval}
    support = c.non_negative_integer

    @classmethod
    def log_density(cls, x, mu, phi, zi):
        return _zero_inflated(x, zi, NegativeBinomial.log_density(x, phi, mu=mu))

    @classmethod
    def sample(cls, rng, size, mu, phi, zi):
        counts = NegativeBinomial.sample(rng, size, phi, mu=mu)
        return np.where(rng.random(size) < zi, 0, counts)


@register
class DiscreteUniform(Distribution):
    """DiscreteUniform(lower, upper): each int in lower..upper (both included) equally likely."""
    name = "DiscreteUniform"
    signatures = (("lower", "upper"),)
    constraints = {"lower": c.integer, "upper": c.integer}
    int_params = frozenset({"lower", "upper"})

    @classmethod
    def support_of(cls, params):
        return c.IntegerInterval(params.get("lower"), params.get("upper"))

    @classmethod
    def log_density(cls, x, lower, upper):
        # scipy.stats.randint.logpmf(x, lower, upper + 1); the x term only broadcasts
        return -anp.log(upper - lower + 1.0) + 0.0 * x

    @classmethod
    def sample(cls, rng, size, lower, upper):
        return rng.integers(_as_int(lower), _as_int(upper), size=size, endpoint=True)


@register
class OrderedLogistic(Distribution):
    """OrderedLogistic(eta, cutpoints): an ordinal outcome 0..K, K = cutpoints' last axis.

    Stan's ``ordered_logistic``: P(y = 0) = 1 - sigmoid(eta - c_0), P(y = k) =
    sigmoid(eta - c_{k-1}) - sigmoid(eta - c_k), P(y = K) = sigmoid(eta - c_{K-1}).
    """
    name = "OrderedLogistic"
    signatures = (("eta", "cutpoints"),)
    constraints = {"eta": c.real, "cutpoints": c.ordered}
    param_event_dims = {"cutpoints": 1}

    @classmethod
    def support_of(cls, params):
        """``{0..K}``, K the last axis of ``cutpoints`` (upper None while K is unknown)."""
        k = _last_dim(params.get("cutpoints"))
        return c.IntegerInterval(0, k)

    @classmethod
    def log_probs(cls, eta, cutpoints):
        """log P(y = k) for k = 0..K, [..., K+1], without cancellation.

        With a = eta - c_{k-1} > b = eta - c_k, sigmoid(a) - sigmoid(b) =
        sigmoid(a) (1 - sigmoid(b)) (1 - exp(b - a)): every factor is taken in logs.
        """
        d = anp.expand_dims(eta, -1) - cutpoints                   # [..., K], decreasing
        first = -softplus(d[..., :1])                              # log(1 - sigmoid(d_0))
        last = -softplus(-d[..., -1:])                             # log sigmoid(d_{K-1})
        a, b = d[..., :-1], d[..., 1:]
        middle = -softplus(-a) - softplus(b) + anp.log(-anp.expm1(b - a))
        return anp.concatenate([first, middle, last], axis=-1)

    @classmethod
    def log_density(cls, x, eta, cutpoints):
        log_p = cls.log_probs(eta, cutpoints)
        one_hot = anp.asarray(x)[..., None] == anp.arange(log_p.shape[-1])
        # broadcast first: autograd's where does not unbroadcast its gradient
        log_p = log_p + 0.0 * one_hot
        return anp.sum(anp.where(one_hot, log_p, 0.0), axis=-1)

    @classmethod
    def sample(cls, rng, size, eta, cutpoints):
        log_p = cls.log_probs(np.asarray(eta, float), np.asarray(cutpoints, float))
        return Categorical.sample(rng, size, logits=log_p)
