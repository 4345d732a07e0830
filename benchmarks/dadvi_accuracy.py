"""DADVI against ADVI on posteriordb's reference posteriors: accuracy and cost.

For every posterior (and seed) in one run: ADVI mean-field (the baseline), ADVI full-rank, and
DADVI (mean field, linear-response sds) with each of scipy's L-BFGS-B (the default),
trust-krylov and trust-ncg, each scored against the reference: the largest |mean - ref mean|
/ ref sd, the largest |sd / ref sd - 1|, log-joint draw evaluations (rows of zeta passed to
the log joint, each with its gradient: DADVI's Hessian is forward differences of gradients,
and its Laplace start evaluates one draw at a time), log-joint passes (vectorized
calls), CPU seconds (time.process_time) of fit + summary, and the ratios to ADVI mean-field of
the draw evaluations and the CPU seconds; also the wall seconds (time.perf_counter).

With ``--examples``, the example models (models/*.ppl) that have a NUTS reference in
example_references.json (made by example_references.py with NumPyro) instead of posteriordb,
and by default only ADVI mean-field, ADVI full-rank and DADVI with L-BFGS-B.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/dadvi_accuracy.py --seeds 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/dadvi_accuracy.py --examples --seeds 1
    python benchmarks/dadvi_accuracy.py --only sblri-blr --methods advi "dadvi l-bfgs-b"
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from accuracy import score  # noqa: E402
from example_references import load_references  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import advi, dadvi  # noqa: E402
from ppl.options import FitOptions  # noqa: E402
from ppl.posterior import Fit  # noqa: E402

METHODS = ("advi", "advi fullrank", "dadvi l-bfgs-b", "dadvi trust-krylov", "dadvi trust-ncg")
EXAMPLE_METHODS = METHODS[:3]
MODELS = Path(__file__).resolve().parents[1] / "models"


# DADVI's phases, by the function of infer/dadvi*.py that evaluates the log joint
PHASES = {"laplace_start": "Laplace start", "minimize": "optimizer",
          "_finish": "LR Hessian + Newton", "_per_draw_gradients": "sandwich"}


class _Counting:
    """A Compiled whose log joint counts the draws it is evaluated at; the rest delegates.
    With ``phases``, DADVI's draws are also counted by phase (PHASES, found on the stack;
    'other' is the check of the usual start)."""

    def __init__(self, compiled, phases: bool = False):
        self._compiled, self.rows, self.calls = compiled, 0, 0
        self.phases = {} if phases else None

    def log_joint(self, zeta):
        self.rows, self.calls = self.rows + zeta.shape[0], self.calls + 1
        if self.phases is not None:
            frame, phase = sys._getframe(1), "other"
            while frame is not None and not (
                    frame.f_code.co_name in PHASES
                    and frame.f_globals.get("__name__", "").startswith("ppl.infer.dadvi")):
                frame = frame.f_back
            if frame is not None:
                phase = PHASES[frame.f_code.co_name]
            self.phases[phase] = self.phases.get(phase, 0) + zeta.shape[0]
        return self._compiled.log_joint(zeta)

    def __getattr__(self, name):
        return getattr(self._compiled, name)


def _source(name: str, references: dict | None):
    """(model path, data, reference) of a posteriordb posterior, or with ``references``
    (load_references()) of the example model ``name``."""
    if references is None:
        return pdb.model_path(name), pdb.load_data(name), pdb.load_reference(name)
    path = MODELS / f"{name}.ppl"
    return path, json.loads(path.with_suffix(".json").read_text()), references[name]


def run(name: str, method: str, seed: int, draws: int = 4000,
        references: dict | None = None) -> dict:
    """One fit of ``name`` by ``method``; its scores, draw evaluations, CPU and wall seconds.
    With ``references``, ``name`` is an example model scored against its NUTS reference."""
    path, data, reference = _source(name, references)
    model = ppl.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # unused data names
        concrete, _, compiled = model.prepare(data)
    counting = _Counting(compiled, phases=method.startswith("dadvi"))
    options = FitOptions(seed=seed, draws=draws,
                         method="advi" if method.startswith("advi") else "dadvi",
                         guide="fullrank" if method.endswith("fullrank") else "auto")
    rng = np.random.default_rng(seed)
    started, wall_started = time.process_time(), time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method.startswith("advi"):
            result = advi.fit(counting, options, rng)
        else:
            result = dadvi.fit(counting, options, rng, optimizer=method.split()[1])
        fit = Fit(concrete, compiled, result, options, {})
        summary = fit.summary().to_dict()
    seconds, wall = time.process_time() - started, time.perf_counter() - wall_started
    figures = score(summary, reference, name)
    mcse = max((row.get("mcse", 0.0) / row["sd"] for row in summary.values() if row["sd"] > 0),
               default=0.0)
    return {"mean": float(figures["mean_error"].max()),
            "sd": float(np.abs(figures["sd_vs_reference"]).max()),
            "rows": counting.rows, "calls": counting.calls, "dim": compiled.dim,
            "seconds": seconds, "wall": wall, "steps": int(result.steps),
            "mcse": mcse, "warned": len(caught) > 0, "phases": counting.phases}


def phase_table(results: dict, method: str) -> str:
    """Markdown: where ``method``'s draw evaluations go, per posterior (seed 0)."""
    names = list(PHASES.values()) + ["other"]
    lines = [f"| posterior | D | {' | '.join(names)} | total | ADVI |",
             "|---|" + "---|" * (len(names) + 3)]
    for name, by_method in results.items():
        run = by_method.get(method, [{}])[0]
        phases = run.get("phases") or {}
        lines.append(f"| {name} | {run.get('dim', '')} | "
                     + " | ".join(str(phases.get(k, 0)) for k in names)
                     + f" | {run.get('rows', '')} | {by_method['advi'][0]['rows']} |")
    return "\n".join(lines)


