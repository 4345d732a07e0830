"""The verdict on a fit: from k̂, the convergence rule and (if run) the multi-start check, one
line in words saying what can be trusted and what to try next. Pure logic on plain values;
k̂ comes from psis.py, the multi-start comparison from starts.py.

Thresholds (docs/trust.md): k̂ <= 0.5, the guide is close to the posterior and its means and sds
can be used as they are (Yao, Vehtari, Simpson, Gelman 2018, "Yes, but did it work?", section
3.2); 0.5 < k̂ < min(1 - 1/log10(S), 0.7), importance sampling with S draws still corrects the
guide, but the guide itself is off in its sds and tails; above, it is unreliable (Vehtari,
Simpson, Gelman, Yao, Gabry 2024, "Pareto Smoothed Importance Sampling", section 3.2.4),
unless the weights are so nearly equal that the guide matches the posterior's bulk (BULK_ESS).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .psis import MIN_TAIL, tail_length

RELIABLE = "reliable"
CARE = "usable with care"
UNRELIABLE = "unreliable"
KHAT_GOOD = 0.5
KHAT_BAD = 0.7
# A corrected summary needs its weights' effective sample size to be at least this: Stan and
# ArviZ's minimum ESS for an estimate and its error to be trusted (Vehtari, Gelman, Simpson,
# Carpenter, Burkner 2021, "Rank-normalization, folding, and localization"). k̂ from 4000 draws
# can fall under its threshold by chance while the weights say otherwise: mean field on
# kidiq-kidscore_interaction (seed 9) had k̂ 0.65 and an ESS of 69 of 16,000 draws, and its
# corrected sds were 91% off; over seeds 0-9 of posteriordb, such fits had ESS 60-231 and sds
# 26-91% off, the accurate ones 988 or more (docs/history/trust-log.md, "A corrected summary needs
# an ESS").
MIN_SUMMARY_ESS = 400
# And the weights k̂ came from must have an ESS of at least MIN_WEIGHTS_ESS: posterior.py's
# SUMMARY_ESS / PSIS_GROWTH, under which the summary cannot reach its ESS target within the
# draws it may take, even if the ESS grew in proportion to them (heavy tails grow it less). On
# posteriordb seeds 10-19 four mean-field fits usable with care (k̂ 0.60-0.64) had 288-428 of
# 4000 draws; their summaries, weighted from 32,000 draws at an ESS of 531-923, passed
# MIN_SUMMARY_ESS with sds 40-99% off. Every usable fit auto chose within the targets on seeds
# 0-19 had at least 598 (docs/history/trust-log.md, "Seventeenth probe").
MIN_WEIGHTS_ESS = 500
# k̂ reads the shape of the largest weights' tail, not its size: as the log weights' spread c
# shrinks, k̂ of weights exp(c x) tends to the tail shape of x itself (x from a t with 5
# degrees of freedom: 0.24 at c = 0.001, 1.24 at c = 1), so a guide that misses the posterior
# only in tails its draws barely reach can have k̂ above 0.7 with nearly equal weights. A fit
# at or above k̂'s threshold whose smoothed weights have an effective sample size of at least
# BULK_ESS of their draws (all finite) is usable with care, as the guide's own summary: in one
# direction of a Gaussian posterior, an ESS of 0.99 bounds the guide's mean within 0.1
# posterior sd (ESS = exp(-delta^2)) and its sd within -6%..+8% (ESS = sqrt(2 r^2 - 1) / r^2),
# inside issue 11's targets; more directions multiply their ESS. On posteriordb seeds 0-9
# (docs/history/trust-log.md, "Sixteenth probe"), auto's fits at k̂ >= 0.7 had an ESS of
# 0.94-1.00 (full rank and flows of near-Gaussian regressions, every one within 0.042 sd on
# means and 8.3% on sds) or of at most 0.33.
BULK_ESS = 0.99
# An uncorrected summary (DADVI's linear-response Gaussian, or --correct none) is the guide's
# own, and k̂ below its threshold does not say the guide is close to the posterior: a guide
# wider than the posterior has bounded weights, and k̂ is small however wide it is. DADVI on
# eight_schools_noncentered (seeds 1-2, k̂ 0.41-0.45) was `reliable` with sds 84-93% too
# large and means 0.17 sd off; its draws weighted by the weights k̂ trusts were within 0.036
# sd and 7.3% of the reference. So where k̂ trusts the weights, the plain summary must agree
# with the weighted one on every reported element, within issue 11's targets (MEAN_TARGET
# posterior sds on a mean, SD_TARGET on an sd) plus three Monte Carlo standard errors of the
# weights' reweighting of those draws (WEIGHTS_SE): otherwise a mean off is unreliable, an sd
# off usable with care. On posteriordb seeds 0-2, the 29 DADVI fits within the targets that
# k̂ lets be checked so had gaps of at most 0.072 sd and 5.2%; DADVI's 4 misses under a usable
# verdict (both eight schools) had 0.165-0.891 sd and 91-112% (docs/trust.md, "The verdict").
MEAN_TARGET = 0.1
SD_TARGET = 0.15
# An importance-corrected mean whose own Monte Carlo standard error is above half MEAN_TARGET
# (in posterior sds) can be MEAN_TARGET off from the draws alone at two standard errors: a
# `reliable` fit is then usable with care. The summary's draws aim at 1/sqrt(4000) = 0.016
# (posterior.MEAN_MCSE); past their cap heavy-tailed weights left 0.05-0.065 on gp_pois_regr's
# scaled fits and 0.065 on noncentered eight schools' mean field at seed 18 (`reliable` at k̂
# 0.49 from 4,000 draws, 0.74 from 32,000; its sd of tau 17.6% off; docs/history/trust-log.md,
# "Twenty-ninth probe").
NOISY_CORRECTION = MEAN_TARGET / 2
# The same for a corrected sd: a relative Monte Carlo standard error above half SD_TARGET. It
# grows with an element's kurtosis under the weights (tails.weighted_moments), which the mean's
# does not see: on Neal's funnel (docs/trust.md, "Known limits") auto's scaled fits were
# `reliable` (k̂ 0.23-0.30) with x's sd 0.15-0.19 uncertain and 38-48% short. On posteriordb
# at seeds 0-4 (80 auto fits) the largest was 0.010-0.031, but 0.082-0.137 on gp_pois_regr's
# Kmat, `usable with care` already; on the example models (seeds 0-1) 0.010-0.056.
NOISY_SD = SD_TARGET / 2
WEIGHTS_SE = 3.0
# A DADVI mean's Monte Carlo standard error (the sandwich's, from its fixed draws; dadvi.py),
# in posterior sds, of the mean whose error is the largest: above MCSE_WARN dadvi.fit warns
# and the fit is unreliable whatever k̂ (at 2 fixed draws eight schools' theta[1] was 2.5e14
# sds off, with k̂ 0.37). Above NOISY_CORRECTION, for the same reason as a corrected mean's,
# a `reliable` fit is `usable with care` and a `usable with care` one says so in a note: at
# the default 30 draws tumor_rates seed 1 was `reliable` with m's mean 0.12 sds off and an
# mcse of 0.069 of its sd (a's 0.080); on posteriordb seeds 0-2 every usable DADVI fit had
# 0.032 or less (docs/dadvi.md).
MCSE_WARN = 0.25
# k̂ of the corrected summary's own weights (``summary_khat``, from up to 8x k̂'s draws) at or
# above this makes the fit unreliable: its tail is then far past the threshold, where the
# reweighting restores nothing. A three-component Normal mixture (ordered means, 200 points,
# components 1 sd apart; tests/stats/test_trust.py's MIX3) was `usable with care` at seeds
# 0-2 (k̂ 0.56-0.68 from 4,000 draws; 0.89-1.20 from the summary's) with its corrected sds
# 23-56% short of NUTS. On the example models and posteriordb at seeds 0-5 (228 auto fits)
# the largest summary k̂ of a fit within issue 11's targets was 0.795 (gp_pois_regr seed 1).
SUMMARY_KHAT_BAD = 0.85


@dataclass(frozen=True)
class Verdict:
    """What a fit can be trusted for.

    Attributes
    ----------
    level : RELIABLE, CARE or UNRELIABLE.
    line : the full sentence, e.g. ``reliable (k̂ 0.21): means and sds are close to the posterior``.
    """

    level: str
    line: str

    def __str__(self) -> str:
        return self.line


def judge(khat: float, threshold: float, draws: int, converged: bool = True,
          n_nonfinite: int = 0, guide: str = "meanfield", available: tuple = ("meanfield",),
          disagree: tuple = (), corrected: bool = False,
          summary_ess: float = np.inf, weights_ess: float | None = None,
          min_weights_ess: float = MIN_WEIGHTS_ESS,
          noisy_mean: tuple[str, float] | None = None, method: str = "advi",
          unconverged: str = "raise --iter", diverged: bool = False,
          weights_disagree: tuple[str, float, float, bool] | None = None,
          off_optimum: bool = False,
          tails_disagree: tuple[str, float, float, bool] | None = None,
          noisy_correction: tuple[str, float] | None = None,
          batch_meanfield: bool = False,
          summary_khat: tuple[float, float, int] | None = None,
          noisy_sd: tuple[str, float] | None = None) -> Verdict:
    """The verdict on one fit (or on a set of starts).

    Parameters
    ----------
    khat, threshold : from ``psis.psis`` on the fit's log weights (k̂ may be +-inf).
    draws : the number of draws k̂ was estimated from.
    converged : whether the optimizer's convergence rule stopped the fit.
    n_nonfinite : draws whose log weight was not finite (counted and reported).
    guide, available : the family used and the families that exist, for the hint.
    disagree : element names whose means differ between starts (starts.py); empty if none
        or no multi-start check was run.
    corrected : whether the summary was importance-corrected with the smoothed weights.
    summary_ess : when corrected, the effective sample size of the weights the summary is
        corrected with (below MIN_SUMMARY_ESS: unreliable).
    weights_ess : the effective sample size of the smoothed weights k̂ came from, as a fraction
        of their draws (:func:`matches_bulk`, MIN_WEIGHTS_ESS); None when not known.
    min_weights_ess : MIN_WEIGHTS_ESS, or 0 where the summary is weighted from k̂'s draws
        themselves (a --batch fit: MIN_SUMMARY_ESS is then the bound on them).
    noisy_mean : (element, its Monte Carlo standard error in posterior sds) of the DADVI mean
        whose error is the largest against its sd, or None: above MCSE_WARN the fit is
        unreliable, above NOISY_CORRECTION as ``noisy_correction``.
    noisy_correction : (element, its Monte Carlo standard error in posterior sds) of the
        importance-corrected mean whose error is the largest, at the summary's own draws
        (posterior.Fit._summary_mcse), or None: above NOISY_CORRECTION a `reliable` fit is
        `usable with care`, and a `usable with care` one says so in a note.
    method : the fit's method; a hint to a family DADVI does not fit says --method advi.
    unconverged : what to say after "the optimizer did not converge" on a fit reliable by k̂:
        what to do (raise --iter, when the cap stopped it) or what happened (an interrupt, a
        divergence: more steps would not help).
    diverged : whether the fit's ELBO fell below its first steps (advi.FELL): whatever k̂
        says, its summary is not a posterior, and the step size is what to change, not the
        family (the hint to a richer family read as if this one had converged).
    weights_disagree : for a summary not importance-corrected, where k̂ trusts the weights:
        :func:`disagreement` of the plain and the weighted summary, or None.
    off_optimum : whether the end-of-fit check found the fit away from its optimum
        (advi.NOT_AT_OPTIMUM; its warning says why and what to do): an unreliable k̂ then
        judges where the fit stopped, not the family (a mean-field fit of Poisson(log_rate=a
        + b * year) on uncentred years, stopped 85 sds off, was told this family cannot
        represent the posterior, try --guide flow).
    tails_disagree : for an importance-corrected Gaussian fit: :func:`tails_disagreement` of
        its summary and the same frame's under heavier-tailed noise (infer/tails.py), or None.
        Unreliable: the corrected summary misses the posterior's mass in a tail the guide's
        draws do not reach, which k̂ from those draws cannot see.
    batch_meanfield : a --batch fit with a batched latent without a guide statement, which
        only mean field fits (infer/minibatch.py): a hint to a richer family says to fit
        without --batch (it read 'try --guide flow', which --batch then refused).
    summary_khat : (k̂, its threshold, draws) of the weights an importance-corrected summary
        took when it took more draws than ``draws`` (posterior.Fit._summary_weights), or None.
        At or above its threshold a `reliable` fit is `usable with care`, and a `usable with
        care` one says so in a note: k̂ from 8x the draws is the better estimate of the tail
        the summary is weighted by (eight schools seed 8 under auto: 0.43 from 4,000 draws,
        0.68 from the summary's 32,000; kilpisjarvi seed 2, 0.69 and 0.72). At or above
        SUMMARY_KHAT_BAD the fit is unreliable.
    noisy_sd : (element, the Monte Carlo standard error of its corrected sd relative to it)
        of the sd whose error is the largest, at the summary's own draws
        (posterior.Fit._summary_errors), or None: above NOISY_SD as ``noisy_correction``.

    Returns
    -------
    Verdict.
    """
    shown = _khat_text(khat)
    notes = []
    if n_nonfinite:
        notes.append(f"{n_nonfinite} of {draws} draws had a non-finite log density and were "
                     f"left out")
    if np.isposinf(khat) and tail_length(draws - n_nonfinite) >= MIN_TAIL:
        # enough draws for a tail, yet none could be fitted: fewer than MIN_TAIL weights are
        # within 708 nats of the largest, or the largest tie only by rounding (psis.psis),
        # e.g. a diverged or collapsed fit's
        level = UNRELIABLE
        text = ("a few draws carry all the importance weight, or their log weights are too "
                "large to tell apart: this family cannot represent the posterior"
                ) + _hint(guide, available, True, method, batch_meanfield)
    elif np.isposinf(khat) and n_nonfinite < draws and not n_nonfinite:
        level, text = UNRELIABLE, f"k̂ could not be estimated from {draws} draws; raise --draws"
    elif np.isposinf(khat) and n_nonfinite < draws:
        # more draws keep the same share of non-finite ones: the guide is where the model's
        # density cannot be evaluated
        level = UNRELIABLE
        text = ("the log density is not finite at most of the guide's draws, too few are left "
                "to estimate k̂") + _hint(guide, available, True, method, batch_meanfield)
    elif np.isposinf(khat):
        level, text = UNRELIABLE, "the log density is not finite at the guide's draws"
    elif matches_bulk(khat, threshold, weights_ess, n_nonfinite):
        level = CARE
        text = (f"the importance weights are nearly equal (ESS {weights_ess:.1%} of the "
                f"draws), so means and sds are usable; k̂ says the posterior's far tails are "
                f"heavier than the guide's")
    elif khat >= threshold:
        level = UNRELIABLE
        text = "this family cannot represent the posterior"
        if khat <= KHAT_BAD:
            text += f" (k̂ above {threshold:.2f}, the limit for {draws} draws)"
        text += _hint(guide, available, True, method, batch_meanfield)
    elif corrected and summary_ess < MIN_SUMMARY_ESS:
        level = UNRELIABLE
        text = (f"the importance weights are too uneven to correct the guide (effective "
                f"sample size {summary_ess:.0f}, under {MIN_SUMMARY_ESS})")
        text += _hint(guide, available, False, method, batch_meanfield)
    elif corrected and weights_ess is not None and weights_ess * draws < min_weights_ess:
        level = UNRELIABLE
        text = (f"the importance weights are too uneven to correct the guide (effective "
                f"sample size {weights_ess * draws:.0f} of {draws} draws, under "
                f"{min_weights_ess:.0f})")
        text += _hint(guide, available, False, method, batch_meanfield)
    elif weights_disagree is not None:
        name, mean_gap, sd_gap, mean_off = weights_disagree
        level = UNRELIABLE if mean_off else CARE
        if mean_off:
            text = (f"the importance weights, which k̂ trusts, put this summary's mean of {name} "
                    f"{abs(mean_gap):.2f} posterior sds off (its sd {sd_gap:+.0%})")
        elif abs(mean_gap) > MEAN_TARGET:
            # within the weights' noise, not shown off, but not shown usable either: DADVI on
            # models/seeds.ppl, seed 4, read "means are usable" with sigma's 0.23 sds off here
            # and 0.39 off the NUTS reference
            text = (f"the importance weights, which k̂ trusts, put this summary's sd of {name} "
                    f"{sd_gap:+.0%} off and its mean {abs(mean_gap):.2f} posterior sds")
        else:
            text = (f"means are usable, but the importance weights, which k̂ trusts, put this "
                    f"summary's sd of {name} {sd_gap:+.0%} off")
        text += ": it is the guide's own, not importance-corrected"
        text += ("; try --method advi, whose summary is importance-corrected"
                 if method == "dadvi" else "; try --correct psis")
    elif tails_disagree is not None:
        name, mean_gap, sd_gap, _ = tails_disagree
        level = UNRELIABLE
        text = (f"the posterior's tails are heavier than the guide's: against draws with "
                f"heavier tails (Student-t noise in the guide's frame) the corrected sd of "
                f"{name} is {sd_gap:+.0%} off and its mean {abs(mean_gap):.2f} sds")
        text += _hint(guide, available, True, method, batch_meanfield)
    elif khat > KHAT_GOOD:
        level = CARE
        text = ("means are usable, sds and tails may be off" if not corrected else
                "the importance-corrected summary is usable; the guide's sds and tails are off")
        text += _hint(guide, available, False, method, batch_meanfield)
    else:
        level, text = RELIABLE, "means and sds are close to the posterior"
    if noisy_correction is not None and noisy_correction[1] > NOISY_CORRECTION:
        # k̂ and the summary from 4x the draws: noncentered eight schools 18 then climbed to
        # full rank (k̂ 0.68 for mean field), 0.032 sd / 3.4% off, error 0.017 sd
        level, text = _caveat(level, text, notes,
                              f"the corrected mean of {noisy_correction[0]} is uncertain by "
                              f"{noisy_correction[1]:.3f} posterior sds (its Monte Carlo "
                              f"standard error: the weights are heavy-tailed)",
                              f"; fit again with --draws {4 * draws}, or a richer --guide")
    if noisy_sd is not None and noisy_sd[1] > NOISY_SD:
        level, text = _caveat(level, text, notes,
                              f"the corrected sd of {noisy_sd[0]} is uncertain by "
                              f"{noisy_sd[1]:.0%} (its Monte Carlo standard error: its tails "
                              f"are heavy)", "; its quantiles are the better summary")
    if noisy_mean is not None and NOISY_CORRECTION < noisy_mean[1] <= MCSE_WARN:
        # the error falls as one over the square root of the draws
        level, text = _caveat(level, text, notes, _dadvi_noise(*noisy_mean),
                              "; fit again with 4x the --dadvi-draws to halve it")
    if summary_khat is not None and summary_khat[0] >= SUMMARY_KHAT_BAD and \
            level != UNRELIABLE:     # an unreliable fit keeps the reason found first
        level = UNRELIABLE
        text = (f"k̂ of the corrected summary's own {summary_khat[2]} draws is "
                f"{summary_khat[0]:.2f}: the weights' tail is too heavy for the correction to "
                f"restore the posterior's sds and tails"
                + _hint(guide, available, True, method, batch_meanfield))
    elif summary_khat is not None and summary_khat[0] >= summary_khat[1]:
        level, text = _caveat(level, text, notes,
                              f"k̂ of the corrected summary's own {summary_khat[2]} draws is "
                              f"{summary_khat[0]:.2f}, not below {summary_khat[1]:.2f}, so its "
                              f"sds and tails may be off too",
                              _hint(guide, available, False, method, batch_meanfield))
    if disagree:
        level = UNRELIABLE
        names = ", ".join(disagree[:5]) + (" ..." if len(disagree) > 5 else "")
        text = (f"the starts disagree on {names}: the posterior may have several modes, or the "
                f"optimizer did not converge")
    too_noisy = noisy_mean is not None and not noisy_mean[1] <= MCSE_WARN    # NaN too
    if too_noisy:
        level = UNRELIABLE
        text = _dadvi_noise(*noisy_mean) + "; raise --dadvi-draws"
    if diverged:
        level, text = UNRELIABLE, "the fit diverged (its ELBO fell below its first steps), " \
                                  "so its summary is not a posterior: try a smaller --lr"
    elif off_optimum and level == UNRELIABLE and not disagree and not too_noisy:
        text = ("the fit stopped away from its optimum (see the warning), so k̂ does not tell "
                "whether this family can represent the posterior")
    elif not converged and level == RELIABLE:
        level, text = CARE, f"the optimizer did not converge; {unconverged}"
    elif not converged:
        notes.append("the optimizer did not converge")
    tail = "".join(f"; {note}" for note in notes)
    return Verdict(level, f"{level} ({shown}): {text}{tail}")


def _caveat(level: str, text: str, notes: list, caveat: str, advice: str) -> tuple[str, str]:
    """(level, text) after a reason to doubt the summary: a `reliable` fit is `usable with
    care` for it (``caveat`` + ``advice``), a `usable with care` one gets it in ``notes``, an
    `unreliable` one nothing (its summary is not to be used anyway)."""
    if level == RELIABLE:
        return CARE, caveat + advice
    if level == CARE:
        notes.append(caveat)
    return level, text


def _dadvi_noise(element: str, mcse: float) -> str:
    return (f"DADVI's fixed draws leave the mean of {element} uncertain by {mcse:.2g} "
            f"posterior sds (its Monte Carlo standard error)")


def matches_bulk(khat: float, threshold: float, weights_ess: float | None,
                 n_nonfinite: int = 0) -> bool:
    """Whether k̂ is at or above its threshold (finite) while every log weight is finite and
    the smoothed weights' ESS is at least BULK_ESS of their draws: the guide matches the
    posterior where its draws go, and k̂ speaks of the tails beyond them."""
    return bool(weights_ess is not None and np.isfinite(khat) and khat >= threshold
                and n_nonfinite == 0 and weights_ess >= BULK_ESS)


def disagreement(names: list[str], plain: tuple[np.ndarray, np.ndarray],
                 weighted: tuple[np.ndarray, np.ndarray], ess: float, draws: int
                 ) -> tuple[str, float, float, bool] | None:
    """Where the importance-weighted mean and sd of every reported element (``weighted``,
    from the same draws as ``plain``, each a pair of [K] arrays) say the plain summary is
    off: beyond MEAN_TARGET posterior sds on a mean or SD_TARGET on an sd, plus WEIGHTS_SE
    standard errors of reweighting those draws by weights of effective sample size ``ess``
    (sqrt(1 / ess - 1 / draws) sds, the spread of a weighted mean of the draws about their
    plain mean when the weights are unrelated to them). Returns (element, mean gap in
    weighted sds, plain sd / weighted sd - 1, whether the mean is off) for the element
    farthest outside, the means first, or None when every element agrees."""
    (plain_mean, plain_sd), (mean, sd) = plain, weighted
    margin = WEIGHTS_SE * np.sqrt(max(1.0 / ess - 1.0 / draws, 0.0))
    with np.errstate(all="ignore"):
        mean_gap = (plain_mean - mean) / sd
        sd_gap = plain_sd / sd - 1.0
    usable = np.isfinite(mean_gap) & np.isfinite(sd_gap) & (sd > 0)
    for gaps, target, mean_off in ((mean_gap, MEAN_TARGET, True), (sd_gap, SD_TARGET, False)):
        excess = np.where(usable, np.abs(gaps) - (target + margin), -np.inf)
        if excess.size and excess.max() > 0:
            i = int(np.argmax(excess))
            return names[i], float(mean_gap[i]), float(sd_gap[i]), mean_off
    return None


def tails_disagreement(names: list[str], corrected: tuple, heavier: tuple
                       ) -> tuple[str, float, float, bool] | None:
    """Where a Gaussian fit's importance-corrected mean and sd of a reported element are off
    those of the same frame under heavier-tailed noise (infer/tails.py), each weighted from
    its own draws: ``corrected`` and ``heavier`` are (mean, sd, standard error of the mean,
    standard error of log sd), [K] arrays each (tails.weighted_moments). Both estimate the
    posterior; where the Gaussian's draws miss a tail, its weights cannot restore the mass
    there, and the heavier-tailed draws reach it. A gap counts when it is past issue 11's
    target (MEAN_TARGET of the heavier's sd on a mean, SD_TARGET on an sd) and more than
    WEIGHTS_SE standard errors of the difference of the two estimates from zero: past the
    target, and not their Monte Carlo error. Each estimate's standard error is its own
    element's (the delta method sees a heavy-tailed element's kurtosis, which a margin from
    the weights' ESS alone does not: noncentered eight schools' tau, whose sd estimates from
    4000 draws differed by 26-31% at 1.3-2.1 standard errors, both within 15% of the
    reference; docs/history/trust-log.md, "Twenty-eighth probe"). Returns (element, mean gap
    in the heavier's sds, corrected sd / heavier sd - 1, whether the mean is off) for the
    element farthest out in standard errors, the means first, or None."""
    (mean, sd, se_mean, se_log_sd), (mean_h, sd_h, se_mean_h, se_log_sd_h) = corrected, heavier
    with np.errstate(all="ignore"):
        mean_gap = (mean - mean_h) / sd_h
        mean_z = np.abs(mean - mean_h) / np.hypot(se_mean, se_mean_h)
        sd_gap = sd / sd_h - 1.0
        sd_z = np.abs(np.log(sd / sd_h)) / np.hypot(se_log_sd, se_log_sd_h)
    for gap, z, target, mean_off in ((mean_gap, mean_z, MEAN_TARGET, True),
                                     (sd_gap, sd_z, SD_TARGET, False)):
        off = np.isfinite(gap) & np.isfinite(z) & (np.abs(gap) > target) & (z > WEIGHTS_SE)
        if off.any():
            i = int(np.argmax(np.where(off, z, -np.inf)))
            return names[i], float(mean_gap[i]), float(sd_gap[i]), mean_off
    return None


def _khat_text(khat: float) -> str:
    if np.isneginf(khat):
        return "k̂ -inf, bounded weights"
    return f"k̂ {khat:.2f}"


def _hint(guide: str, available: tuple, richest: bool, method: str = "advi",
          batch_meanfield: bool = False) -> str:
    """'; try --guide X' naming the next (or the most flexible) family that exists; after a
    DADVI fit, '--method advi --guide flow' for the flow (DADVI fits the Gaussian families
    only, options.py); after a --batch fit that only mean field fits (``batch_meanfield``),
    '--guide flow without --batch'."""
    from ..guides import REGISTRY
    from ..guides.user import PREFIX
    guided = guide.startswith(PREFIX)   # guide statements: --guide draws the other latents
    guide = guide.removeprefix(PREFIX)
    # the families the hint may name, least flexible first (guides.Family.flexibility)
    ladder = sorted((f for f in REGISTRY.values() if f.suggested), key=lambda f: f.flexibility)
    above = [f.name for f in ladder if f.flexibility > REGISTRY[guide].flexibility
             and f.name in available] if guide in REGISTRY else []
    if above:
        family = above[-1] if richest else above[0]
        switch = "--method advi " if method == "dadvi" and not REGISTRY[family].gaussian \
            else ""
        rest = " for the latents without a guide statement" if guided else ""
        if batch_meanfield:
            rest += ", without --batch" if rest else " without --batch"
        return f"; try {switch}--guide {family}{rest}"
    if guided:
        return "; revise the guide statements, reparameterize the model, or check it with MCMC"
    return "; reparameterize the model, or check it with MCMC"
