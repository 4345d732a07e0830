"""The early stop on reliable importance weights (infer/early.py) and its place in the fit loop."""
import numpy as np
import pytest

from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.guides import MEAN_FIELD
from ppl.infer import advi, early
from ppl.options import FitOptions
from tests.unit.test_advi import gaussian

# Conjugate: y_i ~ Normal(m, 1) with m ~ Normal(0, 10). The posterior of m is Gaussian, so the
# mean-field guide is exact and its weights are constant up to the guide's error.
CONJUGATE = """data N: int
data y: real[N]
sample m ~ Normal(0, 10)
observe y ~ Normal(m, 1)
"""
# b given a is 100x tighter than a: a correlation of 0.995, which a mean-field guide cannot
# follow (its sds are the conditional ones), so its weights are far from reliable (k̂ > 0.7).
CORRELATED = """sample a ~ Normal(0, 1)
sample b ~ Normal(a, 0.1)
"""


def compiled(text, data):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values)


def conjugate():
    y = np.random.default_rng(0).normal(1.5, 1.0, 20)
    return compiled(CONJUGATE, {"N": 20, "y": y.tolist()}), y


def test_fires_on_a_gaussian_posterior_where_mean_field_is_exact(rng):
    model, y = conjugate()
    result = advi.fit(model, FitOptions(), rng)
    assert result.converged and result.reason.startswith(early.WEIGHTS_RELIABLE)
    assert "k̂" in result.reason and "ESS" in result.reason
    # checks begin after the first whitening (one window) and its search: the second window
    assert result.steps == 2 * FitOptions().window
    # the exact posterior: precision 1/100 + 20, mean sum(y) / that; within 0.5 posterior sds
    # (a smoke test of what is returned, the last window's mean iterate; accuracy is measured
    # against NUTS in docs/performance.md)
    precision = 1 / 100 + 20
    assert abs(result.mu[0] - y.sum() / precision) < 0.5 / np.sqrt(precision)


def test_never_fires_with_correct_none(rng):
    # the summary is then the guide's own, so only the ELBO rule may stop
    model, _ = conjugate()
    result = advi.fit(model, FitOptions(correct="none"), rng)
    assert result.reason == advi.CONVERGED
    assert early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(correct="none"),
                                         rng) is None


def test_never_fires_when_khat_is_high_and_the_fit_is_unchanged(monkeypatch):
    model = compiled(CORRELATED, {})
    options = FitOptions()
    checked = []
    real_check = early.ReliableWeights.check

    def spy(self, log_joint, guide, theta):
        reason, policy = real_check(self, log_joint, guide, theta)
        checked.append(reason)
        return reason, policy
    monkeypatch.setattr(early.ReliableWeights, "check", spy)
    with_rule = advi.fit(model, options, np.random.default_rng(1))
    assert checked and not any(checked)           # checked, and never reliable
    assert with_rule.reason == advi.CONVERGED
    # its own stream: a fit the rule never stops is bit for bit the fit without it
    monkeypatch.setattr(early.ReliableWeights, "for_fit", staticmethod(lambda *a: None))
    without = advi.fit(model, options, np.random.default_rng(1))
    assert with_rule.steps == without.steps
    np.testing.assert_array_equal(with_rule.theta, without.theta)
    np.testing.assert_array_equal(with_rule.elbo, without.elbo)


def test_check_on_an_exact_and_on_a_narrow_guide(rng):
    model, y = conjugate()
    policy = early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(), rng)
    precision = 1 / 100 + 20
    exact = np.array([y.sum() / precision, -0.5 * np.log(precision)])
    reason, _ = policy.check(model.log_joint, MEAN_FIELD, exact)
    # exact guide: the log weights are constant up to rounding, so the ESS is all the draws
    assert reason.startswith(f"{early.WEIGHTS_RELIABLE} (k̂ ")
    assert reason.endswith(f", ESS 100% of {early.CHECK_DRAWS} draws)")
    narrow = exact - np.array([0.0, np.log(3.0)])    # sds 3x too small: heavy-tailed weights
    assert policy.check(model.log_joint, MEAN_FIELD, narrow)[0] is None
    # collapsed far out (mean field on kilpisjarvi after a step size of 10): every log weight
    # near -4e19 rounds to one value, which is no evidence of bounded weights
    collapsed = np.array([2e9, -30.0])
    assert policy.check(model.log_joint, MEAN_FIELD, collapsed)[0] is None