def table(results: dict, difficulty=pdb.difficulty) -> str:
    """Markdown: one row per posterior and method, seeds averaged (max for errors);
    ``difficulty(name)`` fills the second column."""
    lines = ["| posterior | difficulty | method | max mean err (ref sd) | max sd dev vs reference"
             " | max mcse / sd | draw evaluations | log-joint passes | CPU s | wall s |"
             " evals vs ADVI | time vs ADVI |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, by_method in results.items():
        base = by_method["advi"]
        base_rows = np.mean([r["rows"] for r in base])
        base_seconds = np.mean([r["seconds"] for r in base])
        for method, runs in by_method.items():
            rows = np.mean([r["rows"] for r in runs])
            seconds = np.mean([r["seconds"] for r in runs])
            calls = np.mean([r["calls"] for r in runs])
            wall = np.mean([r["wall"] for r in runs])
            mcse = (f"{max(r['mcse'] for r in runs):.3f}" if method.startswith("dadvi") else "-")
            lines.append(
                f"| {name} | {difficulty(name)} | {method} | "
                f"{max(r['mean'] for r in runs):.3f} | {max(r['sd'] for r in runs):.3f} | "
                f"{mcse} | {rows:.0f} | {calls:.0f} | {seconds:.2f} | {wall:.2f} | "
                f"{rows / base_rows:.3f} | "
                f"{seconds / base_seconds:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="fits per posterior (seeds 0..n-1)")
    parser.add_argument("--only", nargs="*", help="posterior names (default: all)")
    parser.add_argument("--methods", nargs="*", choices=METHODS,
                        help="default: all; with --examples the first three")
    parser.add_argument("--examples", action="store_true",
                        help="the example models with a reference in example_references.json")
    args = parser.parse_args(argv)
    references = load_references() if args.examples else None
    if args.methods is None:
        args.methods = list(EXAMPLE_METHODS if args.examples else METHODS)
    results = {}
    for name in args.only or (list(references) if args.examples else pdb.names()):
        results[name] = {}
        for method in ["advi"] + [m for m in args.methods if m != "advi"]:
            runs = []
            for seed in range(args.seeds):
                try:
                    runs.append(run(name, method, seed, references=references))
                except ppl.PplError as error:
                    print(f"{name} {method} seed {seed}: {error.message}", file=sys.stderr)
                    runs.append({"mean": np.nan, "sd": np.nan, "rows": np.nan, "calls": np.nan,
                                 "seconds": np.nan, "wall": np.nan, "steps": 0,
                                 "mcse": np.nan,
                                 "warned": False})
                r = runs[-1]
                print(f"{name} {method} seed {seed}: mean err {r['mean']:.3f}, sd dev "
                      f"{r['sd']:.3f}, {r['rows']} draw evals, {r['seconds']:.2f} s",
                      file=sys.stderr, flush=True)
            results[name][method] = runs
    print(table(results, (lambda name: "example") if args.examples else pdb.difficulty))
    for method in args.methods:
        if method.startswith("dadvi"):
            print(f"\nDraw evaluations by phase, {method}:\n")
            print(phase_table(results, method))
    return 0


if __name__ == "__main__":
    sys.exit(main())
