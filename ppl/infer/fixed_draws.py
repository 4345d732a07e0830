"""A family fitted on fixed draws: L-BFGS-B on the ELBO at a set of draws, in rounds of fresh ones.

On fixed draws eps the reparameterization estimate of the ELBO is a deterministic function of
theta and its gradient the exact gradient, so a quasi-Newton method needs no step size and
climbs in tens of iterations where Adam takes thousands of noisy steps. A round fits its own
draws too (the estimate's optimum is not the ELBO's), so each round starts afresh on new
ones, and the rounds' progress is judged on draws the round has not seen. Used for the
``scaled`` family (ppl/guides/scaled.py: its D^2 (D + 1) / 2 shift coefficients make Adam
slow, docs/history/trust-log.md, "Sixth attempt"); the flow's networks overfit so few draws ("Fourth
attempt"), so it keeps the step loop of advi.py.

ROUND_DRAWS: one round per entry, each of at most ROUND_ITER L-BFGS-B iterations on that many
fresh standard-normal draws and their mirror images (antithetic: the estimate's odd terms
cancel). Measured on gp_pois_regr and centered eight schools, seeds 0-9 under ``--guide auto``
(docs/history/trust-log.md, "Twelfth attempt"): these ten rounds of 50 iterations met issue 11's
targets on 19 of the 20 fits; five rounds of 100 missed gp_pois_regr seed 1 (sd 0.25 off, k̂ 0.75),
ten of 30 two gp seeds of five, and stopping the rounds once the gain below had been flat
twice (5-9 rounds) four fits of 20. Every round of those fits ended at its iteration cap, so
L-BFGS-B's memory (MEMORY pairs, scipy's ``maxcor``; its default 10) sets how far a round
gets: on gp_pois_regr (2,561 parameters) 50 pairs took rounds of 40 iterations further than
10 pairs took rounds of 50 (seeds 0-19: worst mean error 0.083 sd, sd 13.8%, against 0.099
and 11.8% on seeds 0-9 at 50 iterations and 10 pairs; 20% fewer gradient draws; the pair
memory costs O(MEMORY D) a step, nothing beside the ELBO's gradient; docs/history/trust-log.md,
"The scaled rounds' memory").
Under ``--guide auto`` a scaled fit that cannot be used, or is usable with care on weights with
an ESS below half their draws, goes on for the rounds of MORE_DRAWS (auto.py): on gp_pois_regr,
seeds 0-9, its fits had ESS 5-28% and sds up to 0.21 off; two more rounds of 512 met the
targets on all ten and left the flow to three (three of 512: nine of ten, one flow left).
The fit has converged when the ELBO on each next round's fresh draws, paired at both iterates,
rose by less than FLAT_SE standard errors over the last FLAT_ROUNDS rounds measured, the last
round's on the final estimate's draws (FINAL_DRAWS, below), which no round has seen; before
2026-12-04 the last round's gain went unmeasured, so a fit whose last round still gained could
say converged: the gains
are significant for 3-6 rounds on eight schools and 5-9 on gp_pois_regr, then scatter about
zero. A gain that is not finite (the log joint not finite at a draw of either iterate) is not
flat. NOT_FINITE stands for a non-finite value at a trial point, so the line search steps back
(L-BFGS-B cannot back off from inf); at a round's start it would leave L-BFGS-B nowhere to go,
so a round whose ELBO is not finite at its start draws again, and after MAX_FAILURES sets of
draws the fit has diverged (``Rounds.failed``; advi raises the located error).
The iterations of all rounds together stop at the iteration cap (``--iter``), as the step
loop's steps do (auto's MORE_DRAWS rounds, ``advi.refine``, are not capped: auto takes them
only after a fit the cap did not stop). The final ELBO is estimated on FINAL_DRAWS fresh mirrored draws of a stream
of its own (the fit's stream is left as it was): the last iterate's value on its round's
draws, which it was fitted to, is above it (by 0.43-0.54 nats on eight schools, seeds 0-2).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .diagnostics import SEED
from .elbo import elbo_and_grad
from .steps import MAX_FAILURES

ROUND_DRAWS = (128, 128) + (256,) * 8
MORE_DRAWS = (512, 512)   # auto's further rounds when the first cannot carry the summary
ROUND_ITER = 40
MEMORY = 50         # L-BFGS-B's correction pairs (scipy's maxcor): module docstring
FLAT_ROUNDS = 2
FLAT_SE = 2.0
NOT_FINITE = 1e10
FINAL_DRAWS = 1024        # mirrored pairs of the final ELBO's estimate
CONVERGED = "converged: the ELBO on fresh draws stopped rising between rounds"
STILL_RISING = "the ELBO on fresh draws still rising after the last round"
PROGRESS_EVERY = 10   # iterations between progress calls, as advi's steps


@dataclass(frozen=True)
class Rounds:
    """The fitted theta, the fixed-draw ELBO after every iteration, how the rounds ended, and
    the ELBO at theta on fresh draws (nan when interrupted before it was estimated)."""

    theta: np.ndarray
    trace: np.ndarray
    converged: bool
    interrupted: bool
    elbo: float = float("nan")
    capped: bool = False            # the iteration cap stopped the rounds
    failed: np.ndarray | None = None   # draws at which theta's ELBO stayed non-finite

    @property
    def reason(self) -> str:
        return CONVERGED if self.converged else STILL_RISING


def fit(log_joint, guide, theta: np.ndarray, rng: np.random.Generator,
        progress: Callable[[int, float, float], None] | None = None,
        rounds: tuple | None = None, chunk: int | float = np.inf,
        max_iter: int | float = np.inf) -> Rounds:
    """Fit ``guide`` from ``theta``, a round per entry of ``rounds`` (ROUND_DRAWS by default;
    module docstring), in the family's units (``guide.units``) so that L-BFGS-B's first steps
    are of a sensible size in each parameter, ``max_iter`` iterations in all at most.
    ``chunk``: draws per call of the log joint (optim.score_chunk), so that a round's 1,024
    draws of a model on large data are not one [1024, N] computation.

    Ctrl-C keeps the rounds done so far (and their trace). ``progress(iteration, ELBO, 0.0)``
    is called every PROGRESS_EVERY iterations.
    """
    import scipy.optimize   # here, not at the top: 0.1-0.35 s of CPU other fits never pay
    units, trace, flat, measured, previous, done = guide.units(theta), [], 0, 0, None, 0
    capped = False

    def objective(v, start, eps, prepared):
        with np.errstate(all="ignore"):   # a far trial point may overflow
            value, gradient = _chunked_elbo_and_grad(log_joint, start + units * v, eps, guide,
                                                     chunk, prepared)
        if np.isfinite(value) and np.all(np.isfinite(gradient)):
            return -float(value), -units * gradient
        return NOT_FINITE, np.zeros_like(v)

    def record(intermediate_result):   # scipy passes the iterate's result by this name
        trace.append(-float(intermediate_result.fun))
        if progress is not None and len(trace) % PROGRESS_EVERY == 0:
            progress(len(trace), trace[-1], 0.0)

    try:
        for draws in ROUND_DRAWS if rounds is None else rounds:
            if done >= max_iter:
                capped = True
                break
            eps, finite, terms = finite_draws(log_joint, guide, theta, rng, draws, chunk)
            if not finite:
                return Rounds(theta, np.asarray(trace, dtype=float), False, False, failed=eps)
            if previous is not None:   # the last round's gain, on draws it has not seen
                flat = _flat(flat, *paired_gain(log_joint, guide, previous, theta, eps, chunk,
                                                terms))
                measured += 1
            previous = theta
            # what the family computes from the round's draws alone, once for its iterations
            prepared = guide.prepare(eps) if hasattr(guide, "prepare") else None
            found = scipy.optimize.minimize(objective, np.zeros_like(theta),
                                            args=(theta, eps, prepared),
                                            jac=True, method="L-BFGS-B", callback=record,
                                            options={"maxiter": min(ROUND_ITER,
                                                                    max_iter - done),
                                                     "maxcor": MEMORY})
            theta, done = theta + units * found.x, len(trace)
    except KeyboardInterrupt:
        interrupted, trace = True, trace[:done]
    else:
        interrupted = False
    trace = np.asarray(trace, dtype=float)
    try:
        final, finite, terms = _final_draws(log_joint, guide, theta, chunk)
    except KeyboardInterrupt:   # a second Ctrl-C: the rounds done, with no estimate
        return Rounds(theta, trace, False, True)
    if not finite:
        return Rounds(theta, trace, False, interrupted, failed=None if interrupted else final)
    elbo = float(np.mean(terms))
    if previous is not None and not (capped or interrupted):
        # the last round's gain, on the final estimate's draws, which no round has seen
        flat = _flat(flat, *paired_gain(log_joint, guide, previous, theta, final, chunk, terms))
        measured += 1
    # fewer gains than FLAT_ROUNDS (a single round measures one): all of them flat
    converged = not (capped or interrupted) and measured > 0 and \
        flat >= min(FLAT_ROUNDS, measured)
    return Rounds(theta, trace, converged, interrupted, elbo, capped)


def _flat(flat: int, gain: float, se: float) -> int:
    """The count of flat gains in a row after one more ``gain`` (standard error ``se``): a gain
    below FLAT_SE standard errors is flat; a larger one, or one not finite, is not."""
    return flat + 1 if np.isfinite(gain) and gain < FLAT_SE * se else 0


def _final_draws(log_joint, guide, theta, chunk: int | float = np.inf):
    """(draws, finite, the ELBO's terms at them) of the final ELBO's estimate: FINAL_DRAWS
    mirrored pairs of a stream of their own (the fit's is left as it was)."""
    return finite_draws(log_joint, guide, theta, np.random.default_rng(SEED), FINAL_DRAWS,
                         chunk)


def final_gain(log_joint, guide, before, after, chunk: int | float = np.inf
               ) -> tuple[float, float]:
    """:func:`paired_gain` of ``after`` over ``before`` on the final estimate's draws
    (:func:`_final_draws`): the ELBO a fit ended at against where it started."""
    eps, finite, terms = _final_draws(log_joint, guide, after, chunk)
    return paired_gain(log_joint, guide, before, after, eps, chunk, terms if finite else None)


def elbo_estimate(log_joint, guide, theta, chunk: int | float = np.inf) -> float:
    """The ELBO at ``theta`` as a fit's final ELBO is estimated (:func:`_final_draws`); -inf
    when it is not finite at any of the draws tried."""
    _, finite, terms = _final_draws(log_joint, guide, theta, chunk)
    return float(np.mean(terms)) if finite else -np.inf


def finite_draws(log_joint, guide, theta, rng: np.random.Generator, pairs: int,
                 chunk: int | float = np.inf) -> tuple[np.ndarray, bool, np.ndarray]:
    """(draws, whether the ELBO of ``theta`` is finite at them, its terms there [2 pairs]):
    ``pairs`` standard-normal draws and their mirror images [2 pairs, D], new ones while it is
    not, MAX_FAILURES sets in all (as the step loop retries a non-finite step). The draws are
    read-only: fixed for the round, as is what the family computes from them alone once a
    round (``guide.prepare``: scaled's pairwise products)."""
    for _ in range(MAX_FAILURES):
        eps = rng.standard_normal((pairs, guide.eps_dim(guide.D)))
        eps = np.concatenate([eps, -eps])
        eps.flags.writeable = False
        with np.errstate(all="ignore"):
            terms = _elbo_draws(log_joint, guide, theta, eps, chunk)
        if np.all(np.isfinite(terms)):
            return eps, True, terms
    return eps, False, terms


def _chunked_elbo_and_grad(log_joint, theta, eps, guide, chunk,
                           prepared: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """elbo_and_grad at the draws ``eps``, ``chunk`` draws a call: the estimate and its
    gradient are means over the draws (the entropy is the same in every chunk), so the chunks'
    results weighted by their sizes are the whole's, up to rounding. One call when the draws
    fit in one chunk, as on every model but large data. ``prepared``: ``guide.prepare(eps)``
    (a row per draw, so a chunk takes its draws' rows) or None."""
    if len(eps) <= chunk:
        return elbo_and_grad(log_joint, theta, eps, guide, prepared=prepared)
    value, gradient = 0.0, 0.0
    for at in range(0, len(eps), int(chunk)):
        part = eps[at:at + int(chunk)]
        part_value, part_gradient = elbo_and_grad(
            log_joint, theta, part, guide,
            prepared=None if prepared is None else prepared[at:at + int(chunk)])
        value, gradient = value + len(part) * part_value, gradient + len(part) * part_gradient
    return value / len(eps), gradient / len(eps)


def paired_gain(log_joint, guide, before, after, eps, chunk: int | float = np.inf,
                after_terms: np.ndarray | None = None) -> tuple[float, float]:
    """The ELBO estimate at ``after`` minus at ``before`` on the same mirrored draws ``eps``
    [2 M, D], and its standard error (from the M pair means: a draw and its mirror are not
    independent). A non-finite value at either is no gain. ``chunk``: draws per call;
    ``after_terms``: the ELBO's terms at ``after`` on ``eps`` when already computed (a
    round's start checked them finite)."""
    with np.errstate(all="ignore"):
        if after_terms is None:
            after_terms = _elbo_draws(log_joint, guide, after, eps, chunk)
        difference = after_terms - _elbo_draws(log_joint, guide, before, eps, chunk)
    if not np.all(np.isfinite(difference)):
        return -np.inf, 0.0
    half = len(eps) // 2
    pairs = 0.5 * (difference[:half] + difference[half:])
    return float(pairs.mean()), float(pairs.std(ddof=1) / np.sqrt(half))


def _elbo_draws(log_joint, guide, theta, eps, chunk: int | float = np.inf) -> np.ndarray:
    """The ELBO's terms [S] at the draws ``eps``: log p(zeta_s) plus the family's entropy
    (closed form in a family fitted on fixed draws), ``chunk`` draws per call."""
    step = len(eps) if len(eps) <= chunk else int(chunk)
    log_p = np.concatenate([log_joint(guide.draw(theta, eps[at:at + step]))
                            for at in range(0, len(eps), step)])
    return log_p + guide.entropy(theta)
