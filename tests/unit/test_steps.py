"""The pure step of the fit loop (ppl/infer/steps.py) and the convergence rule's state (schedule)."""
import numpy as np

from ppl.guides import MEAN_FIELD
from ppl.infer import schedule, steps
from ppl.infer.optim import optimizer
from ppl.infer.precondition import Coordinates

ADAM = optimizer("adam")


def quadratic(theta, eps):
    """A loss (value, gradient) with its minimum at theta = 1."""
    return 0.5 * float(np.sum((theta - 1.0) ** 2)), theta - 1.0


def test_update_is_pure_same_state_and_draws_give_the_same_step():
    state = steps.init(ADAM, Coordinates(np.zeros(2)), np.zeros(4), 0.1)
    eps = np.zeros((3, 2))
    a, value_a = steps.update(state, eps, quadratic, ADAM)
    b, value_b = steps.update(state, eps, quadratic, ADAM)
    assert value_a == value_b == -2.0          # the ELBO, -loss, at the state's theta
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(state.theta, np.zeros(4))   # the input state is untouched
    assert a.opt.step == 1 and a.good[0] is state.opt and a.failures == 0


def test_a_non_finite_step_retries_from_the_last_good_state_with_a_smaller_step():
    state = steps.init(ADAM, Coordinates(np.zeros(2)), np.zeros(4), 0.1)
    state, _ = steps.update(state, None, quadratic, ADAM)
    good_opt, good_gradient = state.good

    def broken(theta, eps):
        return np.nan, theta

    retried, value = steps.update(state, None, broken, ADAM)
    assert value is None and retried.failures == 1
    expected = ADAM.update(good_opt._replace(lr=0.1 * steps.RETRY_FACTOR), good_gradient)
    np.testing.assert_array_equal(retried.opt.params, expected.params)
    assert retried.lr == 0.1                     # the base step size is kept
    again, _ = steps.update(retried, None, broken, ADAM)
    assert again.failures == 2
    # a finite step ends the run of failures: MAX_FAILURES counts consecutive ones only
    recovered, value = steps.update(again, None, quadratic, ADAM)
    assert value is not None and recovered.failures == 0


def test_a_gradient_with_one_non_finite_entry_is_a_failed_step():
    state = steps.init(ADAM, Coordinates(np.zeros(2)), np.zeros(4), 0.1)
    state, _ = steps.update(state, None, quadratic, ADAM)

    def one_nan(theta, eps):
        value, gradient = quadratic(theta, eps)
        gradient[2] = np.nan
        return value, gradient
    failed, value = steps.update(state, None, one_nan, ADAM)
    assert value is None and failed.failures == 1
    assert np.all(np.isfinite(failed.opt.params))


def test_the_step_is_taken_with_the_gradient_in_whitened_coordinates():
    # theta = (m0 + L v, log_sigma): the optimizer moves v with d/dv = L^T d/dmu (chain rule,
    # written out here), log_sigma's gradient unchanged
    L = np.array([[2.0, 0.0], [0.5, 0.3]])
    coords = Coordinates(np.array([0.2, -0.1]), L)
    state = steps.init(ADAM, coords, np.array([0.4, 0.3, -0.2, 0.1]), 0.1)
    theta = state.theta
    _, gradient = quadratic(theta, None)
    want = ADAM.update(state.opt, np.concatenate([L.T @ gradient[:2], gradient[2:]]))
    moved, _ = steps.update(state, None, quadratic, ADAM)
    np.testing.assert_array_equal(moved.opt.params, want.params)
    np.testing.assert_array_equal(moved.good[1][:2], L.T @ gradient[:2])


def test_a_flat_trace_plateaus_twice_then_decays_and_the_kept_windows_are_averaged():
    rule = schedule.Convergence(tol=1e-3, window=2)
    state, trace, actions = schedule.Windows(), [], []
    for theta in [np.array([0.0, 0.0]), np.array([2.0, 0.0])] * 3:
        trace.append(-1.0 + 0.01 * (len(trace) % 2))   # flat, with noise
        before, state = state, state.add(theta)
        assert before.window.n == state.window.n - 1     # add returns a new state
        if len(trace) % 2 == 0:
            state, action = rule.at_window(state, trace, MEAN_FIELD)
            actions.append(action)
    # checks need two windows; two consecutive passes, then (no decays yet) a decay
    assert actions == [schedule.CONTINUE, schedule.CONTINUE, schedule.DECAY]
    assert len(state.kept) == 3 and state.window.n == 0 and state.decays == 1
    np.testing.assert_array_equal(state.average(), [1.0, 0.0])
