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
import scipy.optimize
from autograd import grad, hessian_tensor_product, jacobian, value_and_grad

from ..errors import dadvi_not_converged, dadvi_not_finite, dadvi_not_positive_definite
from ..guides import LowRank, MeanField, family
from .advi import AdviResult
from .elbo import elbo

OPTIMIZERS = ("trust-krylov", "trust-ncg", "l-bfgs-b")
# From the Laplace start in whitened coordinates, L-BFGS-B took the fewest evaluations and the
# least time of the three on every posteriordb posterior, and then met the Newton-decrement
# rule everywhere: docs/dadvi.md
OPTIMIZER = "l-bfgs-b"
FALLBACK = "trust-krylov"    # continues where L-BFGS-B stops short of its gradient tolerance
MAX_ITER = 1000           # optimizer iterations
GTOL = 1e-6               # scipy's gradient-norm tolerance (the real test is DECREMENT_TOL)
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
LAPLACE_MAX_ITER = 200    # L-BFGS iterations for the mode of the Laplace start
LAPLACE_MAX_DIM = 1000    # D up to which the Laplace start forms the precision [D, D]
# The step of a finite-difference Hessian-vector product, in the guide's sds: truncation error
# ~ FD_STEP^2 ~ 1e-8 relatively, rounding ~ 1e-16 * (sum of the gradient's terms) / FD_STEP
FD_STEP = 1e-4
FORWARD_STEP = 1e-6       # forward differences: truncation ~ FORWARD_STEP, rounding ~ 1e-16 / it
POLISH_STEPS = 3          # Newton steps after the optimizer, at most
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
    evaluations : objective gradients and Hessian-vector products computed, each over M draws.
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
    deterministic function, minimized by ``scipy.optimize.minimize`` with exact gradients and
    Hessian-vector products from autograd, from the guide's usual start.

    At the optimum, with H the Hessian of F (formed from Hessian-vector products, on the
    complement of the family's flat directions, see _flat_directions):
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
    optimizer : one of OPTIMIZERS (scipy.optimize.minimize methods; the trust-region ones use
        Hessian-vector products).

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
    objective = _Objective(compiled.log_joint, guide, Z)
    theta0 = guide.init(D, options.init_scale)
    if not np.isfinite(objective(theta0)[0]):
        raise _not_finite(compiled, guide.draw(theta0, Z), M, "from the starting guide")
    theta0, precision = _laplace_start(compiled.log_joint, guide, theta0, objective)
    theta, result, trace = _minimize(objective, theta0, optimizer, progress, precision)
    theta, value, solver, decrement = _finish(objective, theta, names, compiled, guide, Z, M)
    if not decrement <= DECREMENT_TOL:
        raise dadvi_not_converged(optimizer, int(result.nit), decrement, str(result.message))
    per_draw = _per_draw_gradients(compiled.log_joint, guide, theta, Z)
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


class _Objective:
    """F(theta) = -ELBO at the fixed draws Z, its gradient and Hessian-vector products.

    Non-finite values become +inf, which both optimizers treat as a rejected point. The last
    value is cached, so the progress callback costs no extra evaluation.
    """

    def __init__(self, log_joint, guide, Z):
        def loss(theta):
            return -elbo(log_joint, theta, Z, guide)
        self._value_and_grad = value_and_grad(loss)
        self._exact_hvp = hessian_tensor_product(loss)
        self._zeta_gradient = grad(lambda zeta: anp.sum(log_joint(zeta)))
        self.guide, self.Z, self.evaluations, self.cache = guide, Z, 0, {}

    def __call__(self, theta):
        key = theta.tobytes()
        if key not in self.cache:
            self.evaluations += 1
            value, gradient = self._value_and_grad(theta)
            value = float(value) if np.isfinite(value) else np.inf
            # two entries: the iterate and a trial point (a rejected trial must not evict the
            # iterate, whose gradient the forward differences reuse)
            self.cache = {**dict(list(self.cache.items())[-1:]), key: (value, gradient)}
        return self.cache[key]

    def gradient(self, theta):
        """The gradient alone, uncached (a finite difference's ends are never revisited)."""
        self.evaluations += 1
        return self._value_and_grad(theta)[1]

    def hvp(self, theta, scale, central: bool = True):
        """v -> H(theta) v by finite differences of the gradient, in the units ``scale`` [P]
        (the guide's sds for its means, see guide.jitter_scale).

        Central differences (FD_STEP long: two gradients; exact up to rounding on a quadratic
        objective, ~1e-8 relatively otherwise) where the product must be accurate (the
        Hessian of the linear response), forward ones from the cached gradient at theta
        (FORWARD_STEP long: one gradient, ~1e-6) inside the optimizer. autograd's exact
        product (reverse over reverse) costs 3-4 gradients on small models and 12 on
        posteriordb diamonds (5,000 rows). The exact product is the fallback when an end of
        the difference is not finite.
        """
        def product(v):
            norm = np.linalg.norm(v / scale)
            if norm == 0:
                return np.zeros_like(v)
            if central:
                h = FD_STEP / norm
                difference = (self.gradient(theta + h * v) - self.gradient(theta - h * v)) / (2 * h)
            else:
                h = FORWARD_STEP / norm
                difference = (self.gradient(theta + h * v) - self(theta)[1]) / h
            if np.all(np.isfinite(difference)):
                return difference
            self.evaluations += 1
            return self._exact_hvp(theta, v)
        return product


def _mean_field_hessian(objective, theta) -> np.ndarray | None:
    """The [2 D, 2 D] Hessian of F for mean field, from the log joint's Hessians H_m at the
    draws zeta_m = mu + sigma z_m; None where some of them is not finite.

    With g_m the log joint's gradient at zeta_m and s_m = sigma * z_m [D], F = -mean_m log
    p(zeta_m) - sum(log sigma) - const has (subscripts: elements)
      d2F / dmu dmu' = -mean H_m,   d2F / dmu_i dlog sigma_j = -mean H_m[i, j] s_mj,
      d2F / dlog sigma_i dlog sigma_j = -mean s_mi H_m[i, j] s_mj - [i = j] mean g_mj s_mj.
    Column j of every H_m comes from one central difference of the gradient along e_j at
    all the draws at once, so the Hessian costs 2 D + 1 gradients over the draws, where
    forming it from products with F's Hessian costs two per parameter, 4 D.
    """
    D = theta.shape[0] // 2
    mu, sigma = theta[:D], np.exp(theta[D:])
    S = objective.Z.shape[0]
    zeta, spread = mu + sigma * objective.Z, sigma * objective.Z        # [S, D] each
    objective.evaluations += 1 + 2 * D
    g = objective._zeta_gradient(zeta)
    H = np.zeros((2 * D, 2 * D))
    for j in range(D):
        h = FD_STEP * sigma[j]
        ends = objective._zeta_gradient(np.concatenate([zeta, zeta]) + np.concatenate(
            [np.full(S, h), np.full(S, -h)])[:, None] * np.eye(D)[j])
        column = (ends[:S] - ends[S:]) / (2 * h)                          # [S, D]: H_m e_j
        H[:D, j] = -column.mean(axis=0)
        H[:D, D + j] = -(column * spread[:, j:j + 1]).mean(axis=0)
        H[D:, D + j] = -(spread * column * spread[:, j:j + 1]).mean(axis=0)
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(g))):
        return None
    H[D:, :D] = H[:D, D:].T
    H[D:, D:] -= np.diag((g * spread).mean(axis=0))
    return 0.5 * (H + H.T)


