"""Where can a Gaussian rung's frame with Student-t noise be trusted as the importance proposal?

For every Gaussian rung ``--guide auto`` fits on a posteriordb posterior (mean field, full rank;
as auto fits them: same seed, same stream), the rung's own k̂, the effective sample size of its
weights as a fraction of their draws, and the worst errors of its summary against the
reference; then the same frame (mu, L) with multivariate-t noise of NU degrees of freedom,
zeta = mu + L eps sqrt(NU / g), g ~ chi2(NU), as the proposal (auto.heavier_tailed, NU =
auto.T_NU; a mean-field rung in full rank's parameters): its k̂, ESS and the worst errors of its
summary, importance-corrected where k̂ allows, as auto would report it (docs/history/trust-log.md,
"Twenty-seventh probe"). One JSON line
per rung, so a gate on the Gaussian's ESS can be derived from where the t's k̂ passes but its
summary misses issue 11's targets (0.1 reference sd on means, 15% on sds).

    python benchmarks/t_proposal.py --only mesquite-logmesquite_logvolume --seeds 0 1 2 > out.jsonl
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from accuracy import score  # noqa: E402
from trust import assessed_climb  # noqa: E402

from ppl.guides import family  # noqa: E402
from ppl.infer import auto  # noqa: E402
from ppl.posterior import Fit  # noqa: E402


def worst(summary, reference, name: str) -> tuple[float, float]:
    """The worst mean error (reference sds) and sd error (ratio - 1) of a summary."""
    figures = score(summary.to_dict(), reference, name)
    return float(figures["mean_error"].max()), float(np.abs(figures["sd_vs_reference"]).max())


def t_proposal(fit: Fit) -> Fit:
    """``fit`` (a mean-field or full-rank rung) in full rank's parameters under Student-t noise,
    as auto.heavier_tailed makes it, assessed as auto assesses it (its own draws and weights)."""
    result = fit.result
    if result.guide.name == "meanfield":
        fullrank = family("fullrank", fit.compiled.dim)
        result = dataclasses.replace(result, guide=fullrank,
                                     theta=fullrank.warm_start(result.guide, result.theta))
    return Fit(fit.model, fit.compiled, auto.heavier_tailed(fit.compiled, result), fit.options,
               {})


def measure(name: str, seed: int) -> list[dict]:
    reference, chosen, report, rungs = assessed_climb(name, seed)
    chosen_errors = worst(chosen.summary(), reference, name)
    rows = []
    for place, fit in enumerate(rungs):
        family_name = fit.result.guide.name
        if family_name not in ("meanfield", "fullrank") or fit.result.moved:
            continue
        p = fit.psis
        own = worst(fit.summary(), reference, name)
        t = t_proposal(fit)
        p_t = t.psis
        t_errors = worst(t.summary(), reference, name)
        row = {"posterior": name, "seed": seed, "rung": place, "family": family_name,
               "khat": float(p.khat), "ess": float(p.ess / p.log_weights.size),
               "level": fit.verdict().level, "usable": bool(auto._usable(fit)),
               "mean": own[0], "sd": own[1],
               "t_khat": float(p_t.khat), "t_ess": float(t.weights_ess),
               "t_threshold": float(p_t.threshold), "t_nonfinite": int(p_t.n_nonfinite),
               "t_usable": bool(auto._usable(t)), "t_corrected": bool(t.corrected),
               "t_mean": t_errors[0], "t_sd": t_errors[1],
               "chosen": chosen.result.guide.name + (" moved" if chosen.result.moved else ""),
               "chosen_mean": chosen_errors[0], "chosen_sd": chosen_errors[1],
               "tried": report.line()}
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="posterior names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    for name in args.only or pdb.names():
        for seed in args.seeds:
            for row in measure(name, seed):
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
