"""Scaled: a full-rank Gaussian bent by one autoregressive layer, log-linear scale and quadratic
shift, in the model's declaration order.

zeta = a + A y, A lower-triangular with a positive diagonal, and for eps ~ N(0, I_D)

    y_i = m_i + (eps_i + t_i - m_i) exp(s_i),  s_i = sum_{j<i} C_ij eps_j,
    t_i = sum_{k<=j<i} E_ijk eps_j eps_k.

A funnel (theta ~ N(mu, tau): the spread of theta as tau) and a non-centred ridge (f_tilde as
1/alpha when the data fix f = alpha L f_tilde) make the scale of a later latent log-linear in
earlier ones (s, about the centre m); on a non-centred GP the conditional mean and covariance
of f_tilde also move with the length scale, to second order a shift quadratic in the earlier
noise (t: bilinear terms rotate the conditional covariance; without them gp_pois_regr's rho
and alpha sds stayed 35% short, docs/history/trust-log.md). It is one layer of an inverse
autoregressive flow (Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive
Flow", NeurIPS) whose networks are a linear and a quadratic form, so it has D^2 + D + D^2 (D + 1) /
2 parameters beyond full rank's instead of networks (flow.py), and is fitted on fixed draws
(ppl/infer/fixed_draws.py, driven by advi.py).

The log-determinant is sum(log diag A) + sum_i s_i, and s_i is odd in eps (a linear form in
an odd tanh clamp), so E[s_i] = 0 and the entropy is the Gaussian's, in closed form. At C = E
= 0 the family is the Gaussian N(a, A A^T), so a warm start from any Gaussian is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import autograd.numpy as anp
import numpy as np

from ..linalg import solve_lower
from .moments import NormalMap

_LOG_2PI = float(np.log(2 * np.pi))
# E has D^2 (D - 1) / 2 used entries; fitted on 512 draws a round (infer/fixed_draws.py) the
# family met issue 11's targets at D = 10 and 13 (centered eight schools, gp_pois_regr) and was
# worse than mean field or unreliable at D = 26 and 27 (the seeds and poisson_gp examples: k̂
# 0.95-1.15, an ELBO 44 nats below mean field's), so auto paid for it and went on to the flow
# (docs/history/trust-log.md, "Twelfth attempt"). The flow is for larger D.
MAX_DIM = 20
S_MAX = 6.0          # |s| <= S_MAX (an odd tanh clamp): a diverging step cannot overflow exp(s)


# OpenBLAS runs a matrix product of more than 2^18 multiply-adds on all its threads, and its
# workers spin between calls: with 2 threads the layer's [S, D^2] products made gp_pois_regr's
# fixed-draw fit 2x slower in wall time and 4x in CPU (S = 1024, D = 13; `ppl fit` 15-22x mean
# field's CPU against 3-4x with one thread). Products in chunks of rows under SINGLE_THREADED
# multiply-adds stay on one thread, as fast as the whole product there.
SINGLE_THREADED = 2 ** 17


def _rows(a: np.ndarray, columns: int) -> int:
    return max(1, SINGLE_THREADED // max(1, a.shape[1] * columns))


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for a [S, K], b [K, N], in chunks of a's rows (SINGLE_THREADED)."""
    step = _rows(a, b.shape[1])
    return np.concatenate([a[i:i + step] @ b for i in range(0, len(a), step)])


