"""Checks of a finished fit: is the guide's mean where the ELBO's gradient vanishes? If it is
not, Newton steps take a mean-field guide there; a warning says what was wrong when they cannot.

The fit loop's convergence rule looks at the ELBO trace only. On extreme scales that can pass
far from the optimum: with data around 1e12 the ELBO is around -1e20, and a relative change
below ``tol`` is a change of 1e17 nats; with a posterior sd far below Adam's step (lr in
absolute units per coordinate) the iterates jitter over many sds. This module measures the
stationarity of the mean directly and, for mean field, finishes the fit with Newton steps.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad

from ..errors import fit_not_at_optimum, guide_collapsed
from ..guides import MEAN_FIELD
from . import newton
from .elbo import elbo_value
from .optim import hessian_chunk
from .precondition import MAX_DIM, difference_hessian, expected_hessian

DRAWS = 64            # draws of the guide averaged in the expected gradient (antithetic pairs)
CHUNK = 16            # draws per autograd pass (bounds the memory of a large model)
MAX_SDS = 1.0         # largest Newton step of the mean accepted, in guide sds
Z = 4.0               # standard errors the expected gradient must exceed to count
SEED = 20260911       # the check's own stream: it must not change the fit's random numbers
MAX_DRAWS = 1024      # draws of the expected gradient at most, while its sign is unclear
POLISH_SDS = 0.1      # the polish stops once no significant Newton step is above this, in sds
ROUNDS = 60           # Newton steps of the polish at most (extreme scales took 10-40: tests)
EIGEN_FLOOR = 1e-8    # smallest eigenvalue of the Jacobi-scaled expected Hessian (unit diagonal)
# A guide sd below this fraction of 1 / sqrt(E_q[-H_ii]), the mean-field optimum's sd for the
# curvature under the guide (Opper and Archambeau: sigma_i^2 E_q[-H_ii] = 1 at the optimum),
# has collapsed: the ELBO's derivative in log sigma_i, 1 - sigma_i^2 E_q[-H_ii], is then above
# 1 - SHORT^2 = 0.99, far from its optimum's 0. Such an sd makes the mean's check blind (its
# steps are in guide sds): see :func:`short_sd`.
SHORT = 0.1
# The largest D at which the check of a family with ``frame_is_law`` whitens by its frame
# (family_sds): full rank's own ceiling (guides/fullrank.py), beyond which a D x D factor is
# what the families avoid; low rank's is a Cholesky factorization, O(D^3).
WHITENED_MAX_DIM = 2000


def newton_sds(log_joint, mu: np.ndarray, log_sigma: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """How far a diagonal Newton step would move the guide's mean, in guide sds.

    At the mean-field optimum the ELBO's gradient in ``mu`` is E_q[g] = 0, g the gradient of
    the log joint, and 1/sigma_i^2 = E_q[-H_ii] (Opper and Archambeau 2009, "The variational
    Gaussian approximation revisited"), so sigma_i^2 E_q[g_i] is a Newton step for mu_i and
    sigma_i E_q[g_i] is its length in sds (for a Gaussian posterior: exactly the error of
    mu_i in posterior sds).

    Returns
    -------
    (steps [D], standard errors [D]) of sigma_i E_q[g_i], estimated from ``DRAWS`` draws.
    """
    eps = _antithetic(rng, mu.size)
    return _moments(_gradients(log_joint, mu, np.exp(log_sigma), eps) * np.exp(log_sigma))


def _antithetic(rng: np.random.Generator, D: int, n: int = DRAWS) -> np.ndarray:
    """[n, D] standard normals in pairs (eps, -eps): a gradient linear in zeta (a Gaussian
    posterior) then averages to its exact expectation."""
    eps = rng.standard_normal((n // 2, D))
    return np.concatenate([eps, -eps])


def _gradients(log_joint, mu, sigma, eps) -> np.ndarray:
    """[M, D] gradients of the log joint at mu + sigma * eps, CHUNK draws per pass."""
    gradient = grad(lambda zeta: anp.sum(log_joint(zeta)))
    return np.concatenate([gradient(mu + sigma * eps[i:i + CHUNK])
                           for i in range(0, len(eps), CHUNK)])


def _moments(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] of the antithetic draws and its standard error (from the pairs' means, which
    are independent)."""
    half = len(scaled) // 2
    pairs = 0.5 * (scaled[:half] + scaled[half:])
    return pairs.mean(axis=0), pairs.std(axis=0, ddof=1) / np.sqrt(half)


def _worst(steps: np.ndarray, se: np.ndarray) -> tuple[int, float]:
    """The element with the largest significant step (at Z standard errors) and its size; a
    non-finite gradient (a draw outside a constraint) is left to the fit's own checks."""
    off = np.abs(steps)
    off = np.where(np.isfinite(off) & np.isfinite(se) & (off > Z * se), off, 0.0)
    worst = int(np.argmax(off))
    return worst, float(off[worst])


def _unbounded(steps: np.ndarray, se: np.ndarray) -> int | None:
    """The element with the largest step above MAX_SDS whose standard error is not below
    MAX_SDS (or not finite: a gradient that overflowed where the log density is finite), or
    None: the draws cannot tell whether the mean is within MAX_SDS of the optimum, so the
    significance test of :func:`_worst` says nothing. y ~ Poisson(exp(a + b * year)), years
    1950-2020, mean field, seed 1: b's guide sd 0.08 put 61 of the check's 64 draws at steps
    of +2.7e5 sds, two in e^(b * year)'s upper tail (the lower at -1.3e39; over the 63 finite
    draws a mean of -2e37, se 2e37) and one where the gradient overflowed (step inf, se nan):
    'not significant', and the fit, whose mean had not moved since its first whitening, was
    reported converged at a final ELBO of -7.6e77, 143 posterior sds off. At
    a fit near its optimum the steps' standard errors are a small fraction of an sd (0.16 on
    that model at seed 0). NaN steps (a draw outside a constraint) are left to the fit's own
    checks, as in :func:`_worst`."""
    off = np.abs(steps)
    blind = np.where((off > MAX_SDS) & ~(se < MAX_SDS), off, 0.0)
    worst = int(np.argmax(blind))
    return worst if blind[worst] > 0 else None


def check_optimum(compiled, mu: np.ndarray, log_sigma: np.ndarray, lr: float,
                  final_elbo: float, rounds: int = 0):
    """A PplWarning when the fitted mean is more than ``MAX_SDS`` guide sds (significantly,
    at ``Z`` standard errors) from where the ELBO's gradient vanishes; None when it is not.

    The warning names the worst element and the likely cause: the narrowest guide sd far
    below the step size, or log densities so large that the relative convergence rule stopped
    early (both: data on a scale far from the priors'). ``rounds``: Newton steps already taken.
    """
    if mu.size == 0:
        return None
    with np.errstate(all="ignore"):
        # newton_sds, with its draws and gradients kept for the sds' check
        sigma = np.exp(log_sigma)
        eps = _antithetic(np.random.default_rng(SEED), mu.size)
        g = _gradients(compiled.log_joint, mu, sigma, eps)
        steps, se = _moments(g * sigma)
        short = short_sd(compiled.log_joint, mu, sigma, eps, g)
    warning = _warning(compiled, steps, se, log_sigma, lr, final_elbo, rounds)
    if warning is None and short is not None:    # the mean's check was blind
        element, ratio = short
        return guide_collapsed(compiled.unconstrained_names()[element], float(sigma[element]),
                               ratio, rounds)
    return warning


def short_sd(log_joint, mu, sigma, eps, g) -> tuple[int, float] | None:
    """(element, sigma_i sqrt(E_q[-H_ii])) of the guide sd furthest below SHORT of the
    mean-field optimum's for its curvature, or None when none is.

    A fit can stop with sds orders of magnitude too small: y ~ Poisson(exp(a + b * year)) on
    years 1950-2020, mean field, seed 2, reached its first whitening with b's draws at
    +-0.1 * 2000 in the exponent, whose curvature (e^400) set the sds to e^-226 and e^-234,
    from which Adam's steps of lr climbed 4 nats in 8,000 steps and the rule stopped it
    'converged', 15.5 posterior sds off: the mean's check, in guide sds, saw steps of 3e-98.
    The curvature is screened by Stein's lemma on the check's own draws (free), then confirmed
    with the exact Hessian's diagonal at those draws (one product per element screened): where
    sigma_i is below the float resolution of mu_i, the draws are all mu and Stein's estimate is
    0, whether the posterior is that narrow too or not.
    """
    with np.errstate(all="ignore"):
        stein = -(g * eps).mean(axis=0) / sigma
        screened = np.flatnonzero(np.all(np.isfinite(g), axis=0)
                                  & ~(sigma * np.sqrt(np.maximum(stein, 0.0)) >= SHORT))
        if screened.size == 0:
            return None
        curvature = _curvature(log_joint, (mu + sigma * eps)[:CHUNK], screened)
        ratio = sigma[screened] * np.sqrt(curvature)
    ratio = np.where(np.isfinite(ratio), ratio, np.inf)
    worst = int(np.argmin(ratio))
    return (int(screened[worst]), float(ratio[worst])) if ratio[worst] < SHORT else None


def _curvature(log_joint, zeta: np.ndarray, elements: np.ndarray) -> np.ndarray:
    """E[-H_ii] [len(elements)] over the draws ``zeta``, from exact Hessian-vector products
    with unit vectors (as precondition.expected_hessian, for these columns only)."""
    gradient = grad(lambda z: anp.sum(log_joint(z)))
    unit = np.zeros(zeta.shape[1])
    diagonal = []
    for i in elements:
        v = unit.copy()
        v[i] = 1.0
        column = grad(lambda z: anp.sum(gradient(z) * v))(zeta)
        diagonal.append(-float(np.mean(column[:, i])))
    return np.asarray(diagonal)


def family_sds(log_joint, guide, theta) -> tuple[np.ndarray, np.ndarray]:
    """(the Newton step of the mean in the family's own sds [D], standard errors [D]) from
    ``DRAWS`` draws of the family's own q.

    Every family here is closed under shifts of zeta (a location, or a flow's last shift), and
    the entropy does not change under a shift, so the ELBO's derivative along a shift of
    coordinate i is E_q[g_i]: zero at the family's optimum. Mean field's diagonal draws would
    not do for the others: under a correlated or skewed q, E over the diagonal Gaussian of g
    is not zero at their optimum (a false alarm on 10 of 16 full-rank posteriordb fits).

    A family that is exactly the law of mu + W u, u ~ N(0, I) (``frame_is_law``: full rank,
    low rank) gives the step W^T E_q[g] in its own whitened coordinates: near the optimum
    W W^T stands in for E_q[-H]^-1, as sigma_i^2 does in mean field's check, so for a
    Gaussian posterior the step is the mean's error in q's whitened sds (component i: the
    error of zeta_i given the elements before it, in conditional sds), each draw's of sd 1.
    Mean field's form, sd_i E_q[g_i], reads a correlated posterior's steep directions in the
    marginal sds: on diamonds, full rank at k̂ 0.00 had steps of -17.7 'guide sds' with
    standard errors of 25.6, which the check cannot tell from a fit far off
    (:func:`_unbounded`), on 10 of 10 seeds, where its whitened steps were at most 0.38, their
    standard errors 0.15 (docs/history/trust-log.md, "The optimum check of a correlated
    family"). Other families (the flow's and scaled's frames are their affine parts only; a
    user's guide) and a low rank above WHITENED_MAX_DIM (its W is a D x D Cholesky factor)
    keep sd_i E_q[g_i].
    """
    zeta = guide.sample(theta, np.random.default_rng(SEED), DRAWS)
    gradient = grad(lambda z: anp.sum(log_joint(z)))
    g = np.concatenate([gradient(zeta[i:i + CHUNK]) for i in range(0, DRAWS, CHUNK)])
    scaled = None
    if getattr(guide, "frame_is_law", False) and g.shape[1] <= WHITENED_MAX_DIM:
        try:
            scaled = g @ guide.frame(theta)[1]       # each draw's W^T g
        except np.linalg.LinAlgError:
            # low rank's sigma^2 + F F^T not positive definite in floating point (a sigma
            # that underflowed beside a rank-deficient F): the diagonal form, as before
            pass
    if scaled is None:
        scaled = g * np.exp(guide.log_sd(theta))
    return scaled.mean(axis=0), scaled.std(axis=0, ddof=1) / np.sqrt(DRAWS)


def _warning(compiled, steps, se, log_sigma, lr, final_elbo, rounds):
    worst, size = _worst(steps, se)
    if not size > MAX_SDS:
        worst = _unbounded(steps, se)
        if worst is None:
            return None
    names = compiled.unconstrained_names()
    narrowest = int(np.argmin(log_sigma))
    return fit_not_at_optimum(names[worst], float(steps[worst]), names[narrowest],
                              float(np.exp(log_sigma[narrowest])), float(lr), float(final_elbo),
                              rounds)


def settle(compiled, guide, theta: np.ndarray, lr: float, final_elbo: float):
    """Finish a converged fit: (theta, final ELBO, PplWarning or None).

    A mean-field fit whose check fails is polished by :func:`polish`; its final ELBO is then
    re-estimated at the polished theta from DRAWS fixed draws. Other families are only checked.
    The check's draws come from their own fixed stream, so a seed still gives one result.
    """
    mu, log_sigma = guide.mean(theta), guide.log_sd(theta)
    if guide is not MEAN_FIELD:
        if mu.size == 0:
            return theta, final_elbo, None
        with np.errstate(all="ignore"):
            steps, se = family_sds(compiled.log_joint, guide, theta)
        return theta, final_elbo, _warning(compiled, steps, se, log_sigma, lr, final_elbo, 0)
    warning = check_optimum(compiled, mu, log_sigma, lr, final_elbo)
    if warning is None:
        return theta, final_elbo, warning
    with np.errstate(all="ignore"):
        mu, log_sigma, rounds = polish(compiled.log_joint, mu, log_sigma,
                                       hessian_chunk(getattr(compiled, "model", None)))
        polished = np.concatenate([mu, log_sigma])
        eps = np.random.default_rng(SEED).standard_normal((DRAWS, mu.size))
        polished_elbo = elbo_value(compiled.log_joint, polished, eps, guide)
    if np.isfinite(final_elbo) and not np.isfinite(polished_elbo):
        # Each round's step raises the ELBO on that round's draws only; far from a sharp
        # optimum a round's few extreme draws can carry it where many draws overflow or leave
        # the support (Poisson(log_rate=a + b * year), years near 2000: the sds went to the
        # priors', b's sd 1 on a slope of 0.02, ELBO -inf). Its check's gradients are then not
        # finite and it said nothing: 'converged', final ELBO -inf. The fit as it was, warned.
        return theta, final_elbo, warning
    return polished, polished_elbo, check_optimum(compiled, mu, log_sigma, lr, polished_elbo,
                                                  rounds)


def polish(log_joint, mu: np.ndarray, log_sigma: np.ndarray, chunk: int | None = None):
    """Newton steps of the mean-field guide's mean until none is significant (at Z standard
    errors) and above POLISH_SDS guide sds (below the check's MAX_SDS, so that a polished fit
    passes the check with room to spare) and none at all is above MAX_SDS, ROUNDS at most;
    then the sds at the mean reached.

    Each round estimates E_q[g] and the expected Hessian H = E_q[-Hessian] (exact Hessian-
    vector products for D <= precondition.MAX_DIM; beyond, its diagonal from the same
    gradients, by Stein's lemma E_q[H_ii] = E_q[g_i eps_i] / sigma_i). The step is H^-1 E_q[g]
    (see :func:`_newton`; for a Gaussian posterior the exact mean in one step), and the guide's
    sds move to the mean-field optimum's 1/sqrt(H_ii) (the fit's own sds are off by orders of
    magnitude at extreme scales). The step length is searched along the ray
    (newton.line_search), so the ELBO's fixed-draw estimate never decreases. ``chunk``: the
    model's score chunk, which says when a gradient is costly (:func:`_newton`).

    Returns
    -------
    (mu [D], log_sigma [D], Newton steps taken).
    """
    rng = np.random.default_rng(SEED)
    for rounds in range(ROUNDS + 1):
        sigma = np.exp(log_sigma)
        eps, g, steps, se = _expected_gradient(log_joint, mu, sigma, rng)
        if eps is None:
            return mu, log_sigma, rounds
        direction, curvature = _newton(log_joint, mu, sigma, eps, g, chunk)
        # done when no step is significant and above POLISH_SDS, and none, significant or
        # not, above the check's MAX_SDS (with heavy-tailed gradients far from the optimum,
        # even 1024 draws may not make a step of 3 sds significant)
        target = -0.5 * np.log(np.where(curvature > 0, curvature, np.nan))
        # nor while an sd is collapsed (short_sd): its steps, in guide sds, say nothing yet
        collapsed = np.any(log_sigma < target + np.log(SHORT))
        done = (not _worst(steps, se)[1] > POLISH_SDS and not np.max(np.abs(steps)) > MAX_SDS
                and not collapsed or rounds == ROUNDS)
        if done:                      # the sds only, at the mean reached
            direction = np.zeros_like(mu)
        new_log_sigma = np.where(np.isfinite(target), target, log_sigma)
        mu, log_sigma, moved = newton.step(log_joint, mu, log_sigma, direction, new_log_sigma,
                                           eps)
        if done or not moved:
            return mu, log_sigma, rounds
    return mu, log_sigma, ROUNDS


def _expected_gradient(log_joint, mu, sigma, rng):
    """(eps [M, D], g [M, D], steps [D], se [D]) as in :func:`newton_sds`, with M = DRAWS
    raised 4-fold (to MAX_DRAWS at most) while the largest step is above POLISH_SDS but not
    significant: far from the optimum the log density is far from quadratic over the guide,
    and 64 draws may not tell the step's sign. eps is None when a gradient is not finite."""
    draws = DRAWS
    while True:
        eps = _antithetic(rng, mu.size, draws)
        g = _gradients(log_joint, mu, sigma, eps)
        if not np.all(np.isfinite(g)):
            return None, None, None, None
        steps, se = _moments(g * sigma)
        largest = float(np.max(np.abs(steps)))
        if _worst(steps, se)[1] > POLISH_SDS or largest <= POLISH_SDS or draws >= MAX_DRAWS:
            return eps, g, steps, se
        draws *= 4


def _newton(log_joint, mu, sigma, eps, g, chunk=None) -> tuple[np.ndarray, np.ndarray]:
    """(Newton direction H^-1 E_q[g] [D], diag H [D]) at the guide (mu, sigma).

    H is solved in Jacobi-scaled coordinates (unit diagonal): at extreme scales its diagonal
    spans 30 orders of magnitude, and an eigenvalue floor relative to the largest (as in
    precondition.whiten) would all but stop the flat coordinates. Scaled eigenvalues are taken
    in absolute value and floored at EIGEN_FLOOR: a direction of local convexity still moves.
    """
    mean_g = g.mean(axis=0)
    if mu.size <= MAX_DIM:
        H = _hessian(log_joint, mu, sigma, eps[:CHUNK], chunk)
        scale = 1 / np.sqrt(np.abs(np.diag(H)))
        if np.all(np.isfinite(H)) and np.all(np.isfinite(scale)):
            lam, V = np.linalg.eigh(H * scale[:, None] * scale[None, :])
            lam = np.maximum(np.abs(lam), EIGEN_FLOOR)
            return scale * (V @ ((V.T @ (scale * mean_g)) / lam)), np.diag(H)
    # Stein's lemma, as a regression of g_i on eps_i (dividing by the draws' own sum of
    # eps_i^2 rather than its expectation removes that sum's noise)
    curvature = -(g * eps).sum(axis=0) / ((eps * eps).sum(axis=0) * sigma)
    safe = np.where(np.isfinite(curvature) & (curvature > 0), curvature, np.inf)
    return mean_g / safe, curvature


def _hessian(log_joint, mu, sigma, eps, chunk) -> np.ndarray:
    """-E[Hessian of log p] [D, D] at the draws mu + sigma eps: on large data (a score chunk
    below the draws' 2 M, the whitening's test) by differences of the gradient, which the fused
    kernels serve (precondition.difference_hessian; exact on a quadratic log density): on a
    10^5-row regression the traced products took 8 of a polish's 12 s. Elsewhere, and where a
    step of the differences would be lost to rounding against the mean (sds below 1e-8 of
    |mu|: extreme scales, what the polish is for), the exact traced products."""
    zeta = mu + sigma * eps
    if chunk is not None and chunk < 2 * len(eps) and np.all(sigma >= 1e-8 * np.abs(mu)):
        return difference_hessian(log_joint, zeta, sigma, chunk)
    return expected_hessian(log_joint, zeta)
