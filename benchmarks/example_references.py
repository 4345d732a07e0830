"""NUTS reference posteriors for the example models (models/*.ppl) that NumPyro translates.

For every example model in ``numpyro_models.MODELS``: NumPyro NUTS, 4 chains run one after
the other, 1000 warmup + 2000 draws each, seed 0. NumPyro's draws are mapped to ppl's terms
through the unconstrained space: each latent site's draws go back to its unconstrained
coordinates (``biject_to(support).inv``; the sites are in ppl's slot order and sizes, which
``numpyro_models.py --check`` verifies along with the log density), are concatenated into
ppl's ``zeta`` [S, D], and ppl's own ``compiled.constrained`` gives the values of every
reported element (latents and reported lets), named as ppl's summary names them. Per element
the file records the reference mean and sd and the split R-hat and bulk ESS over the 4 chains
(``numpyro.diagnostics``); a model passes when every element has R-hat < 1.01 and ESS > 400
and the run took at most 60 s, and only passing models get a reference (the others are listed
with the reason). Elements that are constant (sd 0, e.g. an LKJ Cholesky factor's first row)
are left out: errors are in reference sds.

    JAX_ENABLE_X64=1 PYTHONPATH=. python benchmarks/example_references.py

(with a Python that has NumPyro installed) writes benchmarks/example_references.json
(committed: the benchmark reads it without NumPyro). NumPyro and JAX are imported lazily;
they are not dependencies of ppl, and without them the script says so and exits with 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
import numpyro_models  # noqa: E402

import ppl  # noqa: E402
from ppl.ir import element_names  # noqa: E402

OUT = _HERE / "example_references.json"
COMMAND = ("JAX_ENABLE_X64=1 PYTHONPATH=. python "
           "benchmarks/example_references.py")
CHAINS, WARMUP, DRAWS, SEED = 4, 1000, 2000, 0
MAX_RHAT, MIN_ESS, MAX_SECONDS = 1.01, 400.0, 60.0


def example_names() -> list[str]:
    """The translated models that are example models (models/NAME.ppl exists)."""
    return [name for name in numpyro_models.MODELS
            if (numpyro_models._REPO / "models" / f"{name}.ppl").is_file()]


def load(name: str):
    """(compiled, data) of models/NAME.ppl with its data."""
    path = numpyro_models._REPO / "models" / f"{name}.ppl"
    data = json.loads(path.with_suffix(".json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = ppl.load(path).prepare(data)[2]
    return compiled, data


def nuts(name: str, data: dict):
    """NUTS draws of the NumPyro translation: {site: [CHAINS, DRAWS, *shape]} and the trace
    sites (name, support) of the latent sites in order."""
    import jax
    from numpyro.infer import MCMC, NUTS
    model = numpyro_models.MODELS[name]
    mcmc = MCMC(NUTS(lambda: model(data)), num_warmup=WARMUP, num_samples=DRAWS,
                num_chains=CHAINS, chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(SEED))
    return mcmc.get_samples(group_by_chain=True), latent_sites(model, data)


def latent_sites(model, data: dict) -> list:
    """(name, support) of the NumPyro translation's latent sample sites, in order."""
    import jax
    from numpyro import handlers
    from numpyro.infer.initialization import init_to_uniform
    seeded = handlers.seed(lambda: model(data), jax.random.PRNGKey(0))
    trace = handlers.trace(handlers.substitute(seeded, substitute_fn=init_to_uniform)).get_trace()
    return [(site, s["fn"].support) for site, s in trace.items()
            if s["type"] == "sample" and not s["is_observed"]]


def to_zeta(samples: dict, sites: list, sizes: list[int]) -> np.ndarray:
    """NumPyro's constrained draws [chains, draws, *shape] per site -> ppl's unconstrained
    zeta [chains * draws, D]."""
    import jax
    from numpyro.distributions import biject_to
    pieces = []
    for (site, support), size in zip(sites, sizes):
        values = samples[site]
        flat = values.reshape((-1,) + values.shape[2:])
        free = np.asarray(jax.vmap(biject_to(support).inv)(flat)).reshape(flat.shape[0], -1)
        if free.shape[1] != size:
            raise AssertionError(f"{site}: {free.shape[1]} unconstrained values, ppl {size}")
        pieces.append(free)
    return np.concatenate(pieces, axis=1)


