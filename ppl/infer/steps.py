"""One optimizer step of a fit as a pure function, in the shape of NumPyro's SVI.

``init(...) -> StepState`` and ``update(state, eps) -> (StepState, elbo or None)``: the state is
everything a step reads and writes (the optimizer's state, whose ``params`` are in the current
coordinates, with its moments, step count and step size; the coordinates; the last good state,
for non-finite recovery; the count of consecutive failures), replaced whole, never mutated. The
draws ``eps`` are an argument, not state: the fit's one Generator makes them in the driver
(advi.py), so the sequence of random numbers, and with it the fit, is fixed by the seed.
The policies that decide when to stop, decay, whiten or search live in schedule.py.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .precondition import Coordinates

MAX_FAILURES = 5      # consecutive non-finite steps before the fit is declared diverged
RETRY_FACTOR = 0.5    # a retried step takes this factor times the last one, per failure


class StepState(NamedTuple):
    """What one step reads and writes.

    opt : the optimizer's state (optim.py): params [P] in ``coords``, moments, step, lr.
    coords : the coordinates the optimizer moves in (precondition.Coordinates).
    good : (opt state, gradient) before the last finite step, or None; a failed step is
        retried from it with a smaller step size.
    failures : consecutive non-finite steps so far.
    """
    opt: NamedTuple
    coords: Coordinates
    good: tuple | None
    failures: int

    @property
    def theta(self) -> np.ndarray:
        """The guide's parameters at this state."""
        return self.coords.to_theta(self.opt.params)

    @property
    def lr(self) -> float:
        return self.opt.lr


def init(opt, coords: Coordinates, theta: np.ndarray, lr: float) -> StepState:
    """A fresh state at ``theta``: the optimizer's moments zero, no good state, no failures."""
    return StepState(opt.init(coords.from_theta(theta), lr), coords, None, 0)


def update(state: StepState, eps: np.ndarray, loss: Callable,
           opt, theta: np.ndarray | None = None) -> tuple[StepState, float | None]:
    """One step with the draws ``eps`` [S, E]: (next state, the ELBO estimate at ``state``).

    ``loss(theta, eps) -> (-ELBO, its gradient in theta)``. When the value or the gradient is
    not finite the step is discarded: the ELBO returned is None, ``failures`` grows by one, and
    the next state retries from the last good one with RETRY_FACTOR ** failures times its step
    size (the base step size is kept afterwards, so a draw that now and then lands in a bad
    region does not slow the rest of the fit). The caller decides when failures are too many.
    ``theta``: ``state.theta`` when the caller has it already (computing it again is a
    matrix-vector product in whitened coordinates).
    """
    theta = state.theta if theta is None else theta
    value, gradient = loss(theta, eps)
    gradient = state.coords.pull_gradient(gradient, theta, eps)
    # math.isfinite of the scalar value: np.isfinite's ufunc call on a float is 0.7 us
    if not (math.isfinite(value) and np.isfinite(gradient).all()):
        failures, opt_state = state.failures + 1, state.opt
        if state.good is not None:
            good_state, good_gradient = state.good
            retry = good_state._replace(lr=good_state.lr * RETRY_FACTOR ** failures)
            opt_state = opt.update(retry, good_gradient)._replace(lr=good_state.lr)
        return state._replace(opt=opt_state, failures=failures), None
    advanced = opt.update(state.opt, gradient)
    return StepState(advanced, state.coords, (state.opt, gradient), 0), -value
