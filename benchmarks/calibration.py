"""Are ppl's verdicts honest? Simulation-based calibration of --guide auto on small models.

For each model below (written here as .ppl text), R times: the latents are drawn from the
prior and the data from them (``Model.prior_predictive``: one call of R draws), the model is
fitted to that data with the default options (``--guide auto``, seed r), and for every scalar
latent the rank of the true value among the fit's posterior draws is recorded, with the fit's
verdict, k̂, family and whether its summary was importance-corrected. If the fits were exact
posteriors the ranks would be uniform and the central 50% and 90% intervals would cover the
true value 50% and 90% of the time (Talts, Betancourt, Simpson, Vehtari, Gelman 2018,
"Validating Bayesian inference algorithms with simulation-based calibration"; for variational
fits Yao, Vehtari, Simpson, Gelman 2018, "Yes, but did it work?", section 5).

The table groups the fits of each model by verdict. The verdict depends on the data (and the
fit's seed) only, so the ranks of an exact posterior are uniform within each group too. Per
group: coverage of each interval over all scalar latents of those fits, ± its binomial Monte
Carlo standard error at the nominal rate and, in brackets, how many of those it is off (the
latents of one fit are not independent: the se is a lower bound); a chi-square test of
uniformity of the ranks in 10 bins (scipy.stats.chisquare), pooled over the latents and, for
the latent with the smallest p-value, alone (with L latents, compare it with 0.05 / L). For
skewed_rate, whose posterior is known (Gamma-Poisson), and the logistic regression (importance
sampling in numpy, ``logistic_reference``), a second table compares the fits with that
reference on the same data sets: the coverage the reference's own intervals reach (at R = 100
an exact posterior's coverage is itself 2-3 binomial se off at times), the reference's mass of
the fits' intervals and the fits' mean and sd errors.

    OMP_NUM_THREADS=1 python benchmarks/calibration.py               # R = 100 per model
    OMP_NUM_THREADS=1 python benchmarks/calibration.py --reps 20 --only skewed_rate
    OMP_NUM_THREADS=1 python benchmarks/calibration.py --reps 100 --fits fits.csv  # each fit

``--seeds`` is an alias of ``--reps`` (the fits use seeds 0..R-1; the simulated data use
``--data-seed``; one call draws all R, so the data sets of ``--reps 20`` are not the first 20
of ``--reps 100``). Ranks are taken among the first 999 of the fit's 1000 draws, so a rank is
0..999 and each bin holds 100 of them.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ppl  # noqa: E402
from ppl import ir  # noqa: E402

RANK_DRAWS = 999   # ranks 0..999: 10 bins of exactly 100 ranks each
BINS = 10

EIGHT_SCHOOLS = """
data J: int
data y: real[J]
data sigma: real<lower=0>[J]
sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(5)
sample eta: real[J] ~ Normal(0, 1)
observe y ~ Normal(mu + tau * eta, sigma)
"""

LOGISTIC = """
data N: int
data K: int
data X: real[N, K]
data y: int[N]
sample alpha ~ Normal(0, 2.5)
sample beta: real[K] ~ Normal(0, 1)
observe y ~ Bernoulli(logit=alpha + X @ beta)
"""

POISSON = """
data N: int
data x: real[N]
data y: int[N]
sample alpha ~ Normal(1, 1)
sample beta ~ Normal(0, 0.5)
observe y ~ Poisson(log_rate=alpha + beta * x)
"""

HIERARCHICAL = """
data N: int
data G: int
data group: int[N]
data y: real[N]
sample mu ~ Normal(0, 5)
sample tau ~ HalfNormal(2)
sample theta: real[G] ~ Normal(mu, tau)
sample sigma ~ HalfNormal(2)
observe y ~ Normal(theta[group], sigma)
"""

SKEWED_RATE = """
data N: int
data y: int[N]
sample rate ~ Gamma(2, 1)
observe y ~ Poisson(rate)
"""


REFERENCE_DRAWS = 4000


def exact_rate(data: dict, rng) -> tuple[dict[str, np.ndarray], float]:
    """skewed_rate's posterior, Gamma(2 + sum y, 1 + N) (conjugate): draws, k̂ -inf (exact)."""
    shape, rate = 2 + np.sum(data["y"]), 1 + data["N"]
    return {"rate": rng.gamma(shape, 1 / rate, REFERENCE_DRAWS)}, -np.inf


