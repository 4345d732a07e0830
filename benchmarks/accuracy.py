"""Accuracy of ppl's ADVI against posteriordb's reference posteriors (long NUTS runs).

Fits every posterior in models/posteriordb/ with several seeds and writes a table: per posterior,
the largest and mean |mean - reference mean| / reference sd over its elements; the largest
deviation of sd / (reference sd / gaussian_meanfield_sd_ratio), i.e. against the best that a
mean-field Gaussian can do; the same against the reference sd itself; steps, seconds, converged.

    python benchmarks/accuracy.py                      # all posteriors, 3 seeds, prints the table
    python benchmarks/accuracy.py --out docs/accuracy.md
    python benchmarks/accuracy.py --only sblri-blr --seeds 5
    python benchmarks/accuracy.py --guide fullrank --seeds 1 --out docs/accuracy.md

With ``--guide G`` every fit uses family G (meanfield, fullrank, lowrank[:R], flow[:K]); with
``--out`` the table becomes the file's section for G, replacing an earlier one, and the other
sections are kept (the mean-field table is the one before the first ``## Guide:`` heading).
Wall time is the fit's (seconds, including its warm-start phases); for a family other than
mean field, each fit is preceded by a mean-field fit of the same posterior and seed, and the
table gives the ratio of the two times: a ratio from one run, which the machine's load
affects far less than the seconds themselves.
"""
from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402


@dataclass
class Score:
    """Accuracy figures of one fit (one posterior, one seed)."""
    max_mean_error: float      # max over elements of |mean - ref mean| / ref sd
    mean_mean_error: float     # the same, averaged over elements
    max_sd_vs_meanfield: float  # max |sd / (ref sd / meanfield ratio) - 1|
    max_sd_vs_reference: float  # max |sd / ref sd - 1|
    steps: int
    seconds: float
    converged: bool
    baseline_seconds: float = float("nan")  # a mean-field fit's, same posterior and seed, same run
    auto: str = ""             # with --guide auto: the families tried and the one chosen


def score(summary: dict, reference: dict, name: str) -> dict[str, np.ndarray]:
    """Per-element standardized mean error and sd ratios of a fit's summary against the reference.

    Raises ValueError naming the elements the model does not report.
    """
    missing = [element for element in reference if element not in summary]
    if missing:
        raise ValueError(f"{name}: the model reports no {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''} (reference.json has them)")
    ref_mean = np.array([r["mean"] for r in reference.values()])
    ref_sd = np.array([r["sd"] for r in reference.values()])
    ratio = np.array([r["meanfield_sd_ratio"] for r in reference.values()])
    mean = np.array([summary[e]["mean"] for e in reference])
    sd = np.array([summary[e]["sd"] for e in reference])
    return {"mean_error": np.abs(mean - ref_mean) / ref_sd,
            "sd_vs_meanfield": sd / (ref_sd / ratio) - 1.0,
            "sd_vs_reference": sd / ref_sd - 1.0}


def fit_posterior(name: str, seed: int, draws: int = 4000, **options) -> tuple[Score, dict]:
    """Fit posterior ``name`` with ``seed``; return its Score and the per-element figures."""
    model = ppl.load(pdb.model_path(name))
    reference = pdb.load_reference(name)
    started = time.perf_counter()
    fit = model.fit(pdb.load_data(name), seed=seed, draws=draws, **options)
    seconds = time.perf_counter() - started
    figures = score(fit.summary().to_dict(), reference, name)
    return Score(float(figures["mean_error"].max()), float(figures["mean_error"].mean()),
                 float(np.abs(figures["sd_vs_meanfield"]).max()),
                 float(np.abs(figures["sd_vs_reference"]).max()),
                 int(fit.result.steps), seconds, fit.converged,
                 auto=fit.auto.line() if fit.auto is not None else ""), figures


