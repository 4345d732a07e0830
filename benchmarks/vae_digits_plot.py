"""Fit models/vae_digits.ppl, report its held-out ELBO per image, and draw a PNG.

The PNG has two panels: test images (odd rows) above their reconstructions (even rows: pixel
probabilities decoded from the encoder's mean), and the decoder's pixel probabilities on a
regular grid of the 2-D latent space (standard normal quantiles 0.05..0.95 on each axis).

Run: OMP_NUM_THREADS=1 python benchmarks/vae_digits_plot.py [--epochs 200] [--out vae_digits.png]
(--engine autograd draws the same figure from the hand-written baseline instead.)
Needs matplotlib (the `plot` extra).
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from vae_benchmark import decode, encode, fit_ppl, heldout_elbo, load, train


def draw(params: dict, x_test: np.ndarray, path: str, columns: int = 12, grid: int = 12) -> None:
    """Write the reconstruction and latent-grid panels of ``params`` to the PNG ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    images = x_test[: 2 * columns]
    recon = expit(decode(params, encode(params, images)[0]))
    rows = [images[:columns], recon[:columns], images[columns:], recon[columns:]]
    top = np.block([[_tile(r[i]) for i in range(columns)] for r in rows])
    q = norm.ppf(np.linspace(0.05, 0.95, grid))
    z = np.array([[a, b] for b in q[::-1] for a in q])
    decoded = expit(decode(params, z)).reshape(grid, grid, 8, 8)
    bottom = np.block([[_tile(decoded[i, j].ravel()) for j in range(grid)] for i in range(grid)])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 6))
    ax1.imshow(top, cmap="gray_r", vmin=0, vmax=1)
    ax1.set_title("test images (rows 1, 3) and reconstructions (rows 2, 4)")
    ax2.imshow(bottom, cmap="gray_r", vmin=0, vmax=1)
    ax2.set_title("decoded latent grid (normal quantiles 0.05..0.95)")
    for ax in (ax1, ax2):
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")


def _tile(pixels: np.ndarray) -> np.ndarray:
    """One 8x8 image with a 1-pixel white border on the right and bottom [9, 9]."""
    return np.pad(np.reshape(pixels, (8, 8)), ((0, 1), (0, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=["ppl", "autograd"], default="ppl")
    parser.add_argument("--out", default="vae_digits.png")
    args = parser.parse_args()
    x_train, x_test = load("train"), load("test")
    steps = int(round(args.epochs * len(x_train) / 128))
    run = fit_ppl if args.engine == "ppl" else train   # both: (params, steps, CPU seconds)
    params = run(x_train, steps, 128, args.lr, 1, args.seed)[0]
    value, sd = heldout_elbo(params, x_test)
    print(f"held-out ELBO {value:.3f} ± {sd:.3f} nats per image ({len(x_test)} test images)")
    draw(params, x_test, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
