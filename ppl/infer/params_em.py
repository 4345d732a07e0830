"""A full-rank fit with params finished by EM: the params of empirical Bayes where full rank has
too many parameters to be finished on fixed draws whole (advi._polishes).

A param's estimate is the ELBO's maximum in the params and the guide together. The step loop
leaves full rank's L noisy (its D (D + 3) / 2 parameters on Adam's steps), and a noisy guide is
the worse the more the latents' posterior needs it, so the params end where it costs least: a
local-level model (T = 60, D = 61) at q 0.231-0.237 against a MAP-II of 0.322, 0.43-0.49 nats
of marginal likelihood below its maximum, `reliable` (an audit, session 50). L-BFGS-B on fixed
draws finishes full rank up to D = 43 (advi.POLISH_MAX_PARAMS); beyond that its rounds reached
0.20 nats, and its 1,952 parameters overfit a round's draws.

EM needs neither. Each round:

- E step: the Gaussian that is optimal given the params, from the fixed-point conditions of the
  Gaussian ELBO, Sigma^-1 = E_q[-Hessian of log p] and E_q[gradient] = 0 (Opper and
  Archambeau, 2009): Sigma <- H^-1 and mu <- mu + H^-1 g, with H and g averaged over
  HESSIAN_PAIRS mirrored draws of the current guide (precondition.difference_hessian; the
  variational online Newton step of newton.py, with full rank's whole covariance). On a
  Gaussian posterior given the params it is exact in one step, whatever the guide was.
- M step: the params on fixed draws (fixed_draws.fit, M_ROUNDS), with L held up to a scale
  per row, so that the latents' means and marginal scales follow the params (:class:`Held`):
  2 D + P free parameters, which a round's draws do not overfit. Held alone (no E step)
  reached q 0.256 and stopped: the held L is right only for the params it was fitted at.

EM's weakness is a scale near 0 in a noncentred model (z ~ N(0, 1), tau * z): there the E
step's latents hardly depend on the data, so the M step's gradient in tau nearly vanishes, and
EM stays. Measured with EM in place of the rounds on empirical-Bayes eight schools, `--guide
fullrank`, seeds 0-9: one seed kept tau at 0.027 against a MAP-II of 0.254, which the rounds
(the guide and the params moved together) reach at every seed. That was with the steps held
by a drifting param (below); with the hold lifted EM reaches 0.253-0.254 there, but in place
of the rounds at every D it left the test models' local level (T = 40) up to 0.0061 nats below
the MAP-II where the rounds end within 0.0001, at 1.7-2.4x auto's CPU (benchmarks/
params_auto.py, session 52). So EM is only where the rounds cannot go
(advi._finishes_by_em); a large full rank whose steps left a scale near 0 keeps it.

A full rank with params can also reach the iteration cap, a param still drifting holding the
step loop's rule (local levels with T = 60-100: 5 of 6 fits, up to 0.48 nats below the MAP-II).
Its last iterate is noisy, but the E step sets the guide afresh from the params, so EM finishes
such a fit too (advi.fit), and where the params settled it is converged
(advi.FINISHED_BY_EM): all six then 0.0001-0.0027 nats below, `reliable`.

EM's rounds shrink the params' distance to their fixed point by a factor each (0.73-0.77 on
the local level below), so every third round starts where SQUAREM extrapolates the two before
(Varadhan and Roland 2008, "Simple and globally convergent methods for accelerating the
convergence of any EM algorithm", Scand. J. Statist. 35; :func:`_jump`), kept only where its
round's ELBO is no lower than the round it jumped from. EM stops after QUIET_ROUNDS rounds in a
row in which no param moved more than PARAM_TOL on its unconstrained scale, or after
MAX_ROUNDS. One quiet round was the rule before, and a round can be quiet by chance: with
the drift hold lifted (below) and no jump, the T = 60 local level's EM under auto went from
q 0.62 with moves of 0.34, 0.08, 0.062, 0.046, 0.030, 0.022, 0.012 in log q, then 0.002, and
stopped at q 0.338 against 0.322, 0.0115 nats below the MAP-II; with the jumps and two quiet
rounds, 0.0011.

A param still drifting holds the step loop's rule (schedule.drifting), which cost these fits
up to 10,000 steps, and let a noncentred scale drift to 0, from which EM cannot move it
(docs/trust.md); where EM (or the rounds) follows, it does not hold (advi._policies), as the
E step makes the guide afresh from the params. Measured under auto (a /tmp script, seeds 0-2,
local levels with T = 60, 80 and 100 on four data draws and slopes with 30 groups, against
the exact MAP-II): the 15 fits' CPU 225 s -> 151 s, their steps 1,700-6,300 where 9 of 15 had
reached the cap, all within 0.0021 nats of the MAP-II (0.0033 before).

Before the jumps and the lift, against the exact MAP-II (benchmarks/params_auto.py --large,
seeds 0-4; docs/trust.md): the local level 0.0000-0.0033 nats below it, 30-group random
slopes 0.0000-0.0013; auto's whole fit took 7.1x and 3.1x mean field's CPU, 6.1x and 2.7x
before EM (separate runs; 9.4x and 3.8x once capped fits were finished too, in a run beside
other work).
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from ..blocks import trace_blocks
from . import fixed_draws
from .precondition import difference_hessian

HESSIAN_PAIRS = 64      # mirrored draws of an E step's expected Hessian and gradient
M_ROUNDS = (128, 512)   # fixed_draws.fit's rounds of an M step (mirrored pairs each)
PARAM_TOL = 0.004       # largest move of a param (unconstrained) of a quiet round
QUIET_ROUNDS = 2        # quiet rounds in a row that end EM (one can be quiet by chance)
MAX_JUMP = 8.0          # the largest SQUAREM step (_jump), in EM rounds' moves
MAX_ROUNDS = 20
# EM finishes a full rank over at most MAX_DIM latents (advi._finishes_by_em), and up to there
# auto's Gaussian rung of a model with params is full rank (auto.fit_with_params), not the low
# rank the ladder takes beyond full rank's 200 (guides.AUTO_FULLRANK_MAX_DIM), which nothing
# finishes: random intercepts and slopes with 120 groups (D = 240, tests/stats/
# test_params_auto.py's model) kept mean field at tau0 0.015 against a MAP-II of 0.655, 18.7
# nats below, `reliable` (low rank's ELBO was lower still); a local level with T = 250 kept
# it at q 0.074 against 0.339, 76 nats below, `unreliable`. Full rank with EM: 0.0001 and
# 0.0025-0.0059 nats (seeds 0-1, benchmarks/params_auto.py --beyond, session 53). Its cost
# grows as D^2 a draw (the M step's 1,024 draws through L) and 2 D gradients an E step: auto's
# CPU over mean field's 3.7 -> 8.8 on those slopes, 7.0 -> 16.8 on the local level; slopes
# with 250 groups (D = 500) under --guide fullrank, 162 s of CPU, 72 of them EM's. On one-way
# random intercepts with 300 groups, where mean field is exact, it went 2.8 -> 15.0 to tie
# with mean field, until auto skipped it where the latents are independent (:func:`independent`):
# 1.03.
MAX_DIM = 500


def applies(guide) -> bool:
    """Whether ``guide`` (the family of a model with params) is one EM finishes: full rank
    over the latents, no guide statements."""
    return guide.n_guided == 0 and guide.auto.name == "fullrank" and guide.d_auto > 0 \
        and guide.n_params > 0


def finish(compiled, guide, theta: np.ndarray, rng: np.random.Generator, hessian_chunk,
           chunk) -> tuple[np.ndarray, float, int, bool] | None:
    """(theta, its ELBO on the last M step's fresh draws, the free parameters of the M step,
    whether the params settled: QUIET_ROUNDS rounds in a row moved them less than PARAM_TOL)
    after EM rounds from ``theta``; None when no round could be taken (an expected Hessian
    that is not positive definite, or an ELBO not finite). ``hessian_chunk``: draws a
    gradient of the Hessian's differences may take (optim.hessian_chunk); ``chunk``: the fixed
    draws' (advi.fixed_draws_chunk).

    Raises
    ------
    KeyboardInterrupt : Ctrl-C during an M step (fixed_draws.fit returns its rounds then).
    """
    n = guide.n_auto_theta
    starts, quiet, elbo, jumped_from = [theta[n:]], 0, None, None
    for _ in range(MAX_ROUNDS):
        found = _round(compiled, guide, theta, rng, hessian_chunk, chunk)
        if jumped_from is not None and (found is None or found[1] < elbo):
            # the jump overshot: on from the round it jumped from (the ELBOs are estimated
            # on the same draws, fixed_draws.FINAL_DRAWS, so their difference is the guides')
            theta, starts, jumped_from, quiet = jumped_from, [jumped_from[n:]], None, 0
            continue
        if found is None:
            break
        new, new_elbo = found
        moved = np.max(np.abs(new[n:] - theta[n:]))
        theta, elbo, jumped_from = new, new_elbo, None
        quiet = quiet + 1 if moved < PARAM_TOL else 0
        if quiet == QUIET_ROUNDS:
            break
        starts.append(theta[n:])
        if len(starts) == 3:
            jump = _jump(*starts)
            starts = [theta[n:]]
            if jump is not None:
                jumped_from = theta
                theta = np.concatenate([theta[:n], jump])
                starts = [jump]
    if elbo is None:
        return None
    settled = quiet == QUIET_ROUNDS
    return theta if jumped_from is None else jumped_from, elbo, \
        2 * guide.d_auto + guide.n_params, settled


def _jump(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray | None:
    """SQUAREM's extrapolation of the params from two EM rounds p0 -> p1 -> p2 (Varadhan and
    Roland 2008, scheme S3): p0 + 2 a r + a^2 v, r = p1 - p0, v = p2 - 2 p1 + p0,
    a = |r| / |v| at most MAX_JUMP. Where each round shrinks the distance to the fixed point
    by the same factor rho, a = 1 / (1 - rho) and the jump lands on it. None where a <= 1
    (the jump would be p2 itself: the rounds are not shrinking)."""
    r, v = p1 - p0, p2 - 2 * p1 + p0
    size = np.linalg.norm(v)
    a = MAX_JUMP if size == 0 else min(np.linalg.norm(r) / size, MAX_JUMP)
    return p0 + 2 * a * r + a * a * v if a > 1.0 else None


def _round(compiled, guide, theta, rng, hessian_chunk, chunk):
    """(theta, its ELBO on the M step's fresh draws) after one EM round from ``theta``, or
    None where the round could not be taken."""
    optimal = _e_step(compiled, guide, theta, rng, hessian_chunk)
    if optimal is None:
        return None
    held = Held(guide, optimal)
    rounds = fixed_draws.fit(compiled.log_joint, held, held.start, rng, rounds=M_ROUNDS,
                             chunk=chunk)
    if rounds.interrupted:   # Ctrl-C: the caller keeps the steps' fit, as for the rounds
        raise KeyboardInterrupt
    if rounds.failed is not None or not np.isfinite(rounds.elbo):
        return None
    return np.asarray(held.expand(rounds.theta)), rounds.elbo


def _e_step(compiled, guide, theta, rng, hessian_chunk) -> np.ndarray | None:
    """theta with full rank's mean and L those of the Gaussian optimal given its params (the
    module docstring), or None where the expected Hessian is not positive definite."""
    D, n = guide.d_auto, guide.n_auto_theta
    family = guide.auto
    log_joint = _given_params(compiled, guide, theta)
    eps = rng.standard_normal((HESSIAN_PAIRS, guide.eps_dim(guide.D)))
    z = guide.draw(theta, np.concatenate([eps, -eps]))[:, guide.auto_cols]
    with np.errstate(all="ignore"):
        H = difference_hessian(log_joint, z, np.exp(family.log_sd(theta[:n])), hessian_chunk)
        gradient = _gradient(log_joint, z)
    if gradient is None or not np.all(np.isfinite(H)):
        return None
    g = gradient.mean(axis=0)
    try:
        root = np.linalg.cholesky(H)               # H = C C^T, so Sigma = C^-T C^-1
    except np.linalg.LinAlgError:
        return None
    inverse_root = np.linalg.inv(root)
    sigma = inverse_root.T @ inverse_root
    L = np.linalg.cholesky(0.5 * (sigma + sigma.T))
    mu = theta[:D] + inverse_root.T @ (inverse_root @ g)
    return np.concatenate([family.pack(mu, L), theta[n:]])


# :func:`independent`: INDEPENDENCE_DRAWS draws of the fit's guide, from a stream of their own
# (the fit's is left as it was: a fit that goes on to full rank is the one it was before), at
# which INDEPENDENCE_SPLITS random halves of the latents are shifted by INDEPENDENCE_SHIFT of
# their guide sds; a gradient entry outside the half that moved by more than INDEPENDENCE_TOL
# of the gradients' size is a coupling, a smaller one rounding (a pair of coupled latents is
# split across the halves, the moved one in the shifted half, with probability 1/4 each time:
# one such pair is missed by all 24 splits with probability 0.001)
INDEPENDENCE_DRAWS = 2
INDEPENDENCE_SEED = 20261205
INDEPENDENCE_SPLITS = 24
INDEPENDENCE_SHIFT = 0.5
INDEPENDENCE_TOL = 1e-9


def independent(compiled, guide, theta: np.ndarray) -> bool:
    """Whether the latents of a fit with params (``guide``, the user family, at ``theta``)
    are independent given the params: shifting any half of them changes no gradient entry of
    the others, beyond rounding (INDEPENDENCE_SPLITS random halves), with the params held at
    theta's and again at their starting values (``guide.start``). An independence the model's
    structure makes leaves those entries as they were (their terms read none of the shifted
    latents), and a coupling through a param does not; the starting values keep a coupling
    whose scale the fit moved near 0 (mean field's q of 2e-7 on a local level, where the
    changes are 1e-13 of the gradient) from passing for rounding. The cost is 4
    INDEPENDENCE_SPLITS gradients of INDEPENDENCE_DRAWS draws at any D, and no D x D array.
    Where it holds the log joint is a sum of one-latent terms given the params, the best
    Gaussian of any covariance is a product (for given marginals a product has the most
    entropy), so full rank's ELBO is mean field's at every params and their maxima the same.
    A log joint or gradient that is not finite at a shifted draw reads as coupled."""
    D, n = guide.d_auto, guide.n_auto_theta
    if D == 1:
        return True
    rng = np.random.default_rng(INDEPENDENCE_SEED)
    eps = rng.standard_normal((INDEPENDENCE_DRAWS, guide.eps_dim(guide.D)))
    z = guide.draw(theta, eps)[:, guide.auto_cols]
    shift = INDEPENDENCE_SHIFT * np.exp(guide.auto.log_sd(theta[:n]))
    halves = rng.random((INDEPENDENCE_SPLITS, D)) < 0.5
    for params in (theta[n:], guide.start):
        log_joint = _given_params(compiled, guide, np.concatenate([theta[:n], params]))
        for half in halves:
            moved = np.where(half, shift, 0.0)
            with np.errstate(all="ignore"):
                up, down = _gradient(log_joint, z + moved), _gradient(log_joint, z - moved)
            if up is None or down is None:
                return False
            size = np.abs(up) + np.abs(down)
            if np.any(np.abs(up - down)[:, ~half] > INDEPENDENCE_TOL * size.max()):
                return False
    return True


def _gradient(log_joint, z: np.ndarray) -> np.ndarray | None:
    """The gradient of each draw's log joint [M, D], or None where it is not finite."""
    value, vjp = trace_blocks(log_joint, z)
    gradient = vjp(np.ones(z.shape[0]))
    finite = np.all(np.isfinite(value)) and np.all(np.isfinite(gradient))
    return gradient if finite else None


