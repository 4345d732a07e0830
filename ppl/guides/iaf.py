"""The inverse autoregressive flow's layers (ppl/guides/flow.py) in plain numpy: the K layers
as one autograd primitive (:func:`_iaf_chain`) with their backpropagation written out, and the
path ('sticking the landing') cotangent -grad_zeta log q. Flow's step runs one pass
(:func:`_iaf_run`) whose saved values serve the draws, the layers' gradient
(:func:`_iaf_backprop`) and the cotangent (:func:`_path_cotangent`).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from autograd.extend import defvjp, primitive

S_MAX = 3.0          # |s| <= S_MAX (a tanh clamp): one layer scales by at most e^3, so a
                     # diverging step cannot overflow the draws through exp(s)
# The path cotangent solves by sweeps (_solve_by_sweeps) at D <= SWEEP_MAX_D, D >= WHOLE_MAX_D
# or S >= SWEEP_DRAWS_PER_DIM times D draws, else with the whole Jacobian (_solve_whole): the
# cheaper one as measured at trained flows, D = 3-122 (docs/history/performance-log.md, "The flow's
# step without tracing the guide", "The path cotangent's sweeps stop at their fixed point"). The
# whole Jacobian's products grow as S D^3, the sweeps as S D^2 times the 10-16 sweeps a
# trained flow's layer takes to its fixed point.
SWEEP_MAX_D = 5
WHOLE_MAX_D = 40
SWEEP_DRAWS_PER_DIM = 2
# The sweeps stop once one changes no entry of v by more than SWEEP_TOL times v's largest
# (_settled). The iteration is exact after D - 1 sweeps and its error falls faster than
# geometrically (on trained flows of poisson_gp, D = 27: 4e-1, 2e-1, 2e-2, 1e-3, 7e-5, 2e-6,
# 2e-8, 3e-10, 2e-12, ...), so what is left after such a sweep is below SWEEP_TOL: at a trained
# flow:4 the ELBO gradient moved by 5e-9 (poisson_gp) and 2.4e-8 (varying_slopes) of its
# largest entry against the fixed point's, where the noise of 60 draws is of order 1e-1; the
# sweeps to the fixed point (every bit settled) had cost 25% of varying_slopes' flow:4 step
# (docs/history/performance-log.md, "The path cotangent's sweeps stop at a tolerance").
SWEEP_TOL = 1e-6


def hidden_units(D: int) -> int:
    """Width of each coupling network's one hidden layer: 2 D, at least 8."""
    return max(8, 2 * D)


# ----- the IAF layers as one primitive ---------------------------------------------------------

@lru_cache(maxsize=None)
def _made_masks(D: int, H: int, reverse: int):
    """(m1 [D, H], m2 [H, 2 D], order) of an IAF layer (see Flow._masks)."""
    order = np.arange(D) if not reverse else np.arange(D)[::-1]
    degree_in = np.empty(D, dtype=int)
    degree_in[order] = np.arange(1, D + 1)
    degree_hidden = np.arange(H) % max(D - 1, 1) + 1
    m1 = (degree_hidden[None, :] >= degree_in[:, None]).astype(float)
    m2 = (degree_in[None, :] > degree_hidden[:, None]).astype(float)
    return m1, np.concatenate([m2, m2], axis=1), order


def _iaf_layers(layers, D: int, H: int, K: int):
    """Per layer (W1 * m1, b1, W2 * m2, b2, m1, m2) from the flat layer parameters (numpy)."""
    at, out = 0, []
    for k in range(K):
        m1, m2, _ = _made_masks(D, H, k % 2)
        W1 = layers[at:at + D * H].reshape(D, H) * m1
        b1 = layers[at + D * H:at + D * H + H]
        at += D * H + H
        W2 = layers[at:at + 2 * D * H].reshape(H, 2 * D) * m2
        b2 = layers[at + 2 * D * H:at + 2 * D * H + 2 * D]
        at += 2 * D * H + 2 * D
        out.append((W1, b1, W2, b2, m1, m2))
    return out


def _iaf_pass(layers, eps, D, H, K):
    """(out [S, D + 1]: g(eps) and its log|det| in the last column, saved per-layer values)."""
    return _iaf_run(_iaf_layers(layers, D, H, K), eps, D)


