"""Flow: a normalizing flow on the unconstrained space: K affine layers, then an affine map,
zeta = mu + A g_K(... g_1(eps)), with the exact log-determinant.

Two kinds of layer, chosen by measurement (docs/guides.md; ``ppl.guides.FLOW_KIND``):
- "iaf" (the default): inverse autoregressive flow (Kingma et al. 2016, "Improved Variational
  Inference with Inverse Autoregressive Flow", NeurIPS, section 4): x_i -> x_i exp(s_i) + t_i
  with s_i, t_i from a MADE network of x before i; consecutive layers reverse the order. Draws
  take one pass per layer; log q at a given point (the inverse) takes D passes per layer.
- "realnvp": affine coupling (Dinh, Sohl-Dickstein and Bengio 2017, "Density estimation using
  Real NVP", ICLR, section 3): one half a is kept, the other b -> b exp(s(a)) + t(a);
  consecutive layers swap the halves. Inverse in one pass.
Either Jacobian is triangular with log-determinant sum(s). The networks' last layers start at
zero, so a new flow is the identity map and q starts as the Gaussian N(mu, A A^T) it is
warm-started from.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd.tracer import Box, getval

# The IAF layers' numpy arithmetic and hand-written gradients (one autograd primitive)
from .iaf import (S_MAX, _iaf_backprop, _iaf_chain, _iaf_layers, _iaf_path_cotangent,
                  _iaf_run, _made_masks, _path_cotangent, hidden_units)
from .moments import NormalMap

_LOG_2PI = float(np.log(2 * np.pi))
DEFAULT_LAYERS = 2   # chosen by measurement on both eight schools (docs/guides.md)
MAX_DIM = 300        # A is dense [D, D] and each net is O(D^2): the flow is for small models
# Layers at most ('flow:K'). Each costs a pass per draw and an O(D^2) net: on a model of two
# latents flow:100 took 66 s against flow:2's 3.8 s, both reliable; flow:1000 ran 6 s a
# step and its ELBO fell to -1e23 within 20 steps (its layers' steps compound); flow:100000
# spent 18 s building its layers and 12 s on each 10 draws with nothing shown
MAX_LAYERS = 100


@dataclass(frozen=True)
class Flow(NormalMap):
    """q = law of mu + A g(eps), eps ~ N(0, I_D), g = K coupling layers.

    ``theta`` is mu [D], A [D, D] (row-major), then per layer: W1 [n_a, H], b1 [H],
    W2 [H, 2 n_b], b2 [2 n_b]. Layer k keeps the half ``a`` (the first D // 2 coordinates for
    even k, the rest for odd k) and transforms the other half ``b``.
    """

    D: int
    K: int = DEFAULT_LAYERS
    kind: str = "iaf"   # or "realnvp" (affine coupling); see the module docstring
    dense_frame = True
    # The flow's own phase takes draws_scale times the draws per ELBO-gradient step (5 -> 60)
    # and window_scale times the convergence window; the mean-field fit it is warm-started
    # from (WARM_FROM) takes warm_window_scale times the window. Measured on both eight
    # schools (docs/guides.md, seeds 0-5): with the plain gradient the noise, not the flow's
    # capacity, kept tau's mean off, and 100 draws a step were needed. The path gradient
    # ('sticking the landing', _path_entropy) has far less noise near the optimum: 60 draws
    # meet the targets on seeds 0-5 (30 and 20 did not on every seed, nor shorter windows).
    # The warm start is only a start, so its window is halved (its Hessian whitening gives
    # the flow's frame; a full-rank phase before the flow cost 30% of the fit and was not
    # needed for the targets).
    window_scale = 1
    draws_scale = 12
    path_gradient = True
    warm_window_scale = 0.5

    @property
    def name(self) -> str:
        return f"flow:{self.K}"

    @property
    def saved_floats(self) -> int:
        """Floats per draw a step holds for its layers (memory.guide_floats): each layer's
        saved input, scale, its exponential and hidden layer, as many for their cotangents,
        and the network output's cotangent [2 D]: 2,900 bytes a draw measured on eight
        schools (D = 10, K = 2, 2.4 million draws a step: 6.9 GB), this with the log joint's
        values and gradients 2,830."""
        return self.K * (8 * self.D + 2 * hidden_units(self.D))

    # ----- layout ------------------------------------------------------------------------------

    def _halves(self, k: int):
        cut = self.D // 2
        first, rest = np.arange(cut), np.arange(cut, self.D)
        return (first, rest) if k % 2 == 0 else (rest, first)

    def _layer_shapes(self, k: int):
        H = hidden_units(self.D)
        if self.kind == "iaf":
            return [(self.D, H), (H,), (H, 2 * self.D), (2 * self.D,)]
        a, b = self._halves(k)
        return [(len(a), H), (H,), (H, 2 * len(b)), (2 * len(b),)]

    def _masks(self, k: int):
        """MADE masks (Germain et al. 2015, "MADE", ICML, section 4) of IAF layer k: output
        i sees inputs before i in the layer's order (reversed on odd layers)."""
        return _made_masks(self.D, hidden_units(self.D), k % 2)

    def _unpack(self, theta):
        """(mu, A, [[W1, b1, W2, b2] per layer]) from theta, differentiable."""
        D = self.D
        mu, A = theta[:D], anp.reshape(theta[D:D + D * D], (D, D))
        at, layers = D + D * D, []
        for k in range(self.K):
            params = []
            for shape in self._layer_shapes(k):
                size = int(np.prod(shape))
                params.append(anp.reshape(theta[at:at + size], shape))
                at += size
            layers.append(params)
        return mu, A, layers

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """mu = 0, A = init_scale I, identity layers: W2 = b2 = 0; W1 fixed (not zero, or the
        gradient of W2 would not see the input), N(0, 1/n_a) from a generator of its own so
        that the start never depends on the fit's seed."""
        parts = [np.zeros(D), (init_scale * np.eye(D)).ravel()]
        for k in range(self.K):
            (n_a, H), _, w2, b2 = self._layer_shapes(k)
            w1 = np.random.default_rng([7, k]).standard_normal((n_a, H)) / np.sqrt(max(n_a, 1))
            parts += [w1.ravel(), np.zeros(H), np.zeros(int(np.prod(w2))), np.zeros(b2[0])]
        return np.concatenate(parts)

    def eps_dim(self, D: int) -> int:
        return D

    # ----- the map and its log-determinant -----------------------------------------------------

    def _iaf_shift_scale(self, k, params, x):
        """IAF layer k's scale s [S, D] and shift t [S, D]; s_i and t_i depend on x before i."""
        W1, b1, W2, b2 = params
        m1, m2, _ = self._masks(k)
        out = anp.tanh(x @ (W1 * m1) + b1) @ (W2 * m2) + b2
        return S_MAX * anp.tanh(out[:, :self.D] / S_MAX), out[:, self.D:]

    def _layer_forward(self, k, params, x):
        """(y, log|det dy/dx| [S]) of layer k."""
        if self.kind == "iaf":
            s, t = self._iaf_shift_scale(k, params, x)
            return x * anp.exp(s) + t, anp.sum(s, axis=1)
        s, t = self._coupling(k, params, x)
        a, b = self._halves(k)
        return self._assemble(k, x[:, a], x[:, b] * anp.exp(s) + t), anp.sum(s, axis=1)

    def _layer_inverse(self, k, params, y):
        """(x, log|det dy/dx| [S]) of layer k at its output y. RealNVP: one pass; IAF: D
        passes, coordinate by coordinate in the layer's order (x before i fixes s_i, t_i)."""
        if self.kind != "iaf":
            s, t = self._coupling(k, params, y)
            a, b = self._halves(k)
            return self._assemble(k, y[:, a], (y[:, b] - t) * anp.exp(-s)), anp.sum(s, axis=1)
        x = anp.zeros(y.shape)
        for _ in range(self.D):
            s, t = self._iaf_shift_scale(k, params, x)
            x = (y - t) * anp.exp(-s)
        return x, anp.sum(s, axis=1)

    def _coupling(self, k, params, x):
        """The scale s [S, n_b] and shift t [S, n_b] of layer k from its kept half."""
        W1, b1, W2, b2 = params
        a, b = self._halves(k)
        out = anp.tanh(x[:, a] @ W1 + b1) @ W2 + b2
        s = S_MAX * anp.tanh(out[:, :len(b)] / S_MAX)
        return s, out[:, len(b):]

    def _assemble(self, k, kept, moved):
        a, b = self._halves(k)
        order = np.argsort(np.concatenate([a, b]))
        return anp.concatenate([kept, moved], axis=1)[:, order]

    def forward(self, theta, eps):
        """(zeta [S, D], log|det d zeta / d eps| [S]) for eps [S, D]."""
        if self.kind == "iaf":
            return self._iaf_forward(theta, eps)
        mu, A, layers = self._unpack(theta)
        x, log_det = eps, anp.linalg.slogdet(A)[1] * anp.ones(eps.shape[0])
        for k, params in enumerate(layers):
            x, layer_log_det = self._layer_forward(k, params, x)
            log_det = log_det + layer_log_det
        return mu + x @ A.T, log_det

    def _iaf_forward(self, theta, eps):
        """:meth:`forward` for IAF layers, the K layers as one autograd primitive
        (:func:`_iaf_chain`): at D = 10 the composed version's ~100 small operations a draw
        batch, each traced and differentiated by autograd, cost 5-10x the arithmetic."""
        D = self.D
        mu, A = theta[:D], anp.reshape(theta[D:D + D * D], (D, D))
        out = _iaf_chain(theta[D + D * D:], eps, D, hidden_units(D), self.K)
        log_det = out[:, D] + anp.linalg.slogdet(A)[1]
        return mu + out[:, :D] @ A.T, log_det

    def inverse(self, theta, zeta):
        """(eps [S, D], log|det d zeta / d eps| [S]) for zeta [S, D]: the layers undone in
        reverse, b = (b' - t(a)) exp(-s(a)) (a layer keeps a, so s and t are known)."""
        mu, A, layers = self._unpack(theta)
        x = anp.linalg.solve(A, (zeta - mu).T).T
        log_det = anp.linalg.slogdet(A)[1] * anp.ones(zeta.shape[0])
        for k in reversed(range(self.K)):
            x, layer_log_det = self._layer_inverse(k, layers[k], x)
            log_det = log_det + layer_log_det
        return x, log_det

    def draw(self, theta, eps):
        return self.forward(theta, eps)[0]

    def draw_and_entropy(self, theta, eps):
        """The draws and the entropy estimate H[N(0, I)] + mean(log|det|) at the same eps:
        -log q(zeta) = -log N(eps) + log|det|, with the Gaussian part in closed form.

        With ``path_gradient`` (IAF) the value is the same but its gradient is the 'sticking
        the landing' one (:meth:`_path_entropy`)."""
        zeta, log_det = self.forward(theta, eps)
        entropy = anp.mean(log_det) + 0.5 * self.D * (1.0 + _LOG_2PI)
        if not (self.path_gradient and self.kind == "iaf" and isinstance(zeta, Box)):
            return zeta, entropy
        return zeta, self._path_entropy(theta, eps, zeta, entropy)

    def _path_entropy(self, theta, eps, zeta, entropy):
        """``entropy``'s value with the gradient of -mean(log q(zeta(theta); theta0)), theta0 =
        theta held fixed: 'sticking the landing' (Roeder, Wu and Duvenaud 2017, NeurIPS). It
        drops the score term E[d/dtheta log q(zeta; theta)] = 0 of the plain gradient, so it
        is unbiased, and when q equals the posterior log p - log q is constant in zeta and
        every draw's gradient is zero. The gradient flows only through the draws, with the
        cotangent -grad_zeta log q / S = J^-T (eps + grad_eps log|det|) / S (constant in
        theta): log q(g(eps)) = log N(eps) - log|det J(eps)| differentiated in eps gives
        J^T grad_zeta log q = -eps - grad_eps log|det|. No inverse pass is needed."""
        theta0, D = getval(theta), self.D
        A, eps = theta0[D:D + D * D].reshape(D, D), np.asarray(eps, dtype=float)
        u = _iaf_path_cotangent(theta0[D + D * D:], eps, eps, A, D, hidden_units(D), self.K)
        path = anp.sum(zeta * u)
        return getval(entropy) + path - getval(path)

    @property
    def sticks_the_landing(self) -> bool:
        """Whether the plain gradient is already the 'sticking the landing' one (IAF layers with
        the path gradient): --stl then takes it too, not log q's D-pass inverse, the same
        estimator at 5-20x the step's cost (varying_slopes' auto fit: 99.5 s against 8 s)."""
        return self.kind == "iaf" and self.path_gradient

    @property
    def draw_with_pullback(self):
        """:meth:`_iaf_draw_with_pullback` for IAF layers with the path gradient; None (the
        traced ELBO, ``elbo._elbo_and_grad``) for realnvp or the plain gradient."""
        if self.kind != "iaf" or not self.path_gradient:
            return None
        return self._iaf_draw_with_pullback

    def _iaf_draw_with_pullback(self, theta: np.ndarray, eps: np.ndarray):
        """The ELBO's guide half without autograd: ``(zeta [S, D], entropy, pullback)``.

        One IAF pass (:func:`_iaf_run`) gives the draws, the entropy and the saved values
        that both the path cotangent u (:func:`_path_cotangent`) and the layers' gradient
        (:func:`_iaf_backprop`) reuse (the traced ELBO runs the pass three times).
        ``pullback(g)`` maps the gradient g [S, D] of the mean log joint in zeta to the
        ELBO's gradient in theta: with the path gradient the entropy reaches theta only
        through sum(zeta * u) (:meth:`_path_entropy`), so zeta's cotangent is g + u, pulled
        back through zeta = mu + x A^T and the layers with the operations of autograd's VJPs
        (add's unbroadcast, matmul, transpose, reshape, getitem's scatter into zeros), so
        value and gradient are the traced ELBO's bit for bit when the log joint gives each
        entry of zeta one cotangent, as a compiled model does (else autograd, which adds u
        first, sums in another order: a few ulps; tests/unit/test_elbo.py).
        Plain numpy, first order: theta and eps must not be boxed.
        """
        D, S = self.D, eps.shape[0]
        params = _iaf_layers(theta[D + D * D:], D, hidden_units(D), self.K)
        out, saved = _iaf_run(params, eps, D)
        A, x = theta[D:D + D * D].reshape(D, D), out[:, :D]
        zeta = theta[:D] + x @ A.T
        entropy = (np.mean(out[:, D] + np.linalg.slogdet(A)[1])
                   + 0.5 * self.D * (1.0 + _LOG_2PI))
        u = _path_cotangent(params, saved, np.asarray(eps, dtype=float), A, D)
        path = np.sum(zeta * u)
        entropy = entropy + path - path     # _path_entropy's value, rounding included

        def pullback(g):
            G = g + u                   # zeta's readers: the log joint, then sum(zeta * u)
            grad = np.zeros(theta.shape[0])
            np.add(grad[:D], np.sum(G, axis=0), out=grad[:D])
            g_A = np.matmul(np.swapaxes(x, 0, 1), G).T.reshape(D * D)
            np.add(grad[D:D + D * D], g_A, out=grad[D:D + D * D])
            g_out = np.zeros((S, D + 1))    # out[:, :D]'s VJP; log|det| gets no cotangent
            np.add(g_out[:, :D], np.matmul(G, np.swapaxes(A.T, 0, 1)), out=g_out[:, :D])
            g_layers = _iaf_backprop(g_out, params, saved, D, want_eps=False)[0]
            np.add(grad[D + D * D:], g_layers, out=grad[D + D * D:])
            return grad
        return zeta, entropy, pullback

    def entropy(self, theta, eps):
        """Monte Carlo entropy at the noise ``eps`` [S, D] (no closed form for a flow)."""
        return self.draw_and_entropy(theta, eps)[1]

    # ----- units, warm starts, saving ----------------------------------------------------------

    def jitter_scale(self, theta) -> np.ndarray:
        """The affine part's marginal sd (row norm of A) for mu_i and row i of A, else 1."""
        D = self.D
        A = np.asarray(theta[D:D + D * D]).reshape(D, D)
        sd = np.sqrt(np.sum(A * A, axis=1))
        scale = np.ones(len(theta))
        scale[:D] = sd
        scale[D:D + D * D] = np.repeat(sd, D)
        return scale

    def frame(self, theta):
        """(mu, A): the affine part (all of q while the layers are the identity)."""
        mu, A, _ = self._unpack(np.asarray(theta, dtype=float))
        return np.array(mu), np.array(A)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W zeta: (mu, A) -> (m0 + W mu, W A), layers unchanged."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        W = np.diag(W) if np.ndim(W) == 1 else np.asarray(W)
        A = theta[D:D + D * D].reshape(D, D)
        return np.concatenate([m0 + W @ theta[:D], (W @ A).ravel(), theta[D + D * D:]])

    def warm_start(self, source, theta) -> np.ndarray:
        """Identity layers around the source's Gaussian: mu, A from its frame."""
        m0, W = source.frame(theta)
        return self.push_affine(self.init(self.D, 1.0), m0, W)

    def stacked_start(self, source, theta) -> np.ndarray | None:
        """In the frame of ``source``'s affine part (``source.frame(theta)``), the start of
        this flow at which it is the flow ``source`` at ``theta``: mu = 0, A = I, the source's
        layers first and identity layers after them. None unless ``source`` is a flow of the
        same kind and dimension with fewer layers."""
        if not (isinstance(source, Flow) and source.kind == self.kind and
                source.D == self.D and source.K < self.K):
            return None
        D = self.D
        start = self.init(D, 1.0)
        kept = np.asarray(theta, dtype=float)[D + D * D:]
        start[D + D * D:D + D * D + kept.size] = kept
        return start

    def to_dict(self, theta, names) -> dict:
        """{"mu": {name: ..}, "A": {name: [row of A]}, "layers": [flat parameters]}."""
        theta = np.asarray(theta, dtype=float)
        D = self.D
        A = theta[D:D + D * D].reshape(D, D)
        return {"mu": dict(zip(names, map(float, theta[:D]))),
                "A": {n: [float(v) for v in row] for n, row in zip(names, A)},
                "layers": [float(v) for v in theta[D + D * D:]]}

    def from_dict(self, parameters: dict, names) -> np.ndarray:
        A = np.array([parameters["A"][n] for n in names], dtype=float).reshape(self.D, self.D)
        return np.concatenate([[float(parameters["mu"][n]) for n in names], A.ravel(),
                               np.asarray(parameters["layers"], dtype=float)])
