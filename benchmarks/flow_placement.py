"""A probe's flow (not in ppl): the IAF layers after the affine map instead of before it.

ppl's flow is zeta = mu + A g(eps): the layers act on the noise, before the dense A.
``AfterFlow`` is zeta = c + C g(mu + A eps): the layers act on a Gaussian's draws, and
:meth:`AfterFlow.model_start` places them so that, once the fit's frame is undone, they see the
model's own coordinates, each standardized ((zeta - m0) / sd). Measured on gp_pois_regr by
benchmarks/gp_flow_diagnosis.py (docs/history/trust-log.md, "gp_pois_regr under auto", fifth
attempt); tested in tests/unit/test_guides.py (log-determinant, inverse, path gradient, same start
q).

theta is the flow's (mu [D], A [D, D], the layers) followed by c [D] and C [D, D].
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from ppl.guides.flow import Flow
from ppl.guides.iaf import _iaf_chain, _iaf_path_cotangent, hidden_units


@dataclass(frozen=True)
class AfterFlow(Flow):
    """q = law of c + C g(mu + A eps), eps ~ N(0, I_D), g = K IAF layers (kind 'iaf' only)."""

    def _layer_size(self) -> int:
        return sum(int(np.prod(shape)) for k in range(self.K) for shape in self._layer_shapes(k))

    def _outer(self, theta):
        """(c [D], C [D, D]), differentiable."""
        D, at = self.D, self.D + self.D * self.D + self._layer_size()
        return theta[at:at + D], anp.reshape(theta[at + D:at + D + D * D], (D, D))

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """Flow.init (A = init_scale I, identity layers), then c = 0, C = I."""
        return np.concatenate([super().init(D, init_scale), np.zeros(D), np.eye(D).ravel()])

    def model_start(self, W) -> np.ndarray:
        """Identity layers in the frame u (zeta = m0 + W u, W [D, D]) at N(0, I), placed so
        that pushed back (push_affine) the layers act on the model's coordinates standardized
        by their sds under N(m0, W W^T): A = diag(1/sd) W, C = W^-1 diag(sd) (C A = I)."""
        D, W = self.D, np.asarray(W, dtype=float)
        sd = np.sqrt(np.sum(W * W, axis=1))
        theta, at = self.init(D, 1.0), D + D * D + self._layer_size() + D
        theta[D:D + D * D] = (W / sd[:, None]).ravel()
        theta[at:at + D * D] = np.linalg.solve(W, np.diag(sd)).ravel()
        return theta

    def forward(self, theta, eps):
        """(zeta [S, D], log|det d zeta / d eps| [S]) for eps [S, D]."""
        D = self.D
        mu, A = theta[:D], anp.reshape(theta[D:D + D * D], (D, D))
        c, C = self._outer(theta)
        layers = theta[D + D * D:D + D * D + self._layer_size()]
        out = _iaf_chain(layers, mu + eps @ A.T, D, hidden_units(D), self.K)
        log_det = out[:, D] + anp.linalg.slogdet(A)[1] + anp.linalg.slogdet(C)[1]
        return c + out[:, :D] @ C.T, log_det

    def inverse(self, theta, zeta):
        """(eps [S, D], log|det d zeta / d eps| [S]): C, the layers, then A undone."""
        mu, A, layers = self._unpack(theta)
        c, C = self._outer(theta)
        x = anp.linalg.solve(C, (zeta - c).T).T
        log_det = (anp.linalg.slogdet(A)[1] + anp.linalg.slogdet(C)[1]) * anp.ones(zeta.shape[0])
        for k in reversed(range(self.K)):
            x, layer_log_det = self._layer_inverse(k, layers[k], x)
            log_det = log_det + layer_log_det
        return anp.linalg.solve(A, (x - mu).T).T, log_det

    def _path_entropy(self, theta, eps, zeta, entropy):
        """Flow._path_entropy for J = C J_g(y) A at y = mu + A eps: the cotangent J^-T (eps +
        A^T grad_y log|det J_g|) / S = C^-T J_g^-T (A^-T eps + grad_y log|det J_g|) / S."""
        theta0, D = getval(theta), self.D
        mu, A = theta0[:D], theta0[D:D + D * D].reshape(D, D)
        eps = np.asarray(eps, dtype=float)
        layers = theta0[D + D * D:D + D * D + self._layer_size()]
        u = _iaf_path_cotangent(layers, mu + eps @ A.T, np.linalg.solve(A.T, eps.T).T,
                                self._outer(theta0)[1], D, hidden_units(D), self.K)
        path = anp.sum(zeta * u)
        return getval(entropy) + path - getval(path)

    def jitter_scale(self, theta) -> np.ndarray:
        """Flow's, and for c_i the row norm of C A (zeta_i's sd), for row i of C its norm."""
        D, theta = self.D, np.asarray(theta, dtype=float)
        scale = super().jitter_scale(theta)
        A, C = theta[D:D + D * D].reshape(D, D), self._outer(theta)[1]
        at = D + D * D + self._layer_size()
        scale[at:at + D] = np.sqrt(np.sum((C @ A) ** 2, axis=1))
        scale[at + D:at + D + D * D] = np.repeat(np.sqrt(np.sum(C * C, axis=1)), D)
        return scale

    def frame(self, theta):
        """(c + C mu, C A): all of q while the layers are the identity."""
        theta = np.asarray(theta, dtype=float)
        mu, A, _ = self._unpack(theta)
        c, C = self._outer(theta)
        return c + C @ mu, C @ A

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W zeta: (c, C) -> (m0 + W c, W C)."""
        theta, D = np.asarray(theta, dtype=float), self.D
        W = np.diag(W) if np.ndim(W) == 1 else np.asarray(W)
        c, C = self._outer(theta)
        at = D + D * D + self._layer_size()
        return np.concatenate([theta[:at], m0 + W @ c, (W @ C).ravel(),
                               theta[at + D + D * D:]])


