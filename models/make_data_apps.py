"""Convert scikit-learn's digits and diabetes data sets, once, into the applications' data files.

Run `python models/make_data_apps.py` (needs scikit-learn, which is NOT a ppl dependency: it is
only used here, once; the JSON files it writes are shipped). It writes, beside this script:

- vae_digits.json / vae_digits_test.json: the 8x8 digits (1,797 images), pixels binarized at
  8 of 16 (x = 1 where the 0..16 intensity is >= 8), split 80/20 by a seeded permutation.
- bnn_regression.json (and its copy bnn_regression_map.json) / bnn_regression_test.json:
  the diabetes data (442 rows, 10 features),
  split 80/20 by a seeded permutation. Features and target are standardized with the TRAINING
  rows' mean and sd (so the test rows use the same affine map and Normal(0, 1) priors are on a
  sensible scale); the target's training mean and sd are in apps_scales.json, to report RMSE in
  the original units (disease progression one year after baseline).

Licences and attribution are in models/DATA_LICENSES.md.
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20261129


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 80/20 split: sorted train and test row indices."""
    order = rng.permutation(n)
    n_train = int(round(0.8 * n))
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def _write(name: str, payload: dict) -> None:
    (HERE / name).write_text(json.dumps(payload, separators=(",", ":")) + "\n")


def digits(rng: np.random.Generator) -> None:
    from sklearn.datasets import load_digits
    images = load_digits().data  # [1797, 64], intensities 0..16
    x = (images >= 8).astype(int)
    train, test = _split(len(x), rng)
    for name, rows in (("vae_digits.json", train), ("vae_digits_test.json", test)):
        _write(name, {"N": int(len(rows)), "P": 64, "x": x[rows].tolist()})


def diabetes(rng: np.random.Generator) -> None:
    from sklearn.datasets import load_diabetes
    bunch = load_diabetes()
    X, y = bunch.data, bunch.target
    train, test = _split(len(X), rng)
    x_mean, x_sd = X[train].mean(axis=0), X[train].std(axis=0)
    y_mean, y_sd = y[train].mean(), y[train].std()
    # bnn_regression_map.ppl (the same network fitted by MAP) gets the same training rows
    for name, rows in (("bnn_regression.json", train), ("bnn_regression_map.json", train),
                       ("bnn_regression_test.json", test)):
        Xs = (X[rows] - x_mean) / x_sd
        ys = (y[rows] - y_mean) / y_sd
        _write(name, {"N": int(len(rows)), "K": 10,
                      "X": np.round(Xs, 6).tolist(), "y": np.round(ys, 6).tolist()})
    _write("apps_scales.json", {"diabetes_y_mean": round(float(y_mean), 6),
                                "diabetes_y_sd": round(float(y_sd), 6),
                                "diabetes_features": list(bunch.feature_names),
                                "seed": SEED})


if __name__ == "__main__":
    generator = np.random.default_rng(SEED)
    digits(generator)
    diabetes(generator)
