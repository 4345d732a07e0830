"""Data-parallel minibatch gradients on Dask: a local-cluster proof of docs/scaling.md.

The batched dimension's rows are split into W partitions, one per Dask worker (a Dask actor
holds its partition's data and its compiled model; the data never moves again). Each step the
driver sends the guide parameters theta [P] and the step's noise eps [S, D] (or its seed) to
every worker with the indices of that worker's B/W batch rows; each worker returns the gradient
[P] of (N_w / B_w) * E_q[sum of its batch rows' log-likelihood]; the driver adds the gradient
of the part that is not batched (priors, Jacobians, entropy), which it computes itself. The
sum is the gradient of the N/B-scaled minibatch ELBO: this script checks it equals the
single-process gradient on the same rows and draws, and times both.

Not part of the test run (Dask is not a dependency): `pip install "dask[distributed]"`, then
  OMP_NUM_THREADS=1 python benchmarks/dask_minibatch.py [--workers 2] [--batch 64] [--steps 20]
Prints SKIP and exits 0 when distributed is not importable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import grad

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = ROOT / "models" / "bnn_regression.ppl"


_MODELS: dict = {}


def _compiled(model_text: str, data: dict):
    """The model compiled with ``data`` (parsed once per process: only check and compile run
    per step, because the batch's rows are the model's data here)."""
    import ppl
    if model_text not in _MODELS:
        _MODELS[model_text] = ppl.compile(model_text)
    return _MODELS[model_text].prepare(data)[2]


def _split_terms(compiled, zeta):
    """(sum of the observe terms [S], sum of every other term [S]) at zeta [S, D]."""
    from ppl import ir
    observed = others = 0.0
    for statement, term in compiled.terms(zeta):
        if isinstance(statement, ir.Observe):
            observed = observed + term
        else:
            others = others + term
    return observed, others


class Partition:
    """A Dask actor: one partition of the rows, its compiled model, its gradient per step."""

    def __init__(self, model_text: str, data: dict, batched: tuple[str, ...]):
        self.text, self.data, self.batched = model_text, data, batched
        self.n_rows = len(data[batched[0]])

    def gradient(self, theta: np.ndarray, eps: np.ndarray, rows: np.ndarray, scale: float):
        """Gradient [P] of scale * mean_s sum of the observe terms of ``rows`` at the guide's
        draws zeta = draw(theta, eps)."""
        from ppl.guides import MEAN_FIELD
        subset = {k: (np.asarray(v)[rows] if k in self.batched else v)
                  for k, v in self.data.items()}
        subset["N"] = len(rows)
        compiled = _compiled(self.text, subset)

        def batch_part(t):
            return scale * anp.mean(_split_terms(compiled, MEAN_FIELD.draw(t, eps))[0])
        return grad(batch_part)(theta)

    def ping(self, theta: np.ndarray) -> np.ndarray:
        """Round trip of a parameter-sized vector with no work: the communication cost."""
        return theta


def unbatched_gradient(compiled, theta, eps):
    """Gradient [P] of the part of the ELBO that is not batched: priors, Jacobians, entropy."""
    from ppl.guides import MEAN_FIELD

    def rest(t):
        return anp.mean(_split_terms(compiled, MEAN_FIELD.draw(t, eps))[1]) + MEAN_FIELD.entropy(t)
    return grad(rest)(theta)


def single_process_gradient(text, data, theta, eps, rows, scale):
    """Reference: the N/B-scaled minibatch ELBO's gradient on all batch rows, in one process."""
    from ppl.guides import MEAN_FIELD
    subset = {k: (np.asarray(v)[rows] if k in ("X", "y") else v) for k, v in data.items()}
    subset["N"] = len(rows)
    compiled = _compiled(text, subset)

    def objective(t):
        observed, others = _split_terms(compiled, MEAN_FIELD.draw(t, eps))
        return anp.mean(scale * observed + others) + MEAN_FIELD.entropy(t)
    return grad(objective)(theta)


