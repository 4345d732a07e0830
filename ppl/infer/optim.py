"""Optimizers as pure functions on immutable states, and the step-size (eta) search.

Every optimizer MINIMIZES: ``update`` moves the parameters against the gradient it is given.
advi.py passes the gradient of -ELBO (the one sign flip of the project). The step size lives in
the state (``state.lr``) so the fit loop can lower it with ``state._replace(lr=...)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import ir


class AdamState(NamedTuple):
    """``v`` is the second moment in units of ``scale**2`` (``scale`` a power of two per
    coordinate, 1 until a gradient is too large to square; see adam_update)."""
    params: np.ndarray
    m: np.ndarray
    v: np.ndarray
    step: int
    lr: float
    scale: np.ndarray | float = 1.0


class SgdState(NamedTuple):
    params: np.ndarray
    velocity: np.ndarray
    step: int
    lr: float


class StanState(NamedTuple):
    """``s`` in units of ``scale**2``, as AdamState's ``v``."""
    params: np.ndarray
    s: np.ndarray
    step: int
    lr: float
    scale: np.ndarray | float = 1.0


class Optimizer(NamedTuple):
    """A pair of pure functions: ``init(params, lr) -> state``, ``update(state, grad) -> state``."""
    init: Callable
    update: Callable


# ----- Adam (Kingma and Ba 2015, Algorithm 1, with its default b1, b2, eps) ----------------

_B1, _B2, _EPS = 0.9, 0.999, 1e-8
# Largest |gradient / scale| squared as it is: 2^1000, short of the float maximum 2^1024.
_SQUARABLE = 2.0 ** 500


def _squarable(grad: np.ndarray, scale, second: np.ndarray):
    """``grad / scale``, and ``second`` (a running mean of squared gradients in units of
    ``scale**2``) and ``scale`` as they must be for that quotient to square to a finite number.

    A coordinate whose |gradient| reaches 2^500 times its scale gets as new scale the power of
    two at or below its |gradient|, and its ``second`` is rescaled to match. Scales are powers
    of two, so every product and square root is the unscaled one bit for bit (short of
    subnormals): a run whose gradients stay below 2^500 is unchanged. Adam's second moment and
    Stan's s_k both keep their squares this way."""
    scaled = grad / scale
    too_large = np.abs(scaled) >= _SQUARABLE
    if too_large.any():     # the method: np.any's Python layer is 2-3 us a step
        new_scale = np.where(too_large, np.ldexp(1.0, np.frexp(grad)[1] - 1), scale)
        second = second * (scale / new_scale) ** 2
        scale = new_scale
        scaled = grad / scale
    return scaled, second, scale


def adam_init(params: np.ndarray, lr: float) -> AdamState:
    """Adam's state at ``params`` with step size ``lr``: zero moments, step 0."""
    params = np.asarray(params, dtype=float)
    return AdamState(params, np.zeros_like(params), np.zeros_like(params), 0, float(lr))


def adam_update(state: AdamState, grad: np.ndarray) -> AdamState:
    """One Adam step against ``grad``: bias-corrected moments m_hat, v_hat, then
    params -= lr * m_hat / (sqrt(v_hat) + eps).

    The second moment is kept divided by ``scale**2`` (see _squarable): a finite gradient
    above ~1.3e154 squares to inf, and v = inf made that coordinate's step 0 for the rest of
    the run (a frozen mean, silently)."""
    step = state.step + 1
    scaled, v_scaled, scale = _squarable(grad, state.scale, state.v)
    m = _B1 * state.m + (1 - _B1) * grad
    v = _B2 * v_scaled + (1 - _B2) * scaled * scaled
    m_hat = m / (1 - _B1 ** step)
    v_hat = v / (1 - _B2 ** step)
    params = state.params - state.lr * m_hat / (np.sqrt(v_hat) * scale + _EPS)
    return AdamState(params, m, v, step, state.lr, scale)


# ----- SGD with (heavy-ball) momentum, as torch.optim.SGD ------------------------------------

_MOMENTUM = 0.9


def sgd_init(params: np.ndarray, lr: float) -> SgdState:
    """SGD's state at ``params`` with step size ``lr`` and zero velocity."""
    params = np.asarray(params, dtype=float)
    return SgdState(params, np.zeros_like(params), 0, float(lr))


def sgd_update(state: SgdState, grad: np.ndarray) -> SgdState:
    """velocity = 0.9 velocity + grad; params -= lr * velocity."""
    velocity = _MOMENTUM * state.velocity + grad
    return SgdState(state.params - state.lr * velocity, velocity, state.step + 1, state.lr)


