"""Monte Carlo moments for the families whose mean and sds have no closed form (the flow, scaled).

MOMENT_DRAWS fixed draws (seed 0), so a fit's reported mean and sds are the same every time
they are asked for.
"""
from __future__ import annotations

import numpy as np

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
