"""Can importance sampling from a heavy-tailed proposal replace the flow where auto skips full
rank? A probe of issue 11's gp_pois_regr (docs/history/trust-log.md, "Third attempt").

For each posterior and seed: the mean-field fit and the Gaussian N(m, W W^T) full rank would
start from (``ppl.infer.auto.fullrank_start``), made exactly as ``--guide auto`` makes them
(same seed, same stream). From that Gaussian ("start") and from the mean-field guide ("mf"),
fixed proposals with the same location and scale matrix: the Gaussian itself, multivariate
Student-t with nu degrees of freedom and the scale times s, and a defensive mixture
0.5 Gaussian + 0.5 t. Then an adaptive one ("adapt"): a t5 moved to the PSIS-weighted mean and
covariance of its own draws, ADAPT_ITERS rounds of 4000 draws (the first two with tempered
weights w^0.3, w^0.6), a fixed point no fixed proposal of this kind can beat by much.
Per proposal, from 4000 draws and from 16000 (the first 4000 and more of one stream): PSIS k̂,
the effective sample size of the smoothed weights, and the worst mean error (reference sds)
and sd deviation of the PSIS-weighted summary (posterior.Summary.from_draws, as a corrected
fit's summary is made) against the posteriordb reference; CPU seconds of the draws and log
joint. "accepted" applies the rule a rung would use: k̂ below its threshold and an ESS of at
least max(400, 10% of the draws).

    python benchmarks/importance_probe.py --seeds 5
    python benchmarks/importance_probe.py --only eight_schools-eight_schools_centered --seeds 3
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import gammaln

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from accuracy import score  # noqa: E402

import ppl  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402
from ppl.infer.psis import psis  # noqa: E402
from ppl.options import FitOptions  # noqa: E402
from ppl.posterior import Summary  # noqa: E402

NAME = "gp_pois_regr-gp_pois_regr"
DRAWS = (4000, 16000)
# (kind, nu, scale factor s): "n" Gaussian, "t" Student-t, "mix" 0.5 Gaussian + 0.5 t
PROPOSALS = (("n", None, 1.0), ("t", 3, 1.0), ("t", 5, 1.0), ("t", 10, 1.0), ("t", 5, 1.25),
             ("t", 5, 1.5), ("t", 10, 1.25), ("mix", 5, 1.0), ("mix", 3, 1.25))
ADAPT_ITERS = 8
TEMPER = (0.3, 0.6)


def _log_normal(z):
    return -0.5 * np.sum(z * z, axis=1) - 0.5 * z.shape[1] * np.log(2 * np.pi)


def _log_t(z, nu):
    D = z.shape[1]
    return (gammaln((nu + D) / 2) - gammaln(nu / 2) - 0.5 * D * np.log(nu * np.pi)
            - 0.5 * (nu + D) * np.log1p(np.sum(z * z, axis=1) / nu))


def draw(proposal, mu, L, rng, n):
    """n draws [n, D] of mu + s L z, z standard normal, t or the mixture; and log q [n]."""
    kind, nu, s = proposal
    eps = rng.standard_normal((n, mu.size))
    z = eps
    if kind != "n":
        z = eps * np.sqrt(nu / rng.chisquare(nu, n))[:, None]
        if kind == "mix":
            z = np.where((rng.random(n) < 0.5)[:, None], eps, z)
    log_q = {"n": lambda: _log_normal(z), "t": lambda: _log_t(z, nu),
             "mix": lambda: np.logaddexp(np.log(0.5) + _log_normal(z),
                                         np.log(0.5) + _log_t(z, nu))}[kind]()
    return mu + z @ (s * L).T, log_q - np.sum(np.log(np.abs(np.diag(s * L))))


def assess(compiled, reference, name, zeta, log_w) -> list[str]:
    """k̂, ESS, worst errors of the weighted summary and the acceptance, per size in DRAWS."""
    cells = []
    for n in DRAWS:
        p = psis(log_w[:n])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a far t draw may overflow a let: nan below
            pool = compiled.constrained(zeta[:n], np.random.default_rng(3))
            summary = Summary.from_draws({k: np.asarray(v) for k, v in pool.items()},
                                         np.exp(p.log_weights))
        figures = score(summary.to_dict(), reference, name)
        ok = p.khat < p.threshold and p.ess >= max(400, 0.1 * n)
        cells.append(f"{p.khat:.2f} / {p.ess:.0f} / {figures['mean_error'].max():.3f} / "
                     f"{np.abs(figures['sd_vs_reference']).max():.3f}{' ok' if ok else ''}")
    return cells


def log_weights(compiled, zeta, log_q):
    with np.errstate(all="ignore"):
        return compiled.log_joint(zeta) - log_q


def adapt(compiled, mu, L, rng):
    """ADAPT_ITERS rounds of moment matching a t5 to its own PSIS-weighted draws."""
    for i in range(ADAPT_ITERS):
        zeta, log_q = draw(("t", 5, 1.0), mu, L, rng, DRAWS[0])
        log_w = log_weights(compiled, zeta, log_q)
        beta = TEMPER[i] if i < len(TEMPER) else 1.0
        w = np.exp(psis(beta * np.where(np.isfinite(log_w), log_w, -np.inf)).log_weights)
        mu = w @ zeta
        centred = zeta - mu
        L = np.linalg.cholesky((centred * w[:, None]).T @ centred + 1e-9 * np.eye(mu.size))
    return mu, L


def probe(name: str, seed: int) -> None:
    model = ppl.load(pdb.model_path(name))
    reference = pdb.load_reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # posteriordb data carries names a model leaves out
        compiled = model.prepare(pdb.load_data(name))[2]
    options = FitOptions(seed=seed, guide="meanfield")
    rng = np.random.default_rng(seed)
    started = time.process_time()
    result = advi.fit(compiled, options, rng)
    mf_seconds = time.process_time() - started
    start = auto.fullrank_start(compiled, options, rng, result)
    m, sd = result.guide.frame(result.theta)
    frames = {"start": start.guide.frame(start.theta), "mf": (m, np.diag(sd))}
    print(f"{name} seed {seed}: mean-field fit {mf_seconds:.2f} CPU s", file=sys.stderr)
    for label, (mu, L) in frames.items():
        for proposal in PROPOSALS:
            started = time.process_time()
            zeta, log_q = draw(proposal, mu, L, np.random.default_rng([seed, 99]), DRAWS[-1])
            log_w = log_weights(compiled, zeta, log_q)
            seconds = time.process_time() - started
            row(name, seed, label, proposal, assess(compiled, reference, name, zeta, log_w),
                seconds)
    started = time.process_time()
    prng = np.random.default_rng([seed, 99])
    mu, L = adapt(compiled, *frames["start"], prng)
    zeta, log_q = draw(("t", 5, 1.0), mu, L, prng, DRAWS[-1])
    log_w = log_weights(compiled, zeta, log_q)
    row(name, seed, "adapt", ("t", 5, 1.0), assess(compiled, reference, name, zeta, log_w),
        time.process_time() - started)


def row(name, seed, label, proposal, cells, seconds) -> None:
    kind, nu, s = proposal
    what = kind if nu is None else f"{kind}{nu}"
    print(f"| {name.split('-')[-1]} | {seed} | {label} | {what} x{s:g} | {cells[0]} | "
          f"{cells[1]} | {seconds:.2f} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..n-1")
    parser.add_argument("--only", nargs="*", default=[NAME], help="posterior names")
    args = parser.parse_args(argv)
    print("| posterior | seed | from | proposal | k̂ / ESS / mean err / sd dev (4000) | "
          "k̂ / ESS / mean err / sd dev (16000) | CPU s (16000) |\n|---|---|---|---|---|---|---|")
    for name in args.only:
        for seed in range(args.seeds):
            probe(name, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
