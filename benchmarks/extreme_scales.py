"""Issue 9 item 3: fits at extreme scales and on a 100,000-row regression, against exact posteriors.

Per case and seed: the largest |mean - exact mean| in exact posterior sds, the range of guide sd
/ reference sd (the mean-field sd for the regression), the fit's reason and its warnings. Fits go
through ``advi.fit`` with the mean-field guide, as ``ppl fit`` runs its first family.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/extreme_scales.py scales 0,1,2
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/extreme_scales.py regression 0,1,2 [--known]

Run it at another commit (``PYTHONPATH=CHECKOUT``) for the figures before a change.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ppl.compiler import compile_model  # noqa: E402
from ppl.data import load_data  # noqa: E402
from ppl.frontend.check import check  # noqa: E402
from ppl.frontend.parse import parse  # noqa: E402
from ppl.infer.advi import fit  # noqa: E402
from ppl.options import FitOptions  # noqa: E402

SMALL = ("data y: real[20]\nsample mu ~ Normal(0, 10)\nsample sigma ~ HalfNormal(1)\n"
         "observe y ~ Normal(mu, sigma)\n")
# the 100,000-row regression of end_to_end.py (unknown noise), and the same with it known
from end_to_end import BIG_REGRESSION as UNKNOWN  # noqa: E402
KNOWN = UNKNOWN.replace("sample sigma ~ HalfNormal(1)\n", "").replace("sigma)", "0.7)")


def compiled(text, data):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values)


def run(c, seed):
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        r = fit(c, FitOptions(seed=seed, guide="meanfield"), np.random.default_rng(seed))
    return r, time.perf_counter() - start, [str(w.message)[:100] for w in record]


def report(label, seed, r, seconds, warned, error, ratio):
    print(f"{label} seed={seed} reason={r.reason[:28]!r} steps={r.steps} s={seconds:.0f} "
          f"max_err={error.max():.3g} sd_ratio=[{ratio.min():.3g}, {ratio.max():.3g}] "
          f"warnings={warned}", flush=True)


def _grid_weights(log_p, lo, hi, half_width):
    """The mode of a 1-D log density, and a grid of +-half_width Laplace sds with its weights."""
    mode = scipy.optimize.minimize_scalar(lambda s: -log_p(s), bounds=(lo, hi), method="bounded",
                                          options={"xatol": 1e-12}).x
    width = 1e-3
    for _ in range(3):   # the stencil shrinks with the width (at 1e12, sd(s) is 2e-7)
        h = width / 10
        width = 1 / np.sqrt(-(log_p(mode + h) - 2 * log_p(mode) + log_p(mode - h)) / h ** 2)
    grid = mode + np.linspace(-half_width, half_width, 161) * width
    log_w = np.array([log_p(s) for s in grid])
    w = np.exp(log_w - log_w.max())
    return grid, w / w.sum(), width


def exact_small(y):
    """Exact posterior means [2] and sds [2] of (mu, log sigma) for SMALL: mu integrated out in
    closed form (y | sigma is Gaussian), s = log sigma by quadrature on 4001 points.

    At 1e12 the log density's terms are ~1e12 while sd(s) is 2e-7: each is written as its value
    at a centre s0 plus an expm1/log1p difference, so that the differences keep their digits
    (checked against 50-digit mpmath: the Laplace sd of s, 2.3448e-7, agrees to 1e-4).
    """
    n, ybar, ss = len(y), y.mean(), np.sum((y - y.mean()) ** 2)
    c, a = 100 * n, n * ybar ** 2

    def log_p(s, s0):   # log density of s (Jacobian included) minus its value at s0
        v0, d = np.exp(2 * s0), np.expm1(2 * (s - s0))
        return (-0.5 * v0 * d - (n - 2) * (s - s0) - 0.5 * np.log1p(v0 * d / (v0 + c))
                - 0.5 * ss / v0 * np.expm1(-2 * (s - s0))
                + 0.5 * a * v0 * d / ((v0 * (1 + d) + c) * (v0 + c)))

    s0 = 0.0
    for _ in range(3):   # the mode, each time measured from the last estimate
        s0 = scipy.optimize.minimize_scalar(lambda s: -log_p(s, s0), bounds=(s0 - 80, s0 + 80),
                                            method="bounded", options={"xatol": 1e-14}).x
    width = 1e-3
    for _ in range(3):   # the stencil shrinks with the width
        h = width / 10
        width = 1 / np.sqrt(-(log_p(s0 + h, s0) + log_p(s0 - h, s0)) / h ** 2)
    u = np.linspace(-12, 12, 4001) * width
    w = np.exp(log_p(s0 + u, s0))
    w /= w.sum()
    precision = 1 / 100 + n / np.exp(2 * (s0 + u))
    m = n * ybar / np.exp(2 * (s0 + u)) / precision
    mean = np.array([w @ m, s0 + w @ u])
    var = np.array([w @ (1 / precision + m ** 2) - mean[0] ** 2, w @ u ** 2 - (w @ u) ** 2])
    return mean, np.sqrt(var)


def data(N):
    """benchmarks/end_to_end.py's big regression."""
    rng = np.random.default_rng(20240601)
    X = rng.standard_normal((N, 20))
    return {"N": N, "K": 20, "X": X, "y": 0.5 + X @ rng.normal(0, 1, 20) + rng.normal(0, 0.7, N)}


