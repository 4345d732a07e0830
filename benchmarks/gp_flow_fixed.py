"""gp_pois_regr's flow fitted on a FIXED-DRAW objective with L-BFGS (DADVI-style) from
``--guide auto``'s flow start, scored against the posteriordb reference (docs/history/trust-log.md,
"gp_pois_regr under auto", fourth attempt; not used by ppl: it did not meet the target).

Giordano, Ingram and Broderick (2024, JMLR 25(18)) fix M standard-normal draws once and
minimize the deterministic -ELBO with a quasi-Newton method (ppl/infer/dadvi.py does so for
the Gaussian families). Here the family is the flow, warm-started as advi._fit_family
warm-starts it: in the coordinates u of zeta = m0 + W u, from the identity flow. With the draws
fixed, the plain reparameterization gradient is the objective's exact gradient.

For each seed: mean field and the Gaussian auto's flow starts from, made as auto makes them
(benchmarks/gp_flow_diagnosis.py), then per variant the flow's phase on a copy of auto's
stream at that point. Per variant: CPU seconds of the phase, L-BFGS iterations, the
fixed-draw ELBO and an ELBO on FRESH new draws, k̂ and the PSIS ESS (fresh draws, as
posterior.Fit computes them), and the largest mean error (reference sds) and sd deviation of
the summary ``ppl`` would print.

    python benchmarks/gp_flow_fixed.py --seeds 0 1 2 3 4 --variants 2,256,200 2,1024,150
    python benchmarks/gp_flow_fixed.py --seeds 0 --variants 2,4096,400 --trace 20

A variant is LAYERS,M[,MAX_ITER[,SETS]]: M mirrored fixed draws, at most MAX_ITER L-BFGS
iterations in all (1000), split over SETS draw sets in turn (1; each run starts where the last
ended, on M new draws). ``--trace N`` prints the fixed and fresh ELBO every N iterations.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import scipy.optimize
from autograd import value_and_grad

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from gp_flow_diagnosis import ELEMENT, NAME, errors  # noqa: E402

import ppl  # noqa: E402
from ppl.guides import family  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402
from ppl.infer.precondition import Frame  # noqa: E402

FRESH = 4000
_LOG_2PI = float(np.log(2 * np.pi))


def mirrored(rng: np.random.Generator, M: int, D: int) -> np.ndarray:
    """[M, D] fixed standard-normal draws, eps and -eps (M even)."""
    half = rng.standard_normal((M // 2, D))
    return np.concatenate([half, -half])


def objective(log_joint, guide, eps):
    """theta -> (F, dF/dtheta), F = -mean_m [log p(T(eps_m)) - log q(T(eps_m))] at the fixed
    eps [M, D]; (inf, zeros) where not finite. log q(T(eps)) = log N(eps) - log|det dT/deps|,
    so the gradient is the plain reparameterization one (the flow's path gradient is not the
    gradient of a fixed-draw objective)."""
    base = float(np.mean(-0.5 * np.sum(eps * eps, axis=1))) - 0.5 * eps.shape[1] * _LOG_2PI

    def loss(theta):
        zeta, log_det = guide.forward(theta, eps)
        return -(anp.mean(log_joint(zeta)) + anp.mean(log_det) - base)

    gradient = value_and_grad(loss)

    def value_and_gradient(theta):
        with np.errstate(all="ignore"):
            try:
                value, g = gradient(theta)
            except np.linalg.LinAlgError:
                return np.inf, np.zeros_like(theta)
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(theta)
        return float(value), g
    return value_and_gradient


def fit_flow(compiled, guide, warm, rng, M: int, max_iter: int, sets: int = 1, trace=None):
    """(the flow's AdviResult from ``warm``'s Gaussian, iterations, last fixed-draw ELBO)."""
    m0, W = warm.guide.frame(warm.theta)
    framed = Frame(compiled, m0, W)
    fresh = objective(framed.log_joint, guide, np.random.default_rng(99).standard_normal(
        (FRESH, compiled.dim))) if trace else None
    theta, iterations, per_set = guide.init(compiled.dim, 1.0), 0, max_iter // sets
    for _ in range(sets):
        F = objective(framed.log_joint, guide, mirrored(rng, M, compiled.dim))

        def callback(x):
            nonlocal iterations
            iterations += 1
            if trace and iterations % trace == 0:
                print(f"    iteration {iterations}: ELBO fixed {framed.log_det - F(x)[0]:.2f}"
                      f", fresh {framed.log_det - fresh(x)[0]:.2f}", flush=True)
        result = scipy.optimize.minimize(
            F, theta, jac=True, method="L-BFGS-B", callback=callback,
            options={"maxiter": per_set, "gtol": 1e-5, "ftol": 0.0, "maxfun": 2 * per_set})
        theta = np.asarray(result.x, dtype=float)
    result = dataclasses.replace(warm, guide=guide, theta=guide.push_affine(theta, m0, W))
    return result, iterations, framed.log_det - F(theta)[0]


def fresh_elbo(compiled, result, rng) -> float:
    """The ELBO estimated on FRESH new draws (the fixed-draw one is biased upwards)."""
    eps = rng.standard_normal((FRESH, result.guide.eps_dim(len(result.names))))
    zeta, log_q = result.guide.draw_and_log_q(result.theta, eps)
    with np.errstate(all="ignore"):
        return float(np.mean(compiled.log_joint(zeta) - log_q))


def variant_row(start_fit, spec: str, rng, reference, trace) -> str:
    layers, M, *rest = (int(v) for v in spec.split(","))
    max_iter, sets = (rest + [1000, 1][len(rest):])[:2]
    compiled = start_fit.compiled
    started = time.process_time()
    result, iterations, fixed = fit_flow(compiled, family(f"flow:{layers}", compiled.dim),
                                         start_fit.result, rng, M, max_iter, sets, trace)
    seconds = time.process_time() - started
    fit = dataclasses.replace(start_fit, result=result, _cache={})
    shown = errors(fit, reference, ELEMENT[NAME])
    return (f"| {start_fit.options.seed} | {spec} | {seconds:.1f} | {iterations} | "
            f"{fixed:.2f} | {fresh_elbo(compiled, result, np.random.default_rng(98)):.4g} | "
            f"{fit.khat:.2f} | {fit.psis.ess:.0f} | {'yes' if fit.corrected else 'no'} | "
            f"{shown[0]:.3g} / {shown[1]:.3g} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=["2,64,200", "2,256,200",
                                                          "4,256,200", "2,1024,150"])
    parser.add_argument("--trace", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    model, data = ppl.load(pdb.model_path(NAME)), pdb.load_data(NAME)
    reference = pdb.load_reference(NAME)
    print("| seed | layers,M[,iter,sets] | CPU s | iterations | ELBO fixed | ELBO fresh | k̂ | "
          "ESS of 4000 | corrected | max mean err / sd dev |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        started = time.process_time()
        fit = model.fit(data, seed=seed, guide="meanfield", draws=4000)
        fit.summary()
        mf_seconds = time.process_time() - started
        rng = np.random.default_rng(seed)   # auto's stream: mean field, then the probe
        meanfield = advi.fit(fit.compiled, fit.options, rng)
        start = auto.fullrank_start(fit.compiled, fit.options, rng, meanfield)
        start_fit = dataclasses.replace(fit, result=start, _cache={})
        print(f"| {seed} | auto's flow start (mean-field fit and summary: {mf_seconds:.1f}) | | "
              f"| | {fresh_elbo(fit.compiled, start, np.random.default_rng(98)):.2f} | "
              f"{start_fit.khat:.2f} | {start_fit.psis.ess:.0f} | | |", flush=True)
        for spec in args.variants:
            print(variant_row(start_fit, spec, copy.deepcopy(rng), reference, args.trace),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
