"""The small policies of a fit: convergence (the windowed ELBO rule, with its check for a fit
that fell), step size (search and decay) and preconditioner (whitening, first and refreshed).
Each is a frozen object; the convergence rule's running state is an immutable ``Windows`` value
that its methods return anew. advi.py drives them around the pure steps of steps.py. The rule
under --batch builds on Convergence in schedule_batch.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from . import control
from .newton import newton_steps
from .optim import SCORE_CHUNK, STAN_ETAS, search_lr
from .precondition import Coordinates, estimate

# The convergence rule (see advi.fit): z standard errors of noise allowed, consecutive passing
# checks needed, the least number of step-size decays taken at plateaus, their factor, the
# largest iterate jitter (in guide sds) accepted at the end, and the windows of iterates averaged.
Z = 2.0
PASSES = 2
DECAYS = 2
DECAY_FACTOR = 0.2
AVERAGE_WINDOWS = 5
# Where the steps' gradient has a control variate (control.py: mean field, dense whitening, from
# its first refresh on) the iterates jitter far less: one decay, one passing check at the final
# step size and two averaged windows there leave a fit more precise than two decays, two checks
# and five windows do without it (docs/history/performance-log.md, "A control variate for mean
# field's gradient").
CONTROLLED_DECAYS = 1
CONTROLLED_FINAL_PASSES = 1
CONTROLLED_AVERAGE_WINDOWS = 2
JITTER_TOL = 0.2      # at the default tol, TOL_REFERENCE; it scales with sqrt(tol): jitter_tol()
TOL_REFERENCE = 1e-3
# The test on the iterates (bouncing): a window passes when its jitter is above BOUNCE_JITTER
# guide sds and no parameter's window mean moved more than its own spread over the window.
BOUNCE_JITTER = 1.0
HESSIAN_DRAWS = 20    # draws of the guide averaged in the expected Hessian of a whitening
# The whitening's rescue: refreshed once, at this fraction of the iteration cap spent at the
# first step size with no decay (Whitening.rescue_due).
RESCUE_FRACTION = 0.5
ADAPT_ITER = 50       # steps per trial step size of a search (CmdStan's default)
# The search after the Newton steps counts as tied the step sizes whose scores are within this
# many nats per mean coordinate of the best, and takes the largest of them
# (StepSize.after_whitening): a mean coordinate delta guide sds off costs delta^2 / 2 nats, so
# 0.005 is 0.1 sds in each.
SEARCH_TIE = 0.005
# Step sizes tried by the search. Stan's grid is made for its own sequence; Adam's steps are about
# lr per coordinate, and the largest of Stan's (100, 10) only overflow, so Adam's grid is Stan's
# divided by 10; SGD's steps are lr * gradient / (1 - momentum), 10x larger again: divided by 100.
ETAS = {"stan": STAN_ETAS, "adam": tuple(e / 10 for e in STAN_ETAS),
        "sgd": tuple(e / 100 for e in STAN_ETAS)}

# The step size of the first window of a mean-field fit whose dense whitening (and the search
# after it) follows that window, instead of a search there (StepSize.first): that window only
# brings the guide near the bulk for the whitening. The search picked this on 35 of the 41
# shipped models' mean-field fits that search (seed 0), and 1.0 on the other 6, badly scaled
# regressions that the Newton steps at the whitening (newton.py) take on from 0.1's window;
# on 40 seeds of the posteriordb models the means were as accurate, and 150-250 gradient
# evaluations a fit fewer (docs/history/performance-log.md, "The first window without a
# search").
FIRST_WINDOW = {"adam": 0.1}

# What the convergence rule asks for at the end of a window (FALLEN: the fit diverged, fallen).
CONTINUE, STOP, DECAY, FALLEN = "continue", "stop", "decay", "fallen"

FELL_STEPS = 10   # the first steps the final ELBO is compared with (fell)
FELL_NOISE_Z = 3.0   # sds of the last window's estimates a fall from the start must exceed
# A fit whose last FELL_WINDOWS windows each had a median below every one of its first FELL_STEPS
# steps stops there (fallen; advi.FELL). On the 217 fits of auto's climbs on every example and
# posteriordb model, seeds 0-2, a window fell so only on the one that diverged (the BNN's
# flow:4, seed 2: from its first window to its 11th and last) and, for one window before
# recovering, on gp_pois_regr seed 1's two flows (docs/history/trust-log.md, "A diverged rung
# stops").
FELL_WINDOWS = 3


def fell(trace, final: float, tol: float, noise: float | None = None) -> bool:
    """Whether a fit's final ELBO (its last window's median, advi.fit) is below each of its first
    FELL_STEPS steps by more than the convergence rule's relative tolerance ``tol`` of them:
    its steps made q worse, a divergence whose values stayed finite, so no step failed and the
    windowed rule, comparing windows of noise as large as their means, may have passed. Seen on
    the BNN's last rung under auto (models/bnn_regression.ppl, seed 2): a 4-layer flow went
    from about -430 to steps of -4e10 to -3e14 and a final ELBO of -2.3e33, reported converged
    (docs/history/trust-log.md). A fit that improves on its start ends above the worst of its
    first steps; one that stays level too, unless all FELL_STEPS noisy values fall above its
    final mean (for noise symmetric about it, a chance of 2^-10). Not the whole first window:
    the BNN's flow had fallen within the first of its 200-step windows.

    The margin: a fit warm-started at its optimum has first steps of nearly no noise there,
    and its iterates' jitter then costs it a little (full rank from mean field on
    earnings-logearn_interaction_z, seed 13: level at -1589.1 for 800 steps, its last window
    0.1 nats below its first steps, called diverged, so auto returned mean field's unreliable
    fit, sds 52% off, where this full rank is reliable, k̂ 0.45). A change within tol of the
    ELBO is level by the rule's own test (schedule.plateau). That margin alone scales with the
    ELBO's size, which an additive constant in the log density sets: near 0 it is nothing.
    So a fall must also exceed the first steps' own noise (their sd): full rank from mean field
    on a P-spline (ELBO about -30, steps of sd 0.4 there) ended 0.15 nats below the lowest of
    its first steps, its iterates' jitter, and was called diverged; auto returned mean field,
    0.155 NUTS sds off on a mean and 16% on an sd, where this full rank was within 0.053 and
    7.8% (found by the NUTS models audit)."""
    if len(trace) == 0:
        return False
    first_steps = np.asarray(trace[:FELL_STEPS], dtype=float)
    first = float(np.min(first_steps))
    margin = max(tol * abs(first), float(np.std(first_steps)))
    if not final >= first - margin:
        return True
    if noise is None:
        return False
    # The first steps themselves fell from the start: a step size that blew up at once, so
    # the lowest of them (and their spread) says nothing. The VAE at --batch N=64 --lr 2:
    # step 1 at -6.5e4, step 2 at -1e40, and a final ELBO of -8.3e6 called usable. Then the
    # start (step 1, the guide as it began) is the reference, at ``noise``, the sd of the
    # last window's estimates: a fit level at its start ends within it.
    start = float(first_steps[0])
    start_margin = max(tol * abs(start), FELL_NOISE_Z * float(noise))
    return bool(first < start - start_margin and final < start - start_margin)


def fallen(trace, W: int, tol: float) -> bool:
    """Whether each of the last FELL_WINDOWS windows of W steps has a median ELBO below each
    of the first FELL_STEPS steps (:func:`fell` of each window, at ``tol``): the fit has
    diverged and stayed there, so its remaining steps are not worth their cost (the BNN's
    flow:4 above: 2,200 steps, 81 s of CPU, where it had fallen in its first window). The
    median, not the mean: a heavy-tailed family's estimates (studentt:5) have rare draws far
    below the rest, which a window's mean follows. Each window's own sd is its noise, for a
    fit whose first steps blew up (the VAE at --lr 2 ran its 10,000 steps, 73 s, to be called
    diverged at the end)."""
    if len(trace) < FELL_WINDOWS * W:
        return False
    windows = np.reshape(np.asarray(trace[-FELL_WINDOWS * W:], dtype=float), (FELL_WINDOWS, W))
    return all(window_fell(trace, window, tol) for window in windows)


def window_fell(trace, window, tol: float) -> bool:
    """:func:`fell` of a window of ``trace``'s estimates: at its median, its sd the noise
    (advi.fit's end-of-fit check on the last window, :func:`fallen`'s on each of its)."""
    window = np.asarray(window, dtype=float)
    return fell(trace, float(np.median(window)), tol, float(np.std(window)))


def plateau(trace: np.ndarray, window: int, tol: float, z: float = Z) -> bool:
    """True when the last two windows of the ELBO trace agree, given tol and the noise.

    With m1, m2 the means of the second-to-last and last ``window`` estimates and se the
    standard error of m2 - m1 (from the two windows' sample variances; every step draws fresh
    eps, so the estimates are nearly independent), a check passes when

        |m2 - m1| <= tol * |m2| + z * se.

    That is: the change is consistent, at z standard errors, with a relative change below tol.
    Stan's rule (relative change of single ELBO evaluations < tol_rel_obj) is this rule without
    the noise term; on small models, whose |ELBO| is a few nats, its relative change is mostly
    Monte Carlo noise, so it stops at random or never. The noise term removes that, and when
    the noise is small the rule is Stan's. (A change per data point was considered instead of a
    relative one: it needs the data size, which the loop does not know, and shares the
    relative rule's scaling with N; the decays and averaging in advi.fit make up for a
    lenient first plateau either way.)
    """
    if len(trace) < 2 * window:
        return False
    prev, last = trace[-2 * window:-window], trace[-window:]
    m1, m2 = prev.mean(), last.mean()
    se = np.sqrt((prev.var(ddof=1) + last.var(ddof=1)) / window)
    return bool(abs(m2 - m1) <= tol * abs(m2) + z * se)


# How tol acts. The plateau test alone barely depends on it: on most models its noise term
# (z standard errors of two window means) is far above tol * |ELBO|. So tol also sets how far the
# step size is annealed, which is what decides how close to the optimum the iterates settle.
def min_decays(tol: float, decays: int = DECAYS) -> int:
    """Step-size decays taken at least: ``decays`` (DECAYS, 2) at the default tol
    (TOL_REFERENCE, 1e-3), one more per factor 10 tighter (4 at 1e-5: final steps 25x
    smaller), one fewer per factor 10 looser, never below 1 (so where ``decays`` is
    CONTROLLED_DECAYS, 1, a looser tol loosens only the jitter tolerance)."""
    return max(1, decays + round(float(np.log10(TOL_REFERENCE / tol))))


def jitter_tol(tol: float) -> float:
    """The largest iterate jitter (in guide sds) accepted at the end: JITTER_TOL (0.2) at the
    default tol, times sqrt(tol / 1e-3). A jitter j costs about j^2 / 2 nats of ELBO per
    coordinate, so j^2 scales with the ELBO change that tol accepts (0.02 sds at 1e-5)."""
    return JITTER_TOL * float(np.sqrt(tol / TOL_REFERENCE))


def bouncing(prev: Iterates, last: Iterates, guide) -> bool:
    """True when the step size is too large for the fit to settle: over the ``last`` window the
    iterates jitter by more than BOUNCE_JITTER guide sds, and yet no parameter's mean iterate
    moved from the ``prev`` window's by more than its own spread over the window (spreads and
    moves in guide sds, ``guide.jitter_scale``).

    Then the ELBO plateau test can fail for thousands of steps: the iterates bounce in place
    over many guide sds, the ELBO sits far below its optimum and creeps up by more than its
    noise (kidiq_with_mom_work, seed 0: 3,700 steps at lr 1.0 in whitened coordinates with a
    jitter of 4-40; 1,400 steps in all once this test decays there). Waiting does not help; a
    decay, with its refreshed whitening, does. So such a window passes a check, and PASSES of
    them in a row lead to a decay (not to a stop, which needs a jitter of at most jitter_tol:
    0.2 at the default tol). It is the idea of Welandawe et al. (2022), "Robust, automated,
    and accurate black-box variational inference": lower the step size once the iterates are
    stationary, not once the ELBO is. Stationary here means, for every parameter, a split R-hat
    of the two windows of at most about sqrt(1.5) = 1.22 (a move of the mean of at most the
    spread).
    Every parameter, because one creeping along a ridge moves little against the bouncing of
    others: comparing the largest move with the largest spread decayed kilpisjarvi too early
    (max mean errors of 0.027-0.035 posterior sds on 3 of 10 seeds, against 0.018-0.020 on
    every converged seed without it), and ignoring moves below 0.5 guide sds left a fit of
    tests/unit/test_diagnostics.py 0.57 sds off (tolerance 0.5).
    Fits whose jitter stays at most BOUNCE_JITTER never meet this test and run exactly as
    without it.
    """
    scale = guide.jitter_scale(last.mean())
    moved = np.abs(last.mean() - prev.mean()) / scale
    spread = last.sd() / scale
    return bool(np.max(spread) > BOUNCE_JITTER and np.all(moved <= spread))


def drifting(windows: tuple, guide) -> bool:
    """True when a ``param`` (guides/user.py: the last ``guide.n_params`` entries of theta)
    is still travelling: over the last three ``windows`` its mean iterate moved twice in the
    same direction, each time by more than its spread over the later window. A param is not
    whitened, so its steps are about lr in its own units; where its likelihood is flat it
    crawls towards its optimum while the ELBO looks flat within its noise (the plateau test),
    and a decay would freeze it on the way (eight schools' y as the data of an empirical Bayes
    fit stopped 0.6 ML standard errors short in mu0 and log tau). A param wandering about its
    optimum turns back as often as not. Not where the params are finished after the steps
    (``Convergence.drift_holds`` False: advi._policies), which take them on from where the
    steps stopped: there the hold let a noncentred scale drift to 0 (docs/trust.md)."""
    n = getattr(guide, "n_params", 0)
    if not n or len(windows) < 3:
        return False
    a, b, c = (np.asarray(w.mean()[-n:]) for w in windows[-3:])
    first, second = b - a, c - b
    return bool(np.any((first * second > 0)
                       & (np.abs(first) > windows[-2].sd()[-n:])
                       & (np.abs(second) > windows[-1].sd()[-n:])))


class Iterates(NamedTuple):
    """Running sums of the iterates of one window, for their mean and spread (immutable).

    Sums are of differences from the window's first iterate, so the spread of a parameter far
    from zero keeps its digits.
    """
    first: np.ndarray | None = None
    n: int = 0
    sum: np.ndarray | float = 0.0
    squares: np.ndarray | float = 0.0

    def add(self, params: np.ndarray) -> Iterates:
        first = params if self.first is None else self.first
        d = params - first
        return Iterates(first, self.n + 1, self.sum + d, self.squares + d * d)

    def mean(self) -> np.ndarray:
        return self.first + self.sum / self.n

    def sd(self) -> np.ndarray:
        """[P] the sd of each parameter's iterates over the window."""
        centred = self.sum / self.n
        return np.sqrt(np.maximum(self.squares / self.n - centred * centred, 0.0))

    def jitter(self, guide) -> float:
        """The largest sd of an iterate over the window, in units of the guide's own scale
        (``guide.jitter_scale``; mean field: sd(mu_i) / sigma_i, and sd(log_sigma_i))."""
        return float(np.max(self.sd() / guide.jitter_scale(self.mean())))


