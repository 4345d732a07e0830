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
