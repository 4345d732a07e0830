"""The default convergence rule's test on the iterates (schedule.bouncing, Convergence)."""
from __future__ import annotations

import numpy as np
import pytest

from ppl.infer.schedule import (AVERAGE_WINDOWS, BOUNCE_JITTER, CONTINUE,
                                CONTROLLED_AVERAGE_WINDOWS, CONTROLLED_DECAYS,
                                CONTROLLED_FINAL_PASSES, DECAY, FELL_STEPS, STOP, Convergence,
                                Iterates, Windows, bouncing, drifting, fell, plateau)

from ._schedule_drive import Guide, drive


def _window(values):
    window = Iterates()
    for theta in values:
        window = window.add(theta)
    return window


def _two_windows(rng, sd, drift, W=100, P=4):
    """Two windows of W iterates [W, P]: iid Normal(0, sd) noise plus ``drift`` per window."""
    t = np.arange(2 * W)[:, None] / W
    x = sd * rng.standard_normal((2 * W, P)) + drift * t
    return _window(x[:W]), _window(x[W:])


def test_iterates_bouncing_in_place_pass():
    # sd 3 > BOUNCE_JITTER: the window means move about 3 * sqrt(2 / 100) = 0.42 (at most
    # about 1.3 over 4 coordinates at z = 3), far below the spread of 3
    prev, last = _two_windows(np.random.default_rng(0), sd=3.0, drift=0.0)
    assert bouncing(prev, last, Guide)


def test_iterates_on_their_way_do_not_pass():
    # the same spread, but the mean moves 20 a window: the fit is still getting somewhere
    # (a linear drift of 20 adds 20 / sqrt(12) = 5.8 to the within-window spread, 6.5 in all)
    prev, last = _two_windows(np.random.default_rng(1), sd=3.0, drift=20.0)
    assert not bouncing(prev, last, Guide)


def test_a_parameter_creeping_under_others_bouncing_does_not_pass():
    # one parameter bounces in place over 5 guide sds while another creeps 2 a window with a
    # spread of 0.6 (0.1 of noise, 2 / sqrt(12) of drift): the creep is more than that spread,
    # so the fit is still on its way, though 2 < 5
    rng = np.random.default_rng(4)
    W = 100
    t = np.arange(2 * W) / W
    x = np.stack([5.0 * rng.standard_normal(2 * W), 0.1 * rng.standard_normal(2 * W) + 2 * t], 1)
    assert not bouncing(_window(x[:W]), _window(x[W:]), Guide)


def test_small_jitter_never_passes():
    # stationary, but at a spread below BOUNCE_JITTER the ELBO test alone decides
    prev, last = _two_windows(np.random.default_rng(2), sd=0.5 * BOUNCE_JITTER, drift=0.0)
    assert not bouncing(prev, last, Guide)


def _drive(iterates, elbo, W, tol=1e-3):
    """The rule's actions over ``iterates`` [T, P] and ``elbo`` [T], up to its first decay."""
    return drive(Convergence(tol, W), Windows(), iterates, elbo, W, last=DECAY)[1]


