"""Minibatch ADVI on data larger than memory: step time and peak memory against N.

A linear regression with K = 10 features is fitted with ``--batch N=256`` from a folder of
.npy files (memory-mapped, read-only) at N = 1e4, 1e5 and 1e6 rows, each in a fresh process.
Per N: the median step time over steps 50-250 (the fit runs 250 steps at a fixed step size, so
no step-size search), and the process's peak resident memory above its baseline (after
imports), beside the size of the memory-mapped files.

Targets (issue 13): the step time is flat, within 1.3x from the smallest N to the largest; the
peak memory at N = 1e6 stays below 2x the batch's working set plus the memory map, the working
set being measured as the peak above baseline at N = 1e4 (where the data is 0.9 MB).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/minibatch_benchmark.py
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000)
K, B, STEPS = 10, 256, 250
MODEL = """
data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample b: real[K] ~ Normal(0, 5)
sample a ~ Normal(0, 5)
sample s: real<lower=0> ~ Normal(0, 2)
observe y ~ Normal(X @ b + a, s)
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: kB


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def child(folder: str) -> None:
    """One measurement, printed as JSON: run in a fresh process per N."""
    sys.path.insert(0, str(ROOT))
    import ppl
    model = ppl.compile(MODEL)
    base = _current_rss_mb()
    stamps = []
    model.fit(folder, guide="meanfield", batch={"N": B}, iter=STEPS, lr=0.01, correct="none",
              progress=lambda step, elbo, lr: stamps.append((step, time.perf_counter())))
    steps = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(stamps, stamps[1:])
             if s0 >= 50]
    print(json.dumps({"step_ms": 1e3 * float(np.median(steps)), "peak_mb": _rss_mb(),
                      "base_mb": base}))


def run() -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for n in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            X = rng.standard_normal((n, K))
            y = X @ rng.standard_normal(K) + 0.5 * rng.standard_normal(n)
            np.save(Path(folder) / "X.npy", X)
            np.save(Path(folder) / "y.npy", y)
            np.save(Path(folder) / "K.npy", np.array(K, dtype=np.int64))
            mapped = (X.nbytes + y.nbytes) / 2 ** 20
            del X, y
            out = subprocess.run([sys.executable, __file__, "--child", folder], check=True,
                                 capture_output=True, text=True).stdout
            rows.append({"N": n, "mapped_mb": mapped, **json.loads(out.splitlines()[-1])})
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    rows = run()
    print(f"{'N':>9} {'step ms':>8} {'peak-base MB':>13} {'mapped MB':>10}")
    for r in rows:
        print(f"{r['N']:>9} {r['step_ms']:>8.2f} {r['peak_mb'] - r['base_mb']:>13.1f} "
              f"{r['mapped_mb']:>10.1f}")
    ratio = rows[-1]["step_ms"] / rows[0]["step_ms"]
    working = rows[0]["peak_mb"] - rows[0]["base_mb"]
    limit = 2 * working + rows[-1]["mapped_mb"]
    above = rows[-1]["peak_mb"] - rows[-1]["base_mb"]
    print(f"step time N=1e6 / N=1e4: {ratio:.2f} (target <= 1.3)")
    print(f"peak above baseline at N=1e6: {above:.1f} MB; limit 2 x working set "
          f"({working:.1f} MB) + memory map ({rows[-1]['mapped_mb']:.1f} MB) = {limit:.1f} MB"
          f" -> {'within' if above <= limit else 'ABOVE'}")


if __name__ == "__main__":
    main()
