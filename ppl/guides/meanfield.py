"""Variational families on the unconstrained space [D]: parameters, reparameterized draws, entropy.

The diagonal Gaussian (mean field); the other families sit beside it in this package with the
same methods. The log joint lives in ppl/compiler/, the ELBO and optimizers in ppl/infer/.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import isbox

_LOG_2PI = float(np.log(2 * np.pi))


# The draw and the entropy are each one autograd primitive with a hand-written VJP: traced op
# by op they are eight operations of a few microseconds of bookkeeping each, every step (issue
# 15; a small model's step traces about fifty). Forward and backward repeat the traced
# operations in the traced order (autograd's own VJPs of getitem, exp, multiply, add and sum),
# so values and gradients are bit for bit those of the traced path (tests/unit/test_guides.py).
# The VJPs are plain numpy, first order: under a second-order trace (theta boxed twice) the
# traced formulas are used.

def _second_order(*args) -> bool:
    return any(isbox(a) and isbox(a._value) for a in args)


@primitive
def _draw(theta, eps):
    """mu + exp(log_sigma) * eps [S, D] for theta = (mu, log_sigma) [2 D], eps [S, D]."""
    D = theta.shape[0] // 2
    return theta[:D] + np.exp(theta[D:]) * eps


def _to_rows(g, ndim: int):
    """autograd's unbroadcast of g [S, D] (or [D]) to [D]: the leading axes summed away."""
    while (g.ndim if type(g) is np.ndarray else np.ndim(g)) > ndim:
        g = np.add.reduce(g, axis=0)     # np.sum's own reduction, without its Python layer
    return g


def _draw_vjp_theta(ans, theta, eps):
    D = theta.shape[0] // 2
    sigma = np.exp(theta[D:])
    return lambda g: np.concatenate([_to_rows(g, 1), sigma * _to_rows(eps * g, 1)])