def table(results: dict[str, list[Score]]) -> str:
    """A markdown table: one row per posterior, figures averaged over seeds (max for the max)."""
    timed = any(np.isfinite(s.baseline_seconds) for scores in results.values() for s in scores)
    lines = ["| posterior | difficulty | max mean err (sd) | mean mean err (sd) | "
             "max sd dev vs best mean-field | max sd dev vs reference | steps | seconds | "
             + ("time vs mean-field | " if timed else "") + "converged |",
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if timed else "")]
    for name, scores in results.items():
        worst = max(s.max_mean_error for s in scores)
        ratio = np.mean([s.seconds / s.baseline_seconds for s in scores])
        lines.append(
            f"| {name} | {pdb.difficulty(name)} | {worst:.3f} | "
            f"{np.mean([s.mean_mean_error for s in scores]):.3f} | "
            f"{np.mean([s.max_sd_vs_meanfield for s in scores]):.3f} | "
            f"{np.mean([s.max_sd_vs_reference for s in scores]):.3f} | "
            f"{np.mean([s.steps for s in scores]):.0f} | "
            f"{np.mean([s.seconds for s in scores]):.2f} | "
            + (f"{ratio:.1f} | " if timed else "")
            + f"{sum(s.converged for s in scores)}/{len(scores)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="fits per posterior (seeds 0..n-1)")
    parser.add_argument("--only", nargs="*", help="posterior names (default: all)")
    parser.add_argument("--out", help="write the table, with the command and date, to this file")
    parser.add_argument("--guide", default="meanfield", help="variational family of every fit")
    args = parser.parse_args(argv)
    names = args.only or pdb.names()
    results = {}
    for name in names:
        results[name] = []
        for seed in range(args.seeds):
            baseline = float("nan")
            if args.guide != "meanfield":
                baseline = fit_posterior(name, seed, guide="meanfield")[0].seconds
            result, _ = fit_posterior(name, seed, guide=args.guide)
            result.baseline_seconds = baseline
            results[name].append(result)
            print(f"{name} seed {seed}: max mean err {result.max_mean_error:.3f}, "
                  f"sd vs mean-field {result.max_sd_vs_meanfield:.3f}, "
                  f"{result.steps} steps, {result.seconds:.1f} s"
                  + (f", time vs mean-field {result.seconds / baseline:.2f}; {result.auto}"
                     if result.auto else ""), file=sys.stderr)
    text = table(results)
    print(text)
    if args.out and args.guide != "meanfield":
        command = "python benchmarks/accuracy.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:])
        _write_section(Path(args.out), args.guide, command.strip(), args.seeds, text)
    elif args.out:
        command = "python benchmarks/accuracy.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:])
        sections = _sections(Path(args.out))
        Path(args.out).write_text(
            f"# Accuracy against posteriordb reference posteriors\n\n"
            f"Made by `{command.strip()}` on {datetime.date.today().isoformat()} "
            f"(ppl {ppl.__version__}, {args.seeds} seeds per posterior; figures averaged over "
            f"seeds, the max mean error is the worst seed).\n\n"
            "Mean errors are |mean - reference mean| / reference sd. sd deviations are "
            "|sd / target - 1| with target = reference sd / gaussian_meanfield_sd_ratio "
            "(the best a mean-field Gaussian can do) or the reference sd itself. What the "
            "figures show, and why eight schools falls short: "
            "[accuracy-findings.md](accuracy-findings.md).\n\n"
            f"{text}\n\n" + "".join(sections.values()), encoding="utf-8")
    return 0


_HEADING = "## Guide: "


def _sections(path: Path) -> dict[str, str]:
    """The ``## Guide: G`` sections of an existing table file, by G (text to the next one)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    parts = re.split(r"(?m)^(?=" + _HEADING + ")", text)[1:]
    return {part[len(_HEADING):].split("\n", 1)[0].strip(): part for part in parts}


def _write_section(path: Path, guide: str, command: str, seeds: int, text: str) -> None:
    """Replace (or add) the section of ``guide`` in ``path``, keeping everything else."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = _sections(path)
    head = old.split("\n" + _HEADING, 1)[0].rstrip("\n") + "\n\n" if old else ""
    sections[guide] = (
        f"{_HEADING}{guide}\n\nMade by `{command}` on {datetime.date.today().isoformat()} "
        f"({seeds} seed{'s' if seeds > 1 else ''} per posterior). The column 'vs best "
        "mean-field' compares with the best mean-field sd and means little for this family; "
        "'vs reference' is the one to read.\n\n"
        f"{text}\n\n")
    path.write_text(head + "".join(sections.values()), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