def _transposed_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a.T @ b for a [S, M], b [S, N], summed over chunks of their rows (SINGLE_THREADED)."""
    step = _rows(b, a.shape[1])
    out = a[:step].T @ b[:step]
    for i in range(step, len(a), step):
        out += a[i:i + step].T @ b[i:i + step]
    return out


def _layer(m, s, t, eps):
    """y = m + (eps + t - m) exp(s), written (eps + t) exp(s) - m expm1(s): the same number,
    but the draw eps survives a centre m far from it. The first form rounds eps + t - m to
    -m once |m| > 1e16 |eps| (a warm start whose mean is that many sds from zero, as from a
    collapsed mean field: m = -A^-1 a), so every draw was y = 0 whatever A, and L-BFGS-B
    grew A without bound on an ELBO estimate that rose past log p(data)."""
    return (eps + t) * anp.exp(s) - m * anp.expm1(s)


def _pairs(eps: np.ndarray) -> np.ndarray:
    """eps_j eps_k [S, D * D] (column j * D + k) for eps [S, D]."""
    S, D = eps.shape
    return (eps[:, :, None] * eps[:, None, :]).reshape(S, D * D)


@lru_cache(maxsize=None)
def _pair_mask(D: int) -> np.ndarray:
    """[D, D * D]: 1 where E_ijk is used (k <= j < i), row i, column j * D + k."""
    i, j, k = np.meshgrid(np.arange(D), np.arange(D), np.arange(D), indexing="ij")
    return ((j < i) & (k <= j)).reshape(D, D * D).astype(float)


@dataclass(frozen=True)
class Scaled(NormalMap):
    """q = law of a + A y(eps) (module docstring).

    ``theta`` [2 D + 2 D^2 + D^3] is a [D], M [D, D] (row-major; A = tril(M, -1) +
    diag(exp(diag M)), as FullRank's L), m [D], G [D, D] whose strict lower triangle is C,
    then E [D, D * D] (row i, column j * D + k) masked to k <= j < i. Unused entries get zero
    gradients and never move; dense blocks keep autograd free of index scatters.
    """

    D: int
    name = "scaled"
    dense_frame = False   # its layer is autoregressive in declaration order: a frame must be
    window_scale = 1      # lower-triangular or diagonal (push_affine), so no dense whitening
    draws_scale = 4
    fixed_draws = True    # advi fits it by L-BFGS-B on rounds of fixed draws (fixed_draws.py)

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """a = 0, A = init_scale I, m = 0, C = E = 0: the Gaussian N(0, init_scale^2 I)."""
        return np.concatenate([np.zeros(D), np.diag(np.full(D, np.log(init_scale))).ravel(),
                               np.zeros(D + D * D + D ** 3)])

    def eps_dim(self, D: int) -> int:
        return D

    def split(self, theta, xp=anp):
        """``(a [D], A [D, D], m [D], C [D, D], E [D, D * D])`` from theta, differentiable
        (``xp`` numpy for a plain theta: the same values without autograd's wrappers)."""
        D = self.D
        M = xp.reshape(theta[D:D + D * D], (D, D))
        A = xp.tril(M, -1) + xp.diag(xp.exp(xp.diag(M)))
        at = 2 * D + D * D
        C = xp.tril(xp.reshape(theta[at:at + D * D], (D, D)), -1)
        E = xp.reshape(theta[at + D * D:], (D, D * D)) * _pair_mask(D)
        return theta[:D], A, theta[D + D * D:at], C, E

    def _scale_shift(self, C, E, eps):
        """s [S, D] (clamped) and t [S, D] from eps [S, D]; both use eps before i only."""
        S, D = eps.shape
        pairs = anp.reshape(eps[:, :, None] * eps[:, None, :], (S, D * D))
        return S_MAX * anp.tanh((eps @ C.T) / S_MAX), pairs @ E.T

    def forward(self, theta, eps):
        """(zeta [S, D], log|det d zeta / d eps| [S]) for eps [S, D]."""
        a, A, m, C, E = self.split(theta)
        s, t = self._scale_shift(C, E, eps)
        log_det = anp.sum(anp.log(anp.diag(A))) + anp.sum(s, axis=1)
        return a + _layer(m, s, t, eps) @ A.T, log_det

    def inverse(self, theta, zeta):
        """(eps [S, D], log|det| [S]) for zeta [S, D]: y = A^-1 (zeta - a), then eps in D - 1
        passes (eps before i fixes s_i and t_i, so pass i makes eps_i exact)."""
        a, A, m, C, E = self.split(theta)
        y = solve_lower(A, (zeta - a).T).T
        eps = y
        for _ in range(self.D - 1):
            s, t = self._scale_shift(C, E, eps)
            eps = y * anp.exp(-s) - t - m * anp.expm1(-s)   # _layer solved for eps
        s, _ = self._scale_shift(C, E, eps)
        return eps, anp.sum(anp.log(anp.diag(A))) + anp.sum(s, axis=1)

    def draw(self, theta, eps):
        return self.forward(theta, eps)[0]

    def entropy(self, theta, eps=None):
        """The Gaussian's, sum(log diag A) + D/2 (1 + log 2 pi), since E[s_i] = 0."""
        D = self.D
        return anp.sum(anp.diag(anp.reshape(theta[D:D + D * D], (D, D)))) + \
            0.5 * D * (1.0 + _LOG_2PI)

    def draw_and_entropy(self, theta, eps):
        return self.draw(theta, eps), self.entropy(theta)

    def prepare(self, eps: np.ndarray) -> np.ndarray:
        """What :meth:`draw_with_pullback` computes from the draws alone, one row per draw:
        their pairwise products eps_j eps_k [S, D * D] (column j * D + k). A fit on fixed
        draws (infer/fixed_draws.py) evaluates the layer 50-60 times at a round's draws and
        computes these once a round; they were a fifth of the layer's CPU on gp_pois_regr."""
        return _pairs(eps)

    def draw_with_pullback(self, theta: np.ndarray, eps: np.ndarray,
                           prepared: np.ndarray | None = None):
        """The ELBO's guide half without autograd: ``(zeta [S, D], entropy, pullback)``, where
        ``pullback(g)`` maps the gradient g [S, D] of the mean log joint in zeta to the ELBO's
        gradient in theta (elbo.elbo_and_grad then traces only the log joint: a fit on fixed
        draws is mostly gradients, and tracing this layer cost as much as the log joint on
        eight schools). The same formulas as :meth:`forward`'s, their derivatives by hand;
        equal to autograd's to rounding (tests/unit/test_guides.py). Plain numpy, first order.
        ``prepared``: :meth:`prepare` of ``eps`` when the caller holds it (computed here if
        None).
        """
        D = self.D
        a, A, m, C, E = self.split(np.asarray(theta, float), np)
        tanh = np.tanh((eps @ C.T) / S_MAX)
        s = S_MAX * tanh
        scale = np.exp(s)
        pairs = _pairs(eps) if prepared is None else prepared
        t = _product(pairs, E.T)
        shifted = eps + t
        inner = shifted - m
        y = shifted * scale - m * np.expm1(s)   # _layer, its exp(s) and eps + t computed once
        entropy = float(np.sum(np.log(np.diag(A)))) + 0.5 * D * (1.0 + _LOG_2PI)

        def pullback(g):
            g_y = g @ A
            g_A = g.T @ y
            g_M = np.tril(g_A, -1) + np.diag(np.diag(g_A) * np.diag(A) + 1.0)   # + entropy's
            g_inner = g_y * scale
            g_C = np.tril(((g_y * inner * scale) * (1.0 - tanh * tanh)).T @ eps, -1)
            g_E = _transposed_product(g_inner, pairs) * _pair_mask(D)
            return np.concatenate([np.sum(g, axis=0), g_M.ravel(),
                                   np.sum(g_y, axis=0) - np.sum(g_inner, axis=0), g_C.ravel(),
                                   g_E.ravel()])
        return a + y @ A.T, entropy, pullback

    def jitter_scale(self, theta) -> np.ndarray:
        """The affine part's marginal sd (row norm of A) for a_i and row i of A's
        off-diagonal entries; 1 for the log-diagonal, m, C and E (unit-free)."""
        D = self.D
        _, A, *_ = self.split(np.asarray(theta, dtype=float))
        sd = np.sqrt(np.sum(A * A, axis=1))
        rows = np.repeat(sd[:, None], D, axis=1)
        np.fill_diagonal(rows, 1.0)
        return np.concatenate([sd, rows.ravel(), np.ones(D + D * D + D ** 3)])

    def frame(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(a, A)``: the affine part (all of q while C = E = 0)."""
        a, A, *_ = self.split(np.asarray(theta, dtype=float))
        return np.array(a), np.array(A)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W zeta: (a, A) -> (m0 + W a, W A), the layer unchanged.

        Exact for a diagonal or lower-triangular W with a positive diagonal (W A is then of
        A's form). Any other W only while C = E = 0 (q Gaussian): A becomes the Cholesky
        factor of W A A^T W^T. Otherwise the law is not in the family: ValueError (our bug).
        """
        theta = np.array(theta, dtype=float)
        D = self.D
        a, A, _, C, E = self.split(theta)
        W = np.diag(W) if np.ndim(W) == 1 else np.asarray(W, dtype=float)
        WA = W @ A
        if np.any(np.triu(WA, 1)) or np.any(np.diag(WA) <= 0):
            if np.any(C) or np.any(E):
                raise ValueError("Scaled.push_affine: W must be lower-triangular with a "
                                 "positive diagonal once the layer is not the identity")
            _, R = np.linalg.qr(WA.T)
            WA = R.T * np.sign(np.diag(R))
        theta[:D] = m0 + W @ a
        theta[D:D + D * D] = (np.tril(WA, -1) + np.diag(np.log(np.diag(WA)))).ravel()
        return theta

    def warm_start(self, source, theta) -> np.ndarray:
        """The source's Gaussian (its frame) with the identity layer, its centre m at the
        model's zero (a + A m = 0): m gets no gradient while C = 0, so its start is the
        pivot the scales first grow about, and zero is a non-centred ridge's (f_tilde as
        1/alpha; gp_pois_regr, docs/history/trust-log.md)."""
        m0, W = source.frame(theta)
        start = self.push_affine(self.init(self.D, 1.0), m0, W)
        a, A, *_ = self.split(start)
        D = self.D
        start[D + D * D:2 * D + D * D] = solve_lower(A, -a[:, None])[:, 0]
        return start

    def units(self, theta) -> np.ndarray:
        """Per-parameter units for an optimizer [len(theta)]: row i of C in 1 / (1 + |m_i|),
        since C_ij moves y_i by about |eps_i - m_i| eps_j; 1 elsewhere (measured against all
        ones on gp_pois_regr, docs/history/trust-log.md)."""
        D = self.D
        units = np.ones(len(theta))
        at = 2 * D + D * D
        units[at:at + D * D] = np.repeat(1.0 / (1.0 + np.abs(theta[D + D * D:at])), D)
        return units

    def to_dict(self, theta, names) -> dict:
        """fit.json's parameters: FullRank's "mu", "log_diag", "lower" for (a, A), then
        "centre": {name: m_i}, "scale": {row: {column: C_ij, j < i}} and "shift": {row:
        {"column_j*column_k": E_ijk, k <= j < i}}."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        M = theta[D:D + D * D].reshape(D, D)
        G = theta[2 * D + D * D:2 * D + 2 * D * D].reshape(D, D)
        E = theta[2 * D + 2 * D * D:].reshape(D, D, D)
        return {"mu": dict(zip(names, map(float, theta[:D]))),
                "log_diag": dict(zip(names, map(float, np.diag(M)))),
                "lower": {names[i]: {names[j]: float(M[i, j]) for j in range(i)}
                          for i in range(1, D)},
                "centre": dict(zip(names, map(float, theta[D + D * D:2 * D + D * D]))),
                "scale": {names[i]: {names[j]: float(G[i, j]) for j in range(i)}
                          for i in range(1, D)},
                "shift": {names[i]: {f"{names[j]}*{names[k]}": float(E[i, j, k])
                                     for j in range(i) for k in range(j + 1)}
                          for i in range(1, D)}}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        D = self.D
        M = np.diag([float(parameters["log_diag"][n]) for n in names])
        G, E = np.zeros((D, D)), np.zeros((D, D, D))
        for i in range(1, D):
            for j in range(i):
                M[i, j] = float(parameters["lower"][names[i]][names[j]])
                G[i, j] = float(parameters["scale"][names[i]][names[j]])
                for k in range(j + 1):
                    E[i, j, k] = float(parameters["shift"][names[i]][f"{names[j]}*{names[k]}"])
        return np.concatenate([[float(parameters["mu"][n]) for n in names], M.ravel(),
                               [float(parameters["centre"][n]) for n in names], G.ravel(),
                               E.ravel()])