def step_compute_ms(text: str, data: dict, sizes, mc: int, repeats: int = 30) -> dict:
    """Median ms of one ELBO-gradient evaluation (the engine's step, compile excluded) on B
    rows (the data's rows repeated to B), for each B in ``sizes``: the compute half of the
    cost model."""
    from ppl.guides import MEAN_FIELD
    from ppl.infer.elbo import elbo_and_grad
    rng = np.random.default_rng(1)
    times = {}
    for b in sizes:
        rows = np.arange(b) % data["N"]
        compiled = _compiled(text, {**data, "N": b, "X": np.asarray(data["X"])[rows],
                                    "y": np.asarray(data["y"])[rows]})
        theta = MEAN_FIELD.init(compiled.dim, 0.1)
        spent = []
        for _ in range(repeats):
            eps = rng.standard_normal((mc, compiled.dim))
            start = time.perf_counter()
            elbo_and_grad(compiled.log_joint, theta, eps)
            spent.append(time.perf_counter() - start)
        times[b] = 1000 * float(np.median(spent))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mc-samples", type=int, default=5)
    args = parser.parse_args()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("SKIP: dask.distributed is not installed (pip install 'dask[distributed]')")
        return
    text = MODEL.read_text()
    data = json.loads(MODEL.with_suffix(".json").read_text())
    n, w = data["N"], args.workers
    parts = np.array_split(np.arange(n), w)
    b_w = args.batch // w
    scale = n / (b_w * w)        # N / B; equal to N_w / B_w when the partitions are equal
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        actors = [client.submit(Partition, text, {"N": len(p), "K": data["K"],
                                                  "X": np.asarray(data["X"])[p],
                                                  "y": np.asarray(data["y"])[p]},
                                ("X", "y"), actor=True).result() for p in parts]
        run_steps(client, actors, parts, text, data, args, b_w, scale)


def run_steps(client, actors, parts, text, data, args, b_w, scale) -> None:
    """args.steps steps: distributed and single-process gradients, compared and timed."""
    rng = np.random.default_rng(0)
    full = _compiled(text, data)
    D = full.dim
    theta = np.concatenate([0.3 * rng.standard_normal(D), np.full(D, np.log(0.1))])
    worst, t_dist, t_single, t_ping = 0.0, [], [], []
    for _ in range(args.steps):
        eps = rng.standard_normal((args.mc_samples, D))
        local = [rng.choice(len(p), size=b_w, replace=False) for p in parts]
        start = time.perf_counter()
        futures = [a.gradient(theta, eps, rows, scale) for a, rows in zip(actors, local)]
        g = unbatched_gradient(full, theta, eps) + sum(f.result() for f in futures)
        t_dist.append(time.perf_counter() - start)
        start = time.perf_counter()
        rows = np.concatenate([p[r] for p, r in zip(parts, local)])
        reference = single_process_gradient(text, data, theta, eps, rows, scale)
        t_single.append(time.perf_counter() - start)
        start = time.perf_counter()
        [f.result() for f in [a.ping(theta) for a in actors]]
        t_ping.append(time.perf_counter() - start)
        worst = max(worst, float(np.max(np.abs(g - reference) / (np.abs(reference) + 1e-12))))
        theta = theta + 1e-3 * reference          # move, so each step checks a new theta
    print(f"{len(actors)} workers, N={data['N']}, B={b_w * len(actors)}, D={D}, "
          f"theta {theta.size} floats ({theta.nbytes} bytes) out and gradient back per worker")
    print(f"largest relative difference distributed vs single-process gradient: {worst:.2e}")
    print(f"median step: distributed {1000 * np.median(t_dist):.1f} ms, single process "
          f"{1000 * np.median(t_single):.1f} ms, round trip of theta alone "
          f"{1000 * np.median(t_ping):.2f} ms")
    costs = step_compute_ms(text, data, (64, 1024, 8192, 32768), args.mc_samples)
    print("one gradient evaluation, compile excluded (ms) by batch rows: "
          + ", ".join(f"B={b}: {t:.2f}" for b, t in costs.items()))
    if worst > 1e-10:
        raise SystemExit("FAIL: the aggregated gradient differs from the single-process one")


if __name__ == "__main__":
    main()
