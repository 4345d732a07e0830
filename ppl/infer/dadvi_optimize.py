"""DADVI's fixed-draw objective and its minimization (used by dadvi.py).

The objective F(theta) = -ELBO at the fixed draws, its gradient (autograd) and its
Hessian-vector products (finite differences of the gradient); the Laplace start at the mode of
the log joint; the optimizer's whitened coordinates; scipy's minimizers; and mean field's
Hessian from the log joint's per-draw Hessians, which the linear response uses.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import scipy.linalg
import scipy.optimize
from autograd import grad, hessian_tensor_product, value_and_grad

from ..errors import dadvi_unbounded
from ..guides import MeanField
from .elbo import elbo

OPTIMIZERS = ("trust-krylov", "trust-ncg", "l-bfgs-b")
# From the Laplace start in whitened coordinates, L-BFGS-B took the fewest evaluations and the
# least time of the three on every posteriordb posterior, and then met the Newton-decrement
# rule everywhere: docs/dadvi.md
OPTIMIZER = "l-bfgs-b"
FALLBACK = "trust-krylov"    # continues where L-BFGS-B stops short of its gradient tolerance
FALLBACK_ITER = 50          # its iterations after L-BFGS-B's whole budget (minimize)
MAX_ITER = 1000           # optimizer iterations
GTOL = 1e-6               # scipy's gradient-norm tolerance (the real test is dadvi's decrement)
# Where dadvi.py forms the Hessian anyway (the linear response needs it), L-BFGS-B stops
# about this many posterior sds from the optimum (the norm of the gradient in its whitened
# coordinates) and chord-Newton steps with that one Hessian finish (dadvi._finish): each
# costs one gradient, where L-BFGS-B took several per digit
NEAR = 0.05
LAPLACE_MAX_ITER = 200    # L-BFGS iterations for the mode of the Laplace start
# The mode search's L-BFGS-B stops when -log p's relative reduction is below this (scipy's
# default: 2.2e-9), and chord-Newton steps with the precision finish it (_newton_steps):
# each costs one single-draw evaluation where L-BFGS-B took several per digit on an
# ill-conditioned posterior (nes2000: 85 single draws and one step at the default, 65 and
# one step at 1e-6)
LAPLACE_FTOL = 1e-6
MODE_TOL = 1e-3           # the mode's Newton decrement (Laplace sds) the steps stop at
MODE_STEPS = 5            # chord-Newton steps on the mode, at most
LAPLACE_MAX_DIM = 1000    # D up to which the Laplace start forms the precision [D, D]
# The step of a finite-difference Hessian-vector product, in the guide's sds: truncation error
# ~ FD_STEP^2 ~ 1e-8 relatively, rounding ~ 1e-16 * (sum of the gradient's terms) / FD_STEP
FD_STEP = 1e-4
FORWARD_STEP = 1e-6       # forward differences: truncation ~ FORWARD_STEP, rounding ~ 1e-16 / it
# Mean field's Hessian (forward differences, in the guide's sds): truncation ~ HESSIAN_STEP
# times the log density's third derivative in sd units, rounding ~ 1e-16 / HESSIAN_STEP times
# the sum of the gradient's terms (thousands of data terms cancel). On the 13 near-Gaussian
# posteriordb posteriors the LR sds moved from the central differences' by at most 3e-6
# relatively at 1e-6, 1.5e-5 at 1e-7 and 6.6e-5 at sqrt(machine epsilon) (rounding wins)
HESSIAN_STEP = 1e-6


class Objective:
    """F(theta) = -ELBO at the fixed draws Z, its gradient and Hessian-vector products.

    Non-finite values become +inf, which the optimizers treat as a rejected point. The last
    two values are cached, so the progress callback costs no extra evaluation.
    ``evaluations`` counts the gradients computed, each over all the fixed draws.
    """

    def __init__(self, log_joint, guide, Z):
        def loss(theta):
            return -elbo(log_joint, theta, Z, guide)
        self._exact_hvp = hessian_tensor_product(loss)
        self._log_joint_and_grad = value_and_grad(lambda zeta: anp.sum(log_joint(zeta)))
        # F's gradient from the draws' gradients G [S, D]: the chain rule through the guide's
        # cheap draw, and the entropy's gradient
        self._chain = grad(lambda t, G: anp.sum(guide.draw(t, Z) * G) / Z.shape[0]
                           + guide.entropy(t))
        self.guide, self.Z, self.evaluations, self.cache = guide, Z, 0, {}

    def __call__(self, theta):
        """(F(theta), its gradient [P]); F is +inf where not finite."""
        return self._evaluate(theta)[:2]

    def draw_gradients(self, theta) -> np.ndarray:
        """[S, D] gradients of log p at the draws zeta_s = draw(theta, z_s), from the same
        (cached) evaluation as F's gradient: the linear response's Hessian and the sandwich
        reuse the optimizer's last one."""
        return self._evaluate(theta)[2]

    def _evaluate(self, theta):
        key = theta.tobytes()
        if key not in self.cache:
            self.evaluations += 1
            try:
                total, G = self._log_joint_and_grad(self.guide.draw(theta, self.Z))
                value = -(total / self.Z.shape[0] + self.guide.entropy(theta))
                value = float(value) if np.isfinite(value) else np.inf
                gradient = -self._chain(theta, G)
            except np.linalg.LinAlgError:
                # a low rank's matrix singular at a trial point (kilpisjarvi): F is +inf
                # there, which the optimizers reject, as past a support's edge
                value, gradient = np.inf, np.full(np.shape(theta), np.nan)
                G = np.full((self.Z.shape[0], len(self.guide.mean(theta))), np.nan)
            # two entries: the iterate and a trial point (a rejected trial must not evict the
            # iterate, whose gradient the forward differences reuse)
            self.cache = {**dict(list(self.cache.items())[-1:]), key: (value, gradient, G)}
        return self.cache[key]

    def gradient(self, theta):
        """The gradient alone, uncached (a finite difference's ends are never revisited); nan
        where F is not finite: past a support's edge autograd's gradient can stay finite (log
        z's is 1/z at z < 0), and a difference across the edge gave a finite, wrong product."""
        self.evaluations += 1
        try:
            total, G = self._log_joint_and_grad(self.guide.draw(theta, self.Z))
            if np.isfinite(total):
                return -self._chain(theta, G)
        except np.linalg.LinAlgError:
            # a low rank's draw where its matrix is singular, at an end of a difference
            # (kilpisjarvi: 'Singular matrix', an internal error): not finite there either
            pass
        return np.full(np.shape(theta), np.nan)

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