def _given_params(compiled, guide, theta):
    """The log joint over the latents' columns [S, D], the params held at theta's values (the
    Hessian's differences must not move them: a param's column is read from the first draw)."""
    values = guide.draw(theta, np.zeros((1, guide.eps_dim(guide.D))))[0, guide.param_cols]
    order = np.argsort(np.concatenate([guide.param_cols, guide.auto_cols]))

    def log_joint(z):
        held = np.broadcast_to(values, (z.shape[0], values.size))
        return compiled.log_joint(anp.concatenate([held, z], axis=1)[:, order])
    return log_joint


class Held:
    """The family of an M step: the user guide's full rank with L = diag(exp(s)) L0, L0 held;
    its mean, s and the params free (r = [mu (D), s (D), params (P)]). The fixed-draws
    protocol (fixed_draws.py): ``D``, ``eps_dim``, ``units``, ``draw``, ``draw_and_entropy``,
    ``entropy``."""

    def __init__(self, guide, theta: np.ndarray):
        self.guide = guide
        D, n = guide.d_auto, guide.n_auto_theta
        M0 = np.asarray(theta[D:n]).reshape(D, D)
        self.lower, self.log_diag = np.tril(M0, -1), np.diag(M0).copy()
        self.start = np.concatenate([theta[:D], np.zeros(D), theta[n:]])
        self.D = guide.D

    def expand(self, r):
        """The user guide's theta at r (differentiable)."""
        D = self.guide.d_auto
        s = r[D:2 * D]
        M = self.lower * anp.exp(s)[:, None] + anp.diag(self.log_diag + s)
        return anp.concatenate([r[:D], anp.reshape(M, (-1,)), r[2 * D:]])

    def eps_dim(self, D: int) -> int:
        return self.guide.eps_dim(D)

    def units(self, r) -> np.ndarray:
        return np.ones(len(r))

    def draw_and_entropy(self, r, eps):
        return self.guide.draw_and_entropy(self.expand(r), eps)

    def draw(self, r, eps):
        return self.draw_and_entropy(r, eps)[0]

    def entropy(self, r):
        return self.guide.entropy(self.expand(r))
