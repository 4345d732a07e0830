"""``--guide auto``: climb the family ladder until k̂ says the fit can be used.

Mean field first; when its verdict is ``unreliable``, full rank (low rank beyond its record's
``auto_max_dim``, guides.REGISTRY) warm-started from it; then the flow, warm-started from that
fit (not when full rank, under Student-t noise in its frame where its own weights are nearly
equal, T_GATE, or moved to its importance-weighted moments, MOVED_RUNGS, can be used).
Full rank is skipped, and the flow warm-started from the Gaussian full rank would start
from, when that Gaussian's importance weights are far from uniform (SKIP_ESS,
``fullrank_start``); then, up to scaled's ``max_dim`` dimensions, the ``scaled`` family
(ppl/guides/scaled.py) is fitted from mean field (on fixed draws, fixed_draws.py) before the
flow, which is fitted only if scaled cannot be used, even moved to its importance-weighted
moments (MOMENT_DRAWS, :func:`moment_matched`), or raised. Stops at the first fit that is reliable,
or usable with care and importance-corrected (the corrected summary was as accurate as a
richer family's on posteriordb, docs/trust.md, at a fraction of the time), or usable with care
on nearly equal weights (verdict.matches_bulk: where the guide's draws go it matches the
posterior, and the richer families fitted after such fits did no better), except the flow
after a skipped full rank whose importance weights carry little (ESS below RETRY_ESS), and
mean field usable with care on such weights, or usable with corrected means too noisy to trust
(:func:`_noisy`), which the Gaussian rung checks: it is returned when it can be used, else mean
field, and the climb ends there. When
full rank was skipped and the flow cannot be used, or can on weights of such an ESS, or when
full rank was fitted and the flow cannot be used but beat its ELBO (ladder.py), a last
rung fits a larger, longer flow (RETRY_*, :func:`retry`) that starts as the flow itself
(its layers, then identity ones), which replaces the flow when its ELBO is higher; the climb
stops there. Returns the fit that stopped the climb (a usable mean field or flow whose check
or last rung cannot be used stands) or, when none could be used, the one with the highest
ELBO. What to fit next, and which fit to return, are the policy ladder.py's decisions on the
outcomes so far (ladder.Ladder, ladder.stands, ladder.by_elbo); :func:`_climb` and
:func:`retry` fit and assess. The families live in ppl/guides/, the fitting in advi.py
(scaled's in fixed_draws.py), k̂ and the verdict in psis.py and verdict.py.
"""
from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PplError, PplWarning, params_unchecked
from ..guides import GAUSSIAN, MEAN_FIELD, family, user
from . import advi, fixed_draws, params_em, tails
from .early import log_weights
from .ladder import (ABOVE, CARE_THIN, DIVERGED, ELBO_SE_KNOWN, ELBO_TIE, ELBO_TIE_NATS, FAILED,
                     INTERRUPTED, LAST_RUNG, RELIABLE_THIN, SKIPPED, UNUSABLE, USABLE, Ladder,
                     by_elbo, ladder, stands, tie)
from .psis import psis
from .verdict import CARE, KHAT_GOOD, NOISY_CORRECTION, RELIABLE, UNRELIABLE, matches_bulk

