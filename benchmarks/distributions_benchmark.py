"""Cost of one log density + gradient per distribution, as a ratio to Normal's in the same run.

Every call has the shapes of a fit step: parameters depending on latents carry S draws
([S, 1, ...]), the observed value N data rows ([1, N, ...]). A ratio near the number of
scalar operations per element shows the density is vectorized; a Python loop over draws or
rows would show up as a ratio in the hundreds.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/distributions_benchmark.py
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import grad

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ppl.bijectors import CorrCholeskyBijector  # noqa: E402
from ppl.distributions import lookup  # noqa: E402

K = 4


def _cases(rng, s, n):
    """name -> (distribution, value [1, N, ...], params with a draw axis)."""
    pos = lambda *shape: rng.uniform(0.5, 2.0, (s, 1) + shape)  # noqa: E731
    real = lambda *shape: rng.normal(0.0, 1.0, (s, 1) + shape)  # noqa: E731
    a = rng.normal(size=(s, 1, K, K))
    cov = a @ np.swapaxes(a, -1, -2) + K * np.eye(K)
    counts = rng.integers(0, 5, (1, n))
    cut = np.cumsum(rng.uniform(0.5, 1.0, (s, 1, K)), axis=-1) - 2.0
    corr = CorrCholeskyBijector().forward(rng.normal(size=(1, n, K * (K - 1) // 2)))
    normal = lookup("Normal")
    return {
        "Normal": ("Normal", rng.normal(size=(1, n)), {"mu": real(), "sigma": pos()}),
        "Weibull": ("Weibull", rng.uniform(0.1, 3, (1, n)), {"shape": pos(), "scale": pos()}),
        "Gumbel": ("Gumbel", rng.normal(size=(1, n)), {"mu": real(), "beta": pos()}),
        "Logistic": ("Logistic", rng.normal(size=(1, n)), {"mu": real(), "s": pos()}),
        "ZeroInflatedPoisson": ("ZeroInflatedPoisson", counts,
                                {"rate": pos(), "zi": rng.uniform(0.1, 0.9, (s, 1))}),
        "ZeroInflatedNegativeBinomial": ("ZeroInflatedNegativeBinomial", counts,
                                         {"mu": pos(), "phi": pos(),
                                          "zi": rng.uniform(0.1, 0.9, (s, 1))}),
        "OrderedLogistic": ("OrderedLogistic", counts, {"eta": real(), "cutpoints": cut}),
        "MvNormal(cov)": ("MvNormal", rng.normal(size=(1, n, K)), {"mu": real(K), "cov": cov}),
        "MvNormal(scale_tril)": ("MvNormal", rng.normal(size=(1, n, K)),
                                 {"mu": real(K), "scale_tril": np.linalg.cholesky(cov)}),
        "LKJCholesky": ("LKJCholesky", corr, {"eta": pos()}),
        "Multinomial": ("Multinomial", rng.multinomial(10, np.full(K, 1 / K), (1, n)),
                        {"n": 10, "p": rng.dirichlet(np.ones(K), (s, 1))}),
        "RandomWalk": ("RandomWalk", rng.normal(size=(1, n, K)),
                       {"sigma": pos(), "init": pos()}),
        "AR1": ("AR1", rng.normal(size=(1, n, K)),
                {"mu": real(), "phi": rng.uniform(-0.9, 0.9, (s, 1)), "sigma": pos()}),
        "Mixture(Normal)": ("Mixture", rng.normal(size=(1, n)),
                            {"w": rng.dirichlet(np.ones(K), (s, 1)),
                             "component": (normal, {"mu": real(K), "sigma": pos(K)})}),
    }


def _seconds(name, x, params, repeats):
    """Best of ``repeats`` of value + gradient in the first real parameter."""
    cls = lookup(name)
    first = next(k for k, v in params.items() if k not in cls.int_params | cls.dist_params)

    def total(v):
        return anp.sum(cls.log_density(x, **dict(params, **{first: v})))
    g = grad(total)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        total(params[first])
        g(params[first])
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    cases = _cases(np.random.default_rng(0), args.draws, args.rows)
    base = _seconds(*cases["Normal"], args.repeats)
    print(f"S={args.draws} draws, N={args.rows} rows, K={K}; time / Normal's")
    for label, (name, x, params) in cases.items():
        print(f"{label:30s} {_seconds(name, x, params, args.repeats) / base:8.1f}")


if __name__ == "__main__":
    main()
