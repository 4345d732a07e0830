"""Checks of a finished fit: is the guide's mean where the ELBO's gradient vanishes?

The fit loop's convergence rule looks at the ELBO trace only. On extreme scales that can pass
far from the optimum: with data around 1e12 the ELBO is around -1e20, and a relative change
below ``tol`` is a change of 1e17 nats; with a posterior sd far below Adam's step (lr in
absolute units per coordinate) the iterates jitter over many sds. This module measures the
stationarity of the mean directly, and says what is wrong when it fails.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad

from ..errors import fit_not_at_optimum

DRAWS = 64            # draws of the guide averaged in the expected gradient
CHUNK = 16            # draws per autograd pass (bounds the memory of a large model)
MAX_SDS = 1.0         # largest Newton step of the mean accepted, in guide sds
Z = 4.0               # standard errors the expected gradient must exceed to count


def newton_sds(log_joint, mu: np.ndarray, log_sigma: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """How far a diagonal Newton step would move the guide's mean, in guide sds.

    At the mean-field optimum the ELBO's gradient in ``mu`` is E_q[g] = 0, g the gradient of
    the log joint, and 1/sigma_i^2 = E_q[-H_ii] (Opper and Archambeau 2009, "The variational
    Gaussian approximation revisited"), so sigma_i^2 E_q[g_i] is a Newton step for mu_i and
    sigma_i E_q[g_i] is its length in sds (for a Gaussian posterior: exactly the error of
    mu_i in posterior sds).

    Returns
    -------
    (steps [D], standard errors [D]) of sigma_i E_q[g_i], estimated from ``DRAWS`` draws.
    """
    sigma = np.exp(log_sigma)
    gradient = grad(lambda zeta: anp.sum(log_joint(zeta)))
    scaled = []
    for _ in range(DRAWS // CHUNK):
        eps = rng.standard_normal((CHUNK, mu.size))
        scaled.append(gradient(mu + sigma * eps) * sigma)
    scaled = np.concatenate(scaled)
    return scaled.mean(axis=0), scaled.std(axis=0, ddof=1) / np.sqrt(len(scaled))


def check_optimum(compiled, mu: np.ndarray, log_sigma: np.ndarray, lr: float,
                  final_elbo: float):
    """A PplWarning when the fitted mean is more than ``MAX_SDS`` guide sds (significantly,
    at ``Z`` standard errors) from where the ELBO's gradient vanishes; None when it is not.

    The warning names the worst element and the likely cause: the narrowest guide sd far
    below the step size, or log densities so large that the relative convergence rule stopped
    early (both: data on a scale far from the priors').
    """
    if mu.size == 0:
        return None
    # a fixed stream: the check must not change the fit's own random numbers
    rng = np.random.default_rng(20260911)
    with np.errstate(all="ignore"):
        steps, se = newton_sds(compiled.log_joint, mu, log_sigma, rng)
    # only significant steps count; a non-finite gradient (a draw outside a constraint) is
    # left to the fit's own checks
    off = np.abs(steps)
    off = np.where(np.isfinite(off) & np.isfinite(se) & (off > Z * se), off, 0.0)
    worst = int(np.argmax(off))
    if not off[worst] > MAX_SDS:
        return None
    names = compiled.unconstrained_names()
    narrowest = int(np.argmin(log_sigma))
    return fit_not_at_optimum(names[worst], float(steps[worst]), names[narrowest],
                              float(np.exp(log_sigma[narrowest])), float(lr), float(final_elbo))