@dataclass(frozen=True)
class FixedOuterFlow(AfterFlow):
    """AfterFlow with c and C held where they start (no gradient): the layers stay in the
    coordinates model_start gave them."""

    def _outer(self, theta):
        c, C = super()._outer(theta)
        return getval(c), getval(C)


@dataclass(frozen=True)
class SinhArcsinhFlow(AfterFlow):
    """AfterFlow with an elementwise sinh-arcsinh map h between the layers and C (Jones and
    Pewsey 2009, "Sinh-arcsinh distributions", Biometrika): zeta = c + C h(g(mu + A eps)),
    h_i(x) = sinh(d_i arcsinh(x) + a_i), a skew a_i and a tail weight d_i per coordinate (the
    identity at a = 0, d = 1), after model_start on each standardized latent. theta ends with
    a [D] and log d [D]."""

    def init(self, D: int, init_scale: float) -> np.ndarray:
        return np.concatenate([super().init(D, init_scale), np.zeros(2 * D)])

    def _skew(self, theta):
        D = self.D
        return theta[-2 * D:-D], anp.exp(theta[-D:])

    def _h(self, theta, x):
        """(h(x) [S, D], log h'(x) [S, D], d log h'(x) / dx [S, D]) for the map's input x."""
        a, d = self._skew(theta)
        v = d * anp.arcsinh(x) + a
        root = anp.sqrt(1.0 + x * x)
        log_h_prime = anp.log(anp.cosh(v)) + anp.log(d) - anp.log(root)
        return anp.sinh(v), log_h_prime, anp.tanh(v) * d / root - x / (root * root)

    def forward(self, theta, eps):
        D = self.D
        mu, A = theta[:D], anp.reshape(theta[D:D + D * D], (D, D))
        c, C = self._outer(theta)
        layers = theta[D + D * D:D + D * D + self._layer_size()]
        out = _iaf_chain(layers, mu + eps @ A.T, D, hidden_units(D), self.K)
        w, log_h_prime, _ = self._h(theta, out[:, :D])
        log_det = (out[:, D] + anp.sum(log_h_prime, axis=1) + anp.linalg.slogdet(A)[1]
                   + anp.linalg.slogdet(C)[1])
        return c + w @ C.T, log_det

    def inverse(self, theta, zeta):
        mu, A, layers = self._unpack(theta)
        c, C = self._outer(theta)
        a, d = self._skew(theta)
        x = anp.sinh((anp.arcsinh(anp.linalg.solve(C, (zeta - c).T).T) - a) / d)
        log_det = (anp.sum(self._h(theta, x)[1], axis=1) + anp.linalg.slogdet(A)[1]
                   + anp.linalg.slogdet(C)[1])
        for k in reversed(range(self.K)):
            x, layer_log_det = self._layer_inverse(k, layers[k], x)
            log_det = log_det + layer_log_det
        return anp.linalg.solve(A, (x - mu).T).T, log_det

    def _path_entropy(self, theta, eps, zeta, entropy):
        """J = C diag(h'(x)) J_g(y) A: the cotangent C^-T diag(1/h') J_g^-T (A^-T eps +
        grad_y [log|det J_g| + sum log h'(g(y))]) / S; the h term's gradient in y by the
        layers' backpropagation (ppl.guides.iaf._iaf_backward)."""
        from ppl.guides.iaf import _iaf_backward
        theta0, D, H = getval(theta), self.D, hidden_units(self.D)
        mu, A = theta0[:D], theta0[D:D + D * D].reshape(D, D)
        eps = np.asarray(eps, dtype=float)
        layers = theta0[D + D * D:D + D * D + self._layer_size()]
        y = mu + eps @ A.T
        x = _iaf_chain(layers, y, D, H, self.K)[:, :D]
        _, log_h_prime, slope = self._h(theta0, x)
        cotangent = np.concatenate([slope, np.zeros((eps.shape[0], 1))], axis=1)
        g_h = _iaf_backward(cotangent, layers, y, D, H, self.K)[1]
        u = _iaf_path_cotangent(layers, y, np.linalg.solve(A.T, eps.T).T + g_h, np.eye(D), D,
                                H, self.K) / np.exp(log_h_prime)
        u = np.linalg.solve(self._outer(theta0)[1].T, u.T).T
        path = anp.sum(zeta * u)
        return getval(entropy) + path - getval(path)
