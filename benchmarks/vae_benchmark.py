"""VAE on the binarized 8x8 digits: ppl's models/vae_digits.ppl against a hand-written autograd
VAE of the same architecture, steps, batch size, Monte Carlo draws and optimizer, in one run.

Both are scored by the same code: the held-out ELBO per image on the 20% test split
(models/vae_digits_test.json), estimated with ``EVAL_DRAWS`` draws of z per test image from
the fitted encoder (Monte Carlo sd of the mean per image reported beside it). The time per
epoch (N / B steps) is the fit's CPU time (process time: both run single-threaded, and CPU time is
steadier than wall time on a shared machine) divided by the epochs it ran (ppl's convergence
rule may stop before the last step); ppl's includes its data validation, compile, step-size
search and whatever the fit does after its last step. Both start from the images in memory.

Run: OMP_NUM_THREADS=1 python benchmarks/vae_benchmark.py [--epochs 200] [--lr 0.01]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import grad

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
L, H, P = 2, 64, 64
EVAL_DRAWS = 200
LOG_2PI = np.log(2 * np.pi)
SHAPES = {"W1": (L, H), "b1": (H,), "W2": (H, P), "b2": (P,),        # decoder
          "E1": (P, H), "c1": (H,), "Em": (H, L), "Es": (H, L)}      # encoder


def load(split: str = "train") -> np.ndarray:
    """The binarized images [N, 64] of the train or test split."""
    name = "vae_digits.json" if split == "train" else "vae_digits_test.json"
    return np.asarray(json.loads((MODELS / name).read_text())["x"], dtype=float)


def init_params(rng: np.random.Generator, scale: float = 0.1) -> dict:
    """Small seeded random weights (never all zeros: hidden units would stay identical)."""
    return {name: scale * rng.standard_normal(shape) for name, shape in SHAPES.items()}


def encode(params: dict, x):
    """q(z | x) = Normal(loc, scale): loc, log scale [N, L] from images x [N, 64]."""
    h = anp.tanh(anp.dot(x, params["E1"]) + params["c1"])
    return anp.dot(h, params["Em"]), anp.dot(h, params["Es"])


def decode(params: dict, z):
    """Bernoulli logits [..., 64] of the pixels given latents z [..., L]."""
    return anp.dot(anp.tanh(anp.dot(z, params["W1"]) + params["b1"]), params["W2"]) + params["b2"]


def elbo_terms(params: dict, x, eps):
    """ELBO of each image [S, N] at reparameterized draws z = loc + scale * eps, eps [S, N, L];
    the entropy of q in closed form (Gaussian)."""
    loc, log_scale = encode(params, x)
    z = loc + anp.exp(log_scale) * eps
    logits = decode(params, z)
    log_lik = anp.sum(x * logits - anp.logaddexp(0.0, logits), axis=-1)
    log_prior = -0.5 * anp.sum(z ** 2, axis=-1) - 0.5 * L * LOG_2PI
    entropy = anp.sum(log_scale, axis=-1) + 0.5 * L * (1 + LOG_2PI)
    return log_lik + log_prior + entropy


def heldout_elbo(params: dict, x: np.ndarray, seed: int = 1) -> tuple[float, float]:
    """(mean ELBO per image, its Monte Carlo sd) on images x [N, 64], EVAL_DRAWS draws each;
    with the closed-form entropy (as in training), the MC error comes from log p only."""
    eps = np.random.default_rng(seed).standard_normal((EVAL_DRAWS, len(x), L))
    per_image = elbo_terms({k: np.asarray(v) for k, v in params.items()}, x, eps)
    return float(per_image.mean()), float(per_image.std() / np.sqrt(per_image.size))


def train(x: np.ndarray, steps: int, batch: int, lr: float, mc: int,
          seed: int) -> tuple[dict, int, float]:
    """Adam (Kingma and Ba's defaults) on the minibatch ELBO, N/B-scaled: the baseline.
    Returns (weights, steps taken, CPU seconds)."""
    start = time.process_time()
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    names = list(SHAPES)
    n = len(x)

    def loss(flat_params, xb, eps):
        return -n / len(xb) * anp.sum(elbo_terms(dict(zip(names, flat_params)), xb, eps)) / mc

    gradient = grad(loss)
    m = [np.zeros(SHAPES[k]) for k in names]
    v = [np.zeros(SHAPES[k]) for k in names]
    values = [params[k] for k in names]
    for t in range(1, steps + 1):
        rows = rng.choice(n, size=batch, replace=False)
        g = gradient(values, x[rows], rng.standard_normal((mc, batch, L)))
        for i in range(len(values)):
            m[i] = 0.9 * m[i] + 0.1 * g[i]
            v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2
            values[i] = values[i] - lr * (m[i] / (1 - 0.9 ** t)) / (
                np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    return dict(zip(names, values)), steps, time.process_time() - start


def fit_ppl(x: np.ndarray, steps: int, batch: int, lr: float, mc: int,
            seed: int) -> tuple[dict, int, float]:
    """models/vae_digits.ppl fitted by ppl with --batch N=B on the images ``x``: its `param`
    values, steps taken and CPU seconds. The clock covers the fit as the API runs it (data
    validation, compile, step-size search, steps, reading the params back); parsing the model
    file comes before it (printed apart: a once-per-process cost, mostly building the parser),
    as the baseline's data loading does."""
    import ppl
    start = time.process_time()
    model = ppl.load(MODELS / "vae_digits.ppl")
    print(f"ppl: model file parsed and checked in {time.process_time() - start:.2f} s CPU "
          "(not in the epoch time)", flush=True)
    data = {"N": len(x), "P": x.shape[1], "x": x.astype(np.int64)}
    start = time.process_time()
    fit = model.fit(data, batch={"N": batch}, iter=steps, lr=lr, mc_samples=mc, seed=seed,
                    guide="meanfield", draws=10)
    params = {k: np.asarray(v) for k, v in fit.params().items()}
    seconds = time.process_time() - start
    # not fit.convergence_line(): its k-hat evaluates the whole-data model at 4,000 draws,
    # a diagnostic that costs more than the fit itself and is no part of training
    print(f"ppl: {len(fit.elbo)} steps, stopped: {fit.result.reason}", flush=True)
    return params, len(fit.elbo), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--mc-samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["ppl", "autograd"])
    args = parser.parse_args()
    x_train, x_test = load("train"), load("test")
    sys.path.insert(0, str(ROOT))
    import ppl  # noqa: F401 - imported before the clock starts: importing is not training
    steps_per_epoch = len(x_train) / args.batch
    steps = int(round(args.epochs * steps_per_epoch))
    print(f"{len(x_train)} train / {len(x_test)} test images, B={args.batch}, {steps} steps "
          f"({args.epochs} epochs), Adam lr {args.lr}, S={args.mc_samples}", flush=True)
    results = {}
    for name in ("autograd", "ppl"):
        if args.only and name != args.only:
            continue
        run = train if name == "autograd" else fit_ppl
        params, taken, seconds = run(x_train, steps, args.batch, args.lr, args.mc_samples,
                                     args.seed)
        epochs = taken / steps_per_epoch      # ppl's convergence rule may stop it early
        value, sd = heldout_elbo(params, x_test)
        results[name] = (value, seconds / epochs)
        print(f"{name:9s} held-out ELBO {value:.3f} ± {sd:.3f} nats/image, "
              f"{1000 * seconds / epochs:.1f} ms CPU/epoch over {epochs:.1f} epochs", flush=True)
    if len(results) == 2:
        gap = results["autograd"][0] - results["ppl"][0]
        ratio = results["ppl"][1] / results["autograd"][1]
        print(f"ppl - autograd ELBO: {-gap:+.3f} nats/image (target > -1); "
              f"epoch time ratio ppl/autograd {ratio:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
