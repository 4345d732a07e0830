"""Whitened coordinates for the guide's mean: the cure for correlated posteriors.

The mean-field family stays diagonal in the model's unconstrained space; only the coordinates
in which the optimizer moves ``mu`` change. With H = E_q[-Hessian of log p] (the posterior
precision, for a Gaussian posterior) and H = V diag(lam) V^T, we write
mu = m0 + L v with L = V diag(lam^-1/2), so that the ELBO is about isotropic in v. Plain
gradient steps on a posterior with correlation 0.99999 (posteriordb kilpisjarvi) need on the
order of the condition number, ~1e5 steps; in v they need tens. log_sigma is left as it is: its
gradient for coordinate i depends on H_ii alone.

Forming H takes D Hessian-vector products, which at a few hundred latents cost more than the
fit. Up to WHOLE_MAX_DIM latents ``estimate`` forms it whole by differences of the gradient
(``difference_hessian``: first order, so the compiler's fused kernels serve it). Above
WHOLE_MAX_DIM latents ``estimate`` takes RANK instead, whatever D: H is scaled by the guide's
sds s (P = S H S, S = diag(s), about unit diagonal for a mean-field fit; Adam rescales each
coordinate anyway) and Lanczos finds P's extreme eigenpairs, the correlated directions that
make the posterior badly conditioned (a long valley is an eigenvalue near 0, the pull of many
coordinates on a shared one an eigenvalue far above 1); on those k directions the mean moves in
coordinates of unit curvature, elsewhere in the guide's sds (``LowRank``).
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import grad

from ..blocks import trace_blocks
from . import control

# Eigenvalues below this fraction of the largest are raised to it: a direction the log density
# is flat or convex in (a funnel's neck, a heavy tail) must not get an unbounded step.
EIGEN_FLOOR = 1e-13
# Up to this D diagnostics.polish forms H whole (D exact products; beyond, its diagonal). The fit
# itself whitens at any D (advi._can_whiten): above WHOLE_MAX_DIM ``estimate`` costs RANK
# products whatever D, and on a Normal-Normal hierarchical model with an exact posterior at
# 400-3,000 latents the whitened fits' means and sds are as close to the best mean field as the
# unwhitened ones (benchmarks/whitening_cost.py --exact-accuracy). The cap of 300 once kept
# models/stochastic_volatility.ppl (403 latents) unwhitened, when whitening it missed the
# generating mu; fitted through its AR(1) innovations it no longer does (test_gallery.py).
MAX_DIM = 300
RANK = 20  # Lanczos steps (Hessian-vector products) of a low-rank estimate
# Draws of the guide a low-rank estimate averages its products over (the first of those given):
# the whitening needs P's rough shape, and each product is one gradient of 2 x this many draws,
# at 10,000 latents (50,000 rows) as costly as 8.5 fit steps with 20 draws. 10 of the 20 gave
# the same fits (docs/performance.md, whitening section).
PRODUCT_DRAWS = 10
# Up to this many latents H is formed whole (D differences of the gradient): posteriordb diamonds
# (26 latents, most of its directions badly conditioned) needs all of them whitened.
WHOLE_MAX_DIM = 30
# The finite-difference step of a Hessian-vector product or a column of H, in guide sds: the
# rounding error of the difference grows as 1 / step (at 0.01, posteriordb
# kidscore_interaction's unscaled predictors were not whitened: mean errors of 11 sds); the
# secant over +-0.3 sds is still the curvature at the guide's scale, which the draws average
# over anyway.
FD_STEP = 0.3
# The step of ``difference_hessian``'s forward differences (large data), in guide sds: their
# error is first order in it, so it is shorter than FD_STEP. At 0.03 H is as close to the
# traced one as the central differences at 0.3 make it on eight schools' funnel, and the error
# still falls as the step down to 1e-4 (rounding far below) on kidscore_interaction.
HESSIAN_STEP = 0.03
# The shortest finite-difference step of ``difference_hessian``, relative to the draws' size: a
# step in guide sds below the draws' float resolution moves them not at all. A mean-field guide
# far from a sharp optimum can shrink its sds to that in one window (y ~ Normal(b0, 0.001) with
# y near 1e6: b0 at 1000, its sd e^-62, when the first whitening came); H was then 0, the fit
# kept Adam's coordinates and stopped at the iteration cap 1e5 sds off. sqrt of the double
# precision's epsilon (forward differences' usual step) leaves about 8 digits of each difference.
RESOLUTION_STEP = 2.0 ** -26
BREAKDOWN = 1e-10  # a Lanczos residual this small (relative to |P|) spans an invariant subspace


@dataclass(frozen=True)
class LowRank:
    """mu - m0 = L v = diag(scale) (U diag(root) a + (I - U U^T) b) for v = (a [k], b [D]), U
    [D, k] orthonormal: L L^T = S (I + U diag(root^2 - 1) U^T) S, in O(D k) per product.

    The k directions get optimizer coordinates of their own (a) rather than mixing into the
    model's axes: Adam scales each coordinate by its gradient's size, and a valley direction's
    small, quiet gradient shared with a steep axis would be scaled by the steep one's.
    b moves in the rest (its gradient has no component along U)."""

    scale: np.ndarray
    U: np.ndarray
    root: np.ndarray

    @property
    def width(self) -> int:
        """The size of v: k + D."""
        return self.U.shape[1] + self.U.shape[0]

    def apply(self, v: np.ndarray) -> np.ndarray:
        """L v [D]."""
        k = self.U.shape[1]
        a, b = v[:k], v[k:]
        return self.scale * (self.U @ (self.root * a) + b - self.U @ (self.U.T @ b))

    def apply_t(self, g: np.ndarray) -> np.ndarray:
        """L^T g [k + D]."""
        h = self.scale * g
        c = self.U.T @ h
        return np.concatenate([self.root * c, h - self.U @ c])

    def solve(self, x: np.ndarray) -> np.ndarray:
        """The v [k + D] with L v = x and no component of b along U."""
        y = x / self.scale
        c = self.U.T @ y
        return np.concatenate([c / self.root, y - self.U @ c])

    def matrix(self) -> np.ndarray:
        """A square [D, D] factor with the same L L^T: S (I + U diag(root - 1) U^T)."""
        D = self.scale.shape[0]
        return self.scale[:, None] * (np.eye(D) + (self.U * (self.root - 1.0)) @ self.U.T)


@dataclass(frozen=True)
class Coordinates:
    """The optimizer's parameters ``params = (v, log_sigma [D])`` and the guide's
    ``theta = (mu = m0 + L v, log_sigma)``. ``L`` is a dense [D, D] matrix (v [D]), a
    ``LowRank`` (v [k + D]), or None for the identity (no whitening). ``control``: the matrix
    of a control variate the steps in these coordinates take out of the gradient (control.py;
    mean field with a dense ``L``), or None."""

    m0: np.ndarray
    L: np.ndarray | LowRank | None = None
    control: np.ndarray | None = None

    @property
    def keeps_step_size(self) -> bool:
        """Whether the fit keeps its step size in these coordinates rather than searching
        again (advi._run): True for a ``LowRank``, whose coordinates move the mean in guide sds
        (about posterior sds), a scale the step size found in the model's coordinates suits.
        The search, made near the optimum after one window, scores 50 steps by the ELBO, so the
        jitter of hundreds of coordinates outweighs the progress along the few slow ones: on
        models/stochastic_volatility.ppl it picked 0.01 for the 0.1 kept now, and the fit
        stopped 0.65 mean-field sds short of the mean-field optimum in phi and sigma (0.1 with
        the step kept; docs/performance.md, whitening section). A dense L (unit curvature,
        whatever the model's scale) still gets the search."""
        return isinstance(self.L, LowRank)

    def _width(self) -> int:
        return self.L.width if isinstance(self.L, LowRank) else self.m0.shape[0]

    def to_theta(self, params: np.ndarray) -> np.ndarray:
        if self.L is None:
            return params
        n = self._width()
        v = params[:n]
        moved = self.L.apply(v) if isinstance(self.L, LowRank) else self.L @ v
        return np.concatenate([self.m0 + moved, params[n:]])

    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        """The params at which ``to_theta`` gives ``theta`` (v = 0 at mu = m0)."""
        if self.L is None:
            return theta
        D = self.m0.shape[0]
        x = theta[:D] - self.m0
        v = self.L.solve(x) if isinstance(self.L, LowRank) else np.linalg.solve(self.L, x)
        return np.concatenate([v, theta[D:]])

    def pull_gradient(self, gradient: np.ndarray, theta: np.ndarray | None = None,
                      eps: np.ndarray | None = None) -> np.ndarray:
        """d/d params from d/d theta (chain rule: d/dv = L^T d/dmu), the ``control`` variate
        at theta and the step's draws ``eps`` taken out first where there is one."""
        if self.control is not None:
            gradient = control.corrected(gradient, theta, eps, self.control)
        if self.L is None:
            return gradient
        D = self.m0.shape[0]
        g = gradient[:D]
        pulled = self.L.apply_t(g) if isinstance(self.L, LowRank) else self.L.T @ g
        return np.concatenate([pulled, gradient[D:]])

    def matrix(self) -> np.ndarray | None:
        """A square [D, D] L (None for the identity), e.g. for a dense warm start."""
        return self.L.matrix() if isinstance(self.L, LowRank) else self.L


def dense(D: int) -> bool:
    """Whether ``estimate`` forms H whole (a dense whitening, which advi searches the step
    size in) for D latents, not a ``LowRank``."""
    return D <= WHOLE_MAX_DIM


def estimate(log_joint, theta: np.ndarray, draws: np.ndarray, sd: np.ndarray,
             chunk: int | None = None, jacobi: bool = False) -> Coordinates:
    """Whitened coordinates centred on theta's mu from the guide's ``draws`` [M, D] and
    marginal sds ``sd`` [D]: H formed whole (``difference_hessian``, D differences of the
    gradient, ``chunk`` draws or fewer a gradient where a column's draws fit, forward ones
    where a central column's 2 M do not) up to WHOLE_MAX_DIM latents, a ``LowRank`` from RANK
    Lanczos products over the first PRODUCT_DRAWS draws above; ``jacobi`` as ``whiten``'s."""
    D = draws.shape[1]
    if dense(D):
        return whiten(theta, difference_hessian(log_joint, draws, sd, chunk), jacobi)
    mu = theta[:D].copy()
    draws = draws[:PRODUCT_DRAWS]
    zeta = draws[np.isfinite(log_joint(draws))]
    if zeta.shape[0] == 0 or not np.all(np.isfinite(sd) & (sd > 0)):
        return Coordinates(mu)
    start = (zeta[0] - mu) / sd   # the first draw's noise: random, and fixed by the fit's seed
    values, vectors = lanczos(scaled_hessian_product(log_joint, zeta, sd), start, RANK)
    return whiten_low_rank(mu, sd, values, vectors)


def scaled_hessian_product(log_joint, zeta: np.ndarray, sd: np.ndarray):
    """x [D] -> P x = S (-E[Hessian of log p]) S x [D] over the draws ``zeta`` [M, D], by
    central differences of the gradient at zeta +- FD_STEP S x: one gradient of 2 M draws.

    Exact on a quadratic log density (up to rounding), O(FD_STEP^2) relatively otherwise (the
    step is longer where sds below the draws' float resolution need it, RESOLUTION_STEP). Only
    first derivatives, so the compiler's fused kernels serve it: on the generated hierarchical
    models of benchmarks/whitening_cost.py at 100-3,000 latents it costs 1.2-5x a 5-draw
    gradient, where the reverse-over-reverse product of ``expected_hessian`` costs 3-23x.
    """
    gradient = grad(lambda z: anp.sum(log_joint(z)))
    M = zeta.shape[0]
    # in sds: FD_STEP, or longer where that would not move a draw (RESOLUTION_STEP)
    width = max(FD_STEP, RESOLUTION_STEP * float(np.max(np.abs(zeta) / sd)))

    def product(x):
        step = width * sd * x
        g = gradient(np.concatenate([zeta + step, zeta - step]))
        return -sd * (g[:M] - g[M:]).sum(axis=0) / (2 * width * M)
    return product


def lanczos(product, start: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values [k] and orthonormal Ritz vectors [D, k] of the symmetric operator
    ``product`` after k = min(steps, D) Lanczos steps from ``start`` [D].

    Every new vector is orthogonalized against all earlier ones (k is small, and without it
    the converged extremes come back as copies). On a breakdown (an invariant subspace found:
    its Ritz pairs are exact) a fixed pseudo-random vector orthogonal to the basis goes on.
    """
    D = start.shape[0]
    k = min(steps, D)
    Q = np.zeros((D, k))
    T = np.zeros((k, k))
    q, restarts = start / np.linalg.norm(start), 0
    for j in range(k):
        Q[:, j] = q
        w = product(q)
        T[j, j] = q @ w
        w = w - Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
        w = w - Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)   # twice is enough (Giraud et al.)
        if j == k - 1:
            break
        beta = np.linalg.norm(w)
        if not beta > BREAKDOWN * max(np.abs(T[:j + 1, :j + 1]).max(), 1e-300):
            restarts += 1
            w = np.random.default_rng(restarts).standard_normal(D)
            w = w - Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
            w, beta = w / np.linalg.norm(w), 0.0
        else:
            w = w / beta
        T[j, j + 1] = T[j + 1, j] = beta
        q = w
    values, Y = np.linalg.eigh(T)
    return values, Q @ Y


def whiten_low_rank(mu: np.ndarray, sd: np.ndarray, values: np.ndarray,
                    vectors: np.ndarray) -> Coordinates:
    """Coordinates with L = diag(sd) (I + U (|lam|^-1/2 - 1) U^T) from P's Ritz pairs; the
    eigenvalues in absolute value and floored as in ``whiten`` (the rest of P counts as 1).
    Identity coordinates when the pairs are not finite."""
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(vectors))):
        return Coordinates(mu)
    lam = np.abs(values)
    lam = np.maximum(lam, EIGEN_FLOOR * max(lam.max(), 1.0))
    return Coordinates(mu, LowRank(sd.copy(), vectors, 1.0 / np.sqrt(lam)))


def difference_hessian(log_joint, zeta: np.ndarray, sd: np.ndarray,
                       chunk: int | None = None) -> np.ndarray:
    """-E[Hessian of log p] [D, D] over the draws ``zeta`` [M, D], column j by a difference of
    the gradient along e_j: central, at zeta +- FD_STEP sd_j e_j (2 D M draw-gradients), where a
    column's 2 M draws fit in one gradient of ``chunk`` draws; forward, from zeta to
    zeta + HESSIAN_STEP sd_j e_j ((D + 1) M draw-gradients, the gradient at zeta shared by the
    columns), where they do not.

    ``chunk``: draws a gradient may take (``optim.hessian_chunk`` of the model; below 2 M only
    above ~25,000 values a draw, i.e. on large data); None, a log density without its model:
    central, a column a gradient. There a draw-gradient costs in proportion
    to the draws, and the forward rule halves the cost: on the 10^5-row regression of
    benchmarks/end_to_end.py (D = 22, 20 draws) 47 5-draw gradients for the central 104. On
    small data one gradient of many draws (many central columns) costs about what one of M
    does, and the forward rule costs accuracy: its error is first order (HESSIAN_STEP / 2 times
    the gradient's second derivative in sd units; central: FD_STEP^2 / 6 times its third), and
    it cost posteriordb kidscore_interaction 2 of 20 fits (docs/performance.md, whitening
    section). Both are exact on a quadratic log density up to rounding, and first order, so
    the fused kernels serve them; each row of a gradient is the same whatever the chunk.

    A step is at least RESOLUTION_STEP of the column's largest draw, however small sd_j.

    Draws where the log joint is not finite are left out, and so is a draw from a column's
    mean when the log joint or the gradient is not finite at either end of its difference (no
    draw left: a NaN column, which ``whiten`` refuses); sds that are not positive and finite
    give a NaN H.
    """
    zeta = zeta[np.isfinite(log_joint(zeta))]  # a draw in a region of NaN would poison H
    M, D = zeta.shape
    if M == 0 or not np.all(np.isfinite(sd) & (sd > 0)):
        return np.full((D, D), np.nan)
    forward = chunk is not None and chunk < 2 * M
    step = np.maximum((HESSIAN_STEP if forward else FD_STEP) * sd,
                      RESOLUTION_STEP * np.abs(zeta).max(axis=0))
    # blocks of M draws: (coordinate, shift in steps); forward: first the draws themselves
    blocks = ([(0, 0.0)] + [(j, 1.0) for j in range(D)] if forward else
              [(j, sign) for j in range(D) for sign in (1.0, -1.0)])
    log_p, g = _shifted_gradients(log_joint, zeta, step, blocks, max(1, (chunk or 2 * M) // M))
    ends = [(1 + j, 0, step[j]) if forward else (2 * j, 2 * j + 1, 2 * step[j])
            for j in range(D)]
    H = -np.stack([_difference_column(log_p[a], g[a], log_p[b], g[b], width)
                   for a, b, width in ends], axis=1)
    return 0.5 * (H + H.T)


def _shifted_gradients(log_joint, zeta: np.ndarray, step: np.ndarray, blocks: list,
                       per: int) -> tuple[np.ndarray, np.ndarray]:
    """The log joint [B, M] and its gradient [B, M, D] at the draws ``zeta`` [M, D] moved by
    shift times step[j] along coordinate j, for each of the B blocks (j, shift); ``per``
    blocks a gradient."""
    M, D = zeta.shape
    log_p, g = [], []
    for first in range(0, len(blocks), per):
        part = blocks[first:first + per]
        shifted = np.concatenate([zeta] * len(part))
        for n, (j, shift) in enumerate(part):
            shifted[n * M:(n + 1) * M, j] += shift * step[j]
        # the gradient of the sum of log p (its VJP of ones), with the latents' blocks roots
        # of the trace (blocks.trace_blocks: value_and_grad's gradient, fewer traced ops)
        value, vjp = trace_blocks(log_joint, shifted)
        log_p.append(value)
        g.append(vjp(np.ones(shifted.shape[0])))
    return (np.concatenate(log_p).reshape(len(blocks), M),
            np.concatenate(g).reshape(len(blocks), M, D))


def _difference_column(log_p: np.ndarray, g: np.ndarray, log_p_to: np.ndarray,
                       g_to: np.ndarray, width: float) -> np.ndarray:
    """One column of ``difference_hessian``: the mean of (g - g_to) / width [D] over the draws
    where both log joints [M] and the difference of the gradients [M, D] are finite."""
    D = g.shape[1]
    difference = g - g_to
    kept = np.isfinite(log_p) & np.isfinite(log_p_to) & np.all(np.isfinite(difference), axis=1)
    return (difference[kept].sum(axis=0) / (width * kept.sum())
            if kept.any() else np.full(D, np.nan))


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


def whiten(theta: np.ndarray, H: np.ndarray, jacobi: bool = False) -> Coordinates:
    """Coordinates centred on theta's mu in which H becomes the identity.

    Eigenvalues are taken in absolute value (a negative one marks a direction of local
    convexity; its magnitude still measures the curvature) and floored at EIGEN_FLOOR times the
    largest. With ``jacobi`` (the frame a richer family is fitted in, advi._fit_family), where
    that floor would raise one, H is decomposed in Jacobi-scaled coordinates (unit diagonal)
    instead, as diagnostics.polish does: a regression on uncentred years and
    their squares (X = [1, year, year^2]) has a precision whose eigenvalues span 1e-22 of the
    largest, beyond float64's eigh, while the scaled one spans 5e-10; floored, the valley
    direction kept a curvature of 6e-9 in the new coordinates (a posterior sd of 1.3e4 where
    the family starts at 1), and full rank stopped 4.6 sds off. Not for mean field's own
    coordinates: there it moved the y * 1e-12 fits of tests/unit/test_diagnostics.py (seeds 0
    and 2: log s 0.61 and 0.69 sds off, sds 1.3-1.5x, where the floored form gives 0.05).
    Returns identity coordinates when H is not finite or has no positive curvature.
    """
    D = H.shape[0]
    mu = theta[:D].copy()
    if not np.all(np.isfinite(H)):
        return Coordinates(mu)
    lam, V = np.linalg.eigh(H)
    lam = np.abs(lam)
    if not lam.max() > 0:
        return Coordinates(mu)
    if jacobi and lam.min() < EIGEN_FLOOR * lam.max():
        diagonal = np.abs(np.diag(H))
        if np.all(diagonal > 0):
            scale = 1.0 / np.sqrt(diagonal)
            lam, V = np.linalg.eigh(H * scale[:, None] * scale[None, :])
            lam = np.abs(lam)
            V = scale[:, None] * V
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

    def chain(self, draw_with_pullback):
        """A family's ``draw_with_pullback`` in u made one in zeta (elbo._chained): its draws
        mapped by :meth:`to_zeta`, and a gradient g [S, D] in zeta pulled back to u by the very
        products of autograd's VJPs of to_zeta (g W for u W^T, g * W for a diagonal W). So the
        model's own log joint is traced alone, its latents' blocks roots of the trace
        (blocks.trace_blocks) where a traced Frame.log_joint slices them from a traced product:
        the same value and gradient, bit for bit, in a quarter less CPU a full-rank step on
        eight schools (docs/performance.md)."""
        W = self.W
        diagonal = np.ndim(W) == 1

        def framed(theta, eps):
            u, entropy, pullback = draw_with_pullback(theta, eps)
            return self.to_zeta(u), entropy, lambda g: pullback(g * W if diagonal else g @ W)
        return framed

    def terms(self, u):
        return self.compiled.terms(self.to_zeta(u))
