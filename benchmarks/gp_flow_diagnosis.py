"""Why the flow misses gp_pois_regr: the flow's phase fitted with other settings, from the same
warm start, and scored against the posteriordb reference (docs/history/trust-log.md).

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

A variant is GUIDE,WINDOW,MC_SAMPLES[,LR][,PLACE]: the flow's phase takes 12 x MC_SAMPLES draws
per step (ppl.guides.Flow.draws_scale) and WINDOW steps per convergence window; LR fixes the base
step size instead of the search ('-' keeps the search). The defaults of ``--guide auto`` are
flow:2,100,5. PLACE says where the IAF layers act and in which frame (the flow's phase is
fitted in u, zeta = m0 + W u, with W the start's factor, lower triangular under auto):
- noise (auto's flow): zeta = m0 + W (mu + A g(eps)), A = I at the start: the layers act on
  the noise, and since W is triangular, eps_i is the standardized i-th latent given the earlier
  ones (the layers' autoregressive order is the model's declaration order);
- sym: the same, with W replaced by the symmetric square root of W W^T (same start q): the
  layers' order then means nothing in the model's terms;
- frame: the layers after the affine map, u = c + C g(mu + A eps), A = C = I at the start;
- model: the layers after the affine map in the model's standardized coordinates,
  zeta = m0 + W (c + C g(mu + A eps)) with A = diag(1/sd) W, C = W^-1 diag(sd) at the start
  (AfterFlow.model_start), so g sees (zeta - m0) / sd;
- model-fixed: as model, with c and C held at their start (the layers stay in those coordinates);
- model-sas: as model, with an elementwise sinh-arcsinh map (a skew and a tail weight per
  latent) between the layers and C.
The layers-after flows are benchmarks/flow_placement.py's, not ppl's.

    python benchmarks/gp_flow_diagnosis.py --seeds 0 1 2 3 4 --variants flow:2,100,5 \
        flow:2,100,5,-,sym flow:2,100,5,-,frame flow:2,100,5,-,model [--reverse]
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
from flow_placement import AfterFlow, FixedOuterFlow, SinhArcsinhFlow  # noqa: E402

import ppl  # noqa: E402
import ppl.guides.flow  # noqa: E402
import ppl.guides.iaf  # noqa: E402
from ppl.guides import Flow  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402
from ppl.infer.precondition import Frame  # noqa: E402

NAME = "gp_pois_regr-gp_pois_regr"
ELEMENT = {NAME: "alpha", "eight_schools-eight_schools_centered": "tau"}   # its own column
OWN_DRAWS = 40_000
DEFAULT_VARIANTS = ("flow:2,100,5", "flow:2,200,5", "flow:2,100,15", "flow:4,100,5",
                    "flow:4,200,5")


def errors(fit, reference, element: str) -> tuple[float, float, float, float]:
    """(max |mean error| in reference sds, max |sd / reference sd - 1|, the element's two)."""
    summary = fit.summary().to_dict()
    names = list(reference)
    mean = np.array([(summary[e]["mean"] - reference[e]["mean"]) / reference[e]["sd"]
                     for e in names])
    sd = np.array([summary[e]["sd"] / reference[e]["sd"] - 1 for e in names])
    at = names.index(element)
    return float(np.abs(mean).max()), float(np.abs(sd).max()), mean[at], sd[at]


def flow_phase(compiled, options, rng, warm, place: str):
    """The flow's phase as advi._fit_family runs it from the fitted Gaussian ``warm`` (auto's
    flow when ``place`` is 'noise'), with the layers placed as PLACE says (module docstring)."""
    started = time.perf_counter()
    D = compiled.dim
    spec, _, layers = options.guide.partition(":")
    kind = {"frame": AfterFlow, "model": AfterFlow, "model-fixed": FixedOuterFlow,
            "model-sas": SinhArcsinhFlow}
    guide = kind.get(place, Flow)(D, int(layers or 2), "iaf")
    m0, W = warm.guide.frame(warm.theta)
    if place == "sym":
        values, vectors = np.linalg.eigh(W @ W.T)
        W = (vectors * np.sqrt(values)) @ vectors.T
    theta = guide.model_start(W) if place.startswith("model") else guide.init(D, 1.0)
    framed = Frame(compiled, m0, W)
    phase = dataclasses.replace(options, window=options.window * guide.window_scale,
                                iter=options.iter * guide.window_scale,
                                mc_samples=options.mc_samples * guide.draws_scale)
    second = advi._fit_plain(framed, guide, theta, phase, rng, None, False, started)
    result = advi.AdviResult(guide, guide.push_affine(second.theta, m0, W), warm.names,
                             np.concatenate([warm.elbo, second.elbo + framed.log_det]),
                             second.converged, second.reason, warm.steps + second.steps,
                             time.perf_counter() - started, second.lr,
                             second.final_elbo + framed.log_det)
    # as advi.fit does for a converged fit
    return advi._checked(compiled, result) if result.reason == advi.CONVERGED else result


def variant_row(fullrank, spec: str, rng, reference, element: str) -> str:
    parts = spec.split(",")
    guide, window, mc_samples, lr, place = parts + ["-", "noise"][len(parts) - 3:]
    options = dataclasses.replace(fullrank.options, guide=guide, window=int(window),
                                  mc_samples=int(mc_samples),
                                  lr=None if lr == "-" else float(lr))
    started = time.process_time()
    try:
        result = flow_phase(fullrank.compiled, options, rng, fullrank.result, place)
    except ppl.PplError as error:   # a diverged fit: auto records it as failed
        return (f"| {fullrank.options.seed} | {spec} | {time.process_time() - started:.1f} | "
                f"failed: {str(error).splitlines()[0].split('error: ')[-1]} |")
    seconds = time.process_time() - started
    fit = dataclasses.replace(fullrank, result=result, _cache={})
    own = dataclasses.replace(fit, options=dataclasses.replace(
        fit.options, correct="none", draws=OWN_DRAWS), _cache={})
    shown, q = errors(fit, reference, element), errors(own, reference, element)
    steps = result.steps - fullrank.result.steps
    return (f"| {fullrank.options.seed} | {spec} | {seconds:.1f} | {steps} @ {result.lr:.3g} | "
            f"{result.final_elbo:.2f} | {fit.khat:.2f} | {fit.psis.ess:.0f} | "
            f"{'yes' if fit.corrected else 'no'} | {shown[0]:.3f} / {shown[1]:.3f} | "
            f"{q[0]:.3f} / {q[1]:.3f} | {q[2]:+.2f} / {q[3]:+.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--stream", choices=("auto", "own"), default="auto")
    parser.add_argument("--posterior", default=NAME,
                        help="another posteriordb posterior (auto's start as for gp_pois_regr)")
    parser.add_argument("--reverse", action="store_true",
                        help="every IAF layer's order reversed (the first layer then runs from "
                             "the last latent to the first)")
    args = parser.parse_args(argv)
    if args.reverse:   # a probe's switch: the masks are looked up by this name at each pass
        made_masks = ppl.guides.iaf._made_masks
        reversed_masks = lambda D, H, reverse: made_masks(D, H, 1 - reverse)  # noqa: E731
        ppl.guides.iaf._made_masks = ppl.guides.flow._made_masks = reversed_masks
    warnings.simplefilter("ignore")   # the data's unused 'y', and the fits' own warnings
    model, data = ppl.load(pdb.model_path(args.posterior)), pdb.load_data(args.posterior)
    reference = pdb.load_reference(args.posterior)
    element = ELEMENT.get(args.posterior, next(iter(reference)))
    print("| seed | flow variant | CPU s | steps @ lr | ELBO | k̂ | ESS of 4000 | corrected | "
          f"shown: max mean err / sd dev | q's own | q's own {element}: mean / sd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        started = time.process_time()
        fit = model.fit(data, seed=seed, guide="meanfield", draws=4000)
        rng = np.random.default_rng(seed)   # auto's stream: mean field, then the probe
        meanfield = advi.fit(fit.compiled, fit.options, rng)
        start = auto.fullrank_start(fit.compiled, fit.options, rng, meanfield)
        base = time.process_time() - started
        fullrank = dataclasses.replace(fit, result=start, _cache={})
        shown = errors(fullrank, reference, element)
        print(f"| {seed} | (auto's flow start, mean field included) | {base:.1f} | "
              f"{start.steps} | {meanfield.final_elbo:.2f} | "
              f"{fullrank.khat:.2f} | {fullrank.psis.ess:.0f} | "
              f"{'yes' if fullrank.corrected else 'no'} | {shown[0]:.3f} / {shown[1]:.3f} "
              "| | |", flush=True)
        for spec in args.variants:
            stream = (copy.deepcopy(rng) if args.stream == "auto"
                      else np.random.default_rng([seed, 11]))
            print(variant_row(fullrank, spec, stream, reference, element), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