class Windows(NamedTuple):
    """The convergence rule's running state: consecutive passing checks, decays taken, the step
    at which the current step size and coordinates began, the last finished windows of
    iterates (the rule's ``average_windows`` of them) and the current one, and whether the fit
    has settled (converged at this step size; it only steps on until enough iterates are
    averaged)."""
    passes: int = 0
    decays: int = 0
    since: int = 0
    kept: tuple = ()
    window: Iterates = Iterates()
    settled: bool = False

    def add(self, theta: np.ndarray) -> Windows:
        # every step: the fields spelled out (NamedTuple._replace's Python is microseconds)
        return Windows(self.passes, self.decays, self.since, self.kept, self.window.add(theta),
                       self.settled)

    def closed(self, keep: int = AVERAGE_WINDOWS) -> Windows:
        """The current window finished: kept (the last ``keep``), a new one begun."""
        return self._replace(kept=(self.kept + (self.window,))[-keep:], window=Iterates())

    def average(self) -> np.ndarray:
        """Mean iterate over the kept windows (Polyak-Ruppert averaging)."""
        return sum(w.mean() * w.n for w in self.kept) / sum(w.n for w in self.kept)

    def last_jitter(self, guide) -> float:
        return self.kept[-1].jitter(guide) if self.kept else float("nan")