def _draw_vjp_eps(ans, theta, eps):
    sigma = np.exp(theta[theta.shape[0] // 2:])
    return lambda g: _to_rows(sigma * g, np.ndim(eps))


defvjp(_draw, _draw_vjp_theta, _draw_vjp_eps)


@primitive
def _entropy(theta):
    """sum(log_sigma) + D/2 (1 + log 2 pi) for theta = (mu, log_sigma) [2 D]."""
    D = theta.shape[0] // 2
    # np.add.reduce: np.sum's own reduction of a vector (no Python layer; a step calls it)
    log_sigma = theta[D:]
    return (np.add.reduce(log_sigma) if type(log_sigma) is np.ndarray else np.sum(log_sigma)) \
        + 0.5 * D * (1.0 + _LOG_2PI)


def _entropy_vjp(ans, theta):
    D = theta.shape[0] // 2
    return lambda g: np.concatenate([np.zeros(D), g + np.zeros(theta.shape[0] - D)])


defvjp(_entropy, _entropy_vjp)


# 2 D -> the entropy's gradient in theta (zeros, then ones), as _entropy_vjp makes it
_ENTROPY_GRAD: dict = {}


@dataclass(frozen=True)
class MeanField:
    """A diagonal Gaussian q(zeta) = N(mu, diag(exp(log_sigma))^2) on the unconstrained space.

    ``theta`` is one flat vector [2 D]: ``mu`` (the first D entries), then ``log_sigma``. One flat
    vector keeps the optimizers and the non-finite checks trivial. Methods are written in
    ``autograd.numpy`` so they can be differentiated with respect to ``theta``.
    """

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """Initial parameters: mu = 0, log_sigma = log(init_scale).

        Why: the unconstrained origin maps to a central point of each support (0 for reals,
        lower + 1 for a lower bound, the midpoint of an interval), and a small sigma keeps
        the first draws near it, in a region where the log density is usually finite and
        moderate. Stan's ADVI likewise centres its first Gaussian on one point of the
        unconstrained space (its initial values) with a fixed log sigma (Kucukelbir et al. 2017,
        JMLR 18(14), section 3; CmdStan ``variational``: omega = 0); we take a smaller sigma
        because wide early draws are the ones most likely to overflow a log density.

        Parameters
        ----------
        D : size of the unconstrained space.
        init_scale : initial sigma of every coordinate (> 0).

        Returns
        -------
        theta : [2 D] float64.
        """
        return np.concatenate([np.zeros(D), np.full(D, np.log(init_scale))])

    @staticmethod
    def split(theta):
        """``(mu [D], log_sigma [D])`` from ``theta [2 D]``."""
        D = theta.shape[0] // 2
        return theta[:D], theta[D:]

    def draw(self, theta, eps):
        """Reparameterized draws ``zeta = mu + exp(log_sigma) * eps``.

        Parameters
        ----------
        theta : [2 D] guide parameters.
        eps : [S, D] standard normal noise.

        Returns
        -------
        zeta : [S, D], differentiable with respect to theta.
        """
        if _second_order(theta, eps):
            mu, log_sigma = self.split(theta)
            return mu + anp.exp(log_sigma) * eps
        return _draw(theta, eps)

    def entropy(self, theta):
        """Closed-form entropy: sum(log_sigma) + D/2 (1 + log 2 pi) (a scalar)."""
        if _second_order(theta):
            D = theta.shape[0] // 2
            return anp.sum(theta[D:]) + 0.5 * D * (1.0 + _LOG_2PI)
        return _entropy(theta)

    def log_q(self, theta, zeta):
        """log q(zeta; theta) [S] for zeta [S, D] (used by the 'sticking the landing' gradient)."""
        mu, log_sigma = self.split(theta)
        z = (zeta - mu) * anp.exp(-log_sigma)
        return (-0.5 * anp.sum(z * z, axis=1) - anp.sum(log_sigma)
                - 0.5 * log_sigma.shape[0] * _LOG_2PI)

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, D] and their log q [n], taken from the
        noise: (zeta - mu) / sigma is eps itself. Equal to :meth:`log_q` at the draws to
        rounding, except where the draws round to the mean (sigma below mu's last digit, a
        collapsed guide): log_q(zeta) is then the same at every draw, the importance weights
        tie and PSIS read them as bounded (k̂ -inf, 'reliable'; --init-scale 1e-100 on eight
        schools), where these weights have the heavy tail such a guide has."""
        theta = np.asarray(theta, dtype=float)
        D = theta.shape[0] // 2
        return (self.draw(theta, eps),
                -0.5 * np.sum(eps * eps, axis=1) - np.sum(theta[D:]) - 0.5 * D * _LOG_2PI)

    def sample(self, theta: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws [n, D] from q (plain numpy; for summaries and predictive)."""
        mu, _ = self.split(np.asarray(theta, dtype=float))
        return self.draw(theta, rng.standard_normal((n, mu.shape[0])))

    # ----- the rest of the family protocol (see ppl/guides/__init__.py) ------------------------

    name = "meanfield"
    dense_frame = False  # fitted in the model's coordinates (precondition.py whitens its mean)

    def eps_dim(self, D: int) -> int:
        """Columns of the noise ``eps`` one draw needs: D."""
        return D

    def draw_and_entropy(self, theta, eps):
        """``(draw(theta, eps), entropy(theta))``: the two halves of the ELBO."""
        return self.draw(theta, eps), self.entropy(theta)

    def draw_with_pullback(self, theta: np.ndarray, eps: np.ndarray):
        """The ELBO's guide half without autograd: ``(zeta [S, D], entropy, pullback)``.

        ``pullback(g)`` maps the gradient g [S, D] of the mean log joint in zeta to the
        ELBO's gradient in theta [2 D]: the draw's VJP plus the entropy's, the very
        operations (and order) of ``_draw``'s and ``_entropy``'s VJPs, so the result is the
        traced ELBO's gradient bit for bit. ``elbo.elbo_and_grad`` then traces only the log
        joint: four fewer traced operations a step (draw, entropy, mean, sum; issue 15).
        Plain numpy, first order: theta and eps must not be boxed.
        """
        # _draw's and its VJP's operations with their one exp(log_sigma) shared; .fun: the
        # entropy primitive's plain function (no boxes to look for)
        D = theta.shape[0] // 2
        sigma = np.exp(theta[D:])
        zeta, entropy = theta[:D] + sigma * eps, _entropy.fun(theta)
        entropy_grad = _ENTROPY_GRAD.get(theta.shape[0])    # the same every call
        if entropy_grad is None:
            entropy_grad = _ENTROPY_GRAD[theta.shape[0]] = _entropy_vjp(entropy, theta)(1.0)
            entropy_grad.flags.writeable = False
        return zeta, entropy, lambda g: np.concatenate(
            [_to_rows(g, 1), sigma * _to_rows(eps * g, 1)]) + entropy_grad

    def mean(self, theta) -> np.ndarray:
        """The mean of q, [D]."""
        return self.split(theta)[0]

    def log_sd(self, theta) -> np.ndarray:
        """The log of each coordinate's marginal sd, [D]."""
        return self.split(theta)[1]

    def jitter_scale(self, theta) -> np.ndarray:
        """Units [2 D] of the iterate-jitter rule: sigma_i for mu_i, 1 for log_sigma_i."""
        mu, log_sigma = self.split(theta)
        return np.concatenate([np.exp(log_sigma), np.ones_like(mu)])

    def frame(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(m0 [D], W [D])``: q is the law of m0 + W * eps (a diagonal W), for warm starts."""
        mu, log_sigma = self.split(np.asarray(theta, dtype=float))
        return mu.copy(), np.exp(log_sigma)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W * zeta, zeta ~ q(theta); W [D] diagonal only."""
        mu, log_sigma = self.split(np.asarray(theta, dtype=float))
        return np.concatenate([m0 + W * mu, log_sigma + np.log(W)])

    def warm_start(self, source, theta) -> np.ndarray:
        """Mean field starts from nothing richer; refitting a mean-field fit keeps it."""
        return np.asarray(theta, dtype=float)

    def to_dict(self, theta, names) -> dict:
        """fit.json's parameters: element name -> {"mu": .., "log_sigma": ..}."""
        mu, log_sigma = self.split(np.asarray(theta, dtype=float))
        return {n: {"mu": float(m), "log_sigma": float(s)}
                for n, m, s in zip(names, mu, log_sigma)}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        """The inverse of :meth:`to_dict` (KeyError when an element is missing)."""
        return np.array([parameters[n]["mu"] for n in names]
                        + [parameters[n]["log_sigma"] for n in names], dtype=float)


MEAN_FIELD = MeanField()
