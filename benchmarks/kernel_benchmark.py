"""Time one ELBO-gradient step at N = 100,000 rows: fused kernels, the traced path, hand numpy.

For a linear, a logistic and a Poisson regression (K = 20 predictors), a hierarchical linear
regression (100 groups, K = 5) and the same with varying slopes (``slopes``), time
``elbo.elbo_and_grad`` with the compiled log joint (fused kernels, ``kernels.py``), the same
with ``compile_model(..., fuse=False)`` (the plain traced path), and a hand-derived numpy
gradient of the same mean-field ELBO (no autograd), for S = 1 and S = 10, in one process with
interleaved rounds. Prints median CPU ms per step, the medians of the per-round ratios to the
hand-derived step (issue 15 asks for at most 1.5) and the operations autograd traces per
gradient, fused and traced.
``--small`` instead compares fused and traced steps on the shipped models that fuse (the
posteriordb data shipped in ``benchmarks/posteriordb``, see ``posteriordb_data.py``).
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/kernel_benchmark.py [--small]``.
"""
from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ppl.compiler import compile_model  # noqa: E402
from ppl.data import load_data  # noqa: E402
from ppl.frontend.check import check  # noqa: E402
from ppl.frontend.parse import parse  # noqa: E402
from ppl.infer.elbo import elbo_and_grad  # noqa: E402

N, K, G = 100_000, 20, 100
_HEAD = "data N: int\ndata K: int\ndata X: real[N, K]\n"
MODELS = {
    "linear": _HEAD + """data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + X @ beta, sigma)
""",
    "logistic": _HEAD + """data y: int[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
observe y ~ Bernoulli(logit=alpha + X @ beta)
""",
    "poisson": _HEAD + """data y: int[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
observe y ~ Poisson(log_rate=alpha + X @ beta)
""",
    "hierarchical": _HEAD + """data G: int
data group: int[N]
data y: real[N]
sample mu_a ~ Normal(0, 10)
sample sigma_a ~ HalfNormal(1)
sample a: real[G] ~ Normal(mu_a, sigma_a)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(a[group] + X @ beta, sigma)
""",
    # varying intercepts and slopes (lme4's (1 + x | group)): b[group] * x is a gather weighted
    # by the data x
    "slopes": _HEAD + """data G: int
data group: int[N]
data x: real[N]
data y: real[N]
sample mu_a ~ Normal(0, 10)
sample sigma_a ~ HalfNormal(1)
sample a: real[G] ~ Normal(mu_a, sigma_a)
sample b: real[G] ~ Normal(0, 1)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(a[group] + b[group] * x + X @ beta, sigma)
""",
}


def make_data(name: str, rng: np.random.Generator) -> dict:
    k = 5 if name in ("hierarchical", "slopes") else K
    X = rng.standard_normal((N, k)) / np.sqrt(k)
    eta = 0.3 + X @ rng.normal(0, 1, k)
    data = {"N": N, "K": k, "X": X}
    if name == "linear":
        data["y"] = eta + rng.normal(0, 0.7, N)
    elif name == "logistic":
        data["y"] = (rng.random(N) < expit(eta)).astype(int)
    elif name == "poisson":
        data["y"] = rng.poisson(np.exp(eta))
    else:
        group, x = rng.integers(0, G, N), rng.standard_normal(N)
        slopes = rng.normal(0, 1, G)[group] * x if name == "slopes" else 0.0
        data.update(G=G, group=group, y=eta + rng.normal(0, 1, G)[group] + slopes
                    + rng.normal(0, 0.7, N))
        if name == "slopes":
            data["x"] = x
    return data


def compile_text(text: str, data: dict, fuse: bool):
    program = parse(text)
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values, fuse=fuse)


# ----- hand-derived log joints and gradients: z [S, D] -> (lp [S], d lp / dz [S, D]) ---------

def _normal_prior(v, sd):
    """log Normal(v; 0, sd) and its derivative, up to a constant."""
    return -0.5 * (v / sd) ** 2, -v / sd ** 2


def _half_normal_exp(u):
    """log HalfNormal(exp(u); 1) + u (log-Jacobian) and d/du, up to a constant."""
    s2 = np.exp(2 * u)
    return -0.5 * s2 + u, 1.0 - s2


def _likelihood(family: str, y, eta, z_sigma):
    """(lp [S], d lp / d eta [S, N], d lp / d log sigma [S] or None), each up to a constant;
    ``eta`` [S, N] is overwritten."""
    if family == "normal":
        r = np.subtract(y, eta, out=eta)
        ss = np.einsum("ij,ij->i", r, r)
        inv_var = np.exp(-2 * z_sigma)
        lp = -0.5 * ss * inv_var - y.shape[0] * z_sigma
        return lp, np.multiply(r, inv_var[:, None], out=r), ss * inv_var - y.shape[0]
    if family == "bernoulli":
        # softplus(x) = max(x, 0) + log1p(exp(-|x|)), as the kernel computes it (numpy's
        # vectorized exp and log1p; np.logaddexp took twice as long): the floor stays a floor
        soft = np.abs(eta)
        plus = 0.5 * (eta.sum(axis=1) + soft.sum(axis=1))
        soft = np.log1p(np.exp(np.negative(soft, out=soft), out=soft), out=soft)
        lp = eta @ y - plus - soft.sum(axis=1)
        # y - sigmoid(eta) = (y - 1/2) - tanh(eta / 2) / 2, in place, as the kernel computes it
        # (scipy's expit took 3.5x as long)
        t = np.tanh(np.multiply(eta, 0.5, out=eta), out=eta)
        return lp, np.subtract(y - 0.5, np.multiply(t, 0.5, out=t), out=t), None
    lp = eta @ y                                           # Poisson, log link
    rate = np.exp(eta, out=eta)
    return lp - rate.sum(axis=1), np.subtract(y, rate, out=rate), None


