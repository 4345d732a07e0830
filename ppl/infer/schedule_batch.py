"""The convergence rule under --batch (docs/minibatch.md): schedule.py's Convergence up to its
plateaus and step-size decays, then Polyak-Ruppert averaging until the average's Monte Carlo
standard error is small. Its running state, BatchWindows, wraps schedule.Windows; advi.py drives
it as it drives Convergence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .schedule import (CONTINUE, DECAY, FALLEN, PASSES, STOP, TOL_REFERENCE, Convergence,
                       Windows, fallen, min_decays, plateau)

# The rule under --batch (BatchConvergence; docs/minibatch.md): the largest Monte Carlo standard
# error of the averaged guide accepted, in guide sds (at TOL_REFERENCE; it scales with sqrt(tol)
# like jitter_tol), the largest iterate jitter (guide sds) at which averaging may begin, the
# least number of windows averaged, how far apart (in those standard errors) the averages of
# the first and second half may be, and the most blocks of window means kept (pairs are merged
# beyond it, so memory and the cost of a check stay bounded).
AVERAGE_SE = 0.1
AVERAGE_JITTER = 1.0
MIN_AVERAGED = 10
DRIFT = 4.0           # z = 2 standard errors of a difference of two half-averages (2 se each)
MAX_BLOCKS = 64


def average_se(tol: float) -> float:
    """The averaged guide's largest Monte Carlo standard error accepted, in guide sds: AVERAGE_SE
    (0.1) at the default tol, times sqrt(tol / 1e-3); a 10x tighter tol costs 10x the steps."""
    return AVERAGE_SE * float(np.sqrt(tol / TOL_REFERENCE))


def mean_se(blocks: np.ndarray) -> np.ndarray:
    """[K, P] consecutive block means -> [P] standard error of their mean, per coordinate.

    Blocks of a stochastic-gradient run are autocorrelated (at a small step size the iterates
    wander for hundreds of steps), so the naive sd / sqrt(K) is too small. The variance of the
    mean is sigma^2 / K with sigma^2 = -gamma_0 + 2 * sum of the initial positive sequence of
    autocovariance pairs gamma_2m + gamma_2m+1 (Geyer 1992, as MCMC effective sample sizes are
    computed), never below gamma_0 (the independent case).
    """
    K = len(blocks)
    c = blocks - blocks.mean(axis=0)
    f = np.fft.rfft(c, n=2 * K, axis=0)
    gamma = np.fft.irfft(f * np.conj(f), axis=0)[:K] / K          # [K, P] autocovariances
    pairs = gamma[:K - K % 2].reshape(K // 2, 2, -1).sum(axis=1)     # [K // 2, P]
    alive = np.cumprod(pairs > 0, axis=0).astype(bool)
    sigma2 = -gamma[0] + 2 * np.sum(np.where(alive, pairs, 0.0), axis=0)
    return np.sqrt(np.maximum(sigma2, gamma[0]) / K)


class BatchWindows(NamedTuple):
    """BatchConvergence's running state: advi's Windows (``inner``) and, once averaging, the
    means of equal blocks of ``block`` windows (``blocks``) and the sum and count of the windows
    of the block being filled. It answers advi's loop as Windows does."""
    inner: Windows = Windows()
    averaging: bool = False
    blocks: tuple = ()
    block: int = 1
    pending: np.ndarray | float = 0.0
    pending_n: int = 0

    @property
    def since(self) -> int:
        return self.inner.since

    @property
    def count(self) -> int:
        """Windows averaged so far."""
        return len(self.blocks) * self.block + self.pending_n

    def add(self, theta: np.ndarray) -> BatchWindows:
        return self._replace(inner=self.inner.add(theta))

    def closed(self) -> BatchWindows:
        return self._replace(inner=self.inner.closed())

    def pushed(self, mean: np.ndarray) -> BatchWindows:
        """One more window's mean iterate in the average."""
        pending, n = self.pending + mean, self.pending_n + 1
        if n < self.block:
            return self._replace(pending=pending, pending_n=n)
        blocks, block = self.blocks + (pending / n,), self.block
        if len(blocks) == MAX_BLOCKS:   # merge pairs: blocks of twice the windows, half as many
            blocks = tuple((a + b) / 2 for a, b in zip(blocks[::2], blocks[1::2]))
            block *= 2
        return self._replace(blocks=blocks, block=block, pending=0.0, pending_n=0)

    def average(self) -> np.ndarray:
        """The mean iterate over the averaged windows (before averaging: advi's average)."""
        if not self.averaging:
            return self.inner.average()
        return (sum(self.blocks) * self.block + self.pending) / self.count

    def last_jitter(self, guide) -> float:
        return self.inner.last_jitter(guide)


