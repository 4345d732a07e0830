"""Where ``--guide auto``'s CPU goes: per rung of the climb, its own steps and CPU seconds, and
the CPU of the step-size searches and of the whitenings inside it (docs/history/trust-log.md,
"Eighth attempt").

Each model is fitted twice in one process, mean field alone and auto, seed as given, default
options, the summary included (as ``benchmarks/trust.py --auto`` times them). The rungs are
timed by wrapping ``advi.fit`` as ``auto`` calls it, the searches by wrapping
``schedule.search_lr``, the whitenings by wrapping ``precondition.estimate`` where advi, newton
and schedule call it. CPU seconds (``time.process_time``): read them as shares of one fit.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/auto_profile.py gp_pois_regr-gp_pois_regr
    PYTHONPATH=. python benchmarks/auto_profile.py poisson_gp mixture varying_slopes --seed 1

A name with a '-' is a posteriordb posterior (benchmarks/posteriordb), else models/NAME.ppl.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import advi, auto, newton, schedule  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "models"
SECONDS: dict[str, float] = {}
RUNGS: list[dict] = []


def _timed(module, name: str, key: str) -> None:
    """Replace module.name by a wrapper adding its CPU seconds to SECONDS[key]."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            SECONDS[key] = SECONDS.get(key, 0.0) + time.process_time() - started
    setattr(module, name, wrapper)


class _Rungs:
    """Stands in for the advi module inside auto: records each fit auto makes."""

    def __getattr__(self, name):
        return getattr(advi, name)

    def fit(self, compiled, options, rng, progress=None, warm=None):
        started, search = time.process_time(), SECONDS.get("search", 0.0)
        result = advi.fit(compiled, options, rng, progress, warm)
        RUNGS.append({"family": options.guide, "seconds": time.process_time() - started,
                      "own steps": result.steps - (warm.steps if warm is not None else 0),
                      "search": SECONDS.get("search", 0.0) - search,
                      "final ELBO": result.final_elbo, "lr": result.lr})
        return result


def load(name: str):
    """(model, data) of a posteriordb posterior or an example model."""
    if "-" in name:
        return ppl.load(pdb.model_path(name)), pdb.load_data(name)
    path = MODELS / f"{name}.ppl"
    return ppl.load(path), json.loads(path.with_suffix(".json").read_text())


def profile(name: str, seed: int) -> str:
    """Markdown lines: mean field's CPU, auto's, and auto's rungs."""
    model, data = load(name)
    lines = []
    for guide in ("meanfield", "auto"):
        SECONDS.clear()
        RUNGS.clear()
        started = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # unused data names
            fit = model.fit(data, seed=seed, guide=guide)
            fit.summary()
        total = time.process_time() - started
        if guide == "meanfield":
            lines.append(f"{name}, seed {seed}: mean field {total:.2f} s")
            mean_field = total
            continue
        rungs = sum(r["seconds"] for r in RUNGS)
        lines.append(f"auto {total:.2f} s, {total / mean_field:.2f} x mean field's "
                     f"({total - rungs:.2f} outside the fits: k̂, the "
                     f"probe, the summary); searches {SECONDS.get('search', 0.0):.2f} s, "
                     f"whitenings {SECONDS.get('whiten', 0.0):.2f} s; {fit.auto.line()}")
        lines += ["", "| rung | own steps | CPU s | of which search | final ELBO | lr |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['family']} | {r['own steps']} | {r['seconds']:.2f} | "
                  f"{r['search']:.2f} | {r['final ELBO']:.2f} | {r['lr']:g} |" for r in RUNGS]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="posteriordb posteriors or example models")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _timed(schedule, "search_lr", "search")
    for module in (advi, newton, schedule):   # where precondition.estimate is imported
        _timed(module, "estimate", "whiten")
    auto.advi = _Rungs()
    for name in args.names:
        print(profile(name, args.seed) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
