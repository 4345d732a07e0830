"""The family ladder of ``--guide auto`` as a policy: which family comes next and which earlier
rung it starts from, given what each rung so far came to, and which rung the climb returns
(:func:`stands`, :func:`by_elbo`). Pure and frozen, as schedule.py's policies are for a fit's
steps; auto.py fits, assesses and records the rungs it names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..guides import REGISTRY

# auto's rungs, least flexible first: each is the first of its families whose record admits
# the model's size (guides.Family.auto_limit); a rung none admits is left out (:func:`ladder`)
RUNGS = (("meanfield",), ("fullrank", "lowrank"), ("scaled",), ("flow",))
# What the climb saw of a rung, as the ladder's policy reads it (Ladder.next). The first three
# are also auto.Tried levels; the others are an assessed fit's (auto._outcome)
SKIPPED = "skipped"
FAILED = "failed"       # the rung raised (PplError: diverged to non-finite values, ...)
DIVERGED = "diverged"   # the rung's ELBO ended below its first steps (advi.FELL):
                        # neither assessed nor chosen, as a failed rung
USABLE = "usable"                   # auto._usable, on weights with an ESS of RETRY_ESS or more
RELIABLE_THIN = "reliable, thin"    # reliable on weights with an ESS below it (auto._thin)
CARE_THIN = "care, thin"            # usable with care on such weights; or a mean field,
                                    # usable, whose corrected means are noisy (auto._noisy)
UNUSABLE = "unusable"
ABOVE = "unusable, above"           # unusable, its ELBO above the fitted Gaussian rung's
                                    # by more than a tie (auto._beats)
INTERRUPTED = "interrupted"         # Ctrl-C inside the rung's fit
LAST_RUNG = "last rung"             # Ladder.next's answer for the larger, longer flow (auto.retry)
# When no fit can be used, the choice among them (:func:`by_elbo`): the highest ELBO, estimated
# from the draws k̂ came from (the mean of their log weights, the objective every family
# maximizes, with its standard error: auto._elbo); fits within ELBO_TIE standard errors of the
# difference from the highest, or within ELBO_TIE_NATS, are equals, and among equals the
# smallest k̂, then the earlier family. ELBO_TIE_NATS is the KL of one element's sd 15% off
# (issue 11's tolerance): 0.5 (r^2 - 1 - log r^2) = 0.021 at r = 1.15; full rank's and the
# flow's differed by 0.002-0.005 nats on kidscore_momiq, at standard errors of 0.001
# (docs/history/trust-log.md). Not the smallest k̂ alone: from 4000 draws it is too noisy to
# order fits that are all unusable (kidscore_momiq seed 1: mean field 0.76, full rank 0.81, the
# flow 1.54 chose mean field, sds 85% off; full rank's k̂ is 0.38-0.54 on eight other draw sets
# and its ELBO 1.8 nats above mean field's, docs/history/trust-log.md).
ELBO_TIE = 2.0
ELBO_TIE_NATS = 0.02
# An ELBO estimate whose standard error is above this many nats is not known to be near the
# top either, as an infinite one is not (by_elbo): from k̂'s 4000 draws it is an sd of the log
# weights of 63 nats, whose mean and sd outliers set. After one step (--iter 1) on eight
# schools the flow's -5.5e7 +- 5.1e7 tied with scaled's -36.1 +- 0.03 and its k̂ chose it.
# The rungs' standard errors of usable fits are hundredths of a nat (docs/trust.md).
ELBO_SE_KNOWN = 1.0


def ladder(D: int) -> tuple[str, ...]:
    """The families auto tries for D unconstrained dimensions, least flexible first (scaled
    is fitted only where full rank was skipped: :meth:`Ladder.next`)."""
    admitted = ([name for name in rung
                 if REGISTRY[name].auto_limit is None or D <= REGISTRY[name].auto_limit]
                for rung in RUNGS)
    return tuple(names[0] for names in admitted if names)


@dataclass(frozen=True)
class Ladder:
    """The climb's policy: which family auto fits next and which earlier rung it starts from,
    given what the rungs so far came to. Pure, as schedule.py's policies are for a fit's steps;
    auto._climb and auto.fit_auto fit, assess and record. ``families``: :func:`ladder`'s for
    the model's size."""
    families: tuple[str, ...]

    def next(self, history: tuple) -> str | None:
        """The family to fit after ``history``, the (family, outcome) of each rung so far in
        order (outcomes: SKIPPED, FAILED, DIVERGED, USABLE, ...), LAST_RUNG (auto.retry), or
        None: the climb stops.

        A rung that can be used stops the climb, and so does Ctrl-C (the user asked for the fit
        so far, not for richer families), a divergence, or a rung that raised (but scaled: the
        flow starts from the Gaussian, not from scaled's fit), except that mean field usable
        with care on weights that carry little (CARE_THIN) is checked by the Gaussian rung: its
        verdict says "try --guide fullrank", and a corrected summary cannot restore a tail the
        guide does not reach (models/robust_regression.ppl seed 1, mean field at k̂ 0.56 and an
        ESS of 32%, had nu's sd 30% short against NUTS, its full rank 12%; docs/trust.md, "A
        mean field usable with care is checked"). Where the Gaussian rung is skipped (the
        Gaussian it would start from has weights that carry less still), the rung after it
        checks mean field instead: scaled, or the flow where there is no scaled (a six-group
        funnel, tau ~ HalfCauchy(1): mean field stood at 16-19% short on tau's sd, scaled is
        within 6%). Not a reliable mean field: where it is, auto costs at most 1.1x it (issue
        11), unless its corrected means are too noisy to be reliable (auto._noisy, also
        CARE_THIN). The check is that one rung: what it comes to stands, or mean field if it
        cannot be used; but a flow after a skipped full rank goes on to the last rung as
        :meth:`_last_rung` says, whatever came before it. Scaled is fitted only where full
        rank was skipped."""
        if not history:
            return self.families[0]
        family, outcome = history[-1]
        if family == "flow":
            return LAST_RUNG if self._last_rung(history) else None
        # CARE_THIN stops the climb, but on mean field: its check is the rung after it (or
        # where that was skipped, the one after that)
        if outcome in (USABLE, RELIABLE_THIN, INTERRUPTED, DIVERGED) or \
                outcome == FAILED and family != "scaled" or \
                outcome == CARE_THIN and len(history) > 1 or \
                history[0][1] == CARE_THIN and outcome in (UNUSABLE, ABOVE):
            return None
        skipped = any(seen == SKIPPED for _, seen in history)
        later = self.families[self.families.index(family) + 1:]
        return next((name for name in later if name != "scaled" or skipped), None)

    @staticmethod
    def _last_rung(history: tuple) -> bool:
        """Whether the flow, the last rung of ``history``, goes on to the last rung: after a
        skipped full rank, unless it is usable on weights that carry enough (USABLE) or Ctrl-C
        ended it; after a fitted Gaussian rung, when it cannot be used and beat that rung's
        ELBO by more than a tie (ABOVE, ELBO_TIE): the posterior is not near Gaussian, and a
        flow that moved towards it had too few layers (a normal model's mean and scale from 5
        points: full rank's sds 35-40% short, k̂ 0.92; the flow's k̂ 1.58; flow:4's 0.55,
        corrected to within 3% of quadrature)."""
        outcome = history[-1][1]
        if any(seen == SKIPPED for _, seen in history):
            return outcome not in (USABLE, INTERRUPTED)
        return outcome == ABOVE

    def probes(self, family: str) -> bool:
        """Whether to compute the Gaussian ``family``'s fit would start from and its importance
        weights first (auto.fullrank_start, auto.SKIP_ESS): full rank, where the flow may start
        from that Gaussian instead."""
        return family == "fullrank" and "flow" in self.families

    def start_from(self, family: str, history: tuple) -> str | None:
        """The earlier rung ``family`` is warm-started from: scaled from mean field (its layer
        orders the model's own coordinates), the others from the last rung but scaled (its fit,
        or for a skipped full rank the Gaussian it would have started from); None first."""
        if family == "scaled":
            return self.families[0]
        earlier = [name for name, _ in history if name != "scaled"]
        return earlier[-1] if earlier else None