def _times_x(g_eta, x_t, X):
    """g_eta [S, N] @ X [N, K]; at one draw X^T g as a matrix-vector product over the rows
    of X^T, as the kernels do (about half the time for small K): the floor stays a floor."""
    return (x_t @ g_eta[0])[None] if g_eta.shape[0] == 1 else g_eta @ X


def hand_regression(data: dict, family: str):
    X, y = data["X"], np.asarray(data["y"], dtype=float)
    x_t, k = np.ascontiguousarray(X.T), X.shape[1]

    def log_joint_and_grad(z):
        alpha, beta = z[:, 0], z[:, 1:k + 1]
        eta = beta @ x_t
        eta += alpha[:, None]
        lp_a, g_a = _normal_prior(alpha, 10.0)
        lp_b, g_b = _normal_prior(beta, 2.0)
        g = np.empty_like(z)
        if family == "normal":
            lp_s, g_s = _half_normal_exp(z[:, k + 1])
            lp, g_eta, g_ls = _likelihood(family, y, eta, z[:, k + 1])
            lp = lp + lp_s
            g[:, k + 1] = g_s + g_ls
        else:
            lp, g_eta, _ = _likelihood(family, y, eta, None)
        g[:, 0] = g_a + g_eta.sum(axis=1)
        g[:, 1:k + 1] = g_b + _times_x(g_eta, x_t, X)
        return lp + lp_a + lp_b.sum(axis=1), g
    return log_joint_and_grad


def hand_hierarchical(data: dict):
    """The hierarchical model's hand gradient, and the slopes model's when data has x (its
    b [G] then sits between a and beta)."""
    X, y, group = data["X"], np.asarray(data["y"], dtype=float), data["group"]
    x_t, k, x = np.ascontiguousarray(X.T), X.shape[1], data.get("x")
    slopes = G if x is not None else 0

    def log_joint_and_grad(z):
        mu_a, u_a, a = z[:, 0], z[:, 1], z[:, 2:G + 2]
        b, z = z[:, G + 2:G + 2 + slopes], np.delete(z, np.s_[G + 2:G + 2 + slopes], axis=1)
        beta, u = z[:, G + 2:G + 2 + k], z[:, G + 2 + k]
        eta = beta @ x_t
        eta += a[:, group]
        if slopes:
            eta += b[:, group] * x
        lp_mu, g_mu = _normal_prior(mu_a, 10.0)
        lp_sa, g_sa = _half_normal_exp(u_a)
        d = a - mu_a[:, None]
        inv_var_a = np.exp(-2 * u_a)
        ss_a = np.einsum("ij,ij->i", d, d)
        lp_a = -0.5 * ss_a * inv_var_a - G * u_a
        lp_b, g_b = _normal_prior(beta, 2.0)
        lp_s, g_s = _half_normal_exp(u)
        lp, g_eta, g_ls = _likelihood("normal", y, eta, u)
        g = np.empty_like(z)
        g[:, 0] = g_mu + inv_var_a * d.sum(axis=1)
        g[:, 1] = g_sa + ss_a * inv_var_a - G
        g[:, 2:G + 2] = -d * inv_var_a[:, None] + np.stack(
            [np.bincount(group, weights=row, minlength=G) for row in g_eta])
        g[:, G + 2:G + 2 + k] = g_b + _times_x(g_eta, x_t, X)
        g[:, G + 2 + k] = g_s + g_ls
        lp = lp + lp_mu + lp_sa + lp_a + lp_b.sum(axis=1) + lp_s
        if slopes:
            lp_slopes, g_slopes = _normal_prior(b, 1.0)
            g_slopes += np.stack([np.bincount(group, weights=row * x, minlength=G)
                                  for row in g_eta])
            g = np.concatenate([g[:, :G + 2], g_slopes, g[:, G + 2:]], axis=1)
            lp = lp + lp_slopes.sum(axis=1)
        return lp, g
    return log_joint_and_grad


def hand_step(log_joint_and_grad, theta, eps):
    """The mean-field ELBO (up to a constant) and its gradient in theta = (mu, log_sigma)."""
    D = eps.shape[1]
    mu, log_sigma = theta[:D], theta[D:]
    sigma = np.exp(log_sigma)
    lp, g = log_joint_and_grad(mu + sigma * eps)
    grad = np.concatenate([g.mean(axis=0), (g * eps).mean(axis=0) * sigma + 1.0])
    return lp.mean() + log_sigma.sum(), grad


