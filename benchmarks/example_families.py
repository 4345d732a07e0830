"""One example model fitted with each named family, scored against its NUTS reference.

CPU seconds of the fit and its summary, k̂, the worst and average |mean error| in reference
sds, the worst and average |sd / reference sd - 1|, and whether the fit converged, from
``benchmarks/example_references.json`` (no NumPyro needed). Used for auto's full-rank limit
(docs/trust.md, "Full rank or low rank"):

    PYTHONPATH=. python benchmarks/example_families.py stochastic_volatility \\
        --guides meanfield lowrank fullrank
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
from accuracy import score  # noqa: E402
from example_references import load_references  # noqa: E402

import ppl  # noqa: E402

MODELS = _HERE.parent / "models"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an example with a reference, e.g. stochastic_volatility")
    parser.add_argument("--guides", nargs="+", default=["meanfield", "lowrank", "fullrank"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    reference = load_references()[args.model]
    model = ppl.load(MODELS / f"{args.model}.ppl")
    data = json.loads((MODELS / f"{args.model}.json").read_text())
    print("| family | CPU s | k̂ | max mean error | mean mean error | max sd dev | "
          "mean sd dev | converged |\n|---|---|---|---|---|---|---|---|")
    for guide in args.guides:
        started = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "may be wrong" warnings: the table says it
            fit = model.fit(data, seed=args.seed, guide=guide)
            summary = fit.summary().to_dict()
        seconds = time.process_time() - started
        figures = score(summary, reference, args.model)
        mean, sd = figures["mean_error"], np.abs(figures["sd_vs_reference"])
        print(f"| {guide} | {seconds:.1f} | {fit.khat:.2f} | {mean.max():.3f} | "
              f"{mean.mean():.3f} | {sd.max():.3f} | {sd.mean():.3f} | "
              f"{'yes' if fit.result.converged else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
