"""Write the data files (models/NAME.json) of the example models in models/.

Run `python models/make_data.py` from anywhere; it rewrites every JSON file it owns.
Synthetic data come from numpy Generators with fixed seeds (one per model, so changing one
model's data leaves the others alone); the eight schools data is the real, literal one.
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _round(a: np.ndarray, digits: int = 4) -> list:
    """Floats rounded for short, readable files (the models do not need more digits)."""
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def eight_schools() -> dict:
    # Rubin (1981); Gelman et al., Bayesian Data Analysis, 3rd ed., sec. 5.5.
    return {
        "J": 8,
        "y": [28, 8, -3, 7, -1, 1, 18, 12],
        "sigma": [15, 10, 16, 11, 9, 11, 10, 18],
    }


def linear_regression(rng: np.random.Generator) -> dict:
    n, k = 100, 3
    x = rng.normal(size=(n, k))
    y = 1.5 + x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0.0, 0.8, n)
    return {"N": n, "K": k, "X": _round(x), "y": _round(y)}


def logistic_regression(rng: np.random.Generator) -> dict:
    n, k = 200, 2
    x = rng.normal(size=(n, k))
    eta = -0.5 + x @ np.array([1.2, -0.8])
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return {"N": n, "K": k, "X": _round(x), "y": y.tolist()}


def hierarchical_intercepts(rng: np.random.Generator) -> dict:
    n, g = 160, 8
    alpha = rng.normal(2.0, 1.0, g)
    group = np.arange(n) % g  # every group gets n / g observations
    x = rng.normal(5.0, 2.0, n)  # not centred: the model centres it
    y = alpha[group] + 0.7 * (x - x.mean()) + rng.normal(0.0, 1.0, n)
    return {"N": n, "G": g, "group": group.tolist(), "x": _round(x), "y": _round(y)}


def poisson_regression(rng: np.random.Generator) -> dict:
    n = 100
    x = rng.normal(size=n)
    exposure = rng.uniform(0.5, 2.0, n)
    y = rng.poisson(exposure * np.exp(0.5 + 0.6 * x))
    return {"N": n, "x": _round(x), "exposure": _round(exposure), "y": y.tolist()}


def beta_binomial(rng: np.random.Generator) -> dict:
    n_exp = 10
    n = rng.integers(10, 41, n_exp)
    y = rng.binomial(n, 0.3)
    return {"N": n_exp, "n": n.tolist(), "y": y.tolist()}


def gamma_outcome(rng: np.random.Generator) -> dict:
    n, shape = 100, 4.0
    x = rng.uniform(-1.0, 1.0, n)
    mean = np.exp(1.0 + 0.8 * x)
    y = rng.gamma(shape, mean / shape)  # numpy's gamma takes (shape, scale)
    return {"N": n, "x": _round(x), "y": _round(y)}


def lognormal_outcome(rng: np.random.Generator) -> dict:
    n = 100
    x = rng.normal(size=n)
    y = np.exp(0.5 + 0.3 * x + rng.normal(0.0, 0.5, n))
    return {"N": n, "x": _round(x), "y": _round(y)}


def dirichlet_categorical(rng: np.random.Generator) -> dict:
    k, n = 4, 100
    y = rng.choice(k, size=n, p=[0.1, 0.2, 0.3, 0.4])
    return {"K": k, "N": n, "alpha": [1.0] * k, "y": y.tolist()}


def robust_regression(rng: np.random.Generator) -> dict:
    n, k = 100, 2
    x = rng.normal(size=(n, k))
    # Student-t noise with 3 degrees of freedom: a few large outliers.
    y = 1.0 + x @ np.array([2.0, 0.0]) + 0.5 * rng.standard_t(3.0, n)
    return {"N": n, "K": k, "X": _round(x), "y": _round(y)}


def ar1(rng: np.random.Generator) -> dict:
    t, mu, phi, sigma = 150, 1.0, 0.6, 0.5
    y = np.empty(t)
    y[0] = rng.normal(mu, sigma / np.sqrt(1.0 - phi**2))  # stationary start
    for i in range(1, t):
        y[i] = mu + phi * (y[i - 1] - mu) + rng.normal(0.0, sigma)
    return {"T": t, "y": _round(y)}


def overdispersed_counts(rng: np.random.Generator) -> dict:
    n, phi = 120, 3.0
    x = rng.normal(size=n)
    mu = np.exp(1.5 + 0.5 * x)
    # numpy's negative_binomial(n, p) with n = phi, p = phi / (phi + mu) has mean mu and
    # variance mu + mu^2 / phi, the language's NegativeBinomial(mu, phi).
    y = rng.negative_binomial(phi, phi / (phi + mu))
    return {"N": n, "x": _round(x), "y": y.tolist()}


def tumor_rates(rng: np.random.Generator) -> dict:
    n_groups, m, kappa = 20, 0.15, 15.0
    n = rng.integers(15, 51, n_groups)
    p = rng.beta(m * kappa, (1.0 - m) * kappa, n_groups)
    y = rng.binomial(n, p)
    return {"N": n_groups, "n": n.tolist(), "y": y.tolist()}


def seeds(rng: np.random.Generator) -> dict:
    n_plates = 21
    x = np.stack([np.arange(n_plates) % 2, (np.arange(n_plates) // 2) % 2], axis=1)
    n = rng.integers(10, 81, n_plates)
    eta = (-0.5 + 0.1 * x[:, 0] + 1.3 * x[:, 1] - 0.8 * x[:, 0] * x[:, 1]
           + rng.normal(0.0, 0.3, n_plates))
    y = rng.binomial(n, 1.0 / (1.0 + np.exp(-eta)))
    return {"N": n_plates, "n": n.tolist(), "x": _round(x), "y": y.tolist()}


def multinomial_logistic(rng: np.random.Generator) -> dict:
    n, d, c = 150, 2, 3
    x = rng.normal(size=(n, d))
    logits = np.array([0.5, 0.0, -0.5]) + x @ np.array([[1.0, 0.0, -1.0], [-0.5, 1.0, 0.0]])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in p])
    return {"N": n, "D": d, "C": c, "X": _round(x), "y": y.tolist()}


# name -> (data function, seed); a seed of None marks literal data.
DATASETS = {
    "eight_schools": (eight_schools, None),
    "linear_regression": (linear_regression, 101),
    "logistic_regression": (logistic_regression, 102),
    "hierarchical_intercepts": (hierarchical_intercepts, 103),
    "poisson_regression": (poisson_regression, 104),
    "beta_binomial": (beta_binomial, 105),
    "gamma_outcome": (gamma_outcome, 106),
    "lognormal_outcome": (lognormal_outcome, 107),
    "dirichlet_categorical": (dirichlet_categorical, 108),
    "robust_regression": (robust_regression, 109),
    "ar1": (ar1, 110),
    "overdispersed_counts": (overdispersed_counts, 111),
    "tumor_rates": (tumor_rates, 112),
    "seeds": (seeds, 113),
    "multinomial_logistic": (multinomial_logistic, 114),
}


def _dumps(data: dict) -> str:
    """One top-level name per line: diff-friendly without putting every number on a line."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> None:
    for name, (make, seed) in DATASETS.items():
        data = make() if seed is None else make(np.random.default_rng(seed))
        (HERE / f"{name}.json").write_text(_dumps(data))
        print(f"wrote {HERE / (name + '.json')}")


if __name__ == "__main__":
    main()
