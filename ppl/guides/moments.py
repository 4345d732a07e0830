"""What the flow and scaled families share: each pushes standard-normal noise eps through an
invertible map (``forward(theta, eps)`` and ``inverse(theta, zeta)``, each with its log|det|),
so log q is log N(eps; 0, I) - log|det| (:class:`NormalMap`), and neither has its mean and
sds in closed form: Monte Carlo moments from MOMENT_DRAWS fixed draws (seed 0), so a fit's
reported mean and sds are the same every time they are asked for.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))

MOMENT_DRAWS = 4000


class MonteCarloMoments:
    """``mean`` and ``log_sd`` of q from MOMENT_DRAWS fixed draws of ``self.sample``."""

    def _moments(self, theta):
        draws = self.sample(theta, np.random.default_rng(0), MOMENT_DRAWS)
        return draws.mean(axis=0), draws.std(axis=0, ddof=1)

    def mean(self, theta) -> np.ndarray:
        """The mean of q [D], by Monte Carlo over MOMENT_DRAWS fixed draws."""
        return self._moments(theta)[0]

    def log_sd(self, theta) -> np.ndarray:
        """The log marginal sds [D], by Monte Carlo over MOMENT_DRAWS fixed draws."""
        return np.log(self._moments(theta)[1])


class NormalMap(MonteCarloMoments):
    """A family q whose draws are ``forward(theta, eps)`` of eps ~ N(0, I) [n, D] (``self.D``)."""

    def log_q(self, theta, zeta):
        """log q(zeta) [S] = log N(eps; 0, I) - log|det|, by the exact inverse."""
        eps, log_det = self.inverse(theta, zeta)
        return -0.5 * anp.sum(eps * eps, axis=1) - 0.5 * self.D * _LOG_2PI - log_det

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(np.asarray(theta, dtype=float), rng.standard_normal((n, self.D)))

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, D] and their log q [n] from the forward
        pass: no inverse (the flow's takes D passes a layer) is needed. Equal to :meth:`log_q`
        at the draws to rounding (tests/unit/test_guides.py)."""
        zeta, log_det = self.forward(np.asarray(theta, dtype=float), eps)
        return zeta, -0.5 * np.sum(eps * eps, axis=1) - 0.5 * self.D * _LOG_2PI - log_det
