"""Does importance correction help? k̂ and accuracy with and without it on posteriordb.

Fits every posterior in models/posteriordb/ once per seed (default options, correction off),
then scores two summaries of the same fit against the reference posterior: the guide's draws
as they are, and the PSIS-corrected summary (weighted by the Pareto-smoothed importance
weights; applied only where k̂ is below its threshold, as ``correct='psis'`` does). Mean
errors are |mean - reference mean| / reference sd, sd errors |sd / reference sd - 1|; the
table shows the worst element of each posterior, averaged over seeds.

    python benchmarks/trust.py --seeds 2
    python benchmarks/trust.py --auto --seeds 1      # --guide auto against mean field (CPU)
    python benchmarks/trust.py --auto --first 10 --seeds 10   # held-out seeds 10..19
    python benchmarks/trust.py --only eight_schools-eight_schools_noncentered
    python benchmarks/trust.py --probe --seeds 3   # what auto's full-rank skip is decided on
    python benchmarks/trust.py --choice --seeds 5 --only kidiq-kidscore_momiq  # auto's choice

``--auto``'s time ratio is one pair of fits per seed, and one pair is noisy: the same mean-field
fit timed twice in a row took 0.61-1.55x its first CPU on the shared 2 cores (docs/trust.md).
``--repeats K`` fits each pair K times, interleaved, and takes each fit's least CPU: the fits
are the same every time (same seed, same result), so the least is the one other jobs slowed
least.
Where auto is mean field alone (issue 11: at most 1.1x) use benchmarks/auto_overhead.py, which
repeats interleaved pairs and counts the log joint's evaluations.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from accuracy import score  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402
from ppl.infer.psis import psis  # noqa: E402
from ppl.options import FitOptions  # noqa: E402
from ppl.posterior import Fit  # noqa: E402


def measure(name: str, seed: int, draws: int) -> dict[str, float]:
    """k̂, verdict and the worst mean and sd errors, plain and corrected, of one fit."""
    model = ppl.load(pdb.model_path(name))
    reference = pdb.load_reference(name)
    fit = model.fit(pdb.load_data(name), seed=seed, draws=draws,
                    correct="none", guide="meanfield")
    corrected = Fit(fit.model, fit.compiled, fit.result,
                    dataclasses.replace(fit.options, correct="psis"), fit.info)
    row = {"khat": fit.khat, "applied": corrected.corrected, "level": fit.verdict().level,
           "seconds": fit.result.seconds}
    for label, which in (("plain", fit), ("psis", corrected)):
        figures = score(which.summary().to_dict(), reference, name)
        row[f"{label}_mean"] = float(figures["mean_error"].max())
        row[f"{label}_sd"] = float(np.abs(figures["sd_vs_reference"]).max())
    return row


def measure_auto(name: str, seed: int, repeats: int = 1) -> dict:
    """Mean field against auto on one posterior: worst errors, families, time ratio (each
    fit's least CPU of ``repeats``, the pairs interleaved)."""
    model = ppl.load(pdb.model_path(name))
    reference, data = pdb.load_reference(name), pdb.load_data(name)
    row, fits = {}, {}
    for _ in range(repeats):
        for label, guide in (("mf", "meanfield"), ("auto", "auto")):
            # CPU seconds of this process (the machine is shared: wall time is other jobs'
            # too), k̂ and the summary included
            started = time.process_time()
            fit = fits[label] = model.fit(data, seed=seed, guide=guide)
            fit.summary()
            seconds = time.process_time() - started
            row[f"{label}_seconds"] = min(seconds, row.get(f"{label}_seconds", np.inf))
    for label, fit in fits.items():
        figures = score(fit.summary().to_dict(), reference, name)
        row[f"{label}_mean"] = float(figures["mean_error"].max())
        row[f"{label}_sd"] = float(np.abs(figures["sd_vs_reference"]).max())
        row[f"{label}_khat"] = fit.khat
    auto_fit = fits["auto"]
    row["chosen"] = auto_fit.auto.tried[auto_fit.auto.chosen].name   # "(t)", "(moved)" marked
    row["tried"] = len(auto_fit.auto.tried)
    row["line"] = auto_fit.auto.line()
    return row


def measure_probe(name: str, seed: int) -> dict:
    """Mean field's k̂ and the PSIS of the Gaussian full rank would start from (auto.py's
    SKIP_ESS probe), made as ``--guide auto`` makes them: same seed, same stream."""
    model = ppl.load(pdb.model_path(name))
    compiled = model.prepare(pdb.load_data(name))[2]
    options = FitOptions(seed=seed, guide="meanfield")
    rng = np.random.default_rng(seed)
    result = advi.fit(compiled, options, rng)
    start = auto.fullrank_start(compiled, options, rng, result)
    probe = psis(Fit(None, compiled, start, options, {}).log_weights())
    return {"mf_khat": Fit(None, compiled, result, options, {}).khat,
            "start_khat": probe.khat, "start_ess": probe.ess / probe.log_weights.size}


def measure_choice(name: str, seed: int) -> list[str]:
    """Every fit auto's climb assessed (as ``--guide auto`` makes them: same seed, same
    stream): family, k̂, verdict, ELBO on k̂'s draws and its standard error, the worst errors
    of its own summary, and which fit auto chose and the smallest k̂ would have."""
    reference, chosen, _, fits = assessed_climb(name, seed)
    smallest = min(fits, key=lambda f: f.khat)
    rows = []
    for fit in fits:
        log_w = fit.log_weights()
        figures = score(fit.summary().to_dict(), reference, name)
        family = fit.result.guide.name + (" moved" if fit.result.moved else "")
        marks = (" auto" if fit is chosen else "") + (" smallest-k̂" if fit is smallest else "")
        rows.append(f"| {name} | {seed} | {family} | {fit.khat:.2f} | {fit.verdict().level} | "
                    f"{log_w.mean():.3f} ± {log_w.std(ddof=1) / np.sqrt(log_w.size):.4f} | "
                    f"{figures['mean_error'].max():.3f} / "
                    f"{np.abs(figures['sd_vs_reference']).max():.3f} |{marks} |")
    return rows


def assessed_climb(name: str, seed: int):
    """(the reference, the fit auto chose, its report, every fit its climb assessed but the
    probe of full rank's start, in order), fitted as ``--guide auto`` fits: same seed, same
    stream."""
    model = ppl.load(pdb.model_path(name))
    reference, (concrete, _, compiled) = pdb.load_reference(name), \
        model.prepare(pdb.load_data(name))
    options, fits = FitOptions(seed=seed), []
    chosen, report = auto.fit_auto(compiled, options, np.random.default_rng(seed),
                                   lambda result: fits.append(Fit(concrete, compiled, result,
                                                                  options, {})) or fits[-1])
    return reference, chosen, report, [f for f in fits if not is_probe(f, fits)]


def is_probe(fit, fits: list) -> bool:
    """Whether ``fit``, one of ``fits`` (every object auto.fit_auto's ``assess`` was called on,
    in order), is the probe of full rank's start (auto.fullrank_start), not a rung: mean field's
    result with full rank's guide, its ELBO trace mean field's own object. Not its seconds:
    they are mean field's too (a warm start's seconds cover its start), so a filter on
    ``seconds > 0`` had listed the probe as a full-rank fit (mesquite-logvolume seed 16's
    "fullrank 0.93") and shifted example_families.py's --climb rows by one."""
    return fit is not fits[0] and fit.result.elbo is fits[0].result.elbo


def climb_fits(fits: list, tried: tuple) -> list:
    """The fit of each rung of ``tried`` (auto's report, in order), None for a rung skipped,
    failed or diverged, from ``fits`` as for :func:`is_probe`: without the probe, and of a fit
    auto assessed changed after its steps (under Student-t noise, auto.heavier_tailed, then
    moved to its importance-weighted moments, auto.moment_matched; each assessed right after
    it), the one auto kept (``tried``'s ``student_t``, ``moved``), else the fit as its steps
    left it."""
    rungs, out = [f for f in fits if not is_probe(f, fits)], []
    for rung in tried:
        if rung.level in (auto.SKIPPED, auto.FAILED, auto.DIVERGED):
            out.append(None)
            continue
        fit = rungs.pop(0)
        changed = []
        while rungs and rungs[0].result.moved and rungs[0].result.elbo is fit.result.elbo:
            changed.append(rungs.pop(0))
        student = [f for f in changed if f.result.guide.name.startswith("studentt")]
        moved = [f for f in changed if f not in student]
        fit = student[0] if rung.student_t else moved[0] if rung.moved else fit
        out.append(fit)
    return out


def auto_table(rows: dict[str, list[dict]]) -> str:
    """Markdown: mean field against auto, averaged over seeds (CPU time as a ratio)."""
    lines = ["| posterior | k̂ mean field | k̂ auto | chosen | mean err mf | mean err auto | "
             "sd err mf | sd err auto | time auto / mf |", "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        def avg(key):
            return np.mean([r[key] for r in runs])
        chosen = ", ".join(sorted({r["chosen"] for r in runs}))
        lines.append(f"| {name} | {avg('mf_khat'):.2f} | {avg('auto_khat'):.2f} | {chosen} | "
                     f"{avg('mf_mean'):.3f} | {avg('auto_mean'):.3f} | {avg('mf_sd'):.3f} | "
                     f"{avg('auto_sd'):.3f} | "
                     f"{np.mean([r['auto_seconds'] / r['mf_seconds'] for r in runs]):.2f} |")
    return "\n".join(lines)


def table(rows: dict[str, list[dict]]) -> str:
    """Markdown: per posterior, k̂, how often corrected, worst mean and sd errors both ways."""
    lines = ["| posterior | k̂ | verdict | corrected | mean err plain | mean err PSIS | "
             "sd err plain | sd err PSIS |", "|---|---|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        def avg(key):
            return np.mean([r[key] for r in runs])
        levels = ", ".join(sorted({r["level"] for r in runs}))
        lines.append(f"| {name} | {avg('khat'):.2f} | {levels} | "
                     f"{sum(r['applied'] for r in runs)}/{len(runs)} | "
                     f"{avg('plain_mean'):.3f} | {avg('psis_mean'):.3f} | "
                     f"{avg('plain_sd'):.3f} | {avg('psis_sd'):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="fits per posterior (seeds 0..n-1)")
    parser.add_argument("--first", type=int, default=0,
                        help="the first seed (--first 10 --seeds 10: held-out seeds 10..19)")
    parser.add_argument("--draws", type=int, default=1000, help="the fits' draws option")
    parser.add_argument("--only", nargs="*", help="posterior names (default: all)")
    parser.add_argument("--auto", action="store_true",
                        help="compare --guide auto with mean field instead")
    parser.add_argument("--repeats", type=int, default=1,
                        help="with --auto: time each fit this many times, interleaved, and "
                             "take its least CPU")
    parser.add_argument("--choice", action="store_true",
                        help="every fit of auto's climb: k̂, ELBO, errors, which one was chosen")
    parser.add_argument("--probe", action="store_true",
                        help="k̂ and ESS of the Gaussian auto's full rank would start from")
    args = parser.parse_args(argv)
    rows, seeds = {}, range(args.first, args.first + args.seeds)
    if args.probe:
        print("| posterior | seed | k̂ mean field | k̂ start | ESS start / draws |\n|---|---|---|---|---|")
        for name in args.only or pdb.names():
            for seed in seeds:
                row = measure_probe(name, seed)
                print(f"| {name} | {seed} | {row['mf_khat']:.2f} | {row['start_khat']:.2f} | "
                      f"{row['start_ess']:.0%} |", flush=True)
        return 0
    if args.choice:
        print("| posterior | seed | fit | k̂ | verdict | ELBO on k̂'s draws | mean / sd err | "
              "chosen by |\n|---|---|---|---|---|---|---|---|")
        for name in args.only or pdb.names():
            for seed in seeds:
                print("\n".join(measure_choice(name, seed)), flush=True)
        return 0
    if args.auto:
        for name in args.only or pdb.names():
            rows[name] = [measure_auto(name, seed, args.repeats) for seed in seeds]
            print(name, rows[name], file=sys.stderr, flush=True)
        print(auto_table(rows))
        return 0
    for name in args.only or pdb.names():
        rows[name] = []
        for seed in seeds:
            row = measure(name, seed, args.draws)
            rows[name].append(row)
            print(f"{name} seed {seed}: k̂ {row['khat']:.2f}, mean err {row['plain_mean']:.3f}"
                  f" -> {row['psis_mean']:.3f}, sd err {row['plain_sd']:.3f} -> "
                  f"{row['psis_sd']:.3f}", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
