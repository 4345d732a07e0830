"""The ELBO of a guide against a log joint, and its reparameterized gradient (autograd).

The log joint (compiler/joint.py) maps zeta [S, D] to [S]; the guide (ppl/guides) gives the draws
and the entropy. We maximize the ELBO; the optimizers minimize, so advi.py flips the sign once.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from autograd.tracer import getval, isbox

from ..blocks import trace_blocks
from ..guides import MEAN_FIELD, MeanField

LogJoint = Callable[[np.ndarray], np.ndarray]


def elbo(log_joint: LogJoint, theta, eps, guide: MeanField = MEAN_FIELD):
    """Monte Carlo ELBO estimate: mean over draws of log p(data, zeta) + H[q] (closed form).

    Parameters
    ----------
    log_joint : zeta [S, D] -> [S], log p(data, T(zeta)) + log|det J_T(zeta)|.
    theta : the guide's parameters ([2 D] for mean field).
    eps : [S, guide.eps_dim(D)] standard normal noise; zeta = guide.draw(theta, eps).
    guide : the variational family (any of ppl.guides); its entropy is in closed form,
        except a flow's, estimated at the same eps (``draw_and_entropy``).

    Returns
    -------
    A scalar, differentiable with respect to ``theta`` (autograd).
    """
    zeta, entropy = guide.draw_and_entropy(theta, eps)
    return anp.mean(log_joint(zeta)) + entropy


def _stl_surrogate(log_joint, theta, eps, guide):
    # 'Sticking the landing' (Roeder, Wu and Duvenaud 2017, "Sticking the Landing: Simple,
    # Lower-Variance Gradient Estimators for Variational Inference", NeurIPS): write the ELBO as
    # E[log p(zeta) - log q(zeta; theta)] and stop the gradient through the theta that appears
    # inside log q, keeping only the path through zeta = mu + sigma * eps. The dropped score term
    # has expectation zero, so the estimate stays unbiased, and when q equals the posterior
    # log p - log q is constant in zeta, so every draw gives a zero gradient (zero variance).
    # autograd's getval is its stop-gradient: it returns the plain value inside the trace.
    zeta = guide.draw(theta, eps)
    return anp.mean(log_joint(zeta) - guide.log_q(getval(theta), zeta))


def elbo_and_grad(log_joint: LogJoint, theta: np.ndarray, eps: np.ndarray,
                  guide: MeanField = MEAN_FIELD, stl: bool = False,
                  frame=None, prepared=None) -> tuple[float, np.ndarray]:
    """The ELBO estimate and its gradient with respect to ``theta``, in one autograd pass.

    Parameters
    ----------
    log_joint, theta, eps, guide : as in :func:`elbo`.
    stl : use the 'sticking the landing' gradient (Roeder et al. 2017). The value returned is
        still the closed-form-entropy ELBO estimate of :func:`elbo` at the same draws.
    frame : the precondition.Frame whose ``log_joint`` this is (a family fitted in u, zeta =
        m0 + W u), or None; with a guide's ``draw_with_pullback`` the frame's map is then
        applied in plain numpy (Frame.chain): the same value and gradient, bit for bit.
    prepared : the guide's ``prepare(eps)`` (what its ``draw_with_pullback`` computes from the
        draws alone), held by a caller that evaluates many thetas at the same draws
        (fixed_draws.py), or None: the same value and gradient, bit for bit.

    Returns
    -------
    (value, grad) : a float and [2 D] float64; either may be non-finite (the caller checks).
    """
    try:
        return _elbo_and_grad(log_joint, theta, eps, guide, stl, frame, prepared)
    except np.linalg.LinAlgError:
        # A dense family's linear algebra (slogdet, solve) meets a singular or overflowed
        # matrix at a bad trial step: a non-finite step, which the fit loop discards.
        return float("nan"), np.full(np.shape(theta), np.nan)


def _elbo_and_grad(log_joint, theta, eps, guide, stl, frame=None, prepared=None):
    if stl and getattr(guide, "sticks_the_landing", False):
        stl = False     # the guide's own gradient is STL's, without log q's inverse
    chained = getattr(guide, "draw_with_pullback", None)
    if not stl and chained is not None and not isbox(theta) and not isbox(eps):
        if prepared is not None:
            chained = partial(chained, prepared=prepared)
        if frame is not None:
            return _chained(frame.compiled.log_joint, theta, eps, frame.chain(chained))
        return _chained(log_joint, theta, eps, chained)
    if not stl:
        value, grad = value_and_grad(elbo, 1)(log_joint, theta, eps, guide)
        return float(value), grad
    surrogate, grad = value_and_grad(_stl_surrogate, 1)(log_joint, theta, eps, guide)
    # surrogate = mean(log p - log q); adding back mean(log q) + H gives the same value as
    # elbo(), computed from constants only, so the gradient is untouched.
    zeta, entropy = guide.draw_and_entropy(theta, eps)
    value = surrogate + np.mean(guide.log_q(theta, zeta)) + entropy
    return float(value), grad


def _chained(log_joint, theta, eps, chained):
    """``value_and_grad(elbo)`` with only the log joint traced: a guide with
    ``draw_with_pullback`` (mean field) draws zeta and maps the log joint's gradient back to
    theta in plain numpy, with the very operations of its primitives' VJPs, so value and
    gradient are those of the traced ELBO bit for bit (tests/unit/test_elbo.py). Each
    traced operation costs microseconds of bookkeeping: a small model's step is mostly that."""
    zeta, entropy, pullback = chained(theta, eps)
    # the latents' blocks of zeta are roots of the trace (blocks.trace_blocks): no traced
    # slice per latent either
    lp, vjp = trace_blocks(log_joint, zeta)
    plain = type(lp) is np.ndarray
    S = lp.shape[0] if plain else np.shape(lp)[0]
    # np.mean of [S] is this sum over S (np.mean without its Python layer)
    mean = np.add.reduce(lp) / S if plain and lp.ndim == 1 else np.mean(lp)
    # anp.mean's VJP of the incoming 1.0: (1.0 + zeros(S)) / S, each element 1.0 / S (what
    # np.full(S, 1.0 / S) makes, without its Python layer)
    incoming = np.empty(S)
    incoming.fill(1.0 / S)
    return float(mean + entropy), pullback(vjp(incoming))


def elbo_value(log_joint: LogJoint, theta: np.ndarray, eps: np.ndarray,
               guide: MeanField = MEAN_FIELD) -> float:
    """The ELBO estimate of :func:`elbo` alone, without tracing a gradient (a score).

    Returns
    -------
    A float, NaN where a dense family's linear algebra fails (as in :func:`elbo_and_grad`).
    """
    try:
        return float(elbo(log_joint, theta, eps, guide))
    except np.linalg.LinAlgError:
        return float("nan")


def make_objective(log_joint: LogJoint, guide: MeanField = MEAN_FIELD, stl: bool = False,
                   frame=None):
    """``objective(theta, eps) -> (elbo, grad)``: :func:`elbo_and_grad` with the model bound
    (``frame``: as there)."""
    def objective(theta, eps):
        return elbo_and_grad(log_joint, theta, eps, guide, stl, frame)
    return objective