@dataclass(frozen=True)
class Convergence:
    """The windowed ELBO rule of advi.fit: plateaus, decays, jitter, then averaging."""
    tol: float
    window: int
    drift_holds: bool = True   # a param still drifting fails a check (:func:`drifting`)
    decays: int = DECAYS       # decays at the default tol (:func:`min_decays`)
    final_passes: int = PASSES   # passing checks in a row that settle the fit once decayed
    # windows of iterates averaged at the end, and so kept (Windows.closed): below 3 a param's
    # drift (:func:`drifting`) goes unseen, so CONTROLLED_AVERAGE_WINDOWS is for mean field alone
    average_windows: int = AVERAGE_WINDOWS

    def at_window(self, state: Windows, trace: list, guide) -> tuple[Windows, str]:
        """The state after a finished window and what to do: CONTINUE, STOP (converged),
        DECAY (lower the step size by DECAY_FACTOR and restart there) or FALLEN (the fit
        diverged, :func:`fallen`; the state as it was)."""
        step, W = len(trace), self.window
        if fallen(trace, W, self.tol):
            return state, FALLEN
        # only windows taken at the current step size and coordinates are compared
        passed = plateau(np.asarray(trace[state.since:]), W, self.tol)
        state = state.closed(self.average_windows)
        if passed and self.drift_holds and step - state.since >= 3 * W and \
                drifting(state.kept, guide):
            passed = False
        if not passed and step - state.since >= 2 * W:   # two windows at this step size
            passed = bouncing(state.kept[-2], state.kept[-1], guide)
        state = state._replace(passes=state.passes + 1 if passed else 0)
        averaged = step - state.since >= self.average_windows * W
        if state.settled:
            # converged before: the checks since are the same test again, and a false alarm
            # (5% each) would throw the averaged windows away and cost a decay and 5 windows
            return state, STOP if averaged else CONTINUE
        decayed = state.decays >= min_decays(self.tol, self.decays)
        if state.passes < (self.final_passes if decayed else PASSES):
            return state, CONTINUE
        if decayed and state.kept[-1].jitter(guide) <= jitter_tol(self.tol):
            # converged: step on at this step size until enough iterates are averaged
            return state._replace(settled=True), STOP if averaged else CONTINUE
        return state._replace(decays=state.decays + 1), DECAY

    @staticmethod
    def restarted(state: Windows, step: int) -> Windows:
        """The state after a restart at ``step`` (new step size or coordinates)."""
        return state._replace(passes=0, since=step, settled=False)


