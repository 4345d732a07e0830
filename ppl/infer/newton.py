"""Newton steps for the mean-field guide at its first whitening, when it is still far from its
optimum (issue 15 item 5; docs/performance.md, "Newton steps at the first whitening"), and the
Newton step itself, which diagnostics.polish also takes to finish a fit.

A mean-field fit whitens its mean's coordinates after one window (precondition.py): H =
E_q[-Hessian of log p] under the guide of that moment. On a badly scaled regression (posteriordb
diamonds, kilpisjarvi, sblri) the guide is then still hundreds of posterior sds from its
optimum in the whitened coordinates, and Adam's steps of about lr in them took thousands of
steps to cross that (3,300-4,500 steps, where the schedule's floor is 1,200). The optimum's own
conditions give a shorter way. With the whitening's draws z = mu + sigma * eps (eps fixed), the
ELBO's gradient in mu is g = mean of grad log p(z) and its Hessian in mu is -H; at the optimum,
sigma_i^2 = 1 / H_ii (Stein's lemma: E[eps_i d_i log p] = sigma_i E[d_ii log p], and the
entropy's derivative is 1 / sigma_i). So each step is

    mu <- mu + t H^-1 g,    log sigma <- -log(H_ii) / 2 (or as it was),

with t from a line search on the ELBO of those draws and the new sds only if they raise it
(:func:`step`), and H whitened again at the new guide before the next: Newton's method for
the mean, the fixed point of the sd's condition for sigma (the variational online Newton
step of Khan and Rue's Bayesian learning rule, 2023, with the whole expected Hessian). On a
Gaussian posterior one step lands on the optimum of the draws' ELBO. The fit's steps then go
on from there as before: these steps move only its start, and its rule decides the rest.

They run only where the guide is far: the step in whitened units (about posterior sds), v =
L^T g with L L^T = H^-1, at least FAR times its Monte Carlo size at the optimum. There g is a
mean of M draws' gradients of covariance H Sigma_q H, so E|v|^2 = tr(Sigma_q H) / M = D / M for
a mean-field guide at its optimum (Sigma_q = diag(1 / H_ii)). A guide nearer than that (every
example model at its first whitening) gets no step, and its fit is bit for bit the fit without
this module: the check uses the whitening's draws and takes no random numbers.
"""
from __future__ import annotations

import numpy as np

from ..blocks import trace_blocks
from .precondition import Coordinates, estimate

FAR = 3.0           # v's size, in its Monte Carlo sizes, from which the steps run
SD_SETTLED = 0.5    # and go on while some log sigma_i would move more than this
MAX_STEPS = 20      # Newton steps at most (kilpisjarvi, correlation -0.99999: 16)
SEARCH = 60         # step halvings tried at most by a Newton step's line search


def newton_steps(log_joint, guide, theta: np.ndarray, eps: np.ndarray,
                 coords: Coordinates, chunk: int | None) -> tuple[np.ndarray, Coordinates, int]:
    """(theta, coordinates, steps taken) after the Newton steps from mean-field ``theta`` (mu,
    log sigma) with the first whitening ``coords`` (a dense L) made from the draws
    ``guide.draw(theta, eps)``, eps [M, D]; ``chunk`` as precondition.estimate's.
    ``theta`` and ``coords`` come back as they were when the guide is not far."""
    M, D = eps.shape
    far = FAR * max(1.0, np.sqrt(D / M))
    mu, log_sigma, L, taken = theta[:D], theta[D:], coords.L, 0
    for _ in range(MAX_STEPS):
        v = L.T @ _mean_gradient(log_joint, guide.draw(theta, eps))
        # H^-1 = L L^T, so diag(H) from L's inverse: H = L^-T L^-1
        target = -0.5 * np.log(np.sum(np.linalg.inv(L) ** 2, axis=0))
        size = float(np.linalg.norm(v))
        if not (np.isfinite(size) and np.all(np.isfinite(target))):
            break
        if size < far and (taken == 0 or np.max(np.abs(target - log_sigma)) < SD_SETTLED):
            break
        mu, log_sigma, moved = step(log_joint, mu, log_sigma, L @ v, target, eps)
        if not moved:
            break
        theta, taken = np.concatenate([mu, log_sigma]), taken + 1
        whitened = estimate(log_joint, theta, guide.draw(theta, eps), np.exp(log_sigma), chunk)
        if not isinstance(whitened.L, np.ndarray):   # H not finite there: keep the last L
            break
        L = whitened.L
    if taken == 0:
        return theta, coords, 0
    return theta, Coordinates(mu.copy(), L), taken


def step(log_joint, mu: np.ndarray, log_sigma: np.ndarray, direction: np.ndarray,
         target: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(mu, log_sigma, moved) after one Newton step of a mean-field guide: the mean along
    ``direction`` (H^-1 E_q[g]) by the :func:`line_search`'s length, with the sds at
    ``target`` (the optimum's -log(H_ii) / 2) when that raises the ELBO on the fixed draws
    ``eps``, else with the sds as they were; not moved when neither raises it."""
    for sds in (target, log_sigma):
        t = line_search(log_joint, mu, log_sigma, direction, sds, eps)
        if t > 0.0:
            return mu + t * direction, sds, True
    return mu, log_sigma, False


def line_search(log_joint, mu, log_sigma, direction, new_log_sigma, eps) -> float:
    """The step length t in 1, 1/2, 1/4, ... (the first maximum along the ray, at most SEARCH
    halvings) at which the ELBO's estimate with the fixed draws ``eps`` is largest, if above
    its value at the start; 0.0 when none is. From a point far off, a full Newton step can
    overshoot by orders of magnitude (a flat log density gives a tiny curvature), hence many
    halvings; the search stops at the first decrease after an increase."""
    def value(m, log_s):
        return float(np.mean(log_joint(m + np.exp(log_s) * eps))) + float(np.sum(log_s))

    start = value(mu, log_sigma)
    best_t, best = 0.0, start
    t = 1.0
    # a zero direction (the sds alone) has the same value at every t: the loop below would
    # evaluate it SEARCH times when it is no better (4 of a 10^5-row polish's 5 s)
    for _ in range(SEARCH if np.any(direction) else 1):
        current = value(mu + t * direction, new_log_sigma)
        if current > best:
            best_t, best = t, current
        elif best_t > 0.0:
            break
        t *= 0.5
    return best_t


def _mean_gradient(log_joint, zeta: np.ndarray) -> np.ndarray:
    """[D] the mean over the draws ``zeta`` [M, D] of grad log p (NaN where one is not finite,
    which ends the steps)."""
    _, vjp = trace_blocks(log_joint, zeta)
    with np.errstate(all="ignore"):
        return np.asarray(vjp(np.ones(zeta.shape[0])), dtype=float).mean(axis=0)
