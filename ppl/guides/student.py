"""StudentT: a multivariate Student-t with full rank's location and scale on the unconstrained
space [D], and NU degrees of freedom (fixed).

zeta = mu + L eps sqrt(NU / g), eps ~ N(0, I_D) and g the sum of NU squared standard normals
(a chi-square of NU degrees of freedom), so the noise is standard normal of dimension D + NU
and every draw is reproducible from it. Its tails are heavier than the posterior's where a
Gaussian's are lighter, which bounds the importance weights there: ``--guide auto`` assesses a
full-rank fit whose own weights are near uniform but whose k̂ is high under this noise, in the
same frame, before climbing to the flows (infer/auto.py, T_GATE; docs/history/trust-log.md,
"Twenty-seventh probe"). ``--guide studentt[:NU]`` fits it by ADVI as any family.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import autograd.numpy as anp
import numpy as np
from scipy.special import digamma, gammaln

from ..linalg import solve_lower
from .fullrank import FullRank

DEFAULT_NU = 10     # the twenty-seventh probe's: k̂ below 0 on the near-Gaussian regressions
MAX_NU = 1000       # NU extra normals a draw; beyond this the t is a Gaussian to rounding


@lru_cache(maxsize=8)
def _standard(nu: int, D: int) -> tuple[float, float]:
    """(log normalizing constant, entropy) of the standard t of NU degrees of freedom in D
    dimensions (L = I): lgamma((NU + D) / 2) - lgamma(NU / 2) - D / 2 log(NU pi), and minus that
    plus (NU + D) / 2 (digamma((NU + D) / 2) - digamma(NU / 2)). Once per (NU, D): a direct fit's
    entropy is taken every step."""
    log_constant = float(gammaln(0.5 * (nu + D)) - gammaln(0.5 * nu)
                         - 0.5 * D * np.log(nu * np.pi))
    entropy = -log_constant + 0.5 * (nu + D) * (digamma(0.5 * (nu + D)) - digamma(0.5 * nu))
    return log_constant, float(entropy)


@dataclass(frozen=True)
class StudentT(FullRank):
    """q(zeta) = t_NU(mu, L L^T), with full rank's ``theta`` [D + D^2] (FullRank's layout, so
    a full-rank fit's parameters are this family's, and its frame, warm starts and fit.json
    entry are full rank's)."""

    nu: int = DEFAULT_NU
    # full rank's step without autograd draws Gaussian noise: the traced ELBO is used instead
    draw_with_pullback = None

    @property
    def name(self) -> str:
        return "studentt" if self.nu == DEFAULT_NU else f"studentt:{self.nu}"

    def eps_dim(self, D: int) -> int:
        return D + self.nu

    def _radial(self, eps):
        """(the Gaussian part [S, D] of the noise, sqrt(NU / g) [S, 1])."""
        normal, chi = eps[:, :self.D], eps[:, self.D:]
        g = anp.sum(chi * chi, axis=1, keepdims=True)
        return normal, anp.sqrt(self.nu / g)

    def draw(self, theta, eps):
        """zeta [S, D] = mu + sqrt(NU / g) eps L^T for eps [S, D + NU]."""
        mu, L = self.split(theta)
        normal, radial = self._radial(eps)
        return mu + radial * (normal @ L.T)

    def entropy(self, theta):
        """sum(log diag L) plus the standard t's entropy (:func:`_standard`)."""
        D = self.D
        return anp.sum(anp.diag(anp.reshape(theta[D:], (D, D)))) + _standard(self.nu, D)[1]

    def log_q(self, theta, zeta):
        """log t_NU(zeta; mu, L L^T) [S] by one triangular solve."""
        mu, L = self.split(theta)
        z = solve_lower(L, (zeta - mu).T)  # [D, S]
        return (_standard(self.nu, self.D)[0] - anp.sum(anp.log(anp.diag(L)))
                - 0.5 * (self.nu + self.D) * anp.log1p(anp.sum(z * z, axis=0) / self.nu))

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, D + NU] and their log q [n]: L^-1 (zeta -
        mu) is eps's Gaussian part times sqrt(NU / g), so |z|^2 / NU = |eps_D|^2 / g, with no
        solve. Equal to :meth:`log_q` at the draws to rounding (tests/unit/test_guides.py)."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        normal, chi = eps[:, :D], eps[:, D:]
        log_det = np.sum(np.diag(theta[D:].reshape(D, D)))
        ratio = np.sum(normal * normal, axis=1) / np.sum(chi * chi, axis=1)
        return (self.draw(theta, eps),
                _standard(self.nu, D)[0] - log_det - 0.5 * (self.nu + D) * np.log1p(ratio))

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(np.asarray(theta, dtype=float),
                         rng.standard_normal((n, self.eps_dim(self.D))))

    def log_sd(self, theta) -> np.ndarray:
        """The log marginal sds [D]: full rank's times sqrt(NU / (NU - 2)); for NU <= 2, where
        the t has no variance, the scale's (the units of the jitter rule and of the warning
        on an unbounded fit, advi.py)."""
        inflation = 0.5 * np.log(self.nu / (self.nu - 2)) if self.nu > 2 else 0.0
        return super().log_sd(theta) + inflation