AUTO = "auto"
# Why guide 'auto' fits mean field alone where it does (Fit.auto_alone), said by ppl fit's
# output: the user otherwise takes it that auto climbed (docs/guides.md)
ALONE_USER = "a model with guide statements"
ALONE_BATCH = "a minibatch fit, --batch"
ALONE_DADVI = "method dadvi"
# the Gaussian families fitted after mean field (which they check, and the flow starts from)
GAUSSIAN_RUNGS = tuple(name for name in GAUSSIAN if name != "meanfield")
# Full rank is fitted from N(m, W W^T): the mean-field mean and the whitening of the expected
# Hessian under the mean-field fit (advi._fit_family). When that Gaussian's importance weights
# have an effective sample size below SKIP_ESS of their draws, full rank's fit is skipped and
# the flow starts from it. Measured (docs/trust.md, `benchmarks/trust.py --probe --seeds 3`):
# where full rank rescued mean field, its start's ESS was 62-100% of the 4000 draws; where it
# did not (centered eight schools, gp_pois_regr) 1-6%. Neither mean field's k̂ (0.76-1.38
# where full rank rescued it, 0.87-1.02 on centered eight schools) nor the start's k̂
# (0.00-0.92 against 0.61-1.12) separates the two.
SKIP_ESS = 0.1
# The last rung: when full rank was skipped (its start's weights said the posterior is far from
# Gaussian) and the flow's fit cannot be used (unreliable, or usable with care but not
# corrected) or can with an importance ESS below RETRY_ESS of its draws, a flow
# of RETRY_LAYERS layers with RETRY_WINDOW times the window and, unless the user gave one, the
# base step size RETRY_LR (the search's larger steps diverged on gp_pois_regr; also where the
# flow's own search picked less: at the flow's 0.001, varying_slopes seed 8's last rung missed
# issue 11's targets, 0.106 sds / 20.2% against 0.056 / 7.1%, while the BNN's, which falls
# from its flow at 0.01, gained only ELBO on fits that stay unreliable; docs/history/
# trust-log.md, "The last rung goes on from the flow"). Measured on
# gp_pois_regr, the one posteriordb posterior whose flow misses (docs/history/trust-log.md,
# "gp_pois_regr under auto"). Since 2026-12-06 it starts as the flow it follows (the flow's
# layers, then two identity layers: Flow.stacked_start) rather than from the flow's own start:
# on the example models that reach it, against NUTS (benchmarks/auto_examples.py, seeds 0-11),
# poisson_gp met issue 11's targets on 12 seeds of 12 against 7, varying_slopes on 12 of 12
# as before, at the same CPU (docs/history/trust-log.md, "The last rung goes on from the
# flow"). Where full rank was fitted and the flow did not beat it (kidscore_momiq: full rank's
# k̂ 0.70, the flow's 0.96) the posterior is near Gaussian and the retry is left out.
# RETRY_ESS: a flow usable with care whose weights have so low an ESS is corrected by weights
# that carry the summary (docs/history/trust-log.md, "The last rung after a flow usable with care"):
# on gp_pois_regr, flows kept at k̂ 0.64-0.70 had ESS 11-25% of 4000 draws, their sds 0.27-0.45
# off and 0.12-0.23 off corrected; on centered eight schools, flows at k̂ 0.55-0.69 had
# 47-74%, their sds within 0.09 (0.06 corrected). k̂ does not separate the two, and neither does
# a k̂ cut. 0.5 lies between the two; on 8 sets of 4000 draws of each such flow the ESS was
# 2-44% on gp_pois_regr and 13-77% (medians 58-68%) on eight schools, so a noisy estimate errs
# towards the retry, which costs time, not accuracy. The same holds for a reliable flow (k̂
# under 0.5): models/varying_slopes.ppl seed 1's flow, k̂ 0.48 on an ESS of 35%, was corrected
# to rho 0.108 NUTS sds off and 10.9% short (its summary's 11,477 draws reached an ESS of
# 2,552, not 4000), the last rung's 0.053 / 0.075; gp_pois_regr seed 6's, k̂ 0.44 on 50.0%,
# 0.069 / 0.149, the last rung's 0.042 / 0.036 (docs/history/trust-log.md, "Twenty-first
# probe").
RETRY_LAYERS = 4
RETRY_ESS = 0.5
RETRY_WINDOW = 2
RETRY_LR = 0.01
# A scaled fit that cannot be used after its further rounds is moved to the PSIS-weighted mean
# and covariance of MOMENT_DRAWS fresh draws of its own (importance-weighted moment matching:
# Paananen, Piironen, Buerkner and Vehtari 2021, "Implicitly adaptive importance sampling",
# Statistics and Computing) and kept when the moved fit can be used, judged on its own draws.
# On gp_pois_regr the scaled fit has the posterior's shape but its hyperparameters' sds 21-25%
# short (the ELBO's under-dispersion), and k̂ ends at 0.70-0.86 on 4 seeds of 20; moved, at
# 0.45-0.58 and within issue 11's targets, where the flows that followed took 9-11x mean
# field's CPU (docs/history/trust-log.md, "Twenty-fourth probe").
MOMENT_DRAWS = 4000
# The rungs so moved, wherever the flow would follow them when they cannot be used: the
# families a lower-triangular affine map keeps exactly (push_affine). Not low rank (a dense map
# leaves it, and matching the sds alone broke gp_pois_regr's correlations), nor a full rank
# that checks a mean field usable with care (no flow follows it: the move only cost time).
# On posteriordb full rank went on to the flow on mesquite-logvolume and kilpisjarvi alone
# (seeds 0-9 of 13 posteriors, 10-19 of those two), near Gaussian (ESS 87-96% of 4000 draws)
# at k̂ 0.71-1.03; moved, it could be used on 3 of those 12 fits (k̂ 0.71-0.85 -> 0.55-0.57),
# within issue 11's targets and closer than the flows that followed, which took 3.0-7.5x mean
# field's CPU (the moved fits 1.7-2.2x). The other 9 moves cost 0.2-0.4% of auto's CPU each.
# Farther from Gaussian the moved fit has less room: a normal's mean and scale from 5 points,
# sds 10-12% short where flow:4 was within 5% (docs/history/trust-log.md, "Twenty-fifth probe").
MOVED_RUNGS = ("fullrank", "scaled")
# Before that move, a full-rank fit that cannot be used but whose own importance weights are
# near uniform (an ESS of T_GATE of their draws or more) is assessed under Student-t noise of
# T_NU degrees of freedom in the same frame (:func:`heavier_tailed`, ppl/guides/student.py) and
# kept when it can be used, also where it checks a mean field usable with care (no flow
# follows; mesquite-logvolume seed 0: mean field 0.080 sd off, full rank under the t 0.013).
# Where the posterior's tails are heavier than the Gaussian's in some direction, the
# Gaussian's draws rarely reach them and k̂ is high on nearly equal weights (mesquite-logvolume
# and kilpisjarvi: full rank at k̂ 0.71-1.03 on an ESS of 83-96%, after which auto fitted two
# flows for nothing, 4.6-5.1x mean field's CPU); the t's weights are bounded there (k̂ -0.6 to
# -0.3, corrected summaries within 0.05 sd / 4%). Around a Gaussian far from the posterior the
# t lowers k̂ without improving the answer (centered eight schools: k̂ 0.60-0.63, 0.7-0.8 sd
# off, on an ESS of 8-13%; docs/history/trust-log.md, "Twenty-seventh probe"), hence the gate.
# Derived from 265 mean-field and full-rank rungs of auto's climbs on posteriordb
# (`benchmarks/t_proposal.py`; seeds 0-29 of mesquite-logvolume, kilpisjarvi and centered eight
# schools, 0-4 of the others; the probe's addendum): the t passed k̂ with a summary beyond issue
# 11's targets only on rungs whose own ESS was 0.32 or less (mean fields), and on none of the
# 113 at 0.5 or more; every full rank that could not be used had an ESS of 0.83 or more.
T_GATE = 0.5
T_NU = 10


