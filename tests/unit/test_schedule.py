"""The default convergence rule's test on the iterates (schedule.bouncing, Convergence)."""
from __future__ import annotations

import numpy as np

from ppl.infer.schedule import (BOUNCE_JITTER, CONTINUE, DECAY, Convergence, Iterates,
                                Windows, bouncing)

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