@dataclass(frozen=True)
class StepSize:
    """The base step size: CmdStan's eta search (optim.search_lr) unless given, a new search
    after the first whitening, and a decay by DECAY_FACTOR at plateaus. ``chunk``: draws per
    evaluation of the search's scores (optim.score_chunk)."""
    optimizer: str
    given: float | None
    chunk: int = SCORE_CHUNK
    searched_after_first_window: bool = False   # the first whitening's search will run

    def first(self, loss, theta, opt, noise, mc_samples, score) -> float:
        """The given step size; else FIRST_WINDOW's where the search after the first whitening
        picks the step size the fit goes on with (``searched_after_first_window``); else the
        search's choice, which skips the grid's largest step size unless the next one wins
        (optim.search_lr, largest_last)."""
        if self.given is not None:
            return self.given
        if self.skips_first_search:
            return FIRST_WINDOW[self.optimizer]
        return search_lr(loss, theta, opt, noise, mc_samples, ETAS[self.optimizer],
                         adapt_iter=ADAPT_ITER, score=score, largest_last=True,
                         chunk=self.chunk).lr

    @property
    def skips_first_search(self) -> bool:
        """Whether :meth:`first` gives FIRST_WINDOW's step size, not a search's (advi runs the
        fit again with the search if the first window's steps diverge at it)."""
        return (self.given is None and self.searched_after_first_window
                and self.optimizer in FIRST_WINDOW)

    def after_whitening(self, lr, loss, params, opt, noise, mc_samples, score,
                        dim: int = 0) -> float:
        """A step size picked in the model's coordinates means little in the whitened ones (an
        early Hessian can be off in scale by orders of magnitude): search again, in the new
        coordinates, among step sizes no larger than ``lr`` (larger ones were found to
        misbehave). A given step size is kept.

        Of the step sizes whose scores tie with the best (within SEARCH_TIE nats for each of the
        mean's ``dim`` coordinates; advi gives ``dim`` after the Newton steps, else 0: no tie),
        the largest. A guide the Newton steps took near its optimum (their fixed-draw optimum,
        from 20 draws) scores best by barely moving, at the grid's smallest step size, though
        it is still a few tenths of a posterior sd off: two decays later its steps were too
        small to move it, and a 20,000-row regression, a Gaussian posterior, ended 0.12-0.19
        posterior sds off on 4 of seeds 0-31, called converged (0.081 at most with the tie;
        docs/history/performance-log.md). Not after every whitening: on a funnel's mean field
        (tests/stats/test_families.py) the tie took 0.1 for 0.01, and the flow started from
        that fit diverged."""
        if self.given is not None:
            return lr
        etas = tuple(e for e in ETAS[self.optimizer] if e <= lr) or (lr,)
        found = search_lr(loss, params, opt, noise, mc_samples, etas, adapt_iter=ADAPT_ITER,
                          score=score, chunk=self.chunk)
        if not (dim and found.found) or found.lr not in found.losses:
            return found.lr
        best = found.losses[found.lr]
        return max(eta for eta, value in found.losses.items()
                   if value <= best + SEARCH_TIE * dim)

    @staticmethod
    def decayed(lr: float) -> float:
        return lr * DECAY_FACTOR


