"""Accuracy on the easy posteriordb posteriors, against long NUTS reference runs.

For every posterior whose model.md says easy, a fit must have a largest standardized mean error
|mean - ref mean| / ref sd of at most 0.1 and every sd within 15% of the best mean-field sd
(ref sd / gaussian_meanfield_sd_ratio). Moderate and hard posteriors are measured by
benchmarks/accuracy.py (docs/accuracy.md), not asserted.

Monte Carlo budget of the thresholds: the fit's summary uses 4000 draws of q, so its mean has
standard error 0.016 sd and its sd 0.011 sd (sd / sqrt(2n)) relative; the reference mean is good
to 0.01 sd. 0.1 and 15% leave room for the optimizer's jitter, measured across seeds 0-4 with
`python benchmarks/accuracy.py --only <name> --seeds 5` (see docs/accuracy.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import accuracy  # noqa: E402
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402
from ppl.infer.verdict import NOISY_CORRECTION  # noqa: E402

EASY = [name for name in pdb.names() if pdb.difficulty(name) == "easy"]


def _assert_meets_the_targets(fit, name):
    """Issue 11's targets on the fit's summary against posteriordb's reference: every mean
    within 0.1 reference sd, every sd within 15%."""
    figures = accuracy.score(fit.summary().to_dict(), pdb.load_reference(name), name)
    assert figures["mean_error"].max() <= 0.1, figures["mean_error"]
    assert np.all(np.abs(figures["sd_vs_reference"]) <= 0.15), figures["sd_vs_reference"]


def test_there_are_easy_posteriors():
    assert len(EASY) >= 3, EASY


@pytest.mark.slow
@pytest.mark.parametrize("name", EASY)
def test_easy_posterior_matches_reference(name):
    # the mean-field engine itself, against the best a mean-field Gaussian can do: no auto
    # climb to a richer family, no importance correction (docs/trust.md measures those)
    score, figures = accuracy.fit_posterior(name, seed=0, guide="meanfield", correct="none")
    assert score.max_mean_error <= 0.1, figures["mean_error"]
    assert np.all(np.abs(figures["sd_vs_meanfield"]) <= 0.15), figures["sd_vs_meanfield"]


def test_reference_element_missing_from_model_is_a_clear_error():
    reference = pdb.load_reference("sblri-blr")
    summary = {name: {"mean": 0.0, "sd": 1.0} for name in reference if name != "sigma"}
    with pytest.raises(ValueError, match="sblri-blr: the model reports no sigma"):
        accuracy.score(summary, reference, "sblri-blr")


def test_malformed_reference_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "sblri-blr"
    folder.mkdir()
    (folder / "reference.json").write_text('{"parameters": {"beta[1]": {"mean": 1}}}')
    monkeypatch.setattr(pdb, "POSTERIORDB", tmp_path)
    with pytest.raises(ValueError, match="malformed reference"):
        pdb.load_reference("sblri-blr")


@pytest.mark.slow
def test_auto_meets_the_targets_on_gp_pois_regr():
    # Issue 11's targets under --guide auto, seed 0, with 16,000 draws. This posterior's
    # corrected summaries come from thin weights (an importance ESS of 8-25% of the draws,
    # docs/history/trust-log.md, "Twelfth attempt"), whose Monte Carlo error at the default 4000
    # draws is near the target itself: the scaled fit of seed 0 was 0.108 sd off from 16,000 summary
    # draws, 0.094 from 22,000 and 0.017 from 64,000. With 16,000 draws k̂ and the summary are
    # four times as precise. On this stream the scaled family cannot be used after its further
    # rounds, and is moved to its importance-weighted moments (auto.moment_matched; the flows
    # followed before the move): the moved fit is chosen (k̂ 0.66 since mean field's control
    # variate, 2026-12-06; 0.60 before, with the summary's importance ESS about 2,060):
    # measured 0.027 sd on means and 6.3% on sds (0.048 and 6.8% before), that is 3.3 and 5
    # Monte Carlo errors (1 / sqrt(2060) = 0.022 sd; 1 / sqrt(2 * 2060) = 1.6%) inside the
    # targets.
    name = "gp_pois_regr-gp_pois_regr"
    with pytest.warns(UserWarning, match="names the model does not declare: y"):
        fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=0, draws=16000)
    assert [t.family for t in fit.auto.tried] == ["meanfield", "fullrank", "scaled"]
    chosen = fit.auto.tried[fit.auto.chosen]
    assert chosen.family == "scaled" and chosen.moved and fit.corrected
    _assert_meets_the_targets(fit, name)


@pytest.mark.slow
def test_mean_field_on_kilpisjarvi_seed_9_converges_to_the_reference_means():
    # Seed 9 of the hard kilpisjarvi (intercept and slope correlated -0.99999): whitened after
    # one window at an ELBO near -8e5, the fit crept in those coordinates for all 10,000 steps
    # and stopped at the cap with means 1.97 sds off. The whitening's rescue
    # (schedule.Whitening.rescue_due) refreshes it at 5,100 steps and searches the step size
    # again (with the first search's 1.0 kept, it bounced to the cap 166 sds off on numpy
    # 2.4.6, docs/history/performance-log.md: a knife edge whose rounding differs between numpy
    # builds); it then converges as seeds
    # 0-8 do (max mean error 0.018-0.020 sds on those, `benchmarks/accuracy.py --seeds 10
    # --only kilpisjarvi_mod-kilpisjarvi --guide meanfield`). 0.1 sds is the easy posteriors'
    # bound above: 6 Monte Carlo errors of a 4000-draw mean (0.016 sds).
    score, figures = accuracy.fit_posterior("kilpisjarvi_mod-kilpisjarvi", seed=9,
                                            guide="meanfield", correct="none")
    assert score.converged, score
    assert score.max_mean_error <= 0.1, figures["mean_error"]


# Auto climbs past a corrected mean field whose weights are too uneven, to full rank; issue
# 11's targets (0.1 sd, 15%) are 6 Monte Carlo errors of a mean (0.016 sd) and 13 of an sd
# (1 / sqrt(2 * 4000) = 1.1%) of a summary with an effective sample size of 4000:
# - kidiq-kidscore_interaction, seed 17: k̂ 0.64 (under the threshold, 0.7), but an ESS of 192
#   of 4,000 draws, and the corrected sds 90% off; auto used to stop at such a fit (seed 9
#   before the Newton steps at the first whitening, newton.py, which moved its k̂ to 0.75). A
#   corrected summary needs an ESS of 400 (verdict.MIN_SUMMARY_ESS);
# - earnings-log10earn_height, seed 18: k̂ 0.61 and an ESS of 411 of 4000 draws, under
#   verdict.MIN_WEIGHTS_ESS (500): the summary, weighted from 32,000 draws at an ESS of 615,
#   passed MIN_SUMMARY_ESS with sds 91% off (docs/history/trust-log.md, "Seventeenth probe").
UNEVEN_MEAN_FIELD = [("kidiq-kidscore_interaction", 17), ("earnings-log10earn_height", 18)]


@pytest.mark.slow
@pytest.mark.parametrize("name, seed", UNEVEN_MEAN_FIELD)
def test_auto_climbs_past_a_corrected_mean_field_whose_weights_are_too_uneven(name, seed):
    with pytest.warns(UserWarning, match="names the model does not declare"):
        fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=seed)
    assert fit.auto.tried[0].family == "meanfield" and fit.auto.tried[0].khat < 0.7
    assert fit.auto.tried[fit.auto.chosen].family == "fullrank"
    _assert_meets_the_targets(fit, name)


@pytest.mark.slow
def test_a_corrected_mean_with_a_large_monte_carlo_error_is_usable_with_care():
    # Noncentered eight schools, seed 18: mean field is `reliable` by k̂ from 4,000 draws (0.43;
    # 0.45 before mean field's control variate, 0.49 before the first window's step size
    # without a search), but its weights are heavier-tailed (k̂ 0.73 from 32,000): at the
    # summary's 32,000 draws one weight dominates, tau's corrected mean has a Monte Carlo
    # standard error of 0.061 sd (0.060, 0.065) and its sd is
    # off the reference. The verdict says so (verdict.NOISY_CORRECTION),
    # and its advice works: from 16,000 draws auto climbs to full rank, within the targets.
    # Auto itself checks such a mean field with full rank (auto._noisy), within the targets.
    name = "eight_schools-eight_schools_noncentered"
    model, data = ppl.load(pdb.model_path(name)), pdb.load_data(name)
    fit = model.fit(data, seed=18, guide="meanfield")
    assert fit.khat < 0.5
    element, mcse = fit._summary_mcse()[:2]
    assert element == "tau" and mcse > 0.05
    assert fit.verdict().line.startswith(
        f"usable with care (k̂ {fit.khat:.2f}): the corrected mean of tau is uncertain by "
        f"{mcse:.3f}")
    assert "fit again with --draws 16000, or a richer --guide; " in fit.verdict().line
    # and k̂ of those 32,000 draws, as a note (verdict.judge's summary_khat)
    summary_khat, _, draws = fit._summary_khat()
    assert draws == 32000 and summary_khat >= 0.7
    assert fit.verdict().line.endswith(
        f"; k̂ of the corrected summary's own 32000 draws is {summary_khat:.2f}, not below "
        "0.70, so its sds and tails may be off too")
    checked = model.fit(data, seed=18)
    assert checked.auto.tried[0].noisy and checked.auto.tried[0].khat == fit.khat
    assert checked.auto.tried[checked.auto.chosen].family == "fullrank"
    assert checked._summary_mcse()[1] < NOISY_CORRECTION
    _assert_meets_the_targets(checked, name)
    again = model.fit(data, seed=18, draws=16000)
    assert again.auto.tried[again.auto.chosen].family == "fullrank"
    assert again._summary_mcse()[1] < 0.02
    _assert_meets_the_targets(again, name)


@pytest.mark.slow
def test_a_heavy_tailed_corrected_summary_draws_for_an_effective_sample_size_of_4000():
    # Noncentered eight schools, seed 0 (5 until mean field's control variate, 2026-12-06,
    # whose figures these are): mean field is unreliable (k̂ 0.76) and auto stops at
    # full rank, usable with care (k̂ 0.59), importance-corrected. Its weights are heavy-tailed,
    # so their ESS overstates the summary's precision: drawn for an ESS of 2000 (4,701 draws,
    # ESS 2,133) the corrected sd of mu was 15.02% off the reference, past issue 11's 15%;
    # drawn for posterior.SUMMARY_ESS = 4000 (9,401 draws, ESS 2,541: heavy tails grow the
    # ESS less than in proportion), 8.0%. With weights of finite variance an ESS of 4000 is a
    # Monte Carlo error of 0.016 sd on a mean and 1.1% on an sd (docs/history/trust-log.md, "The
    # summary's ESS doubled"). Since posterior.MEAN_MCSE the draws also grow while a mean's own
    # standard error is above 0.016 sd: here to the cap, 32,000 (ESS 9,377), mu's sd 4.5% off.
    name = "eight_schools-eight_schools_noncentered"
    fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=0)
    assert fit.auto.tried[fit.auto.chosen].family == "fullrank" and fit.corrected
    first = fit.psis
    by_ess = ppl.posterior.psis_draws_for(first.ess, first.log_weights.size)
    assert by_ess > 2 * first.log_weights.size
    assert fit._summary_weights().log_weights.size >= by_ess
    _assert_meets_the_targets(fit, name)


@pytest.mark.slow
def test_auto_stops_at_full_rank_whose_weights_are_nearly_equal():
    # earnings-log10earn_height, seed 1: height is not centred, intercept and slope correlate
    # at -0.998, and mean field is unreliable (k̂ 0.79). Full rank's k̂ is 0.74, over the
    # threshold, but its weights have an ESS of 99.7% of their 4000 draws: it matches the
    # posterior where its draws go, and k̂ reads the shape of their tiny spread
    # (verdict.BULK_ESS). Auto used to fit the flow after it (k̂ 1.35 on weights with an ESS of
    # 99.97%) and chose full rank by the ELBO all the same, at 4.5 times mean field's CPU
    # (docs/history/trust-log.md, "Sixteenth probe"). Issue 11's targets (0.1 sd, 15%) on the
    # guide's own summary, uncorrected: 1000 draws give a Monte Carlo error of 0.032 sd on a
    # mean and 2.2% on an sd; measured 0.025 sd and 0.2%.
    name = "earnings-log10earn_height"
    with pytest.warns(UserWarning, match="names the model does not declare"):
        fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=1)
    assert [t.family for t in fit.auto.tried] == ["meanfield", "fullrank"]
    assert fit.khat >= fit.psis.threshold and not fit.corrected
    assert fit.verdict().level == "usable with care"
    _assert_meets_the_targets(fit, name)


@pytest.mark.slow
def test_auto_keeps_a_full_rank_that_stayed_level_from_its_warm_start():
    # earnings-logearn_interaction_z, seed 13 (until mean field's control variate,
    # 2026-12-06): mean field is unreliable (k̂ 0.85, sds up to 52% off). Full rank,
    # warm-started next to its optimum, stayed level at -1589.1 for 800 steps with its last
    # window 0.1 nats below its first steps, which advi.fell called a divergence, so auto
    # returned mean field. A change within the convergence rule's tol (1.6 nats here) is
    # level: full rank is reliable (k̂ 0.45). Since the control variate no seed of 0-40 ends
    # its full rank below its first steps (it ends 0.25-2.2 nats above them), so this posterior
    # no longer tests that edge: test_advi.py's
    # test_a_fit_warm_started_at_its_optimum_that_stays_level_did_not_fall does, alone. This
    # stays as auto's result here, seed 0: mean field unreliable, full rank reliable. Issue
    # 11's targets (0.1 sd, 15%) on its 1000-draw summary, Monte Carlo error 0.032 sd and
    # 2.2% (see above).
    name = "earnings-logearn_interaction_z"
    fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=0)
    assert [t.family for t in fit.auto.tried] == ["meanfield", "fullrank"]
    assert fit.auto.tried[0].level == "unreliable" and fit.verdict().level == "reliable"
    _assert_meets_the_targets(fit, name)


@pytest.mark.slow
def test_auto_stops_at_full_rank_under_student_t_noise_on_mesquite_logvolume():
    # Seed 1 (16 until mean field's control variate, 2026-12-06, whose figures these are):
    # full rank at k̂ 1.03 on weights with an ESS of 87% of their draws (the posterior's
    # tails are heavier than the Gaussian's in some direction), after which auto fitted two
    # flows, 5.1x mean field's CPU (docs/trust.md). The same frame under Student-t noise
    # (auto.heavier_tailed) has k̂ about -0.5 on an ESS of 93%, and is kept: the corrected summary
    # of about 3,700 effective draws has a Monte Carlo error of 1 / sqrt(3700) = 0.016 sd on a
    # mean and 1 / sqrt(2 * 3700) = 1.2% on an sd; measured 0.013 sd and 1.5%
    # (benchmarks/t_proposal.py), six and ten such errors inside the targets.
    name = "mesquite-logmesquite_logvolume"
    fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), seed=1)
    assert [(t.family, t.student_t) for t in fit.auto.tried] == [("meanfield", False),
                                                                  ("fullrank", True)]
    assert fit.result.guide.name == "studentt" and fit.corrected and fit.khat < 0.5
    _assert_meets_the_targets(fit, name)
