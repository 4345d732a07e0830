"""Why the flow misses gp_pois_regr: the flow's phase fitted with other settings, from the same
warm start, and scored against the posteriordb reference (docs/trust.md).

For each seed: the mean-field fit and the Gaussian ``--guide auto``'s flow starts from (full rank
is skipped on this posterior: ppl.infer.auto.fullrank_start), made as auto makes them, then one
flow phase per variant warm-started from it, each on a copy of auto's random stream at that
point (``--stream own``: a stream of its own), so flow:2,100,5 is auto's flow. Per variant:
CPU seconds of the flow's phase, its steps and final ELBO (mean of the last window; the ELBO is
what the fit maximizes, so it tells a flow that stopped short from one that cannot do better),
k̂ and the PSIS effective sample size, and the largest mean error (reference sds) and sd
deviation of the summary ``ppl`` would print, and of q's own draws (40,000, no correction).

    python benchmarks/gp_flow_diagnosis.py --seeds 0 1 2
    python benchmarks/gp_flow_diagnosis.py --seeds 0 --variants flow:2,100,5 flow:4,200,5,0.03
    python benchmarks/gp_flow_diagnosis.py --seeds 0 --stream own

A variant is GUIDE,WINDOW,MC_SAMPLES[,LR]: the flow's phase takes 20 x MC_SAMPLES draws per step
(ppl.guides.Flow.draws_scale) and WINDOW steps per convergence window; LR fixes the base step
size instead of the search. The defaults of ``--guide auto`` are flow:2,100,5.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402

NAME = "gp_pois_regr-gp_pois_regr"
OWN_DRAWS = 40_000
DEFAULT_VARIANTS = ("flow:2,100,5", "flow:2,200,5", "flow:2,100,15", "flow:4,100,5",
                    "flow:4,200,5")


def errors(fit, reference) -> tuple[float, float, float, float]:
    """(max |mean error| in reference sds, max |sd / reference sd - 1|, alpha's two)."""
    summary = fit.summary().to_dict()
    names = list(reference)
    mean = np.array([(summary[e]["mean"] - reference[e]["mean"]) / reference[e]["sd"]
                     for e in names])
    sd = np.array([summary[e]["sd"] / reference[e]["sd"] - 1 for e in names])
    alpha = names.index("alpha")
    return float(np.abs(mean).max()), float(np.abs(sd).max()), mean[alpha], sd[alpha]


def variant_row(fullrank, spec: str, rng, reference) -> str:
    guide, window, mc_samples, *lr = spec.split(",")
    options = dataclasses.replace(fullrank.options, guide=guide, window=int(window),
                                  mc_samples=int(mc_samples),
                                  lr=float(lr[0]) if lr else None)
    started = time.process_time()
    try:
        result = advi.fit(fullrank.compiled, options, rng, None, fullrank.result)
    except ppl.PplError as error:   # a diverged fit: auto records it as failed
        return (f"| {fullrank.options.seed} | {spec} | {time.process_time() - started:.1f} | "
                f"failed: {str(error).splitlines()[0].split('error: ')[-1]} |")
    seconds = time.process_time() - started
    fit = dataclasses.replace(fullrank, result=result, _cache={})
    own = dataclasses.replace(fit, options=dataclasses.replace(
        fit.options, correct="none", draws=OWN_DRAWS), _cache={})
    shown, q = errors(fit, reference), errors(own, reference)
    steps = result.steps - fullrank.result.steps
    return (f"| {fullrank.options.seed} | {spec} | {seconds:.1f} | {steps} | "
            f"{result.final_elbo:.2f} | {fit.khat:.2f} | {fit.psis.ess:.0f} | "
            f"{'yes' if fit.corrected else 'no'} | {shown[0]:.3f} / {shown[1]:.3f} | "
            f"{q[0]:.3f} / {q[1]:.3f} | {q[2]:+.2f} / {q[3]:+.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--stream", choices=("auto", "own"), default="auto")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")   # the data's unused 'y', and the fits' own warnings
    model, data = ppl.load(pdb.model_path(NAME)), pdb.load_data(NAME)
    reference = pdb.load_reference(NAME)
    print("| seed | flow variant | CPU s | steps | ELBO | k̂ | ESS of 4000 | corrected | "
          "shown: max mean err / sd dev | q's own | q's own alpha: mean / sd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        started = time.process_time()
        fit = model.fit(data, seed=seed, guide="meanfield", draws=4000)
        rng = np.random.default_rng(seed)   # auto's stream: mean field, then the probe
        meanfield = advi.fit(fit.compiled, fit.options, rng)
        start = auto.fullrank_start(fit.compiled, fit.options, rng, meanfield)
        base = time.process_time() - started
        fullrank = dataclasses.replace(fit, result=start, _cache={})
        shown = errors(fullrank, reference)
        print(f"| {seed} | (auto's flow start, mean field included) | {base:.1f} | "
              f"{start.steps} | {meanfield.final_elbo:.2f} | "
              f"{fullrank.khat:.2f} | {fullrank.psis.ess:.0f} | "
              f"{'yes' if fullrank.corrected else 'no'} | {shown[0]:.3f} / {shown[1]:.3f} "
              "| | |", flush=True)
        for spec in args.variants:
            stream = (copy.deepcopy(rng) if args.stream == "auto"
                      else np.random.default_rng([seed, 11]))
            print(variant_row(fullrank, spec, stream, reference), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
