"""Continuous distributions, one class each (formulas cite the matching scipy.stats density)."""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from .. import constraints as c
from . import Distribution, register

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@register
class Normal(Distribution):
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
    def sample(cls, rng, size, mu, sigma):
        return rng.normal(mu, sigma, size=size)
