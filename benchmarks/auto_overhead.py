"""What ``--guide auto`` costs over mean field where it stops at mean field (issue 11: at most
1.1x), measured so that noise and order do not decide the figure.

Per posterior and seed: first one untimed pair (mean field, then auto) that counts the rows of
the log joint each fit evaluated (gradient steps, k̂'s draws, the summary's) and warms up the
process (imports, first-call caches); then ``--repeats`` timed pairs, alternately mean field
first and auto first (so an order effect cancels), each fit started after ``gc.collect()`` (a
collection left over from the fit before is not charged to the next one). A fit is timed as
``benchmarks/trust.py --auto`` times it: ``model.fit(...)`` and ``fit.summary()``, in CPU
seconds of this process (``time.process_time``). Printed per seed: the log-joint rows of each
(auto's equal to mean field's when it did no extra work), the median CPU of each, and the
median, min and max of the per-pair ratios auto / mean field; at the end the median and the
largest per-seed median ratio over the seeds where auto fitted mean field alone (the others,
where auto climbed, are marked and left out). ``--control`` times mean field against itself in
the same way: the ratios then show what the machine's noise alone makes of equal work.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/auto_overhead.py \\
        sblri-blr eight_schools-eight_schools_noncentered --seeds 10 --repeats 5
    ... benchmarks/auto_overhead.py sblri-blr --seeds 10 --control    # the noise floor

A name with a '-' is a posteriordb posterior (benchmarks/posteriordb), else models/NAME.ppl.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402
from ppl.compiler import joint  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "models"


def load(name: str):
    """(model, data) of a posteriordb posterior or an example model."""
    if "-" in name:
        return ppl.load(pdb.model_path(name)), pdb.load_data(name)
    return ppl.load(MODELS / f"{name}.ppl"), json.loads((MODELS / f"{name}.json").read_text())


def timed(model, data, seed: int, guide: str):
    """(CPU seconds of the fit and its summary, the fit)."""
    gc.collect()
    started = time.process_time()
    fit = model.fit(data, seed=seed, guide=guide)
    fit.summary()
    return time.process_time() - started, fit


def log_joint_rows(model, data, seed: int, guide: str) -> int:
    """Rows (draws) of the log joint one fit and its summary evaluate."""
    inner, rows = joint.Compiled.log_joint, [0]

    def counted(self, zeta):
        rows[0] += len(zeta) if np.ndim(zeta) > 1 else 1
        return inner(self, zeta)

    joint.Compiled.log_joint = counted
    try:
        model.fit(data, seed=seed, guide=guide).summary()
    finally:
        joint.Compiled.log_joint = inner
    return rows[0]


def measure(name: str, seed: int, repeats: int, other: str = "auto") -> dict:
    """Log-joint rows, median CPU and per-pair ratios of ``other`` against mean field."""
    model, data = load(name)
    rows = {guide: log_joint_rows(model, data, seed, guide) for guide in ("meanfield", other)}
    seconds = ([], [])      # mean field's, other's: a pair's two fits at the same place
    for k in range(repeats):
        for place in (0, 1) if k % 2 == 0 else (1, 0):
            cpu, fit = timed(model, data, seed, ("meanfield", other)[place])
            seconds[place].append(cpu)
            if place == 1:
                alone = fit.auto is None or len(fit.auto.tried) == 1
    ratios = np.array(seconds[1]) / np.array(seconds[0])
    return {"rows": (rows["meanfield"], rows[other]), "mf": float(np.median(seconds[0])),
            "auto": float(np.median(seconds[1])), "ratio": float(np.median(ratios)),
            "low": float(ratios.min()), "high": float(ratios.max()), "alone": alone}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="posteriordb posteriors or example models")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per posterior (0..n-1)")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per seed")
    parser.add_argument("--control", action="store_true",
                        help="mean field against mean field: the noise floor of the ratio")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    other = "mf again" if args.control else "auto"
    print(f"| posterior | seed | log-joint rows mf / {other} | CPU s mf | CPU s {other} | "
          f"{other} / mf median (min-max) | auto |\n|---|---|---|---|---|---|---|")
    alone = []
    for name in args.names:
        for seed in range(args.first, args.first + args.seeds):
            row = measure(name, seed, args.repeats, "meanfield" if args.control else "auto")
            if row["alone"]:
                alone.append(row["ratio"])
            print(f"| {name} | {seed} | {row['rows'][0]} / {row['rows'][1]} | "
                  f"{row['mf']:.3f} | {row['auto']:.3f} | {row['ratio']:.3f} "
                  f"({row['low']:.2f}-{row['high']:.2f}) | "
                  f"{'mean field alone' if row['alone'] else 'climbed (left out)'} |", flush=True)
    if alone:
        print(f"\n{other} / mf where auto is mean field alone, {len(alone)} fits: median "
              f"{np.median(alone):.3f}, largest {max(alone):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
