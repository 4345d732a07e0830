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
from autograd import jacobian

from ..errors import (NotPositiveDefinite, PplError, dadvi_mcse_large, dadvi_not_converged,
                      dadvi_not_finite)
from ..guides import MeanField, family
from ..options import FitOptions
from .advi import AdviResult, first_not_finite
from .dadvi_optimize import (MAX_ITER, NEAR, OPTIMIZER, Objective, laplace_start,
                             mean_field_hessian, minimize, scale_of)
from .dadvi_solve import Solver, flat_directions
from .verdict import MCSE_WARN   # the warning's bound is the verdict's

# Converged when the Newton decrement sqrt(g' H^-1 g) at the end is below this: the Newton step
# left is then at most 1e-3 in the objective's own metric, i.e. about 1e-3 posterior sds, far
# below the Monte Carlo error of the fixed draws (about 1/sqrt(M) sds).
DECREMENT_TOL = 1e-3
POLISH_STEPS = 10         # chord-Newton steps after the optimizer, at most
# Form the Hessian again (once) where the chord steps moved farther than this from where it was
# formed, in its own metric (posterior sds)
RECOMPUTE_MOVE = 0.1
MCSE_DRAWS = 500          # summary draws (each with its mirror) behind an MCSE's differences
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
        None in a fit restored from a folder saved before fit.json kept them (savedfit.py).
    sds : LINEAR_RESPONSE or MEAN_FIELD_SDS (the guide's own), which sds the draws and
        summary show.
    optimizer : the scipy method used.
    evaluations : gradients of the log joint over the 2 M fixed draws computed (a
        Hessian-vector product is one or two of them, see dadvi_optimize.Objective.hvp; the
        Laplace start's single-draw evaluations are not counted).
    """
    draws_used: int
    lr_covariance: np.ndarray | None
    mcse_directions: np.ndarray | None
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
    whitened by the Laplace approximation's Hessian there (dadvi_optimize.py), and finished
    by chord-Newton steps with the Hessian below (_optimize, _finish).

    At the optimum, with H the Hessian of F where the Newton steps began (mean field: from the
    log joint's per-draw Hessians; other families: from Hessian-vector products, on the
    complement of the family's flat directions, see dadvi_solve.flat_directions):
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
    PplError : dadvi_not_finite, dadvi_not_converged, dadvi_not_positive_definite,
        dadvi_unbounded.
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
    # Antithetic pairs: every draw z_m is used with its mirror -z_m. The mirrors make the
    # draws' mean zero, so on a Gaussian posterior the optimum's mean has no Monte Carlo
    # error, and little near one (its sds and the objective's value still carry the error of
    # the draws' second moments: docs/dadvi.md); the M pairs are the sandwich's units.
    half = rng.standard_normal((M, guide.eps_dim(D)))
    Z = np.concatenate([half, -half])
    objective = Objective(compiled.log_joint, guide, Z)
    theta0 = guide.init(D, options.init_scale)
    if not np.isfinite(objective(theta0)[0]):
        widened = options.init_scale if options.init_scale > FitOptions.init_scale else None
        raise _not_finite(compiled, guide.draw(theta0, Z), M, "from the starting guide", widened)
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
    whitening was poor: the posterior is far from its Laplace approximation), or _finish fails
    there (a Hessian not positive definite away from the optimum), the optimizer
    resumes from there to its own tolerance, and _finish runs again.

    Returns
    -------
    (theta, F(theta), its Solver, Newton decrement, scipy's result, ELBO trace)
    """
    near = precision is not None and theta0.shape[0] <= MAX_DENSE_PARAMS
    theta, result, trace = minimize(objective, theta0, optimizer, progress, precision,
                                    NEAR if near else None)
    try:
        theta, value, solver, decrement = _finish(objective, theta, *context)
    except PplError as error:
        # stopped early, F need not be convex there (low rank on a Gaussian posterior, seed
        # 0: an eigenvalue of -0.025 at the early stop, positive definite at the optimum):
        # the optimizer resumes, and an error that is real is raised again at its end
        if not near:
            raise _not_converged(error, result, optimizer) from None
        decrement = np.inf
    if near and not decrement <= DECREMENT_TOL:
        theta, more, trace = minimize(objective, theta, optimizer, progress, precision,
                                      trace=trace)
        more.nit += result.nit
        result = more
        try:
            theta, value, solver, decrement = _finish(objective, theta, *context)
        except PplError as error:
            raise _not_converged(error, result, optimizer) from None
    return theta, value, solver, decrement, result, trace


def _not_converged(error: PplError, result, optimizer: str) -> PplError:
    """``error``, or dadvi_not_converged where it is a Hessian not positive definite at a
    point the optimizer left short of its tolerance: no optimum, so no model to blame.
    varying_slopes under full rank, out of iterations, was called 'not identified along a0';
    kilpisjarvi under low rank, where L-BFGS-B's and the trust region's steps stalled (the
    largest gradient 0.02-250, against a tolerance of 1e-6), 'not identified along alpha'."""
    if isinstance(error, NotPositiveDefinite) and not result.reached:
        return dadvi_not_converged(optimizer, int(result.nit), None, str(result.message))
    return error


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
    (theta, F(theta), its Solver, Newton decrement)
    """
    null = flat_directions(guide, theta, Z)
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


def _hessian(objective, theta, guide, null, names) -> Solver:
    """The Solver of F's Hessian at theta (mean field's from per-draw Hessians)."""
    dense = (mean_field_hessian(objective, theta) if isinstance(guide, MeanField)
             and theta.shape[0] <= MAX_DENSE_PARAMS else None)
    scale = scale_of(theta, guide)
    return Solver(objective.hvp(theta, scale), null, names, dense, MAX_DENSE_PARAMS, scale)


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
        warnings.warn(dadvi_mcse_large(names[worst], ratio[worst], M), stacklevel=3)


def _not_finite(compiled, zeta, M, where, init_scale=None):
    """dadvi_not_finite, blaming the first statement not finite at some of the draws zeta."""
    span, what = first_not_finite(compiled, zeta) or (None, "not finite (or its gradient is)")
    return dadvi_not_finite(span, what, M, where, init_scale)
