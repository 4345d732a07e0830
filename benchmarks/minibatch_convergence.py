"""The convergence rule under --batch against the exact posterior (docs/minibatch.md).

The regression of tests/stats/test_minibatch.py (N = 2000 rows, B = 100, known noise sd, so
the exact mean-field optimum is known) fitted with ``--batch N=100`` over several seeds, by
schedule_batch.BatchConvergence and, for comparison, by advi's rule alone (schedule.Convergence, the
rule --batch used before). Per fit: steps, whether it converged, the largest error of a guide
mean in posterior sds and of a log sd.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/minibatch_convergence.py [SEEDS]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ppl  # noqa: E402
from ppl.infer import advi, schedule, schedule_batch  # noqa: E402

N, B = 2000, 100
MODEL = """
data N: int
data X: real[N, 2]
data y: real[N]
sample a ~ Normal(0, 5)
sample b: real[2] ~ Normal(0, 5)
observe y ~ Normal(a + X @ b, 0.5)
"""


def exact(X, y):
    """Posterior means and sds (the exact mean-field optimum: sd_i = 1 / sqrt(L_ii))."""
    Z = np.column_stack([np.ones(len(y)), X])
    precision = Z.T @ Z / 0.25 + np.eye(3) / 25
    return np.linalg.solve(precision, Z.T @ y / 0.25), 1 / np.sqrt(np.diag(precision))


def run(seeds: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 2))
    y = 0.3 + X @ [1.0, -2.0] + 0.5 * rng.standard_normal(N)
    mean, sd = exact(X, y)
    model = ppl.compile(MODEL)
    rules = {"BatchConvergence": (schedule_batch.BatchConvergence, schedule_batch.BatchWindows),
             "advi's rule alone": (schedule.Convergence, schedule.Windows)}
    print("| rule | seed | steps | converged | max mean error (sds) | max log sd error | s |")
    print("|---|---|---|---|---|---|---|")
    for name, (rule, windows) in rules.items():
        advi.BatchConvergence, advi.BatchWindows = rule, windows   # the rule advi.fit uses
        for seed in range(seeds):
            start = time.perf_counter()
            r = model.fit({"N": N, "X": X, "y": y}, guide="meanfield", correct="none",
                          batch={"N": B}, seed=seed).result
            mu = np.max(np.abs(r.mu - mean) / sd)
            log_sd = np.max(np.abs(r.log_sigma - np.log(sd)))
            print(f"| {name} | {seed} | {r.steps} | {r.converged} | {mu:.3f} | {log_sd:.3f} "
                  f"| {time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