def test_a_check_goes_on_to_all_its_draws_only_past_the_screen_of_the_last_that_failed(
        monkeypatch):
    # sds 0.65x the posterior's: the 400-draw screen passes (ESS 62%), all 8,000 fail (k̂
    # above 0.5); the same guide again stops at the screen, since the checks weight the same
    # draws; a guide whose screen does better goes on (0.75x: reliable, and a stop)
    model, y = conjugate()
    policy = early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(),
                                           np.random.default_rng(0))
    precision = 1 / 100 + 20
    exact = np.array([y.sum() / precision, -0.5 * np.log(precision)])
    draws, real_log_weights = [], early.log_weights
    monkeypatch.setattr(early, "log_weights",
                        lambda *args: draws.append(len(args[3])) or real_log_weights(*args))
    narrow = exact + np.array([0.0, np.log(0.65)])
    reason, failed = policy.check(model.log_joint, MEAN_FIELD, narrow)
    assert reason is None and draws == [early.SCREEN_DRAWS,
                                        early.CHECK_DRAWS - early.SCREEN_DRAWS]
    assert failed.bar > 0.5 * early.SCREEN_DRAWS and policy.bar == -np.inf
    draws.clear()
    assert failed.check(model.log_joint, MEAN_FIELD, narrow) == (None, failed)
    assert draws == [early.SCREEN_DRAWS]
    draws.clear()
    reason, _ = failed.check(model.log_joint, MEAN_FIELD, exact + np.array([0.0, np.log(0.75)]))
    assert reason.startswith(early.WEIGHTS_RELIABLE) and len(draws) == 3


def test_not_for_a_bare_log_density_nor_a_large_model(rng, monkeypatch):
    # no model: no size to bound the check's cost by
    assert early.ReliableWeights.for_fit(gaussian([0.0], [1.0]), MEAN_FIELD, FitOptions(),
                                         rng) is None
    model, _ = conjugate()
    monkeypatch.setattr(early, "CHECK_ELEMENTS", early.CHECK_DRAWS - 1)
    assert early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(), rng) is None


def test_never_fires_with_a_tighter_tol_than_the_default(rng):
    # a tighter tol asks for a more precise optimum than reliable weights need
    model, _ = conjugate()
    result = advi.fit(model, FitOptions(tol=1e-4), rng)
    assert result.reason == advi.CONVERGED


def test_not_for_a_model_with_a_discrete_latent(rng):
    model = compiled("data y: real\nsample s: int ~ Bernoulli(0.5)\nobserve y ~ Normal(s, 1)\n",
                     {"y": 0.3})
    assert early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(), rng) is None


def test_a_flow_stops_on_nearly_equal_weights_only(rng):
    # with the reliable-weights rule a flow's checks cost 8,000 draws of its layers (and of a
    # GP's Cholesky a draw) at most windows without stopping it where flows are needed (k̂
    # above 0.5); nearly equal weights (verdict.BULK_ESS) are what its screen asks for
    from ppl.guides import family
    model, y = conjugate()
    for name in ("flow", "flow:4"):
        policy = early.ReliableWeights.for_fit(model, family(name, model.dim), FitOptions(), rng)
        assert policy.equal_only
    for name in ("meanfield", "fullrank"):
        policy = early.ReliableWeights.for_fit(model, family(name, model.dim), FitOptions(), rng)
        assert not policy.equal_only
    # a flow that is the exact posterior (its layers the identity, as a new flow's are): its
    # weights are equal to rounding, and it stops on them, not on reliable weights
    flow = family("flow", model.dim)
    policy = early.ReliableWeights.for_fit(model, flow, FitOptions(), rng)
    precision = 1 / 100 + 20
    theta = flow.init(model.dim, np.sqrt(1 / precision))    # mu, then A = sd I (D = 1)
    theta[0] = y.sum() / precision
    reason, _ = policy.check(model.log_joint, flow, theta)
    assert reason.startswith(f"{early.WEIGHTS_EQUAL} (k̂ ")
    assert reason.endswith(f", ESS 100.0% of {early.CHECK_DRAWS} draws)")
    # three times too wide: bounded weights, but an ESS of sqrt(2 r^2 - 1) / r^2 = 46% at
    # r = 3 (verdict.BULK_ESS), under the screen's 99%: no stop
    theta[1] = 3.0 * np.sqrt(1 / precision)
    assert policy.check(model.log_joint, flow, theta)[0] is None


