"""Empirical Bayes params with and without the rounds on fixed draws that finish an ADVI fit
with params (ppl/infer/advi.py, PARAM_ROUNDS): how far each fit's param is from the exact
MAP-II, and the CPU of the fits, in one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/param_polish.py

The models are tests/unit/test_params.py's: empirical-Bayes eight schools (noncentred and
centred; 8 groups, data seed 186), whose marginal likelihood of tau is flat from its maximum
down to 0, and a scale started near 0 (docs/trust.md); and a Gamma-Poisson model whose mean
field is not exact given its params, where the rounds reach the ELBO's maximum, not the
MAP-II. "without" patches advi._polishes to say no, which is the code before 2026-12-05.
The fits are mean field's, or full rank's where a row says so (guide auto, on a model with
params, fits both: benchmarks/params_auto.py).
``--large`` adds the cost on a larger model: models/hierarchical_intercepts.ppl with its mean
and two scales as params, on 20,000 rows in 50 groups (no exact reference: the params with
and without, to 4 digits). Since 2026-12-05 that model is beyond advi.POLISH_MAX_ELEMENTS, so
the two are the same fit.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import optimize, stats

import ppl
from ppl.infer import advi

SCHOOLS = ("data J: int\ndata y: real[J]\ndata sigma: real<lower=0>[J]\nparam mu: real\n"
           "param tau: real<lower=0> ~ HalfNormal(3)\n")
NONCENTRED = SCHOOLS + ("sample eta: real[J] ~ Normal(0, 1)\nlet theta = mu + tau * eta\n"
                        "observe y ~ Normal(theta, sigma)\n")
CENTRED = SCHOOLS + "sample theta: real[J] ~ Normal(mu, tau)\nobserve y ~ Normal(theta, sigma)\n"
GAMMA_POISSON = ("data J: int\ndata y: int[J]\nparam a: real<lower=0>\nparam b: real<lower=0>\n"
                 "sample lam: real<lower=0>[J] ~ Gamma(a, b)\nobserve y ~ Poisson(lam)\n")
NEAR_ZERO = ("data N: int\ndata y: real[N]\nparam tau: real<lower=0> ~ Normal(0, 0.3)\n"
             "sample z: real[N] ~ Normal(0, tau)\nobserve y ~ Normal(z, 1)\n")


def schools_data(seed: int = 186) -> dict:
    sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18.0]) / 10
    rng = np.random.default_rng(seed)
    return {"J": 8, "y": rng.normal(rng.normal(1.0, 0.6, 8), sigma), "sigma": sigma}


def schools_map(data: dict) -> float:
    """tau at the maximum of log p(y | mu, tau) + log HalfNormal(tau; 3), over mu and tau."""
    y, sigma = data["y"], data["sigma"]

    def minus(p):
        tau = np.exp(p[1])
        return -(stats.norm.logpdf(y, p[0], np.sqrt(sigma ** 2 + tau ** 2)).sum()
                 + stats.halfnorm.logpdf(tau, scale=3))

    return float(np.exp(optimize.minimize(minus, [0.0, 0.0], method="Nelder-Mead",
                                          options={"xatol": 1e-10, "fatol": 1e-12}).x[1]))


def gamma_poisson_data() -> dict:
    rng = np.random.default_rng(3)
    return {"J": 30, "y": rng.poisson(rng.gamma(4.0, 1 / 2.0, 30))}


def gamma_poisson_map(y: np.ndarray) -> float:
    """a at the maximum of the negative binomial marginal likelihood over a and b."""
    def minus(p):
        a, b = np.exp(p)
        return -stats.nbinom.logpmf(y, a, b / (1 + b)).sum()

    return float(np.exp(optimize.minimize(minus, [0.0, 0.0], method="Nelder-Mead",
                                          options={"xatol": 1e-10, "fatol": 1e-12,
                                                   "maxiter": 20000}).x[0]))


def near_zero_map(y: np.ndarray) -> float:
    return float(optimize.minimize_scalar(
        lambda t: -(stats.norm.logpdf(y, 0, np.sqrt(1 + t * t)).sum()
                    + stats.norm.logpdf(t, 0, 0.3)),
        bounds=(0.01, 3), method="bounded", options={"xatol": 1e-10}).x)


def large_cost(seeds: int) -> None:
    """CPU with / without the rounds, and the params, on a 20,000-row varying intercept model."""
    from pathlib import Path
    models = Path(__file__).resolve().parents[1] / "models"
    text = (models / "hierarchical_intercepts.ppl").read_text()
    for latent, param in (("sample mu_alpha ~ Normal(0, 5)", "param mu_alpha: real"),
                          ("sample sigma_alpha ~ HalfCauchy(2)",
                           "param sigma_alpha: real<lower=0>"),
                          ("sample sigma ~ Exponential(1)", "param sigma: real<lower=0>")):
        text = text.replace(latent, param)
    rng = np.random.default_rng(0)
    N, G = 20_000, 50
    group, x = rng.integers(0, G, N), rng.normal(size=N)
    y = rng.normal(1, 0.5, G)[group] + 0.3 * x + rng.normal(0, 1, N)
    data = {"N": N, "G": G, "group": group, "x": x, "y": y}
    model = ppl.compile(text)
    polishes = advi._polishes
    for seed in range(seeds):
        row = {}
        for on in (False, True):
            advi._polishes = polishes if on else (lambda compiled, guide: False)
            start = time.process_time()
            fit = model.fit(data, seed=seed, guide="meanfield")
            row[on] = (time.process_time() - start, fit.params())
        advi._polishes = polishes
        shown = {on: " ".join(f"{k} {float(v):.4f}" for k, v in row[on][1].items())
                 for on in row}
        print(f"20,000 rows, seed {seed}: CPU with / without {row[True][0] / row[False][0]:.2f}; "
              f"without: {shown[False]}; with: {shown[True]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    schools = schools_data()
    near = {"N": 40, "y": 2 * np.random.default_rng(0).standard_normal(40)}
    best = schools_map(schools)
    counts = gamma_poisson_data()
    # (name, source, data, the param compared, its MAP-II, guide); the Gamma-Poisson's mean
    # field (in log lam) does not hold the exact posterior given a and b, so the ELBO's
    # maximum is not the MAP-II there
    cases = [("noncentred schools", NONCENTRED, schools, "tau", best, "meanfield"),
             ("centred schools", CENTRED, schools, "tau", best, "meanfield"),
             ("scale near zero", NEAR_ZERO, near, "tau", near_zero_map(near["y"]), "meanfield"),
             ("noncentred schools, fullrank", NONCENTRED, schools, "tau", best, "fullrank"),
             ("centred schools, fullrank", CENTRED, schools, "tau", best, "fullrank"),
             ("Gamma-Poisson, 30 groups", GAMMA_POISSON, counts, "a",
              gamma_poisson_map(counts["y"]), "meanfield")]
    polishes = advi._polishes
    print(f"| model | fits | max abs(param - MAP-II) | param range | not converged | CPU with / "
          f"without |\n|---|---|---|---|---|---|")
    for name, source, data, param, best, guide in cases:
        model = ppl.compile(source)
        row = {}
        for on in (False, True):
            advi._polishes = polishes if on else (lambda compiled, guide: False)
            taus, stopped, start = [], 0, time.process_time()
            for seed in range(args.seeds):
                fit = model.fit(data, seed=seed, guide=guide)
                taus.append(float(fit.params()[param]))
                stopped += not fit.converged
            row[on] = (np.asarray(taus), stopped, time.process_time() - start)
        advi._polishes = polishes
        for on, label in ((False, "without"), (True, "with")):
            taus, stopped, _ = row[on]
            print(f"| {name}: {param} (MAP-II {best:.4f}) | {label} | "
                  f"{np.max(np.abs(taus - best)):.4f} | {taus.min():.3f}-{taus.max():.3f} | "
                  f"{stopped} | "
                  f"{row[True][2] / row[False][2]:.2f} |")
    if args.large:
        large_cost(2)


if __name__ == "__main__":
    main()
