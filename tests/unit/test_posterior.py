"""ppl/posterior.py's Fit against references computed apart from it: the importance weights
recomputed by hand from the log joint and the guide's log q, the counts systematic resampling
guarantees, and the inputs the verdict is given (the mutation pass of
docs/history/trust-log.md, "Mutation pass over ppl/posterior.py")."""
import autograd.numpy as anp
import numpy as np
import pytest

import ppl.posterior as posterior
from ppl.guides import MEAN_FIELD
from ppl.infer.advi import AdviResult
from ppl.infer.psis import Psis, khat_threshold, psis
from ppl.infer.verdict import MIN_WEIGHTS_ESS
from ppl.options import FitOptions
from ppl.posterior import Fit, psis_draws_for


class Normal:
    """A 'compiled model' whose posterior is N(0, I_D); its log density is NaN where
    zeta_0 > ``nan_above`` (a draw the model cannot evaluate)."""

    def __init__(self, D, nan_above=np.inf):
        self.dim, self.nan_above = D, nan_above

    def log_joint(self, zeta):
        value = -0.5 * anp.sum(zeta * zeta, axis=1)
        return anp.where(zeta[:, 0] > self.nan_above, np.nan, value)

    def constrained(self, zeta, rng=None):
        return {"z": np.asarray(zeta)}

    def values(self):
        return {}