# A regression whose posterior is Gaussian: full rank is exact, mean field is not (a and b are
# correlated through x's mean), so a full-rank fit is fitted in a warm start's frame.
REGRESSION = """data N: int
data x: real[N]
data y: real[N]
sample a ~ Normal(0, 10)
sample b ~ Normal(0, 10)
observe y ~ Normal(a + b * x, 1)
"""


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, 30)
    return {"N": 30, "x": x.tolist(), "y": (1.0 + 0.5 * x + rng.normal(size=30)).tolist()}


def test_a_stop_is_confirmed_on_the_very_draws_of_the_fits_own_khat(monkeypatch):
    # the confirmation's weights are the fit's own (fit.log_weights(), bit for bit), so a fit
    # stopped by the rule never reports a k̂ above the threshold of correction; in mean field's
    # own coordinates and in full rank's warm-start frame (mapped back as the result is)
    import ppl
    confirmations = []
    real_log_weights = early.log_weights

    def spy(log_joint, guide, theta, eps, step):
        weights = real_log_weights(log_joint, guide, theta, eps, step)
        if len(eps) == 4000:   # the fit's own draws (psis.PSIS_DRAWS); checks take 400, 7600
            confirmations.append(weights)
        return weights
    monkeypatch.setattr(early, "log_weights", spy)
    y = np.random.default_rng(0).normal(1.5, 1.0, 20)
    for text, data, guide in ((CONJUGATE, {"N": 20, "y": y.tolist()}, "meanfield"),
                              (REGRESSION, _regression_data(), "fullrank")):
        confirmations.clear()
        fit = ppl.compile(text).fit(data, guide=guide, seed=3)
        # taken before the fit's own k̂ is computed: posterior.py, when first imported after
        # the monkeypatch (as ppl imports it lazily), binds the spy too, and its own weights
        # then were the last entry, compared with themselves
        confirmation = confirmations[-1]
        assert fit.result.reason.startswith(early.WEIGHTS_RELIABLE)
        assert fit.corrected
        np.testing.assert_array_equal(confirmation, fit.log_weights())


def test_a_check_the_fits_own_draws_do_not_confirm_does_not_stop(rng, monkeypatch):
    # (ar1, seed 2: a check at 200 steps gave k̂ 0.41 on its 8,000 draws, the fit's own 4,000
    # then 1.04): the fit goes on by the ELBO rule, bit for bit the fit without the checks
    model, _ = conjugate()
    monkeypatch.setattr(early.ReliableWeights, "_confirmed", lambda *a: False)
    checked = advi.fit(model, FitOptions(), np.random.default_rng(1))
    assert checked.reason == advi.CONVERGED
    monkeypatch.setattr(early.ReliableWeights, "for_fit", staticmethod(lambda *a: None))
    without = advi.fit(model, FitOptions(), np.random.default_rng(1))
    np.testing.assert_array_equal(checked.theta, without.theta)
    assert checked.steps == without.steps


