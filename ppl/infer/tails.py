"""The tail check of a Gaussian fit: its importance-corrected summary against the same frame
under Student-t noise (ppl/guides/student.py), weighted from that t's own draws.

k̂ reads the weights of the guide's own draws, and a Gaussian's draws rarely reach a tail
that falls off exponentially on the unconstrained space: a normal model's mean and scale from
three points with ``sigma ~ HalfCauchy(5)`` (sigma's posterior falls as sigma^-4) had mean-field
and full-rank fits `reliable` at k̂ 0.36-0.48 with sds 23-41% short, and k̂ rose to 0.77-1.08
only from 16,000-64,000 draws (docs/trust.md, "Known limits"). The t's draws reach that tail,
so where both proposals can be trusted their corrected summaries estimate the same posterior,
and a gap beyond issue 11's targets and their Monte Carlo error says the Gaussian's misses
mass its weights cannot restore (verdict.tails_disagreement). Nothing is fitted: the t is the
fit's own mu and L with heavier noise.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..guides import AUTO_FULLRANK_MAX_DIM, family
from .psis import Psis
from .verdict import MIN_WEIGHTS_ESS

CHECKED = ("meanfield", "fullrank")
# The t has full rank's D + D^2 parameters and its draws a D x D product: up to full rank's
# own limit under --guide auto (200)
MAX_DIM = AUTO_FULLRANK_MAX_DIM


def applies(result, options) -> bool:
    """Whether a fit is checked: an ADVI fit of a Gaussian family in at most MAX_DIM
    unconstrained dimensions, not --batch (each draw a pass over the whole data)."""
    return (options.method == "advi" and options.batch is None
            and result.guide.name in CHECKED and 0 < len(result.names) <= MAX_DIM)


def under_student_t(result, nu: int | None = None):
    """The Gaussian ``result`` (mean field or full rank) as the same frame under Student-t
    noise of ``nu`` degrees of freedom (the family's default when None): the same mu and L,
    nothing fitted; a mean field's theta in full rank's layout (L = diag(sigma))."""
    D = len(result.names)
    guide = family("studentt" if nu is None else f"studentt:{nu}", D)
    theta = result.theta if result.guide.name.startswith("fullrank") else \
        guide.warm_start(result.guide, result.theta)
    return dataclasses.replace(result, guide=guide, theta=theta)


def trusted(p: Psis) -> bool:
    """Whether the t's own weights can correct a summary: k̂ below its threshold, every log
    weight finite, an effective sample size of at least MIN_WEIGHTS_ESS draws."""
    return bool(p.khat < p.threshold and p.n_nonfinite == 0 and p.ess >= MIN_WEIGHTS_ESS)


def weighted_moments(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """(mean, sd, standard error of the mean, standard error of log sd), [K] each, of draws
    ``values`` [n, K] under importance weights [n]: the self-normalized estimates and their
    delta-method standard errors, sqrt(sum w^2 (x - m)^2) and sqrt(sum w^2 ((x - m)^2 - v)^2)
    / (2 v) for normalized w (Owen 2013, "Monte Carlo theory, methods and examples", section
    9.2), which grow with an element's kurtosis as the sd's own error does."""
    w = weights / np.sum(weights)
    w2 = w ** 2
    mean = w @ values
    var, se2, fourth = (np.zeros(np.shape(values)[1]) for _ in range(3))
    for rows in _row_chunks(len(w)):
        squares = (values[rows] - mean) ** 2
        var += w[rows] @ squares
        se2 += w2[rows] @ squares
    for rows in _row_chunks(len(w)):
        fourth += w2[rows] @ ((values[rows] - mean) ** 2 - var) ** 2
    return mean, np.sqrt(var), np.sqrt(se2), np.sqrt(fourth) / (2 * var)


# Draws a pass of weighted_moments takes at once. The summary's 32,000 draws of a 266-element
# report (gp_pois_regr) made each [n, K] temporary 68 MB, fresh memory from the system every
# time (page faults): 0.3 s a call; in blocks of 2048 draws, 0.04 s.
ROWS = 2048


def _row_chunks(n: int):
    return (slice(start, start + ROWS) for start in range(0, n, ROWS))