def _iaf_run(params, eps, D):
    """:func:`_iaf_pass` from the unpacked layers ``params`` (:func:`_iaf_layers`); the saved
    values (x, h, s, e) per layer serve both backward passes (:func:`_iaf_backprop`,
    :func:`_path_cotangent`)."""
    x, log_det, saved = eps, np.zeros(eps.shape[0]), []
    for W1, b1, W2, b2, _, _ in params:
        h = np.tanh(x @ W1 + b1)
        out = h @ W2 + b2
        s = S_MAX * np.tanh(out[:, :D] / S_MAX)
        e = np.exp(s)
        saved.append((x, h, s, e))
        x = x * e + out[:, D:]
        log_det = log_det + np.sum(s, axis=1)
    return np.concatenate([x, log_det[:, None]], axis=1), saved


@primitive
def _iaf_chain(layers, eps, D, H, K):
    """[S, D + 1]: K IAF layers (x -> x exp(s(x)) + t(x), s clamped by S_MAX tanh(. / S_MAX))
    applied to eps [S, D], and the sum of their log|det| = sum(s) in the last column. The same
    arithmetic as Flow._layer_forward, with its gradient written out (_iaf_chain_vjp)."""
    return _iaf_pass(layers, eps, D, H, K)[0]


def _iaf_backward(g, layers, eps, D, H, K):
    """(d/d layers [P], d/d eps [S, D]) of <g, _iaf_chain(layers, eps)>, by backpropagation
    through the layers in reverse (checked against autograd's in tests/unit/test_guides.py).
    The forward pass is recomputed for its saved values: a few numpy operations per layer."""
    params = _iaf_layers(layers, D, H, K)
    return _iaf_backprop(g, params, _iaf_run(params, eps, D)[1], D)


def _iaf_backprop(g, params, saved, D, want_eps=True):
    """:func:`_iaf_backward` from the unpacked layers and the forward pass's saved values
    (d/d eps is None unless ``want_eps``)."""
    gy, g_log_det = g[:, :D], g[:, D:]
    grads = []
    for k, ((W1, _, W2, _, m1, m2), (x, h, s, e)) in enumerate(zip(reversed(params),
                                                                 reversed(saved))):
        # y = x e + t, e = exp(s), s = S_MAX tanh(u / S_MAX): ds/du = 1 - (s / S_MAX)^2
        g_u = (gy * x * e + g_log_det) * (1.0 - (s / S_MAX) ** 2)
        g_out = np.concatenate([g_u, gy], axis=1)
        g_a = (g_out @ W2.T) * (1.0 - h * h)
        grads.append([((x.T @ g_a) * m1).ravel(), g_a.sum(axis=0),
                      ((h.T @ g_out) * m2).ravel(), g_out.sum(axis=0)])
        if want_eps or k + 1 < len(params):
            gy = gy * e + g_a @ W1.T
    return (np.concatenate([part for layer in reversed(grads) for part in layer]),
            gy if want_eps else None)


def _iaf_path_cotangent(layers, eps, rhs, A, D, H, K):
    """-grad_zeta log q(zeta) / S [S, D] at zeta = mu + A g(eps), eps [S, D]: J^-T (rhs +
    grad_eps log|det|) / S with J = A J_K ... J_1 (see Flow._path_entropy), rhs [S, D] = eps
    there (a flow whose layers follow an affine map, benchmarks/flow_placement.py, passes its
    own). Layer k's
    Jacobian: y_i = x_i e_i + t_i with e = exp(s), s = S_MAX tanh(u / S_MAX), [u, t] = tanh(x
    W1 + b1) W2 + b2, so dy_i/dx_j = delta_ij e_i + x_i e_i ds_i/du_i du_i/dx_j + dt_i/dx_j
    (triangular in the layer's order with diagonal e: s_i and t_i do not see x_i)."""
    params = _iaf_layers(layers, D, H, K)
    return _path_cotangent(params, _iaf_run(params, eps, D)[1], rhs, A, D)


def _path_cotangent(params, saved, rhs, A, D):
    """:func:`_iaf_path_cotangent` from the unpacked layers and the forward pass's saved
    values (one pass serves the draw, the layers' gradient and this cotangent)."""
    # grad_eps of sum_k sum(s_k): backpropagation as in _iaf_backward, cotangent 1 on log|det|
    gy = np.zeros_like(rhs)
    for (W1, _, W2, _, _, _), (x, h, s, e) in zip(reversed(params), reversed(saved)):
        g_u = (gy * x * e + 1.0) * (1.0 - (s / S_MAX) ** 2)
        g_a = (np.concatenate([g_u, gy], axis=1) @ W2.T) * (1.0 - h * h)
        gy = gy * e + g_a @ W1.T
    # J^T u S = rhs + gy with J^T = J_1^T ... J_K^T A^T. Which solve is cheaper depends on
    # S and D (benchmarks in docs/history/performance-log.md, "The flow's step without tracing the
    # guide")
    if D <= SWEEP_MAX_D or D >= WHOLE_MAX_D or rhs.shape[0] >= SWEEP_DRAWS_PER_DIM * D:
        return _solve_by_sweeps(params, saved, rhs + gy, A, D) / rhs.shape[0]
    return _solve_whole(params, saved, rhs + gy, A, D) / rhs.shape[0]