def conditional(d, sigma):
    """Precision [21, 21], mean [21] and Z^T y / sigma^2 of (alpha, beta) given sigma."""
    Z = np.column_stack([np.ones(d["N"]), d["X"]])
    P = Z.T @ Z / sigma ** 2 + np.diag([1 / 100] + [1 / 4] * 20)
    b = Z.T @ d["y"] / sigma ** 2
    return P, np.linalg.solve(P, b), b


def exact(d, known):
    """Exact means [D], mean-field sds [D] (1/sqrt(E[diag precision])), marginal sds [D];
    unknown noise: (alpha, beta) integrated out in closed form, log sigma by quadrature."""
    if known:
        P, m, _ = conditional(d, 0.7)
        return m, 1 / np.sqrt(np.diag(P)), np.sqrt(np.diag(np.linalg.inv(P)))
    yy, N = d["y"] @ d["y"], d["N"]

    def log_p(s):   # HalfNormal(1) prior of sigma, its log Jacobian, the marginal likelihood
        sigma = np.exp(s)
        P, m, b = conditional(d, sigma)
        return (-0.5 * sigma ** 2 + s - N * s - 0.5 * (yy / sigma ** 2 - b @ m)
                - 0.5 * np.linalg.slogdet(P)[1])

    grid, w, width = _grid_weights(log_p, -3, 1, 8)
    parts = [conditional(d, np.exp(s)) for s in grid]
    ms = np.array([m for _, m, _ in parts])
    variances = np.array([np.diag(np.linalg.inv(P)) for P, _, _ in parts])
    precisions = np.array([np.diag(P) for P, _, _ in parts])
    mean = np.append(w @ ms, w @ grid)
    var = np.append(w @ (variances + ms ** 2) - (w @ ms) ** 2, w @ grid ** 2 - (w @ grid) ** 2)
    return mean, np.append(1 / np.sqrt(w @ precisions), width), np.sqrt(var)


def main(argv):
    case, seeds = argv[0], [int(s) for s in argv[1].split(",")]
    if case == "scales":
        for scale in (1e12, 1e-12):
            y = np.random.default_rng(5).normal(1.0, 0.5, 20) * scale
            c, (mean, sd) = compiled(SMALL, {"y": y}), exact_small(y)
            for seed in seeds:
                r, seconds, warned = run(c, seed)
                report(f"scale={scale:g}", seed, r, seconds, warned,
                       np.abs(r.mu - mean) / sd, np.exp(r.log_sigma) / sd)
        return
    known = "--known" in argv
    d = data(100_000)
    c = compiled(KNOWN if known else UNKNOWN, d)
    mean, mf, marginal = exact(d, known)
    for seed in seeds:
        r, seconds, warned = run(c, seed)
        report("regression" + (" (known noise)" if known else ""), seed, r, seconds, warned,
               np.abs(r.mu - mean) / marginal, np.exp(r.log_sigma) / mf)


if __name__ == "__main__":
    main(sys.argv[1:])
