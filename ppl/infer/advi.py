"""The ADVI fit: the family ladder (warm starts) and the driver of the step loop.

Works on anything shaped like ``compiler.Compiled`` (``dim``, ``log_joint``, ``terms``,
``unconstrained_names``); the ELBO and its gradient come from elbo.py, the optimizers from
optim.py. The loop is pure steps, ``steps.init`` and ``steps.update`` (one optimizer step with
non-finite recovery), and small policies from schedule.py (convergence, step size, whitening)
that the driver, ``_run``, consults at the end of each window: ``window_end`` merges their
answers with the early stop's into one action (pure, tested alone by a table), ``_restart``
takes a restart's.
We maximize the ELBO; the optimizers minimize, so the sign flips once, in ``_loss`` below.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd import grad as _grad

from . import diagnostics
from .diagnostics import settle
from .early import STOPPED, ReliableWeights, check_window
from .elbo import elbo_value, make_objective
from ..errors import (diverged, diverged_runaway_mean, diverged_unbounded_scale, guide_not_finite, not_finite_at_start,
                      unbounded_elbo, warm_start_diverged)
from ..guides import MEAN_FIELD, WARM_FROM, family, user
from ..options import FitOptions
from . import fixed_draws, params_em, steps
from .optim import draw_elements, hessian_chunk, optimizer, score_chunk
from .point import fit_point, warn_unmoved
from .precondition import Coordinates, Frame, dense, estimate
from .schedule import (CONTINUE, CONTROLLED_AVERAGE_WINDOWS, CONTROLLED_DECAYS,
                       CONTROLLED_FINAL_PASSES, DECAY, FALLEN, HESSIAN_DRAWS, STOP,
                       Convergence, StepSize, Whitening, Windows, fell, window_fell)
from .schedule_batch import BatchConvergence, BatchWindows

CONVERGED = "converged: relative change of the windowed mean ELBO < tol"
# a model with no continuous latent (nor param): no steps, and its ELBO is exactly log p(data)
# (discrete latents are summed out of the log joint)
NO_LATENTS = "converged: no continuous latent variables to fit; the ELBO is log p(data)"
MAX_ITER = "max iterations"
INTERRUPTED = "interrupted"
NOT_AT_OPTIMUM = "the ELBO stopped changing away from its optimum"
FELL = "diverged: the ELBO ended below its first steps"
# a full rank with params whose steps the cap stopped (a param still drifting holds the rule,
# schedule.drifting), finished by EM (params_em.py) until its params settled
FINISHED_BY_EM = "converged: the iteration cap stopped the steps, then EM settled the params"

MAX_FAILURES = steps.MAX_FAILURES  # consecutive non-finite steps before 'diverged'
START_DRAWS = 10      # draws of the initial guide tried before giving up at the start
PROGRESS_EVERY = 10


@dataclass(frozen=True)
class AdviResult:
    """The fitted guide and how the fit went.

    Attributes
    ----------
    guide : the variational family (ppl.guides), e.g. MEAN_FIELD or FullRank(D).
    theta : its fitted parameters on the unconstrained space (layout owned by the family).
    mu, log_sigma : [D] the guide's mean and log marginal sds (properties; for mean field
        exactly its parameters).
    names : the D unconstrained element names (``compiled.unconstrained_names()``).
    elbo : [steps] the ELBO estimate of every accepted step.
    converged : whether the convergence rule, or the early stop on reliable or nearly equal
        importance weights (early.py), stopped the fit (or it had nothing to fit).
    reason : CONVERGED, MAX_ITER, INTERRUPTED, NOT_AT_OPTIMUM, FELL, NO_LATENTS, or an early
        stop's (early.WEIGHTS_RELIABLE or early.WEIGHTS_EQUAL) followed by the check's k̂ and
        ESS.
    steps : accepted optimizer steps (the eta search not counted).
    seconds : wall time of the whole fit, search included.
    lr : the base step size of the first window (given, picked by the search, or
        schedule.FIRST_WINDOW's where a search follows the first whitening).
    final_elbo : mean ELBO estimate over the last window of steps (a fit on fixed draws:
        the estimate on fresh draws, fixed_draws.py; no latents: log p(data); interrupted
        before its first step: the ELBO at its start).
    jitter : the iterates' jitter over the last full window, in guide sds (see ``fit``); nan
        when the fit took no full window.
    unmoved_final_elbo : nan, or when ``--guide auto`` moved the fit to its importance-weighted
        moments after its steps (auto.moment_matched), the final ELBO the steps ended at: then
        ``elbo``, ``converged``, ``reason`` and ``steps`` are the steps', ``theta`` and
        ``final_elbo`` (estimated as a fit on fixed draws' is) the moved fit's.
    phases : ((family name, index in ``elbo`` of its first step), ...) of a fit that went on
        from another family's (a warm start: ``--guide fullrank`` after mean field's steps,
        auto's flow after the Gaussian it starts from), in order; () when every step in
        ``elbo`` is ``guide``'s own. ``ppl plot`` marks where each begins.
    """
    guide: object
    theta: np.ndarray
    names: tuple
    elbo: np.ndarray
    converged: bool
    reason: str
    steps: int
    seconds: float
    lr: float
    final_elbo: float
    jitter: float = float("nan")
    unmoved_final_elbo: float = float("nan")
    phases: tuple = ()

    def own_phases(self) -> tuple:
        """``phases``, or, for a fit of one family, that family from its first step."""
        return self.phases or ((self.guide.name, 0),)

    @property
    def moved(self) -> bool:
        """Whether ``--guide auto`` moved the fit after its steps (``unmoved_final_elbo``)."""
        return not np.isnan(self.unmoved_final_elbo)

    @property
    def mu(self) -> np.ndarray:
        return self.guide.mean(self.theta)

    @property
    def log_sigma(self) -> np.ndarray:
        return self.guide.log_sd(self.theta)


def fit(compiled, options, rng: np.random.Generator,
        progress: Callable[[int, float, float], None] | None = None,
        warm: AdviResult | None = None) -> AdviResult:
    """Fit a mean-field Gaussian guide to ``compiled``'s posterior by maximizing the ELBO.

    Steps: check the log joint is finite somewhere near the start; pick the step size by
    CmdStan's eta search unless ``options.lr`` is given (optim.search_lr, schedule.ADAPT_ITER
    steps per trial; Adam's grid is Stan's divided by 10, its largest tried only when the next
    wins); then take steps with
    ``options.mc_samples`` draws each. With whitening (mean field, ``options.precondition``),
    after the first window the mean's coordinates are whitened (a guide still far from its
    optimum first taken there by Newton steps, newton.py) and the step size searched again in
    them (see ``_run``). Where that whitening is dense, its Hessian also makes a control
    variate that takes most of the Monte Carlo noise out of the steps' gradient from its
    first refresh on (control.py), and the rule below takes schedule.CONTROLLED_DECAYS (1)
    decay, settles at the final step size on schedule.CONTROLLED_FINAL_PASSES (1) passing
    check and averages schedule.CONTROLLED_AVERAGE_WINDOWS (2) windows.

    Convergence (schedule.Convergence): every ``options.window`` steps the last two windows of
    ELBO estimates taken at the current step size are compared by schedule.plateau (a relative
    change below ``tol``, allowing for Monte Carlo noise; z = 2, so on a flat trace a check
    passes about 95% of the time). A check also passes when the iterates bounce in place
    (schedule.bouncing: a jitter above 1 guide sd while no parameter's window mean moved more
    than its own spread over the window): the step size is then too large to settle, whatever the
    ELBO does. After schedule.PASSES consecutive passing checks the fit gets no further at this step
    size. Then the step size is multiplied by schedule.DECAY_FACTOR and the optimizer's moments are
    restarted (Adam's second moment would otherwise remember the large early gradients for ~1000
    steps and stall), at least ``schedule.min_decays(tol)`` times (2 at the default tol) and
    until the iterates' jitter over the last window is at most ``schedule.jitter_tol(tol)``
    (the largest sd of an iterate, mu_i in units of the guide's sigma_i, log sigma_i as is;
    0.2 at the default tol). So a tighter tol gives smaller final steps,
    more of them and a smaller jitter. Why: Adam's steps are about lr in absolute units, so
    a coordinate whose posterior sd is far below lr jitters over many sds; that costs ELBO
    (about j^2/2 nats per coordinate at jitter j) and biases coupled parameters (a regression's
    noise scale absorbs the jittering coefficients' residuals). The fit has then converged; it
    steps on at the final step size, without checking again, until ``AVERAGE_WINDOWS`` windows
    were taken there and returns the average of their iterates (Polyak-Ruppert averaging).
    Without a control variate the error left is at least 1 / sqrt(AVERAGE_WINDOWS * window *
    mc_samples) posterior sds (0.02 with the defaults; more, as the iterates are correlated:
    tests/stats measures it); raise ``window`` or ``mc_samples`` to shrink it. With one, the
    gradient's noise is what log p's departure from a quadratic leaves. Under ``--batch`` the
    rule is schedule_batch.BatchConvergence: this one up to its plateaus and decays, then
    averaging until the average's Monte Carlo standard error is small (docs/minibatch.md).
    Otherwise the fit stops at ``options.iter`` steps (reason MAX_ITER) or on KeyboardInterrupt
    (INTERRUPTED), returning the current parameters.

    Non-finite values: a step whose ELBO or gradient is not finite is discarded and retried from
    the last good state with half the step size (then a quarter, ...; the base step size is kept
    afterwards, so a draw that now and then lands in a bad region does not slow the rest of the
    fit). After ``MAX_FAILURES`` consecutive failures, PplError ``diverged`` names the first
    statement whose term (or its gradient) is not finite at the failing draws.

    Parameters
    ----------
    compiled : compiler.Compiled (or any object with dim, log_joint, terms, unconstrained_names).
    options : FitOptions (iter, lr, mc_samples, optimizer, stl, tol, window, init_scale).
    rng : the fit's one Generator; every eps comes from it (same seed, bit-identical result).
    progress : called as progress(step, mean ELBO of the last window, lr) every 10 steps.
    warm : a finished fit of a Gaussian family (``--guide auto`` climbs the families so), or
        of a flow with fewer layers (auto's last rung), the warm start of ``options.guide``
        instead of fitting the family WARM_FROM names; ignored when it is of
        ``options.guide``'s own family.

    Raises
    ------
    PplError : not_finite_at_start, diverged.
    """
    # overflow and NaN are expected on the way (bad draws, the largest trial step sizes) and
    # are handled by the checks below, so numpy's warnings about them are noise
    with np.errstate(all="ignore"):
        result = _fit(compiled, options, rng, progress, warm)
        if options.batch is None and user.applies(compiled) and \
                not user.point_only(compiled) and result.reason != INTERRUPTED:
            _warn_unmoved_params(compiled, result)
            if _finished_after_steps(compiled, result):
                result = _polished_params(compiled, result, rng)
    _refuse_unbounded_elbo(result)
    if result.reason == CONVERGED and not user.applies(compiled) and options.batch is None:
        try:
            result = _checked(compiled, result)
        except KeyboardInterrupt:
            # Ctrl-C while its optimum was checked (or polished: seconds on large data): the
            # fit as the rule stopped it, not known to be at its optimum
            return dataclasses.replace(result, converged=False, reason=INTERRUPTED)
        _refuse_unbounded_elbo(result)   # the polish may have climbed further
    return result


# An ELBO beyond this is no proper posterior's: it is at most the log evidence, and a log
# evidence of 1e30 would take ~1e27 observations. An improper posterior whose log density
# grows without bound need not diverge: 'factor exp(mu)' (a Normal prior) "converged" at an
# ELBO of 5e240 with mean field, whose summary was then printed as a posterior's
UNBOUNDED_ELBO = 1e30


def _refuse_unbounded_elbo(result: AdviResult) -> None:
    if result.final_elbo > UNBOUNDED_ELBO:
        raise unbounded_elbo(result.steps, result.final_elbo)


def _warn_unmoved_params(compiled, result: AdviResult) -> None:
    """Warn of the params the fit left at their random start with an ELBO gradient of exactly
    0 at its end (point.warn_unmoved), from diagnostics.DRAWS draws of the check's own stream:
    a param read only through a comparison (where(x < c, a, 0)) or 'factor 0 * k' reported its
    start, converged and reliable, with no word (point fits said so already)."""
    guide = result.guide
    eps = np.random.default_rng(diagnostics.SEED).standard_normal(
        (diagnostics.DRAWS, guide.eps_dim(compiled.dim)))
    gradient = make_objective(compiled.log_joint, guide, False)(result.theta, eps)[1]
    warn_unmoved(result.theta, gradient, guide, result.names, stacklevel=4)


# The rounds of fixed draws (fixed_draws.py) that finish a converged ADVI fit with params and
# a Gaussian guide: Adam's noisy steps leave a param whose ELBO is flat on one side drifting
# that way (its gradient's noise shrinks with its signal there, and Adam's steps are scaled
# by that noise). Empirical-Bayes eight schools (param mu, param tau ~ HalfNormal(3), eta ~
# Normal(0, 1); tests/unit/test_params.py's EB_SCHOOLS) ended at tau 0.09-0.21 against the
# exact MAP-II's 0.17-0.26 at data seeds 42, 174 and 186 (all 9 fits low, the objective
# 0.001 nats below its maximum, the groups' sds up to 30% short), and at tau 0.001 with
# windows of 500 steps; under --guide fullrank at 0.03-0.06, centred at 0.60 (MAP-II 0.254).
# A first round moves the params; the last one's 1,024 draws fit the guide about as well as
# the steps did (one round of 256 left its ELBO 0.01-0.04 nats below the steps', on draws it
# had not seen: a fit of the guide's 2 D parameters to so few draws). Both took every fit to
# within 0.002-0.007 of the MAP-II. Up to POLISH_MAX_PARAMS free parameters of the guide
# (:func:`_free`; mean field's D <= 500, full rank's D <= 43): fitted to n mirrored pairs, k
# parameters are about k / 2n nats short out of sample (the optimism _polished_params allows
# for; :func:`_last_pairs`), and the rounds' draws cost what the model's size makes them
# (probabilistic PCA, param W: real[2, 8], param s, z: real[500, 2], D = 1,000, took 4.2-5.7x
# the CPU of its steps for a log likelihood 0.08 nats higher). The bound was 200 (mean field's
# D <= 100): one-way random intercepts with D = 101 and 150 then kept tau at 0.34 and 0.42
# against MAP-IIs of 0.261 and 0.385, the groups' sds 27% wide, and a local-level model's
# full rank (D = 41, 902 free parameters; auto.fit_with_params) q at 0.185 against 0.234;
# finished, all three within 0.003, their latents' sds within 3% of the exact, for 0.2-1 s.
# Not a flow, whose networks overfit so few draws, nor guided latents, whose entropy varies
# with the draw (fixed_draws.py).
PARAM_ROUNDS = (128, 512)
POLISH_MAX_PARAMS = 1000
# ... and up to POLISH_MAX_ELEMENTS in the largest per-draw value (optim.draw_elements) times a
# round's 1,024 draws: an evaluation then costs what its data make it. One-way random
# intercepts, mean field, seeds 0-1: 500 groups of 4 rows (2,000 elements) took 2.9-3.1x the
# CPU of the steps alone (1,000 pairs in the last round), and left tau 0.318 against the
# steps' 0.336 (MAP-II 0.318, 0.12 nats); 500 groups of 20 rows (10,000) 3.1-3.5x (512 pairs)
# for 0.003 nats; the 20,000-row regression of benchmarks/param_polish.py --large, its params
# unchanged to 3 digits, 1.15-1.40x
POLISH_MAX_ELEMENTS = 4_000_000


def _free(guide) -> int:
    """The automatic family's free parameters: full rank's theta holds all of L's D^2
    entries, of which the D (D + 1) / 2 of its lower triangle are used."""
    D = guide.d_auto
    return D * (D + 3) // 2 if guide.auto.name == "fullrank" else guide.n_auto_theta


def _finished_after_steps(compiled, result: AdviResult) -> bool:
    """Whether a fit with params is finished after its steps (:func:`_polished_params`): by
    the rounds where its steps converged; a full rank too large for them by EM, also where
    the iteration cap stopped them (FINISHED_BY_EM)."""
    if _finishes_by_em(compiled, result.guide):
        return result.converged or result.reason == MAX_ITER
    return result.converged and _polishes(compiled, result.guide)


def _params_finished(compiled, guide) -> bool:
    """Whether the params of a fit of ``guide`` are finished after its steps, by the rounds
    or by EM (:func:`_finished_after_steps` says which fits, once they have run)."""
    return user.applies(compiled) and (_polishes(compiled, guide) or
                                       _finishes_by_em(compiled, guide))


def _polishes(compiled, guide) -> bool:
    return guide.n_guided == 0 and guide.auto.name in ("meanfield", "fullrank") and \
        _free(guide) <= POLISH_MAX_PARAMS and _affordable(compiled)


def _finishes_by_em(compiled, guide) -> bool:
    """A full rank too large for :func:`_polishes` is finished by EM (params_em.py), up to
    params_em.MAX_DIM latents, where auto's Gaussian rung of a model with params becomes low
    rank (an E step's Hessian costs 2 D gradients of 128 draws). Not a smaller one: EM stays
    where a noncentred scale starts near 0 (params_em.py), which the rounds leave (EB schools
    under --guide fullrank, seeds 0-9: tau 0.027-0.255 by EM, 0.254-0.255 by the rounds;
    MAP-II 0.254; with the drift hold lifted EM reaches it too, but ends farther from the test
    models' MAP-II than the rounds, at 1.7-2.4x auto's CPU: params_em.py)."""
    return params_em.applies(guide) and _free(guide) > POLISH_MAX_PARAMS and \
        guide.d_auto <= params_em.MAX_DIM and _affordable(compiled)


def _affordable(compiled) -> bool:
    model = getattr(compiled, "model", None)   # a bare log density (the tests'): no size
    return model is None or 2 * PARAM_ROUNDS[-1] * draw_elements(model) <= POLISH_MAX_ELEMENTS


def _last_pairs(compiled, guide) -> int:
    """The last round's mirrored pairs: 2 k for k free parameters, so that the guide's shortfall
    on fresh draws (k / 2n nats, below) is about 1/4 nat, within POLISH_MAX_ELEMENTS per
    evaluation, and never fewer than PARAM_ROUNDS' last. With 512, full rank's 665 on crossed
    random effects (20 and 15 levels, D = 35) ended 0.4-0.5 nats lower on k̂'s draws than with
    1,330, which made its ELBO tie with mean field's, and auto kept mean field at 2 seeds of 3,
    0.06-0.08 nats below the MAP-II and its latents up to 0.40 sd off
    (tests/stats/test_params_auto.py)."""
    model = getattr(compiled, "model", None)
    room = np.inf if model is None else POLISH_MAX_ELEMENTS // (2 * draw_elements(model))
    return int(max(PARAM_ROUNDS[-1], min(2 * _free(guide), room)))


def _polished_params(compiled, result: AdviResult, rng: np.random.Generator) -> AdviResult:
    """``result`` (a converged fit of a user guide, :func:`_polishes`) taken on by PARAM_ROUNDS
    of L-BFGS-B on fixed draws, the guide's parameters and the params together (or, for a
    full rank too large for that, :func:`_finishes_by_em`, by EM rounds: params_em.py; also
    after the iteration cap, and then, where EM's params settled, converged, FINISHED_BY_EM),
    unless its ELBO on draws no round has seen is lower than the fit's by more than
    fixed_draws.FLAT_SE standard errors of the difference and the fit's optimism (below); its
    final ELBO is then fixed_draws' estimate (2,048 fresh draws, not the last window's
    steps). The fit's trace, steps and reason stand. Ctrl-C, or a round not finite, keeps
    the fit as it was."""
    start = time.perf_counter()
    chunk = fixed_draws_chunk(compiled)
    try:
        if _polishes(compiled, result.guide):
            pairs, free = _last_pairs(compiled, result.guide), _free(result.guide)
            rounds = fixed_draws.fit(compiled.log_joint, result.guide, result.theta, rng,
                                     rounds=PARAM_ROUNDS[:-1] + (pairs,), chunk=chunk)
            if rounds.interrupted or rounds.failed is not None or not np.isfinite(rounds.elbo):
                return result
            theta, elbo, settled = rounds.theta, rounds.elbo, False
        else:
            finished = params_em.finish(compiled, result.guide, result.theta, rng,
                                        _hessian_chunk(compiled), chunk)
            if finished is None:
                return result
            (theta, elbo, free, settled), pairs = finished, params_em.M_ROUNDS[-1]
        gain, se = fixed_draws.final_gain(compiled.log_joint, result.guide, result.theta,
                                          theta, chunk)
    except KeyboardInterrupt:
        return result
    # the guide fitted to n mirrored pairs is, on draws it has not seen, about k / (2 n) nats
    # below its own optimum (k its free parameters; AIC's optimism: a pair's two draws tell a
    # scale the same thing), where the steps' guide is not. 16 / 1024 for EB_SCHOOLS, whose
    # gains were -0.004 on average (seeds 0-9, data seed 186); full rank's 902 (a local-level
    # model, D = 41) ended 0.8-1.0 nats below the steps' guide, beyond the k / 4n per draw
    # this allowed before, and the steps' params were kept (q 0.195 against 0.234)
    optimism = free / (2 * pairs)
    if not gain >= -(fixed_draws.FLAT_SE * se + optimism):
        return result
    finished = dataclasses.replace(result, theta=theta, final_elbo=elbo,
                                   seconds=result.seconds + time.perf_counter() - start)
    if result.reason == MAX_ITER and settled:
        return dataclasses.replace(finished, converged=True, reason=FINISHED_BY_EM)
    return finished


def _checked(compiled, result: AdviResult) -> AdviResult:
    """A converged result whose mean is not at a stationary point of the ELBO is polished
    there (mean field), or reported as not converged, with a warning naming the cause
    (diagnostics.py)."""
    theta, final_elbo, warning = settle(compiled, result.guide, result.theta, result.lr,
                                        result.final_elbo)
    result = dataclasses.replace(result, theta=theta, final_elbo=final_elbo)
    if warning is None:
        return result
    warnings.warn(warning, stacklevel=3)
    return dataclasses.replace(result, converged=False, reason=NOT_AT_OPTIMUM)


def _fit(compiled, options, rng, progress, warm=None) -> AdviResult:
    # 'auto' climbs the families in infer/auto.py; here, fitting one family, it is its first
    spec = "meanfield" if options.guide == "auto" else options.guide
    if options.batch is not None:   # compiled is an infer.minibatch.Minibatch
        from .minibatch import fit as fit_minibatch
        return fit_minibatch(compiled, options, rng, progress)
    if user.applies(compiled):   # params or guide statements: no warm start, no whitening
        guide = user.family_for(compiled, spec, rng, options.init)
        if user.point_only(compiled):
            return fit_point(compiled, guide, options, progress)
        return _fit_plain(compiled, guide, guide.init(compiled.dim, options.init_scale),
                          options, rng, progress, False, time.perf_counter())
    guide = family(spec, compiled.dim)
    return _fit_family(compiled, guide, options, rng, progress, time.perf_counter(), warm)


def _fit_family(compiled, guide, options, rng, progress, start_time, warm=None) -> AdviResult:
    """Fit ``guide``; a richer family first fits the one it is warm-started from (WARM_FROM).

    The warm start is a change of coordinates (precondition.Frame): zeta = m0 + W u, with m0
    and W the source fit's mean and affine factor (mean field: W = diag(sigma); full rank: L)
    or, for a family that allows a dense W, the whitening of the expected Hessian under the
    mean-field fit (precondition.whiten; only with ``precondition='hessian'``). The family is
    fitted in u from a standard normal start, i.e. from the Gaussian N(m0, W W^T), and mapped
    back exactly by ``push_affine``; a flow warm-started from a flow with fewer layers starts
    as that flow (its frame the source's mu and A, its first layers the source's:
    ``Flow.stacked_start``). The trace, steps and seconds cover the whole chain. The
    family's own phase takes ``guide.window_scale`` times the window and iteration cap and
    ``guide.draws_scale`` times the draws per step.
    """
    base = guide.name.partition(":")[0]
    if base not in WARM_FROM or compiled.dim == 0:
        return _fit_plain(compiled, guide, guide.init(compiled.dim, options.init_scale),
                          options, rng, progress, _can_whiten(options), start_time)
    source = family(WARM_FROM[base], compiled.dim)
    if warm is not None and warm.guide.name != guide.name:   # any fitted Gaussian will do
        # its steps, trace and seconds begin the chain (--guide auto: mean field's time too)
        source, first, start_time = warm.guide, warm, start_time - warm.seconds
    else:   # a flow's warm start is only a start: a shorter window (flow.py), of the two
        # steps a window needs at least (FitOptions)
        window = max(2, round(options.window * getattr(guide, "warm_window_scale", 1)))
        first = _fit_family(compiled, source, replace(options, window=window), rng, progress,
                            start_time)
    if first.reason != INTERRUPTED:
        _check_warm(source, first, guide)
    if getattr(guide, "fixed_draws", False) and first.reason != INTERRUPTED:
        return _fit_fixed_draws(compiled, guide, guide.warm_start(source, first.theta), first,
                                rng, progress, start_time, options)
    try:
        if first.reason == INTERRUPTED:
            raise KeyboardInterrupt
        m0, W = source.frame(first.theta)
        if guide.dense_frame and source is MEAN_FIELD and _can_whiten(options):
            whitened = mean_field_frame(compiled, first.theta, rng)
            if whitened.L is not None:
                W = whitened.matrix()
    except KeyboardInterrupt:
        # stopped before this family's own steps: report it at its warm start
        return _after(first, guide, guide.warm_start(source, first.theta), np.zeros(0), False,
                      INTERRUPTED, first.lr, first.final_elbo, start_time)
    framed = Frame(compiled, m0, W)
    scale = guide.window_scale   # longer windows and more draws per step for a flow (flow.py)
    phase = replace(options, window=options.window * scale, iter=options.iter * scale,
                    mc_samples=options.mc_samples * guide.draws_scale)
    stacked = guide.stacked_start(source, first.theta) if hasattr(guide, "stacked_start") \
        else None
    start = guide.init(compiled.dim, 1.0) if stacked is None else stacked
    second = _fit_plain(framed, guide, start, phase, rng,
                        _counted_on(progress, first, framed.log_det), False, start_time)
    return _after(first, guide, guide.push_affine(second.theta, m0, W),
                  second.elbo + framed.log_det, second.converged, second.reason, second.lr,
                  second.final_elbo + framed.log_det, start_time, second.jitter)


def _after(first: AdviResult, guide, theta, trace, converged: bool, reason: str, lr: float,
           final_elbo: float, start_time: float, jitter: float = float("nan")) -> AdviResult:
    """The result of a fit of ``guide`` that went on from the fit ``first`` (its warm start's
    source, or an earlier fit of ``guide``): ``trace`` holds this phase's own ELBOs, and the
    result's trace, steps and seconds (from ``start_time``, ``first``'s) cover both;
    ``jitter`` is this phase's (in its own guide sds; nan for a phase without windows)."""
    phases = first.own_phases()
    if guide.name != phases[-1][0]:
        phases += ((guide.name, len(first.elbo)),)
    return AdviResult(guide, theta, first.names, np.concatenate([first.elbo, trace]),
                      converged, reason, first.steps + len(trace),
                      time.perf_counter() - start_time, lr, final_elbo, jitter,
                      phases=phases if len(phases) > 1 else ())


def _counted_on(progress, first: AdviResult, log_det: float = 0.0):
    """``progress`` for a phase that goes on from the fit ``first`` (:func:`_after`): its steps
    counted on from ``first``'s, its ELBO plus ``log_det`` (a frame's: the model's ELBO); None
    without a callback."""
    if progress is None:
        return None

    def counted_on(step, value, lr):
        progress(step + first.steps, value + log_det, lr)
    return counted_on


def mean_field_frame(compiled, theta: np.ndarray, rng: np.random.Generator) -> Coordinates:
    """The whitening of the expected Hessian under the mean-field fit ``theta`` (HESSIAN_DRAWS
    of its draws from ``rng``), Jacobi-scaled where its eigenvalues span more than float64's
    eigh resolves (precondition.whiten): the frame a family with a dense W is fitted in, and
    the start auto.fullrank_start probes."""
    draws = MEAN_FIELD.draw(theta, rng.standard_normal((HESSIAN_DRAWS, compiled.dim)))
    return estimate(compiled.log_joint, theta, draws, np.exp(MEAN_FIELD.log_sd(theta)),
                    _hessian_chunk(compiled), jacobi=True)


def _check_warm(source, first: AdviResult, guide) -> None:
    """Raise warm_start_diverged when the fit ``first`` of ``source`` cannot start ``guide``:
    its ELBO fell (FELL), or its Gaussian is degenerate (a scale of zero, as from a log sigma
    that diverged below -745, or not finite). From such a fit the flow had reported
    'converged' with a final ELBO of -inf (its frame's log|det W| = -inf) and scaled an
    internal error (a singular A), on logistic_regression with --optimizer sgd --lr 0.5."""
    why = "its ELBO fell below its first steps" if first.reason == FELL else None
    if why is None:
        try:
            m0, W = source.frame(first.theta)
            W = np.diag(W) if np.ndim(W) == 1 else W
            log_det = np.linalg.slogdet(W)[1]
        except np.linalg.LinAlgError:
            log_det = -np.inf
        if not (np.isfinite(log_det) and np.all(np.isfinite(m0))):
            why = "its scale collapsed to zero or is not finite"
    if why is not None:
        raise warm_start_diverged(guide.name.partition(":")[0], source.name, first.steps, why)


def refine(compiled, result: AdviResult, rng: np.random.Generator, rounds: tuple,
           progress=None) -> AdviResult:
    """More rounds (fixed_draws.py) of a fit on fixed draws, from where ``result`` ended; the
    trace, steps and seconds go on from its (auto refines no fit the iteration cap stopped).

    Raises
    ------
    PplError : diverged (see :func:`_fit_fixed_draws`).
    """
    start_time = time.perf_counter() - result.seconds
    with np.errstate(all="ignore"):
        return _fit_fixed_draws(compiled, result.guide, result.theta, result, rng, progress,
                                start_time, rounds=rounds)


def _fit_fixed_draws(compiled, guide, theta, first, rng, progress, start_time,
                     options: FitOptions | None = None, rounds: tuple | None = None
                     ) -> AdviResult:
    """``guide`` fitted on fixed draws (fixed_draws.py) from ``theta``, after the fit
    ``first`` (its warm start's source, or an earlier fit of ``guide``); its L-BFGS-B
    iterations are this phase's steps, ``options.iter`` at most (reason MAX_ITER). The final
    ELBO is fixed_draws' estimate on fresh draws (the last iterate's value on its own round's
    draws when Ctrl-C left none). ``rounds``: fixed_draws.fit's.

    Raises
    ------
    PplError : diverged, naming the statement whose term was not finite, when the ELBO was not
        finite at a round's start (or at the end) on every set of draws tried.
    """
    fitted = fixed_draws.fit(compiled.log_joint, guide, theta, rng,
                             _counted_on(progress, first), rounds, fixed_draws_chunk(compiled),
                             np.inf if options is None else options.iter)
    trace = fitted.trace
    if fitted.failed is not None:
        _raise_diverged(compiled, guide, fitted.theta, fitted.failed, first.steps + trace.size,
                        None if options is None else _widened(compiled, options), rounds=True)
    final = fitted.elbo if np.isfinite(fitted.elbo) else \
        float(trace[-1]) if trace.size else first.final_elbo
    reason = INTERRUPTED if fitted.interrupted else MAX_ITER if fitted.capped else fitted.reason
    return _after(first, guide, fitted.theta, trace, fitted.converged, reason, first.lr, final,
                  start_time)


def _fit_plain(compiled, guide, theta, options, rng, progress, whitening,
               start_time) -> AdviResult:
    """Fit ``guide`` from ``theta`` in ``compiled``'s own coordinates (see :func:`fit`)."""
    D, S, W = compiled.dim, options.mc_samples, options.window
    if D == 0:
        value = float(np.mean(compiled.log_joint(np.zeros((1, 0)))))
        return AdviResult(guide, theta, (), np.zeros(0), True, NO_LATENTS, 0,
                          time.perf_counter() - start_time, 0.0, value)
    _check_start(compiled, guide, theta, rng, _widened(compiled, options),
                 options.init is not None)
    objective = make_objective(compiled.log_joint, guide, options.stl,
                               compiled if isinstance(compiled, Frame) else None)

    def _loss(params, eps):
        value, grad = objective(params, eps)
        return -value, -grad          # the one sign flip: optimizers minimize -ELBO

    def _loss_value(params, eps):
        return -elbo_value(compiled.log_joint, params, eps, guide)

    def noise(n):
        if options.batch is not None:
            compiled.next_batch()   # one minibatch per draw of noise: per step, per trial
        return rng.standard_normal((n, guide.eps_dim(D)))

    opt = optimizer(options.optimizer)
    trace = []
    policies = _policies(compiled, guide, options, whitening)
    start, fresh = theta, rng.bit_generator.state
    while True:
        try:
            lr = policies.sizes.first(_loss, start, opt, noise, S, _loss_value)
        except KeyboardInterrupt:
            lr, reason, jitter = 0.0, INTERRUPTED, float("nan")
            break
        early = None if user.applies(compiled) else ReliableWeights.for_fit(compiled, guide,
                                                                            options, rng)
        reason, theta, jitter = _run(compiled, guide, start, lr, opt, (_loss, _loss_value),
                                     noise, options, progress, trace, policies, early)
        if reason != SEARCH_FIRST:
            break
        # the first window diverged at schedule.FIRST_WINDOW's step size: the fit with the
        # search instead, bit for bit (the same random numbers from the start)
        rng.bit_generator.state, theta = fresh, start
        del trace[:]
        policies = policies._replace(sizes=replace(policies.sizes,
                                                   searched_after_first_window=False))
    trace = np.asarray(trace, dtype=float)
    final = float(trace[-W:].mean()) if len(trace) else _elbo_at_start(compiled, guide, theta)
    # the last window's median, not its mean (the final ELBO): a family with heavy tails
    # (studentt:5) has ELBO estimates with heavy lower tails, and one draw of -41,450 in a
    # window of -32.7 at its median had eight schools' fit called diverged
    if reason != INTERRUPTED and len(trace) and window_fell(trace, trace[-W:], options.tol):
        reason = FELL
    converged = reason == CONVERGED or reason.startswith(STOPPED)
    return AdviResult(guide, np.array(theta, dtype=float),
                      tuple(compiled.unconstrained_names()), trace,
                      converged, reason, len(trace), time.perf_counter() - start_time,
                      float(lr), final, jitter)


def _elbo_at_start(compiled, guide, theta) -> float:
    """The ELBO of a fit interrupted before its first step, at its start ``theta``: an
    estimate from diagnostics.DRAWS draws of the check's own stream (the fit's is left as it
    was). NaN once made the final ELBO 'nan' and fit.json invalid JSON."""
    eps = np.random.default_rng(diagnostics.SEED).standard_normal(
        (diagnostics.DRAWS, guide.eps_dim(compiled.dim)))
    return elbo_value(compiled.log_joint, theta, eps, guide)


def fixed_draws_chunk(compiled) -> int | float:
    """Draws per call of the log joint in a fit on fixed draws: a score chunk where the model's
    size is known (large data); a bare log density, whose size only its model would tell,
    takes them at once (inf)."""
    return np.inf if getattr(compiled, "model", None) is None else _score_chunk(compiled)


def _score_chunk(compiled) -> int:
    # draws per call of the step-size scores, from the model's size (a bare log density, as
    # the tests give, has no model: the chunk that is safe for any size)
    return score_chunk(getattr(compiled, "model", None))


def _hessian_chunk(compiled) -> int | None:
    # draws per gradient of the whitening's differences; None without a model (optim)
    return hessian_chunk(getattr(compiled, "model", None))


class Policies(NamedTuple):
    """The fit loop's policies (schedule.py), built once per fit by :func:`_policies`."""
    rule: Convergence | BatchConvergence
    sizes: StepSize
    preconditioner: Whitening
    windows: Windows | BatchWindows   # the rule's state at the start


def _policies(compiled, guide, options, whitening) -> Policies:
    """The policies of a fit of ``guide`` under ``options``: the windowed rule (under
    --batch, its minibatch form), the step size, and the whitening if ``whitening``."""
    # Newton steps at the first whitening: mean field, not on minibatches (a step would fit
    # the one batch it is taken on)
    newton = guide is MEAN_FIELD and options.batch is None
    # a dense whitening searches the step size again (a low-rank one keeps the first window's),
    # and its Hessian makes a control variate of the steps' gradient (control.py)
    searched = whitening and newton and dense(compiled.dim)
    preconditioner = Whitening(whitening, _hessian_chunk(compiled), newton, controls=searched)
    sizes = StepSize(options.optimizer, options.lr, _score_chunk(compiled), searched)
    if options.batch is not None:   # minibatch noise: advi's rule, then a precise average
        return Policies(BatchConvergence(options.tol, options.window), sizes, preconditioner,
                        BatchWindows())
    # a param still drifting holds the rule (schedule.drifting), but not where the rounds or
    # EM finish the params after the steps: there the hold cost up to 10,000 steps, and on
    # the way a noncentred scale drifted to 0, where a noisy guide costs the ELBO least and
    # which neither finish could leave (EB with 40 and 100 groups under --guide fullrank:
    # tau 0.004-0.014 against MAP-IIs of 1.35-2.03, 0.43-2.98 nats)
    holds = not _params_finished(compiled, guide)
    rule = (Convergence(options.tol, options.window, holds, CONTROLLED_DECAYS,
                        CONTROLLED_FINAL_PASSES, CONTROLLED_AVERAGE_WINDOWS) if searched
            else Convergence(options.tol, options.window, holds))
    return Policies(rule, sizes, preconditioner, Windows())


# What the loop does at the end of a window (window_end) besides going on (CONTINUE) or
# lowering the step size (DECAY): stop, the fit fell (FELL) or converged (CONVERGED) by the
# windowed rule, or stopped early on its importance weights (EARLY); or restart in refreshed
# coordinates, searching the step size there (RESCUE; WHITEN: the first whitening, which the
# loop takes after one window whatever the rule says).
EARLY, RESCUE, WHITEN = "early", "rescue", "whiten"
# _run's answer when the first window's steps diverged at a step size no search chose
# (schedule.FIRST_WINDOW): _fit_plain runs the fit again with the search
SEARCH_FIRST = "search first"


def window_end(verdict: str, early_reason: str | None, rescue_due: bool) -> str:
    """What the loop does at the end of a window: the windowed rule's ``verdict``
    (Convergence.at_window: CONTINUE, STOP, DECAY or FALLEN), merged with the early stop's
    reason (early.check_window; None: no stop) and whether the whitening's rescue is due
    (Whitening.rescue_due). A fall or the rule's stop comes first (the loop checks the
    weights only where the rule goes on: the check costs up to early.CHECK_DRAWS log
    densities), then the weights, then a decay; the rescue only where the rule would go on.
    One of FELL, CONVERGED, EARLY, DECAY, RESCUE, CONTINUE."""
    if verdict == FALLEN:
        return FELL
    if verdict == STOP:
        return CONVERGED
    if early_reason is not None:
        return EARLY
    if verdict == DECAY:
        return DECAY
    return RESCUE if rescue_due else CONTINUE


def _run(compiled, guide, theta, lr, opt, losses, noise, options, progress, trace,
         policies: Policies, early=None):
    """The step loop; appends to ``trace``, returns (reason, parameters to report, the last
    full window's jitter); reason SEARCH_FIRST when the first window diverged at a step size
    no search chose (``policies.sizes.skips_first_search``), which _fit_plain then searches.

    Drives the pure steps (steps.py) and the ``policies`` (schedule.py, early.py): after a
    step, at the end of a window, :func:`window_end` says what to do, stop or restart
    (:func:`_restart`) in new coordinates and/or at a new step size. The optimizer works on
    the coordinates' parameters, which are the guide's theta for the first window; then, if
    the policies whiten (mean field, when ``options.precondition`` allows), the mean's
    coordinates are whitened by the expected Hessian under the current guide
    (precondition.py), refreshed at every decay. Windows are counted from the last restart.
    Iterates are recorded as theta, whatever the coordinates.

    ``early`` (early.ReliableWeights, or None): at the end of every window after the first
    whitening and its step-size search, the fit also stops when the importance weights at the
    last window's mean iterate are reliable or nearly equal, and returns that mean (not while
    the windowed rule, settled, is averaging towards its own stop); a flow's policy that gives
    up (early.GIVE_UP) checks no more.
    """
    S, W = options.mc_samples, options.window
    rule, preconditioner, windows = policies.rule, policies.preconditioner, policies.windows
    state = steps.init(opt, Coordinates(theta[:compiled.dim]), theta, lr)
    unsearched = policies.sizes.skips_first_search
    try:
        while len(trace) < options.iter:
            eps = noise(S)
            theta = state.theta
            state, value = steps.update(state, eps, losses[0], opt, theta)
            if value is None:
                if state.failures >= MAX_FAILURES:
                    if unsearched and len(trace) < W:
                        return SEARCH_FIRST, theta, float("nan")
                    _raise_diverged(compiled, guide, theta, eps, len(trace),
                                    _widened(compiled, options), lr=options.lr)
                continue
            trace.append(value)
            windows = windows.add(theta)
            step = len(trace)
            if progress is not None and step % PROGRESS_EVERY == 0:
                progress(step, float(np.mean(trace[-W:])), state.lr)
            if preconditioner.first_due(step, W):
                windows, action = windows.closed(), WHITEN
            elif (step - windows.since) % W:
                continue
            else:
                windows, verdict = rule.at_window(windows, trace, guide)
                reason = mean = None
                if verdict in (CONTINUE, DECAY):   # (window_end: a fall, a stop come first)
                    reason, mean, early = check_window(early, compiled.log_joint, guide,
                                                       windows)
                action = window_end(verdict, reason,
                                    preconditioner.rescue_due(windows, step, options.iter))
                if action == CONTINUE:
                    continue
                if action in (FELL, CONVERGED, EARLY):
                    return *_stopped(action, state, windows, reason, mean), \
                        windows.last_jitter(guide)
            state = _restart(action, state, policies, compiled.log_joint, guide, opt, losses,
                             noise, S)
            windows = rule.restarted(windows, step)
    except KeyboardInterrupt:
        # states are immutable and replaced whole, so ``state`` is consistent here
        return INTERRUPTED, state.theta, windows.last_jitter(guide)
    # a minibatch fit stopped by the cap while averaging a stationary run returns the average
    averaged = isinstance(windows, BatchWindows) and rule.stationary(windows, guide)
    return MAX_ITER, windows.average() if averaged else state.theta, windows.last_jitter(guide)


def _stopped(action, state, windows, early_reason, mean) -> tuple[str, np.ndarray]:
    """(reason, parameters to report) of a fit that window_end stops: the last iterate of
    one that fell, the windows' average of one the rule stopped, the window's mean iterate
    at which the weights were checked."""
    if action == FELL:
        return FELL, state.theta
    if action == CONVERGED:
        return CONVERGED, windows.average()
    return early_reason, mean


def _restart(action, state, policies, log_joint, guide, opt, losses, noise, S
             ) -> steps.StepState:
    """The state the loop goes on from after ``action`` (window_end's DECAY or RESCUE, or the
    first WHITEN): the whitening (if any) estimated again at the current iterate, with the
    optimizer's moments zero: Adam's second moment remembers ~1000 steps, and the large early
    gradients would keep the new steps far too small. A decay lowers the step size; the first
    whitening (Newton steps first where the guide is far: Whitening.first) and the rescue
    search it in the new coordinates (kept at 1.0, kilpisjarvi seed 9 bounced to the cap
    166 sds off; docs/performance.md), unless they keep their step size
    (precondition.Coordinates.keeps_step_size)."""
    theta, lr, whitening = state.theta, state.lr, policies.preconditioner
    newton = 0
    if action == WHITEN:
        coords, theta, newton = whitening.first(log_joint, guide, theta, noise, state.coords)
    else:
        coords = whitening.coordinates(log_joint, guide, theta, noise, state.coords)
    if action == DECAY:
        lr = policies.sizes.decayed(lr)
    elif not coords.keeps_step_size:
        loss, loss_value = losses
        lr = policies.sizes.after_whitening(lr, _in(loss, coords), coords.from_theta(theta),
                                            opt, noise, S, _in_value(loss_value, coords),
                                            dim=coords.m0.size if newton else 0)
    return steps.init(opt, coords, theta, lr)


def _in(loss, coords):
    """The loss and its gradient with respect to ``coords``' parameters."""
    def in_coords(params, eps):
        theta = coords.to_theta(params)
        value, gradient = loss(theta, eps)
        return value, coords.pull_gradient(gradient, theta, eps)
    return in_coords


def _in_value(loss_value, coords):
    return lambda params, eps: loss_value(coords.to_theta(params), eps)


def _can_whiten(options) -> bool:
    # No cap on D: above precondition.WHOLE_MAX_DIM a whitening costs RANK products whatever D
    # (docs/performance.md, whitening section: cost and accuracy at 400-3,000 latents).
    return options.precondition == "hessian"


def _widened(compiled, options) -> float | None:
    """``options.init_scale`` where the fit started from it and the user widened it (above
    FitOptions' default), for the errors' hints; else None."""
    widened = options.init_scale > FitOptions.init_scale and not isinstance(compiled, Frame)
    return options.init_scale if widened else None


def _check_start(compiled, guide, theta, rng, init_scale: float | None = None,
                 init_given: bool = False) -> None:
    """Raise not_finite_at_start when the log joint is not finite at any of a few first draws
    (``init_scale``, ``init_given``: as the error's)."""
    zeta = guide.sample(theta, rng, START_DRAWS)
    if np.any(np.isfinite(compiled.log_joint(zeta))):
        return
    # a guide statement's loc or scale not finite at the start (the log of a param that
    # starts negative) makes every draw so: blame the guide, not the first statement reading
    # the draw (its prior was called nan at every starting point)
    statement = guide.blame(theta, rng.standard_normal((START_DRAWS, guide.eps_dim(
        compiled.dim)))) if hasattr(guide, "blame") else None
    if statement is not None:
        raise guide_not_finite(statement.span, statement.name, 0)
    span, what = first_not_finite(compiled, zeta, every_draw=True) or (None, "not finite")
    # a guided latent's draws, finite but far out (a loc of 1e300), are its guide statement's
    guided = getattr(compiled, "guides", None)     # a Frame (auto's warm start) has none
    by_guide = None if not guided else next(
        (guided[name].statement for name, latent in compiled.model.latents.items()
         if name in guided and latent.span == span), None)
    raise not_finite_at_start(span, what, init_scale, init_given, by_guide,
                              blamed_element(compiled, span, zeta))


def blamed_element(compiled, span, zeta) -> str | None:
    """'t[2] = 0': the datum of the observe statement at ``span`` whose density is not finite
    at every draw of zeta, or None (another statement; a Frame, which has no data to name)."""
    if span is None or not hasattr(compiled, "first_element_not_finite"):
        return None
    observe = next((s for s in compiled.model.observes if s.span == span), None)
    return None if observe is None else compiled.first_element_not_finite(observe, zeta)


def first_not_finite(compiled, zeta, every_draw: bool = False) -> tuple | None:
    """(span, 'nan' | '-inf' | 'inf') of the first statement whose term is not finite at some
    draw of zeta (at every draw, with ``every_draw``), the kind that of its first such value;
    None when there is none."""
    for statement, values in compiled.terms(zeta):
        values = np.asarray(values, dtype=float)
        bad = ~np.isfinite(values)
        if bad.all() if every_draw else bad.any():
            first = values[bad][0]
            what = "nan" if np.isnan(first) else ("-inf" if first < 0 else "inf")
            return getattr(statement, "span", None), what
    return None


def _raise_diverged(compiled, guide, theta, eps, steps: int, init_scale: float | None = None,
                    rounds: bool = False, lr: float | None = None):
    """PplError diverged, naming a user's guide whose scale left (0, inf) when one did (the log
    joint was finite there), else the statement whose term was not finite (``init_scale``: as
    the error's; ``rounds``: a fit on fixed draws, which has no step size to reduce; ``lr``:
    the step size the user set, or None)."""
    statement = guide.blame(theta, eps) if hasattr(guide, "blame") else None
    if statement is not None:
        raise guide_not_finite(statement.span, statement.name, steps)
    span = _blame(compiled, guide.draw(theta, eps))
    spread = _unbounded_spread(compiled, guide, theta)
    if spread is not None:
        raise diverged_unbounded_scale(span, steps, *spread, lr)
    runaway = _runaway_mean(compiled, guide, theta)
    if runaway is not None:
        raise diverged_runaway_mean(span, steps, *runaway, lr)
    raise diverged(span, steps, init_scale, rounds)


# A guide sd (unconstrained) beyond this is no proper posterior's at any sane data scale: a
# flat direction's sd grows by about lr per step in the log (the entropy rises, nothing pulls
# back) until a draw overflows, at an sd near 1e154 when the log joint squares it
UNBOUNDED_LOG_SD = np.log(1e30)


def _unbounded_spread(compiled, guide, theta):
    """(name, sd) of the latent coordinate whose guide sd is largest, when it is beyond
    UNBOUNDED_LOG_SD; None otherwise, or when the guide or model cannot say."""
    if not hasattr(guide, "log_sd") or not hasattr(compiled, "unconstrained_names"):
        return None
    with np.errstate(all="ignore"):
        log_sd = np.asarray(guide.log_sd(theta), dtype=float)
    if not log_sd.size or not np.nanmax(log_sd, initial=-np.inf) > UNBOUNDED_LOG_SD:
        return None
    i = int(np.nanargmax(log_sd))
    return compiled.unconstrained_names()[i], float(np.exp(log_sd[i]))


# A latent's value at the guide's mean beyond this is no proper posterior's at any sane data
# scale either. Adam moves the unconstrained mean by a bounded amount per step, so only a
# drift the log joint keeps paying for gets there: a positive latent's log by 69
# ('factor -lpdf(HalfNormal(1), s)' reached 410, e^410 = 1e178, in 102 steps), a real
# latent's mean not within any step budget
UNBOUNDED_VALUE = 1e30


def _runaway_mean(compiled, guide, theta):
    """(name, value) of the latent or param whose value at the guide's mean is largest in
    magnitude, when beyond UNBOUNDED_VALUE (inf included); None otherwise, or when the guide
    or model cannot say."""
    if not hasattr(guide, "mean") or not hasattr(compiled, "slot_values"):
        return None
    with np.errstate(all="ignore"):
        values = compiled.slot_values(np.asarray(guide.mean(theta), dtype=float)[None])
    largest = {name: float(np.nanmax(np.abs(v), initial=0.0)) for name, v in values.items()}
    name = max(largest, key=largest.get, default=None)
    return (name, largest[name]) if name is not None and largest[name] > UNBOUNDED_VALUE \
        else None


def _blame(compiled, zeta):
    """The span of the first statement whose term, or its gradient, is not finite at zeta."""
    found = first_not_finite(compiled, zeta)
    if found is not None:
        return found[0]
    for i, (statement, _) in enumerate(compiled.terms(zeta)):
        g = _grad(lambda z: anp.sum(compiled.terms(z)[i][1]))(zeta)
        if not np.all(np.isfinite(g)):
            return getattr(statement, "span", None)
    return None