def stands(usable: tuple[bool, ...], interrupted: bool) -> int | None:
    """Which assessed rung the climb returns, by its place among them in the order fitted
    (``usable``: whether each can be used, auto._usable), or None: :func:`by_elbo` chooses.

    The last that can be used: the climb stops at a usable rung, and where it went on past one
    (mean field usable with care, checked by the Gaussian rung; a flow on thin weights, by the
    last rung) and what followed cannot be used, that one stands. When none can be used, or
    Ctrl-C ended the climb (the fit that was stopped may be worse than the one before it), the
    ELBO chooses, unless there is one rung only."""
    if interrupted or not any(usable):
        return 0 if len(usable) == 1 else None
    return max(i for i, can in enumerate(usable) if can)


def by_elbo(elbos: list[tuple[float, float]], khats: list[float]) -> int:
    """The place of the rung with the highest ELBO (each one's (estimate, standard error), -inf
    for a fit with a non-finite log weight), among those within a tie of it (:func:`tie`) the
    smallest k̂, then the earlier rung (see ELBO_TIE). An estimate whose standard error is not
    finite (log weights beyond 1e154: their squares overflow), or above ELBO_SE_KNOWN, is not
    known to be near the top, so it is no equal: with an infinite tie an ELBO of -1e200 tied
    with 0 and its smaller k̂ won."""
    top = max(range(len(elbos)), key=lambda i: elbos[i][0])
    value, se = elbos[top]
    equals = [i for i, (v, s) in enumerate(elbos)
              if i == top or (s <= ELBO_SE_KNOWN and v >= value - tie(s, se))]
    return min(equals, key=lambda i: (khats[i], i))


def tie(se_a: float, se_b: float) -> float:
    """How close two ELBOs with these standard errors are to count as equal (ELBO_TIE)."""
    return max(ELBO_TIE * np.hypot(se_a, se_b), ELBO_TIE_NATS)