@dataclass(frozen=True)
class Whitening:
    """The preconditioner: coordinates for the guide's mean in which the expected Hessian under
    the current guide is the identity (precondition.py), or none."""
    enabled: bool
    chunk: int | None = None   # draws a gradient of the Hessian may take (precondition.estimate)
    newton: bool = False       # Newton steps at the first whitening (newton.py; mean field)
    # a refreshed dense whitening's Hessian also makes a control variate of the steps'
    # gradient (control.py, which says why not the first's; mean field)
    controls: bool = False

    def coordinates(self, log_joint, guide, theta, noise, current: Coordinates) -> Coordinates:
        """New coordinates centred on ``theta`` (``current`` when whitening is off)."""
        if not self.enabled:
            return current
        coords = self._estimate(log_joint, guide, theta, noise(HESSIAN_DRAWS))
        return self._controlled(log_joint, theta, coords, noise)

    def first(self, log_joint, guide, theta, noise, current: Coordinates):
        """(coordinates, theta, Newton steps taken) at the first whitening: the coordinates
        :meth:`coordinates` gives, with ``theta`` as it was; with ``newton``, where that
        whitening is dense and finds the guide still far from its optimum, the guide first
        taken there by Newton steps on the same draws (newton.py) and the coordinates centred
        on it."""
        if not self.enabled:
            return current, theta, 0
        eps = noise(HESSIAN_DRAWS)
        coords = self._estimate(log_joint, guide, theta, eps)
        if not (self.newton and isinstance(coords.L, np.ndarray)):
            return coords, theta, 0
        theta, coords, taken = newton_steps(log_joint, guide, theta, eps, coords, self.chunk)
        return coords, theta, taken

    def _controlled(self, log_joint, theta, coords: Coordinates, noise) -> Coordinates:
        """``coords`` with the control variate of their Hessian (control.matrix, on fresh
        draws) where the policy ``controls`` and the whitening is dense."""
        if not (self.controls and isinstance(coords.L, np.ndarray)):
            return coords
        matrix = control.matrix(log_joint, theta, coords.L, noise(control.COEFFICIENT_DRAWS))
        return replace(coords, control=matrix)

    def _estimate(self, log_joint, guide, theta, eps) -> Coordinates:
        draws = guide.draw(theta, eps)
        return estimate(log_joint, theta, draws, np.exp(guide.log_sd(theta)), self.chunk)

    def first_due(self, step: int, window: int) -> bool:
        """Whether to whiten for the first time: after one ``window``, not at a plateau (on a
        badly conditioned posterior the ELBO creeps up for thousands of steps before any).
        Not at the start: Adam's steps of about lr per coordinate cross many posterior sds
        quickly, which steps in whitened coordinates (about lr posterior sds each) would take
        long to do from far away. advi then searches the step size in the new coordinates
        (StepSize.after_whitening) and restarts the rule there."""
        return self.enabled and step == window

    def rescue_due(self, windows, step: int, iter_cap: int) -> bool:
        """Whether to refresh the coordinates without a decay: RESCUE_FRACTION of the iteration
        cap has gone since the first whitening, and no decay yet (advi's rule; never under
        --batch). advi then searches the step size in the new coordinates, as after the first
        whitening (kept instead, kilpisjarvi seed 9 bounced to the cap on numpy 2.4.6).

        The first whitening comes after one window, from a guide that can be far from the
        optimum. On a badly conditioned posterior the fit may then creep in those coordinates
        for the whole budget: kilpisjarvi (mean field, seed 9; an intercept and a slope
        correlated at -0.99999) climbed from an ELBO of -8e5 through 10,000 steps
        without a plateau and stopped at the cap with means 1.97 sds off; refreshed at step
        5,100 it converged at 9,100 steps, 0.019 off, like its other nine seeds. Refreshing
        earlier in every climb (whenever the ELBO rose by more than 10 nats a latent since the
        last whitening) shortened kilpisjarvi, sblrc and sblri by 1.3-1.7x but moved their
        errors up by up to 0.034 sds (docs/history/performance-log.md): this rule leaves every fit
        that decays within half the budget as it was. It fires once at the default cap (the next
        would be after the cap)."""
        return (self.enabled and isinstance(windows, Windows) and windows.decays == 0
                and step - windows.since >= RESCUE_FRACTION * iter_cap)
