"""The early stop on reliable importance weights (ppl/infer/early.py): accuracy and cost.

Default: fit each example model that has a NUTS reference (benchmarks/example_references.json)
with mean field, default options, for each seed, and print per fit its steps (``E`` when the
early stop ended it), k̂, whether the summary is importance-corrected (C) or not (u), and the
worst |mean - ref mean| / ref sd and |sd / ref sd - 1| over the reference's elements, of the
summary the user gets. Run it in two checkouts (e.g. main's and a branch's, each with
``PYTHONPATH=.``) and compare the rows. ``--cost``: process time of each fit with the checks
over the same fit without them (``ReliableWeights.for_fit`` returning None), interleaved, two
of each.

    PYTHONPATH=. python benchmarks/early_stop.py --seeds 3
    PYTHONPATH=. python benchmarks/early_stop.py --cost --only eight_schools ar1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO))
import ppl  # noqa: E402


def _case(name: str):
    text = (_REPO / "models" / f"{name}.ppl").read_text()
    return ppl.compile(text), json.loads((_REPO / "models" / f"{name}.json").read_text())


def errors(name: str, seed: int, reference: dict) -> str:
    model, data = _case(name)
    fit = model.fit(data, seed=seed, guide="meanfield")
    s = fit.summary().to_dict()
    mean = max(abs(s[e]["mean"] - r["mean"]) / r["sd"] for e, r in reference.items() if e in s)
    sd = max(abs(s[e]["sd"] / r["sd"] - 1) for e, r in reference.items() if e in s)
    early = "E" if "importance weights" in fit.result.reason else " "
    return (f"{fit.result.steps:5d}{early} k̂ {fit.khat:.2f} {'C' if fit.corrected else 'u'} "
            f"{mean:.3f}/{sd:.3f}")


def cost(name: str) -> str:
    from ppl.infer import early
    real = early.ReliableWeights.for_fit
    model, data = _case(name)
    seconds = {True: 0.0, False: 0.0}
    try:
        for _ in range(2):
            for on in (True, False):
                early.ReliableWeights.for_fit = staticmethod(real if on else lambda *a: None)
                start = time.process_time()
                fit = model.fit(data, seed=0, guide="meanfield", draws=10)
                seconds[on] += time.process_time() - start
                steps = fit.result.steps if on else steps
    finally:
        early.ReliableWeights.for_fit = real
    return f"steps {steps:5d}  with / without the checks: {seconds[True] / seconds[False]:.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="model names to run")
    parser.add_argument("--cost", action="store_true", help="time with / without the checks")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    references = json.loads((_REPO / "benchmarks" / "example_references.json").read_text())
    names = args.only or sorted(references["models"])
    for name in names:
        if args.cost:
            print(f"{name:24s} {cost(name)}", flush=True)
            continue
        reference = references["models"][name]["elements"]
        row = " | ".join(errors(name, seed, reference) for seed in range(args.seeds))
        print(f"{name:24s} {row}", flush=True)


if __name__ == "__main__":
    main()
