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

import numpy as np

from ..errors import not_finite_at_start
from .elbo import elbo_and_grad

GTOL = 1e-6
CONVERGED = "converged: gradient below 1e-6 x max(1, |log joint|) (L-BFGS, params only)"
NOT_CONVERGED = "L-BFGS stopped before the gradient tolerance: "


def is_point_fit(reason: str) -> bool:
    """Whether a fit's ``reason`` is one of :func:`fit_point`'s: its ELBO trace and final
    ELBO are then the log joint at the params, and k̂ says nothing (nothing is drawn). Not
    when Ctrl-C ended it (advi.INTERRUPTED, as ADVI's): a saved fit says so in fit.json
    (savedfit.is_point_fit), a Fit by its model (guides.user.point_only)."""
    return reason == CONVERGED or reason.startswith(NOT_CONVERGED)


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
    PplError : not_finite_at_start when the log joint is not finite at the starting values.
    """
    from scipy.optimize import minimize

    from .advi import INTERRUPTED, AdviResult
    start = time.perf_counter()
    theta = guide.init(compiled.dim, options.init_scale)
    eps = np.zeros((1, guide.eps_dim(compiled.dim)))

    def negative(t):
        value, grad = elbo_and_grad(compiled.log_joint, t, eps, guide)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(t)
        return -value, -np.asarray(grad, dtype=float)

    first, _ = negative(theta)
    if not np.isfinite(first):
        raise not_finite_at_start(None, "not finite at the params' starting values")
    trace = []
    # (iterations, log joint, values) of the last iteration, assigned as one: a Ctrl-C between
    # the trace's append and it leaves the trace one longer, cut back to it
    reached = [(0, float(-first), theta)]

    def record(t):
        trace.append(-negative(t)[0])
        reached[0] = (len(trace), trace[-1], np.array(t, dtype=float))
        if progress is not None:
            progress(len(trace), trace[-1], 0.0)

    names = tuple(compiled.unconstrained_names())
    try:
        with np.errstate(all="ignore"):
            res = minimize(negative, theta, jac=True, method="L-BFGS-B", callback=record,
                           options={"gtol": GTOL, "ftol": 0.0, "maxiter": options.iter,
                                    "maxfun": 20 * options.iter})
    except KeyboardInterrupt:
        # Ctrl-C: the values the last iteration reached (the start before the first), as
        # ADVI returns its fit so far; they were lost
        steps, final, theta = reached[0]
        return AdviResult(guide, theta, names, np.asarray(trace[:steps] or [final]), False,
                          INTERRUPTED, steps, time.perf_counter() - start, 0.0, final)
    grad_ok = bool(np.max(np.abs(res.jac), initial=0.0) <= GTOL * max(1.0, abs(res.fun)))
    reason = CONVERGED if grad_ok else NOT_CONVERGED + str(res.message)
    final = float(-res.fun)
    return AdviResult(guide, np.asarray(res.x, dtype=float), names,
                      np.asarray(trace or [final]), grad_ok, reason, len(trace),
                      time.perf_counter() - start, 0.0, final)