def _minimize(objective, theta0, optimizer, progress, precision=None):
    """Run scipy's minimizer; returns (theta, scipy's result, ELBO trace).

    It works in the coordinates u of _frame (theta = theta0 + T u): there the Hessian is near
    the identity when the start is near the optimum, and scipy's first trust radius (1) is
    about one posterior sd.
    """
    trace = []
    scale = _scale(theta0, objective.guide)
    forward, transpose = _frame(theta0, objective.guide, precision)

    def to_theta(u):
        return theta0 + forward(u)

    def scaled(u):
        value, gradient = objective(to_theta(u))
        return value, transpose(gradient)

    def callback(u):
        trace.append(-objective(to_theta(u))[0])
        if progress is not None:
            progress(len(trace), trace[-1], 0.0)

    def hessp(u, v):
        return transpose(objective.hvp(to_theta(u), scale, False)(forward(v)))

    def trust_region(method, u0):
        return scipy.optimize.minimize(scaled, u0, jac=True, method=method, callback=callback,
                                       hessp=hessp, options={"gtol": GTOL, "maxiter": MAX_ITER})

    u0 = np.zeros_like(theta0)
    if optimizer != "l-bfgs-b":
        result = trust_region(optimizer, u0)
    else:
        result = scipy.optimize.minimize(
            scaled, u0, jac=True, method="L-BFGS-B", callback=callback,
            # ftol 0: stop on the gradient, never on a small relative change of F
            options={"gtol": GTOL, "ftol": 0.0, "maxiter": MAX_ITER, "maxfun": 20 * MAX_ITER})
        if not np.max(np.abs(result.jac)) <= GTOL:
            # L-BFGS-B's line search cannot back off from a non-finite trial point (a wide
            # guide on a skewed posterior overflows); a trust region shrinks instead
            more = trust_region(FALLBACK, result.x)
            more.nit += result.nit
            result = more
    return to_theta(np.asarray(result.x, dtype=float)), result, trace


def _scale(theta, guide) -> np.ndarray:
    """[P] units of the guide's parameters: the marginal sd for a mean, 1 for a log sd."""
    return np.asarray(guide.jitter_scale(theta), dtype=float)


