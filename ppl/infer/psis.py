"""Pareto-smoothed importance sampling (PSIS): the k̂ diagnostic and smoothed log weights.

Given log importance weights log p(zeta) - log q(zeta) at S draws from the guide, fits a
generalized Pareto distribution to the largest weights (Zhang & Stephens 2009, with the weakly
informative prior on k of Vehtari et al. 2024), replaces them by the fit's order statistics and
reports the shape k̂ with the sample-size-dependent threshold, and says how many draws a fit's k̂
takes (psis_draws: the fit's and the early stop's). Where the weights come from and what k̂
means for a fit are left to posterior.py and verdict.py.

References: Vehtari, Simpson, Gelman, Yao, Gabry (2024), "Pareto Smoothed Importance Sampling",
JMLR 25(72); Zhang & Stephens (2009), Technometrics 51(3). The steps follow the reference
implementations (R ``loo``, ArviZ ``psislw``), against which tests/unit/test_psis.py checks k̂.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..special import log_sum_exp

# Fewer tail draws than this and no Pareto fit is attempted (as in loo and ArviZ): k̂ is inf.
MIN_TAIL = 5
# The prior on k (Vehtari et al. 2024, appendix C; loo's gpdfit): k is shrunk toward 0.5 as
# if by PRIOR_K pseudo-observations; PRIOR_B scales the grid of the profile parameter b.
PRIOR_K = 10
PRIOR_B = 3
# Tied largest weights mean bounded weights only if the log weights are resolved to this many
# nats. Doubles of magnitude |x| are |x| * 2.2e-16 apart, so beyond about 4.5e9 nats weights
# that differ by more than this round to the same value, and a tie says nothing about the tail:
# a collapsed guide far out (mean field on kilpisjarvi after a step size of 10: log weights near
# -3e17, sds of 1e-13, every draw's weight rounded to one value) is then inf, not bounded.
TIE_RESOLUTION = 1e-6

# Draws from the guide that k̂ is estimated from, at least: at 4000 its threshold is 0.7 and
# its tail has 190 draws (below). With 1000, k̂ missed heavy tails that 4000 found (0.38
# against 0.76 on one posteriordb fit) and corrected means were noisier (docs/trust.md). The
# cost, one vectorized log-joint evaluation of these draws, was at most 5% of the fit's time
# on posteriordb (largest: diamonds).
PSIS_DRAWS = 4000
# After a --batch fit every draw costs a pass over the whole data (vae_digits: 1000 draws took
# 0.78x the fit's time and 1.6 GB at once; 4000, about 3x), so k̂ comes from 1000 draws (its
# threshold 0.67).
BATCH_PSIS_DRAWS = 1000


@dataclass(frozen=True)
class Psis:
    """The outcome of PSIS on one set of log weights.

    Attributes
    ----------
    khat : the estimated Pareto shape; inf when there were too few (finite) draws to fit a tail
        or fewer than MIN_TAIL weights within 708 nats of the largest (a few draws carry all
        the weight) or the largest are tied only by rounding (TIE_RESOLUTION), -inf when the
        largest weights are all equal (bounded weights).
    threshold : min(1 - 1 / log10(S), 0.7) for the S finite weights (Vehtari et al. 2024,
        section 3.2.4): below it the importance-sampling estimate is reliable at this S.
    log_weights : [S] smoothed, normalized log weights (logsumexp = 0) in the order of the
        input; non-finite input weights get -inf (weight 0).
    n_nonfinite : how many input log weights were NaN or +-inf.
    tail : the number of largest weights the Pareto distribution was fitted to.
    """

    khat: float
    threshold: float
    log_weights: np.ndarray
    n_nonfinite: int
    tail: int

    @property
    def ess(self) -> float:
        """Effective sample size of the smoothed weights, 1 / sum(w^2) for normalized w."""
        return float(np.exp(-logsumexp(2 * self.log_weights)))


def khat_threshold(S: int) -> float:
    """The sample-size-dependent k̂ threshold min(1 - 1/log10(S), 0.7) (Vehtari et al. 2024).

    For S <= 10 the formula gives no usable bound, and the threshold is -inf (nothing passes).
    """
    if S <= 10:
        return float("-inf")
    return float(min(1.0 - 1.0 / np.log10(S), 0.7))


def tail_length(S: int) -> int:
    """Draws in the fitted tail: ceil(min(S / 5, 3 sqrt(S))) (Vehtari et al. 2024, section 3).

    Written as in loo for independent draws (relative efficiency 1, as draws from a guide are).
    """
    return int(np.ceil(min(S / 5.0, 3.0 * np.sqrt(S))))


def psis(log_weights) -> Psis:
    """Pareto-smooth ``log_weights`` and estimate k̂.

    Non-finite entries are counted and set aside: -inf (a draw the target gives zero density,
    e.g. outside a support after a transform), +inf or NaN (an overflow) all get weight 0 and
    take no part in the fit; a caller reports ``n_nonfinite``. The threshold is that of the
    finite weights' count.

    Parameters
    ----------
    log_weights : [S] log p(zeta_s) - log q(zeta_s), up to an additive constant.

    Returns
    -------
    Psis (k̂, threshold, smoothed normalized log weights [S], count of non-finite inputs).
    """
    raw = np.asarray(log_weights, dtype=float).ravel()
    finite = np.isfinite(raw)
    x = raw[finite]
    out = np.full(raw.shape, -np.inf)
    S = x.size
    M = tail_length(S)
    if S == 0:
        return Psis(float("inf"), khat_threshold(0), out, int(raw.size), 0)
    # Shift so the largest log weight is 0: exp() below then cannot overflow.
    x = x - x.max()
    order = np.argsort(x, kind="stable")
    # The tail is the M largest weights above the (M+1)-th largest; exp of the cutoff is kept
    # above the smallest positive double, as in loo, so the tail is measured from a real value.
    below = x[order[-M - 1]] if M < S else -np.inf
    cutoff = max(below, np.log(np.finfo(float).tiny))
    tail_idx = np.flatnonzero(x > cutoff)
    khat = float("inf")
    resolved = np.abs(raw[finite]).max() * np.finfo(float).eps <= TIE_RESOLUTION
    if tail_idx.size < MIN_TAIL <= M and below == cutoff and resolved:
        # Enough draws, but the largest weights are tied at the cutoff: the weights are
        # bounded (q covers p, e.g. q = p exactly), the case k -> -inf; nothing to smooth.
        # Not when fewer than MIN_TAIL weights are within 708 nats of the largest (the cutoff
        # raised to log tiny): a few draws carry all the weight, the heaviest tail of all, and
        # k̂ stays inf, as in ArviZ (a diverged flow's weights, docs/history/trust-log.md).
        khat = float("-inf")
    elif tail_idx.size >= MIN_TAIL:
        tail_idx = tail_idx[np.argsort(x[tail_idx], kind="stable")]
        exceedances = np.exp(x[tail_idx]) - np.exp(cutoff)
        khat, sigma = gpd_fit(exceedances)
        if not np.isfinite(khat):
            khat = float("inf")       # a failed fit (degenerate tail) counts as the worst
        elif sigma > 0:
            # Replace the tail by the fitted distribution's expected order statistics
            # (quantiles at (i - 1/2) / M), truncated at the largest raw weight (log 0).
            probs = (np.arange(tail_idx.size) + 0.5) / tail_idx.size
            smoothed = np.log(gpd_quantile(probs, khat, sigma) + np.exp(cutoff))
            x = x.copy()
            x[tail_idx] = np.minimum(smoothed, 0.0)
    out[finite] = x - logsumexp(x)
    return Psis(khat, khat_threshold(S), out, int(raw.size - S), int(tail_idx.size))


def logsumexp(a) -> float:
    """log(sum(exp(a))) of a 1-D float array, equal to scipy.special.logsumexp's bit for bit
    (special.log_sum_exp, in numpy: a fit and summary of eight schools imports no scipy at all;
    the import measured 0.19 s of CPU, 2026-11-30, docs/history/performance-log.md)."""
    return float(log_sum_exp(a))


def gpd_fit(x: np.ndarray) -> tuple[float, float]:
    """Shape k and scale sigma of a generalized Pareto distribution fitted to sorted ``x``.

    The empirical Bayes estimate of Zhang & Stephens (2009): a posterior mean of the profile
    parameter b = -k / sigma over a grid of m = 30 + floor(sqrt(n)) values, weighted by their
    profile likelihoods, then k's estimate shrunk toward 0.5 by a prior worth PRIOR_K
    observations (Vehtari et al. 2024, appendix C, as in loo's ``gpdfit``).

    Parameters
    ----------
    x : [n] positive exceedances over the cutoff, sorted ascending (n >= MIN_TAIL).

    Returns
    -------
    (k, sigma) as floats.
    """
    n = x.size
    m = 30 + int(np.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1, dtype=float) - 0.5))
    # first quartile of x, as in Zhang & Stephens: x[floor(n/4 + 0.5)] in 1-based indexing
    b = b / (PRIOR_B * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    profile = n * (np.log(-b / k) - k - 1.0)
    # normalized likelihood weights, computed as 1 / sum_j exp(l_j - l_i): a weight far below
    # the best overflows its sum to inf, which is its weight of 0 (with 400,000 draws the
    # overflow's warning reached the user as 'ppl: warning: overflow encountered in exp')
    with np.errstate(over="ignore"):
        weights = 1.0 / np.exp(profile[None, :] - profile[:, None]).sum(axis=1)
    keep = weights >= 10 * np.finfo(float).eps
    weights, b = weights[keep], b[keep]
    b_post = float(np.sum(b * weights / weights.sum()))
    k_post = float(np.log1p(-b_post * x).mean())
    sigma = -k_post / b_post
    k_post = (n * k_post + PRIOR_K * 0.5) / (n + PRIOR_K)
    return k_post, sigma


def gpd_quantile(probs: np.ndarray, k: float, sigma: float) -> np.ndarray:
    """Quantiles of the generalized Pareto distribution (location 0) at ``probs`` in (0, 1).

    sigma * ((1 - p)^(-k) - 1) / k, written with expm1/log1p so k near 0 keeps its digits
    (the limit k -> 0 is the exponential distribution, -sigma log(1 - p)); as scipy's
    ``genpareto.ppf(p, k, scale=sigma)``.
    """
    if sigma <= 0:
        return np.full(np.shape(probs), np.nan)
    if abs(k) < np.finfo(float).eps:
        return -sigma * np.log1p(-probs)
    return sigma * np.expm1(-k * np.log1p(-probs)) / k


def psis_draws(options) -> int:
    """The guide draws k̂ and the unweighted summary take for fit options ``options``."""
    if options.batch is not None:   # each draw costs a pass over the whole data
        return max(options.draws, BATCH_PSIS_DRAWS)
    return max(options.draws, PSIS_DRAWS)