# ----- Stan's adaptive step-size sequence ----------------------------------------------------
# Kucukelbir, Tran, Ranganath, Gelman and Blei (2017), "Automatic Differentiation Variational
# Inference", JMLR 18(14), section 3.3, eq. (10)-(11), as in Stan's stan/variational/advi.hpp:
#   rho_k = eta * k^(-1/2 + 1e-16) / (tau + sqrt(s_k)),  s_k = a g_k^2 + (1 - a) s_{k-1},
#   s_1 = g_1^2, a = 0.1, tau = 1.

_STAN_ALPHA, _STAN_TAU = 0.1, 1.0


def stan_init(params: np.ndarray, lr: float) -> StanState:
    """State of Stan's sequence at ``params`` with eta = ``lr``."""
    params = np.asarray(params, dtype=float)
    return StanState(params, np.zeros_like(params), 0, float(lr))


def stan_update(state: StanState, grad: np.ndarray) -> StanState:
    """One step of Stan's adaptive sequence against ``grad``.

    s is kept divided by ``scale**2`` as Adam's second moment is (see _squarable): a finite
    gradient above ~1.3e154 squared to s = inf, and rho = 0 froze that coordinate for the
    rest of the run."""
    step = state.step + 1
    scaled, s_scaled, scale = _squarable(grad, state.scale, state.s)
    g2 = scaled * scaled
    s = g2 if step == 1 else _STAN_ALPHA * g2 + (1 - _STAN_ALPHA) * s_scaled
    rho = state.lr * step ** (-0.5 + 1e-16) / (_STAN_TAU + np.sqrt(s) * scale)
    return StanState(state.params - rho * grad, s, step, state.lr, scale)


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer(adam_init, adam_update),
    "sgd": Optimizer(sgd_init, sgd_update),
    "stan": Optimizer(stan_init, stan_update),
}


def optimizer(name: str) -> Optimizer:
    """The optimizer called ``name`` ('adam', 'sgd' or 'stan')."""
    return OPTIMIZERS[name]


# ----- the eta search ------------------------------------------------------------------------

STAN_ETAS = (100.0, 10.0, 1.0, 0.1, 0.01)
# Draws per evaluation of a score, at least: at N = 10^6 rows one draw's temporaries are ~8 MB
# each, and the 100 score draws in one pass made the peak memory of a fit (6.7 GB, issue 15).
SCORE_CHUNK = 10
# More draws per evaluation while a chunk's temporaries stay this small (elements each, 8 MB):
# on a small model one call of 100 draws costs about what one of 10 does (eight schools: 0.16
# and 0.14 ms), so its 490 score calls of 10 draws were 5% of its fit (issue 15).
SCORE_ELEMENTS = 10 ** 6


