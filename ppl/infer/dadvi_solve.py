"""DADVI's linear algebra (used by dadvi.py): the Hessian's solver on the complement of the
guide family's flat directions, dense (Cholesky) or by conjugate gradients, and the error that
names the flattest direction when the Hessian is not positive definite.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import scipy.linalg
from autograd import grad, jacobian

from ..errors import dadvi_hessian_not_finite, dadvi_not_positive_definite
from ..guides import LowRank, MeanField

# An eigenvalue of the Hessian below this fraction of the largest counts as zero. Round-off in
# the Hessian-vector products is about 1e-16 of the largest eigenvalue, and identified
# posteriors do reach 1e-12 (kilpisjarvi's (alpha, beta): condition number 7e11), while a
# direction left flat by a vague prior (Normal(0, 1e8) on both of a + b) is at 1e-17.
PD_TOL = 1e-14
LAW_JACOBIAN_MAX_DIM = 60   # D up to which flat directions come from the law's Jacobian


def flat_directions(guide, theta, Z) -> np.ndarray:
    """An orthonormal basis [P, k] of the directions in which the guide's law does not change.

    Such directions make the Hessian singular without any fault of the model, so they are
    projected out. Every family here is Gaussian, zeta = mean + B eps, so its law is fixed by
    (mean, B B'); the flat directions are the null space of that map's Jacobian (low rank:
    rotations of F, and more when D R + D exceeds the D (D + 1) / 2 entries of a covariance).
    Above LAW_JACOBIAN_MAX_DIM that Jacobian is too large: then only the parameters the family
    never reads (zero gradient of a random combination of draws and entropy: full rank's
    unused upper triangle) and low rank's rotations F -> F exp(t A), A antisymmetric.
    """
    D, P = len(guide.mean(theta)), theta.shape[0]
    if isinstance(guide, MeanField):
        return np.zeros((P, 0))
    if D <= LAW_JACOBIAN_MAX_DIM:
        rows, cols = np.triu_indices(D)
        eye = np.eye(guide.eps_dim(D))

        def law(t):
            B = guide.draw(t, eye) - guide.draw(t, 0 * eye[:1])   # [eps_dim, D] = B'
            return anp.concatenate([t[:D], (B.T @ B)[rows, cols]])
        _, singular, Vt = np.linalg.svd(jacobian(law)(theta))
        rank = int(np.sum(singular > 1e-9 * singular[0]))
        return Vt[rank:].T
    weights = np.random.default_rng(0).standard_normal((Z.shape[0], D))
    probe = grad(lambda t: anp.sum(guide.draw(t, Z) * weights) + guide.entropy(t))(theta)
    columns = [np.eye(P)[i] for i in np.flatnonzero(probe == 0)]
    if isinstance(guide, LowRank) and guide.R > 1:
        R = guide.R
        F = theta[2 * D:].reshape(D, R)
        for a in range(R):
            for b in range(a + 1, R):
                dF = np.zeros((D, R))
                dF[:, a], dF[:, b] = -F[:, b], F[:, a]
                columns.append(np.concatenate([np.zeros(2 * D), dF.ravel()]))
    if not columns:
        return np.zeros((P, 0))
    U, singular, _ = np.linalg.svd(np.stack(columns, axis=1), full_matrices=False)
    return U[:, singular > 1e-10 * singular[0]]


class Solver:
    """Solves H x = b on the complement of the flat directions (H: Hessian of F at theta).

    Up to ``max_dense`` identified parameters, H is formed on an orthonormal basis Q of the
    complement, one Hessian-vector product per column (or given: ``dense`` [P, P]), and
    factored (Cholesky), so that
    x = Q (Q' H Q)^-1 Q' b; above that, by conjugate gradients with the same products.
    Raises dadvi_not_positive_definite when the restricted H is not positive definite.
    """

    def __init__(self, product, null, names, dense: np.ndarray | None = None,
                 max_dense: int = 2000, scale: np.ndarray | None = None):
        self.product, self.null, self.names = product, null, names
        self.scale = scale     # [P] units of the parameters, or None: CG's preconditioner
        P, k = null.shape
        self.factor = None
        if P - k > max_dense:
            return
        self.Q = np.eye(P) if k == 0 else scipy.linalg.null_space(null.T)
        HQ = (dense @ self.Q if dense is not None
              else np.stack([product(q) for q in self.Q.T], axis=1))
        H = self.Q.T @ HQ
        self.factor = factor(0.5 * (H + H.T), self.Q, names)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H^-1 b for b [P] or [P, m]."""
        if self.factor is not None:
            return self.Q @ scipy.linalg.cho_solve(self.factor, self.Q.T @ b)
        if b.ndim == 2:
            return np.stack([self.solve(column) for column in b.T], axis=1)
        return cg(self._projected, self._project(b), self.names,
                  precondition=None if self.scale is None else self._preconditioned)

    def norm(self, v: np.ndarray) -> float:
        """sqrt(v' H v) (restricted to the complement of the flat directions)."""
        if self.factor is not None:
            upper, _ = self.factor                       # cho_factor's default: H = U' U
            return float(np.linalg.norm(np.triu(upper) @ (self.Q.T @ v)))
        projected = self._project(v)
        return float(np.sqrt(max(projected @ self._projected(projected), 0.0)))

    def mean_covariance(self, D: int) -> np.ndarray | None:
        """The mean block [D, D] of H^-1 (the guide's mean is theta[:D]), or None above
        ``max_dense``."""
        if self.factor is None:
            return None
        Qm = self.Q[:D]
        covariance = Qm @ scipy.linalg.cho_solve(self.factor, Qm.T)
        return 0.5 * (covariance + covariance.T)

    def _project(self, v):
        return v - self.null @ (self.null.T @ v)

    def _projected(self, v):
        return self._project(self.product(self._project(v)))

    def _preconditioned(self, r):
        # diag(scale^2): a mean's curvature is about 1 / its sd^2 and a log sd's about 2, so in
        # these units H is nearer the identity; projected, so CG stays on the complement
        return self._project(self.scale ** 2 * r)


def factor(H, Q, names):
    """The Cholesky factor of H (on the basis Q), or dadvi_not_positive_definite naming the
    elements along the flattest direction (dadvi_hessian_not_finite where H has NaN or inf)."""
    if not np.isfinite(H).all():
        raise dadvi_hessian_not_finite()
    values, vectors = np.linalg.eigh(H)
    if values[0] > PD_TOL * abs(values[-1]):
        return scipy.linalg.cho_factor(H)
    raise dadvi_not_positive_definite(_flat_names(Q @ vectors[:, 0], names))


def _flat_names(vector, names) -> list[str]:
    """Element names carrying most of a guide-parameter direction: by its mean part, or by the
    next D entries (mean field's and low rank's log sds) when the mean part is nil."""
    D = len(names)
    weight = np.abs(vector[:D])
    if weight.max() <= 1e-3 * np.linalg.norm(vector):
        weight = np.abs(vector[D:2 * D])
    order = np.argsort(-weight)
    return [names[i] for i in order[:3] if weight[i] >= 0.2 * weight[order[0]]]


def cg(product, b, names, tol: float = 1e-10, max_iter: int | None = None,
       precondition=None):
    """Solve H x = b by conjugate gradients with Hessian-vector products (large D),
    preconditioned by ``precondition`` (r -> M^-1 r, symmetric positive definite) if given;
    the stop is on the residual itself, ||H x - b|| <= tol ||b||, either way.

    Raises dadvi_not_positive_definite when a search direction has curvature <= 0.
    """
    x, r = np.zeros_like(b), b.copy()
    z = r if precondition is None else precondition(r)
    p, rz = z.copy(), r @ z
    for _ in range(max_iter or 10 * b.shape[0]):
        if np.linalg.norm(r) <= tol * np.linalg.norm(b):
            break
        Hp = product(p)
        curvature = p @ Hp
        if not np.isfinite(curvature):
            raise dadvi_hessian_not_finite()
        if not curvature > 0:
            raise dadvi_not_positive_definite(_flat_names(p, names))
        alpha = rz / curvature
        x, r = x + alpha * p, r - alpha * Hp
        z = r if precondition is None else precondition(r)
        rz_new = r @ z
        p, rz = z + (rz_new / rz) * p, rz_new
    return x
