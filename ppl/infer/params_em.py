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
(the guide and the params moved together) reach at every seed. So EM is only where the rounds
cannot go (advi._finishes_by_em); a large full rank whose steps left a scale near 0 keeps it.

A full rank with params can also reach the iteration cap, a param still drifting holding the
step loop's rule (local levels with T = 60-100: 5 of 6 fits, up to 0.48 nats below the MAP-II).
Its last iterate is noisy, but the E step sets the guide afresh from the params, so EM finishes
such a fit too (advi.fit), and where the params settled it is converged
(advi.FINISHED_BY_EM): all six then 0.0001-0.0027 nats below, `reliable`.

EM stops when no param moved more than PARAM_TOL on its unconstrained scale (its steps
shrink geometrically: 0.08, 0.04, 0.036, ... on the local level model), or after MAX_ROUNDS.
Where they shrink slowly that stops short: with the step loop's drift hold lifted for fits EM
finishes (tried, not kept), the T = 60 local level's steps ended farther off and EM stopped
0.0115 nats below the MAP-II (log q 0.05 off), where the other seeds ended within 0.0001.
Measured against the exact MAP-II (benchmarks/params_auto.py --large, seeds 0-4; docs/trust.md):
the local level 0.0000-0.0033 nats below it, 30-group random slopes 0.0000-0.0013; auto's
whole fit took 7.1x and 3.1x mean field's CPU, 6.1x and 2.7x before (separate runs; 9.4x and
3.8x once capped fits were finished too, in a run beside other work).
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from ..blocks import trace_blocks
from . import fixed_draws
from .precondition import difference_hessian

HESSIAN_PAIRS = 64      # mirrored draws of an E step's expected Hessian and gradient
M_ROUNDS = (128, 512)   # fixed_draws.fit's rounds of an M step (mirrored pairs each)
PARAM_TOL = 0.004       # largest move of a param (unconstrained) that ends the rounds
MAX_ROUNDS = 20


def applies(guide) -> bool:
    """Whether ``guide`` (the family of a model with params) is one EM finishes: full rank
    over the latents, no guide statements."""
    return guide.n_guided == 0 and guide.auto.name == "fullrank" and guide.d_auto > 0 \
        and guide.n_params > 0


def finish(compiled, guide, theta: np.ndarray, rng: np.random.Generator, hessian_chunk,
           chunk) -> tuple[np.ndarray, float, int, bool] | None:
    """(theta, its ELBO on the last M step's fresh draws, the free parameters of the M step,
    whether the params settled: moved less than PARAM_TOL in the last round) after EM rounds
    from ``theta``; None when no round could be taken (an expected Hessian
    that is not positive definite, or an ELBO not finite). ``hessian_chunk``: draws a
    gradient of the Hessian's differences may take (optim.hessian_chunk); ``chunk``: the fixed
    draws' (advi.fixed_draws_chunk).

    Raises
    ------
    KeyboardInterrupt : Ctrl-C during an M step (fixed_draws.fit returns its rounds then).
    """
    elbo, k, settled = None, 2 * guide.d_auto + guide.n_params, False
    for _ in range(MAX_ROUNDS):
        optimal = _e_step(compiled, guide, theta, rng, hessian_chunk)
        if optimal is None:
            break
        held = Held(guide, optimal)
        rounds = fixed_draws.fit(compiled.log_joint, held, held.start, rng, rounds=M_ROUNDS,
                                 chunk=chunk)
        if rounds.interrupted:   # Ctrl-C: the caller keeps the steps' fit, as for the rounds
            raise KeyboardInterrupt
        if rounds.failed is not None or not np.isfinite(rounds.elbo):
            break
        before = theta[guide.n_auto_theta:]
        theta, elbo = np.asarray(held.expand(rounds.theta)), rounds.elbo
        settled = np.max(np.abs(theta[guide.n_auto_theta:] - before)) < PARAM_TOL
        if settled:
            break
    return None if elbo is None else (theta, elbo, k, settled)


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
        value, vjp = trace_blocks(log_joint, z)
        g = vjp(np.ones(z.shape[0])).mean(axis=0)
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(g)) and np.all(np.isfinite(value))):
        return None
    try:
        root = np.linalg.cholesky(H)               # H = C C^T, so Sigma = C^-T C^-1
    except np.linalg.LinAlgError:
        return None
    inverse_root = np.linalg.inv(root)
    sigma = inverse_root.T @ inverse_root
    L = np.linalg.cholesky(0.5 * (sigma + sigma.T))
    mu = theta[:D] + inverse_root.T @ (inverse_root @ g)
    return np.concatenate([family.pack(mu, L), theta[n:]])


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