def _fit(D=2, mean=1.2, sd=1.5, nan_above=np.inf, **options):
    """A mean-field fit of N(mean, sd^2 I_D) to N(0, I_D): wider than the posterior (bounded
    weights), shifted (an ESS well below the draws)."""
    theta = np.concatenate([np.full(D, mean), np.full(D, np.log(sd))])
    result = AdviResult(MEAN_FIELD, theta, tuple(f"z[{i}]" for i in range(D)), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    return Fit(None, Normal(D, nan_above), result, FitOptions(**options), {})


def _by_hand(fit, n):
    """log p - log q at the fit's first n guide draws, from the log joint and the guide's
    log_q (not the forward pass the fit takes them from)."""
    zeta = fit._zeta(n)
    with np.errstate(invalid="ignore"):
        return fit.compiled.log_joint(zeta) - MEAN_FIELD.log_q(fit.result.theta, zeta)


def _indices(fit, zeta, size):
    """Which of the fit's first ``size`` guide draws each row of ``zeta`` is (the rows of
    continuous draws are distinct)."""
    where = {row.tobytes(): i for i, row in enumerate(fit._zeta(size))}
    return np.array([where[row.tobytes()] for row in zeta])


def test_log_weights_of_other_draws_than_khats_are_their_own():
    # k̂'s 4000 weights are cached for log_weights() at 4000; at another n they are those
    # of n draws, not the cached ones
    fit = _fit()
    fit.khat
    for n in (100, 6000):
        np.testing.assert_allclose(fit.log_weights(n), _by_hand(fit, n), rtol=1e-12, atol=1e-12)


def test_the_summarys_continued_weights_are_those_of_their_own_draws():
    # the summary's weights continue k̂'s stream: the weight of draw i (of _zeta(n)) is log p
    # - log q at that draw, also past the first 4000 (a continuation from the stream's start,
    # or shifted by a draw, pairs values with other draws' weights)
    fit = _fit()
    p = fit._summary_weights()
    n = p.log_weights.size
    assert n == psis_draws_for(fit.psis.ess, 4000) > 4000
    expected = psis(_by_hand(fit, n))
    np.testing.assert_allclose(p.log_weights, expected.log_weights, rtol=1e-9, atol=1e-12)


def _resampling_fit(log_weights):
    """A corrected fit whose summary's weights are ``log_weights`` (normalized)."""
    fit = _fit()
    assert fit.corrected
    fit._cache["summary_weights"] = Psis(0.0, 0.7, np.asarray(log_weights), 0, 0)
    return fit


def test_systematic_resampling_draws_each_draw_floor_or_ceil_of_n_times_its_weight():
    # Systematic resampling (Douc, Cappe, Moulines 2005) keeps draw i floor(n w_i) or
    # ceil(n w_i) times, whatever its uniform offset. Here draws 1-500 have weight 2/1000 each
    # and the rest (draw 0 among them) none: each of 1-500 exactly twice in 1000, no other.
    # Draw 0 takes the pick at 0 only if the offset is dropped (picks i / n); picks spaced
    # 1 / (n + 1) give some draws 1 or 3
    log_weights = np.full(4000, -np.inf)
    log_weights[1:501] = np.log(2 / 1000)
    counts = np.zeros(4000, int)
    for seed in range(5):
        fit = _resampling_fit(log_weights)
        fit.options = FitOptions(seed=seed)
        np.add.at(counts, _indices(fit, fit._posterior_zeta(1000), 4000), 1)
    expected = np.zeros(4000, int)
    expected[1:501] = 2 * 5
    np.testing.assert_array_equal(counts, expected)


def test_a_resampling_pick_past_the_weights_rounded_sum_takes_the_last_draw(monkeypatch):
    # normalized weights may sum to just under 1 in floating point: the last pick, (u + n - 1)
    # / n, can then lie past their cumulative sum and takes the last draw (not an index one
    # past the draws). Forced here with u the largest double below 1
    weights = np.full(4000, 1 / 3000)
    weights[:1000] = 0.0
    assert np.cumsum(weights)[-1] < 1.0
    with np.errstate(divide="ignore"):
        fit = _resampling_fit(np.log(weights))

    class Largest:
        """stream 4's generator, its uniform the largest below 1"""
        def __init__(self, rng):
            self.rng = rng

        def random(self):
            return np.nextafter(1.0, 0.0)

        def permutation(self, x):
            return self.rng.permutation(x)

    real = fit._rng
    monkeypatch.setattr(fit, "_rng",
                        lambda purpose: Largest(real(4)) if purpose == 4 else real(purpose))
    index = _indices(fit, fit._posterior_zeta(1000), 4000)
    assert index.min() >= 1000 and 3999 in index


def test_corrected_draws_are_resampled_from_the_summarys_own_weights():
    # the written draws follow the weights the summary takes (k̂'s draws continued to about
    # 13,000 here), not k̂'s 4000 alone: each draw floor or ceil of 1000 w_i times
    fit = _fit()
    p = fit._summary_weights()
    n = p.log_weights.size
    assert n > 4000
    index = _indices(fit, fit._posterior_zeta(1000), n)
    counts = np.bincount(index, minlength=n)
    scaled = 1000 * np.exp(p.log_weights)
    assert np.all((counts >= np.floor(scaled) - 1e-9) & (counts <= np.ceil(scaled) + 1e-9))
    assert index.max() >= 4000


def test_a_khat_at_its_threshold_is_not_corrected():
    # k̂ at or above its threshold: the weights cannot be trusted, the summary is not
    # corrected with them (and the verdict is unreliable)
    fit = _fit()
    p = fit.psis
    fit._cache["psis"] = Psis(p.threshold, p.threshold, p.log_weights, 0, p.tail)
    assert not fit.corrected
    assert fit.summary().note == "" and fit.verdict().level == "unreliable"


@pytest.mark.parametrize("nan_above", [np.inf, 1.5])
def test_the_verdict_is_given_the_weights_own_figures(monkeypatch, nan_above):
    # judge's inputs from the fit, against the weights recomputed by hand: k̂ and its threshold
    # from 4000 draws, the ESS of the summary's draws (32,000 here: PSIS_GROWTH), the ESS of
    # k̂'s weights as a fraction of all 4000 draws (non-finite ones too), and the bound 500
    # on it (MIN_WEIGHTS_ESS; 0 only after --batch). An 8-dimensional shifted guide: k̂ 0.31,
    # ESS 198 of 4000, 1402 of 32,000: unreliable by k̂'s draws' ESS alone; with a NaN log
    # density where z_0 > 1.5, 1327 of the 4000 draws are left out (k̂ 0.24, ESS 173)
    given = {}
    judge = posterior.judge

    def recorded(*args, **kwargs):
        given.update(args=args, **kwargs)
        return judge(*args, **kwargs)
    monkeypatch.setattr(posterior, "judge", recorded)
    fit = _fit(D=8, mean=0.8, sd=1.6, nan_above=nan_above, seed=0)
    line = fit.verdict().line
    first = psis(_by_hand(fit, 4000))
    grown = psis(_by_hand(fit, 32000))
    khat, threshold, draws, *_ = given["args"]
    assert khat == pytest.approx(first.khat, rel=1e-9) and draws == 4000
    assert threshold == khat_threshold(4000 - first.n_nonfinite)
    summary_ess, weights_ess, min_weights_ess = given["args"][9:12]
    assert summary_ess == pytest.approx(grown.ess, rel=1e-9)
    assert weights_ess == pytest.approx(first.ess / 4000, rel=1e-9)
    assert min_weights_ess == MIN_WEIGHTS_ESS
    assert 400 < grown.ess and first.ess < MIN_WEIGHTS_ESS
    assert (f"the importance weights are too uneven to correct the guide (effective sample "
            f"size {first.ess:.0f} of 4000 draws, under 500)") in line


@pytest.mark.parametrize("read", [lambda fit: fit.psis.log_weights,
                                  lambda fit: fit.draws()["z"]])
def test_the_fits_weights_and_draws_are_the_callers_own(read):
    # psis's smoothed weights and draws() are copies: a caller's in-place change leaves the
    # fit's own (k̂'s weights, the summary, the verdict, a saved fit) as they were
    fit = _fit()
    expected = read(fit).copy()
    read(fit)[:] = 0.0
    np.testing.assert_array_equal(read(fit), expected)


def test_a_fit_refuses_pickle_with_what_to_do_and_still_copies():
    # pickle's own error named '_node.<locals>.<lambda>', a closure of the compiled model
    import copy
    import pickle
    fit = _fit()
    with pytest.raises(TypeError, match=r"a ppl Fit cannot be pickled .* 'ppl fit MODEL --out DIR'"):
        pickle.dumps(fit)
    clone = copy.deepcopy(fit)
    assert clone.result is not fit.result and clone.summary().rows == fit.summary().rows
    assert copy.copy(fit).result is fit.result


def test_the_summarys_rows_are_the_callers_own():
    # fit.summary() returned the fit's cached table: rows["z[0]"] = ... changed every later
    # summary of the fit (and what a save would write)
    fit = _fit()
    expected = dict(fit.summary().rows)
    fit.summary().rows["z[0]"] = (999.0,) * 5
    del fit.summary().rows["z[1]"]
    assert fit.summary().rows == expected


@pytest.fixture(scope="module")
def dadvi_fit():
    """A DADVI fit with a linear-response covariance: a + b observed, so a and b are
    correlated a posteriori (the correlation mean field's own sds cannot show)."""
    import ppl
    text = ("data y: real[2]\nsample a ~ Normal(0, 1)\nsample b ~ Normal(0, 1)\n"
            "observe y ~ Normal(a + b, 0.5)\n")
    fit = ppl.compile(text).fit({"y": [1.0, 1.2]}, method="dadvi")
    assert fit.result.lr_covariance[0, 1] < 0
    return fit


def test_a_dadvi_fits_weights_are_against_its_linear_response_gaussian(dadvi_fit):
    # the draws of a DADVI fit with linear-response sds come from N(mean, covariance), and
    # their log q is that Gaussian's density: scipy's, to rounding, and log p - log q the
    # log joint less it
    import scipy.stats
    fit = dadvi_fit
    zeta = fit._zeta(4000)
    mean = fit.result.guide.mean(fit.result.theta)
    exact = scipy.stats.multivariate_normal(mean, fit.result.lr_covariance).logpdf(zeta)
    np.testing.assert_allclose(fit._log_q(zeta), exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fit.log_weights(), fit.compiled.log_joint(zeta) - exact,
                               rtol=1e-12, atol=1e-12)



def test_an_uncorrected_summary_off_the_weighted_one_is_unreliable():
    # --correct none on a guide N(1.2, 1.5^2) of the posterior N(0, 1) (k̂ below 0: the
    # weights are trusted): the plain summary's means are 1.2 posterior sds off the weighted
    # ones and its sds 50% wide (closed forms), which the verdict names. Tolerances: the
    # plain mean's standard error is 1.5 / sqrt(4000) = 0.024 and the weighted one's about
    # 1 / sqrt(ESS 1200) = 0.03, so 0.2 is over 4 of their sum; an sd's relative error about
    # 1 / sqrt(2 * 1200) = 0.02 weighted, 0.011 plain: 0.15 is over 4 of theirs
    fit = _fit(correct="none")
    assert fit.khat < 0 and not fit.corrected
    line = fit.verdict().line
    assert line.startswith("unreliable (k̂ -") and line.endswith(
        "it is the guide's own, not importance-corrected; try --correct psis")
    words = line.split("the importance weights, which k̂ trusts, put this summary's mean of ")[1]
    gap, sd_gap = words.split(" ")[1], words.split("(its sd ")[1].split("%")[0]
    assert abs(float(gap) - 1.2) < 0.2 and abs(float(sd_gap) / 100 - 0.5) < 0.15



def test_a_dadvi_fits_draws_are_its_gaussians_own_not_resampled(dadvi_fit):
    # DADVI's summary keeps its linear-response sds: it is never importance-corrected, and
    # its written draws are the Gaussian's own (resampled, they would repeat some draws)
    fit = dadvi_fit
    assert fit.options.correct == "psis" and not fit.corrected
    draws = fit.draws()
    np.testing.assert_array_equal(np.column_stack([draws["a"], draws["b"]]), fit._zeta(1000))



def test_the_verdict_is_given_the_dadvi_mean_with_the_largest_error_against_its_sd(dadvi_fit):
    # the summary's largest mcse / sd, whatever its size: the verdict judges it
    # (verdict.NOISY_CORRECTION, MCSE_WARN)
    fit = dadvi_fit
    summary = fit.summary()
    mcse, sd = summary.columns.index("mcse"), summary.columns.index("sd")
    ratios = {name: row[mcse] / row[sd] for name, row in summary.rows.items()}
    worst = max(ratios, key=ratios.get)
    assert fit._noisy_dadvi_mean() == (worst, pytest.approx(ratios[worst], rel=1e-12))


@pytest.mark.parametrize("trusted", [True, False])
def test_the_tails_check_judges_only_from_trusted_student_t_weights(monkeypatch, trusted):
    # a corrected Gaussian fit is compared with the same frame under Student-t noise only
    # where the t's own weights can be trusted (tails.trusted); a gap found there makes the
    # verdict unreliable. tails_disagreement stands in, so the gap is what the check found
    from ppl.infer import tails
    gap = ("z[0]", -0.17, -0.32, False)
    monkeypatch.setattr(posterior, "tails_disagreement", lambda names, *moments: gap)
    monkeypatch.setattr(tails, "trusted", lambda p: trusted)
    fit = _fit()
    assert fit.corrected and tails.applies(fit.result, fit.options)
    line = fit.verdict().line
    assert fit._tails_disagree() == (gap if trusted else None)
    assert ("the posterior's tails are heavier than the guide's" in line) == trusted


def test_a_corrected_fits_predictive_draws_are_those_of_its_draws():
    # predictive() draws y at the same (resampled) posterior draws as draws(): y - (a + b) is
    # then the observation's noise alone, N(0, 1). At other draws (the guide's own) it would
    # add a + b's spread twice (sd 1.61 here). The sd of a sample sd of 1000 normal draws is
    # about 1 / sqrt(2000) = 0.022: 0.09 is 4 of them
    import ppl
    text = ("data y: real[1]\nsample a ~ Normal(0, 1)\nsample b ~ Normal(0, 1)\n"
            "observe y ~ Normal(a + b, 1)\n")
    fit = ppl.compile(text).fit({"y": [1.0]}, guide="meanfield", seed=0)
    assert fit.corrected
    draws = fit.draws()
    noise = fit.predictive()["y"][:, 0] - (draws["a"] + draws["b"])
    assert abs(noise.std(ddof=1) - 1.0) < 0.09


def test_the_verdict_is_judged_again_once_autos_report_is_set():
    # the hint names only families auto did not try: the report is set on the fit after its
    # verdict was first asked for (auto's rungs), and the cached verdict must not outlive it
    from types import SimpleNamespace
    fit = _fit(D=8, mean=0.8, sd=1.6, seed=0)
    assert fit.verdict().line.endswith("; try --guide fullrank")
    fit.auto = SimpleNamespace(tried=[SimpleNamespace(family="fullrank")])
    assert fit.verdict().line.endswith("; try --guide flow")


def test_a_param_is_left_out_of_the_check_of_an_uncorrected_summary_against_its_weights():
    # a param is the same in every draw: its weighted and plain means differ by rounding, and
    # its sd of about 1e-17 had made that '198.98 posterior sds off', unreliable; m's plain
    # summary is within the targets of its weighted one, so the fit is reliable
    import ppl
    fit = ppl.compile("param a: real ~ Normal(0, 1)\nsample m ~ Normal(a, 1)\n").fit(
        correct="none", seed=0)
    assert fit._weights_disagree() is None
    assert fit.verdict().level == "reliable"