HAND = {"linear": lambda d: hand_regression(d, "normal"),
        "logistic": lambda d: hand_regression(d, "bernoulli"),
        "poisson": lambda d: hand_regression(d, "poisson"),
        "hierarchical": hand_hierarchical, "slopes": hand_hierarchical}


# ----- timing -------------------------------------------------------------------------------

def traced_operations(fn) -> int:
    """How many operations autograd records (one VJPNode each) while ``fn()`` runs: the
    fixed cost of a step is mostly its bookkeeping per operation and the Python around it."""
    from autograd.core import VJPNode
    count, init = [0], VJPNode.__init__

    def counting(self, *args):
        count[0] += 1
        init(self, *args)
    VJPNode.__init__ = counting
    try:
        fn()
    finally:
        VJPNode.__init__ = init
    return count[0]


def interleaved(fns: dict, repeat: int) -> dict:
    """Median CPU seconds per call of each fn, timed round-robin, and per-round ratios to
    'hand'."""
    # CPU time of this process, not wall time: on a shared machine a wall clock also counts
    # the time slices given to other processes
    timers = {name: timeit.Timer(fn, timer=time.process_time) for name, fn in fns.items()}
    numbers = {name: max(1, timer.autorange()[0] // 5) for name, timer in timers.items()}
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, timer in timers.items():
            times[name].append(timer.timeit(numbers[name]) / numbers[name])
    hand = np.asarray(times["hand"])
    return {name: (float(np.median(t)), float(np.median(np.asarray(t) / hand)))
            for name, t in times.items()}


def shipped_models():
    """(name, text, data) of the example and posteriordb models that get a fused kernel."""
    import json
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import posteriordb_data as pdb
    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "models").glob("*.ppl")):
        yield path.stem, path.read_text(), json.loads(path.with_suffix(".json").read_text())
    for name in pdb.names():
        yield name, pdb.model_path(name).read_text(), pdb.load_data(name)


def small(repeat: int) -> None:
    """Fused against traced on the shipped models (small N: does the fusion still pay?)."""
    import warnings
    print(f"{'model':44s} {'S':>3s} {'fused ms':>9s} {'traced ms':>10s} {'fused/traced':>12s}")
    for name, text, data in shipped_models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused, traced = compile_text(text, data, True), compile_text(text, data, False)
        if not any(getattr(s, "kernel", None) for s in fused._steps):
            continue
        D = fused.dim
        theta = np.concatenate([np.zeros(D), np.full(D, -2.0)])
        for S in (1, 10):
            eps = np.random.default_rng(S).standard_normal((S, D))
            result = interleaved({
                "hand": lambda: elbo_and_grad(traced.log_joint, theta, eps),
                "fused": lambda: elbo_and_grad(fused.log_joint, theta, eps)}, repeat)
            print(f"{name:44s} {S:3d} {result['fused'][0] * 1e3:9.3f} "
                  f"{result['hand'][0] * 1e3:10.3f} {result['fused'][1]:12.2f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--small", action="store_true",
                        help="instead: fused against traced on the shipped models that fuse")
    args = parser.parse_args(argv)
    if args.small:
        small(args.repeat)
        return
    print(f"{'model':14s} {'S':>3s} {'hand ms':>8s} {'fused ms':>9s} {'traced ms':>10s}"
          f" {'fused/hand':>10s} {'traced/hand':>11s} {'ops fused':>9s} {'ops traced':>10s}")
    for name in args.models:
        data = make_data(name, np.random.default_rng(20261129))
        fused = compile_text(MODELS[name], data, True)
        traced = compile_text(MODELS[name], data, False)
        hand = HAND[name](data)
        D = fused.dim
        theta = np.concatenate([np.random.default_rng(1).normal(0, 0.1, D), np.full(D, -2.0)])
        for S in (1, 10):
            eps = np.random.default_rng(S).standard_normal((S, D))

            def ops(compiled):
                return traced_operations(lambda: elbo_and_grad(compiled.log_joint, theta, eps))
            # the hand gradient is checked against autograd's before it is timed
            want = elbo_and_grad(traced.log_joint, theta, eps)[1]
            got = hand_step(hand, theta, eps)[1]
            assert np.allclose(got, want, rtol=1e-7, atol=1e-7 * np.abs(want).max()), name
            result = interleaved({
                "hand": lambda: hand_step(hand, theta, eps),
                "fused": lambda: elbo_and_grad(fused.log_joint, theta, eps),
                "traced": lambda: elbo_and_grad(traced.log_joint, theta, eps)}, args.repeat)
            print(f"{name:14s} {S:3d} {result['hand'][0] * 1e3:8.2f} "
                  f"{result['fused'][0] * 1e3:9.2f} {result['traced'][0] * 1e3:10.2f} "
                  f"{result['fused'][1]:10.2f} {result['traced'][1]:11.2f} "
                  f"{ops(fused):9d} {ops(traced):10d}", flush=True)


if __name__ == "__main__":
    main()