def _solve_by_sweeps(params, saved, w, A, D):
    """v [S, D] with J^T v = w, layer by layer: J_1^T first, then on, A^T last (one solve
    shared by the draws). No [S, D, D] matrix: each J_k^T is triangular in the layer's order
    with diagonal e, so v = (w - N^T v) / e, N^T v the layer's off-diagonal VJP (as in
    _iaf_backprop), is exact after D - 1 sweeps of a few [S, H] operations. The sweeps stop
    earlier, at a sweep that changed v by at most SWEEP_TOL of its largest entry
    (:func:`_settled`). A trained flow's chains through the layer decay fast: 15-16 sweeps a
    layer to the fixed point at D = 122, 12-13 at D = 26-46 (docs/history/performance-log.md,
    "The path cotangent's sweeps stop at their fixed point"), 5-7 to SWEEP_TOL."""
    S = w.shape[0]
    g_out, change = np.empty((S, 2 * D)), np.empty((S, D))
    for (W1, _, W2, _, _, _), (x, h, s, e) in zip(params, saved):
        scale, dh, inv_e = x * e * (1.0 - (s / S_MAX) ** 2), 1.0 - h * h, 1.0 / e
        W1_T, W2_T, hidden = W1.T, W2.T, np.empty((S, W1.shape[1]))
        v, new = w * inv_e, np.empty((S, D))
        bound = SWEEP_TOL * np.abs(v).max(initial=0.0)
        for _ in range(D - 1):
            # new = (w - N^T v) / e, in place: N^T v = ((s' x e v, v) W2^T * (1 - h^2)) W1^T
            np.multiply(scale, v, out=g_out[:, :D])
            g_out[:, D:] = v
            np.multiply(np.matmul(g_out, W2_T, out=hidden), dh, out=hidden)
            np.multiply(np.subtract(w, np.matmul(hidden, W1_T, out=new), out=new), inv_e,
                        out=new)
            v, new = new, v
            if _settled(v, new, bound, change):
                break
        w = v
    return np.linalg.solve(A.T, w.T).T


def _settled(new, old, bound, change) -> bool:
    """Whether a sweep changed no entry of v by more than ``bound`` (SWEEP_TOL times the
    largest entry of the layer's first v; :func:`_solve_by_sweeps`), ``change`` a buffer of
    v's shape. A sweep that gives NaN never settles (the D - 1 sweeps run, and the NaN goes on
    to the fit loop, which discards the step)."""
    np.subtract(new, old, out=change)
    return bool(change.max(initial=0.0) <= bound and -change.min(initial=0.0) <= bound)


def _solve_whole(params, saved, w, A, D):
    """v [S, D] with J^T v = w, J^T = J_1^T ... J_K^T A^T built as [S, D, D] (K batched
    products) and one batched solve: a few large operations, cheaper when S is small."""
    J_T = np.broadcast_to(A.T, (w.shape[0], D, D))
    for (W1, _, W2, _, _, _), (x, h, s, e) in zip(reversed(params), reversed(saved)):
        # d out_m / d x_j = sum_h W1[j, h] (1 - h^2) W2[h, m]: [S, D (j), 2 D (m)]
        d_out = ((1.0 - h * h)[:, None, :] * W1[None]) @ W2
        scale = x * e * (1.0 - (s / S_MAX) ** 2)
        layer_T = scale[:, None, :] * d_out[:, :, :D] + d_out[:, :, D:]  # [S, j, i]
        layer_T[:, np.arange(D), np.arange(D)] += e
        J_T = layer_T @ J_T
    return np.linalg.solve(J_T, w[:, :, None])[:, :, 0]


defvjp(_iaf_chain,
       lambda ans, layers, eps, D, H, K: lambda g: _iaf_backward(g, layers, eps, D, H, K)[0],
       lambda ans, layers, eps, D, H, K: lambda g: _iaf_backward(g, layers, eps, D, H, K)[1])
