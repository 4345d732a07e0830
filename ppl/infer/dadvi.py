"""Deterministic ADVI (DADVI) with linear-response covariances and sandwich standard errors.

Giordano, Ingram and Broderick (2024), "Black Box Variational Inference with a Deterministic
Objective: Faster, More Accurate, and Even More Black Box", JMLR 25(18): fix M standard-normal
draws once, minimize the resulting deterministic -ELBO with a second-order method, then correct
the guide's covariance by linear response (LRVB) and estimate the error due to the fixed draws
(sandwich). The guide comes from ppl.guides, the ELBO from elbo.py; the Fit is built by api.py.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
import scipy.linalg
from autograd import grad, jacobian

from ..errors import dadvi_not_converged, dadvi_not_finite, dadvi_not_positive_definite
from ..guides import LowRank, MeanField, family
from .advi import AdviResult
from .dadvi_optimize import (NEAR, OPTIMIZER, Objective, laplace_start,
                             mean_field_hessian, minimize, scale_of)

# Converged when the Newton decrement sqrt(g' H^-1 g) at the end is below this: the Newton step
# left is then at most 1e-3 in the objective's own metric, i.e. about 1e-3 posterior sds, far
# below the Monte Carlo error of the fixed draws (about 1/sqrt(M) sds).
DECREMENT_TOL = 1e-3
# An eigenvalue of the Hessian below this fraction of the largest counts as zero. Round-off in
# the Hessian-vector products is about 1e-16 of the largest eigenvalue, and identified
# posteriors do reach 1e-12 (kilpisjarvi's (alpha, beta): condition number 7e11), while a
# direction left flat by a vague prior (Normal(0, 1e8) on both of a + b) is at 1e-17.
PD_TOL = 1e-14
LAW_JACOBIAN_MAX_DIM = 60   # D up to which flat directions come from the law's Jacobian
POLISH_STEPS = 10         # chord-Newton steps after the optimizer, at most
# Form the Hessian again (once) where the chord steps moved farther than this from where it was
# formed, in its own metric (posterior sds)
RECOMPUTE_MOVE = 0.1
MCSE_DRAWS = 500          # summary draws (each with its mirror) behind an MCSE's differences
MCSE_WARN = 0.25          # warn when an MCSE exceeds this fraction of its posterior sd
# Above this many identified guide parameters the Hessian is not formed (conjugate gradients
# instead) and the guide's own sds are reported: for mean field, D > 1000.
MAX_DENSE_PARAMS = 2000
LINEAR_RESPONSE = "linear response"
MEAN_FIELD_SDS = "guide"     # the guide's own sds (no linear response above the limit)
CONVERGED = "converged: Newton decrement < 1e-3"


@dataclass(frozen=True, kw_only=True)  # kw_only: AdviResult ends with a defaulted field
class DadviResult(AdviResult):
    """A DADVI fit: AdviResult's fields (``elbo`` is the fixed-draw ELBO at every optimizer
    iteration, ``steps`` the iterations, ``lr`` 0) and what DADVI adds.

    Attributes
    ----------
    draws_used : M, the fixed draws (each used with its mirror image: 2 M log-joint draws).
    lr_covariance : [D, D] linear-response covariance of the unconstrained parameters, or None
        above MAX_DENSE_PARAMS (then the guide's own sds are reported).
    mcse_directions : [P, M] A with A A' the sandwich covariance of the guide parameters due to
        the fixed draws (P = guide parameters); the MCSE of a mean is its derivative along A.
    sds : LINEAR_RESPONSE or MEAN_FIELD_SDS (the guide's own), which sds the draws and
        summary show.
    optimizer : the scipy method used.
    evaluations : gradients of the log joint over the 2 M fixed draws computed (a
        Hessian-vector product is one or two of them, see dadvi_optimize.Objective.hvp; the
        Laplace start's single-draw evaluations are not counted).
    """
    draws_used: int
    lr_covariance: np.ndarray | None
    mcse_directions: np.ndarray
    sds: str
    optimizer: str
    evaluations: int


def fit(compiled, options, rng: np.random.Generator,
        progress: Callable[[int, float, float], None] | None = None,
        optimizer: str = OPTIMIZER) -> DadviResult:
    """Fit the guide (``options.guide``: meanfield, fullrank or lowrank) by DADVI and compute
    its linear-response covariance and sandwich errors.

    The M = ``options.dadvi_draws`` standard-normal draws Z [M, D] are drawn once from ``rng``;
    the objective F(theta) = -(mean_m log p(draw(theta, z_m)) + H[q_theta]) is then an ordinary
    deterministic function, minimized by ``scipy.optimize.minimize`` with exact gradients
    (autograd) and finite-difference Hessian-vector products, from the Laplace start at the
    mode of the log joint when it is better than the guide's usual start, in coordinates
    whitened by the precision there (dadvi_optimize.py).

    At the optimum, with H the Hessian of F (mean field: from the log joint's per-draw
    Hessians; other families: from Hessian-vector products, on the complement of the family's
    flat directions, see _flat_directions):
    - linear response (paper section 3.3, after Giordano et al. 2018): the covariance of the
      unconstrained parameters is the mean block of H^-1, as E_q[zeta] = mu;
    - sandwich (paper section 4): with g_m the gradient of the m-th draw's term of F,
      Cov(theta_hat) ~ H^-1 Cov(g_m) H^-1 / M, stored as its square root ``mcse_directions``.

    Parameters
    ----------
    compiled : compiler.Compiled.
    options : FitOptions (dadvi_draws, init_scale).
    rng : the fit's Generator; the fixed draws come from it (same seed, identical result).
    progress : called as progress(iteration, ELBO at the fixed draws, 0.0) every iteration.
    optimizer : one of dadvi_optimize.OPTIMIZERS (scipy.optimize.minimize methods; the
        trust-region ones use Hessian-vector products).

    Raises
    ------
    PplError : dadvi_not_finite, dadvi_not_converged, dadvi_not_positive_definite.
    """
    # overflow at trial points is expected; the objective turns it into +inf, which the
    # optimizers reject, so numpy's warnings about it are noise
    with np.errstate(all="ignore"):
        return _fit(compiled, options, rng, progress, optimizer)


def _fit(compiled, options, rng, progress, optimizer) -> DadviResult:
    start_time = time.perf_counter()
    D, M = compiled.dim, options.dadvi_draws
    # 'auto' climbs families by k̂ for ADVI (infer/auto.py); DADVI fits its first, mean field
    guide = family("meanfield" if options.guide == "auto" else options.guide, D)
    names = tuple(compiled.unconstrained_names())
    if D == 0:
        value = float(np.mean(compiled.log_joint(np.zeros((1, 0)))))
        return DadviResult(guide, guide.init(0, options.init_scale), (), np.zeros(0), True,
                           CONVERGED, 0, time.perf_counter() - start_time, 0.0, value,
                           draws_used=M, lr_covariance=np.zeros((0, 0)),
                           mcse_directions=np.zeros((0, M)), sds=LINEAR_RESPONSE,
                           optimizer=optimizer, evaluations=0)
    # Antithetic pairs: every draw z_m is used with its mirror -z_m. The fixed-draw objective
    # is then exact for a Gaussian posterior (its mean and covariance need only the draws'
    # first two moments, and the mirrors make the first zero), so the optimum's mean has no
    # Monte Carlo error there, and little near one; the M pairs are the sandwich's units.
    half = rng.standard_normal((M, guide.eps_dim(D)))
    Z = np.concatenate([half, -half])
    objective = Objective(compiled.log_joint, guide, Z)
    theta0 = guide.init(D, options.init_scale)
    if not np.isfinite(objective(theta0)[0]):
        raise _not_finite(compiled, guide.draw(theta0, Z), M, "from the starting guide")
    theta0, precision = laplace_start(compiled.log_joint, guide, theta0, objective)
    theta, value, solver, decrement, result, trace = _optimize(
        objective, theta0, precision, optimizer, progress, (names, compiled, guide, Z, M))
    if not decrement <= DECREMENT_TOL:
        raise dadvi_not_converged(optimizer, int(result.nit), decrement, str(result.message))
    per_draw = _per_draw_gradients(objective, theta)
    units = 0.5 * (per_draw[:M] + per_draw[M:])      # one unit per antithetic pair
    centred = units - units.mean(axis=0)
    # Cov(g_m) of the M pairs with the M - 1 denominator; A A' = H^-1 Cov(g) H^-1 / M
    directions = solver.solve(centred.T / np.sqrt(M * (M - 1)))
    lr_covariance = solver.mean_covariance(D)
    sd = (np.exp(guide.log_sd(theta)) if lr_covariance is None
          else np.sqrt(np.diag(lr_covariance)))
    _warn_large_mcse(names, np.sqrt(np.sum(directions[:D] ** 2, axis=1)), sd, M)
    return DadviResult(
        guide, theta, names, np.asarray(trace, dtype=float), True, CONVERGED, int(result.nit),
        time.perf_counter() - start_time, 0.0, -float(value), draws_used=M,
        lr_covariance=lr_covariance, mcse_directions=directions,
        sds=MEAN_FIELD_SDS if lr_covariance is None else LINEAR_RESPONSE, optimizer=optimizer,
        evaluations=objective.evaluations)


def _optimize(objective, theta0, precision, optimizer, progress, context):
    """The optimizer, then chord-Newton steps (_finish).

    From the Laplace start (``precision`` given) and where the Hessian is formed (the linear
    response's), L-BFGS-B stops about NEAR posterior sds from the optimum and chord-Newton
    steps with that Hessian finish; when they do not reach DECREMENT_TOL (the Laplace
    whitening was poor: the posterior is far from its Laplace approximation), the optimizer
    resumes from there to its own tolerance, and _finish runs again.

    Returns
    -------
    (theta, F(theta), its _Solver, Newton decrement, scipy's result, ELBO trace)
    """
    near = precision is not None and theta0.shape[0] <= MAX_DENSE_PARAMS
    theta, result, trace = minimize(objective, theta0, optimizer, progress, precision,
                                    NEAR if near else None)
    theta, value, solver, decrement = _finish(objective, theta, *context)
    if near and not decrement <= DECREMENT_TOL:
        theta, more, trace = minimize(objective, theta, optimizer, progress, precision,
                                      trace=trace)
        more.nit += result.nit
        result = more
        theta, value, solver, decrement = _finish(objective, theta, *context)
    return theta, value, solver, decrement, result, trace


def _finish(objective, theta, names, compiled, guide, Z, M):
    """Check the optimizer's end point and finish by chord-Newton steps.

    scipy's tolerances are on the gradient's norm, which depends on the model's scale; ours is
    the Newton decrement sqrt(g' H^-1 g). The Hessian H, which the linear response needs
    anyway, is formed once where the optimizer stopped; then each step theta - H^-1 g(theta)
    takes a fresh gradient (one evaluation) with that same H (chord Newton: it converges
    linearly, at the rate at which H changes along the way, which on a near-Gaussian posterior
    is small), up to POLISH_STEPS of them. H is formed again, once, where the steps have moved
    more than RECOMPUTE_MOVE posterior sds (in H's metric) from where it was formed, or where a
    step fails to decrease F; the linear response and the sandwich use the last H formed.

    Returns
    -------
    (theta, F(theta), its _Solver, Newton decrement)
    """
    null = _flat_directions(guide, theta, Z)
    value, gradient = _checked(objective, theta, compiled, guide, Z, M)
    solver, anchor, formed = _hessian(objective, theta, guide, null, names), theta, 1
    for attempt in range(POLISH_STEPS + 1):
        step = solver.solve(gradient)
        decrement = float(np.sqrt(max(gradient @ step, 0.0)))
        if decrement <= DECREMENT_TOL or attempt == POLISH_STEPS:
            break
        trial_value, trial_gradient = objective(theta - step)
        if trial_value < value:
            theta, value, gradient = theta - step, trial_value, trial_gradient
            moved = theta - anchor
            if formed == 1 and solver.norm(moved) > RECOMPUTE_MOVE:
                solver, anchor, formed = _hessian(objective, theta, guide, null, names), theta, 2
        elif formed == 1 and theta is not anchor:
            solver, anchor, formed = _hessian(objective, theta, guide, null, names), theta, 2
        else:
            break
    _checked(objective, theta, compiled, guide, Z, M)
    return theta, value, solver, decrement


def _checked(objective, theta, compiled, guide, Z, M):
    """F and its gradient at theta, or dadvi_not_finite where they are not finite."""
    value, gradient = objective(theta)
    if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
        raise _not_finite(compiled, guide.draw(theta, Z), M, "where the optimizer stopped")
    return value, gradient


def _hessian(objective, theta, guide, null, names) -> "_Solver":
    """The _Solver of F's Hessian at theta (mean field's from per-draw Hessians)."""
    dense = (mean_field_hessian(objective, theta) if isinstance(guide, MeanField)
             and theta.shape[0] <= MAX_DENSE_PARAMS else None)
    return _Solver(objective.hvp(theta, scale_of(theta, guide)), null, names, dense)


def _flat_directions(guide, theta, Z) -> np.ndarray:
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


class _Solver:
    """Solves H x = b on the complement of the flat directions (H: Hessian of F at theta).

    Up to MAX_DENSE_PARAMS identified parameters, H is formed on an orthonormal basis Q of the
    complement, one Hessian-vector product per column (or given: ``dense`` [P, P]), and
    factored (Cholesky), so that
    x = Q (Q' H Q)^-1 Q' b; above that, by conjugate gradients with the same products.
    Raises dadvi_not_positive_definite when the restricted H is not positive definite.
    """

    def __init__(self, product, null, names, dense: np.ndarray | None = None):
        self.product, self.null, self.names = product, null, names
        P, k = null.shape
        self.factor = None
        if P - k > MAX_DENSE_PARAMS:
            return
        self.Q = np.eye(P) if k == 0 else scipy.linalg.null_space(null.T)
        HQ = (dense @ self.Q if dense is not None
              else np.stack([product(q) for q in self.Q.T], axis=1))
        H = self.Q.T @ HQ
        self.factor = _factor(0.5 * (H + H.T), self.Q, names)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H^-1 b for b [P] or [P, m]."""
        if self.factor is not None:
            return self.Q @ scipy.linalg.cho_solve(self.factor, self.Q.T @ b)
        if b.ndim == 2:
            return np.stack([self.solve(column) for column in b.T], axis=1)
        return _cg(self._projected, self._project(b), self.names)

    def norm(self, v: np.ndarray) -> float:
        """sqrt(v' H v) (restricted to the complement of the flat directions)."""
        if self.factor is not None:
            upper, _ = self.factor                       # cho_factor's default: H = U' U
            return float(np.linalg.norm(np.triu(upper) @ (self.Q.T @ v)))
        projected = self._project(v)
        return float(np.sqrt(max(projected @ self._projected(projected), 0.0)))

    def mean_covariance(self, D: int) -> np.ndarray | None:
        """The mean block [D, D] of H^-1 (the guide's mean is theta[:D]), or None above
        MAX_DENSE_PARAMS."""
        if self.factor is None:
            return None
        Qm = self.Q[:D]
        covariance = Qm @ scipy.linalg.cho_solve(self.factor, Qm.T)
        return 0.5 * (covariance + covariance.T)

    def _project(self, v):
        return v - self.null @ (self.null.T @ v)

    def _projected(self, v):
        return self._project(self.product(self._project(v)))


def _factor(H, Q, names):
    """The Cholesky factor of H (on the basis Q), or dadvi_not_positive_definite naming the
    elements along the flattest direction."""
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


def _cg(product, b, names, tol: float = 1e-10, max_iter: int | None = None):
    """Solve H x = b by conjugate gradients with Hessian-vector products (large D).

    Raises dadvi_not_positive_definite when a search direction has curvature <= 0.
    """
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(max_iter or 10 * b.shape[0]):
        if np.sqrt(rr) <= tol * np.linalg.norm(b):
            break
        Hp = product(p)
        curvature = p @ Hp
        if not curvature > 0:
            raise dadvi_not_positive_definite(_flat_names(p, names))
        alpha = rr / curvature
        x, r = x + alpha * p, r - alpha * Hp
        rr_new = r @ r
        p, rr = r + (rr_new / rr) * p, rr_new
    return x


def _per_draw_gradients(objective, theta) -> np.ndarray:
    """[M, P] gradients of the draws' terms -log p(draw(theta, z_m)) (entropy left out: it is
    the same for every draw and cancels once centred).

    d log p / d zeta at all the draws comes from the objective's (cached) evaluation at theta
    (the draws' terms are independent); the chain rule through the guide's cheap ``draw`` then
    costs M small passes.
    """
    guide, Z = objective.guide, objective.Z
    dzeta = objective.draw_gradients(theta)
    return -jacobian(lambda t: anp.sum(guide.draw(t, Z) * dzeta, axis=1))(theta)


def mean_mcse(compiled, result, eps: np.ndarray, step: float = 1e-3) -> dict[str, np.ndarray]:
    """Monte Carlo standard error of the posterior mean of every reported quantity.

    The delta method on the sandwich covariance A A' of the guide parameters: the MCSE of
    E_q[f] is the norm of its derivatives along A's columns, each by a central difference of
    the mean of f over the draws zeta = draw(theta, eps), eps and -eps (the same eps on both
    sides, so the difference is smooth). For an unconstrained coordinate this is exactly sqrt((A A')_ii).

    Parameters
    ----------
    compiled : compiler.Compiled.
    result : DadviResult.
    eps : [n, eps_dim] standard normal; the summary's own draws (the first MCSE_DRAWS used).
    step : the central difference's step along each column of A (columns are MCSE-sized).

    Returns
    -------
    name -> [*shape] MCSE of the mean of each reported latent and let.
    """
    guide, theta = result.guide, np.asarray(result.theta, dtype=float)
    # 2 M passes of the model's forward code over these draws: the first MCSE_DRAWS suffice for
    # an error bar (common draws on both sides of each difference keep its noise small)
    eps = np.asarray(eps)[:MCSE_DRAWS]
    # mirrored draws: E_q of a linear f does not depend on the scales, and with the mirrors
    # the draws' average does not either, so the summary's own Monte Carlo noise does not leak
    # into the derivatives (for a Gaussian posterior the MCSE is then exactly zero)
    eps = np.concatenate([eps, -eps])

    def mean(t):
        return {k: np.asarray(v, dtype=float).mean(axis=0)
                for k, v in compiled.constrained(guide.draw(t, eps)).items()}

    total = None
    for a in np.asarray(result.mcse_directions).T:
        up, down = mean(theta + step * a), mean(theta - step * a)
        squares = {k: ((up[k] - down[k]) / (2 * step)) ** 2 for k in up}
        total = squares if total is None else {k: total[k] + squares[k] for k in total}
    return {k: np.sqrt(v) for k, v in (total or {}).items()}


def _warn_large_mcse(names, mcse, sd, M) -> None:
    ratio = mcse / sd
    worst = int(np.argmax(ratio))
    if ratio[worst] > MCSE_WARN:
        warnings.warn(f"DADVI's Monte Carlo error of the mean of {names[worst]} is "
                      f"{ratio[worst]:.2f} posterior sds with {M} fixed draws; "
                      "more --dadvi-draws are needed for a reliable mean", stacklevel=3)


def _not_finite(compiled, zeta, M, where):
    """dadvi_not_finite, blaming the first statement not finite at some of the draws zeta."""
    for statement, values in compiled.terms(zeta):
        values = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(values)):
            bad = values[~np.isfinite(values)][0]
            what = "nan" if np.isnan(bad) else ("-inf" if bad < 0 else "inf")
            return dadvi_not_finite(getattr(statement, "span", None), what, M, where)
    return dadvi_not_finite(None, "not finite (or its gradient is)", M, where)