def mean_field_hessian(objective, theta) -> np.ndarray | None:
    """The [2 D, 2 D] Hessian of F for mean field, from the log joint's Hessians H_m at the
    draws zeta_m = mu + sigma z_m; None where some of them is not finite.

    With g_m the log joint's gradient at zeta_m and s_m = sigma * z_m [D], F = -mean_m log
    p(zeta_m) - sum(log sigma) - const has (subscripts: elements)
      d2F / dmu dmu' = -mean H_m,   d2F / dmu_i dlog sigma_j = -mean H_m[i, j] s_mj,
      d2F / dlog sigma_i dlog sigma_j = -mean s_mi H_m[i, j] s_mj - [i = j] mean g_mj s_mj.
    Column j of every H_m comes from one forward difference of the gradient along e_j at all
    the draws at once, from the g_m of F's own (cached) evaluation at theta, so the Hessian
    costs D gradients over the draws beyond it, where central differences cost 2 D and
    products with F's Hessian 2 D (forward) or 4 D (central).
    """
    D = theta.shape[0] // 2
    sigma = np.exp(theta[D:])
    spread = sigma * objective.Z                                          # [S, D]
    g = objective.draw_gradients(theta)
    zeta = np.asarray(objective.guide.draw(theta, objective.Z))        # where g was taken
    objective.evaluations += D
    H = np.zeros((2 * D, 2 * D))
    for j in range(D):
        h = HESSIAN_STEP * sigma[j]
        # (zeta + h e_j) - zeta, the step actually taken after rounding
        shifted = zeta.copy()
        shifted[:, j] += h
        column = (objective._log_joint_and_grad(shifted)[1] - g) / (shifted[:, j:j + 1]
                                                                      - zeta[:, j:j + 1])
        H[:D, j] = -column.mean(axis=0)
        H[:D, D + j] = -(column * spread[:, j:j + 1]).mean(axis=0)
        H[D:, D + j] = -(spread * column * spread[:, j:j + 1]).mean(axis=0)
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(g))):
        return None
    H[D:, :D] = H[:D, D:].T
    H[D:, D:] -= np.diag((g * spread).mean(axis=0))
    return 0.5 * (H + H.T)


