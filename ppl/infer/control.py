"""A control variate for mean field's reparameterized gradient, from the whitening's Hessian.

Mean field draws z = mu + sigma * eps, and its ELBO gradient averages g(z), the gradient of
log p at the draws: d/dmu = E[g(z)], d/dlog sigma_i = E[g_i(z) sigma_i eps_i] + 1. With B a
fixed matrix (an estimate of log p's Hessian), B (z - mu) has expectation 0, and
E[(B (z - mu))_i sigma_i eps_i] = sigma_i^2 B_ii. So

    g(z) - B (z - mu)   for the mean,   and   sigma_i^2 B_ii   added back for the log sds,

keep the gradient's expectation exactly, and where log p is near quadratic (its gradient near
affine) remove nearly all of its Monte Carlo noise: the fit's iterates then jitter little, and
a shorter rule makes as precise a fit (schedule.CONTROLLED_DECAYS and the two after it).

B is the dense whitening's own estimate (precondition.whiten: L L^T = H^-1, so B = -H = -(L
L^T)^-1), which costs nothing new. Where log p is far from quadratic (a funnel's neck) B
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

import numpy as np

from ..blocks import trace_blocks

COEFFICIENT_DRAWS = 20   # draws of the guide the rows' coefficients are estimated on


def matrix(log_joint, theta: np.ndarray, L: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The control variate's [D, D] matrix a * B (row i scaled by a_i), for the mean-field
    ``theta`` (mu, log sigma) and a dense whitening ``L`` (B = -(L L^T)^-1), its rows'
    coefficients from the draws ``eps`` [M, D]; all 0 where the draws' gradients are not
    finite."""
    D = L.shape[0]
    inverse = np.linalg.inv(L)
    B = -(inverse.T @ inverse)
    mu, sigma = theta[:D], np.exp(theta[D:])
    d = sigma * eps
    _, vjp = trace_blocks(log_joint, mu + d)
    g = vjp(np.ones(eps.shape[0]))
    c = d @ B.T
    g, c = g - g.mean(axis=0), c - c.mean(axis=0)
    variance = np.einsum("md,md->d", c, c)
    covariance = np.einsum("md,md->d", g, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(variance > 0, covariance / variance, 0.0)
    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    return a[:, None] * B


def corrected(gradient: np.ndarray, theta: np.ndarray, eps: np.ndarray,
              control: np.ndarray) -> np.ndarray:
    """The gradient of the loss (-ELBO, as the optimizers take it) in mean-field ``theta`` at
    the draws ``eps`` [S, D], ``gradient``, with the control variate of the matrix ``control``
    (:func:`matrix`) taken out: the same expectation, less noise."""
    D = control.shape[0]
    sigma = np.exp(theta[D:])
    d = sigma * eps
    c = d @ control.T                   # [S, D]: the control variate at each draw
    S = eps.shape[0]
    out = gradient.copy()
    # the loss is -ELBO: the ELBO's gradient less the control variate is the loss's plus it
    out[:D] += c.sum(axis=0) / S
    out[D:] += np.einsum("sd,sd->d", c, d) / S - sigma * sigma * np.diagonal(control)
    return out
