"""A control variate for mean field's reparameterized gradient, from the whitening's Hessian.

Mean field draws z = mu + sigma * eps, and its ELBO gradient averages g(z), the gradient of
log p at the draws: d/dmu = E[g(z)], d/dlog sigma_i = E[g_i(z) sigma_i eps_i] + 1. With B a
fixed matrix (an estimate of log p's Hessian), B (z - mu) has expectation 0, and
E[(B (z - mu))_i sigma_i eps_i] = sigma_i^2 B_ii. So

    g(z) - B (z - mu)   for the mean,   and   sigma_i^2 B_ii   added back for the log sds,

keep the gradient's expectation exactly, and where log p is near quadratic (its gradient near
affine) remove nearly all of its Monte Carlo noise: the fit's iterates then jitter little, and
a shorter rule makes as precise a fit (schedule.CONTROLLED_DECAYS and the two after it).

B is the whitening's own estimate (precondition.whiten: L L^T = H^-1, so B = -H = -(L
L^T)^-1), which costs nothing new: dense up to 30 latents; above, the low-rank whitening's
(precondition.LowRank: its Lanczos directions' curvatures, 1 / sd^2 in the rest), applied in
O(D k) by :class:`LowRankControl` and used only where it takes out enough of the noise
(RESIDUAL_MAX). Where log p is far from quadratic (a funnel's neck) B
predicts g badly, and B (z - mu) would add noise instead of removing it (centered eight
schools, seed 2, diverged with B as it is). So each row i is scaled by the regression
coefficient a_i = cov(g_i, c_i) / var(c_i) of g_i on c_i = (B (z - mu))_i, the variance
minimizing one, estimated on COEFFICIENT_DRAWS fresh draws at each whitening and clipped to
[0, 1]: 0 where the Hessian says nothing of the gradient, the whole correction where it says it
all (docs/history/performance-log.md, "A control variate for mean field's gradient").

From the first refresh of the whitening on (schedule.Whitening.coordinates: the first decay, or
the rescue), not from the first whitening: there it brought the guide to mean field's optimum
within a window, whose importance weights are nearly equal but heavy-tailed (KL(q || p) makes q
narrower than p), where the noisy steps' guide, still on its way down from the wide start, had
light-tailed ones that the early stop (early.py) took: on the example models against NUTS, 20
of 110 fits lost their importance-corrected summary (k̂ above 0.7). Until that refresh a fit
is bit for bit the fit without a control variate.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..blocks import trace_blocks

COEFFICIENT_DRAWS = 20   # draws of the guide the rows' coefficients are estimated on
# A low-rank whitening's B (above 30 latents) holds the curvature of its Lanczos directions
# and only the diagonal elsewhere; where the posterior is correlated outside those directions
# the variate leaves much of the noise, and the shorter rule it allows stopped fits early: a
# 60-latent Gaussian with 20 pairs at correlation 0.9 ended its means 0.15-0.30 mean-field sds
# off, against 0.07-0.10 under the plain rule (tests/unit/test_precondition.py). So a low-rank
# variate is used only where, on its coefficient draws, three quarters of the rows keep at most
# RESIDUAL_MAX of their noise: there 0.27-0.39 were measured, on bnn_regression 0.40-0.50, and
# on models/stochastic_volatility.ppl and varying_slopes.ppl 0.09-0.12 (seeds 0-1), where mean
# field's ELBO ended 0.14-0.17 and 0.014-0.024 nats higher in half to two thirds of the steps
# (seeds 0-5; docs/history/performance-log.md, "The control variate above 30 latents").
RESIDUAL_QUANTILE = 0.75
RESIDUAL_MAX = 0.2


@dataclass(frozen=True)
class LowRankControl:
    """The control variate's matrix a * B for a low-rank whitening (precondition.LowRank: L L^T
    = S (I + U diag(root^2 - 1) U^T) S), as products in O(D k) rather than [D, D]: B = -(L
    L^T)^-1 = -S^-1 (I + U diag(shrink) U^T) S^-1 with shrink = root^-2 - 1, row i scaled by
    a_i (``rows``). The diagonal is the operator's own, so the correction keeps the gradient's
    expectation exactly even where U is not exactly orthonormal."""

    rows: np.ndarray     # a [D]
    scale: np.ndarray    # S [D]
    U: np.ndarray        # [D, k]
    shrink: np.ndarray   # [k]

    def apply(self, d: np.ndarray) -> np.ndarray:
        """[M, D]: a * (B d) for each draw d (a row of ``d``)."""
        y = d / self.scale
        return -self.rows * (y + ((y @ self.U) * self.shrink) @ self.U.T) / self.scale

    def diagonal(self) -> np.ndarray:
        """a * diag(B) [D]."""
        return -self.rows * (1.0 + (self.U * self.U) @ self.shrink) / (self.scale * self.scale)


def matrix(log_joint, theta: np.ndarray, L, eps: np.ndarray):
    """The control variate's matrix a * B (row i scaled by a_i), for the mean-field ``theta``
    (mu, log sigma) and a whitening ``L`` (B = -(L L^T)^-1): [D, D] for a dense ``L``, a
    :class:`LowRankControl` for a precondition.LowRank; its rows' coefficients from the draws
    ``eps`` [M, D]; all 0 where the draws' gradients are not finite. With a LowRank, None
    where the variate leaves too much of the gradient's noise (:func:`_left`)."""
    D = eps.shape[1]
    mu, sigma = theta[:D], np.exp(theta[D:])
    d = sigma * eps
    if isinstance(L, np.ndarray):
        inverse = np.linalg.inv(L)
        B = -(inverse.T @ inverse)
        c = d @ B.T
    else:
        unit = LowRankControl(np.ones(D), L.scale, L.U, L.root ** -2.0 - 1.0)
        c = unit.apply(d)
    _, vjp = trace_blocks(log_joint, mu + d)
    g = vjp(np.ones(eps.shape[0]))
    g, c = g - g.mean(axis=0), c - c.mean(axis=0)
    variance = np.einsum("md,md->d", c, c)
    covariance = np.einsum("md,md->d", g, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(variance > 0, covariance / variance, 0.0)
    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    if isinstance(L, np.ndarray):
        return a[:, None] * B
    return replace(unit, rows=a) if _left(g, a * c) <= RESIDUAL_MAX else None


def _left(g: np.ndarray, c: np.ndarray) -> float:
    """The RESIDUAL_QUANTILE quantile over the rows of the fraction of each row's gradient
    noise that the control variate ``c`` leaves, from the centred draws ``g``, ``c`` [M, D]
    (a row without noise leaves none); 1 where not finite."""
    before = np.einsum("md,md->d", g, g)
    after = np.einsum("md,md->d", g - c, g - c)
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.where(before > 0, after / before, 0.0)
    if not np.all(np.isfinite(left)):
        return 1.0
    return float(np.quantile(left, RESIDUAL_QUANTILE))


def corrected(gradient: np.ndarray, theta: np.ndarray, eps: np.ndarray, control) -> np.ndarray:
    """The gradient of the loss (-ELBO, as the optimizers take it) in mean-field ``theta`` at
    the draws ``eps`` [S, D], ``gradient``, with the control variate of the matrix ``control``
    (:func:`matrix`: [D, D] or a :class:`LowRankControl`) taken out: the same expectation,
    less noise."""
    D = eps.shape[1]
    sigma = np.exp(theta[D:])
    d = sigma * eps
    if isinstance(control, np.ndarray):
        c, diagonal = d @ control.T, np.diagonal(control)   # [S, D]: at each draw
    else:
        c, diagonal = control.apply(d), control.diagonal()
    S = eps.shape[0]
    out = gradient.copy()
    # the loss is -ELBO: the ELBO's gradient less the control variate is the loss's plus it
    out[:D] += c.sum(axis=0) / S
    out[D:] += np.einsum("sd,sd->d", c, d) / S - sigma * sigma * diagonal
    return out
