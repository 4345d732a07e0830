"""Peak memory, page faults and time of a short fit of a 1,000,000-row linear regression.

Each variant runs in a fresh process (peak RSS is per process; glibc reads its MALLOC_*
variables at start): the default; with fused kernels off (``compile_model(fuse=False)``, the
traced path of before issue 15); and with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``,
which keep large temporaries on the heap instead of fresh mmap'd pages (no page faults on
reuse); and ``summary``: the model written as models/linear_regression.ppl writes it (``let _mu =
alpha + X @ beta``), fitted with mean field and then summarized (the summary's 4000 draws of a
hidden let used to take [4000, N] at once); and ``logistic``: the same fit of a Bernoulli
likelihood, which still passes over the N rows every step (the Normal one is computed from
its Gram matrix since 2026-12-01, kernels.GramTerm). Prints peak RSS above the data, minor
page faults and wall/CPU seconds of compile + fit, and the CPU over the first variant's.
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/memory_benchmark.py``
(``--child`` is the per-variant entry point; ``PPL_SOURCE=DIR`` measures another checkout).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
TEXT = """data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + X @ beta, sigma)
"""
LET_TEXT = TEXT.replace("observe y ~ Normal(alpha + X @ beta, sigma)",
                        "let _mu = alpha + X @ beta\nobserve y ~ Normal(_mu, sigma)")
LOGISTIC_TEXT = TEXT.replace("data y: real[N]", "data y: int[N]").replace(
    "sample sigma ~ HalfNormal(1)\n", "").replace("observe y ~ Normal(alpha + X @ beta, sigma)",
                                                  "observe y ~ Bernoulli(logit=alpha + X @ beta)")
HEAP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 34)}
# name -> (environment, fused kernels, the let model with mean field and its summary, logistic)
VARIANTS = {"default": ({}, True, False, False), "traced": ({}, False, False, False),
            "heap": (HEAP, True, False, False), "summary": ({}, True, True, False),
            "logistic": ({}, True, False, True)}


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024.0                      # ru_maxrss is in KiB on Linux


def child(n: int, k: int, iters: int, fuse: bool, summary: bool = False,
          logistic: bool = False) -> dict:
    sys.path.insert(0, os.environ.get("PPL_SOURCE", str(_REPO)))
    import ppl
    from ppl import api, compiler
    if not fuse:
        api.compile_model = lambda model, values: compiler.compile_model(model, values,
                                                                         fuse=False)
    rng = np.random.default_rng(20261129)
    X = rng.standard_normal((n, k)) / np.sqrt(k)
    data = {"N": n, "K": k, "X": X, "y": 0.5 + X @ rng.normal(0, 1, k) + rng.normal(0, 0.7, n)}
    if logistic:
        data["y"] = (data["y"] > 0.5).astype(int)
    model = ppl.compile(LET_TEXT if summary else LOGISTIC_TEXT if logistic else TEXT)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall, cpu = time.perf_counter(), time.process_time()
    fit = model.fit(data, iter=iters, seed=1, **({"guide": "meanfield"} if summary else {}))
    if summary:
        str(fit.summary())
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_above_data_mb": _mb(after.ru_maxrss - before.ru_maxrss),
            "data_mb": _mb(before.ru_maxrss), "minor_faults": after.ru_minflt - before.ru_minflt,
            "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "steps": int(fit.result.steps) if hasattr(fit, "result") else None}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--iter", type=int, default=150,
                        help="steps after the step-size search (150 includes one whitening)")
    parser.add_argument("--variants", nargs="*", default=["default", "traced", "heap"],
                        help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--child", choices=list(VARIANTS))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.n, args.k, args.iter, *VARIANTS[args.child][1:])))
        return
    print(f"N = {args.n}, K = {args.k}, {args.iter} steps after the search")
    print(f"{'variant':10s} {'peak MB':>9s} {'data MB':>8s} {'faults':>9s} {'wall s':>7s}"
          f" {'cpu s':>7s} {'cpu / ' + args.variants[0]:>14s}")
    first_cpu = None    # the first variant's CPU, measured in this run, is the baseline
    for name in args.variants:
        env = dict(os.environ, **VARIANTS[name][0])
        out = subprocess.run([sys.executable, __file__, "--child", name, "--n", str(args.n),
                              "--k", str(args.k), "--iter", str(args.iter)],
                             env=env, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        first_cpu = first_cpu or r["cpu_s"]
        print(f"{name:10s} {r['peak_above_data_mb']:9.0f} {r['data_mb']:8.0f} "
              f"{r['minor_faults']:9d} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} "
              f"{r['cpu_s'] / first_cpu:14.2f}", flush=True)


if __name__ == "__main__":
    main()