@dataclass(frozen=True)
class Tried:
    """One family auto fitted: its k̂, verdict level (or the error), seconds and, when no fit
    was usable, its ELBO (:func:`_by_elbo`)."""

    family: str
    khat: float
    level: str
    seconds: float
    ess: float = float("nan")   # skipped: its start's ESS as a fraction of the draws
    elbo: tuple = ()            # (estimate, standard error) when auto chose on it (_by_elbo)
    error: str = ""             # failed: what it raised, located (:func:`_failed`)
    moved: bool = False         # kept moved to its weighted moments (:func:`moment_matched`)
    student_t: bool = False     # kept under Student-t noise in its frame (:func:`heavier_tailed`)
    noisy: bool = False         # usable, its corrected means noisy: checked (:func:`_noisy`)
    light_tails: bool = False   # refuted by the Gaussian rung's tail check (:func:`_tails_refuted`)
    independent: bool = False   # skipped: the latents are independent given the params

    @property
    def name(self) -> str:
        """The family, marked '(t)' when kept under Student-t noise or '(moved)' when kept
        moved: the rung as tables name it (benchmarks/auto_examples.py, calibration.py)."""
        return self.family + (" (t)" if self.student_t else "") + \
            (" (moved)" if self.moved else "")

    def text(self) -> str:
        what = self.level if self.level in (FAILED, DIVERGED) else f"k̂ {self.khat:.2f}"
        if self.moved:   # the fit reported is not the one the family's steps ended at
            what = f"moved to its importance-weighted moments, {what}"
        if self.student_t:
            what = f"under Student-t noise in its frame, {what}"
        if self.noisy:    # why a reliable mean field went on to the Gaussian rung
            what = f"{what}, its corrected means noisy"
        if self.light_tails:   # why a mean field usable with care was not returned
            what = f"{what}, its tails too light (the Gaussian rung's check)"
        if self.level == UNRELIABLE and self.khat < KHAT_GOOD:
            # why a rung with the smaller k̂ was not chosen: not k̂ (its tail check, its
            # weights' ESS; the fit's verdict says which when it is chosen)
            what = f"{what}, unreliable"
        if self.error:
            what = f"{FAILED} ({self.error})"
        if self.level == SKIPPED:
            what = (f"skipped ({INDEPENDENT_WHY})" if self.independent else
                    f"skipped (its start: k̂ {self.khat:.2f}, ESS {self.ess:.0%} of draws)")
        return f"{self.family} {what} ({self.seconds:.2f} s)"