def test_a_flow_whose_own_draws_do_not_confirm_a_check_checks_no_more(monkeypatch):
    # logistic_regression's flow, seed 1: the check's 8,000 draws at an ESS of 99.4% and the
    # fit's own 4,000 at 98.3-98.8% disagreed at every window, 12,000 draws each time; after
    # one such check a flow's policy gives up, and the fit runs on as without the checks
    model, _ = conjugate()
    checks = []
    real_check = early.ReliableWeights.check

    def counted(self, *args):
        checks.append(self.equal_only)
        return real_check(self, *args)
    monkeypatch.setattr(early.ReliableWeights, "check", counted)
    monkeypatch.setattr(early.ReliableWeights, "_confirmed", lambda *a: False)
    fit = advi.fit(model, FitOptions(guide="flow"), np.random.default_rng(1))
    monkeypatch.setattr(early.ReliableWeights, "for_fit", staticmethod(lambda *a: None))
    without = advi.fit(model, FitOptions(guide="flow"), np.random.default_rng(1))
    np.testing.assert_array_equal(fit.theta, without.theta)
    # the flow's phase checked once, gave up, and checked no more
    assert checks.count(True) == 1


def test_a_non_finite_weight_fails_both_rules_whatever_the_ess():
    # one draw of 8000 the target gives no density (log weight -inf) or that overflowed (NaN):
    # the other weights are equal, so the ESS (7999) passes both rules' bars, but the verdict
    # would count the non-finite draw, so neither rule may stop on it
    from ppl.infer.psis import psis
    for bad in (-np.inf, np.nan):
        log_weights = np.zeros(early.CHECK_DRAWS)
        log_weights[3] = bad
        p = psis(log_weights)
        assert p.n_nonfinite == 1 and p.ess >= 0.99 * early.CHECK_DRAWS
        assert not early._equal(p, early.CHECK_DRAWS)
        assert not early._reliable(p, early.CHECK_DRAWS, khat=np.inf)


def test_a_non_finite_weight_among_the_fits_own_draws_is_not_a_confirmation(monkeypatch):
    # the confirmation's weights are those of the fit's own k̂: a draw there of no density
    # (-inf) or an overflow (NaN) fails it, though the finite weights are equal (k̂ of
    # constant weights is below any threshold and their ESS is all of them)
    policy = early.ReliableWeights(np.random.PCG64(0), eps_dim=1, chunk=100, seed=0,
                                   own_draws=4000)
    for bad, confirmed in ((0.0, True), (-np.inf, False), (np.nan, False)):
        def constant(log_joint, guide, theta, eps, step, bad=bad):
            weights = np.zeros(len(eps))
            weights[7] = bad
            return weights
        monkeypatch.setattr(early, "log_weights", constant)
        assert bool(policy._confirmed(None, None, None)) == confirmed


def test_the_confirmation_asks_for_a_khat_below_the_threshold_of_correction(monkeypatch):
    # a check itself asks for k̂ below KHAT (0.5), but the fit's own draws need only give a
    # k̂ below the threshold under which the summary is corrected (0.7 at 4000 draws): then
    # the stop never ends in a fit its verdict calls unreliable. Log weights k log(1/u) at the
    # 4000 quantiles u of the uniform are Pareto weights of shape k, so k̂ is close to k
    policy = early.ReliableWeights(np.random.PCG64(0), eps_dim=1, chunk=100, seed=0,
                                   own_draws=4000)
    for k, confirmed in ((0.6, True), (0.8, False)):
        def pareto(log_joint, guide, theta, eps, step, k=k):
            return -k * np.log((np.arange(len(eps)) + 0.5) / len(eps))
        monkeypatch.setattr(early, "log_weights", pareto)
        own = early.psis(pareto(None, None, None, np.zeros((4000, 1)), 100))
        assert (early.KHAT < own.khat < own.threshold) == confirmed
        assert bool(policy._confirmed(None, None, None)) == confirmed