def test_a_bouncing_fit_decays_though_its_elbo_still_rises():
    # The ELBO rises by 5 nats a window with noise sd 1 (a window mean's se 0.1): the plateau
    # test fails at every window. Iterates bouncing with sd 3 in place pass from the second
    # window on, so the rule decays at the third (PASSES = 2 consecutive passes); iterates
    # jittering 0.05 keep failing, as before this test existed.
    rng = np.random.default_rng(3)
    W, T, P = 100, 1500, 3
    elbo = -1000 + 5 * np.arange(T) / W + rng.standard_normal(T)
    assert _drive(3.0 * rng.standard_normal((T, P)), elbo, W) == [CONTINUE, CONTINUE, DECAY]
    actions = _drive(0.05 * rng.standard_normal((T, P)), elbo, W)
    assert actions == [CONTINUE] * (T // W)


def test_the_first_whitening_comes_after_the_first_window():
    # (schedule.Whitening.first_due; advi whitens there, searches the step size, restarts)
    from ppl.infer.schedule import Whitening
    assert [Whitening(True).first_due(step, 100) for step in (99, 100, 200)] \
        == [False, True, False]
    assert not Whitening(False).first_due(100, 100)


def test_the_whitening_is_rescued_once_after_half_the_budget_without_a_decay():
    # (schedule.Whitening.rescue_due; advi refreshes the coordinates then and searches the
    # step size again, test_advi.py)
    from ppl.infer.schedule import RESCUE_FRACTION, Whitening
    from ppl.infer.schedule_batch import BatchWindows
    cap = 10_000
    half = int(RESCUE_FRACTION * cap)
    whitened = Windows(since=100)               # restarted at the first whitening
    on, off = Whitening(True), Whitening(False)
    assert not on.rescue_due(whitened, 100 + half - 100, cap)
    assert on.rescue_due(whitened, 100 + half, cap)
    assert not on.rescue_due(whitened._replace(decays=1), 100 + half, cap)   # it decayed
    assert not off.rescue_due(whitened, 100 + half, cap)                    # no whitening
    assert not on.rescue_due(BatchWindows(inner=whitened), 100 + half, cap)  # --batch's rule
    rescued = whitened._replace(since=100 + half)                           # restarted there
    assert not on.rescue_due(rescued, cap, cap)                             # once in the cap


# ----- the mutation pass of session 40 (docs/history/trust-log.md): exact cases of the rule

@pytest.mark.parametrize("s_prev, s_last", [(3.0, 1.0), (1.0, 3.0)])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_plateau_allows_two_standard_errors_of_both_windows_either_way(s_prev, s_last, sign):
    # windows of 4 alternating -+s: sample variances (ddof 1) 4/3 s^2 each, so the se of the
    # difference of the means is sqrt((s_prev^2 + s_last^2) / 3), from both windows (not
    # twice the last one's). At tol = 0 a gap within 2 of them passes, one 1% beyond does not,
    # rising or falling: a falling ELBO is no plateau
    wiggle = np.array([-1.0, 1.0, -1.0, 1.0])
    se = np.sqrt((s_prev ** 2 + s_last ** 2) / 3.0)
    for factor, passes in ((0.99, True), (1.01, False)):
        gap = sign * 2.0 * se * factor
        trace = np.concatenate([-10.0 + s_prev * wiggle, -10.0 + gap + s_last * wiggle])
        assert plateau(trace, 4, tol=0.0) == passes


def test_a_noiseless_fall_is_no_plateau():
    # 10 nats down at an ELBO of -100: far beyond tol * 110 = 0.11 nats, and no noise
    trace = np.r_[np.full(100, -100.0), np.full(100, -110.0)]
    assert not plateau(trace, 100, tol=1e-3)


def test_first_steps_that_blew_up_are_judged_at_three_sds_of_the_noise_from_the_start():
    # the start -100, the next steps far below it; noise 10, so 3 sds (30 nats) are the margin
    # (tol * 100 = 0.1 nats is less): a final 2.9 sds below the start is level, 3.1 fell
    trace = np.r_[-100.0, np.full(FELL_STEPS - 1, -1e6), np.full(200, -120.0)]
    assert not fell(trace, -100.0 - 2.9 * 10.0, 1e-3, 10.0)
    assert fell(trace, -100.0 - 3.1 * 10.0, 1e-3, 10.0)


def test_one_parameter_bouncing_in_place_is_enough():
    # one coordinate bounces with sd 3, the others jitter by 0.1, nothing moves: the window
    # means' moves have sds of sqrt(2 / 100) = 0.14 of the spreads, so each stays within its
    # spread unless 7 sds out (seed fixed). The largest spread is above BOUNCE_JITTER, so the
    # window passes (kidiq_with_mom_work bounced so); every spread need not be
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 3)) * np.array([3.0, 0.1, 0.1])
    assert bouncing(_window(x[:100]), _window(x[100:]), Guide)


class _WithParams(Guide):
    n_params = 1      # theta's last entry is a param (guides/user.py)


@pytest.mark.parametrize("moving, drifts", [(1, True), (0, False)])
def test_drifting_watches_the_params_at_the_end_of_theta(moving, drifts):
    # theta = (a latent's mean, a param): the coordinate ``moving`` moves 1 a window three
    # windows running, with a spread of 0.1 (alternating -+0.1); only the param's travel is a
    # drift (a latent's mean is whitened and left to the plateau test)
    wiggle = 0.1 * np.array([-1.0, 1.0] * 5)
    windows = []
    for k in range(3):
        x = np.zeros((10, 2)) + wiggle[:, None]
        x[:, moving] += k
        windows.append(_window(x))
    assert drifting(tuple(windows), _WithParams) == drifts


