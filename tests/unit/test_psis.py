"""Tests of ppl/infer/psis.py: k̂ and smoothed weights against ArviZ, known tail indices, bad
input."""
import numpy as np
import pytest
from scipy import special, stats

from ppl.infer.psis import gpd_quantile, khat_threshold, logsumexp, psis, tail_length

arviz = pytest.importorskip("arviz")


def _arviz(log_weights):
    smoothed, khat = arviz.psislw(np.array(log_weights, dtype=float), reff=1.0)
    return float(khat), np.asarray(smoothed)


@pytest.mark.parametrize("S", [30, 100, 1000, 4000])
@pytest.mark.parametrize("case", ["gauss_wide_target", "gauss_narrow_target", "student",
                                  "lognormal"])
def test_khat_and_weights_match_arviz(case, S, rng):
    z = rng.standard_normal(S)
    log_weights = {
        "gauss_wide_target": stats.norm.logpdf(z * 1.0, scale=2.0) - stats.norm.logpdf(z),
        "gauss_narrow_target": stats.norm.logpdf(z, scale=0.5) - stats.norm.logpdf(z),
        "student": stats.t.logpdf(3 * z, df=2) - stats.norm.logpdf(3 * z, scale=3),
        "lognormal": 2.0 * z + 7.0,
    }[case]
    result = psis(log_weights)
    khat, smoothed = _arviz(log_weights)
    assert result.khat == pytest.approx(khat, abs=1e-6)
    np.testing.assert_allclose(result.log_weights, smoothed, atol=1e-9)


@pytest.mark.parametrize("k", [0.2, 0.5, 0.8])
def test_khat_recovers_known_tail_index(k):
    # Weights drawn from a generalized Pareto distribution of shape k have tail index k. k̂ of
    # R replicates is averaged; its expectation is k shrunk by the prior,
    # (M k + 5) / (M + 10) for a tail of M draws. Tolerance: 4 standard errors of the average
    # (the replicates' sd / sqrt(R); z = 4, about 6e-5 false alarms), plus 0.01 for the
    # estimator's own small-sample bias (Zhang & Stephens 2009, table 2: under 0.01 at n = 200).
    S, R = 10_000, 20
    rng = np.random.default_rng(7)
    khats = np.array([psis(np.log(stats.genpareto.rvs(k, size=S, random_state=rng))).khat
                      for _ in range(R)])
    M = tail_length(S)
    expected = (M * k + 5) / (M + 10)
    assert abs(khats.mean() - expected) < 4 * khats.std(ddof=1) / np.sqrt(R) + 0.01


def test_khat_small_when_proposal_covers_target(rng):
    # q = N(0, 1), p = N(0, 0.5^2): weights are bounded, k̂ is well below 0.5.
    z = rng.standard_normal(1000)
    result = psis(stats.norm.logpdf(z, scale=0.5) - stats.norm.logpdf(z))
    assert result.khat < 0.5 <= result.threshold


def test_equal_weights_are_bounded_not_a_failed_fit():
    result = psis(np.full(1000, 3.0))
    assert result.khat == -np.inf
    np.testing.assert_allclose(np.exp(result.log_weights), 1e-3)


def test_weights_tied_only_by_rounding_are_not_bounded(rng):
    # a collapsed guide far out (mean field on kilpisjarvi after a step size of 10: sds of
    # 1e-13, log weights near -3e17): log q's chi-square spread of a few nats is below the
    # doubles' spacing there (64 nats), so every weight rounds to one value. That tie says
    # nothing about the tail; it must not read as bounded weights (-inf, "reliable").
    spread = rng.chisquare(3, 4000)
    collapsed = psis(-3e17 + spread)
    assert np.unique(-3e17 + spread).size == 1      # the premise: rounding ties them all
    assert collapsed.khat == np.inf
    # the same spread resolved is an ordinary finite tail, and exact ties of resolved weights
    # are still bounded
    assert np.isfinite(psis(-300.0 + spread).khat)
    assert psis(np.full(4000, -300.0)).khat == -np.inf


def test_weights_carried_by_a_few_draws_are_the_heaviest_tail_not_bounded(rng):
    # a diverged guide's log weights spread over thousands of nats (a BNN's flow, seed 2:
    # from -4.5e27 to -4e4): below the largest three, every weight underflows. The tail cannot
    # be fitted from three draws; k̂ is inf, as ArviZ gives, not the bounded case's -inf.
    log_weights = np.concatenate([[0.0, -1.0, -2.0], -1e3 - 1e6 * rng.random(3997)])
    result = psis(log_weights)
    assert result.khat == np.inf == _arviz(log_weights)[0]
    assert np.exp(result.log_weights).sum() == pytest.approx(1.0)


def test_threshold_follows_sample_size():
    assert khat_threshold(100) == pytest.approx(0.5)
    assert khat_threshold(1000) == pytest.approx(1 - 1 / 3)
    assert khat_threshold(10 ** 6) == 0.7
    assert khat_threshold(5) == -np.inf
    # the boundary: at S = 10 the formula's 1 - 1/log10(10) = 0 would pass any k̂ < 0; the
    # docstring's S <= 10 gives -inf (nothing passes), and S = 11 is the first usable bound
    assert khat_threshold(10) == -np.inf
    assert khat_threshold(11) == pytest.approx(1 - 1 / np.log10(11))