def minimize(objective, theta0, optimizer, progress, precision=None, stop=None,
             trace=None):
    """Run scipy's minimizer; returns (theta, scipy's result, ELBO trace); the result's
    ``reached`` says whether it stopped at its gradient tolerance (or at ``stop``).

    It works in the coordinates u of _frame (theta = theta0 + T u): there the Hessian is near
    the identity when the start is near the optimum, and scipy's first trust radius (1) is
    about one posterior sd. L-BFGS-B works in v = u / c (_first_unit), so that its first
    trial step is the Newton step of the Laplace approximation. With ``stop`` (L-BFGS-B only),
    it stops as soon as the gradient in u has a norm <= stop, about the Newton step left in
    posterior sds (where Newton steps will finish the job: dadvi._finish), possibly at the
    start itself. ``trace``: a list to extend (when the optimizer resumes), else a new one.
    """
    trace = [] if trace is None else trace

    def record(theta):
        trace.append(-objective(theta)[0])
        if progress is not None:
            progress(len(trace), trace[-1], 0.0)

    scale = scale_of(theta0, objective.guide)
    frame, transpose = _frame(theta0, objective.guide, precision, objective.Z)
    unit = 1.0
    if optimizer == "l-bfgs-b" and precision is not None:
        unit = _first_unit(transpose(objective(theta0)[1]))

    def to_theta(v):
        return theta0 + frame(unit * v)

    def scaled(v):
        value, gradient = objective(to_theta(v))
        return value, unit * transpose(gradient)

    def near(v):
        return stop is not None and np.linalg.norm(scaled(v)[1]) <= unit * stop

    def callback(v):
        record(to_theta(v))
        if optimizer == "l-bfgs-b" and near(v):
            raise StopIteration        # scipy then returns this iterate

    def hessp(v, w):
        return unit ** 2 * transpose(objective.hvp(to_theta(v), scale, False)(frame(w)))

    # the gradient tolerance holds in u whatever the unit (the gradient in v is unit times it)
    def trust_region(method, v0, iterations=None):
        return scipy.optimize.minimize(scaled, v0, jac=True, method=method, callback=callback,
                                       hessp=hessp,
                                       options={"gtol": unit * GTOL,
                                                "maxiter": iterations or MAX_ITER})

    v0 = np.zeros_like(theta0)
    if optimizer != "l-bfgs-b":
        result = trust_region(optimizer, v0)
    elif near(v0):
        result = scipy.optimize.OptimizeResult(x=v0, nit=0, message="the start is near enough")
    else:
        result = scipy.optimize.minimize(
            scaled, v0, jac=True, method="L-BFGS-B", callback=callback,
            # ftol 0: stop on the gradient, never on a small relative change of F
            options={"gtol": unit * GTOL, "ftol": 0.0, "maxiter": MAX_ITER,
                     "maxfun": 20 * MAX_ITER})
        if not np.all(np.isfinite(result.x)):
            # the objective fell without bound (a last finite F of -7.5e269 on an improper
            # model), until a step overflowed to NaN
            raise dadvi_unbounded(max([*trace, -objective(theta0)[0]]))
        if not (np.max(np.abs(result.jac)) <= unit * GTOL or near(result.x)):
            # L-BFGS-B's line search cannot back off from a non-finite trial point (a wide
            # guide on a skewed posterior overflows); a trust region shrinks instead. After
            # L-BFGS-B's whole budget, FALLBACK_ITER iterations at most: varying_slopes under
            # full rank (P = 2,162) ended its 1,000 at a gradient of 1.1, and the fallback's
            # 1,000 then ran past 15 minutes (16,356 Hessian-vector products in the first);
            # diamonds' full rank needed 8 there
            more = trust_region(FALLBACK, result.x, min(FALLBACK_ITER, MAX_ITER)
                                if result.nit >= MAX_ITER else None)
            more.nit += result.nit
            result = more
    # whether it stopped at its tolerance (or near enough for Newton steps): elsewhere the
    # Hessian says nothing of the model (dadvi._optimize)
    result.reached = bool("jac" not in result or np.max(np.abs(result.jac)) <= unit * GTOL
                          or near(result.x))
    return to_theta(np.asarray(result.x, dtype=float)), result, trace