def _alternating(T, P, jitter, W):
    """Iterates [T, P] alternating -+jitter, plus 0.01 times the window's index."""
    signs = np.where(np.arange(T) % 2, 1.0, -1.0)[:, None]
    return jitter * signs * np.ones((T, P)) + 0.01 * (np.arange(T) // W)[:, None]


def test_passing_checks_must_be_consecutive():
    # a noiseless ELBO level for two windows, a rise, then level again: the rise resets the
    # count, so the decay comes at the second pass after it (window 5), not at window 4
    W = 100
    elbo = np.repeat([-100.0, -100.0, -50.0, -50.0, -50.0], W)
    actions = _drive(_alternating(5 * W, 3, 0.01, W), elbo, W)
    assert actions == [CONTINUE] * 4 + [DECAY]


def test_a_level_fit_decays_then_averages_exactly_its_last_five_windows():
    # a noiseless level ELBO and iterates jittering by 0.1 (at most jitter_tol, 0.2): each step
    # size takes a window to fill its first window and two passes; after min_decays (2) decays
    # the rule settles at window 9 and stops after AVERAGE_WINDOWS windows at that step size
    # (window 11), returning the mean of their iterates. Jittering by 0.3 it decays a third time
    W, T, P = 100, 3000, 2
    elbo = np.full(T, -100.0)
    steps, actions, state = drive(Convergence(1e-3, W), Windows(), _alternating(T, P, 0.1, W),
                                  elbo, W)
    assert actions == [CONTINUE, CONTINUE, DECAY] * 2 + [CONTINUE] * 4 + [STOP]
    assert steps == 11 * W and state.since == 6 * W and AVERAGE_WINDOWS == 5
    last_five = _alternating(T, P, 0.1, W)[6 * W:11 * W]
    np.testing.assert_allclose(state.average(), last_five.mean(axis=0), rtol=1e-12)
    actions = drive(Convergence(1e-3, W), Windows(), _alternating(T, P, 0.3, W), elbo, W)[1]
    assert actions[:9] == [CONTINUE, CONTINUE, DECAY] * 3


def test_the_controlled_rule_decays_once_then_settles_on_one_pass_over_two_windows():
    # the rule of a fit whose steps take a control variate (schedule.CONTROLLED_*): the same
    # level ELBO and jitter of 0.1 decay once at window 3; at the new step size the first
    # check (window 5, its second window) passes, settles the fit, and the two windows since
    # the decay are averaged: a stop at window 5, where the plain rule takes 11
    W, T, P = 100, 3000, 2
    elbo = np.full(T, -100.0)
    iterates = _alternating(T, P, 0.1, W)
    rule = Convergence(1e-3, W, decays=CONTROLLED_DECAYS, final_passes=CONTROLLED_FINAL_PASSES,
                       average_windows=CONTROLLED_AVERAGE_WINDOWS)
    steps, actions, state = drive(rule, Windows(), iterates, elbo, W)
    assert actions == [CONTINUE, CONTINUE, DECAY, CONTINUE, STOP]
    assert steps == 5 * W and state.since == 3 * W
    np.testing.assert_allclose(state.average(), iterates[3 * W:5 * W].mean(axis=0), rtol=1e-12)


def test_the_search_after_a_whitening_tries_the_first_search_step_size_again(monkeypatch):
    # (StepSize.after_whitening) among the grid's step sizes at most lr, lr itself included;
    # below the grid, lr alone; a given step size is kept without a search
    from ppl.infer import schedule
    from ppl.infer.optim import SearchResult
    tried = []
    monkeypatch.setattr(schedule, "search_lr", lambda *args, **kw: tried.append(args[5])
                        or SearchResult(args[5][-1], {}, True))
    step = schedule.StepSize("adam", None)
    assert step.after_whitening(0.1, None, None, None, None, 5, None) == 0.001
    assert step.after_whitening(1e-5, None, None, None, None, 5, None) == 1e-5
    assert tried == [(0.1, 0.01, 0.001), (1e-5,)]
    assert schedule.StepSize("adam", 0.3).after_whitening(0.3, *[None] * 6) == 0.3
    assert len(tried) == 2


def test_the_first_window_takes_a_fixed_step_size_where_a_search_follows_the_whitening(
        monkeypatch):
    # (StepSize.first) where the dense whitening's search picks the step size the fit goes on
    # with, the first window, which only brings the guide near the bulk, takes FIRST_WINDOW's
    # without a search (35 of 42 shipped models' searches picked it; 150-200 gradient
    # evaluations a fit); elsewhere the search, or the user's step size
    from ppl.infer import schedule
    from ppl.infer.optim import SearchResult
    tried = []
    monkeypatch.setattr(schedule, "search_lr", lambda *args, **kw: tried.append(args[5])
                        or SearchResult(0.01, {}, True))
    args = [None] * 4 + [5, None]
    assert schedule.StepSize("adam", None, searched_after_first_window=True).first(*args) \
        == schedule.FIRST_WINDOW["adam"] == 0.1
    assert tried == []
    assert schedule.StepSize("adam", 0.3, searched_after_first_window=True).first(*args) == 0.3
    assert schedule.StepSize("adam", None).first(*args) == 0.01
    assert schedule.StepSize("sgd", None, searched_after_first_window=True).first(*args) == 0.01
    assert tried == [schedule.ETAS["adam"], schedule.ETAS["sgd"]]


def test_the_search_after_a_whitening_takes_the_largest_step_size_tied_with_the_best(
        monkeypatch):
    # Scores within SEARCH_TIE nats per mean coordinate of the best are a tie, and the largest
    # of those step sizes is taken: a start near the optimum scores best at the smallest, which
    # then cannot move it (a 20,000-row regression ended up to 0.19 posterior sds off)
    from ppl.infer import schedule
    from ppl.infer.optim import SearchResult
    scores = {0.1: 10.5, 0.01: 10.02, 0.001: 10.0}
    found = [True]
    monkeypatch.setattr(schedule, "search_lr",
                        lambda *args, **kw: SearchResult(0.001, scores, found[0]))
    step = schedule.StepSize("adam", None)

    def after(dim):
        return step.after_whitening(0.1, None, None, None, None, 5, None, dim=dim)
    assert schedule.SEARCH_TIE == 0.005
    assert after(21) == 0.01      # a tie is 0.105 nats: 0.01 is 0.02 from the best, 0.1 0.5
    assert after(1) == 0.001      # 0.005 nats: the best alone
    assert after(101) == 0.1      # 0.505 nats: every one
    found[0] = False              # none beat the start: the search's answer as it is
    assert after(101) == 0.001
