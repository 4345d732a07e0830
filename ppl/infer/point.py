"""Fits with nothing to draw: a model whose only unknowns are ``param`` statements is a
deterministic optimization (maximum likelihood, or MAP for params with ``~ DIST``).

The objective is the log joint at the params' values (no Monte Carlo noise), so instead of the
stochastic loop of advi.py it is maximized by scipy's L-BFGS-B to a gradient tolerance: the fit
converged when every component of the gradient with respect to the unconstrained values is
below GTOL * max(1, |log joint|) in absolute value (relative: a log likelihood summed over N
rows has gradients of order N). Near the optimum the values are then within about
|H^-1| times that bound of it (H the Hessian of the negative log joint there; tests/unit/test_params.py
derives its tolerance so).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import PplError, params_not_estimated, params_not_finite_at_start
from .elbo import elbo, elbo_and_grad

GTOL = 1e-6
# L-BFGS-B's line search, from a trial point where the log joint is not finite (+inf here),
# interpolates to a step of about zero and stops there on ftol 0 ("relative reduction of f"):
# a fit whose first step (of unit length) left the log joint's domain stopped at its start
# (log(p) - (p + 10)^2 / 2 from p = 1, found by the mutation pass of 2026-12-03). So where it
# stops so without meeting the gradient rule, it goes on from there with a unit SHORTER times
# as long, at most SHORTER_TRIES times.
SHORTER = 0.1
SHORTER_TRIES = 8
CONVERGED = "converged: gradient below 1e-6 x max(1, |log joint|) (L-BFGS, params only)"
NOT_CONVERGED = "L-BFGS stopped before the gradient tolerance: "
# A log joint with no maximum (separated data in a logistic regression: it rises towards 0 as
# a coefficient grows without bound) meets the gradient rule where it has flattened out, at
# no optimum. So a fit that met it is checked once more: if the log joint is higher again at
# twice the values' distance from the start, it has not reached a maximum (at an optimum it
# is lower there, by about half the curvature times that distance squared).
# A maximum on a param's bound (p = 0 for 0 successes in 10) is approached so too, its
# unconstrained value running off to infinity: the value reported is then next to the bound.
# Where it is higher there, L-BFGS goes on once from that point (_beyond): a higher maximum it
# reaches that is not rising in turn is another mode further along, and the fit converged.
# The gradient rule is in the params' own units, so it is not free of their scale: data near
# 1e9 (y ~ Normal(mu, sigma), mu from 0) met it at mu = 0.013 and sigma = 1e9, 57 nats below
# the maximum, reported converged (the gradient in mu, N (y - mu) / sigma^2, is 2e-8 there).
# So a fit that met it is checked with the Hessian (up to HESSIAN_MAX_PARAMS params, whose
# Hessian costs as many gradients; models/bnn_regression_map.ppl's 122 took 2.4x its fit): where
# Newton steps in each value alone would raise the log joint by more than the rule's own
# tolerance, GTOL max(1, |log joint|) nats (sum of g_i^2 / 2|H_ii| over the H_ii < 0), L-BFGS-B
# goes on in units of 1 / sqrt|H_ii|, RESCALE_TRIES times at most.
HESSIAN_MAX_PARAMS = 50
RESCALE_TRIES = 3
# L-BFGS-B's own tolerance is absolute (gtol), the rule's relative (GTOL max(1, |log joint|)):
# past the rule it goes on towards its own, which a log joint with no maximum never meets.
# 'factor m - n' ran its 10,000 iterations and 180,000 evaluations at m = 1e14 (45 s of CPU)
# to be called rising. So L-BFGS-B stops after PAST_RULE iterations in a row that met the rule
PAST_RULE = 100
# _ahead moves each value alone for up to this many params (one log joint each), and the
# relative rise that counts there: above the rounding of a sum of terms, below a bound's pull
# (p = 1e-11 with 0 successes in 10 rises by 1e-10 when p halves again)
RISING_MAX_PARAMS = 1000
ROUNDING = 1e-14
SHORT_OF = "L-BFGS met the gradient tolerance short of the maximum: "
SHORT = SHORT_OF + ("Newton steps in each param alone would still raise the log joint by "
                    "{gain:.3g} (the params' scales differ by orders of magnitude, or they "
                    "started far from it: rescale the data, or give --init)")
RISING = ("L-BFGS met the gradient tolerance where the log joint is still rising (it is "
          "higher at twice the values' distance from the start): the maximum is on a param's "
          "bound (the value reported is next to it) or at infinity (separated data: there is "
          "none); a prior on the params (param b: real ~ Normal(0, 2.5)) keeps it inside")


def is_point_fit(reason: str) -> bool:
    """Whether a fit's ``reason`` is one of :func:`fit_point`'s: its ELBO trace and final
    ELBO are then the log joint at the params, and k̂ says nothing (nothing is drawn). Not
    when Ctrl-C ended it (advi.INTERRUPTED, as ADVI's): a saved fit says so in fit.json
    (savedfit.is_point_fit), a Fit by its model (guides.user.point_only)."""
    return reason in (CONVERGED, RISING) or reason.startswith((NOT_CONVERGED, SHORT_OF))


def fit_point(compiled, guide, options, progress=None):
    """Maximize the log joint over the params of ``compiled`` with L-BFGS-B.

    Parameters
    ----------
    compiled : compiler.Compiled with params and no latents.
    guide : the guides.user.UserGuide of the model (its theta is the params' values).
    options : FitOptions (``iter`` caps the iterations).
    progress : called as progress(iteration, log joint, 0.0) after every iteration.

    Returns
    -------
    advi.AdviResult (lr 0, jitter nan); on Ctrl-C (KeyboardInterrupt) the values of the last
    iteration, reason advi.INTERRUPTED, as advi.fit returns its fit so far.

    Raises
    ------
    PplError : params_not_finite_at_start when the log joint (or its gradient) is not finite at
        the starting values.
    """
    from .advi import INTERRUPTED, AdviResult
    start = time.perf_counter()
    theta = guide.init(compiled.dim, options.init_scale)
    eps = np.zeros((1, guide.eps_dim(compiled.dim)))
    outside = []    # one entry per evaluation where the log joint was not finite

    def negative(t):
        value, grad = elbo_and_grad(compiled.log_joint, t, eps, guide)
        # a finite value with a non-finite gradient is outside too: 'factor -log(a)' for a
        # param a > 0 at a subnormal a had a NaN gradient, which took L-BFGS-B's iterate to
        # NaN, and the fit reported a = nan (a saved folder ppl predict then refused)
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            outside.append(1)
            return np.inf, np.zeros_like(t)
        return -value, -np.asarray(grad, dtype=float)

    first, _ = negative(theta)
    if not np.isfinite(first):
        raise _not_finite_at_start(compiled, guide, theta, eps, options.init is not None)
    trace = []
    # (iterations, log joint, values) of the last iteration, assigned as one: a Ctrl-C between
    # the trace's append and it leaves the trace one longer, cut back to it
    reached = [(0, float(-first), theta)]

    met = [0]   # iterations in a row that met the gradient rule

    def record(t):
        value, grad = negative(t)
        trace.append(-value)
        reached[0] = (len(trace), trace[-1], np.array(t, dtype=float))
        if progress is not None:
            progress(len(trace), trace[-1], 0.0)
        met[0] = met[0] + 1 if _converged(value, grad) else 0
        if met[0] > PAST_RULE:
            met[0] = 0
            raise StopIteration   # scipy's minimize ends there, at this iterate

    names = tuple(compiled.unconstrained_names())
    try:
        with np.errstate(all="ignore"):
            x, value, grad, message = _descend(negative, theta, record, options.iter, trace,
                                               outside)
            grad_ok = _converged(value, grad)
            reason = CONVERGED if grad_ok else NOT_CONVERGED + message
            if grad_ok and compiled.dim <= HESSIAN_MAX_PARAMS:
                x, value, gain = _rescaled(
                    negative, lambda t: elbo(compiled.log_joint, t, eps, guide), x, value,
                    record, options.iter, trace)
                grad_ok = gain is None
                reason = CONVERGED if grad_ok else SHORT.format(gain=gain)
            ahead = _ahead(negative, x, value, theta) if grad_ok else None
            if ahead is not None:
                x, value, grad_ok = _beyond(negative, x, value, ahead, theta, record,
                                            options.iter, trace, outside)
                reason = CONVERGED if grad_ok else RISING
    except KeyboardInterrupt:
        # Ctrl-C: the values the last iteration reached (the start before the first), as
        # ADVI returns its fit so far; they were lost
        steps, final, theta = reached[0]
        return AdviResult(guide, theta, names, np.asarray(trace[:steps] or [final]), False,
                          INTERRUPTED, steps, time.perf_counter() - start, 0.0, final)
    if grad_ok:
        _warn_unmoved(negative, x, guide, names)
    final = -value
    return AdviResult(guide, x, names, np.asarray(trace or [final]), grad_ok, reason,
                      len(trace), time.perf_counter() - start, 0.0, final)


def _not_finite_at_start(compiled, guide, theta, eps, init_given: bool) -> PplError:
    """params_not_finite_at_start, blaming the first statement not finite at the start."""
    from .advi import blamed_element, first_not_finite
    zeta = guide.draw(theta, eps)
    found = first_not_finite(compiled, zeta)
    span, what = found if found is not None else (None, "finite but its gradient is not")
    return params_not_finite_at_start(span, what, init_given,
                                      blamed_element(compiled, span, zeta))


def _warn_unmoved(negative, x: np.ndarray, guide, names: tuple) -> None:
    """Warn of the params' values a converged fit left exactly at their start with a gradient
    of exactly 0 at ``x`` (warn_unmoved): 'factor 0 * k' reported k's random start
    as converged, with no word."""
    with np.errstate(all="ignore"):
        gradient = negative(x)[1]
    warn_unmoved(x, gradient, guide, names, stacklevel=5)


def warn_unmoved(end: np.ndarray, gradient: np.ndarray, guide, names: tuple,
                 stacklevel: int) -> None:
    """Warn of the params a fit left exactly at their start (``guide.start``) with a
    ``gradient`` of exactly 0 at its ``end`` theta (errors.params_not_estimated): gradient steps
    never move them. Only the params' values (the end of theta, named by the guide's param
    columns of ``names``): a --guide family's own parameters, of no latent here, never move
    either."""
    first = end.size - len(guide.param_cols)
    still = (end[first:] == guide.start) & (gradient[first:] == 0)
    unmoved = [names[guide.param_cols[i]] for i in np.flatnonzero(still)]
    if unmoved:
        warnings.warn(params_not_estimated(unmoved), stacklevel=stacklevel)


def _rescaled(negative, log_joint, x: np.ndarray, value: float, record, iterations: int,
              trace: list) -> tuple[np.ndarray, float, float | None]:
    """From ``x``, which met the gradient rule, L-BFGS-B again in units of 1 / sqrt|H_ii| (H
    the Hessian of ``log_joint`` at x) while Newton steps in each value alone would raise the
    log joint by more than GTOL max(1, |log joint|) (see HESSIAN_MAX_PARAMS), RESCALE_TRIES
    times at most. Returns (values, negative log joint there, None, or the rise that is still
    left when it stopped short)."""
    from autograd import hessian
    from scipy.optimize import minimize
    gain = None
    for tries in range(RESCALE_TRIES + 1):      # the last pass checks the last run
        grad = -negative(x)[1]
        # where no Hessian can judge x, the gradient rule does: x met it on the first pass,
        # but a later x is where a rescaled run ended (from m = 1e20 that was s = 1.1e13 at a
        # log joint of -154.7, against -8.8 at the maximum, reported converged)
        unjudged = None if tries == 0 or _converged(value, grad) else gain
        try:
            with warnings.catch_warnings():
                # a log joint linear in every param ('factor m') has a constant gradient,
                # whose Hessian autograd computes as 0 with this warning, raw to the user
                warnings.filterwarnings("ignore", "Output seems independent of input")
                curvature = -np.diag(hessian(log_joint)(x))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            return x, value, unjudged
        down = np.isfinite(curvature) & (curvature > 0)
        if not np.all(np.isfinite(curvature)):
            return x, value, unjudged
        gain = float(0.5 * np.sum(grad[down] ** 2 / curvature[down]))
        # a param with no downward curvature (s's underflowed to 0 at s = 1.1e13) and a
        # gradient beyond the rule: a Newton step along it would have no end
        if not _converged(value, grad[~down]):
            gain = np.inf
        if gain <= GTOL * max(1.0, abs(value)):
            return x, value, None
        if tries == RESCALE_TRIES or len(trace) >= iterations:
            break
        unit = np.where(down, 1.0 / np.sqrt(np.where(down, curvature, 1.0)), 1.0)

        def scaled(w, at=x, unit=unit):
            found, g = negative(at + unit * w)
            return found, unit * g
        left = iterations - len(trace)
        res = minimize(scaled, np.zeros_like(x), jac=True, method="L-BFGS-B",
                       callback=lambda w, at=x, unit=unit: record(at + unit * w),
                       options={"gtol": GTOL * max(1.0, abs(value)), "ftol": 0.0,
                                "maxiter": left, "maxfun": 20 * left})
        if not res.fun < value:       # no higher point in the new units
            break
        x, value = x + unit * res.x, float(res.fun)
    return x, value, float(gain)


def _ahead(negative, x: np.ndarray, value: float, theta: np.ndarray) -> np.ndarray | None:
    """A point where the log joint is higher than at ``x`` (where it is -``value``), or None
    (RISING): twice the distance of x from the start ``theta``, all values at once, then each
    value alone (:func:`_moves`). All at once, a param with an optimum inside hid one on a
    bound or at infinity: 'param m: real; param n: real<lower=0, upper=1>; factor -m*m + n'
    was converged at n = 1 - 2e-10, m's fall outweighing n's rise of 1e-10. One value alone
    must rise by more than the log joint's rounding (ROUNDING relatively): a value that barely
    moved from its start is the same point again."""
    for alone, point in _moves(x, theta):
        slack = ROUNDING * max(1.0, abs(value)) if alone else 0.0
        if -negative(point)[0] > -value + slack:
            return point
    return None


def _peaked(negative, x: np.ndarray, value: float, theta: np.ndarray) -> bool:
    """Whether the log joint is lower than at ``x`` at every point of :func:`_moves`: a maximum
    of its own. Not merely no higher: a value pushed to a bound reaches where the log joint no
    longer changes in floating point (n = 1 - 4e-20 is 1.0), and was taken for a higher
    optimum further along."""
    return all(-negative(point)[0] < -value for _, point in _moves(x, theta))


def _moves(x: np.ndarray, theta: np.ndarray):
    """(alone, point): twice the distance of ``x`` from the start ``theta``, all values at once
    (alone False), then each value that moved alone, up to RISING_MAX_PARAMS values."""
    ahead = 2 * x - theta
    yield False, ahead
    if 2 <= x.size <= RISING_MAX_PARAMS:
        for i in np.flatnonzero(x != theta):
            point = x.copy()
            point[i] = ahead[i]
            yield True, point


def _beyond(negative, x: np.ndarray, value: float, ahead: np.ndarray, theta: np.ndarray,
            record, iterations: int, trace: list, outside: list
            ) -> tuple[np.ndarray, float, bool]:
    """Where the log joint is higher at ``ahead`` (:func:`_ahead`) than at ``x``, a point that
    met the gradient rule: L-BFGS-B once more from ahead. A maximum it reaches that is higher
    than x and a peak of its own (:func:`_peaked`) is a higher optimum further along
    (another mode of a multimodal log joint: a maximum at 1 with a higher one at 2, seen from
    0, had been reported RISING, 'at infinity'), returned as converged; anything else leaves
    x, not converged, and the trace as it was at x: there is no maximum that way (separated
    data), or it is on a bound. Returns (values, negative log joint there, converged)."""
    steps = len(trace)
    if steps >= iterations:     # no step left (scipy's maxiter 0 still takes one)
        return x, value, False
    found, found_value, found_grad, _ = _descend(negative, ahead, record, iterations,
                                                 trace, outside)
    if _converged(found_value, found_grad) and -found_value > -value and \
            _peaked(negative, found, found_value, theta):
        return found, found_value, True
    del trace[steps:]
    return x, value, False


def _converged(value: float, grad: np.ndarray) -> bool:
    """The gradient rule: every component below GTOL * max(1, |log joint|), the log joint and
    every component finite (an infinite log joint made the bound infinite, passing any
    gradient; a NaN one made it GTOL)."""
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        return False
    return bool(np.max(np.abs(grad), initial=0.0) <= GTOL * max(1.0, abs(value)))


def _descend(negative, theta, record, iterations: int, trace: list, outside: list):
    """Minimize ``negative`` by L-BFGS-B from ``theta`` over x = at + unit * v: first at 0 with
    unit 1 (x = v, bit for bit), then, where it stopped after a trial point outside the log
    joint's domain without meeting the gradient rule, from there with the unit SHORTER times
    as long (see SHORTER); ``iterations`` in all (``trace`` has one entry per iteration).
    Returns (x, negative log joint there, its gradient, scipy's message)."""
    from scipy.optimize import minimize
    at, v, unit = np.zeros_like(theta), theta, 1.0
    for _ in range(SHORTER_TRIES + 1):
        def scaled(w, at=at, unit=unit):
            value, grad = negative(at + unit * w)
            return value, unit * grad
        met, left = len(outside), iterations - len(trace)
        res = minimize(scaled, v, jac=True, method="L-BFGS-B",
                       callback=lambda w, at=at, unit=unit: record(at + unit * w),
                       options={"gtol": GTOL * unit, "ftol": 0.0, "maxiter": left,
                                "maxfun": 20 * left})
        x, value, grad = at + unit * res.x, float(res.fun), res.jac / unit
        if not np.all(np.isfinite(x)):
            # L-BFGS-B's own arithmetic overflowed (a log joint like exp(m), whose gradient
            # squared is inf at m = 477): it returned NaN values, reported as the fit's. The
            # round's start stands, where the log joint was finite
            x = at + unit * v
            value, grad = negative(x)
            break
        if _converged(value, grad) or len(outside) == met or len(trace) >= iterations:
            break
        at, v, unit = x, np.zeros_like(x), unit * SHORTER
    return np.asarray(x, dtype=float), value, np.asarray(grad, dtype=float), str(res.message)
