"""One example model fitted with each named family, scored against its NUTS reference.

CPU seconds of the fit and its summary, k̂, the worst and average |mean error| in reference
sds, the worst and average |sd / reference sd - 1|, and whether the fit converged, from
``benchmarks/example_references.json`` (no NumPyro needed). Used for auto's full-rank limit
(docs/trust.md, "Full rank or low rank"):

    PYTHONPATH=. python benchmarks/example_families.py stochastic_volatility \\
        --guides meanfield lowrank fullrank

``--climb`` instead scores every fit of ``--guide auto``'s climb (as the default fit makes
them: same seed, same stream), with the seconds each rung took, for the seeds given:

    PYTHONPATH=. python benchmarks/example_families.py poisson_gp --climb --seeds 0 1 2
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
from trust import climb_fits  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import auto  # noqa: E402
from ppl.options import FitOptions  # noqa: E402
from ppl.posterior import Fit  # noqa: E402

MODELS = _HERE.parent / "models"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an example with a reference, e.g. stochastic_volatility")
    parser.add_argument("--guides", nargs="+", default=["meanfield", "lowrank", "fullrank"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--climb", action="store_true",
                        help="every fit of auto's climb instead of --guides")
    parser.add_argument("--seeds", type=int, nargs="+", help="with --climb (default: --seed)")
    args = parser.parse_args(argv)
    reference = load_references().get(args.model)
    model = ppl.load(MODELS / f"{args.model}.ppl")
    data = json.loads((MODELS / f"{args.model}.json").read_text())
    if args.climb:
        print("| seed | rung | seconds | k̂ | verdict | max mean error | max sd dev | chosen |\n"
              "|---|---|---|---|---|---|---|---|")
        for seed in args.seeds or [args.seed]:
            print("\n".join(climb(model, data, reference, args.model, seed)), flush=True)
        return 0
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


def climb(model, data, reference, name: str, seed: int) -> list[str]:
    """Rows of every rung of auto's climb (trust.climb_fits: not the probe of full rank's start,
    nor a move auto did not keep), scored against the NUTS reference when the model has one."""
    concrete, _, compiled = model.prepare(data)
    options, fits = FitOptions(seed=seed), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen, report = auto.fit_auto(
            compiled, options, np.random.default_rng(seed),
            lambda result: fits.append(Fit(concrete, compiled, result, options, {})) or fits[-1])
    rows = []
    for tried, fit in zip(report.tried, climb_fits(fits, report.tried)):
        if tried.level == auto.SKIPPED:
            continue
        if tried.level in (auto.FAILED, auto.DIVERGED):   # not assessed: no fit to score
            rows.append(f"| {seed} | {tried.family} | {tried.seconds:.1f} | - | {tried.level} "
                        f"| - | - | |")
            continue
        errors = "- | -"
        if reference is not None:
            figures = score(fit.summary().to_dict(), reference, name)
            errors = (f"{figures['mean_error'].max():.3f} | "
                      f"{np.abs(figures['sd_vs_reference']).max():.3f}")
        moved = " moved" if fit.result.moved else ""
        rows.append(f"| {seed} | {fit.result.guide.name}{moved} | {tried.seconds:.1f} | "
                    f"{fit.khat:.2f} | {fit.verdict().level} | {errors} | "
                    f"{'yes' if fit is chosen else ''} |")
    return rows


if __name__ == "__main__":
    sys.exit(main())