def test_a_check_far_short_of_its_bar_or_with_a_non_finite_weight_sets_the_bar(monkeypatch):
    # the screen's 400 draws pass (equal weights), all 8000 do not: a check short of what a
    # stop needs by more than FAR_MISS, or with a non-finite weight, sets the bar at the
    # screen's ESS; one that missed narrowly does not. What a stop needs is ESS_FRACTION of
    # the draws for the reliable-weights rule and BULK_ESS for a flow's nearly equal weights
    from scipy.stats import norm

    def rest_with_ess(fraction):
        # lognormal weights of log sd s have an ESS fraction of exp(-s^2) (to O(1 / n))
        u = (np.arange(early.CHECK_DRAWS - early.SCREEN_DRAWS) + 0.5) / 7600
        return np.sqrt(-np.log(fraction)) * norm.ppf(u)
    one_inf = np.zeros(early.CHECK_DRAWS - early.SCREEN_DRAWS)
    one_inf[5] = -np.inf
    for equal_only, rest, far in ((False, one_inf, True), (True, one_inf, True),
                                  (True, rest_with_ess(0.8), True),
                                  (True, rest_with_ess(0.95), False),
                                  # FAR_MISS (0.9) of the 99% bar is 89.1%: an ESS of 88.4%
                                  # is far, one of 90.4% is not (psis of these weights)
                                  (True, rest_with_ess(0.88), True),
                                  (True, rest_with_ess(0.90), False)):
        def weights(log_joint, guide, theta, eps, step, rest=rest):
            return np.zeros(len(eps)) if len(eps) == early.SCREEN_DRAWS else rest
        monkeypatch.setattr(early, "log_weights", weights)
        policy = early.ReliableWeights(np.random.PCG64(0), eps_dim=1, chunk=100,
                                       equal_only=equal_only)
        reason, after = policy.check(None, None, None)
        assert reason is None
        # (the screen's ESS: all 400 draws, to rounding)
        assert after.bar == (pytest.approx(early.SCREEN_DRAWS) if far else -np.inf)


def test_the_check_at_a_window_end_skips_a_settled_rule_and_drops_a_policy_that_gave_up():
    # (early.check_window: the fit loop's gate on the early stop)
    from ppl.infer.schedule import Iterates, Windows

    class Policy:
        def __init__(self, reason):
            self.reason, self.checked = reason, []

        def check(self, log_joint, guide, theta):
            self.checked.append(theta)
            return self.reason, self
    # the last window kept is the one checked (an older one is still kept for averaging)
    windows = Windows(kept=(Iterates().add(np.array([5.0, 6.0])),
                            Iterates().add(np.array([1.0, 2.0]))))
    assert early.check_window(None, None, None, windows) == (None, None, None)
    settled = Policy(early.WEIGHTS_RELIABLE)
    assert early.check_window(settled, None, None, windows._replace(settled=True)) \
        == (None, None, settled) and not settled.checked
    stop = Policy(early.WEIGHTS_RELIABLE)
    reason, mean, policy = early.check_window(stop, None, None, windows)
    assert (reason, list(mean), policy) == (early.WEIGHTS_RELIABLE, [1.0, 2.0], stop)
    reason, _, policy = early.check_window(Policy(early.GIVE_UP), None, None, windows)
    assert reason is None and policy is None


@pytest.mark.parametrize("ess, reliable", [(0.49, False), (0.5, True)])
def test_reliable_weights_need_half_the_draws_as_their_ess(ess, reliable):
    # ESS_FRACTION (docs/history/performance-log.md, "Fourth attempt"): k̂ well below 0.5
    # is not enough, the weights' ESS must be at least half the draws
    from types import SimpleNamespace
    p = SimpleNamespace(n_nonfinite=0, khat=0.2, ess=ess * early.CHECK_DRAWS)
    assert early._reliable(p, early.CHECK_DRAWS) == reliable


def test_not_for_a_minibatch_fit(rng):
    # under --batch each draw of the check is a pass over all the data
    model, _ = conjugate()
    assert early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(), rng) is not None
    assert early.ReliableWeights.for_fit(model, MEAN_FIELD, FitOptions(batch="N=5"),
                                         rng) is None