def _laplace_start(log_joint, guide, theta0, objective):
    """A start near the optimum: the guide at the mode of the log joint, with mean field's
    sds of the Laplace approximation there (1 / sqrt of the diagonal of the precision).

    The mode costs L-BFGS evaluations of ONE draw each; the precision one vectorized
    Hessian-vector product over D copies of the mode (up to LAPLACE_MAX_DIM; above, the start
    keeps theta0's sds). From there a second-order optimizer needs a few iterations instead of
    tens. It is kept only when the fixed-draw objective is lower there than at ``theta0`` (a
    funnel has no mode: the log joint grows without bound at its neck).

    Returns
    -------
    (start [P], the precision [D, D] at the mode, or None when theta0 is kept or D is large)
    """
    D = len(guide.mean(theta0))

    def negative(z):
        value, gradient = value_and_grad(lambda x: -log_joint(x[None, :])[0])(z)
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return np.inf, np.zeros_like(z)
        return float(value), gradient

    mode = scipy.optimize.minimize(negative, np.asarray(guide.mean(theta0), dtype=float),
                                   jac=True, method="L-BFGS-B",
                                   options={"maxiter": LAPLACE_MAX_ITER}).x
    if not np.all(np.isfinite(mode)):
        return theta0, None
    log_sd, precision = np.asarray(guide.log_sd(theta0), dtype=float), None
    if D <= LAPLACE_MAX_DIM:
        # row j of the product is H e_j at the j-th copy of the mode (rows are independent)
        rows = hessian_tensor_product(lambda Z: -anp.sum(log_joint(Z)))(np.tile(mode, (D, 1)),
                                                                         np.eye(D))
        precision, diagonal = 0.5 * (rows + rows.T), np.diag(rows)
        log_sd = np.where(np.isfinite(diagonal) & (diagonal > 0),
                          -0.5 * np.log(np.where(diagonal > 0, diagonal, 1.0)), log_sd)
    start = np.concatenate([mode, log_sd])
    if not isinstance(guide, MeanField):
        start = guide.warm_start(MeanField(), start)
    if objective(start)[0] < objective(theta0)[0]:
        return start, precision
    return theta0, None


def _frame(theta0, guide, precision):
    """theta = theta0 + T u, the optimizer's coordinates u: T scales every parameter by its
    unit (_scale), and on the means it is C with C C' = precision^-1 (the Laplace
    covariance) when that is positive definite, which whitens the means' block of the
    Hessian (the objective's Hessian there is the precision averaged over the draws).

    Returns
    -------
    (T: u -> T u, T': g -> T' g), both [P] -> [P].
    """
    scale = _scale(theta0, guide)
    D = len(guide.mean(theta0))
    C = np.diag(scale[:D])
    if precision is not None and np.all(np.isfinite(precision)):
        try:
            lower = np.linalg.cholesky(precision)          # precision = lower lower'
            C = scipy.linalg.solve_triangular(lower, np.eye(D), lower=True).T
        except np.linalg.LinAlgError:
            pass                                            # not positive definite: keep sds
    return (lambda u: np.concatenate([C @ u[:D], scale[D:] * u[D:]]),
            lambda g: np.concatenate([C.T @ g[:D], scale[D:] * g[D:]]))


def _finish(objective, theta, names, compiled, guide, Z, M):
    """Check the optimizer's end point and polish it by Newton steps.

    scipy's tolerances are on the gradient's norm, which depends on the model's scale; ours is
    the Newton decrement sqrt(g' H^-1 g). When the optimizer stops short of it (L-BFGS often
    does), up to POLISH_STEPS Newton steps finish the job; each needs the Hessian, which the
    linear response needs at the end anyway.

    Returns
    -------
    (theta, F(theta), its _Solver, Newton decrement)
    """
    null = _flat_directions(guide, theta, Z)
    for attempt in range(POLISH_STEPS + 1):
        value, gradient = objective(theta)
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            raise _not_finite(compiled, guide.draw(theta, Z), M, "where the optimizer stopped")
        dense = (_mean_field_hessian(objective, theta) if isinstance(guide, MeanField)
                 and theta.shape[0] <= MAX_DENSE_PARAMS else None)
        solver = _Solver(objective.hvp(theta, _scale(theta, guide)), null, names, dense)
        step = solver.solve(gradient)
        decrement = float(np.sqrt(max(gradient @ step, 0.0)))
        if (decrement <= DECREMENT_TOL or attempt == POLISH_STEPS
                or not objective(theta - step)[0] < value):
            return theta, value, solver, decrement
        theta = theta - step
    raise AssertionError("unreachable: the loop returns at its last attempt")


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


def _per_draw_gradients(log_joint, guide, theta, Z) -> np.ndarray:
    """[M, P] gradients of the draws' terms -log p(draw(theta, z_m)) (entropy left out: it is
    the same for every draw and cancels once centred).

    One reverse pass gives d log p / d zeta for all draws at once (the draws' terms are
    independent); the chain rule through the guide's cheap ``draw`` then costs M small passes.
    """
    zeta = guide.draw(theta, Z)
    dzeta = grad(lambda z: anp.sum(log_joint(z)))(zeta)
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
