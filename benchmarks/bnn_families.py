"""BNN regression on the diabetes split: test RMSE and 90% interval coverage per family.

Fits models/bnn_regression.ppl (Normal priors on every weight) with each variational family,
and models/bnn_regression_map.ppl (the same network with `param` weights: a MAP fit) when the
engine has `param`; then predicts the held-out rows (models/bnn_regression_test.json) from the
fitted posterior and reports, on the standardized target and in the original units:

- RMSE of the posterior predictive mean against the test targets;
- coverage: the fraction of test targets inside the 5%-95% posterior predictive interval (a
  calibrated 90% interval covers about 90%; with 88 test rows the binomial sd is 3.2 points);
- active hidden units: units whose output weight has |posterior mean| > 0.1 (a unit with its
  output weight collapsed to 0 is switched off, the known mean-field failure).

Run: OMP_NUM_THREADS=1 python benchmarks/bnn_families.py [--families meanfield,fullrank,...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import ppl  # noqa: E402

MODELS = ROOT / "models"
FAMILIES = ("meanfield", "fullrank", "lowrank", "flow")


def predict(draws: dict, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Posterior predictive draws [S, N] of y at inputs X [N, K] (the model's own formula)."""
    hidden = np.tanh(np.einsum("nk,skh->snh", X, draws["W1"]) + draws["b1"][:, None, :])
    mean = np.einsum("snh,sh->sn", hidden, draws["W2"]) + draws["b2"][:, None]
    sigma = np.broadcast_to(np.reshape(draws["sigma"], (-1, 1)), mean.shape)
    return mean + sigma * rng.standard_normal(mean.shape)


def scores(y_draws: np.ndarray, y: np.ndarray, W2: np.ndarray) -> dict:
    """RMSE of the predictive mean, 90% interval coverage, active units (|mean W2| > 0.1)."""
    low, high = np.quantile(y_draws, [0.05, 0.95], axis=0)
    return {"rmse": float(np.sqrt(np.mean((y_draws.mean(axis=0) - y) ** 2))),
            "coverage90": float(np.mean((y >= low) & (y <= high))),
            "width90": float(np.mean(high - low)),
            "active_units": int(np.sum(np.abs(W2.reshape(-1, W2.shape[-1]).mean(axis=0)) > 0.1))}


def fit_family(family: str, seed: int) -> tuple[dict, dict]:
    """(draws, fit facts) of one family's fit of models/bnn_regression.ppl."""
    start = time.perf_counter()
    fit = ppl.load(MODELS / "bnn_regression.ppl").fit(guide=family, seed=seed)
    seconds = time.perf_counter() - start
    facts = {"seconds": seconds, "steps": int(len(fit.elbo)), "khat": float(fit.khat)}
    return fit.draws(), facts


def fit_map(seed: int) -> tuple[dict, dict] | None:
    """(point 'draws' with the learned sigma, facts) of the MAP model; None without `param`."""
    try:
        model = ppl.load(MODELS / "bnn_regression_map.ppl")
    except (ppl.PplError, FileNotFoundError) as error:
        print(f"MAP skipped: {str(error).splitlines()[0]}")
        return None
    start = time.perf_counter()
    fit = model.fit(guide="meanfield", seed=seed)
    seconds = time.perf_counter() - start
    values = fit.params()
    draws = {name: np.asarray(values[name])[None] for name in ("W1", "b1", "W2", "b2")}
    draws["sigma"] = np.asarray(values["sigma"]).reshape(1)
    draws = {k: np.repeat(v, 1000, axis=0) for k, v in draws.items()}
    return draws, {"seconds": seconds, "steps": int(len(fit.elbo)), "khat": float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES + ("map",)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the table as JSON here")
    args = parser.parse_args()
    test = json.loads((MODELS / "bnn_regression_test.json").read_text())
    X, y = np.asarray(test["X"]), np.asarray(test["y"])
    y_sd = json.loads((MODELS / "apps_scales.json").read_text())["diabetes_y_sd"]
    rows = {}
    for family in args.families.split(","):
        got = fit_map(args.seed) if family == "map" else fit_family(family, args.seed)
        if got is None:
            continue
        draws, facts = got
        rng = np.random.default_rng([args.seed, 13])
        rows[family] = {**facts, **scores(predict(draws, X, rng), y, draws["W2"])}
        row = rows[family]
        print(f"{family:10s} RMSE {row['rmse']:.3f} ({row['rmse'] * y_sd:.1f} original units)  "
              f"90% coverage {row['coverage90']:.3f}  width {row['width90']:.2f}  "
              f"active units {row['active_units']}/10  k̂ {row['khat']:.2f}  "
              f"{row['steps']} steps {row['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
