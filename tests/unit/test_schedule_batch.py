"""The convergence rule under --batch (schedule_batch.BatchConvergence, BatchWindows, mean_se)."""
from __future__ import annotations

import numpy as np
import pytest

from ppl.infer import schedule, schedule_batch
from ppl.infer.schedule import CONTINUE, DECAY, STOP
from ppl.infer.schedule_batch import BatchConvergence, BatchWindows, average_se, mean_se

from ._schedule_drive import Guide, drive


def _ar1(rng, K, P, rho):
    """K steps of P independent AR(1) chains with unit marginal variance."""
    x = np.empty((K, P))
    x[0] = rng.standard_normal(P)
    for k in range(1, K):
        x[k] = rho * x[k - 1] + np.sqrt(1 - rho ** 2) * rng.standard_normal(P)
    return x


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_mean_se_matches_the_ar1_standard_error(rho):
    # The standard error of the mean of K AR(1) values is sqrt((1 + rho) / (1 - rho) / K)
    # (unit variance). Averaged over P = 400 chains, the estimate's own Monte Carlo error is
    # about 1.3 / sqrt(P * K / tau) relative (tau = the integrated autocorrelation time, 4 at
    # rho = 0.6; measured from the P estimates' spread: 0.5% at rho 0, 0.8% at 0.6). The 10%
    # allowed is mostly the estimator's own bias: Geyer's initial positive sequence keeps a
    # few noise pairs, +5.6% at rho 0 and +1.4% at 0.6 (K = 400, measured here), plus 4 of
    # those Monte Carlo errors. The naive sd / sqrt(K) is 2x too small at 0.6.
    rng = np.random.default_rng(0)
    K, P = 400, 400
    x = _ar1(rng, K, P, rho)
    want = np.sqrt((1 + rho) / (1 - rho) / K)
    assert np.mean(mean_se(x)) == pytest.approx(want, rel=0.1)
    if rho:
        assert np.mean(x.std(axis=0, ddof=1) / np.sqrt(K)) < 0.6 * want


def test_mean_se_is_never_below_the_independent_case():
    # anticorrelated blocks (+-a about their mean) would give Geyer's sum a variance below
    # gamma_0 (here 0: every pair gamma_2m + gamma_2m+1 is a^2 / K); the floor keeps the
    # independent case's sqrt(gamma_0 / K) = a / sqrt(K), exactly
    K, a = 16, 0.36
    blocks = np.array([[1.0 + a * (-1) ** k, -a * (-1) ** k] for k in range(K)])
    np.testing.assert_allclose(mean_se(blocks), [a / np.sqrt(K)] * 2, rtol=1e-12)
    uneven = np.array([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.5]]).T
    np.testing.assert_allclose(mean_se(uneven), np.sqrt(uneven.var() / len(uneven)), rtol=1e-12)


def test_average_se_scales_with_the_square_root_of_tol():
    assert [average_se(tol) for tol in (1e-5, 1e-3, 1e-1)] == pytest.approx([0.01, 0.1, 1.0])


class _Scaled:
    """A guide whose every coordinate's jitter scale (its guide sd) is ``sd``."""

    def __init__(self, sd):
        self.sd = sd

    def jitter_scale(self, theta):
        return np.full_like(theta, self.sd)


# (amplitude a of 16 alternating blocks, so their mean's standard error is a / 4 exactly; the
# guide's sd; tol; whether precise): the rule's (b), the standard error at most average_se(tol)
# guide sds, on either side of its threshold
PRECISE_TABLE = [(0.36, 1.0, 1e-3, True), (0.44, 1.0, 1e-3, False), (0.72, 2.0, 1e-3, True),
                 (0.88, 2.0, 1e-3, False), (0.036, 1.0, 1e-5, True), (0.044, 1.0, 1e-5, False)]


@pytest.mark.parametrize("a, sd, tol, precise", PRECISE_TABLE)
def test_precise_compares_the_standard_error_in_guide_sds(a, sd, tol, precise):
    blocks = tuple(np.array([3.0 + a * (-1) ** k]) for k in range(16))
    state = BatchWindows(averaging=True, blocks=blocks)
    assert BatchConvergence(tol, 50).precise(state, _Scaled(sd)) is precise


