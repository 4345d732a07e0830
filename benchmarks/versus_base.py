"""This tree's CPU to a fit against another tree's (a ``git archive`` of main, say), measured
so that noise and order do not decide the figure (issue 15 item 3: small models end to end).

One worker process per tree (``PYTHONPATH`` = that tree, its own working directory), each
importing its own ``ppl`` once. A fit is ``ppl.compile(text).fit(data, seed=..., guide=...)``
and ``fit.summary()`` (compile included, import not), timed by the worker in its own CPU
seconds (``time.process_time``) after ``gc.collect()``. Per model and guide: one untimed fit
in each worker (first-call caches), then ``--pairs`` timed pairs at seeds 0, 1, ..., base
first in even pairs and this tree first in odd ones, one fit at a time (the other worker
waits). Printed: the median per-pair ratio this tree / base and its range, and whether the
two trees' fits gave the same guide parameters and ELBO trace bit for bit (a changed fit
would make the ratio meaningless).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/versus_base.py /tmp/base \\
        eight_schools:auto eight_schools:meanfield linear_regression:auto --pairs 7
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parents[1]

# run by each worker: reads "model guide seed" lines, answers "cpu-seconds mean-hash"
_WORKER = r"""
import gc, hashlib, json, sys, time, warnings
import numpy as np
import ppl
warnings.simplefilter("ignore")
for line in sys.stdin:
    name, guide, seed = line.split()
    text = open(f"models/{name}.ppl").read()
    data = json.load(open(f"models/{name}.json"))
    gc.collect()
    started = time.process_time()
    fit = ppl.compile(text).fit(data, seed=int(seed), guide=guide)
    fit.summary()
    cpu = time.process_time() - started
    fitted = np.concatenate([np.ravel(fit.result.theta), fit.elbo])
    print(cpu, hashlib.sha1(fitted.tobytes()).hexdigest()[:12], flush=True)
"""


class Worker:
    """A process importing the ``ppl`` of ``tree`` once, fitting on request."""

    def __init__(self, tree: Path):
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def fit(self, name: str, guide: str, seed: int) -> tuple[float, str]:
        self.proc.stdin.write(f"{name} {guide} {seed}\n")
        self.proc.stdin.flush()
        cpu, digest = self.proc.stdout.readline().split()
        return float(cpu), digest

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def measure(workers: tuple, name: str, guide: str, pairs: int) -> dict:
    """Per-pair ratios new / base and whether every pair's two fits agreed."""
    base, new = workers
    base.fit(name, guide, 0)
    new.fit(name, guide, 0)
    ratios, same = [], True
    for k in range(pairs):
        order = (base, new) if k % 2 == 0 else (new, base)
        got = {id(w): w.fit(name, guide, k) for w in order}
        ratios.append(got[id(new)][0] / got[id(base)][0])
        same = same and got[id(new)][1] == got[id(base)][1]
    ratios = np.array(ratios)
    return {"median": float(np.median(ratios)), "low": float(ratios.min()),
            "high": float(ratios.max()), "same": same}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="the other tree (its root, with models/)")
    parser.add_argument("cases", nargs="+", help="MODEL:GUIDE, MODEL from models/")
    parser.add_argument("--pairs", type=int, default=7, help="timed pairs per case")
    args = parser.parse_args(argv)
    workers = (Worker(args.base.resolve()), Worker(_HERE))
    print("| model | guide | new / base median (min-max) | same fits |\n|---|---|---|---|")
    try:
        for case in args.cases:
            name, guide = case.split(":")
            r = measure(workers, name, guide, args.pairs)
            print(f"| {name} | {guide} | {r['median']:.3f} ({r['low']:.3f}-{r['high']:.3f}) "
                  f"| {'yes' if r['same'] else 'NO'} |", flush=True)
    finally:
        for w in workers:
            w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
