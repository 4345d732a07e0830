"""The trust additions of ppl/posterior.py: log weights, k̂ with non-finite weights, weighted
summaries, corrected draws, fit.json's khat and verdict."""
import json

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.stats

import ppl
from ppl.guides import MEAN_FIELD, family
from ppl.infer.advi import AdviResult
from ppl.infer.optim import score_chunk
from ppl.options import FitOptions
from ppl.infer.psis import psis
from ppl.infer.tails import weighted_moments
from ppl.posterior import (MEAN_MCSE, PSIS_GROWTH, SUMMARY_ESS, Fit, psis_draws_for,
                           psis_draws_for_means)
from ppl.summary import QUANTILES, _earlier_copies, _sort_rows, _stats, weighted_stats
from ppl.savedfit import save_fit


class Stub:
    """A 'compiled model' N(0, 1) in D coordinates whose log density is NaN where zeta_0 > 2."""

    def __init__(self, D):
        self.dim = D

    def log_joint(self, zeta):
        value = -0.5 * anp.sum(zeta * zeta, axis=1)
        return anp.where(zeta[:, 0] > 2.0, np.nan, value)

    def constrained(self, zeta):
        return {"z": np.asarray(zeta)}


def _fit(D=2, **options):
    theta = np.zeros(2 * D)            # the guide is exactly N(0, 1): weights are constant
    result = AdviResult(MEAN_FIELD, theta, tuple(f"z[{i}]" for i in range(D)), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    return Fit(None, Stub(D), result, FitOptions(**options), {})


def test_log_weights_are_log_p_minus_log_q_at_the_guide_draws():
    fit = _fit()
    zeta = fit._zeta(4000)
    expected = Stub(2).log_joint(zeta) - MEAN_FIELD.log_q(fit.result.theta, zeta)
    np.testing.assert_array_equal(fit.log_weights(), expected)


def test_a_flows_log_weights_take_log_q_from_the_forward_pass():
    # the flow's log q at its own draws comes from the forward pass (no inverse); it equals
    # the exact inverse's log q to rounding, and a corrected summary's draws and weights pair
    flow = family("flow", 3)
    rng = np.random.default_rng(4)
    theta = flow.init(3, 1.0) + 0.2 * rng.standard_normal(flow.init(3, 1.0).shape)
    result = AdviResult(flow, theta, ("a", "b", "c"), np.zeros(1), True, "converged", 1, 0.0,
                        0.1, 0.0)
    fit = Fit(None, Stub(3), result, FitOptions(), {})
    zeta = fit._zeta(4000)
    np.testing.assert_array_equal(flow.draw_and_log_q(theta, fit._eps(4000))[0], zeta)
    exact = Stub(3).log_joint(zeta) - flow.log_q(theta, zeta)
    finite = np.isfinite(exact)
    np.testing.assert_allclose(fit.log_weights()[finite], exact[finite], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.isfinite(fit.log_weights()), finite)


def test_nonfinite_weights_are_counted_and_reported_not_nan():
    fit = _fit()
    # P(z_0 > 2) = 0.0228: about 91 of 4000 draws, +-4 sds of a binomial count (38)
    count = fit.psis.n_nonfinite
    assert abs(count - 4000 * 0.02275) < 4 * np.sqrt(4000 * 0.02275)
    assert not np.isnan(fit.khat)
    assert f"{count} of 4000 draws had a non-finite log density" in fit.verdict().line


def test_weighted_stats_at_equal_weights_are_the_plain_ones(rng):
    flat = rng.standard_normal((500, 3))
    mean, sd, quantiles = weighted_stats(flat, np.full(500, 1 / 500))
    np.testing.assert_allclose(mean, flat.mean(axis=0))
    np.testing.assert_allclose(sd, flat.std(axis=0, ddof=1))
    # Hazen's quantiles (positions (i - 1/2) / n) are numpy's 'hazen' method
    np.testing.assert_allclose(quantiles, np.quantile(flat, QUANTILES, axis=0, method="hazen"))


def test_weighted_stats_reweight_to_the_target(rng):
    # draws from N(0, 1) weighted by N(1, 1) / N(0, 1) = exp(x - 1/2) estimate N(1, 1)'s moments.
    # A self-normalized estimate of E_p[f] has variance E_q[w^2 (f - E_p f)^2] / n
    # = e E_{N(2, 1)}[(f - E_p f)^2] / n (w = exp(x - 1/2)), not var / ESS (ESS = n / e, which
    # gives 0.0037 on the mean): with n = 200000 the mean's se is sqrt(2 e / n) = 0.0052 and the
    # sd's sqrt(7 e / 4n) = 0.0049 (delta method, f = (x - 1)^2 / 2); a quantile's is
    # sqrt(e E[(1{x <= q} - a)^2] / n) / phi(q - 1): 0.0028, 0.0046, 0.0174 at 5%, 50%, 95%
    # (simulated: 0.0027, 0.0046, 0.0162). z = 4.
    x = rng.standard_normal((200_000, 1))
    w = np.exp(x[:, 0])
    mean, sd, quantiles = weighted_stats(x, w / w.sum())
    assert abs(mean[0] - 1.0) < 4 * 0.0052 and abs(sd[0] - 1.0) < 4 * 0.0049
    np.testing.assert_array_less(np.abs(quantiles[:, 0] - 1.0 - scipy.stats.norm.ppf(QUANTILES)),
                                 4 * np.array([0.0028, 0.0046, 0.0174]))


def test_corrected_fit_resamples_its_draws_and_says_so():
    text = "data y: real[3]\nsample m ~ Normal(0, 1)\nobserve y ~ Normal(m, 1)\n"
    model = ppl.compile(text)
    fit = model.fit({"y": [0.5, 1.0, 1.5]}, guide="meanfield")
    plain = model.fit({"y": [0.5, 1.0, 1.5]}, guide="meanfield", correct="none")
    assert fit.corrected and not plain.corrected
    assert fit.summary().note.startswith("importance-corrected (PSIS, k̂")
    assert plain.summary().note == ""
    draws = fit.draws()["m"]
    assert draws.shape == (1000,)
    # resampled draws come from the weighted guide draws (k̂'s 4000, continued for an ESS of
    # SUMMARY_ESS: posterior.psis_draws_for), and are a subset of them
    n = fit._summary_weights().log_weights.size
    assert 4000 < n <= 4 * 4000
    assert np.all(np.isin(draws, fit.compiled.constrained(fit._zeta(n))["m"]))


def test_corrected_draws_are_resampled_by_their_weights():
    # a + b is observed, so a and b are correlated a posteriori and the mean field's sd of a
    # (1 / sqrt(2) = 0.71 at its optimum) is below the posterior's (sqrt(2/3) = 0.82, exact);
    # the weights correct it (k̂ 0.41 here). The written draws must follow the weights: their
    # sd within 0.06 of the weighted summary's (the sd of a sample sd of 1000 draws is about
    # 0.82 / sqrt(2000) = 0.018; 0.06 is over 3 of them), while the guide's draws, resampled
    # with equal weights, miss it by 0.15 (seed 2: the early stop returns a guide whose sd of
    # a lies anywhere in 0.64-0.74 by seed, so the gap that tells the two apart is the seed's)
    text = ("data y: real[1]\nsample a ~ Normal(0, 1)\nsample b ~ Normal(0, 1)\n"
            "observe y ~ Normal(a + b, 1)\n")
    fit = ppl.compile(text).fit({"y": [1.0]}, guide="meanfield", seed=2)
    assert fit.corrected
    weighted_sd = fit.summary().to_dict()["a"]["sd"]
    n = fit._summary_weights().log_weights.size
    guide_a = fit.compiled.constrained(fit._zeta(n))["a"]
    assert weighted_sd - guide_a.std(ddof=1) > 0.1
    assert abs(fit.draws()["a"].std(ddof=1) - weighted_sd) < 0.06
    # in a random order: in the guide draws' order a draw's repeats would sit side by side,
    # which ArviZ reads as autocorrelation (a lower ESS)
    positions = np.array([np.flatnonzero(guide_a == value)[0] for value in fit.draws()["a"]])
    assert np.mean(np.diff(positions) > 0) < 0.6


def test_fit_json_has_khat_and_verdict(tmp_path):
    text = "sample m ~ Normal(0, 1)\n"
    fit = ppl.compile(text).fit(guide="meanfield")
    save_fit(fit, tmp_path)
    info = json.loads((tmp_path / "fit.json").read_text())
    assert info["khat"] == (fit.khat if np.isfinite(fit.khat) else None)  # JSON has no inf
    assert info["verdict"]["line"] == fit.verdict().line
    assert info["psis"]["draws"] == 4000


def test_log_weights_on_large_data_take_the_log_joint_a_chunk_of_draws_at_a_time():
    # k̂'s 4000 draws at once were a [4000, N] predictor: 3.1 GB at N = 10^5. Now the log joint
    # sees optim.score_chunk(model) draws a call (10 here: 10^5 elements a draw), and the
    # weights are those of one call (each draw's log density is computed on its own; checked
    # on the first 50 draws, whose one call takes 40 MB)
    text = "data N: int\ndata y: real[N]\nsample m ~ Normal(0, 1)\nobserve y ~ Normal(m, 1)\n"
    n = 100_000
    fit = ppl.compile(text).fit({"N": n, "y": np.linspace(-1.0, 1.0, n)}, guide="meanfield",
                                iter=200)
    first = fit._zeta(4000)[:50]
    one_call = fit.compiled.log_joint(first) - MEAN_FIELD.log_q(fit.result.theta, first)
    sizes, log_joint = [], fit.compiled.log_joint
    fit.compiled.log_joint = lambda zeta: sizes.append(len(zeta)) or log_joint(zeta)
    assert score_chunk(fit.compiled.model) == 10
    np.testing.assert_array_equal(fit.log_weights()[:50], one_call)
    assert max(sizes) == 10 and sum(sizes) == 4000


# ----- how many draws the summary uses (posterior.psis_draws_for, SUMMARY_ESS) -----------------

def test_psis_draws_follow_the_effective_sample_size():
    # enough already: no more draws; else n * SUMMARY_ESS / ess, at most PSIS_GROWTH * n
    assert psis_draws_for(SUMMARY_ESS, 4000) == 4000
    assert psis_draws_for(SUMMARY_ESS + 0.5, 2 * SUMMARY_ESS) == 2 * SUMMARY_ESS
    assert psis_draws_for(1000.0, 4000) == 4000 * SUMMARY_ESS // 1000
    assert psis_draws_for(1189.3, 4000) == int(np.ceil(4000 * SUMMARY_ESS / 1189.3))
    assert psis_draws_for(100.0, 4000) == PSIS_GROWTH * 4000
    assert psis_draws_for(0.0, 4000) == PSIS_GROWTH * 4000
    assert psis_draws_for(float("nan"), 4000) == PSIS_GROWTH * 4000


def test_a_model_that_reports_nothing_is_summarized_and_judged():
    # every latent hidden (names starting with '_' are not reported): the verdict's checks of
    # a corrected summary and the summary's draws concatenated no columns, and `ppl fit` said
    # "internal error: ValueError: need at least one array to concatenate"
    text = ("data y: real[3]\nsample _m ~ Normal(0, 1)\nsample _s ~ HalfNormal(1)\n"
            "observe y ~ Normal(_m, _s)\n")
    fit = ppl.compile(text).fit({"y": [0.5, 1.0, 3.5]}, guide="meanfield", seed=1)
    assert fit.corrected
    assert fit.summary().rows == {}
    assert fit.verdict().level
    assert fit.draws() == {}


def test_psis_draws_for_means_follow_the_largest_standard_error():
    # at or below MEAN_MCSE sds: no more draws; above, n (se / MEAN_MCSE)^2, as the standard
    # error falls as 1 / sqrt(draws); nan (no element to judge): none
    assert psis_draws_for_means(MEAN_MCSE, 4000) == 4000
    assert psis_draws_for_means(0.5 * MEAN_MCSE, 6000) == 6000
    assert psis_draws_for_means(2 * MEAN_MCSE, 4000) == 16000
    assert psis_draws_for_means(1.5 * MEAN_MCSE, 7019) == int(np.ceil(7019 * 2.25))
    assert psis_draws_for_means(float("nan"), 4000) == 4000


class Wider:
    """Posterior N(0, 1.3^2 I_2); the guide given below is N(0, I_2), narrower: the weights
    grow with |z|, so an element's weighted mean has a larger standard error than 1 / sqrt(ESS)
    sds (tail index 1 - 1 / 1.3^2 = 0.41: finite variance, k̂ below the threshold)."""

    dim = 2

    def log_joint(self, zeta):
        return -0.5 * anp.sum((zeta / 1.3) ** 2, axis=1)

    def constrained(self, zeta, rng=None):
        return {"z": np.asarray(zeta)}

    def values(self):
        return {}


def test_corrected_summary_draws_more_while_a_means_standard_error_is_large():
    theta = np.zeros(4)
    result = AdviResult(MEAN_FIELD, theta, ("z[0]", "z[1]"), np.zeros(1), True, "converged",
                        1, 0.0, 0.1, 0.0)
    fit = Fit(None, Wider(), result, FitOptions(seed=0), {})
    first = fit.psis
    assert fit.corrected and first.log_weights.size == 4000
    # the ESS's rule first (psis_draws_for), then the means' at those draws
    by_ess = psis_draws_for(first.ess, 4000)
    at_ess = psis(fit._continued(fit.log_weights(), by_ess))
    values = fit.compiled.constrained(fit._zeta(by_ess))["z"]
    _, sd, se_mean, _ = weighted_moments(values, np.exp(at_ess.log_weights))
    worst = float(np.max(se_mean / sd))
    assert worst > MEAN_MCSE and worst * np.sqrt(at_ess.ess) > 1.1   # past what the ESS says
    # by blocks of columns (each reported value apart): the same to rounding
    assert fit._mean_mcse([values[:, :1], values[:, 1:]], at_ess.log_weights)[1] == \
        pytest.approx(worst, rel=1e-12)
    grown = fit._summary_weights()
    assert grown.log_weights.size == min(psis_draws_for_means(worst, by_ess),
                                         PSIS_GROWTH * 4000) > by_ess
    # the same stream, continued; the summary is weighted from all of them
    np.testing.assert_array_equal(grown.log_weights[:by_ess].size, at_ess.log_weights.size)
    # the standard error reached, at the grown draws, is below the one that asked for them,
    # and the note above the table gives it
    _, reached = fit._mean_mcse([fit.compiled.constrained(
        fit._zeta(grown.log_weights.size))["z"]], grown.log_weights)
    assert reached < worst
    assert fit.summary().note.endswith(
        f"of {grown.log_weights.size} draws; Monte Carlo standard error of a mean at most "
        f"{reached:.3f} sd)")


def test_the_largest_standard_error_of_a_mean_is_named_across_blocks_past_constant_columns():
    # columns are counted across the blocks (each reported value apart), and a constant column
    # (sd 0: its ratio not finite) neither wins nor hides the others of its block
    x = np.random.default_rng(3).standard_normal((4000, 2))
    weights = 0.2 * x[:, 1] ** 2         # log weights, larger where |x1| is: x1's mean is noisier
    _, sd, se_mean, _ = weighted_moments(x, np.exp(weights))
    assert se_mean[1] / sd[1] > se_mean[0] / sd[0]
    worst = se_mean[1] / sd[1]
    assert Fit._mean_mcse([x[:, :1], x[:, 1:]], weights) == (1, pytest.approx(worst))
    constant = np.zeros((4000, 1))
    assert Fit._mean_mcse([np.hstack([constant, x[:, 1:]])], weights) == \
        (1, pytest.approx(worst))
    assert Fit._mean_mcse([constant], weights)[0] == -1


def test_the_means_draws_stop_at_the_summarys_cap(monkeypatch):
    # PSIS_GROWTH times k̂'s draws at most, as the ESS's draws: the means' rule asks for more
    import ppl.posterior as posterior
    result = AdviResult(MEAN_FIELD, np.zeros(4), ("z[0]", "z[1]"), np.zeros(1), True,
                        "converged", 1, 0.0, 0.1, 0.0)
    uncapped = Fit(None, Wider(), result, FitOptions(seed=0), {})
    wanted = uncapped._summary_weights().log_weights.size
    by_ess = uncapped._ess_weights().log_weights.size
    assert wanted > by_ess
    monkeypatch.setattr(posterior, "PSIS_GROWTH", 2)   # a cap between the two (6,090, 11,601)
    assert by_ess < 2 * 4000 < wanted
    capped = Fit(None, Wider(), result, FitOptions(seed=0), {})
    assert capped._summary_weights().log_weights.size == 2 * 4000


def test_the_verdict_reads_the_summarys_monte_carlo_error_except_on_auto_s_rungs(monkeypatch):
    # auto asks every rung's verdict while it climbs (guide 'auto', no climb set yet): the
    # summary's draws and values would cost each rung what only the returned fit shows
    result = AdviResult(MEAN_FIELD, np.zeros(4), ("z[0]", "z[1]"), np.zeros(1), True,
                        "converged", 1, 0.0, 0.1, 0.0)
    asked = []
    monkeypatch.setattr(Fit, "_summary_errors",
                        lambda self: asked.append(self) or (("z[0]", 0.07), None))
    rung = Fit(None, Wider(), result, FitOptions(seed=0), {}, climbing=True)
    assert rung.corrected and "uncertain" not in rung.verdict().line and not asked
    rung.climbing = False          # the climb returned it: its verdict again, with the check
    assert "the corrected mean of z[0] is uncertain by 0.070" in rung.verdict().line
    assert asked == [rung]
    # a fit restored from its folder has no climb: the check, as when it was fitted
    assert Fit(None, Wider(), result, FitOptions(seed=0), {}).verdict() == rung.verdict()


class Shifted:
    """Posterior N(0, I_2); the guide given below is N(1.2, 1.5^2 I_2): wider than the
    posterior (bounded weights, k̂ < 0), but shifted, so the weights' ESS is about 1200 of
    4000 draws."""

    dim = 2

    def log_joint(self, zeta):
        return -0.5 * anp.sum(zeta * zeta, axis=1)

    def constrained(self, zeta, rng=None):
        return {"z": np.asarray(zeta)}

    def values(self):
        return {}


def _shifted_fit(**options):
    theta = np.array([1.2, 1.2, np.log(1.5), np.log(1.5)])
    result = AdviResult(MEAN_FIELD, theta, ("z[0]", "z[1]"), np.zeros(1), True, "converged",
                        1, 0.0, 0.1, 0.0)
    return Fit(None, Shifted(), result, FitOptions(**options), {})


def test_log_weights_after_khat_are_khat_s_own_not_evaluated_again():
    # auto's ELBO on k̂'s draws (auto._elbo, for the rung it returns when none can be used,
    # and the Gaussian rung's check of the flow) evaluated the log joint at the 4000 draws
    # again; the same values, bit for bit, are psis's. A copy: a caller's change stays its own
    fit = _shifted_fit()
    expected = fit.log_weights()
    fit.khat
    fit.compiled.log_joint = None          # evaluating it again would raise
    weights = fit.log_weights()
    np.testing.assert_array_equal(weights, expected)
    weights[:] = 0.0
    np.testing.assert_array_equal(fit.log_weights(), expected)


def test_corrected_summary_draws_more_when_the_weights_ess_is_small():
    fit = _shifted_fit()
    first = fit.psis                     # k̂ and the verdict: the 4000 draws of log_weights()
    assert first.ess < SUMMARY_ESS and first.khat < first.threshold
    assert first.log_weights.size == 4000
    grown = fit._summary_weights()
    assert grown.log_weights.size == psis_draws_for(first.ess, 4000) > 4000
    # the same stream, continued: the first 4000 draws are those of log_weights()
    np.testing.assert_array_equal(fit._zeta(grown.log_weights.size)[:4000], fit._zeta(4000))
    # the ESS grows in proportion to the draws (bounded weights: its estimate is stable)
    assert abs(grown.ess - SUMMARY_ESS) < 0.1 * SUMMARY_ESS
    assert fit.corrected
    assert f"of {grown.log_weights.size} draws" in fit.summary().note
    # the weighted summary estimates N(0, 1): at an ESS of SUMMARY_ESS the se of a mean is
    # 1 / sqrt(ESS) and of an sd about 1 / sqrt(2 ESS) (bounded weights); 4 se
    rows = fit.summary().to_dict()
    for name in ("z[0]", "z[1]"):
        assert abs(rows[name]["mean"]) < 4 / np.sqrt(SUMMARY_ESS)
        assert abs(rows[name]["sd"] - 1.0) < 4 / np.sqrt(2 * SUMMARY_ESS)
    assert fit.draws()["z"].shape == (1000, 2)          # --draws is what is written out


def test_uncorrected_summary_uses_the_psis_draws_and_draws_no_more():
    fit = _shifted_fit(correct="none")
    assert fit.psis.log_weights.size == 4000
    # the plain summary is that of the 4000 iid guide draws, not of the 1000 written out
    pool = fit._zeta(4000)
    rows = fit.summary().to_dict()
    np.testing.assert_allclose(rows["z[0]"]["mean"], pool[:, 0].mean())
    np.testing.assert_allclose(rows["z[1]"]["sd"], pool[:, 1].std(ddof=1))
    assert fit.draws()["z"].shape == (1000, 2)


def test_weighted_stats_sort_each_column_stably(rng):
    # the quicksort of all columns stands in for the stable sort only where a column has no
    # ties and no NaN; columns with ties (rounded draws, 0.0 and -0.0, infinities, NaNs) get
    # the stable order, so the cumulative weights are the stable sort's bit for bit; a
    # constant column (all 0.0 and -0.0 too) is its own order, unsorted; all NaN is not constant
    flat = rng.standard_normal((2000, 8))
    flat[:, 1] = np.round(flat[:, 1])
    flat[::2, 2], flat[1::2, 2] = 0.0, -0.0
    flat[:7, 3], flat[7:9, 3] = np.inf, np.nan
    flat[:, 5], flat[:, 6], flat[:, 7] = 2.5, np.nan, np.inf
    # copies of earlier columns (a symmetric matrix's two halves) take their sort; a column
    # equal to one but for the sign of a zero, or for one value past the first eight, is no copy
    signed = flat[:, 2].copy()
    signed[1] = 0.0
    later = flat[:, 0].copy()
    later[1500] += 1.0
    flat = np.column_stack([flat, flat[:, 0], flat[:, 1], flat[:, 6], signed, later, flat[:, 0]])
    ordered, orders = _sort_rows(np.ascontiguousarray(flat.T))
    for k in range(flat.shape[1]):
        np.testing.assert_array_equal(orders[k], np.argsort(flat[:, k], kind="stable"))
        np.testing.assert_array_equal(ordered[k], flat[orders[k], k])
    np.testing.assert_array_equal(_earlier_copies(np.ascontiguousarray(flat.T)),
                                  [-1] * 8 + [0, 1, 6, -1, -1, 0])
    # the summary (_stats) sorts the first of equal columns only and gives its copies its
    # quantiles: each still np.interp's over its own stable sort, bit for bit (the finite
    # columns; the others are redone in units of a power of two), the moments as they were
    weights = rng.uniform(0.5, 1.5, len(flat))
    weights /= weights.sum()
    finite = flat[:, [0, 1, 2, 4, 8, 9, 11, 12, 13]]
    mean, sd, quantiles = _stats(finite, weights)
    np.testing.assert_array_equal(quantiles, _interp_loop(finite, weights))
    whole = weighted_stats(finite, weights)
    np.testing.assert_array_equal(mean, whole[0])
    np.testing.assert_array_equal(sd, whole[1])
    np.testing.assert_array_equal(quantiles, whole[2])
    np.testing.assert_array_equal(_stats(finite, None)[2], np.quantile(finite, QUANTILES, axis=0))


def _interp_loop(flat, weights):
    """The per-column reference: np.interp over each column's stably sorted draws."""
    out = np.empty((len(QUANTILES), flat.shape[1]))
    flat, weights = flat[weights > 0], weights[weights > 0]     # massless draws count not
    for k in range(flat.shape[1]):
        order = np.argsort(flat[:, k], kind="stable")
        position = np.cumsum(weights[order]) - 0.5 * weights[order]
        out[:, k] = np.interp(QUANTILES, position, flat[order, k])
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 400])
def test_weighted_quantiles_are_np_interps_bit_for_bit(rng, n):
    # the vectorized interpolation repeats np.interp's arithmetic and its cases: below the
    # first position, at or above the last, exactly on a position, zero weights (repeated
    # positions), ties, infinities (nan one way, then the other end) and NaNs
    flat = rng.standard_normal((n, 9)) * 10.0 ** rng.integers(-3, 4, 9)
    flat[:, 1] = np.round(flat[:, 1])
    flat[: n // 3 + 1, 2] = np.inf
    flat[: n // 4 + 1, 3], flat[n // 2:, 3] = -np.inf, np.inf
    flat[: n // 5 + 1, 4] = np.nan
    flat[:, 5] = 7.0
    flat[:, 6] *= 1e300
    weights = rng.exponential(size=n)
    weights[rng.random(n) < 0.3] = 0.0
    weights[0] += 1e-3
    weights /= weights.sum()
    with np.errstate(all="ignore"):
        expected = _interp_loop(flat, weights)
        np.testing.assert_array_equal(weighted_stats(flat, weights)[2], expected)


@pytest.mark.parametrize("weights", [[0.25, 0.5, 0.25], [0.0625, 0.875, 0.0625]])
def test_weighted_quantiles_exactly_on_a_position_are_np_interps_bit_for_bit(rng, weights):
    # dyadic weights put the median exactly on the middle draw's position (0.125 or 0.03125,
    # then 0.5): np.interp returns that draw itself, not the segment before it evaluated at
    # its end (which rounds), nor nan where the next draw is infinite (inf * 0); with the
    # second weights the 5% quantile lies between -inf and a finite draw, where the slope's
    # nan one way is -inf from the other end
    # (each column sorted, so the middle weight is the middle draw's)
    flat = np.sort(rng.standard_normal((3, 40)) * 10.0 ** rng.integers(-3, 4, 40), axis=0)
    flat[:, 0] = [1.0, 2.0, np.inf]
    flat[:, 1] = [-np.inf, 1.0, 2.0]
    weights = np.array(weights)
    with np.errstate(all="ignore"):
        expected = _interp_loop(flat, weights)
        found = weighted_stats(flat, weights)[2]
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(found[1], flat[1])

def test_draws_of_weight_zero_take_no_part_in_the_weighted_summary(rng):
    # a draw whose log density is not finite gets weight 0; its value, inf or NaN where the
    # density failed, made the corrected mean and sd NaN (0 * inf) and its 95% quantile inf,
    # and a finite one was a node of the quantiles' interpolation. The reference: the numpy
    # formulas of the docstring on the draws of positive weight alone
    x = rng.standard_normal((400, 3))
    weights = rng.exponential(size=400)
    massless = rng.random(400) < 0.1
    weights[massless] = 0.0
    weights /= weights.sum()
    x[massless, 0], x[massless, 1], x[massless, 2] = np.inf, np.nan, 50.0
    kept, w = x[~massless], weights[~massless]
    mean = w @ kept
    sd = np.sqrt(w @ (kept - mean) ** 2 / (1 - w @ w))
    quantiles = _interp_loop(kept, w)
    with np.errstate(all="ignore"):
        found = weighted_stats(x, weights)
    np.testing.assert_allclose(found[0], mean, rtol=1e-12)
    np.testing.assert_allclose(found[1], sd, rtol=1e-12)
    np.testing.assert_array_equal(found[2], quantiles)


def test_summary_stats_of_a_large_let_come_in_blocks_with_the_same_quantiles(rng, monkeypatch):
    # blocks of columns bound the statistics' temporaries; each column's quantiles are its
    # own, bit for bit; means and sds may differ in the last bits (BLAS sums a block's
    # columns in another order), so at 1e-12 relative
    from ppl import summary
    flat = rng.standard_normal((300, 50)) * 3 + 1
    weights = rng.exponential(size=300)
    weights /= weights.sum()
    whole = [summary.Summary.from_draws({"x": flat}, w).rows for w in (None, weights)]
    monkeypatch.setattr(summary, "STATS_ELEMENTS", 300 * 7)
    blocked = [summary.Summary.from_draws({"x": flat}, w).rows for w in (None, weights)]
    for a, b in zip(whole, blocked):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name][2:], b[name][2:])
            np.testing.assert_allclose(a[name][:2], b[name][:2], rtol=1e-12)


def test_a_mean_field_collapsed_below_its_means_last_digit_is_not_called_reliable():
    # sd 1e-35 next to a mean near 4: every draw rounds to the mean. log q recomputed from the
    # rounded draws was the same at all of them, the log weights tied exactly and PSIS read
    # the tie as bounded weights (k̂ -inf, 'reliable', sds of 1e-14 against about 3); from the
    # noise, log q varies as the guide's density does and the weights have its heavy tail
    D = 3
    theta = np.concatenate([np.full(D, 1.5), np.full(D, -80.0)])
    result = AdviResult(MEAN_FIELD, theta, tuple(f"z[{i}]" for i in range(D)), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    fit = Fit(None, Stub(D), result, FitOptions(guide="meanfield"), {})
    assert np.all(fit._zeta(4000) == 1.5)            # every draw is the mean
    assert np.ptp(fit.log_weights(4000)) > 1.0
    assert fit.khat > 0.7 and fit.verdict().level == "unreliable"


def test_a_low_rank_guide_collapsed_below_its_means_last_digit_is_not_called_reliable():
    # As mean field's above: sigma and F of 1e-35 next to a mean of 1.5 (`ppl fit
    # eight_schools.ppl --guide lowrank --init-scale 1e-100 --iter 10`: k̂ -inf, importance-
    # corrected, tau's sd 3e-14). log q from the noise varies as the guide's density does.
    D, R = 3, 2
    guide = family(f"lowrank:{R}", D)
    theta = np.concatenate([np.full(D, 1.5), np.full(D, -80.0), np.full(D * R, 1e-35)])
    result = AdviResult(guide, theta, tuple(f"z[{i}]" for i in range(D)), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    fit = Fit(None, Stub(D), result, FitOptions(guide="lowrank"), {})
    assert np.all(fit._zeta(4000) == 1.5)            # every draw is the mean
    assert np.ptp(fit.log_weights(4000)) > 1.0
    assert fit.khat > 0.7 and fit.verdict().level == "unreliable"


@pytest.mark.parametrize("name", ["fullrank", "flow", "scaled"])
def test_a_guide_equal_to_a_constrained_posterior_has_constant_log_weights(name):
    # lam > 0 (lam = exp(u), log-Jacobian u) with a LogNormal prior and y ~ N(log(lam) + b,
    # 0.8): in (u, b) the posterior is exactly Gaussian. A guide set to it by hand has log
    # weights log p - log q constant to rounding whatever the draw: k̂ of a bounded tail
    # (-inf when they tie exactly, below 0 on rounding noise) and the ESS all the draws; a
    # wrong log-Jacobian or log q would tilt them.
    # The flow and scaled start as their source Gaussian exactly (identity layers).
    from ppl.guides import FullRank
    y = np.array([0.3, 0.9, 0.5, 1.4])
    model = ppl.compile("data y: real[4]\nsample lam: real<lower=0> ~ LogNormal(0.2, 1.5)\n"
                        "sample b ~ Normal(0, 1)\nobserve y ~ Normal(log(lam) + b, 0.8)\n")
    _, _, compiled = model.prepare({"y": y})
    precision = np.diag([1 / 1.5 ** 2, 1.0]) + len(y) / 0.64 * np.ones((2, 2))
    covariance = np.linalg.inv(precision)
    mean = covariance @ (np.array([0.2 / 1.5 ** 2, 0.0]) + y.sum() / 0.64)
    gaussian = FullRank(2)
    theta = gaussian.pack(mean, np.linalg.cholesky(covariance))
    guide = family(name, 2)
    if name != "fullrank":
        theta = guide.warm_start(gaussian, theta)
    result = AdviResult(guide, theta, ("lam", "b"), np.zeros(1), True, "converged", 1, 0.0,
                        0.1, 0.0)
    fit = Fit(None, compiled, result, FitOptions(guide=name), {})
    assert np.ptp(fit.log_weights()) < 1e-10
    assert fit.khat < 0 and fit.weights_ess == pytest.approx(1.0, rel=1e-12)
    assert fit.verdict().level == "reliable"


def test_the_verdict_reads_khat_of_the_corrected_summarys_own_draws(monkeypatch):
    # noncentered eight schools, seed 8, mean field under auto: k̂ 0.45 from 4000 draws,
    # reliable; its weights' ESS is low, so the summary weights 32,000 draws (PSIS_GROWTH),
    # whose k̂ is the verdict's second figure (verdict.judge's summary_khat)
    from pathlib import Path
    from dataclasses import replace
    models = Path(__file__).resolve().parents[2] / "models"
    data = json.loads((models / "eight_schools.json").read_text())
    fit = ppl.load(models / "eight_schools.ppl").fit(data, seed=8)
    assert fit.corrected and fit.verdict().level == "reliable"
    khat, threshold, draws = fit._summary_khat()
    p = fit._summary_weights()
    assert (khat, threshold, draws) == (p.khat, p.threshold, p.log_weights.size)
    assert draws == PSIS_GROWTH * fit.psis.log_weights.size and khat < threshold
    # the same fit with the summary's weights at k̂ 0.75: usable with care, and why
    fit._cache.pop("verdict")
    heavy = replace(p, khat=0.75)
    monkeypatch.setattr(Fit, "_summary_weights", lambda self: heavy)
    line = fit.verdict().line
    assert line.startswith(f"usable with care (k̂ {fit.khat:.2f}): k̂ of the corrected "
                           "summary's own 32000 draws is 0.75, not below 0.70")
    # where the summary takes k̂'s own draws there is no second figure
    monkeypatch.setattr(Fit, "_summary_weights", lambda self: self.psis)
    assert fit._summary_khat() is None


def test_the_summarys_largest_errors_of_a_mean_and_of_an_sd_are_weighted_moments_own():
    # Fit._largest_errors: the column whose mean's standard error (in its sd) and whose sd's
    # relative standard error are the largest, across blocks, from tails.weighted_moments;
    # the two may be different columns: here a heavy-tailed column (Student-t, 5 degrees of
    # freedom: finite kurtosis, sd's error large) and a narrow one with uneven weights
    rng = np.random.default_rng(3)
    n = 4000
    heavy = rng.standard_t(5, size=(n, 1))
    plain = rng.standard_normal((n, 2))
    log_weights = rng.normal(0, 1.0, n)
    log_weights -= np.log(np.sum(np.exp(log_weights)))
    (mean_col, mean_err), (sd_col, sd_err) = Fit._largest_errors([plain, heavy], log_weights)
    _, sd, se_mean, se_log_sd = weighted_moments(np.hstack([plain, heavy]), np.exp(log_weights))
    assert mean_col == int(np.argmax(se_mean / sd))
    np.testing.assert_allclose(mean_err, np.max(se_mean / sd), rtol=1e-12)
    # blocks and the whole sum in different orders (BLAS): equal to rounding
    assert sd_col == 2 == int(np.argmax(se_log_sd))
    np.testing.assert_allclose(sd_err, se_log_sd[2], rtol=1e-12)
    # a constant column (sd 0) has no finite error and is passed over; none at all: (-1, nan)
    both = Fit._largest_errors([np.zeros((n, 1))], log_weights)
    assert [c for c, _ in both] == [-1, -1] and all(np.isnan(e) for _, e in both)


def test_earlier_copies_compares_a_row_with_few_others(monkeypatch):
    # rows that agree in every sampled value and differ elsewhere (a ReLU unit off in most
    # draws) are compared with at most CANDIDATES earlier ones each, not pairwise; copies of
    # the first rows of a key are still found
    from ppl import summary
    rows = np.zeros((300, 1000))
    spots = np.setdiff1d(np.arange(1000), np.linspace(0, 999, summary.KEY_VALUES).astype(int))
    rows[np.arange(300), spots[:300]] = 1.0
    rows[299] = rows[3]
    calls = []
    real = np.array_equal

    def counted(a, b):
        calls.append(1)
        return real(a, b)
    monkeypatch.setattr(np, "array_equal", counted)
    copy_of = _earlier_copies(rows)
    assert copy_of[299] == 3 and (copy_of[:299] == -1).all()
    assert len(calls) <= summary.CANDIDATES * len(rows)
