"""FullRank: a Gaussian with a dense covariance L L^T on the unconstrained space [D].

zeta = mu + L eps with L lower-triangular and a positive diagonal (exp of free parameters);
closed-form entropy. The engine (ppl/infer/) fits it from a warm start (see ``warm_start``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import autograd.numpy as anp
import numpy as np

from ..linalg import solve_lower

_LOG_2PI = float(np.log(2 * np.pi))
MAX_DIM = 2000  # D^2 parameters and O(D^2) work per draw: beyond this, use lowrank
# Beyond this many unconstrained dimensions --guide auto's Gaussian rung is low rank, not full
# rank. Full rank's step grows as D^2: on a cheap density it costs 0.9x low rank's at D = 100,
# 2.2x at 200, 5.1x at 300 and 7.7x at 400 (`benchmarks/step_benchmark.py` family_rows,
# 2026-11-30). On stochastic_volatility (D = 403) full rank took 92.5 s of CPU, 23x mean field,
# stopped unconverged and was as unreliable (k̂ 1.58; max mean error 2.00 reference sds, mean
# sd deviation 0.103) as low rank in 8.9 s (k̂ 1.57; 2.34, 0.061) (docs/trust.md). No
# posteriordb posterior has D > 50.
AUTO_MAX_DIM = 200


@lru_cache(maxsize=8)
def _strictly_lower(D: int) -> np.ndarray:
    """The mask [D, D] of the entries below the diagonal (read-only; built once per D)."""
    mask = np.tri(D, k=-1, dtype=bool)
    mask.flags.writeable = False
    return mask


@dataclass(frozen=True)
class FullRank:
    """q(zeta) = N(mu, L L^T).

    ``theta`` [D + D^2] is ``mu``, then a D x D matrix M (row-major) of which only the lower
    triangle is used: L = tril(M, -1) + diag(exp(diag(M))). The unused upper triangle gets zero
    gradients and so never moves; one dense block keeps autograd free of index scatters.
    """

    D: int
    name = "fullrank"
    dense_frame = True  # may be fitted in whitened coordinates (a dense frame W)
    # q is the law of mu + L eps (frame; StudentT's eps is t noise): the optimum check whitens
    # by L (diagnostics.family_sds)
    frame_is_law = True
    window_scale = 1
    draws_scale = 1

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """mu = 0 and L = init_scale * I; theta [D + D^2]."""
        return np.concatenate([np.zeros(D), np.diag(np.full(D, np.log(init_scale))).ravel()])

    def eps_dim(self, D: int) -> int:
        return D

    def split(self, theta):
        """``(mu [D], L [D, D])`` from theta, differentiable."""
        D = self.D
        M = anp.reshape(theta[D:], (D, D))
        L = anp.tril(M, -1) + anp.diag(anp.exp(anp.diag(M)))
        return theta[:D], L

    def draw(self, theta, eps):
        """zeta [S, D] = mu + eps L^T for eps [S, D]."""
        mu, L = self.split(theta)
        return mu + eps @ L.T

    def entropy(self, theta):
        """0.5 log det(L L^T) + D/2 (1 + log 2 pi) = sum(log diag L) + D/2 (1 + log 2 pi)."""
        D = self.D
        return anp.sum(anp.diag(anp.reshape(theta[D:], (D, D)))) + 0.5 * D * (1.0 + _LOG_2PI)

    def draw_and_entropy(self, theta, eps):
        return self.draw(theta, eps), self.entropy(theta)

    def draw_with_pullback(self, theta: np.ndarray, eps: np.ndarray):
        """The ELBO's guide half without autograd: ``(zeta [S, D], entropy, pullback)``.

        ``pullback(g)`` maps the gradient g [S, D] of the mean log joint in zeta to the
        ELBO's gradient in theta [D + D^2]: autograd's own VJPs of :meth:`draw`'s and
        :meth:`entropy`'s traced operations (getitem, reshape, tril, diag, exp, add,
        transpose, matmul, sum), each entry's sums in the traced order, so the gradient is
        the traced ELBO's bit for bit (tests/unit/test_elbo.py); ``elbo.elbo_and_grad`` then
        traces only the log joint (issue 15). Plain numpy, first order: theta and eps must not
        be boxed.
        """
        D = self.D
        M = theta[D:].reshape(D, D)
        diag_M = M.diagonal()     # np.diag's own view, without its Python layer (twice a step)
        diag_L = np.exp(diag_M)
        lower = _strictly_lower(D)
        # tril(M, -1) + diag(diag_L) entry by entry (0.0 + M_ij below the diagonal, as the
        # traced add; np.tril's where and the D x D diag cost 4x more at D = 1000)
        L = np.zeros((D, D))
        np.add(L, M, out=L, where=lower)
        L.flat[::D + 1] = diag_L
        zeta = theta[:D] + eps @ L.T
        entropy = np.add.reduce(diag_M) + 0.5 * D * (1.0 + _LOG_2PI)    # np.sum's reduction

        def pullback(g):
            # theta's gradient starts at zero and each contribution is added, as autograd's
            # accumulation into theta does (0.0 + x, which keeps even the sign of a zero)
            out = np.zeros(D + D * D)
            np.add(out[:D], np.add.reduce(g, axis=0), out=out[:D])
            # eps @ L.T: matmul's VJP in its second operand ([D, D], L's gradient transposed)
            g_L_t = np.matmul(np.swapaxes(eps, 0, 1), g)
            g_M = out[D:].reshape(D, D)
            np.add(g_M, g_L_t.T, out=g_M, where=lower)                   # tril(., -1)'s VJP
            # exp(diag(M))'s VJP, then the entropy's: sum(diag(M)) -> 1.0 on the diagonal
            g_M.flat[::D + 1] = diag_L * g_L_t.diagonal() + 1.0
            return out
        return zeta, entropy, pullback

    def log_q(self, theta, zeta):
        """log N(zeta; mu, L L^T) [S] by one triangular solve."""
        mu, L = self.split(theta)
        z = solve_lower(L, (zeta - mu).T)  # [D, S] = L^-1 (zeta - mu)
        return (-0.5 * anp.sum(z * z, axis=0) - anp.sum(anp.log(anp.diag(L)))
                - 0.5 * self.D * _LOG_2PI)

    def draw_and_log_q(self, theta, eps):
        """The draws [n, D] at the noise ``eps`` [n, D] and their log q [n]: L^-1 (zeta - mu)
        is eps itself, so no triangular solve is needed (nor scipy.linalg's import, 0.15 s
        of CPU: most of auto's full-rank probe on eight schools). Equal to :meth:`log_q` at
        the draws to rounding (tests/unit/test_guides.py)."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        log_det = np.sum(np.diag(theta[D:].reshape(D, D)))   # sum(log diag L)
        return (self.draw(theta, eps),
                -0.5 * np.sum(eps * eps, axis=1) - log_det - 0.5 * D * _LOG_2PI)

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws [n, D] (plain numpy)."""
        return self.draw(np.asarray(theta, dtype=float), rng.standard_normal((n, self.D)))

    def mean(self, theta) -> np.ndarray:
        return np.asarray(theta[:self.D])

    def log_sd(self, theta) -> np.ndarray:
        """log sqrt(diag(L L^T)) [D]: the log marginal sds."""
        _, L = self.split(np.asarray(theta, dtype=float))
        return 0.5 * np.log(np.sum(L * L, axis=1))

    def jitter_scale(self, theta) -> np.ndarray:
        """Units of the jitter rule: the marginal sd of row i for mu_i and for row i of L's
        off-diagonal entries (both move zeta_i), 1 for the log-diagonal."""
        D = self.D
        sd = np.exp(self.log_sd(theta))
        rows = np.repeat(sd[:, None], D, axis=1)
        np.fill_diagonal(rows, 1.0)
        return np.concatenate([sd, rows.ravel()])

    def frame(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, L)``: q is the law of mu + L eps."""
        mu, L = self.split(np.asarray(theta, dtype=float))
        return np.array(mu), np.array(L)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W zeta, zeta ~ q(theta); W [D] (diagonal) or [D, D]."""
        mu, L = self.split(np.asarray(theta, dtype=float))
        W = np.diag(W) if np.ndim(W) == 1 else np.asarray(W)
        # the Cholesky factor of W L L^T W^T, with its diagonal made positive column by column
        Q, R = np.linalg.qr((W @ L).T)
        L_new = R.T * np.sign(np.diag(R))
        return self.pack(m0 + W @ mu, L_new)

    def pack(self, mu, L) -> np.ndarray:
        """theta of N(mu, L L^T), L lower-triangular with a positive diagonal."""
        M = np.tril(L, -1) + np.diag(np.log(np.diag(L)))
        return np.concatenate([mu, M.ravel()])

    def warm_start(self, source, theta) -> np.ndarray:
        """Start from another family's fit: its mean and its affine frame (mean field: its
        mu and sigma, so L = diag(sigma))."""
        m0, W = source.frame(theta)
        return self.push_affine(self.init(self.D, 1.0), m0, W)

    def to_dict(self, theta, names) -> dict:
        """fit.json's parameters: {"mu": {name: ..}, "log_diag": {name: log L_ii},
        "lower": {row name: {column name: L_ij, j < i}}}."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        M = theta[D:].reshape(D, D)
        return {"mu": dict(zip(names, map(float, theta[:D]))),
                "log_diag": dict(zip(names, map(float, np.diag(M)))),
                "lower": {names[i]: {names[j]: float(M[i, j]) for j in range(i)}
                          for i in range(1, D)}}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        D = self.D
        M = np.diag([float(parameters["log_diag"][n]) for n in names])
        for i in range(1, D):
            for j in range(i):
                M[i, j] = float(parameters["lower"][names[i]][names[j]])
        return np.concatenate([[float(parameters["mu"][n]) for n in names], M.ravel()])