@dataclass(frozen=True)
class AutoReport:
    """The families tried, in order, the one chosen (an index into ``tried``), whether Ctrl-C
    ended the climb and whether the chosen fit can be used (else the ELBO chose it,
    :func:`_by_elbo`)."""

    tried: tuple
    chosen: int
    interrupted: bool = False
    usable: bool = True
    params: bool = False    # a model with params: the ELBO chose (:func:`fit_with_params`)

    def line(self) -> str:
        text = (f"guide auto: tried {', '.join(t.text() for t in self.tried)}; "
                f"chose {self.tried[self.chosen].family}")
        elbos = [f"{t.family} {_nats(t.elbo[0])} ± {_nats(t.elbo[1])}"
                 for t in self.tried if t.elbo]
        why = "the climb interrupted" if self.interrupted else "none being usable"
        if elbos and self.params:
            text += (f" by the ELBO on k̂'s draws ({', '.join(elbos)}; within {ELBO_TIE:g} se "
                     f"or {ELBO_TIE_NATS:g} nats, the usable, then mean field): {PARAMS_WHY}")
        elif elbos:
            text += (f", {why}, by the ELBO on k̂'s draws ({', '.join(elbos)}; "
                     f"within {ELBO_TIE:g} se or {ELBO_TIE_NATS:g} nats, the smaller k̂)")
        elif self.interrupted or not self.usable:
            text += f", {why}"       # the one fit assessed: the others failed or diverged
        return text

    def plain(self) -> dict:
        """Every field as plain values, inf and nan kept (:meth:`from_plain`): the report
        crosses the multi-start check's pipe (starts.run_starts) as JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, fields: dict) -> "AutoReport":
        tried = tuple(Tried(**{**t, "elbo": tuple(t["elbo"])}) for t in fields["tried"])
        return cls(tried, fields["chosen"], fields["interrupted"], fields["usable"],
                   fields.get("params", False))

    def to_dict(self) -> dict:
        """Plain values for fit.json, with the line (``ppl summary`` prints it again)."""
        chosen_by = "elbo" if any(t.elbo for t in self.tried) else "only"
        return {"line": self.line(), "chosen": self.tried[self.chosen].family,
                "chosen_by": "usable" if self.usable and not self.params else chosen_by,
                "interrupted": self.interrupted,
                "tried": [{"family": t.family, "level": t.level, "seconds": t.seconds,
                           "khat": float(t.khat) if np.isfinite(t.khat) else None,
                           **({"start_ess": t.ess} if t.level == SKIPPED and not
                              t.independent else {}),
                           **({"independent": True} if t.independent else {}),
                           **({"error": t.error} if t.error else {}),
                           **({"moved": True} if t.moved else {}),
                           **({"student_t": True} if t.student_t else {}),
                           **({"noisy": True} if t.noisy else {}),
                           **({"light_tails": True} if t.light_tails else {}),
                           **({"elbo": _number(t.elbo[0]), "elbo_se": _number(t.elbo[1])}
                              if t.elbo else {})}
                          for t in self.tried]}


def _nats(x: float) -> str:
    """An ELBO or its standard error in the report line: to 0.01 nats (the tie rule's scale),
    in e-notation where that would be a wall of digits (an improper posterior's 5.5e+190)."""
    return f"{x:.2f}" if abs(x) < 1e9 else f"{x:.4g}"


def _number(x: float) -> float | None:
    """x for JSON: None where it is not finite."""
    return float(x) if np.isfinite(x) else None


def fit_auto(compiled, options, rng: np.random.Generator, assess: Callable,
             progress=None) -> tuple[object, AutoReport]:
    """Fit the ladder's families in turn until one can be used (see the module docstring).

    Parameters
    ----------
    compiled : as for advi.fit.
    options : FitOptions with guide 'auto' (each family is fitted with its name instead).
    rng : one stream for the whole climb: same seed, same families, same result.
    assess : assess(result) -> an object with ``khat`` and ``verdict()`` (posterior.Fit),
        which is kept and returned for the chosen family, so k̂ is not computed twice.
    progress : passed to every family's fit; its ``family(name)``, if it has one, is called
        with each family's name before that family is fitted.

    Returns
    -------
    (the assessed object of the chosen family, AutoReport).

    Raises
    ------
    PplError : from the mean-field fit (a failing richer family is recorded and skipped).
    """
    tried, assessed, held = [], [], {}
    try:
        last_rung, start = _climb(compiled, options, rng, assess, progress, tried, assessed,
                                  held)
        if last_rung:
            retry(compiled, options, rng, assess, progress, start, tried, assessed, held)
        ctrl_c = False
    except KeyboardInterrupt:
        # Ctrl-C outside a fit's steps (the probe, k̂'s draws, between rungs) ends the climb
        # as it does inside them: the fits so far
        if not assessed:
            raise
        ctrl_c = True
    interrupted = ctrl_c or assessed[-1][1].result.reason == advi.INTERRUPTED
    # a rung the Gaussian rung's tail check refuted is neither usable nor a choice by the ELBO
    assessed = [(index, fit) for index, fit in assessed if not tried[index].light_tails]
    usable = tuple(_usable(fit) for _, fit in assessed)
    place = stands(usable, interrupted)
    index, best = assessed[_by_elbo(assessed, tried) if place is None else place]
    for rung in sorted(held):
        _warn_again(held[rung], ppl_too=rung == index)
    return best, AutoReport(tuple(tried), index, interrupted, not interrupted and any(usable))


# A model with params (empirical Bayes) and latents without a guide statement: each family's
# ELBO is maximized over the params too, and a family that cannot hold the latents' posterior
# given the params moves the params to where it can. Mean field's is highest where a variance
# component is 0, which makes the latents independent; k̂ judges the guide given the params,
# and given a collapsed scale the posterior is easy, so mean field alone said reliable. An
# audit against the exact MAP-II (session 49; tests/stats/test_params_auto.py's models) found
# 30 of 30 such fits reliable: a local-level model's q 0.000-0.005 against 0.234 (1.9 nats of
# marginal likelihood below it), random intercepts and slopes' tau0 0.02-0.07 against 0.436,
# nested groups' tau_r 0.01-0.04 against 0.414, the random effects' sds 3-30% of the exact;
# full rank, finished on fixed draws (advi._polishes), reached all three within 0.003. So auto
# fits mean field, then the Gaussian rung (full rank up to params_em.MAX_DIM latents; low rank
# beyond, :func:`params_rungs`) from the params' own start (from mean field's, a scale at 0
# has no gradient to leave it), and returns the rung whose ELBO on k̂'s draws is higher by
# more than a tie (ladder.tie); within a tie, the one that can be used, then mean field, the
# cheaper.
PARAMS_WHY = "the params are the ELBO's maximum, which a family that cannot hold the " \
    "latents' posterior moves"
# Where the latents are independent given the params (one-way random intercepts, a
# Gamma-Poisson), full rank's ELBO is mean field's at every params (params_em.independent), so
# the Gaussian rung is skipped: it had cost 2-15x mean field's CPU to tie with it (one-way
# random intercepts with 300 groups: 15.0x, session 53)
INDEPENDENT_WHY = "the latents are independent given the params, where mean field is exact"


def with_params(compiled) -> bool:
    """Whether ``compiled`` is fitted by :func:`fit_with_params` under guide 'auto': params,
    no guide statement, latents to draw."""
    return bool(compiled.params) and not compiled.guides and user.auto_dim(compiled) > 0


def params_rungs(D: int) -> tuple[str, str]:
    """The families :func:`fit_with_params` fits for D latents: mean field, then full rank,
    which EM finishes, up to params_em.MAX_DIM latents (the ladder's full rank ends at 200),
    then the ladder's Gaussian rung (low rank)."""
    return ("meanfield", "fullrank") if D <= params_em.MAX_DIM else ladder(D)[:2]


# The families whose params no full rank checked are warned of where the latents are correlated
# given the params (mean field's ELBO maximum moves a variance component towards 0, PARAMS_WHY;
# low rank's is not finished): a named family, or auto's beyond params_em.MAX_DIM latents
UNCHECKED = ("meanfield", "lowrank")


def warn_unchecked_params(compiled, result, independent: bool | None = None) -> None:
    """Warn (errors.params_unchecked) where ``result`` is a fit of a model with params and
    latents without a guide statement (:func:`with_params`) by a family of UNCHECKED whose
    latents are correlated given its params (``independent`` False, or when None,
    :func:`_independent`): nothing compared its params with full rank's. The random slopes
    with 120 groups were `reliable` 18.7 nats below the MAP-II (params_em.MAX_DIM's comment);
    beyond 500 latents auto still returns such a fit, now with this warning."""
    if not with_params(compiled):
        return
    name = result.guide.auto.name.split(":")[0]     # low rank's is 'lowrank:R'
    if name not in UNCHECKED or result.guide.d_auto < 2:
        return
    if independent is None:
        independent = _independent(compiled, result)
    if not independent:
        warnings.warn(params_unchecked(name, list(compiled.params), params_em.MAX_DIM),
                      stacklevel=3)


def _independent(compiled, result) -> bool:
    """Whether ``result`` (mean field or low rank) has latents independent given its params
    (params_em.independent): full rank would tie with mean field there."""
    return params_em.independent(compiled, result.guide, result.theta)


def fit_with_params(compiled, options, rng: np.random.Generator, assess: Callable,
                    progress=None) -> tuple[object, AutoReport]:
    """Mean field and the Gaussian rung, the one with the higher ELBO returned (PARAMS_WHY's
    comment; the Gaussian rung is skipped where the latents are independent given mean
    field's params, INDEPENDENT_WHY's); arguments and returns as :func:`fit_auto`'s. A
    failing Gaussian rung is recorded and mean field returned; Ctrl-C returns mean field, or
    raises before it. Where no full rank was fitted and the latents are correlated, the fit
    returned says it may be wrong (:func:`warn_unchecked_params`)."""
    tried, assessed, held = [], [], {}
    ctrl_c, independent = False, None
    try:
        for name in params_rungs(user.auto_dim(compiled)):
            started = time.perf_counter()
            if assessed:
                independent = _independent(compiled, assessed[0][1].result)
            if independent:
                tried.append(Tried(name, float("nan"), SKIPPED, time.perf_counter() - started,
                                   independent=True))
                continue
            result, caught = _fit_rung(compiled, dataclasses.replace(options, guide=name), rng,
                                       progress, None, started, tried, first=not tried)
            if result is None:
                continue
            _record(name, assess(result), started, tried, assessed)
            held[len(tried) - 1] = caught
            if result.reason == advi.INTERRUPTED:
                break
    except KeyboardInterrupt:
        if not assessed:
            raise
        ctrl_c = True
    interrupted = ctrl_c or assessed[-1][1].result.reason == advi.INTERRUPTED
    place = 0
    if len(assessed) == 2 and not interrupted:
        elbos = [elbo_on_khat_draws(fit) for _, fit in assessed]
        for (index, _), elbo in zip(assessed, elbos):
            tried[index] = dataclasses.replace(tried[index], elbo=elbo)
        (mean_field, mean_field_se), (gaussian, gaussian_se) = elbos
        gain, equal = gaussian - mean_field, tie(mean_field_se, gaussian_se)
        usable = [_usable(fit) for _, fit in assessed]
        if (gain > equal and gaussian_se <= ELBO_SE_KNOWN) or \
                (abs(gain) <= equal and usable[1] and not usable[0]):
            place = 1
    index, best = assessed[place]
    for rung in sorted(held):
        _warn_again(held[rung], ppl_too=rung == index)
    if not any(t.family == "fullrank" and t.level not in (SKIPPED, FAILED, DIVERGED)
               for t in tried):
        # no full rank checked the params (beyond params_em.MAX_DIM, or its fit failed)
        warn_unchecked_params(compiled, best.result, independent)
    return best, AutoReport(tuple(tried), index, interrupted, _usable(best), params=True)


def _climb(compiled, options, rng, assess, progress, tried: list, assessed: list,
           held: dict):
    """Fit the rungs :class:`Ladder` names in turn (the last rung aside), each appended to
    ``tried`` and, when fitted and assessed, ``assessed`` as (its index in tried, its fit),
    and the warnings of its steps to ``held`` under that index (:func:`_fit_rung`).
    Returns (whether the last rung follows, the fit it starts from: the flow's own)."""
    policy = Ladder(ladder(compiled.dim))
    history, ends, starts, gaussian = (), {}, {}, None
    while (name := policy.next(history)) not in (None, LAST_RUNG):
        started = time.perf_counter()
        start = starts[name] = ends.get(policy.start_from(name, history))
        if start is not None and policy.probes(name):
            ends[name] = fullrank_start(compiled, options, rng, start)
            # PSIS of the first draws alone: the probe needs no more (posterior.Fit.psis)
            probe = psis(assess(ends[name]).log_weights()) if ends[name] is not None else None
            if probe is not None and probe.ess < SKIP_ESS * probe.log_weights.size:
                tried.append(Tried(name, probe.khat, SKIPPED, time.perf_counter() - started,
                                   probe.ess / probe.log_weights.size))
                history += ((name, SKIPPED),)
                continue
        result, caught = _fit_rung(compiled, dataclasses.replace(options, guide=name), rng,
                                   progress, start, started, tried, first=not history)
        if result is None:
            history += ((name, tried[-1].level),)     # FAILED or DIVERGED
            continue
        fit, moved, heavier = assess(result), None, None
        try:
            # (not past the iteration cap: the further rounds would exceed --iter)
            if name == "scaled" and _low_ess(fit) and \
                    result.reason not in (advi.INTERRUPTED, advi.MAX_ITER):
                try:
                    refined = advi.refine(compiled, result, rng, fixed_draws.MORE_DRAWS,
                                          progress)
                except PplError:
                    # every draw set of the further rounds diverged: the rung stands as its
                    # first rounds left it (an error here had ended the whole fit, exit 2)
                    refined = None
                if refined is not None:
                    result, fit = refined, assess(refined)
            # a full rank that cannot be used on nearly equal weights, under heavier tails
            if name == "fullrank" and not _usable(fit) and fit.weights_ess >= T_GATE:
                heavier = heavier_tailed(compiled, result)
                if _usable(heavier_fit := assess(heavier)):
                    result, fit = heavier, heavier_fit
            # where the flow would follow this fit (it cannot be used), not past the iteration cap
            if result is not heavier and name in MOVED_RUNGS and \
                    result.reason != advi.MAX_ITER and \
                    policy.next(history + ((name, _outcome(fit, gaussian)),)) == "flow":
                # a copy of the stream: a move that cannot be used leaves the climb as it was
                moved = moment_matched(compiled, result, copy.deepcopy(rng))
                if moved is not None and _usable(moved_fit := assess(moved)):
                    result, fit = moved, moved_fit
            _record(name, fit, started, tried, assessed, moved=result is moved,
                    student_t=result is heavier, noisy=_checked_for_noise(fit))
            held[len(tried) - 1] = caught
        except KeyboardInterrupt:
            # Ctrl-C after the rung's steps (its k̂'s draws, its move): the rung as fitted (not
            # moved, unless the move was kept) is recorded, as Ctrl-C inside its steps keeps
            # it, and the climb ends (fit_auto); it had ended with the fits before it
            _record(name, fit, started, tried, assessed, moved=result is moved,
                    student_t=result is heavier)
            held[len(tried) - 1] = caught
            raise
        if _tails_refuted(history, fit):
            # the mean field it checked is no longer usable: the climb goes on past this rung
            tried[assessed[0][0]] = dataclasses.replace(tried[assessed[0][0]], light_tails=True)
            history = ((history[0][0], UNUSABLE),) + history[1:]
        history += ((name, _outcome(fit, gaussian)),)
        ends[name] = result
        if name in GAUSSIAN_RUNGS:
            gaussian = fit
    # the last rung goes on from the flow's own fit (its layers, then two more that start
    # as the identity: Flow.stacked_start), or from the flow's start where it failed
    return name == LAST_RUNG, ends.get("flow") or starts.get("flow")


def _tails_refuted(history: tuple, fit) -> bool:
    """Whether ``fit``, the Gaussian rung that checks a mean field usable with care on thin
    weights (``history``: that mean field's alone, CARE_THIN), cannot be used because the
    posterior's tails are heavier than its own (posterior.Fit._tails_disagree): the mean field
    is a Gaussian too, no wider, and its corrected summary cannot restore those tails either.
    A logistic regression whose classes one predictor nearly separates (3 predictors, 30
    rows, Student-t(3) priors) had mean field `usable with care` at k̂ 0.54, its corrected
    mean of that coefficient 0.29 posterior sds off and its sd 50% short against NUTS, while
    the full rank that checked it was `unreliable` by its tails; auto returned the mean
    field (seed 1; docs/trust.md)."""
    return (len(history) == 1 and history[0][1] == CARE_THIN and not _usable(fit)
            and fit.corrected and fit._tails_disagree() is not None)


def _fit_rung(compiled, options, rng, progress, start, started: float, tried: list,
              first: bool = False):
    """Fit the family ``options.guide`` names from ``start``, announced to ``progress``: (its
    result, or None when it raised or its ELBO fell (advi.FELL), recorded so in ``tried``
    (FAILED, DIVERGED); the warnings its steps raised). ``first``: mean field, whose error is
    the whole fit's (there is no fit to report) and whose fallen fit is assessed as any other.

    The warnings are held: ppl's own (`this fit may be wrong: a Newton step would move ...`)
    are about this rung, and :func:`fit_auto` shows them only if it returns it. The horseshoe
    regression of an audit (2026-12-04, session 47) printed mean field's `this fit may be
    wrong` above the `usable with care` flow:4 auto returned. Numpy's raw warnings, and those
    of a rung that raised or fell, are shown at once, as before."""
    _announce(progress, options.guide)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = advi.fit(compiled, options, rng, progress, start)
    except KeyboardInterrupt:
        _warn_again(caught, ppl_too=True)    # Ctrl-C outside its steps: shown as before
        raise
    except PplError as error:
        _warn_again(caught, ppl_too=True)
        if first:
            raise
        tried.append(_failed(options.guide, error, started))
        return None, []
    if result.reason == advi.FELL and not first:
        _warn_again(caught, ppl_too=True)
        tried.append(Tried(options.guide, np.inf, DIVERGED, time.perf_counter() - started))
        return None, []
    _warn_again(caught, ppl_too=False)
    return result, [w for w in caught if issubclass(w.category, PplWarning)]


def _warn_again(caught: list, ppl_too: bool) -> None:
    """Issue warnings recorded by ``warnings.catch_warnings`` again, ppl's own only when
    ``ppl_too``, under the caller's filters."""
    for w in caught:
        if ppl_too or not issubclass(w.category, PplWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _record(family: str, fit, started: float, tried: list, assessed: list,
            moved: bool = False, student_t: bool = False, noisy: bool = False) -> None:
    """Record an assessed rung: its k̂, level, seconds and whether it was ``moved``, given
    Student-t noise (``student_t``) or checked for its ``noisy`` corrected means in ``tried``,
    (that index, ``fit``) in ``assessed``."""
    tried.append(Tried(family, fit.khat, fit.verdict().level, time.perf_counter() - started,
                       moved=moved, student_t=student_t, noisy=noisy))
    assessed.append((len(tried) - 1, fit))


def _outcome(fit, gaussian) -> str:
    """What :class:`Ladder` reads of an assessed rung: INTERRUPTED, USABLE, RELIABLE_THIN,
    CARE_THIN, or when it cannot be used UNUSABLE or, above ``gaussian`` (the fitted Gaussian
    rung's fit, if one came before), ABOVE."""
    if fit.result.reason == advi.INTERRUPTED:
        return INTERRUPTED
    if not _usable(fit):
        return ABOVE if gaussian is not None and _beats(fit, gaussian) else UNUSABLE
    if _checked_for_noise(fit):
        return CARE_THIN
    if not _thin(fit):
        return USABLE
    return CARE_THIN if fit.verdict().level == CARE else RELIABLE_THIN


def _checked_for_noise(fit) -> bool:
    """Whether a usable mean field goes on to the Gaussian rung for its noisy corrected means
    (:func:`_noisy`)."""
    return fit.result.guide.name == "meanfield" and _usable(fit) and _noisy(fit)


def _noisy(fit) -> bool:
    """Whether a usable fit's corrected summary has a mean whose own Monte Carlo standard
    error is above verdict.NOISY_CORRECTION of its sd: heavy-tailed weights, which the
    returned fit's verdict names (a rung's verdict leaves the summary's draws out while the
    climb goes on, Fit.climbing). A mean field so is checked by the Gaussian rung, as one
    usable with care on thin weights (CARE_THIN): noncentered eight schools seed 18, mean
    field `reliable` at k̂ 0.49 with tau's error 0.065 sd and its sd 17.6% off, full rank
    within issue 11's targets. Only a fit that would stop the climb asks, and its summary
    reuses the draws' weights (posterior.Fit._summary_weights): the cost is one pass over
    the summary's draws, where its mean field is returned."""
    worst = fit._summary_mcse() if fit.corrected else None
    return worst is not None and worst[1] > NOISY_CORRECTION


def _failed(family: str, error: PplError, started: float) -> Tried:
    """The record of a rung that raised ``error``: its message, with the statement's location
    when it names one (the source excerpt and hint are left to an error of the whole fit)."""
    where = f"{error.span.location}: " if error.span is not None else ""
    return Tried(family, np.inf, FAILED, time.perf_counter() - started,
                 error=where + error.message)


def _announce(progress, family: str) -> None:
    """Tell a progress callback that has a ``family`` method which family is fitted next."""
    announce = getattr(progress, "family", None)
    if callable(announce):
        announce(family)


def _thin(fit) -> bool:
    """Whether a fit's importance weights carry little: an ESS below RETRY_ESS of their draws,
    whatever k̂ (under 0.5 it says their variance is finite, not that it is small): a usable
    flow after a skipped full rank so goes on to the last rung."""
    return fit.psis.ess < RETRY_ESS * fit.psis.log_weights.size


def _low_ess(fit) -> bool:
    """Whether a fit cannot be used, or is usable with care on weights that carry little
    (:func:`_thin`): the scaled fit's further rounds (mean field's check by the Gaussian
    rung is the same rule, CARE_THIN)."""
    return not _usable(fit) or (fit.verdict().level == CARE and _thin(fit))


def _usable(fit) -> bool:
    """Whether the climb stops at this fit: reliable, or usable with care and corrected, or
    usable with care on nearly equal weights (verdict.matches_bulk: a richer family could not
    do measurably better where the draws go)."""
    level = fit.verdict().level
    if level == RELIABLE:
        return True
    p = fit.psis
    return level == CARE and (fit.corrected or matches_bulk(p.khat, p.threshold,
                                                            fit.weights_ess, p.n_nonfinite))


def _by_elbo(assessed: list, tried: list) -> int:
    """The place in ``assessed`` of the fit auto returns when none can be used or Ctrl-C ended
    the climb (ladder.by_elbo); each one's ELBO is recorded in ``tried`` for the report."""
    elbos = [elbo_on_khat_draws(fit) for _, fit in assessed]
    for (index, _), elbo in zip(assessed, elbos):
        tried[index] = dataclasses.replace(tried[index], elbo=elbo)
    return by_elbo(elbos, [fit.khat for _, fit in assessed])


def elbo_on_khat_draws(fit) -> tuple[float, float]:
    """(ELBO, its standard error): the mean of the log weights at the PSIS draws
    (``fit.log_weights()``: those k̂ came from, as ``fit.psis`` kept them) and their sd / sqrt(n);
    -inf when one is not finite (the fit puts mass where the density is zero or undefined)."""
    log_w = np.asarray(fit.log_weights(), dtype=float)
    if log_w.size > 1 and np.all(np.isfinite(log_w)):
        return float(log_w.mean()), float(log_w.std(ddof=1) / np.sqrt(log_w.size))
    return -np.inf, 0.0


def _beats(fit, other) -> bool:
    """Whether ``fit``'s ELBO is above ``other``'s by more than a tie."""
    (value, se), (value_other, se_other) = elbo_on_khat_draws(fit), elbo_on_khat_draws(other)
    return value - value_other > tie(se, se_other)


def retry(compiled, options, rng, assess, progress, start, tried, assessed,
          held: dict | None = None) -> None:
    """The last rung: the larger, longer flow (RETRY_*) from ``start``, the first flow's fit
    (or the fit it was warm-started from, where it failed); appended to ``tried`` and
    ``assessed``, where it replaces the first flow when its final ELBO is higher (a divergence
    is recorded as failed or diverged: the fits before it stand); the warnings of its steps to
    ``held`` (:func:`_climb`)."""
    held = {} if held is None else held
    started = time.perf_counter()
    spec = f"flow:{RETRY_LAYERS}"
    lr = RETRY_LR if options.lr is None else options.lr
    result, caught = _fit_rung(compiled, dataclasses.replace(
        options, guide=spec, window=options.window * RETRY_WINDOW, lr=lr), rng, progress,
        start, started, tried)
    if result is None:
        return
    fit = assess(result)
    # Both flows maximize the same ELBO, the last rung from the flow's own q: the higher one
    # is the closer q. k̂ from 4000 draws is too noisy to choose between them (gp_pois_regr,
    # seed 2: 0.85 and 0.85, the retry's errors a third of the flow's; docs/history/trust-log.md)
    replaces = bool(assessed) and assessed[-1][1].result.guide.name.startswith("flow") and \
        result.final_elbo > assessed[-1][1].result.final_elbo
    try:
        _record(spec, fit, started, tried, assessed)
        held[len(tried) - 1] = caught
    except KeyboardInterrupt:
        # Ctrl-C while its k̂ was computed: kept beside the first flow, as _climb keeps a rung,
        # and the ELBO chooses (fit_auto); both had been lost
        _record(spec, fit, started, tried, assessed)
        held[len(tried) - 1] = caught
        raise
    if replaces:
        del assessed[-2]


def moment_matched(compiled, result, rng: np.random.Generator):
    """``result`` pushed by the lower-triangular affine map that takes the mean and covariance
    of MOMENT_DRAWS fresh draws of its guide to their PSIS-weighted mean and covariance (the
    guide's ``push_affine``, exact for such maps), its final ELBO estimated again as a fit on
    fixed draws estimates it (the steps' kept as ``unmoved_final_elbo``; their trace, steps
    and convergence are left as they were), its seconds the move's too; None when a weight is
    not finite or a covariance is singular. The draws come from ``rng``, not from the fit's own
    stream, so the moved fit's k̂ is judged on draws its move did not see."""
    started = time.perf_counter()
    guide, theta, chunk = result.guide, result.theta, advi.fixed_draws_chunk(compiled)
    eps = rng.standard_normal((MOMENT_DRAWS, guide.eps_dim(compiled.dim)))
    zeta = guide.draw(theta, eps)
    log_w = log_weights(compiled.log_joint, guide, theta, eps, int(min(chunk, MOMENT_DRAWS)))
    if not np.all(np.isfinite(log_w)):
        return None
    w = np.exp(psis(log_w).log_weights)
    mean_q, mean_w = zeta.mean(axis=0), w @ zeta
    centred = zeta - mean_w
    try:
        B = np.linalg.cholesky(centred.T @ (centred * w[:, None])) @ \
            np.linalg.inv(np.linalg.cholesky(np.cov(zeta.T)))
    except np.linalg.LinAlgError:
        return None
    moved = guide.push_affine(theta, mean_w - B @ mean_q, np.tril(B))
    final_elbo = fixed_draws.elbo_estimate(compiled.log_joint, guide, moved, chunk)
    return dataclasses.replace(result, theta=moved, final_elbo=final_elbo,
                               unmoved_final_elbo=result.final_elbo,
                               seconds=result.seconds + time.perf_counter() - started)


def heavier_tailed(compiled, result):
    """The full-rank ``result`` with Student-t noise of T_NU degrees of freedom in its frame
    (the same theta, guide StudentT: ppl/guides/student.py), its final ELBO estimated again as
    a fit on fixed draws estimates it (the steps' kept as ``unmoved_final_elbo``; their trace,
    steps and convergence are left as they were), its seconds the estimate's too. Nothing is
    fitted: the weights of its own draws, judged by assess, decide whether it is kept."""
    started = time.perf_counter()
    heavier = tails.under_student_t(result, T_NU)
    final_elbo = fixed_draws.elbo_estimate(compiled.log_joint, heavier.guide, heavier.theta,
                                           advi.fixed_draws_chunk(compiled))
    return dataclasses.replace(heavier, final_elbo=final_elbo,
                               unmoved_final_elbo=result.final_elbo,
                               seconds=result.seconds + time.perf_counter() - started)


def fullrank_start(compiled, options, mf_rng: np.random.Generator, mean_field):
    """The Gaussian full rank's fit would start from, as a full-rank result with no steps of
    its own (mean field's steps, trace and seconds), or None when the fit would start from
    mean field's own frame (no whitening).

    Computed as advi._fit_family does (advi.mean_field_frame: its own decomposition was once
    kept here, and missed that frame's Jacobi scaling), with a copy of the climb's stream: the
    whitening's draws are those the full-rank fit takes first, and the climb's stream is left
    as it was, so a fit that does not skip full rank is the same as before this probe existed.
    """
    if options.precondition != "hessian" or compiled.dim == 0:
        return None
    theta = mean_field.theta
    with np.errstate(all="ignore"):   # as in advi.fit: a far draw may overflow
        whitened = advi.mean_field_frame(compiled, theta, copy.deepcopy(mf_rng))
    if whitened.L is None:
        return None
    guide = family("fullrank", compiled.dim)
    start = guide.push_affine(guide.init(compiled.dim, 1.0), MEAN_FIELD.frame(theta)[0],
                              whitened.matrix())
    # its steps are mean field's: the trace of a flow fitted from it says so (AdviResult.phases)
    return dataclasses.replace(mean_field, guide=guide, theta=start,
                               phases=mean_field.own_phases())


def alone_line(why: str) -> str:
    """The line of a fit where guide 'auto' fitted mean field without climbing, ``why`` one
    of ALONE_USER, ALONE_BATCH, ALONE_DADVI."""
    return f"guide auto: fitted mean field only, no richer family tried ({why})"
