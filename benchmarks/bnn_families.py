"""BNN regression on the diabetes split: test RMSE and 90% interval coverage per family.

Fits models/bnn_regression.ppl (Normal priors on every weight) with each variational family,
and models/bnn_regression_map.ppl (the same network with `param` weights: a MAP fit) when the
engine has `param`; then predicts the held-out rows (models/bnn_regression_test.json) from the
fitted posterior and reports, on the standardized target and in the original units:

- RMSE of the posterior predictive mean against the test targets;
- coverage: the fraction of test targets inside the 5%-95% posterior predictive interval (a
  calibrated 90% interval covers about 90%; with 88 test rows the binomial sd is 3.2 points);
- active hidden units: units whose contribution to the mean varies over the rows by more than
  0.05 standardized units (see unit_sizes; a unit with its output weight collapsed to 0 is
  switched off, the known mean-field failure).

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


def scores(y_draws: np.ndarray, y: np.ndarray, draws: dict, X: np.ndarray) -> dict:
    """RMSE of the predictive mean, 90% interval coverage and width, and the active units."""
    low, high = np.quantile(y_draws, [0.05, 0.95], axis=0)
    return {"rmse": float(np.sqrt(np.mean((y_draws.mean(axis=0) - y) ** 2))),
            "coverage90": float(np.mean((y >= low) & (y <= high))),
            "width90": float(np.mean(high - low)),
            "active_units": int(np.sum(unit_sizes(draws, X) > 0.05))}


def unit_sizes(draws: dict, X: np.ndarray) -> np.ndarray:
    """Size of each hidden unit's contribution to the mean [H]: over draws, the mean of the sd
    over rows of W2[j] * tanh(X @ W1 + b1)[:, j]. A switched-off unit (output weight collapsed
    to 0, or its tanh flat over the data) scores near 0; 0.05 (a 14th of the noise sd, in
    standardized units) is the threshold used for 'active'."""
    hidden = np.tanh(np.einsum("nk,skh->snh", X, draws["W1"]) + draws["b1"][:, None, :])
    return np.mean(np.abs(draws["W2"]) * hidden.std(axis=1), axis=0)


def fit_family(family: str, seed: int) -> tuple[dict, dict]:
    """(draws, fit facts) of one family's fit of models/bnn_regression.ppl; the facts hold
    the Fit, whose predictive on the test rows is used (ppl's prediction on new data)."""
    start = time.perf_counter()
    fit = ppl.load(MODELS / "bnn_regression.ppl").fit(guide=family, seed=seed)
    seconds = time.perf_counter() - start
    facts = {"seconds": seconds, "steps": int(len(fit.elbo)), "khat": float(fit.khat), "fit": fit}
    return fit.draws(), facts


def fit_cold(family: str, seed: int) -> tuple[dict, dict]:
    """A richer family fitted from its own cold start (the origin), NOT warm-started from the
    mean-field fit as ppl does: does it prune units too, or does it inherit the pruning?
    Uses advi's internal _fit_plain (a benchmark may; the library offers no such option)."""
    from ppl.guides import family as make_family
    from ppl.infer import advi
    from ppl.options import FitOptions
    model = ppl.load(MODELS / "bnn_regression.ppl")
    compiled = model.prepare()[2]
    options = FitOptions(guide=family, seed=seed)
    guide = make_family(family, compiled.dim)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    result = advi._fit_plain(compiled, guide, guide.init(compiled.dim, options.init_scale),
                             options, rng, None, False, start)
    zeta = guide.sample(result.theta, rng, 1000)
    facts = {"seconds": time.perf_counter() - start, "steps": int(result.steps),
             "khat": float("nan")}
    return compiled.constrained(zeta), facts


def hmc(seed: int, warmup: int = 300, draws: int = 600, leapfrog: int = 40) -> tuple[dict, dict]:
    """Reference posterior: one hand-written HMC chain (identity mass, step size adapted in
    warmup to ~0.75 acceptance) on the unconstrained space, from a N(0, 0.5^2) start."""
    from autograd import value_and_grad
    compiled = ppl.load(MODELS / "bnn_regression.ppl").prepare()[2]
    lp_grad = value_and_grad(lambda q: compiled.log_joint(q[None])[0])
    rng = np.random.default_rng(seed)
    q = 0.5 * rng.standard_normal(compiled.dim)
    lp, g = lp_grad(q)
    step, kept, accepted = 0.01, [], 0
    start = time.perf_counter()
    for it in range(warmup + draws):
        p0 = rng.standard_normal(q.size)
        q1, p1, g1 = q, p0 + 0.5 * step * g, g
        for i in range(leapfrog):
            q1 = q1 + step * p1
            lp1, g1 = lp_grad(q1)
            p1 = p1 + (step if i < leapfrog - 1 else 0.5 * step) * g1
        log_accept = (lp1 - 0.5 * p1 @ p1) - (lp - 0.5 * p0 @ p0)
        ok = np.isfinite(log_accept) and np.log(rng.uniform()) < log_accept
        if ok:
            q, lp, g = q1, lp1, g1
        if it < warmup:
            step *= np.exp(0.05 * ((1.0 if ok else 0.0) - 0.75))
        else:
            kept.append(q)
            accepted += ok
    facts = {"seconds": time.perf_counter() - start, "steps": warmup + draws,
             "khat": float("nan"), "acceptance": accepted / draws, "step_size": step}
    return compiled.constrained(np.array(kept)), facts


def fit_map(seed: int) -> tuple[dict, dict] | None:
    """(point 'draws' with the learned sigma, facts) of the MAP model; None without `param`."""
    try:
        model = ppl.load(MODELS / "bnn_regression_map.ppl")
    except (ppl.PplError, FileNotFoundError) as error:
        print(f"MAP skipped: {str(error).splitlines()[0]}")
        return None
    start = time.perf_counter()
    fit = model.fit(seed=seed)   # a params-only fit: L-BFGS-B, no guide to choose
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
    parser.add_argument("--save", help="a folder to write each family's draws to (.npz)")
    args = parser.parse_args()
    test = json.loads((MODELS / "bnn_regression_test.json").read_text())
    X, y = np.asarray(test["X"]), np.asarray(test["y"])
    y_sd = json.loads((MODELS / "apps_scales.json").read_text())["diabetes_y_sd"]
    rows = {}
    for family in args.families.split(","):
        if family == "map":
            got = fit_map(args.seed)
        elif family == "hmc":
            got = hmc(args.seed)
        elif family.endswith("-cold"):
            got = fit_cold(family.removesuffix("-cold"), args.seed)
        else:
            got = fit_family(family, args.seed)
        if got is None:
            continue
        draws, facts = got
        rng = np.random.default_rng([args.seed, 13])
        fit = facts.pop("fit", None)
        y_draws = (predict(draws, X, rng) if fit is None
                   else fit.predictive(len(draws["W2"]), data=test)["y"])
        rows[family] = {**facts, **scores(y_draws, y, draws, X)}
        rows[family]["unit_sizes"] = np.round(unit_sizes(draws, X), 3).tolist()
        if args.save:
            np.savez(Path(args.save) / f"{family}.npz", **draws)
        row = rows[family]
        print(f"{family:10s} RMSE {row['rmse']:.3f} ({row['rmse'] * y_sd:.1f} original units)  "
              f"90% coverage {row['coverage90']:.3f}  width {row['width90']:.2f}  "
              f"active units {row['active_units']}/10  k̂ {row['khat']:.2f}  "
              f"{row['steps']} steps {row['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