def _first_unit(gradient) -> float:
    """c, the length in u of L-BFGS-B's unit: its first trial step is -g / |g| in its own
    coordinates v = u / c, i.e. c in u; c = |g| (up to 1) makes that step u = -g, the Newton
    step of the Laplace approximation, whose Hessian is the identity in u.

    At 1 (scipy's own first step), a start 0.33 posterior sds from the optimum (nes2000) made
    L-BFGS-B's line search overshoot 3-fold and back off (two gradients), where u = -g landed
    within 0.05 sds (one gradient). Above 1 the step stays 1 (a start far off, or a posterior
    far from its Laplace approximation: a longer step may overflow). After the first
    iteration L-BFGS-B scales its own curvature (s'y / y'y), so the unit no longer matters.
    """
    norm = float(np.linalg.norm(gradient))
    return min(norm, 1.0) if np.isfinite(norm) and norm > 0 else 1.0


def scale_of(theta, guide) -> np.ndarray:
    """[P] units of the guide's parameters: the marginal sd for a mean, 1 for a log sd."""
    return np.asarray(guide.jitter_scale(theta), dtype=float)


def laplace_start(log_joint, guide, theta0, objective):
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

    found = scipy.optimize.minimize(negative, np.asarray(guide.mean(theta0), dtype=float),
                                    jac=True, method="L-BFGS-B",
                                    options={"maxiter": LAPLACE_MAX_ITER, "ftol": LAPLACE_FTOL})
    mode = found.x
    if not np.all(np.isfinite(mode)):
        return theta0, None
    log_sd, precision = np.asarray(guide.log_sd(theta0), dtype=float), None
    if D <= LAPLACE_MAX_DIM:
        # row j of the product is H e_j at the j-th copy of the mode (rows are independent)
        rows = hessian_tensor_product(lambda Z: -anp.sum(log_joint(Z)))(np.tile(mode, (D, 1)),
                                                                         np.eye(D))
        precision, diagonal = 0.5 * (rows + rows.T), np.diag(rows)
        mode = _newton_steps(negative, found, precision)
        log_sd = np.where(np.isfinite(diagonal) & (diagonal > 0),
                          -0.5 * np.log(np.where(diagonal > 0, diagonal, 1.0)), log_sd)
        if isinstance(guide, MeanField):
            log_sd = _fixed_draw_log_sds(precision, objective.Z, log_sd)
    start = np.concatenate([mode, log_sd])
    if not isinstance(guide, MeanField):
        start = guide.warm_start(MeanField(), start)
    if objective(start)[0] < objective(theta0)[0]:
        return start, precision
    return theta0, None


def _newton_steps(negative, found, precision) -> np.ndarray:
    """The mode after chord-Newton steps from L-BFGS-B's end ``found`` with the precision
    there (one single-draw evaluation each), up to MODE_STEPS: the first always, the others
    while the Newton decrement sqrt(g' P^-1 g) (the step left in the Laplace approximation's
    sds) is above MODE_TOL; a step that fails to lower -log p is not taken, and ends them.

    L-BFGS-B stops on a small relative change of -log p, which on an ill-conditioned posterior
    (posteriordb diamonds: 26 correlated predictors) leaves the mode many posterior sds off
    along the flat directions (the fixed-draw optimum was 11.6 sds, in the objective's own
    metric, from the start built on it); on a near-quadratic log density one Newton step lands
    on the mode, and the decrement says when no more are needed.
    """
    try:
        factor = scipy.linalg.cho_factor(precision)
    except (np.linalg.LinAlgError, ValueError):
        return found.x                        # not positive definite (or not finite)
    x, value, gradient = found.x, found.fun, found.jac
    for attempt in range(MODE_STEPS):
        step = scipy.linalg.cho_solve(factor, gradient)
        # the first step always (on a quadratic log density it lands on the mode to rounding)
        if attempt > 0 and not np.sqrt(max(gradient @ step, 0.0)) > MODE_TOL:   # or nan
            break
        trial, trial_gradient = negative(x - step)
        if not trial < value:
            break
        x, value, gradient = x - step, trial, trial_gradient
    return x