def score_chunk(model: ir.Model | None) -> int:
    """Draws per evaluation of a score for ``model``: SCORE_ELEMENTS over the size of its
    largest per-draw value, but never fewer than SCORE_CHUNK (the memory of such a chunk was
    accepted at N = 10^6; a model with 10^5 elements or more per draw keeps that chunk, and
    its scores bit for bit). SCORE_CHUNK for a log density given without its model (None)."""
    if model is None:
        return SCORE_CHUNK
    return max(SCORE_CHUNK, SCORE_ELEMENTS // draw_elements(model))


def hessian_chunk(model: ir.Model | None) -> int | None:
    """Draws a gradient of a Hessian by differences may take (precondition.difference_hessian):
    the score chunk of ``model``; None for a log density given without its model (the tests'
    targets), which keeps the central differences whatever its cost: the forward ones are
    for large data, which only a model's size tells."""
    return None if model is None else score_chunk(model)


def draw_elements(model: ir.Model) -> int:
    """The size of the largest value the log joint computes per draw (at least 1): every
    latent, and every expression and density that depends on one (an observe's density has
    its value's shape). Temporaries inside a function call can be larger; this is the guide
    for the score's chunk, not a bound."""
    sizes = [1]
    for statement in model.statements:
        if isinstance(statement, (ir.Latent, ir.Param)):
            sizes.append(int(np.prod(statement.shape, dtype=np.int64)))
        dist = getattr(statement, "dist", None)
        if isinstance(statement, ir.Observe) and dist.deps:
            sizes.append(int(np.prod(statement.value.shape, dtype=np.int64)))
        for root in (getattr(statement, "value", None), dist):
            for expr in ir.walk(root):
                if getattr(expr, "deps", None):
                    sizes.append(int(np.prod(expr.shape, dtype=np.int64)))
    return max(sizes)


class SearchResult(NamedTuple):
    """The chosen step size, the loss of each step size tried, and whether any beat the start."""
    lr: float
    losses: dict
    found: bool


def search_lr(objective: Callable, params: np.ndarray, opt: Optimizer,
              noise: Callable[[int], np.ndarray], mc_samples: int,
              etas: tuple[float, ...] = STAN_ETAS, adapt_iter: int = 50,
              eval_samples: int = 100, score: Callable | None = None,
              largest_last: bool = False, chunk: int = SCORE_CHUNK) -> SearchResult:
    """Pick a step size as CmdStan's ``variational`` adaptation does (``adapt_eta`` in Stan's
    stan/variational/advi.hpp; Kucukelbir et al. 2017, section 3.3).

    From ``params``, run ``adapt_iter`` steps with each eta in turn, largest first, then score
    the result by the loss at one common set of ``eval_samples`` draws (common random numbers
    make the scores comparable). A step whose loss or gradient is not finite is skipped, as
    Stan skips it; a score that is not finite fails that eta. Like Stan, stop at the first eta
    that scores worse than the best so far once the best beats the starting loss.

    Parameters
    ----------
    objective : (params, eps [S, D]) -> (loss, grad), the loss to MINIMIZE (-ELBO).
    params : starting parameters; every run starts from them.
    opt : the optimizer to run.
    noise : n -> eps [n, D], fresh standard normal draws (from the fit's one Generator).
    mc_samples : S, draws per gradient step.
    etas : step sizes to try, in order.
    adapt_iter : steps per trial (Stan's ``adapt iter`` default: 50).
    eval_samples : draws of the final score (Stan's ``eval_elbo`` draws default: 100).
    score : (params, eps [n, D]) -> the loss alone, the mean over the n draws of what
        ``objective`` returns first; without it the objective's loss is used, and its gradient,
        computed and thrown away, costs 3-8x the value. Either is evaluated ``chunk`` draws
        at a time and the chunk means averaged, weighted by their sizes.
    largest_last : start at the second eta, and try the first (largest) only when the second
        wins. The largest of a grid usually overflows, so this saves a trial; when the scores
        fall and then rise with eta the choice is the one Stan's order would make (up to the
        trials' own noise: the draws differ once a trial is skipped).
    chunk : draws per evaluation of a score (``score_chunk`` of the model).

    Returns
    -------
    SearchResult; ``found`` is False when no eta beat the start, and then ``lr`` is the
    smallest eta tried (the caller's non-finite recovery takes it from there).
    """
    if score is None:
        score = lambda p, eps: objective(p, eps)[0]   # noqa: E731
    eps_eval = noise(eval_samples)
    start = _score(score, params, eps_eval, chunk)
    order = etas[1:] if largest_last and len(etas) > 1 else etas
    best_eta, best, losses = None, np.inf, {}
    for eta in order:
        losses[eta] = _trial(objective, params, opt, noise, mc_samples, eta, adapt_iter, score,
                             eps_eval, chunk)
        if losses[eta] > best and best < start:
            break
        if losses[eta] <= best:
            best_eta, best = eta, losses[eta]
    if order is not etas and best_eta == order[0]:
        losses[etas[0]] = _trial(objective, params, opt, noise, mc_samples, etas[0],
                                 adapt_iter, score, eps_eval, chunk)
        if losses[etas[0]] <= best:
            best_eta, best = etas[0], losses[etas[0]]
    if best_eta is None or not best < start:
        return SearchResult(min(etas), losses, False)
    return SearchResult(best_eta, losses, True)


def _trial(objective, params, opt, noise, mc_samples, eta, adapt_iter, score, eps_eval,
           chunk):
    """The score of ``adapt_iter`` steps with step size ``eta`` from ``params``."""
    state = opt.init(params, eta)
    for _ in range(adapt_iter):
        loss, grad = objective(state.params, noise(mc_samples))
        if np.isfinite(loss) and np.isfinite(grad).all():
            state = opt.update(state, grad)
    return _score(score, state.params, eps_eval, chunk)


def _score(score, params, eps, chunk: int = SCORE_CHUNK) -> float:
    """The mean loss over the draws ``eps`` [n, D], ``chunk`` draws at a time; inf if not
    finite."""
    n = eps.shape[0]
    loss = 0.0
    for start in range(0, n, chunk):
        part = eps[start:start + chunk]
        loss += float(score(params, part)) * part.shape[0] / n
    return loss if np.isfinite(loss) else np.inf
