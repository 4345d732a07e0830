"""Stop a fit early when its importance weights are already reliable, or nearly equal (issue 15
item 5).

Every fit ends with Pareto k̂ and, with ``correct='psis'`` (the default), an importance-corrected
summary (posterior.Fit.corrected). When k̂ < 0.5 and the weights' effective sample size is a
large fraction of the draws, that summary is accurate whether or not the ELBO has converged, so
more steps buy nothing the user sees. This policy checks it at the end of a window: the log
weights log p - log q at CHECK_DRAWS draws of the guide, PSIS on them, and a stop when
k̂ < KHAT and ESS >= ESS_FRACTION * CHECK_DRAWS (docs/history/performance-log.md, "Fourth
attempt"), or when the weights are nearly equal, ESS >= verdict.BULK_ESS * CHECK_DRAWS whatever
k̂ says: the verdict calls such a fit usable with care, and auto stops there
(verdict.matches_bulk).

The draws come from a stream of their own (a jump of the fit's bit generator), so
the fit's random numbers are those of a fit without the checks, and a fit that never meets the
rule is bit for bit what it was. A check that passes is confirmed on the draws the fit's own k̂
will come from (posterior.Fit: the fit seed's stream for them), which must give a k̂ below the
threshold of correction or nearly equal weights: a stop then never ends in a fit whose own
verdict calls it unreliable.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from .. import ir
from .optim import draw_elements, score_chunk
from .precondition import Frame
from .psis import psis, psis_draws
from .schedule import TOL_REFERENCE
from .verdict import BULK_ESS, KHAT_GOOD

# Draws of a check: twice the fit's own k̂'s (psis.PSIS_DRAWS): k̂ from 4000 draws varies
# from one set of draws to another by 0.2-0.3 near 0.5 (logistic_regression, one guide: 0.25
# and 0.53), and a check that passed by luck stopped a full-rank fit whose own k̂ was then 0.76
# (kidiq-kidscore_momiq under --guide auto; docs/history/performance-log.md).
CHECK_DRAWS = 8000
# The first SCREEN_DRAWS of them are weighted first, and the rest only when their ESS already
# reaches ESS_FRACTION: a fit far from reliable weights (most checks of most models) then costs
# a twentieth of the full check (change_point: 2.7x the fit's time with every check in full
# of 4000 draws).
SCREEN_DRAWS = 400
# A check whose draws' ESS fell short of what a stop needs by more than this factor (below
# 0.9 of it) sets the bar a later check's screen must beat (ReliableWeights.check).
FAR_MISS = 0.9
KHAT = KHAT_GOOD          # k̂ below it: the guide itself is close (verdict.py)
ESS_FRACTION = 0.5        # and the weights' ESS at least this fraction of the draws
# The check evaluates the log joint at up to CHECK_DRAWS draws (no gradient). Only for models
# whose largest per-draw value (optim.draw_elements) times CHECK_DRAWS is at most CHECK_ELEMENTS
# (1000 elements a draw): there a vectorized call costs what a few of a window's steps do; on
# larger models the flops of 8000 draws are those of several windows (100 steps of 5 draws
# with gradients), and a posterior whose weights pass the screen but not k̂ pays them often.
CHECK_ELEMENTS = 8 * 10 ** 6

STOPPED = "converged: importance weights"      # the reasons' prefix (advi.fit's converged)
WEIGHTS_RELIABLE = f"{STOPPED} reliable"
WEIGHTS_EQUAL = f"{STOPPED} nearly equal"
FLOW = "flow"     # the family name's prefix of a flow (flow, flow:4): nearly equal weights only
# A flow's check that its own draws do not confirm ends its checks (the fit loop drops the
# policy): the two draw sets then disagree about a heavy tail, and went on disagreeing at every
# window after, each check paying 12,000 draws (logistic_regression's flow, seed 1: the check's
# 8,000 draws at an ESS of 99.4%, the fit's own 4,000 at 98.3-98.8%, 1.37x the fit's CPU).
GIVE_UP = "give up"


def log_weights(log_joint, guide, theta, eps, step) -> np.ndarray:
    """log p(zeta) - log q(zeta) [n] at the draws zeta = guide.draw(theta, eps) (eps [n, E]).

    log q comes with the draws when the guide can give it (``draw_and_log_q``: no inverse);
    the log joint is evaluated ``step`` draws at a time.
    """
    forward = getattr(guide, "draw_and_log_q", None)
    if forward is not None:
        zeta, log_q = forward(theta, eps)
    else:
        zeta = guide.draw(theta, eps)
        log_q = guide.log_q(theta, zeta)
    with np.errstate(all="ignore"):   # a far draw's overflow is a weight of 0 in psis
        log_p = np.concatenate([np.asarray(log_joint(zeta[i:i + step]), dtype=float)
                                for i in range(0, max(len(zeta), 1), step)])
        return log_p - np.asarray(log_q, dtype=float)


@dataclass(frozen=True)
class ReliableWeights:
    """The early stop on reliable importance weights; ``for_fit`` says whether it applies.

    Attributes
    ----------
    noise : the checks' bit generator (a jump of the fit's). Every check draws from a copy of
        it, so every check weights the same draws (common random numbers): consecutive checks
        differ by the guide only, and ten checks are not ten chances for a lucky set of draws
        (fresh draws at each check stopped eight schools, k̂ 0.5-0.6, at 700 steps).
    eps_dim : the guide's noise per draw.
    chunk : draws per call of the log joint (optim.score_chunk).
    seed, own_draws : the fit's seed and the number of draws of its own k̂ (posterior.Fit's
        ``_eps``: ``default_rng([seed, 1])``), on which a passing check is confirmed.
    frame : the warm start's coordinates (precondition.Frame) when the family is fitted in
        them (auto's full rank), else None: the confirmation maps the guide back first.
    equal_only : a flow's checks stop it on nearly equal weights only (:meth:`for_fit`).
    bar : the screen's ESS at the last check that went on to all the draws and failed; a
        later check goes on only past it (:meth:`check`).
    """
    noise: object
    eps_dim: int
    chunk: int
    seed: int = 0
    own_draws: int = 0
    frame: Frame | None = None
    equal_only: bool = False
    bar: float = -np.inf

    @staticmethod
    def for_fit(compiled, guide, options, rng) -> ReliableWeights | None:
        """The policy for a fit of ``guide`` to ``compiled``, or None where it does not apply:
        ``correct`` is not 'psis' (then the summary is the guide's own and only the ELBO rule
        may stop), a ``tol`` tighter than the default (the user asked for a more precise
        optimum, schedule.min_decays), a --batch fit (each draw is a pass over the data), a
        log density without a model (no size to bound the check's cost), a model above
        CHECK_ELEMENTS, or one with a discrete latent (its enumeration multiplies a draw's
        cost by the support's size, which draw_elements does not count: change_point's checks
        made its fit 2.2x slower). A flow stops on nearly equal weights only, and its screen
        asks for them (BULK_ESS): with the reliable-weights rule, on poisson_gp and
        gp_pois_regr its checks passed the 50% screen at most windows and never stopped it (k̂
        above 0.5), 8,000 draws of the flow and of a Cholesky a draw each time, auto's CPU
        21.6 -> 27.0 s and 11.3 -> 14.5 s (docs/history/performance-log.md, "Fourth attempt");
        their weights' ESS (10-60%) never passes this screen."""
        model = _model(compiled)
        if (options.correct != "psis" or options.tol < TOL_REFERENCE
                or options.batch is not None or model is None):
            return None
        jumped = getattr(rng.bit_generator, "jumped", None)   # (numpy's default PCG64 has it)
        if (jumped is None or CHECK_DRAWS * draw_elements(model) > CHECK_ELEMENTS
                or any(isinstance(s, ir.Latent) and s.discrete for s in model.statements)):
            return None
        return ReliableWeights(jumped(), guide.eps_dim(compiled.dim), score_chunk(model),
                               options.seed, psis_draws(options),
                               compiled if isinstance(compiled, Frame) else None,
                               guide.name.startswith(FLOW))

    def check(self, log_joint, guide, theta) -> tuple[str | None, ReliableWeights]:
        """(The stop reason when the weights at ``theta`` are reliable or nearly equal, else
        None; the policy for the next check.) The first SCREEN_DRAWS draws must reach the ESS
        (a flow's: BULK_ESS), and beat ``bar``; then all CHECK_DRAWS the ESS and k̂, or
        BULK_ESS. GIVE_UP when a flow's check passed and its own draws did not confirm it: no
        more checks.

        The bar: a heavy tail that 400 draws rarely reach passes the screen at every window
        and fails on all the draws (eight schools' full rank: an ESS of 61-63% on the screen,
        31-35% on all 8,000; zero_inflated_poisson's mean field: 52-56% and 8-13%, eight such
        checks, a third of its fit's CPU). Every check weights the same draws, and the screen
        is their first 400, so while the screen's ESS has not risen past the one that led to
        such a check, the guide has not moved where those draws go, and the ESS of all of
        them (which moved by at most 3 points a window there) cannot have made up a shortfall
        of FAR_MISS. Only a check short by that much sets the bar: one that missed narrowly
        (zero_inflated_poisson's full rank, 98.9% where nearly equal weights need 99%, 99.0%
        a window later) or on k̂ alone (k̂ moves by 0.3 between windows there) checks again."""
        stream = np.random.Generator(copy.deepcopy(self.noise))

        def weights(n):
            eps = stream.standard_normal((n, self.eps_dim))
            return log_weights(log_joint, guide, theta, eps, self.chunk)
        screen = weights(SCREEN_DRAWS)
        first = psis(screen)
        if not (_equal(first, screen.size) if self.equal_only else
                _reliable(first, screen.size, khat=np.inf)) or not first.ess > self.bar:
            return None, self
        p = psis(np.concatenate([screen, weights(CHECK_DRAWS - SCREEN_DRAWS)]))
        if self.equal_only or not _reliable(p, CHECK_DRAWS):
            if not _equal(p, CHECK_DRAWS):
                needed = (BULK_ESS if self.equal_only else ESS_FRACTION) * CHECK_DRAWS
                far = p.n_nonfinite or p.ess < FAR_MISS * needed
                return None, replace(self, bar=first.ess) if far else self
            reason, ess = WEIGHTS_EQUAL, f"{p.ess / CHECK_DRAWS:.1%}"
        else:
            reason, ess = WEIGHTS_RELIABLE, f"{p.ess / CHECK_DRAWS:.0%}"
        if not self._confirmed(log_joint, guide, theta):
            return (GIVE_UP if self.equal_only else None), self
        return f"{reason} (k̂ {p.khat:.2f}, ESS {ess} of {CHECK_DRAWS} draws)", self

    def _confirmed(self, log_joint, guide, theta) -> bool:
        """Whether the draws the fit will report k̂ from agree: all finite, and k̂ below the
        threshold under which the summary is corrected (posterior.Fit.corrected) or the
        weights nearly equal (BULK_ESS: the verdict's usable with care). The guide is
        taken to the model's coordinates first, as the fit's result is (advi._fit_family), so
        these are the very weights of the fit's own k̂ if it stops here.

        k̂ from one set of draws can miss a heavy tail that another set shows: ar1 (seed 2) was
        stopped at 200 steps by a check with k̂ 0.41 on 8,000 draws and then reported k̂ 1.04
        from its own 4,000, unreliable; kidiq-kidscore_momiq's full rank 0.76
        (docs/history/performance-log.md, "Fourth attempt")."""
        if self.frame is not None:
            log_joint = self.frame.compiled.log_joint
            theta = guide.push_affine(theta, self.frame.m0, self.frame.W)
        eps = np.random.default_rng([self.seed, 1]).standard_normal((self.own_draws,
                                                                     self.eps_dim))
        own = psis(log_weights(log_joint, guide, theta, eps, self.chunk))
        return not own.n_nonfinite and (own.khat < own.threshold
                                        or _equal(own, own.log_weights.size))


def check_window(policy: ReliableWeights | None, log_joint, guide, windows):
    """(The stop reason or None, the last window's mean iterate, the policy for later windows)
    at the end of a window of the convergence rule's ``windows`` (schedule.Windows). The
    weights are checked at that mean, unless there is no ``policy`` or the windowed rule has
    settled (it is averaging towards its own stop); a policy that gives up (GIVE_UP) is
    dropped."""
    if policy is None or windows.settled:
        return None, None, policy
    mean = windows.kept[-1].mean()
    reason, policy = policy.check(log_joint, guide, mean)
    if reason == GIVE_UP:
        return None, mean, None
    return reason, mean, policy


def _equal(p, n: int) -> bool:
    """Every weight finite and the ESS at least BULK_ESS of n (verdict.matches_bulk)."""
    return not p.n_nonfinite and p.ess >= BULK_ESS * n


def _reliable(p, n: int, khat: float = KHAT) -> bool:
    """Every weight finite, k̂ below ``khat`` and the ESS at least ESS_FRACTION of n."""
    return not p.n_nonfinite and p.khat < khat and p.ess >= ESS_FRACTION * n


def _model(compiled):
    """The ir.Model behind ``compiled``, also through a warm start's Frame; None for a bare
    log density."""
    model = getattr(compiled, "model", None)
    if model is None and hasattr(compiled, "compiled"):   # precondition.Frame
        model = getattr(compiled.compiled, "model", None)
    return model
