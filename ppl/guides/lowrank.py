"""LowRank: a Gaussian with covariance diag(sigma^2) + F F^T, F [D, R], for thousands of latents.

zeta = mu + sigma * eps1 + F eps2 with eps = (eps1 [D], eps2 [R]). The log density and entropy
use the Woodbury identity and the matrix determinant lemma: O(D R^2) per draw, never D x D
(log q of its own draws from their noise, ``draw_and_log_q``). Only ``frame``, the start of
a family warm-started from it (the flow under auto, D <= 300), forms the D x D Cholesky
factor, once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))
# F starts at this fraction of sigma, in a fixed pattern: F = 0 is a stationary point of the
# expected ELBO (E[grad log p(zeta) eps2^T] = 0 when zeta does not depend on eps2), so an
# exactly zero start would leave F to the Monte Carlo noise alone.
F_INIT = 0.01


def default_rank(D: int) -> int:
    """ceil(sqrt(D)), at most D: Pyro's AutoLowRankMultivariateNormal default."""
    return max(1, min(D, math.ceil(math.sqrt(D))))


@dataclass(frozen=True)
class LowRank:
    """q(zeta) = N(mu, diag(sigma^2) + F F^T).

    ``theta`` [2 D + D R] is ``mu``, ``log_sigma``, then F row-major.
    """

    D: int
    R: int
    dense_frame = False  # a dense frame would break the diagonal-plus-low-rank form
    # q is the law of mu + W u (frame): the optimum check whitens by W (diagnostics.family_sds)
    frame_is_law = True
    window_scale = 1
    draws_scale = 1

    @property
    def name(self) -> str:
        return f"lowrank:{self.R}"

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """mu = 0, sigma = init_scale, F = F_INIT * init_scale * cos(a fixed pattern)."""
        i, r = np.meshgrid(np.arange(D), np.arange(self.R), indexing="ij")
        F = F_INIT * init_scale * np.cos(1.0 + i * (r + 1.0))
        return np.concatenate([np.zeros(D), np.full(D, np.log(init_scale)), F.ravel()])

    def eps_dim(self, D: int) -> int:
        return D + self.R

    def split(self, theta):
        """``(mu [D], log_sigma [D], F [D, R])``, differentiable."""
        D = self.D
        return theta[:D], theta[D:2 * D], anp.reshape(theta[2 * D:], (D, self.R))

    def draw(self, theta, eps):
        """zeta [S, D] = mu + sigma * eps[:, :D] + eps[:, D:] F^T for eps [S, D + R]."""
        mu, log_sigma, F = self.split(theta)
        return mu + anp.exp(log_sigma) * eps[:, :self.D] + eps[:, self.D:] @ F.T

    def _capacitance(self, log_sigma, F):
        """G = F / sigma [D, R], K = I_R + G^T G [R, R] and log det K.

        slogdet and solve rather than a Cholesky factor: a trial step of the step-size search
        can overflow K, and then these give a non-finite value (which the fit loop discards)
        where a Cholesky factorization would raise.
        """
        G = F * anp.exp(-log_sigma)[:, None]
        K = anp.eye(self.R) + G.T @ G
        return G, K, anp.linalg.slogdet(K)[1]

    def entropy(self, theta):
        """0.5 log det(Sigma) + D/2 (1 + log 2 pi); log det(Sigma) = 2 sum(log sigma)
        + log det(K) by the matrix determinant lemma."""
        _, log_sigma, F = self.split(theta)
        _, _, log_det_K = self._capacitance(log_sigma, F)
        return anp.sum(log_sigma) + 0.5 * log_det_K + 0.5 * self.D * (1.0 + _LOG_2PI)

    def draw_and_entropy(self, theta, eps):
        return self.draw(theta, eps), self.entropy(theta)

    def draw_with_pullback(self, theta: np.ndarray, eps: np.ndarray):
        """The ELBO's guide half without autograd: ``(zeta [S, D], entropy, pullback)``.

        ``pullback(g)`` maps the gradient g [S, D] of the mean log joint in zeta to the
        ELBO's gradient in theta [2 D + D R]: autograd's own VJPs of :meth:`draw`'s and
        :meth:`entropy`'s traced operations, the same numpy calls on the same operands, and
        each theta entry's contributions summed in the traced pass's grouping, so the
        gradient is the traced ELBO's bit for bit (tests/unit/test_elbo.py); only the log
        joint is traced (issue 15). Plain numpy, first order: theta and eps must not be boxed.
        """
        D, R = self.D, self.R
        mu, log_sigma, F = theta[:D], theta[D:2 * D], theta[2 * D:].reshape(D, R)
        sigma, eps1, eps2 = np.exp(log_sigma), eps[:, :D], eps[:, D:]
        zeta = mu + sigma * eps1 + eps2 @ F.T
        inv_sigma = np.exp(-log_sigma)
        G = F * inv_sigma[:, None]
        K = np.eye(R) + G.T @ G
        entropy = (np.sum(log_sigma) + 0.5 * np.linalg.slogdet(K)[1]
                   + 0.5 * D * (1.0 + _LOG_2PI))

        def pullback(g):
            # the entropy: slogdet's VJP (d log det K = K^-T), times the 0.5 in front
            g_K = 0.5 * np.swapaxes(np.linalg.inv(K), -1, -2)
            # K = I + G.T @ G: matmul's VJPs in both operands (the first through .T)
            g_G = np.matmul(g_K, np.swapaxes(G, 0, 1)).T + np.matmul(G, g_K)
            # G = F * exp(-log_sigma)[:, None]; sum(log_sigma)'s ones join in log_sigma's
            # own node before the draw's gradient is added, as in the traced pass
            g_log_sigma = 1.0 + -(inv_sigma * np.add.reduce(F * g_G, axis=1))
            # the draw: mu + sigma * eps1 + eps2 @ F.T
            g_F = np.matmul(np.swapaxes(eps2, 0, 1), g).T + inv_sigma[:, None] * g_G
            g_log_sigma = sigma * np.add.reduce(eps1 * g, axis=0) + g_log_sigma
            return np.concatenate([np.add.reduce(g, axis=0), g_log_sigma, g_F.ravel()])
        return zeta, entropy, pullback

    def log_q(self, theta, zeta):
        """log q(zeta) [S]. Woodbury: with x = (zeta - mu) / sigma and y = G^T x,
        (zeta - mu)^T Sigma^-1 (zeta - mu) = |x|^2 - y^T K^-1 y."""
        mu, log_sigma, F = self.split(theta)
        G, K, log_det_K = self._capacitance(log_sigma, F)
        x = (zeta - mu) * anp.exp(-log_sigma)
        y = G.T @ x.T                                # [R, S]
        quad = anp.sum(x * x, axis=1) - anp.sum(y * anp.linalg.solve(K, y), axis=0)
        log_det = 2 * anp.sum(log_sigma) + log_det_K
        return -0.5 * (quad + log_det + self.D * _LOG_2PI)

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(np.asarray(theta, dtype=float),
                         rng.standard_normal((n, self.D + self.R)))

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, D + R] and their log q [n], from the
        noise. With x = (zeta - mu) / sigma = eps1 + G eps2 and v = K^-1 (G^T eps1 - eps2),
        (I + G G^T)^-1 x = eps1 - G v and the quadratic form is |eps1 - G v|^2 + |eps2 + v|^2:
        a sum of squares of order one, where :meth:`log_q`'s |x|^2 - y^T K^-1 y cancels two
        terms of order |G|^2 (at sigma 1e-6 of F's rows it was off by 0.02 nats, at 1e-8 by
        hundreds, draw by draw). Nor does it tie where the draws round to the mean (a guide
        collapsed below mu's last digit), as log q recomputed from such draws does (k̂ -inf,
        'reliable'; MeanField.draw_and_log_q). Equal to :meth:`log_q` at the draws to rounding
        elsewhere (tests/unit/test_guides.py)."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        _, log_sigma, F = self.split(theta)
        G, K, log_det_K = self._capacitance(log_sigma, F)
        eps1, eps2 = eps[:, :D], eps[:, D:]
        v = np.linalg.solve(K, (eps1 @ G - eps2).T).T             # [n, R]
        r1, r2 = eps1 - v @ G.T, eps2 + v
        quad = np.sum(r1 * r1, axis=1) + np.sum(r2 * r2, axis=1)
        log_det = 2 * np.sum(log_sigma) + log_det_K
        return self.draw(theta, eps), -0.5 * (quad + log_det + D * _LOG_2PI)

    def mean(self, theta) -> np.ndarray:
        return np.asarray(theta[:self.D])

    def log_sd(self, theta) -> np.ndarray:
        """log sqrt(sigma^2 + rowsum(F^2)) [D]."""
        _, log_sigma, F = self.split(np.asarray(theta, dtype=float))
        return 0.5 * np.log(np.exp(2 * log_sigma) + np.sum(F * F, axis=1))

    def jitter_scale(self, theta) -> np.ndarray:
        """Marginal sd of zeta_i for mu_i and for row i of F, 1 for log_sigma_i."""
        sd = np.exp(self.log_sd(theta))
        return np.concatenate([sd, np.ones(self.D), np.repeat(sd, self.R)])

    def frame(self, theta):
        """(mu, W [D, D]) with W W^T = diag(sigma^2) + F F^T, the Cholesky factor: q is the law
        of mu + W u, u ~ N(0, I), so a family warm-started from it (the flow, D <= 300 under
        auto beyond AUTO_FULLRANK_MAX_DIM) starts as this q, F included. O(D^3), once."""
        mu, log_sigma, F = self.split(np.asarray(theta, dtype=float))
        return np.array(mu), np.linalg.cholesky(np.diag(np.exp(2 * log_sigma)) + F @ F.T)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W * zeta for a diagonal W [D] (a dense one would leave
        the family)."""
        mu, log_sigma, F = self.split(np.asarray(theta, dtype=float))
        W = np.asarray(W, dtype=float)
        return np.concatenate([m0 + W * mu, log_sigma + np.log(W), (W[:, None] * F).ravel()])

    def warm_start(self, source, theta) -> np.ndarray:
        """Start from a mean-field fit's mu and sigma (F small, see F_INIT)."""
        m0, W = source.frame(theta)
        if np.ndim(W) == 2:
            W = np.sqrt(np.sum(W * W, axis=1))  # a dense source keeps its marginal sds
        return self.push_affine(self.init(self.D, 1.0), m0, W)

    def to_dict(self, theta, names) -> dict:
        """{"mu": {name: ..}, "log_sigma": {name: ..}, "factor": {name: [R values]}}."""
        mu, log_sigma, F = self.split(np.asarray(theta, dtype=float))
        return {"mu": dict(zip(names, map(float, mu))),
                "log_sigma": dict(zip(names, map(float, log_sigma))),
                "factor": {n: [float(v) for v in row] for n, row in zip(names, F)}}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        F = np.array([parameters["factor"][n] for n in names], dtype=float).reshape(self.D, self.R)
        return np.concatenate([[float(parameters["mu"][n]) for n in names],
                               [float(parameters["log_sigma"][n]) for n in names], F.ravel()])
