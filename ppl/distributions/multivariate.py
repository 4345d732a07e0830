"""Distributions whose value is a vector or matrix event: MvNormal, LKJCholesky, Multinomial,
and the time-series priors RandomWalk and AR1 (one series along the last axis).

Parameters with no event axes (RandomWalk's sigma, LKJCholesky's eta) arrive lined up with the
value's batch axes, so they gain trailing axes here to meet the event. Loops run over the
event's axes only (K or T), never over draws or batch rows.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from ..bijectors import CorrCholeskyBijector
from ..special import betaln, gammaln

from .. import constraints as c
from .. import linalg
from . import Distribution, register
from .continuous import _LOG_SQRT_2PI, Normal, _xlogy, log_gamma_draws

_LOG_2 = np.log(2.0)


@register
class MvNormal(Distribution):
    """MvNormal(mu, cov) or MvNormal(mu, scale_tril=L): a normal vector on the last axis.

    ``cov`` is symmetric positive definite; ``scale_tril`` its lower Cholesky factor
    (cov = L L^T). A ``cov`` that is not positive definite at a draw gives NaN, not an error.
    """
    name = "MvNormal"
    signatures = (("mu", "cov"), ("mu", "scale_tril"))
    constraints = {"mu": c.real, "cov": c.positive_definite, "scale_tril": c.lower_cholesky}
    param_event_dims = {"mu": 1, "cov": 2, "scale_tril": 2}
    event_dim = 1
    support = c.real

    @staticmethod
    def _factor(cov, scale_tril):
        return scale_tril if scale_tril is not None else linalg.cholesky_symmetric(cov)

    @classmethod
    def log_density(cls, x, mu, cov=None, scale_tril=None):
        # scipy.stats.multivariate_normal.logpdf: with cov = L L^T and z = L^{-1} (x - mu),
        # -|z|^2 / 2 - sum log diag L - K log(2 pi) / 2. L^{-1} is formed once per distinct
        # matrix (its own batch shape) and applied by a broadcasting matmul, so N rows sharing
        # one L cost one K x K solve, not N.
        factor = cls._factor(cov, scale_tril)
        k = anp.shape(factor)[-1]
        inv = linalg.solve_matrix(factor, anp.eye(k))
        z = anp.matmul(anp.expand_dims(x - mu, -2), anp.swapaxes(inv, -1, -2))[..., 0, :]
        log_diag = anp.log(anp.diagonal(factor, axis1=-1, axis2=-2))
        return -0.5 * anp.sum(z * z, axis=-1) - anp.sum(log_diag, axis=-1) - k * _LOG_SQRT_2PI

    @classmethod
    def sample(cls, rng, size, mu, cov=None, scale_tril=None):
        factor = (np.asarray(scale_tril, float) if scale_tril is not None
                  else np.linalg.cholesky(np.asarray(cov, float)))
        eps = rng.standard_normal(size)
        return mu + np.matmul(factor, eps[..., None])[..., 0]


@register
class LKJCholesky(Distribution):
    """LKJCholesky(eta): the Cholesky factor L of an LKJ(eta) correlation matrix L L^T.

    K comes from the value's shape [..., K, K]. Stan's ``lkj_corr_cholesky``: density
    proportional to ``prod_{k=2..K} L_kk^(K - k + 2 eta - 2)`` (1-based k) with respect to
    the strict lower triangle of L; eta = 1 is uniform over correlation matrices.
    """
    name = "LKJCholesky"
    signatures = (("eta",),)
    constraints = {"eta": c.positive}
    event_dim = 2
    support = c.corr_cholesky

    @staticmethod
    def _cpc_beta(eta, k):
        """Beta parameter b_j [..., K-1] of the canonical partial correlations in column j
        (1-based j = 1..K-1): (z + 1) / 2 ~ Beta(b_j, b_j), b_j = eta + (K - 1 - j) / 2
        (Lewandowski, Kurowicka and Joe 2009, section 3.2, the vine method)."""
        return anp.expand_dims(eta, -1) + (k - 1 - anp.arange(1, k)) / 2.0

    @classmethod
    def log_density(cls, x, eta):
        k = anp.shape(x)[-1]
        rows = anp.arange(2, k + 1)
        coef = (k - rows) + 2.0 * anp.expand_dims(eta, -1) - 2.0
        log_diag = anp.log(anp.diagonal(x, axis1=-1, axis2=-2)[..., 1:])
        # normalizer: the K - j CPCs of column j are independent, each 2 Beta(b_j, b_j) - 1 on
        # (-1, 1) with density (1 - z^2)^(b_j - 1) / (2^(2 b_j - 1) B(b_j, b_j)); changing
        # variables from the CPCs to L turns the (1 - z^2) factors into the powers of L_kk
        # above and leaves these constants (Stan's do_lkj_constant computes the same sum)
        b = cls._cpc_beta(eta, k)
        count = k - anp.arange(1, k)
        log_norm = anp.sum(count * (-betaln(b, b) - (2.0 * b - 1.0) * _LOG_2), axis=-1)
        return anp.sum(coef * log_diag, axis=-1) + log_norm

    @classmethod
    def sample(cls, rng, size, eta):
        k = size[-1]
        batch = tuple(size[:-2])
        if k == 1:
            return np.ones(tuple(size))
        # each CPC z = 2 Beta(b, b) - 1 = (X - Y) / (X + Y) with X, Y ~ Gamma(b): its arctanh
        # is (log X - log Y) / 2, and the bijector maps these free values to L. In logs, a small
        # eta cannot round z to +-1 (L's diagonal exactly 0, or 0/0)
        cols = np.tril_indices(k, -1)[1]      # the bijector's order: row-major, strict lower
        b = np.broadcast_to(cls._cpc_beta(np.asarray(eta, float), k)[..., cols],
                            batch + (len(cols),))
        u = 0.5 * (log_gamma_draws(rng, b) - log_gamma_draws(rng, b))
        return np.asarray(CorrCholeskyBijector().forward(u))


@register
class Multinomial(Distribution):
    """Multinomial(n, p): counts in K categories (last axis) from n draws with probabilities p."""
    name = "Multinomial"
    signatures = (("n", "p"),)
    constraints = {"n": c.non_negative_integer, "p": c.probabilities}
    int_params = frozenset({"n"})
    param_event_dims = {"p": 1}
    event_dim = 1

    @classmethod
    def support_of(cls, params):
        n = params.get("n")
        if isinstance(n, np.ndarray) and n.ndim:
            n = n[..., None]        # one total per event, broadcast against the counts
        return c.CountVector(n)

    @classmethod
    def log_density(cls, x, n, p):
        # scipy.stats.multinomial.logpmf; 0 * log(0) = 0 for an empty category with p = 0
        return (gammaln(n + 1.0) - anp.sum(gammaln(x + 1.0), axis=-1)
                + anp.sum(_xlogy(x, p), axis=-1))

    @classmethod
    def sample(cls, rng, size, n, p):
        n = np.broadcast_to(np.asarray(n).astype(np.int64), tuple(size[:-1]))
        p = np.broadcast_to(p, tuple(size))
        return rng.multinomial(n, p)


@register
class RandomWalk(Distribution):
    """RandomWalk(sigma, init=s0): x[0] ~ Normal(0, s0), x[t] ~ Normal(x[t-1], sigma), along
    the last axis."""
    name = "RandomWalk"
    signatures = (("sigma", "init"),)
    constraints = {"sigma": c.positive, "init": c.positive}
    event_dim = 1
    support = c.real

    @classmethod
    def log_density(cls, x, sigma, init):
        # x[..., :1], not x[..., 0]: a series of length 0 (T = 0 from the data) has density 1
        first = Normal.log_density(x[..., :1], 0.0, anp.expand_dims(init, -1))
        steps = Normal.log_density(x[..., 1:], x[..., :-1], anp.expand_dims(sigma, -1))
        return anp.sum(first, axis=-1) + anp.sum(steps, axis=-1)

    @classmethod
    def sample(cls, rng, size, sigma, init):
        sd = np.array(np.broadcast_to(np.asarray(sigma, float)[..., None], tuple(size)))
        sd[..., :1] = np.asarray(init, float)[..., None]     # empty when T = 0
        return np.cumsum(sd * rng.standard_normal(size), axis=-1)


@register
class AR1(Distribution):
    """AR1(mu, phi, sigma): a stationary AR(1) series along the last axis.

    x[0] ~ Normal(mu, sigma / sqrt(1 - phi^2)), x[t] ~ Normal(mu + phi (x[t-1] - mu), sigma).
    """
    name = "AR1"
    signatures = (("mu", "phi", "sigma"),)
    constraints = {"mu": c.real, "phi": c.Interval(-1.0, 1.0), "sigma": c.positive}
    event_dim = 1
    support = c.real

    @classmethod
    def log_density(cls, x, mu, phi, sigma):
        mu_, phi_, sigma_ = (anp.expand_dims(v, -1) for v in (mu, phi, sigma))
        # the stationary sd, with 1 - phi^2 as (1 - phi)(1 + phi): accurate for |phi| near 1;
        # x[..., :1], not x[..., 0]: a series of length 0 (T = 0 from the data) has density 1
        first = Normal.log_density(x[..., :1], mu_, sigma_ / anp.sqrt((1 - phi_) * (1 + phi_)))
        steps = Normal.log_density(x[..., 1:], mu_ + phi_ * (x[..., :-1] - mu_), sigma_)
        return anp.sum(first, axis=-1) + anp.sum(steps, axis=-1)

    @classmethod
    def sample(cls, rng, size, mu, phi, sigma):
        mu, phi, sigma = (np.broadcast_to(np.asarray(v, float), size[:-1])
                          for v in (mu, phi, sigma))
        eps = rng.standard_normal(size)
        series = np.empty(tuple(size))         # no steps at all when T = 0
        for t in range(size[-1]):              # along the series, not over draws
            series[..., t] = (mu + sigma / np.sqrt((1 - phi) * (1 + phi)) * eps[..., 0] if t == 0
                              else mu + phi * (series[..., t - 1] - mu) + sigma * eps[..., t])
        return series