def summarize(compiled, zeta: np.ndarray) -> dict:
    """Per reported element: mean, sd, R-hat and bulk ESS over the chains."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    out = {}
    for name, values in compiled.constrained(zeta).items():
        values = np.asarray(values, dtype=float)
        flat = values.reshape(CHAINS, DRAWS, -1)
        for i, element in enumerate(element_names(name, values.shape[1:])):
            x = flat[:, :, i]
            mean, sd = float(x.mean()), float(x.std(ddof=1))
            if not sd > 1e-12 * (1.0 + abs(mean)):
                continue              # constant: no sd to measure errors in
            out[element] = {"mean": mean, "sd": sd,
                            "rhat": float(split_gelman_rubin(x)),
                            "ess_bulk": float(effective_sample_size(x))}
    return out


def rounded(element: dict) -> dict:
    """An element's figures at the precision worth storing: 6 significant digits for the
    mean and sd (their Monte Carlo error is ~1% of the sd at ESS 400), R-hat to 1e-4, ESS
    whole."""
    return {"mean": float(f"{element['mean']:.6g}"), "sd": float(f"{element['sd']:.6g}"),
            "rhat": round(element["rhat"], 4), "ess_bulk": round(element["ess_bulk"])}


def reference(name: str) -> dict:
    """One model's entry: elements (if it passes) or the reason it is skipped."""
    compiled, data = load(name)
    started = time.perf_counter()
    samples, sites = nuts(name, data)
    seconds = time.perf_counter() - started
    elements = summarize(compiled, to_zeta(samples, sites, [s.size for s in compiled.slots]))
    rhat = max(e["rhat"] for e in elements.values())
    ess = min(e["ess_bulk"] for e in elements.values())
    entry = {"seconds": round(seconds, 1), "max_rhat": round(rhat, 4),
             "min_ess_bulk": round(ess)}
    reasons = ([f"R-hat {rhat:.3f} >= {MAX_RHAT}"] if not rhat < MAX_RHAT else []) \
        + ([f"bulk ESS {ess:.0f} <= {MIN_ESS:.0f}"] if not ess > MIN_ESS else []) \
        + ([f"{seconds:.0f} s > {MAX_SECONDS:.0f} s"] if seconds > MAX_SECONDS else [])
    if reasons:
        entry["skipped"] = "; ".join(reasons)
    else:
        entry["elements"] = {e: rounded(v) for e, v in elements.items()}
    return entry


def load_references(path: Path = OUT) -> dict[str, dict[str, dict[str, float]]]:
    """Model -> element -> {"mean", "sd", "meanfield_sd_ratio": 1.0} for the models that
    have a reference (the shape ``accuracy.score`` takes); no NumPyro needed."""
    models = json.loads(path.read_text())["models"]
    return {name: {e: {"mean": v["mean"], "sd": v["sd"], "meanfield_sd_ratio": 1.0}
                   for e, v in entry["elements"].items()}
            for name, entry in models.items() if "elements" in entry}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="model names (default: every example)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not numpyro_models.numpyro_importable():
        print(f"{Path(__file__).name} {numpyro_models.NEEDS_NUMPYRO}", file=sys.stderr)
        return 2
    import jax
    jax.config.update("jax_enable_x64", True)
    previous = json.loads(args.out.read_text())["models"] if args.out.is_file() else {}
    models = dict(previous) if args.only else {}
    for name in args.only or example_names():
        models[name] = reference(name)
        entry = models[name]
        print(f"{name:28s} {entry['seconds']:6.1f} s  R-hat {entry['max_rhat']:.4f}  "
              f"ESS {entry['min_ess_bulk']:7.0f}  {entry.get('skipped', 'ok')}", flush=True)
    document = {
        "command": COMMAND,
        "sampler": f"NumPyro NUTS, {CHAINS} chains (sequential), {WARMUP} warmup + {DRAWS} "
                   f"draws each, PRNGKey({SEED})",
        "criteria": f"every element R-hat < {MAX_RHAT} and bulk ESS > {MIN_ESS:.0f}; run "
                    f"<= {MAX_SECONDS:.0f} s (wall, sampling incl. compilation)",
        "elements": "every element ppl reports (latents and reported lets), by ppl's name; "
                    "constant ones (sd 0) left out",
        "models": {name: models[name] for name in sorted(models)},
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