@dataclass(frozen=True)
class BatchConvergence:
    """The convergence rule under --batch: advi's plateaus and step-size decays, then
    Polyak-Ruppert averaging at a step size where the iterates still move, until the average
    is precise.

    A minibatch gradient is noisy well after the ELBO has stopped rising (about sqrt(N / B)
    posterior sds per step on the guide's means). advi's rule (Convergence) decays the step
    size until the iterates jitter less than 0.2 guide sds; at such a step size they wander
    for thousands of steps, so its few averaged windows keep errors of up to half a posterior
    sd (measured: docs/minibatch.md). The variance of an average of T iterates is about the
    same at any step size (the gradient noise's over T, Polyak and Juditsky 1992), while the
    time it takes to forget its start grows as the step size shrinks. So here, after PASSES
    passing plateau checks and at least ``min_decays(tol)`` decays, averaging begins as soon
    as the jitter over a window is at most AVERAGE_JITTER (1 guide sd), and every window's
    mean iterate joins the average. The fit stops when (a) at least MIN_AVERAGED windows are
    averaged, (b) the average's Monte Carlo standard error (mean_se, from the autocorrelated
    window means) is at most ``average_se(tol)`` guide sds for every coordinate
    (``guide.jitter_scale``: mu_i in units of sigma_i; log sigma_i and params as they are),
    and (c) the averages of the first and the second half differ by at most DRIFT times that,
    so a trend is not averaged away. Averaging costs about (N / B) / average_se(tol)^2 steps
    (2000 at N / B = 20 and the default tol); a fit that reaches ``iter`` meanwhile returns
    the average so far if (c) holds, else its last iterate (reason: max iterations). As in Dhaka et al. (2020), "Robust, accurate
    stochastic optimization for variational inference": iterate averaging stopped by a Monte
    Carlo standard error, as for MCMC.
    """
    tol: float
    window: int

    def at_window(self, state: BatchWindows, trace: list, guide) -> tuple[BatchWindows, str]:
        """As Convergence.at_window; once averaging, every window joins the average."""
        if fallen(trace, self.window, self.tol):
            return state, FALLEN
        if state.averaging:
            state = state.closed()
            state = state.pushed(state.inner.kept[-1].mean())
            return state, STOP if self.precise(state, guide) else CONTINUE
        step, W, inner = len(trace), self.window, state.inner
        passed = plateau(np.asarray(trace[inner.since:]), W, self.tol)
        inner = inner.closed()._replace(passes=inner.passes + 1 if passed else 0)
        if inner.passes < PASSES:
            return state._replace(inner=inner), CONTINUE
        if (inner.decays < min_decays(self.tol)
                or inner.kept[-1].jitter(guide) > AVERAGE_JITTER):
            return state._replace(inner=inner._replace(decays=inner.decays + 1)), DECAY
        # the ELBO is flat at this step size: average from here, with its windows so far
        state = BatchWindows(inner, averaging=True)
        taken = min(len(inner.kept), (step - inner.since) // W)   # at this step size
        for kept in inner.kept[len(inner.kept) - taken:]:
            state = state.pushed(kept.mean())
        return state, CONTINUE

    def precise(self, state: BatchWindows, guide) -> bool:
        """Whether the average meets (a), (b) and (c) of the class's rule."""
        if state.count < MIN_AVERAGED or len(state.blocks) < 4:
            return False
        scale = guide.jitter_scale(state.average())
        if np.max(mean_se(np.asarray(state.blocks)) / scale) > average_se(self.tol):
            return False
        return self.stationary(state, guide)

    def stationary(self, state: BatchWindows, guide) -> bool:
        """(c): the averages of the first and second half of the blocks differ by at most DRIFT
        x average_se(tol) guide sds. At the iteration cap, the average is returned only then:
        the average of a run that is still moving lags behind its last iterate."""
        if not state.averaging or len(state.blocks) < 2:
            return False
        blocks, half = np.asarray(state.blocks), len(state.blocks) // 2
        drift = blocks[-half:].mean(axis=0) - blocks[:half].mean(axis=0)
        scale = guide.jitter_scale(state.average())
        return bool(np.max(np.abs(drift) / scale) <= DRIFT * average_se(self.tol))

    @staticmethod
    def restarted(state: BatchWindows, step: int) -> BatchWindows:
        return state._replace(inner=Convergence.restarted(state.inner, step))
