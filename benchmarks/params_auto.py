"""guide auto against mean field alone on empirical Bayes models whose latents are correlated
given the params (ppl/infer/auto.py, fit_with_params): how far each fit is from the exact MAP-II
(nats of marginal likelihood below its maximum), its latents against the exact posterior given
the MAP-II (largest mean error in posterior sds, the sd ratios' range), the family auto chose,
and the CPU of auto over mean field's in the same run.

The models and their exact references are tests/stats/test_params_auto.py's.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/params_auto.py \
        [--seeds 5] [--large | --beyond]

``--large``: the models whose full rank is too large to finish on fixed draws, finished by EM
(ppl/infer/params_em.py): a local level with T = 60 and slopes with 30 groups. ``--beyond``:
models with more latents than the ladder's full rank takes (200), where a model with params
still gets full rank, finished by EM, up to params_em.MAX_DIM: slopes with 120 groups, a local
level with T = 250, and one-way random intercepts with 300 groups (mean field exact there).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "stats"))
import ppl  # noqa: E402
from test_params_auto import (CASES, LARGE, _local_level, _log_marginal, _map_ii,  # noqa: E402
                              _one_way, _posterior, _random_slopes)

BEYOND = {"random_slopes_120": lambda: _random_slopes(J=120),
          "local_level_250": lambda: _local_level(T=250),
          "one-way, 300 groups": lambda: _one_way(J=300)}


def assess(case, fit, best, top) -> tuple[float, float, float, float]:
    """(deficit in nats, largest latent mean error in sds, smallest and largest sd ratio)."""
    params = {n: float(v) for n, v in fit.params().items()}
    deficit = top - (_log_marginal(case["design"], case["y"], params) + case["penalty"](params))
    means, sds = _posterior(case["design"], case["y"], best)
    summary = fit.summary().to_dict()
    errors = np.array([abs(summary[n]["mean"] - m) / s for n, m, s in
                       zip(case["latents"], means, sds)])
    ratios = np.array([summary[n]["sd"] / s for n, s in zip(case["latents"], sds)])
    return deficit, errors.max(), ratios.min(), ratios.max()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--large", action="store_true", help="the models EM finishes")
    which.add_argument("--beyond", action="store_true",
                       help="models with params and more latents than 200")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.large or args.beyond:
        cases = {name: build() for name, build in (LARGE if args.large else BEYOND).items()}
    else:
        cases = {**{name: build() for name, build in CASES.items()},
                 "one-way, 101 groups": _one_way()}
    print("| model | guide | chose | deficit (nats) | latent mean error (sd) | sd ratio | "
          "verdicts | CPU auto / meanfield |\n|---|---|---|---|---|---|---|---|")
    for name, case in cases.items():
        model = ppl.compile(case["source"])
        best, top = _map_ii(case)
        rows = {}
        for guide in ("meanfield", "auto"):
            found, cpu = [], 0.0
            for seed in range(args.seeds):
                start = time.process_time()
                fit = model.fit(case["data"], seed=seed, guide=guide)
                cpu += time.process_time() - start
                chose = fit.auto.tried[fit.auto.chosen].family if fit.auto else guide
                found.append((*assess(case, fit, best, top), chose, fit.verdict().level))
            rows[guide] = (found, cpu)
        for guide, (found, cpu) in rows.items():
            deficit, error, low, high = (np.array([f[i] for f in found]) for i in range(4))
            chose = ", ".join(sorted({f[4] for f in found}))
            levels = ", ".join(f"{level} x{sum(f[5] == level for f in found)}"
                               for level in sorted({f[5] for f in found}))
            print(f"| {name} | {guide} | {chose} | {deficit.min():.4f}-{deficit.max():.4f} | "
                  f"{error.max():.2f} | {low.min():.2f}-{high.max():.2f} | {levels} | "
                  f"{rows['auto'][1] / rows['meanfield'][1]:.2f} |")


if __name__ == "__main__":
    main()