def test_nonfinite_weights_are_counted_not_propagated(rng):
    log_weights = rng.standard_normal(1000)
    log_weights[:7] = [np.nan, np.inf, -np.inf, np.nan, -np.inf, np.inf, np.nan]
    result = psis(log_weights)
    assert result.n_nonfinite == 7
    assert np.isfinite(result.khat)
    assert np.all(result.log_weights[:7] == -np.inf)
    assert np.exp(result.log_weights).sum() == pytest.approx(1.0)
    # the finite weights are smoothed as if the others were not there
    assert result.khat == pytest.approx(psis(log_weights[7:]).khat, abs=1e-12)
    assert result.threshold == khat_threshold(993)


@pytest.mark.parametrize("log_weights", [np.full(50, np.nan), np.zeros(0), np.ones(3)])
def test_degenerate_input_gives_inf_khat(log_weights):
    result = psis(log_weights)
    assert result.khat == np.inf
    assert not np.any(np.isnan(result.log_weights))


def test_huge_log_weights_do_not_overflow():
    # exp(800) overflows a double: the weights must be shifted before exponentiating
    log_weights = 800.0 + 50.0 * np.random.default_rng(3).standard_normal(500)
    result = psis(log_weights)
    assert np.isfinite(result.khat)
    assert np.all(np.isfinite(result.log_weights))


def test_gpd_quantile_matches_scipy():
    p = np.linspace(0.01, 0.99, 7)
    for k in (-0.3, 0.0, 0.4, 1.2):
        np.testing.assert_allclose(gpd_quantile(p, k, 2.5), stats.genpareto.ppf(p, k, scale=2.5))
    # near 0 the exact formula, not the exponential limit, which is off by a relative
    # k log(1 / (1 - p)) / 2: 1.2e-3 at k = 5e-4 and p = 0.99 (a mutant took the limit for
    # |k| < 1e-3 and passed; found by a mutation pass, 2026-12-04)
    for k in (5e-4, -5e-4, 1e-9):
        np.testing.assert_allclose(gpd_quantile(p, k, 2.5), stats.genpareto.ppf(p, k, scale=2.5),
                                   rtol=1e-12)


def test_ess_of_uniform_weights_is_sample_size():
    assert psis(np.zeros(400) + np.linspace(0, 1e-12, 400)).ess == pytest.approx(400, rel=1e-6)


@pytest.mark.parametrize("case", ["normal", "wide", "ties", "minus_inf", "all_minus_inf",
                                  "plus_inf", "nan", "huge", "one"])
def test_logsumexp_equals_scipys_bit_for_bit(case, rng):
    # psis.py computes logsumexp in numpy so that a fit does not import scipy.special (0.1-0.2 s)
    a = {"normal": rng.standard_normal(4000), "wide": 300 * rng.standard_normal(4000) - 700,
         "ties": np.repeat(rng.standard_normal(50), 3),
         "minus_inf": np.where(rng.random(500) < 0.3, -np.inf, rng.standard_normal(500)),
         "all_minus_inf": np.full(7, -np.inf), "plus_inf": np.array([np.inf, 1.0, 2.0]),
         "nan": np.array([np.nan, 1.0]), "huge": np.array([1e308, 1e308, 0.0]),
         "one": np.array([-3.5])}[case]
    ours, scipys = logsumexp(a), float(special.logsumexp(a))
    assert ours == scipys or (np.isnan(ours) and np.isnan(scipys))


def _two_scale_log_weights(S, rng):
    # As the flow's weights on kidiq-kidscore_momiq (docs/history/trust-log.md, "k̂ at 4000 draws
    # against 16,000-32,000"): a spike of log weights 0.01 wide, and 2% of draws above it by an
    # exponential of scale 0.1 nats, whose weights exp(E) have a Pareto tail of index k = 0.1.
    log_weights = 0.01 * rng.standard_normal(S)
    wide = rng.random(S) < 0.02
    log_weights[wide] += rng.exponential(0.1, wide.sum())
    return log_weights


def test_two_scale_tail_khat_falls_to_the_true_tail_index_with_more_draws():
    # While the tail PSIS fits (ceil(3 sqrt(S)) draws: 4.75% of 4000, 1.19% of 64000) takes in
    # the spike's top as well as the 2% component, k̂ is that mixture's shape (about 1.3 at
    # 4000; 1.11-1.67 on 10 replicates); once it lies within the component, k̂ is its tail
    # index 0.1, shrunk by the prior: (M k + 5) / (M + 10). Matched against ArviZ at both
    # sizes (the other tests stop at 4000). Tolerances as in
    # test_khat_recovers_known_tail_index: 4 standard errors of the replicates' mean + 0.01.
    rng, R = np.random.default_rng(11), 10
    for S, expected in ((4000, None), (64_000, (759 * 0.1 + 5) / (759 + 10))):
        sets = [_two_scale_log_weights(S, rng) for _ in range(R)]
        khats = np.array([psis(lw).khat for lw in sets])
        assert khats[0] == pytest.approx(_arviz(sets[0])[0], abs=1e-6)
        bound = 4 * khats.std(ddof=1) / np.sqrt(R) + 0.01
        if expected is None:
            assert khats.mean() - bound > 0.7      # pre-asymptotic: judged unreliable
        else:
            assert tail_length(S) == 759 and abs(khats.mean() - expected) < bound


def test_the_pareto_fit_on_many_draws_warns_of_no_overflow():
    # the profile's weights overflow harmlessly (to a weight of 0) on a long tail: with
    # 400,000 draws that reached the user as 'overflow encountered in exp'
    import warnings
    rng = np.random.default_rng(0)
    log_weights = rng.standard_t(3, size=400_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psis(log_weights)
