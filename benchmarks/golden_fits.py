"""Bit-for-bit check of a refactor of the fit loop: fit a few shipped models with each family at
a fixed seed and save, or compare exactly, every fitted theta, ELBO trace, step count and lr.

    python benchmarks/golden_fits.py save /tmp/before.npz           # on the old code
    python benchmarks/golden_fits.py compare /tmp/before.npz        # on the new code
    python benchmarks/golden_fits.py save /tmp/flow.npz --guides flow
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO))
import ppl  # noqa: E402

MODELS = ("eight_schools", "linear_regression", "logistic_regression",
          "hierarchical_intercepts", "ar1", "poisson_regression")


def fits(guides) -> dict[str, np.ndarray]:
    """name/guide/{theta, elbo, meta} -> array, for every model and guide (seed 3)."""
    out = {}
    for model in MODELS:
        text = (_REPO / "models" / f"{model}.ppl").read_text()
        data = json.loads((_REPO / "models" / f"{model}.json").read_text())
        for guide in guides:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = ppl.compile(text).fit(data, guide=guide, seed=3).result
            key = f"{model}/{guide}"
            out[key + "/theta"], out[key + "/elbo"] = np.asarray(r.theta), np.asarray(r.elbo)
            out[key + "/meta"] = np.array([r.steps, r.lr, r.final_elbo, r.converged, r.jitter])
            print(key, r.steps, r.lr, r.reason, flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("path")
    parser.add_argument("--guides", default="meanfield,fullrank,flow")
    args = parser.parse_args(argv)
    out = fits(args.guides.split(","))
    if args.mode == "save":
        np.savez(args.path, **out)
        return
    ref = np.load(args.path, allow_pickle=False)
    bad = [k for k in out if k not in ref or ref[k].shape != out[k].shape
           or not np.array_equal(ref[k], out[k], equal_nan=True)]
    for key in bad:     # by how much, so a change that moves fits says where and how far
        print(f"  {key}: {_difference(ref[key] if key in ref else None, out[key])}")
    print(f"MISMATCH {bad}" if bad else f"IDENTICAL: {len(out)} arrays")
    sys.exit(1 if bad else 0)


def _difference(before: np.ndarray | None, after: np.ndarray) -> str:
    """How an array differs from the saved one: missing, another shape, or the largest
    absolute difference and that relative to the largest saved value."""
    if before is None:
        return "not in the saved file"
    if before.shape != after.shape:
        return f"shape {before.shape} -> {after.shape}"
    with np.errstate(all="ignore"):
        gap = float(np.nanmax(np.abs(after.astype(float) - before.astype(float)), initial=0.0))
        scale = float(np.nanmax(np.abs(before.astype(float)), initial=0.0))
    relative = gap / scale if scale else float("inf")
    return f"largest difference {gap:.3g} ({relative:.3g} of the largest saved value)"


if __name__ == "__main__":
    main()