def logistic_reference(data: dict, rng) -> tuple[dict[str, np.ndarray], float]:
    """The logistic regression's posterior by importance sampling, written here in numpy:
    20,000 draws of a multivariate t (5 degrees of freedom) at the posterior mode with 1.5
    times the inverse Hessian, resampled by their weights; and the weights' PSIS k̂."""
    from scipy import optimize
    from scipy.special import log_expit

    from ppl.infer.psis import psis
    X, y = np.asarray(data["X"], dtype=float), np.asarray(data["y"], dtype=float)

    def log_p(theta):
        eta = theta[..., :1] + theta[..., 1:] @ X.T
        return (stats.norm.logpdf(theta[..., 0], 0, 2.5)
                + stats.norm.logpdf(theta[..., 1:], 0, 1).sum(-1)
                + (y * log_expit(eta) + (1 - y) * log_expit(-eta)).sum(-1))
    mode = optimize.minimize(lambda t: -log_p(t), np.zeros(X.shape[1] + 1), method="BFGS")
    proposal = stats.multivariate_t(mode.x, 1.5 * mode.hess_inv, df=5, seed=rng)
    theta = proposal.rvs(20000)
    log_w = log_p(theta) - proposal.logpdf(theta)
    w = np.exp(log_w - log_w.max())
    theta = theta[rng.choice(len(w), REFERENCE_DRAWS, p=w / w.sum())]
    names = ["alpha"] + [f"beta[{j}]" for j in range(X.shape[1])]
    return dict(zip(names, theta.T)), psis(log_w).khat


REFERENCE = {"skewed_rate": exact_rate, "logistic_regression": logistic_reference}


