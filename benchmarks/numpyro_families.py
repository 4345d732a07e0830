"""ppl's flow and full-rank guides against NumPyro's on the two eight schools posteriors, in one run.

Issue 10 quotes NumPyro's AutoIAFNormal and AutoMultivariateNormal (4 particles, Adam with
decay, 20,000 steps, float64) at 30-100 s per posterior. This script fits both eight schools
posteriors with both libraries in the same process and prints, per fit, the max |mean error|
and max |sd / reference sd - 1| over the reference's elements (mu, tau, theta[j], and
theta_trans[j] for the non-centred one), CPU and wall seconds (NumPyro's JIT compile included)
and, on NumPyro's rows, ppl's CPU over NumPyro's for the same family and seed.
ppl's ``--guide auto`` (the default; no NumPyro counterpart) is fitted too.
Needs NumPyro (not a dependency); without it only ppl's rows are printed.
Run: ``OMP_NUM_THREADS=1 JAX_ENABLE_X64=1 python benchmarks/numpyro_families.py [--seeds 1]``
(``--guides flow`` for the flow/IAF pair only, ``--only POSTERIOR`` for one posterior).
NumPyro compiles its step on the first fit of a process and reuses it on later ones with the same
model, so compare ppl against NumPyro's second and later fits too.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402
from numpyro_models import NUMPYRO_ROWS_LEFT_OUT, numpyro_importable  # noqa: E402

import ppl  # noqa: E402

POSTERIORS = ("eight_schools-eight_schools_centered", "eight_schools-eight_schools_noncentered")
STEPS, PARTICLES, DRAWS = 20_000, 4, 4000
GUIDES = ("flow", "fullrank", "auto")


def errors(draws: dict[str, np.ndarray], reference: dict) -> tuple[float, float]:
    """(max |mean error| in reference sds, max |sd ratio - 1|) over the reference's elements."""
    mean_err, sd_err = 0.0, 0.0
    for element, ref in reference.items():
        name, _, index = element.partition("[")
        values = draws[name] if not index else draws[name][:, int(index[:-1])]
        mean_err = max(mean_err, abs(values.mean() - ref["mean"]) / ref["sd"])
        sd_err = max(sd_err, abs(values.std() / ref["sd"] - 1))
    return mean_err, sd_err


def fit_ppl(name: str, guide: str, seed: int) -> dict[str, np.ndarray]:
    fit = ppl.load(pdb.model_path(name)).fit(pdb.load_data(name), guide=guide, seed=seed,
                                             draws=DRAWS)
    draws = fit.draws()
    if "theta" not in draws:   # the non-centred model reports theta as a let
        draws["theta"] = draws["mu"][:, None] + draws["tau"][:, None] * draws["theta_trans"]
    return draws


def numpyro_fit(name: str, guide: str, seed: int) -> dict[str, np.ndarray] | None:
    if guide not in ("flow", "fullrank"):   # NumPyro has no counterpart of ppl's auto
        return None
    try:
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist
        from numpyro.infer import SVI, Trace_ELBO
        from numpyro.infer.autoguide import AutoIAFNormal, AutoMultivariateNormal
        from numpyro.optim import Adam
    except ImportError:
        return None
    data = pdb.load_data(name)
    y, sigma, J = jnp.asarray(data["y"]), jnp.asarray(data["sigma"]), int(data["J"])
    centred = name.endswith("_centered")

    def model():
        mu = numpyro.sample("mu", dist.Normal(0, 5))
        tau = numpyro.sample("tau", dist.HalfCauchy(5))
        if centred:
            theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([J]).to_event(1))
        else:
            trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([J]).to_event(1))
            theta = numpyro.deterministic("theta", mu + tau * trans)
        numpyro.sample("y", dist.Normal(theta, sigma).to_event(1), obs=y)

    auto = AutoIAFNormal(model) if guide == "flow" else AutoMultivariateNormal(model)
    schedule = lambda step: 1e-2 * 0.1 ** (step / STEPS)  # noqa: E731 (Adam with decay)
    svi = SVI(model, auto, Adam(schedule), Trace_ELBO(num_particles=PARTICLES))
    result = svi.run(jax.random.PRNGKey(seed), STEPS, progress_bar=False)
    draws = auto.sample_posterior(jax.random.PRNGKey(seed + 1), result.params,
                                  sample_shape=(DRAWS,))
    draws = {k: np.asarray(v) for k, v in draws.items()}
    if not centred:
        draws["theta"] = draws["mu"][:, None] + draws["tau"][:, None] * draws["theta_trans"]
    return draws


def timed(function, *args):
    cpu, wall = time.process_time(), time.perf_counter()
    out = function(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=POSTERIORS, help="posteriors (default: both)")
    parser.add_argument("--guides", nargs="*", choices=GUIDES,
                        help="families (default: all three)")
    args = parser.parse_args(argv)
    if not numpyro_importable():
        print(NUMPYRO_ROWS_LEFT_OUT, file=sys.stderr)
    print(f"{'posterior':40s} {'fit':18s} seed  mean err  sd err   cpu s  wall s  ppl cpu / this")
    for name in args.only or POSTERIORS:
        reference = pdb.load_reference(name)
        for seed in range(args.seeds):
            for guide in args.guides or GUIDES:
                for library, fit in (("ppl", fit_ppl), ("numpyro", numpyro_fit)):
                    draws, cpu, wall = timed(fit, name, guide, seed)
                    if draws is None:
                        continue
                    mean_err, sd_err = errors(draws, reference)
                    if library == "ppl":
                        ppl_cpu = cpu   # NumPyro's row gives the ratio: fits back to back
                    ratio = f" {ppl_cpu / cpu:15.2f}" if library == "numpyro" else ""
                    print(f"{name:40s} {library + ' ' + guide:18s} {seed:4d} {mean_err:9.3f} "
                          f"{sd_err:7.3f} {cpu:7.1f} {wall:7.1f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
