"""Whitened coordinates for the guide's mean: the cure for correlated posteriors.

The mean-field family stays diagonal in the model's unconstrained space; only the coordinates
in which the optimizer moves ``mu`` change. With H = E_q[-Hessian of log p] (the posterior
precision, for a Gaussian posterior) and H = V diag(lam) V^T, we write
mu = m0 + L v with L = V diag(lam^-1/2), so that the ELBO is about isotropic in v. Plain
gradient steps on a posterior with correlation 0.99999 (posteriordb kilpisjarvi) need on the
order of the condition number, ~1e5 steps; in v they need tens. log_sigma is left as it is: its
gradient for coordinate i depends on H_ii alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import grad

# Eigenvalues below this fraction of the largest are raised to it: a direction the log density
# is flat or convex in (a funnel's neck, a heavy tail) must not get an unbounded step.
EIGEN_FLOOR = 1e-13
MAX_DIM = 300  # beyond this the D Hessian-vector products per refresh cost more than they save


@dataclass(frozen=True)
class Coordinates:
    """The optimizer's parameters ``params = (v [D], log_sigma [D])`` and the guide's
    ``theta = (mu = m0 + L v, log_sigma)``. ``L`` None is the identity (no whitening)."""

    m0: np.ndarray
    L: np.ndarray | None = None

    def to_theta(self, params: np.ndarray) -> np.ndarray:
        if self.L is None:
            return params
        D = self.m0.shape[0]
        return np.concatenate([self.m0 + self.L @ params[:D], params[D:]])

    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        """The params at which ``to_theta`` gives ``theta`` (v = 0 at mu = m0)."""
        if self.L is None:
            return theta
        D = self.m0.shape[0]
        return np.concatenate([np.linalg.solve(self.L, theta[:D] - self.m0), theta[D:]])

    def pull_gradient(self, gradient: np.ndarray) -> np.ndarray:
        """d/d params from d/d theta (chain rule: d/dv = L^T d/dmu)."""
        if self.L is None:
            return gradient
        D = self.m0.shape[0]
        return np.concatenate([self.L.T @ gradient[:D], gradient[D:]])


def expected_hessian(log_joint, zeta: np.ndarray) -> np.ndarray:
    """-E[Hessian of log p] [D, D], averaged over the draws ``zeta`` [M, D].

    The log joint is a sum of one term per draw, so the Hessian of its sum is block diagonal
    across draws: one Hessian-vector product with the same unit vector in every draw gives the
    sum of the draws' Hessian columns. D reverse-over-reverse passes in all. Draws where the
    log joint is not finite are left out (all of them: a NaN matrix, which ``whiten`` refuses).
    """
    zeta = zeta[np.isfinite(log_joint(zeta))]  # a draw in a region of NaN would poison H
    M, D = zeta.shape
    if M == 0:
        return np.full((D, D), np.nan)
    gradient = grad(lambda z: anp.sum(log_joint(z)))
    columns = [grad(lambda z, v=v: anp.sum(gradient(z) * v))(zeta).sum(axis=0)
               for v in np.eye(D)]
    H = -np.stack(columns, axis=1) / M
    return 0.5 * (H + H.T)


def whiten(theta: np.ndarray, H: np.ndarray) -> Coordinates:
    """Coordinates centred on theta's mu in which H becomes the identity.

    Eigenvalues are taken in absolute value (a negative one marks a direction of local
    convexity; its magnitude still measures the curvature) and floored at EIGEN_FLOOR times the
    largest. Returns identity coordinates when H is not finite or has no positive curvature.
    """
    D = H.shape[0]
    mu = theta[:D].copy()
    if not np.all(np.isfinite(H)):
        return Coordinates(mu)
    lam, V = np.linalg.eigh(H)
    lam = np.abs(lam)
    if not lam.max() > 0:
        return Coordinates(mu)
    lam = np.maximum(lam, EIGEN_FLOOR * lam.max())
    return Coordinates(mu, V / np.sqrt(lam))


@dataclass(frozen=True)
class Frame:
    """The model seen in coordinates u with zeta = m0 + W u: a whitened model for the richer
    families, which are then fitted from a standard normal start in u (a warm start at the
    Gaussian N(m0, W W^T)) and mapped back with ``family.push_affine(theta, m0, W)``.

    Has the ``compiled`` attributes the fit loop uses (dim, log_joint, terms,
    unconstrained_names). ``W`` is [D] (diagonal) or [D, D]. The log joint in u omits the
    constant log|det W|; ``log_det`` holds it, for reporting the ELBO in the model's terms.
    """

    compiled: object
    m0: np.ndarray
    W: np.ndarray

    @property
    def dim(self) -> int:
        return self.compiled.dim

    @property
    def log_det(self) -> float:
        if np.ndim(self.W) == 1:
            return float(np.sum(np.log(np.abs(self.W))))
        return float(np.linalg.slogdet(self.W)[1])

    def unconstrained_names(self):
        return self.compiled.unconstrained_names()

    def to_zeta(self, u):
        """zeta [S, D] = m0 + W u for u [S, D] (differentiable)."""
        return self.m0 + (u * self.W if np.ndim(self.W) == 1 else u @ self.W.T)

    def log_joint(self, u):
        return self.compiled.log_joint(self.to_zeta(u))

    def terms(self, u):
        return self.compiled.terms(self.to_zeta(u))