def fixed_data() -> dict[str, tuple[str, dict]]:
    """Model name -> (text, data without the observed y); covariates from a fixed seed."""
    rng = np.random.default_rng(20261201)
    X = rng.standard_normal((50, 3))
    x = rng.standard_normal(20)
    return {
        "eight_schools": (EIGHT_SCHOOLS, {"J": 8, "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}),
        "logistic_regression": (LOGISTIC, {"N": 50, "K": 3, "X": X}),
        "poisson_regression": (POISSON, {"N": 20, "x": x}),
        "hierarchical_normal": (HIERARCHICAL, {"N": 24, "G": 6,
                                               "group": np.repeat(np.arange(6), 4)}),
        "skewed_rate": (SKEWED_RATE, {"N": 2}),
    }


def scalars(values: dict[str, np.ndarray], names) -> dict[str, np.ndarray]:
    """name[i] -> the draws of each scalar element [n] of the latents ``names``."""
    out = {}
    for name in names:
        v = np.asarray(values[name])
        if v.ndim == 1:
            out[name] = v
        else:
            for i in range(v.shape[1]):
                out[f"{name}[{i}]"] = v[:, i]
    return out


def simulate(model_name: str, reps: int, data_seed: int) -> tuple[ppl.Model, list, list]:
    """The model, R data sets and the R true values of its scalar latents."""
    text, data = fixed_data()[model_name]
    model = ppl.compile(text, f"<{model_name}>")
    prior = model.prior_predictive(data, n=reps, seed=data_seed)
    truths = scalars(prior, [s.name for s in model.ir.statements if isinstance(s, ir.Latent)])
    datasets = [{**data, "y": prior["y"][r]} for r in range(reps)]
    return model, datasets, [{k: float(v[r]) for k, v in truths.items()} for r in range(reps)]


def run_one(model, data: dict, truth: dict[str, float], seed: int,
            reference=None) -> list[dict]:
    """Fit one simulated data set; one row per scalar latent. With ``reference`` (data, rng ->
    draws of the exact posterior by element, k̂), also the posterior mass of the fit's 50% and
    90% intervals, the fit's mean and sd errors and whether the reference's own intervals
    cover the true value."""
    started = time.process_time()
    fit = model.fit(data, seed=seed)
    draws = scalars(fit.draws(), {k.split("[")[0] for k in truth})
    verdict = fit.verdict()
    common = {"seed": seed, "level": verdict.level, "khat": fit.khat,
              # the rung as kept: '(t)' under Student-t noise, '(moved)' (auto.Tried.name)
              "corrected": fit.corrected, "family": fit.auto.tried[fit.auto.chosen].name,
              "tried": "/".join(t.name for t in fit.auto.tried),
              "seconds": time.process_time() - started}
    ref, ref_khat = reference(data, np.random.default_rng(seed)) if reference else ({}, None)
    rows = []
    for element, true in truth.items():
        d = draws[element][:RANK_DRAWS]
        q = np.quantile(d, [0.05, 0.25, 0.75, 0.95])
        rows.append({**common, "latent": element, "true": true,
                     "rank": int(np.sum(d < true)),
                     "in50": bool(q[1] <= true <= q[2]), "in90": bool(q[0] <= true <= q[3])})
        if reference is not None:
            x = ref[element]
            rq = np.quantile(x, [0.05, 0.25, 0.75, 0.95])
            rows[-1].update(mass50=np.mean((q[1] <= x) & (x <= q[2])),
                            mass90=np.mean((q[0] <= x) & (x <= q[3])),
                            mean_error=(d.mean() - x.mean()) / x.std(),
                            sd_error=d.std() / x.std() - 1, ref_khat=ref_khat,
                            ref_in50=bool(rq[1] <= true <= rq[2]),
                            ref_in90=bool(rq[0] <= true <= rq[3]))
    return rows


def chisq_p(ranks) -> float:
    counts = np.bincount(np.asarray(ranks) * BINS // (RANK_DRAWS + 1), minlength=BINS)
    return float(stats.chisquare(counts).pvalue)


def coverage(hits, nominal: float) -> str:
    """Coverage ± its binomial standard error at the nominal rate (not at the estimate: 23 of
    23 covered is 1.000 ± 0.063, not ± 0), and how many of those it is off nominal."""
    hits = np.asarray(hits, dtype=float)
    se = np.sqrt(nominal * (1 - nominal) / hits.size)
    return f"{hits.mean():.3f} ± {se:.3f} ({(hits.mean() - nominal) / se:+.1f})"


def group_line(name: str, level: str, rows: list[dict]) -> str:
    fits = len({r["seed"] for r in rows})
    by_latent = {}
    for r in rows:
        by_latent.setdefault(r["latent"], []).append(r)
    worst = min(by_latent, key=lambda e: chisq_p([r["rank"] for r in by_latent[e]]))
    worst_p = chisq_p([r["rank"] for r in by_latent[worst]])
    khats = np.array([r["khat"] for r in {r["seed"]: r for r in rows}.values()])
    corrected = sum(r["corrected"] for r in {r["seed"]: r for r in rows}.values())
    families = {}
    for r in {r["seed"]: r for r in rows}.values():
        families[r["family"]] = families.get(r["family"], 0) + 1
    fam = ", ".join(f"{f} {n}" for f, n in sorted(families.items(), key=lambda x: -x[1]))
    return (f"| {name} | {level} | {fits} | {fam} | {np.median(khats):.2f} "
            f"({khats.min():.2f}-{khats.max():.2f}) | {corrected} | "
            f"{coverage([r['in50'] for r in rows], 0.5)} | "
            f"{coverage([r['in90'] for r in rows], 0.9)} | "
            f"{chisq_p([r['rank'] for r in rows]):.3f} | {worst} {worst_p:.3f} |")


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| model | verdict | fits | family chosen | k̂ median (range) | corrected | "
             "50% coverage | 90% coverage | ranks χ² p (all latents) | worst latent: χ² p |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for level in ("reliable", "usable with care", "unreliable"):
            group = [r for r in rows if r["level"] == level]
            if group:
                lines.append(group_line(name, level, group))
        if len({r["level"] for r in rows}) > 1:
            lines.append(group_line(name, "all", rows))
    return "\n".join(lines)


def reference_table(results: dict[str, list[dict]]) -> str:
    """Markdown: per model with a reference posterior and verdict, the coverage the
    reference's own intervals reach on the same data sets and true values (what an exact
    posterior gets there: the simulation's own noise), the mean posterior mass of the fits'
    50% and 90% intervals (what their coverage tends to, without that noise), and the fits'
    mean and sd errors against the reference."""
    lines = ["| model | verdict | fits | reference k̂, largest | reference's coverage 50% / 90% | "
             "posterior mass of the fits' 50% / 90% intervals | "
             "mean error / sd: mean, largest | sd error: mean, largest |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for level in ("reliable", "usable with care", "unreliable"):
            group = [r for r in rows if r["level"] == level]
            if not group:
                continue
            mean_error = np.abs([r["mean_error"] for r in group])
            sd_error = np.array([r["sd_error"] for r in group])
            khat = max(r["ref_khat"] for r in group)
            lines.append(
                f"| {name} | {level} | {len(group) // len({r['latent'] for r in group})} | "
                f"{'exact' if khat == -np.inf else f'{khat:.2f}'} | "
                f"{np.mean([r['ref_in50'] for r in group]):.3f} / "
                f"{np.mean([r['ref_in90'] for r in group]):.3f} | "
                f"{np.mean([r['mass50'] for r in group]):.3f} / "
                f"{np.mean([r['mass90'] for r in group]):.3f} | "
                f"{mean_error.mean():.3f}, {mean_error.max():.3f} | "
                f"{np.abs(sd_error).mean():.3f}, {sd_error[np.argmax(np.abs(sd_error))]:+.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", "--seeds", type=int, default=100,
                        help="simulated data sets per model (fit seeds 0..R-1)")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="seed of the prior draws that make the data sets")
    parser.add_argument("--only", nargs="*", choices=list(fixed_data()),
                        help="model names (default: all)")
    parser.add_argument("--fits", help="write every fit's row per latent to this CSV")
    args = parser.parse_args(argv)
    names = args.only or list(fixed_data())
    results, started = {}, time.process_time()
    for name in names:
        model, datasets, truths = simulate(name, args.reps, args.data_seed)
        rows = []
        for r in range(args.reps):
            rows += run_one(model, datasets[r], truths[r], r, REFERENCE.get(name))
        results[name] = rows
        print(f"{name}: {args.reps} fits, {sum(r['seconds'] for r in rows[::len(truths[0])]):.0f}"
              f" s of CPU", file=sys.stderr)
    print(table(results))
    if any(name in REFERENCE for name in results):
        print()
        print(reference_table({n: rows for n, rows in results.items() if n in REFERENCE}))
    print(f"\n{args.reps} simulated data sets per model, data seed {args.data_seed}; "
          f"{time.process_time() - started:.0f} s of CPU in all")
    if args.fits:
        with open(args.fits, "w", newline="") as f:
            all_rows = [{"model": n, **r} for n, rows in results.items() for r in rows]
            fields = list(dict.fromkeys(k for row in all_rows for k in row))
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
