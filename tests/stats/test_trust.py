"""k̂, the verdict and the multi-start check on posteriors whose answer is known (issue 11, item 6).

Models are written here, with their data, so that nothing outside the repository is read.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

import ppl
from ppl.infer import auto
from ppl.infer.verdict import CARE, RELIABLE, UNRELIABLE

MODELS = Path(__file__).resolve().parents[2] / "models"

# A Gaussian posterior that the mean-field family contains: mu | y ~ N(., 1/sqrt(N + 1/100)),
# b's posterior is its prior.
GAUSSIAN = """
data N: int
data y: real[N]
sample mu ~ Normal(0, 10)
sample b ~ Normal(1, 2)
observe y ~ Normal(mu, 1)
"""

CENTERED = """
data J: int
data y: real[J]
data sigma: real<lower=0>[J]
sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(5)
sample theta: real[J] ~ Normal(mu, tau)
observe y ~ Normal(theta, sigma)
"""

# y = x^2 + noise with y = 4: two symmetric modes at x = -2 and x = 2, each of sd about
# 0.1 / (2 * 2) = 0.025; a single Gaussian fit sits in one of them.
BIMODAL = """
data y: real
sample x ~ Normal(0, 10)
observe y ~ Normal(x * x, 0.1)
"""

UNIMODAL = """
data y: real[5]
sample x ~ Normal(0, 10)
sample s ~ HalfNormal(2)
observe y ~ Normal(x, s)
"""
UNIMODAL_DATA = {"y": [1.2, 0.3, 2.1, 1.7, 0.9]}


@pytest.mark.slow
def test_khat_small_when_the_family_contains_the_posterior():
    # The fitted guide differs from the posterior only by optimizer jitter (~0.03 posterior
    # sds, tests/stats/test_posteriors.py), for which the weights' tail index is about
    # 1 - (sd_q / sd_p)^2 < 0.1. k̂ from the default 1000 draws has a standard error of about
    # (1 + k) / sqrt(95 tail draws) = 0.11, so 0.5 is 4 standard errors above it.
    y = np.random.default_rng(1).normal(3.0, 1.0, size=20)
    fit = ppl.compile(GAUSSIAN).fit({"N": 20, "y": y.tolist()})
    assert fit.khat < 0.5
    assert fit.verdict().level == RELIABLE


@pytest.mark.slow
def test_meanfield_on_centered_eight_schools_is_unreliable():
    # Measured once, seeds 0..3 with 4000 draws: k̂ = 0.86, 0.92, 0.98, 0.90 (mean 0.91, sd
    # 0.05; python: fit(..., seed=s, draws=4000).khat): 0.7 is 4 sds below their mean.
    fit = ppl.compile(CENTERED).fit(MODELS / "eight_schools.json", draws=4000,
                                    guide="meanfield")
    assert fit.khat > 0.7
    verdict = fit.verdict()
    assert verdict.level == UNRELIABLE
    assert "cannot represent the posterior" in verdict.line
    assert not fit.corrected      # above the threshold the weights are not used


# posteriordb's reference for eight_schools-eight_schools_noncentered (10 chains x 1000 NUTS
# draws; each mean's Monte Carlo se is about 0.01 sd), element -> (mean, sd); copied here so
# that the test reads nothing outside the repository. models/eight_schools.ppl is that model.
REFERENCE = {"theta[0]": (6.1505, 5.6159), "theta[1]": (4.9396, 4.6456),
             "theta[2]": (3.9059, 5.2807), "theta[3]": (4.796, 4.7709),
             "theta[4]": (3.6144, 4.6147), "theta[5]": (4.0511, 4.7962),
             "theta[6]": (6.3172, 5.0029), "theta[7]": (4.884, 5.3177),
             "mu": (4.4105, 3.3093), "tau": (3.6021, 3.1985)}


@pytest.mark.slow
def test_auto_fixes_noncentered_eight_schools():
    # The targets: means within 0.1 reference sd, sds within 15%. Auto stops at full
    # rank, importance-corrected; the summary draws for an effective sample size of
    # posterior.SUMMARY_ESS = 4000 (8,941 draws; the first 4000 had an ESS of 1,790): a mean
    # se of 1 / sqrt(4000) = 0.016 sd and an sd se of 1 / sqrt(8000) = 1.1%, with the
    # reference's 0.01 sd: 0.1 is 5 combined standard errors, 15% about 13; plain mean field
    # misses the sds of tau and theta by 19-21% (docs/trust.md).
    fit = ppl.load(MODELS / "eight_schools.ppl").fit()
    assert fit.auto is not None and fit.verdict().level != UNRELIABLE
    summary = fit.summary().to_dict()
    for name, (mean, sd) in REFERENCE.items():
        assert abs(summary[name]["mean"] - mean) < 0.1 * sd, name
        assert abs(summary[name]["sd"] / sd - 1) < 0.15, name


def _auto_example_meets_the_targets(name, seed):
    """models/NAME.ppl fitted under auto at ``seed``, after checking issue 11's targets (0.1 sd
    on means, 15% on sds) against its NUTS reference (benchmarks/example_references.json)."""
    references = json.loads((MODELS.parent / "benchmarks" / "example_references.json")
                            .read_text())["models"][name]["elements"]
    fit = ppl.load(MODELS / f"{name}.ppl").fit(
        json.loads((MODELS / f"{name}.json").read_text()), seed=seed)
    summary = fit.summary().to_dict()
    for element, ref in references.items():
        assert abs(summary[element]["mean"] - ref["mean"]) < 0.1 * ref["sd"], element
        assert abs(summary[element]["sd"] / ref["sd"] - 1) < 0.15, element
    return fit


@pytest.mark.slow
def test_auto_checks_a_mean_field_usable_with_care_with_full_rank():
    # models/robust_regression.ppl, seed 1: mean field usable with care (k̂ 0.56), corrected
    # with an ESS of 4,105 from 12,475 draws, still had nu (Student-t degrees of freedom)
    # 0.119 NUTS sds off and its sd 30% short: the guide's log-normal tail is lighter than
    # the posterior's. Auto now checks such a fit with full rank: reliable (k̂ 0.37), 0.035 sd
    # and 12%. Reference: NumPyro NUTS, 8000 draws, bulk ESS of nu 5068
    # (benchmarks/example_references.json): its mean is good to 0.014 sd, its sd to about 3%
    # (nu's kurtosis); the summary's ESS of 4000 adds 0.016 sd and 1.1%. Issue 11's targets,
    # 0.1 sd and 15%.
    fit = _auto_example_meets_the_targets("robust_regression", seed=1)
    assert [t.family for t in fit.auto.tried] == ["meanfield", "fullrank"]
    assert fit.auto.tried[0].level == CARE and fit.auto.chosen == 1


@pytest.mark.slow
def test_auto_goes_past_a_reliable_flow_on_weights_that_carry_little():
    # models/varying_slopes.ppl, seed 1: full rank skipped, the flow reliable (k̂ 0.48) on
    # weights with an ESS of 35%, corrected to rho 0.108 NUTS sds off and 10.9% short; the last
    # rung (flow:4) 0.053 and 7.5%. Reference: NumPyro NUTS, 8000 draws with a bulk ESS of at
    # least 971 per element (benchmarks/example_references.json): means good to 0.032 sd at
    # worst; issue 11's targets, 0.1 sd and 15%.
    fit = _auto_example_meets_the_targets("varying_slopes", seed=1)
    assert [(t.family, t.level) for t in fit.auto.tried][2] == ("flow", RELIABLE)
    assert fit.auto.tried[-1].family == "flow:4"


@pytest.mark.slow
def test_auto_on_centered_eight_schools_meets_the_targets_with_default_options():
    # The same posterior as the noncentered model's (REFERENCE), default options (seed 0, 1000
    # draws). Mean field and full rank cannot follow the funnel; auto skips full rank (the
    # Gaussian it would start from has an importance ESS of a few % of its draws) and fits the
    # scaled family (ppl/guides/scaled.py), whose layer is the funnel's shape: on this stream
    # k̂ 0.24, reliable, with an importance ESS of about 2500 of 4000 (docs/history/trust-log.md,
    # "Twelfth attempt"; seeds 0-9: scaled chosen on all, worst 0.075 sd on means, 7.4% on sds). The
    # corrected summary draws for an ESS of posterior.SUMMARY_ESS = 4000, a Monte Carlo error
    # of about 1 / sqrt(4000) = 0.016 sd on a mean and 1.1% on an sd; measured 0.066 and 4.0%,
    # two and ten such errors inside the targets (0.1 sd, 15%).
    fit = ppl.compile(CENTERED).fit(MODELS / "eight_schools.json")
    assert [t.family for t in fit.auto.tried] == ["meanfield", "fullrank", "scaled"]
    assert fit.auto.tried[1].level == "skipped"
    summary = fit.summary().to_dict()
    for name, (mean, sd) in REFERENCE.items():
        assert abs(summary[name]["mean"] - mean) < 0.1 * sd, name
        assert abs(summary[name]["sd"] / sd - 1) < 0.15, name


def _change_point_reference(data):
    """Posterior means and sds of e1 and e2 in models/change_point.ppl, exactly: the switch
    point summed out, the rates on a 400 x 400 grid from at least 4.8 posterior sds below the
    means to 7.6 above (the rates' posterior is a Gamma mixture of shape about 30: the mass
    outside is below 1e-12), spaced 0.04 sd: the Riemann sum's error is far below a Monte
    Carlo error."""
    y, T = np.asarray(data["y"]), data["T"]
    e1 = np.linspace(1.0, 8.0, 400)[:, None, None]
    e2 = np.linspace(0.1, 2.5, 400)[None, :, None]
    before = np.concatenate([[0], np.cumsum(y)])[:T]      # counts before each switch point s
    s = np.arange(T)
    # Exponential(0.5) priors, DiscreteUniform switch point, Poisson counts (y! dropped)
    log_p = logsumexp(before * np.log(e1) - s * e1 + (y.sum() - before) * np.log(e2)
                      - (T - s) * e2, axis=2) - 0.5 * e1[..., 0] - 0.5 * e2[..., 0]
    weights = np.exp(log_p - log_p.max())
    weights /= weights.sum()
    moments = {}
    for name, grid in (("e1", e1[..., 0]), ("e2", e2[..., 0])):
        mean = float(np.sum(weights * grid))
        moments[name] = (mean, float(np.sqrt(np.sum(weights * (grid - mean) ** 2))))
    return moments


@pytest.mark.slow
def test_auto_stops_at_mean_field_on_change_point_whose_weights_are_nearly_equal():
    # Mean field's k̂ is 1.08 but its weights have an ESS of 99.1% of their 4000 draws
    # (verdict.BULK_ESS): the rates' posterior, a mixture over the switch point, is near
    # Gaussian, and auto used to fit full rank and the flow after it (k̂ 1.49 and 0.89) for
    # the same ELBO to 0.01 nats, at 3.4 times the CPU (docs/history/trust-log.md, "Sixteenth
    # probe"). Issue 11's targets (0.1 sd, 15%) against the exact posterior: the guide's own
    # summary from 1000 draws has a Monte Carlo error of 0.032 sd on a mean and 2.2% on an sd;
    # measured 0.038 sd and 2.8%.
    data = json.loads((MODELS / "change_point.json").read_text())
    fit = ppl.load(MODELS / "change_point.ppl").fit(data)
    assert [t.family for t in fit.auto.tried] == ["meanfield"]
    assert fit.khat >= fit.psis.threshold and fit.verdict().level == CARE
    summary = fit.summary().to_dict()
    for name, (mean, sd) in _change_point_reference(data).items():
        assert abs(summary[name]["mean"] - mean) < 0.1 * sd, name
        assert abs(summary[name]["sd"] / sd - 1) < 0.15, name


@pytest.mark.slow
def test_four_starts_flag_a_two_mode_posterior():
    fit = ppl.compile(BIMODAL).fit({"y": 4.0}, starts=4)
    # Four starts in two modes 160 posterior sds apart: the chance that all four land in the
    # same mode by symmetry is 2 / 16; seed 0's starts do not (their fitted means are printed
    # by fit.starts.line()).
    assert fit.starts.disagree == ("x",)
    assert fit.verdict().level == UNRELIABLE
    assert "the starts disagree on x" in fit.verdict().line


@pytest.mark.slow
def test_four_starts_pass_a_unimodal_posterior():
    fit = ppl.compile(UNIMODAL).fit(UNIMODAL_DATA, starts=4)
    assert fit.starts.disagree == ()
    # The spread of agreeing starts is the sd of 4 means, each off by optimizer jitter j of
    # about 0.03 posterior sd (tests/stats/test_posteriors.py) and, were the starts' summary
    # draws independent, a Monte Carlo error of 1 / sqrt(1000) = 0.032 sd: at most
    # sqrt(0.03^2 + 0.032^2) = 0.044 per start. The sd of 4 normal values is below
    # sqrt(chi2_3(1 - 1e-4) / 3) = 2.65 times theirs with probability 1 - 1e-4: 0.12, tighter
    # than disagree == () above (MAX_SPREAD, 0.3). Measured, seeds 0-2: 0.003-0.009.
    assert max(fit.starts.spread.values()) < 0.12
    assert "disagree" not in fit.verdict().line


def test_starts_are_reproducible_and_report_the_best_elbo(monkeypatch):
    from ppl.infer import ladder, starts
    compared = []

    def compare(*args, **kwargs):   # the starts' ELBO standard errors, which the report omits
        compared.append(kwargs.get("elbo_ses", args[5] if len(args) > 5 else None))
        return original(*args, **kwargs)
    original = starts.compare
    monkeypatch.setattr(starts, "compare", compare)
    model = ppl.compile(UNIMODAL)
    first = model.fit(UNIMODAL_DATA, starts=2, window=20, iter=400)
    second = model.fit(UNIMODAL_DATA, starts=2, window=20, iter=400)
    # everything but the wall times
    assert first.starts.elbos == second.starts.elbos
    assert (first.starts.spread, first.starts.khats) == (second.starts.spread, second.starts.khats)
    np.testing.assert_array_equal(first.result.mu, second.result.mu)
    # each start's ELBO on its k̂ draws; the reported one's the highest, or within a tie of it
    # (ladder.tie of the two standard errors, 0.02 nats at least) with the smallest k̂ of those
    elbos, khats = np.array(first.starts.elbos), np.array(first.starts.khats)
    assert auto.elbo_on_khat_draws(first)[0] == elbos[first.starts.best]
    ses = np.asarray(compared[0], dtype=float)
    top = int(np.argmax(elbos))
    ties = elbos >= elbos[top] - np.array([ladder.tie(se, ses[top]) for se in ses])
    assert ties[first.starts.best] and khats[first.starts.best] == khats[ties].min()


def test_starts_zero_or_negative_is_an_option_error():
    for bad in (0, -3):
        with pytest.raises(ppl.PplError, match="option starts: must be a positive integer"):
            ppl.compile(UNIMODAL).fit(UNIMODAL_DATA, starts=bad)


# A normal model's mean and scale from three points with a HalfCauchy(5) scale: sigma's
# posterior falls off as sigma^-4, an exponential tail in log sigma that a Gaussian guide's
# draws rarely reach, so k̂ from them is small while the corrected sds are 25-42% short
# (docs/trust.md, "Known limits"). The exact moments are a quadrature on a grid of (mu, log
# sigma): the grid's spacing (0.067 in mu, 0.008 in log sigma) and its ends (mu within 30 sds,
# sigma up to e^11, whose tail beyond holds under 1e-13 of sigma's second moment) put its error
# far below the 15% and 0.1 sd checked.
HEAVY_SCALE = """
data y: real[3]
sample mu ~ Normal(0, 10)
sample sigma ~ HalfCauchy(5)
observe y ~ Normal(mu, sigma)
"""
HEAVY_SCALE_DATA = {"y": [1.2, 2.9, -0.4]}


def heavy_scale_moments() -> dict[str, tuple[float, float]]:
    from scipy import stats
    mu, log_sigma = np.linspace(-40, 40, 1201)[:, None], np.linspace(-5, 11, 2001)[None, :]
    sigma = np.exp(log_sigma)
    log_p = stats.norm.logpdf(mu, 0, 10) + stats.halfcauchy.logpdf(sigma, scale=5) + log_sigma
    for y in HEAVY_SCALE_DATA["y"]:
        log_p = log_p + stats.norm.logpdf(y, mu, sigma)
    p = np.exp(log_p - logsumexp(log_p))
    moments = {}
    for name, values in (("mu", mu), ("sigma", sigma)):
        mean = float(np.sum(p * values))
        moments[name] = (mean, float(np.sqrt(np.sum(p * (values - mean) ** 2))))
    return moments


def test_the_heavy_scale_quadrature_matches_its_documented_moments():
    moments = heavy_scale_moments()
    assert moments["mu"] == pytest.approx((1.19, 1.96), abs=0.005)
    assert moments["sigma"] == pytest.approx((3.00, 2.37), abs=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [8, 9, 10, 17])
def test_a_mean_field_that_misses_a_heavy_tail_is_told_so_by_heavier_tailed_draws(seed):
    # at these seeds mean field's own k̂ is 0.37-0.57 (corrected) and its corrected sd of sigma
    # 32-40% short; the same frame under Student-t noise puts it 25-32% short of the t's, past
    # the 15% target plus three standard errors of the two weighted estimates (about 0.09)
    fit = ppl.compile(HEAVY_SCALE).fit(HEAVY_SCALE_DATA, seed=seed, guide="meanfield")
    exact = heavy_scale_moments()["sigma"]
    assert fit.corrected and fit.summary().to_dict()["sigma"]["sd"] < 0.85 * exact[1]
    assert fit.verdict().level == UNRELIABLE
    assert "tails are heavier than the guide's" in fit.verdict().line
    assert fit.verdict().line.endswith("try --guide flow")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [9, 10])
def test_auto_climbs_past_a_mean_field_that_misses_a_heavy_tail(seed):
    # mean field was `reliable` or `usable with care` with sigma's sd 32-40% short, and auto
    # stopped there; told otherwise by the tail check, it climbs on (the t in full rank's
    # frame, or the flows) to within issue 11's targets of the quadrature
    fit = ppl.compile(HEAVY_SCALE).fit(HEAVY_SCALE_DATA, seed=seed)
    assert fit.auto.tried[0].family == "meanfield" and len(fit.auto.tried) > 1
    summary, exact = fit.summary().to_dict(), heavy_scale_moments()
    for name, (mean, sd) in exact.items():
        assert abs(summary[name]["mean"] - mean) / sd < 0.1
        assert abs(summary[name]["sd"] / sd - 1) < 0.15


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tail_check_leaves_a_gaussian_posterior_alone(seed):
    # mean field contains this posterior: both proposals' corrected summaries estimate it, and
    # their gap is Monte Carlo error, inside the targets plus three standard errors
    y = np.random.default_rng(1).normal(3.0, 1.0, size=20)
    fit = ppl.compile(GAUSSIAN).fit({"N": 20, "y": y.tolist()}, seed=seed, guide="meanfield")
    assert fit.corrected and fit.verdict().level == RELIABLE
    assert fit._tails_disagree() is None


@pytest.mark.slow
def test_the_tail_check_reads_only_trusted_weights_that_fit_in_memory_on_a_corrected_fit(
        monkeypatch):
    # seed 8 of the heavy tail above, which the check catches: it is not made where the t's
    # own weights cannot be trusted (tails.trusted), where the summary's draws do not fit in
    # memory (the summary's error says so), nor on a summary that is not corrected
    # (--correct none: _weights_disagree compares it with the weighted one instead; here it
    # finds sigma's sd off first, so this fit does not tell whether the tail check would run)
    from ppl import memory
    from ppl.infer import tails
    fit = ppl.compile(HEAVY_SCALE).fit(HEAVY_SCALE_DATA, seed=8, guide="meanfield")
    assert fit._tails_disagree() is not None
    for module, name, stand_in in ((tails, "trusted", lambda p: False),
                                   (memory, "affordable_draws", lambda *a, **k: 100)):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, stand_in)
            fit._cache.pop("tails_disagree")
            assert fit._tails_disagree() is None
    plain = ppl.compile(HEAVY_SCALE).fit(HEAVY_SCALE_DATA, seed=8, guide="meanfield",
                                         correct="none")
    assert not plain.corrected and "tails are heavier" not in plain.verdict().line


@pytest.mark.slow
def test_a_funnels_heavy_tailed_sd_is_not_called_reliable():
    # Neal's funnel: x's sd is sqrt(E[exp(v)]) = exp(2.25) = 9.49 exactly, made by v above 6
    # (the top 2.3%), which the guide's draws rarely reach. Auto's scaled fit at seed 0 has
    # k̂ 0.25 and x's sds 24-46% short (beyond issue 11's 15% on every x; 38% or more before
    # the rounds' larger L-BFGS-B memory, fixed_draws.MEMORY); the
    # sd's own Monte Carlo error says so (verdict.NOISY_SD: 20% at x[5], where posteriordb's
    # auto fits at seeds 0-4 were at 1.0-3.1% but gp_pois_regr's Kmat at 8-14%, and the
    # examples' at 1.0-5.6%, docs/trust.md). It was `reliable: means and sds are close to the
    # posterior`.
    model = ppl.compile("sample v ~ Normal(0, 3)\nsample x: real[9] ~ Normal(0, exp(v / 2))\n")
    fit = model.fit({}, seed=0)
    rows = fit.summary().rows
    assert fit.khat < 0.5 and max(rows[f"x[{i}]"][1] for i in range(9)) < 0.85 * np.exp(2.25)
    line = fit.verdict().line
    assert fit.verdict().level == CARE and "the corrected sd of x[" in line
    assert line.endswith("its quantiles are the better summary")


# A logistic regression whose classes x1 nearly separates (30 rows, one label flipped): the
# posterior of beta[0] has the prior's heavy right tail. Reference: NumPyro NUTS, 4 chains of
# 25,000 draws after 2,000 warm-up, r_hat 1.0002, ESS of beta[0] 14,139: mean 13.88, sd 9.65,
# good to 0.008 sd and 0.6% (its own Monte Carlo error; 4 x 5,000 draws gave 13.73 / 9.41).
QUASI_SEPARATED = """
data N: int
data K: int
data X: real[N, K]
data y: int[N]
sample alpha ~ StudentT(3, 0, 2.5)
sample beta: real[K] ~ StudentT(3, 0, 2.5)
observe y ~ Bernoulli(logit=alpha + X @ beta)
"""


def quasi_separated_data() -> dict:
    rng = np.random.default_rng(808)
    X = rng.normal(0, 1, (30, 3))
    y = (X[:, 0] + 0.1 * rng.normal(0, 1, 30) > 0).astype(int)
    flipped = np.argmin(np.abs(X[:, 0]))
    y[flipped] = 1 - y[flipped]
    return {"N": 30, "K": 3, "X": X.tolist(), "y": y.tolist()}


@pytest.mark.slow
def test_auto_does_not_return_a_mean_field_whose_tails_the_full_rank_check_refutes():
    # seed 4 (seed 1 until the first window's step size without a search, 2026-12-06; with
    # mean field's control variate, the same day, seed 4 takes this path again, its mean
    # field at k̂ 0.59 and auto's flow 0.03 sd and 11% off): mean
    # field usable with care (k̂ 0.56) on thin weights, checked by full rank, which is
    # unreliable by its tail check; auto returned the mean field anyway, `usable with care`
    # with beta[0] 0.29 NUTS sds off and its sd 50% short. The mean field is a Gaussian too:
    # the climb now goes on (to the flow), within issue 11's targets of NUTS (0.1 sd, 15%; the
    # summary's own error is about 0.03 sd, the reference's 0.008). On most other seeds no
    # check fires and auto still returns such a Gaussian as reliable or usable with care (21
    # of seeds 0-29; docs/history/trust-log.md, "The quasi-separated regression's seeds")
    fit = ppl.compile(QUASI_SEPARATED).fit(quasi_separated_data(), seed=4)
    tried = fit.auto.tried
    assert tried[0].family == "meanfield" and tried[0].light_tails
    assert tried[1].family == "fullrank" and tried[1].level == UNRELIABLE
    assert fit.result.guide.name != "meanfield" and len(tried) > 2
    assert "its tails too light (the Gaussian rung's check)" in fit.auto.line()
    # its k̂ alone was not why
    assert f"fullrank k̂ {tried[1].khat:.2f}, unreliable" in fit.auto.line()
    assert tried[1].khat < 0.5
    beta0 = fit.summary().to_dict()["beta[0]"]
    assert abs(beta0["mean"] - 13.88) / 9.65 < 0.1
    assert abs(beta0["sd"] / 9.65 - 1) < 0.15


# A non-centered hierarchical model with six groups and tau ~ HalfCauchy(1) (a funnel, as
# eight schools, at another scale): tau's posterior has exponential tails on the log scale,
# which a Gaussian's draws do not reach. Reference by quadrature: y_j ~ Normal(0, sqrt(1 +
# tau^2)) with eta integrated out, so p(tau | y) is one-dimensional.
FUNNEL6 = """
data J: int
data y: real[J]
data sig: real<lower=0>[J]
sample tau ~ HalfCauchy(1)
sample eta: real[J] ~ Normal(0, 1)
observe y ~ Normal(tau * eta, sig)
"""
FUNNEL6_DATA = {"J": 6, "sig": [1.0] * 6,
                "y": [0.83462372, -1.175369, -1.8881884, -3.50996469, -0.4238786, 1.49712765]}


def _funnel6_tau_moments() -> tuple[float, float]:
    from scipy import integrate, stats
    y, s = np.array(FUNNEL6_DATA["y"]), np.array(FUNNEL6_DATA["sig"])

    def density(t):
        return 2 / np.pi / (1 + t * t) * np.prod(stats.norm.pdf(y, 0, np.sqrt(s * s + t * t)))
    moments = [integrate.quad(lambda t: t ** k * density(t), 0, np.inf, limit=500)[0]
               for k in range(3)]
    mean = moments[1] / moments[0]
    return mean, float(np.sqrt(moments[2] / moments[0] - mean ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [25, 29])
def test_a_mean_field_whose_full_rank_check_is_skipped_is_checked_by_scaled(seed):
    # mean field usable with care on thin weights, its check by full rank skipped (the
    # Gaussian full rank would start from had an ESS of 6-8%): mean field stood, its corrected
    # sd of tau 18.5% and 15.9% short of quadrature (1.484 / 0.722; seeds 3 and 5 until the
    # first window's step size without a search, then 20 and 25 until mean field's control
    # variate, both 2026-12-06; 25 and 29, the first two of seeds 0-40 that reproduce it now).
    # Now the rung after full rank, scaled, checks it: 3-8% off.
    # Within issue 11's targets (0.1 sd, 15%); the corrected summary's own error is about 0.04
    # sd and 3% on the sd (an ESS over 3,000 of its draws).
    mean, sd = _funnel6_tau_moments()
    fit = ppl.compile(FUNNEL6).fit(FUNNEL6_DATA, seed=seed)
    assert [(t.family, t.level) for t in fit.auto.tried][:2] == [("meanfield", CARE),
                                                                ("fullrank", "skipped")]
    assert fit.verdict().level in (RELIABLE, CARE) and fit.result.guide.name == "scaled"
    tau = fit.summary().to_dict()["tau"]
    assert abs(tau["mean"] - mean) / sd < 0.1
    assert abs(tau["sd"] / sd - 1) < 0.15


# A three-component Normal mixture whose components are 1-2 sds apart (200 points from
# weights 0.3, 0.4, 0.3 at -2, 0, 3, sd 1; ordered means): the posterior's tails (components
# trading points and weight) are heavier than any Gaussian rung's. Reference: NumPyro NUTS,
# 4 x (2,000 + 10,000) draws at target acceptance 0.95, r_hat <= 1.003, ESS >= 2,067, 2
# divergences in 40,000 (mean, sd).
MIX3 = """
data N: int
data y: real[N]
sample w: real[3] ~ Dirichlet([1.0, 1.0, 1.0])
sample mu: ordered[3] ~ Normal(0, 5)
sample sigma ~ HalfNormal(2)
observe y ~ Mixture(w, Normal(mu, sigma))
"""
MIX3_NUTS = {"mu[0]": (-1.774, 0.552), "mu[1]": (0.170, 0.800), "mu[2]": (2.698, 0.441),
             "sigma": (1.175, 0.228), "w[0]": (0.362, 0.147), "w[1]": (0.342, 0.135),
             "w[2]": (0.296, 0.085)}


def mix3_data() -> dict:
    rng = np.random.default_rng(11)
    component = rng.choice(3, 200, p=[0.3, 0.4, 0.3])
    return {"N": 200, "y": rng.normal(np.array([-2.0, 0.0, 3.0])[component], 1.0).tolist()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 7])
def test_a_corrected_summary_whose_own_weights_are_far_past_the_threshold_is_unreliable(seed):
    # `usable with care` before (scaled at seeds 5 and 7; k̂ 0.65 and 0.52 from 4,000 draws),
    # its corrected sds 49-53% short of NUTS; k̂ of the summary's own 32,000 draws 1.05 and
    # 1.06 (verdict.SUMMARY_KHAT_BAD). Seeds 0 and 2 until the first window's step size without
    # a search (2026-12-06), which moved every seed's fit
    fit = ppl.compile(MIX3).fit(mix3_data(), seed=seed)
    summary = fit.summary().to_dict()
    assert max(abs(summary[k]["sd"] / sd - 1) for k, (_, sd) in MIX3_NUTS.items()) > 0.15
    assert fit.verdict().level == UNRELIABLE
    assert "k̂ of the corrected summary's own" in str(fit.verdict())