@pytest.mark.parametrize("imprecise", [0, 1])
def test_precise_asks_it_of_every_coordinate(imprecise):
    # one coordinate's standard error 0.44 / 4 = 0.11 guide sds (above 0.1), the other's 0:
    # their mean, 0.055, would pass
    blocks = np.full((16, 2), 3.0)
    blocks[:, imprecise] += 0.44 * (-1) ** np.arange(16)
    state = BatchWindows(averaging=True, blocks=tuple(blocks))
    assert not BatchConvergence(1e-3, 50).precise(state, _Scaled(1.0))


@pytest.mark.parametrize("windows, precise", [(9, False), (10, True)])
def test_precise_needs_ten_windows_averaged(windows, precise):
    # equal window means (a standard error of 0, no drift): only the count decides
    state = BatchWindows(averaging=True, blocks=tuple(np.array([3.0])
                                                      for _ in range(windows)))
    assert BatchConvergence(1e-3, 50).precise(state, _Scaled(1.0)) is precise


def _geyer(x):
    """mean_se of one coordinate written out: autocovariances by sums of products (no FFT),
    Geyer's initial positive sequence of pairs, floored at the independent case."""
    K, c = len(x), x - x.mean()
    gamma = [np.dot(c[:K - k], c[k:]) / K for k in range(K)]
    sigma2 = -gamma[0]
    for m in range(K // 2):
        pair = gamma[2 * m] + gamma[2 * m + 1]
        if pair <= 0:
            break
        sigma2 += 2 * pair
    return np.sqrt(max(sigma2, gamma[0]) / K)


@pytest.mark.parametrize("K", [40, 41])
def test_mean_se_is_geyers_estimate_written_out(K):
    # the FFT's autocovariances are the plain (not circular) ones: to rounding, not to 10%
    x = _ar1(np.random.default_rng(6), K, 3, 0.6)
    np.testing.assert_allclose(mean_se(x), [_geyer(x[:, p]) for p in range(3)], rtol=1e-10)


@pytest.mark.parametrize("drift, sd, stationary, count", [
    (0.39, 1.0, True, 16), (0.41, 1.0, False, 16), (0.78, 2.0, True, 16), (0.82, 2.0, False, 16),
    (-0.39, 1.0, True, 16), (-0.41, 1.0, False, 16), (0.41, 1.0, False, 17)])
def test_stationary_allows_drift_times_the_standard_error(drift, sd, stationary, count):
    # the rule's (c): halves of constant blocks differing by ``drift`` (either way), against
    # DRIFT x average_se = 0.4 guide sds at the default tol. Of an odd count the middle block
    # is in neither half (in both, the halves of 17 would differ by 8 / 9 of 0.41: 0.364)
    blocks = tuple(np.array([1.0 + drift * (k >= count - count // 2)]) for k in range(count))
    state = BatchWindows(averaging=True, blocks=blocks)
    assert BatchConvergence(1e-3, 50).stationary(state, _Scaled(sd)) is stationary


def test_blocks_merge_in_pairs_and_keep_the_plain_average():
    rng = np.random.default_rng(1)
    means = rng.standard_normal((3 * schedule_batch.MAX_BLOCKS + 5, 2))
    state = BatchWindows(averaging=True)
    for m in means:
        state = state.pushed(m)
    assert len(state.blocks) < schedule_batch.MAX_BLOCKS and state.count == len(means)
    np.testing.assert_allclose(state.average(), means.mean(axis=0), rtol=1e-12)
    # every block is the mean of ``block`` consecutive windows
    np.testing.assert_allclose(state.blocks[1], means[state.block:2 * state.block].mean(axis=0))


def _drive(iterates, elbo, W, tol=1e-3):
    """(steps taken, actions, state) of the rule over ``iterates`` [T, P] and ``elbo`` [T]."""
    return drive(BatchConvergence(tol, W), BatchWindows(), iterates, elbo, W)


def test_the_rule_averages_until_its_standard_error_is_small():
    # iid iterates with sd 0.5 and a flat ELBO: the rule decays min_decays times, then averages;
    # windows of W = 50 have means with sd 0.5 / sqrt(50) = 0.071, so the standard error of an
    # average of K windows is 0.071 / sqrt(K) and drops below average_se = 0.1 at once: the
    # rule stops at the least number of windows (MIN_AVERAGED) with their exact mean.
    rng = np.random.default_rng(2)
    W, T, P = 50, 4000, 3
    iterates = 1.0 + 0.5 * rng.standard_normal((T, P))
    steps, actions, state = _drive(iterates, rng.standard_normal(T), W)
    assert actions.count(DECAY) == schedule.min_decays(1e-3) and actions[-1] == STOP
    assert state.count == schedule_batch.MIN_AVERAGED
    assert BatchConvergence(1e-3, W).stationary(state, Guide)
    # only windows at the last step size are averaged (one action per window end)
    last_decay = W * (max(i for i, action in enumerate(actions) if action == DECAY) + 1)
    assert steps - last_decay == W * state.count
    averaged = iterates[steps - W * state.count:steps]
    np.testing.assert_allclose(state.average(), averaged.mean(axis=0), rtol=1e-12)


def test_autocorrelated_iterates_average_longer():
    # AR(1) iterates with sd 0.8 and rho = 0.98 per step (integrated autocorrelation time
    # (1 + rho) / (1 - rho) = 99 steps): the average of T steps has standard error
    # 0.8 * sqrt(99 / T), below 0.1 only after T = 6300 steps (126 windows of 50), where the
    # naive sd / sqrt(K) of the window means would stop at MIN_AVERAGED. The average's error
    # is then within 4 of its standard errors (0.1) of the true mean, 0.
    rng = np.random.default_rng(3)
    W, T, P = 50, 20000, 2
    iterates = 0.8 * _ar1(rng, T, P, 0.98)
    steps, actions, state = _drive(iterates, rng.standard_normal(T), W)
    assert actions[-1] == STOP and state.count >= 60
    assert np.max(np.abs(state.average())) <= 4 * average_se(1e-3)


def test_a_drifting_average_does_not_stop():
    # iterates that keep moving (0.3 guide sds per window) never pass the split-half check,
    # however small their noise; the rule runs out of steps while averaging
    rng = np.random.default_rng(4)
    W, T = 50, 3000
    drift = np.linspace(0, 0.3 * T / W, T)[:, None] + 0.01 * rng.standard_normal((T, 1))
    steps, actions, state = _drive(drift, rng.standard_normal(T), W)
    assert STOP not in actions and state.averaging and steps == T
    # at the iteration cap advi returns its last iterate, not the lagging average
    assert not BatchConvergence(1e-3, W).stationary(state, Guide)


def test_the_rule_decays_while_the_iterates_jitter():
    # iterates with jitter above AVERAGE_JITTER: the rule keeps lowering the step size
    rng = np.random.default_rng(5)
    W, T = 50, 1500
    _, actions, state = _drive(3 * rng.standard_normal((T, 2)), rng.standard_normal(T), W)
    assert not state.averaging and actions.count(DECAY) > schedule.min_decays(1e-3)
    assert CONTINUE in actions


@pytest.mark.parametrize("a, averaging", [(0.99, True), (1.01, False)])
def test_averaging_begins_once_a_windows_jitter_is_at_most_one_guide_sd(a, averaging):
    # A level ELBO, and iterates alternating 3 +- a on one coordinate (constant on the other):
    # every window's jitter is a guide sds exactly (its population sd) and its mean exactly 3.
    # A check passes from the second window at a step size, so the rule decays at windows 3
    # and 6 (PASSES = 2 passes in a row, min_decays = 2); at window 9 it averages its 3
    # windows at that step size if a <= AVERAGE_JITTER (1), else decays again. The equal
    # window means have a standard error of 0, so it stops once 10 windows are averaged
    # (MIN_AVERAGED): at window 9 + 7 = 16.
    W = 50
    iterates = np.array([[3.0 + a * (-1) ** k, 1.0] for k in range(20 * W)])
    steps, actions, state = _drive(iterates, np.zeros(len(iterates)), W)
    start = [CONTINUE, CONTINUE, DECAY] * 2 + [CONTINUE, CONTINUE]
    if averaging:
        assert actions == start + [CONTINUE] * 7 + [STOP] and steps == 16 * W
        assert state.averaging and state.count == 10
        np.testing.assert_allclose(state.average(), [3.0, 1.0], rtol=1e-12)
    else:
        assert actions[:9] == start + [DECAY] and not state.averaging