def _fixed_draw_log_sds(precision, Z, log_sd) -> np.ndarray:
    """Mean field's log sds at the optimum of the fixed-draw objective for the Laplace
    approximation N(mode, precision^-1), with the mean at the mode; ``log_sd`` (the diagonal
    rule 1 / sqrt(precision_ii), exact for infinitely many draws) where that fails.

    For a Gaussian target the objective at the draws Z [S, D] is, up to constants,
    0.5 sigma' A sigma - sum(log sigma) with A = precision * (Z' Z / S) (elementwise) when the
    draws' mean is zero (mirrored draws; then the mean's optimum is the mode whatever sigma).
    Z' Z / S differs from the identity by ~ 1 / sqrt(S) per element, which moves the fixed-draw
    optimum's log sds off the diagonal rule: solving for them here (no log-joint evaluation)
    moved the start 0.07-1.1 posterior sds closer to the optimum on the 13 near-Gaussian
    posteriordb posteriors, and leaves the optimizer only the posterior's departure from its
    Laplace approximation.
    """
    A = precision * (Z.T @ Z / Z.shape[0])
    if not (np.all(np.isfinite(A)) and np.all(np.diag(A) > 0)):
        return log_sd

    def f(lam):
        sigma = np.exp(lam)
        return 0.5 * sigma @ A @ sigma - np.sum(lam), sigma * (A @ sigma) - 1.0

    def hess(lam):
        sigma = np.exp(lam)
        return sigma[:, None] * A * sigma + np.diag(sigma * (A @ sigma))
    try:
        with np.errstate(all="ignore"):
            result = scipy.optimize.minimize(f, -0.5 * np.log(np.diag(A)), jac=True,
                                             hess=hess, method="trust-exact",
                                             options={"gtol": 1e-8})
    except (ValueError, np.linalg.LinAlgError):
        # A not positive definite (a mode that is a saddle of the log joint, as a BNN's):
        # the objective has no minimum, sigma overflowed and scipy's solve refused the nan
        return log_sd
    # the gradient is relative (sigma_i (A sigma)_i - 1); scipy may report a failure to
    # improve f once rounding dominates, long after the gradient is negligible
    if np.all(np.isfinite(result.x)) and np.max(np.abs(result.jac)) <= 1e-6:
        return result.x
    return log_sd


def _frame(theta0, guide, precision, Z=None):
    """theta = theta0 + T u, the optimizer's coordinates u, in which the Hessian of F for the
    Laplace approximation N(mode, precision^-1) is the identity (so near the identity for a
    near-Gaussian posterior): on the means T is C with C C' = precision^-1; for mean field
    with the fixed draws Z, on the log sds it is E with E E' = the inverse of that Hessian's
    log-sd block, diag(sigma) A diag(sigma) + diag(sigma * A sigma), A = precision * (Z' Z / S)
    (_fixed_draw_log_sds). Where a block is not positive definite, or without a precision,
    T scales those parameters by their units (scale_of) instead.

    Returns
    -------
    (T: u -> T u, T': g -> T' g), both [P] -> [P].
    """
    scale = scale_of(theta0, guide)
    D = len(guide.mean(theta0))
    C, E = np.diag(scale[:D]), None          # E None: scale the rest (full rank: D^2 / 2)
    if precision is not None:
        C = _inverse_root(precision, C)
        if isinstance(guide, MeanField) and Z is not None:
            sigma = np.exp(theta0[D:])
            A = precision * (Z.T @ Z / Z.shape[0])
            E = _inverse_root(sigma[:, None] * A * sigma + np.diag(sigma * (A @ sigma)), None)

    def rest(u, E):
        return scale[D:] * u if E is None else E @ u
    return (lambda u: np.concatenate([C @ u[:D], rest(u[D:], E)]),
            lambda g: np.concatenate([C.T @ g[:D], rest(g[D:], None if E is None else E.T)]))


def _inverse_root(matrix, otherwise):
    """R with R R' = matrix^-1 (R = inverse of the lower Cholesky factor, transposed), or
    ``otherwise`` where ``matrix`` is not finite and positive definite."""
    if not np.all(np.isfinite(matrix)):
        return otherwise
    try:
        lower = np.linalg.cholesky(matrix)              # matrix = lower lower'
    except np.linalg.LinAlgError:
        return otherwise
    return scipy.linalg.solve_triangular(lower, np.eye(len(matrix)), lower=True).T
