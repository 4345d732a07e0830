"""Variational families on the unconstrained space [D]: parameters, reparameterized draws, entropy.

The diagonal Gaussian (mean field); the other families sit beside it in this package with the
same methods. The log joint lives in ppl/compiler.py, the ELBO and optimizers in ppl/infer/.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class MeanField:
    """A diagonal Gaussian q(zeta) = N(mu, diag(exp(log_sigma))^2) on the unconstrained space.

    ``theta`` is one flat vector [2 D]: ``mu`` (the first D entries), then ``log_sigma``. One flat
    vector keeps the optimizers and the non-finite checks trivial. Methods are written in
    ``autograd.numpy`` so they can be differentiated with respect to ``theta``.
    """

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """Initial parameters: mu = 0, log_sigma = log(init_scale).

        Why: the unconstrained origin maps to a central point of each support (0 for reals,
        lower + 1 for a lower bound, the midpoint of an interval), and a small sigma keeps
        the first draws near it, in a region where the log density is usually finite and
        moderate. Stan's ADVI likewise centres its first Gaussian on one point of the
        unconstrained space (its initial values) with a fixed log sigma (Kucukelbir et al. 2017,
        JMLR 18(14), section 3; CmdStan ``variational``: omega = 0); we take a smaller sigma
        because wide early draws are the ones most likely to overflow a log density.

        Parameters
        ----------
        D : size of the unconstrained space.
        init_scale : initial sigma of every coordinate (> 0).

        Returns
        -------
        theta : [2 D] float64.
        """
        return np.concatenate([np.zeros(D), np.full(D, np.log(init_scale))])

    @staticmethod
    def split(theta):
        """``(mu [D], log_sigma [D])`` from ``theta [2 D]``."""
        D = theta.shape[0] // 2
        return theta[:D], theta[D:]

    def draw(self, theta, eps):
        """Reparameterized draws ``zeta = mu + exp(log_sigma) * eps``.

        Parameters
        ----------
        theta : [2 D] guide parameters.
        eps : [S, D] standard normal noise.

        Returns
        -------
        zeta : [S, D], differentiable with respect to theta.
        """
        mu, log_sigma = self.split(theta)
        return mu + anp.exp(log_sigma) * eps

    def entropy(self, theta):
        """Closed-form entropy: sum(log_sigma) + D/2 (1 + log 2 pi) (a scalar)."""
        D = theta.shape[0] // 2
        return anp.sum(theta[D:]) + 0.5 * D * (1.0 + _LOG_2PI)

    def log_q(self, theta, zeta):
        """log q(zeta; theta) [S] for zeta [S, D] (used by the 'sticking the landing' gradient)."""
        mu, log_sigma = self.split(theta)
        z = (zeta - mu) * anp.exp(-log_sigma)
        return (-0.5 * anp.sum(z * z, axis=1) - anp.sum(log_sigma)
                - 0.5 * log_sigma.shape[0] * _LOG_2PI)

    def sample(self, theta: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws [n, D] from q (plain numpy; for summaries and predictive)."""
        mu, _ = self.split(np.asarray(theta, dtype=float))
        return self.draw(theta, rng.standard_normal((n, mu.shape[0])))


MEAN_FIELD = MeanField()
