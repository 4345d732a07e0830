"""The convergence rules driven over given iterates and ELBOs as advi._run drives them, shared by
test_schedule.py (Convergence) and test_schedule_batch.py (BatchConvergence)."""
from __future__ import annotations

import numpy as np

from ppl.infer.schedule import DECAY, STOP


class Guide:
    """A guide whose every coordinate is in its own units (jitter_scale 1)."""

    @staticmethod
    def jitter_scale(theta):
        return np.ones_like(theta)


def drive(rule, state, iterates, elbo, W: int, last: str = STOP):
    """Run ``rule`` from ``state`` over ``iterates`` [T, P] and ``elbo`` [T] as advi._run does,
    without changing the iterates at a decay, until the first ``last`` action (STOP, or DECAY
    to stop there): (steps taken, actions, state)."""
    trace, actions = [], []
    for theta, value in zip(iterates, elbo):
        trace.append(value)
        state = state.add(theta)
        if (len(trace) - state.since) % W:
            continue
        state, action = rule.at_window(state, trace, Guide)
        actions.append(action)
        if action == last:
            break
        if action == DECAY:
            state = rule.restarted(state, len(trace))
    return len(trace), actions, state
