"""The stochastic-volatility gallery model against a NUTS reference of its exact posterior.

models/stochastic_volatility.ppl (T = 400, generated with mu = -1, phi = 0.9, sigma = 0.3 by
models/make_data_v2.py) is fitted by ppl's mean field, with h through its AR1 innovations (the
default) and, for comparison, centred (h itself as the coordinates, as before the change), and
optionally by full rank. The reference is NumPyro's NUTS on the same model written non-centred
(one chain, 1,000 warm-up and 2,000 kept draws, float64, seed 0). Printed per fit and for mu,
phi, sigma: mean and sd, the error of the mean in reference sds, and over the 400 elements of
h the median |mean error| in reference sds and the median sd ratio. The reference's Monte Carlo
error of a mean is sd / sqrt(ESS), printed beside it. Needs NumPyro (not a dependency); without
it only ppl's rows are printed.
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/sv_reference.py [--fullrank]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import ppl
import ppl.compiler.build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numpyro_models import NUMPYRO_ROWS_LEFT_OUT  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "models" / "stochastic_volatility.ppl"
TRUTH = {"mu": -1.0, "phi": 0.9, "sigma": 0.3}


def nuts_reference() -> dict[str, np.ndarray] | None:
    """Draws of mu, phi, sigma [N] and h [N, T] from NUTS, or None without NumPyro."""
    try:
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist
        from numpyro.diagnostics import effective_sample_size
        from numpyro.infer import MCMC, NUTS
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    y = jnp.array(json.loads(MODEL.with_suffix(".json").read_text())["y"])

    def model():
        mu = numpyro.sample("mu", dist.Normal(0, 2))
        phi = numpyro.sample("phi", dist.Uniform(-1, 1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([y.shape[0]]))
        h0 = mu + sigma / jnp.sqrt(1 - phi ** 2) * z[0]

        def step(prev, e):
            h = mu + phi * (prev - mu) + sigma * e
            return h, h
        _, rest = jax.lax.scan(step, h0, z[1:])
        h = numpyro.deterministic("h", jnp.concatenate([h0[None], rest]))
        numpyro.sample("y", dist.Normal(0, jnp.exp(h / 2)), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=1000, num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples().items() if k != "z"}
    draws["ess"] = {k: float(effective_sample_size(draws[k][None])) for k in TRUTH}
    return draws


def fit_ppl(guide: str, centred: bool) -> dict[str, np.ndarray]:
    """Draws of a seed-0 fit; ``centred`` turns the AR1 innovations off (before the change)."""
    saved = ppl.compiler.build.innovation_latents
    if centred:
        ppl.compiler.build.innovation_latents = lambda model: frozenset()
    try:
        return ppl.load(MODEL).fit(seed=0, guide=guide, draws=4000).draws()
    finally:
        ppl.compiler.build.innovation_latents = saved


def row(label: str, draws: dict, ref: dict | None, seconds: float) -> str:
    cells = []
    for name in TRUTH:
        cell = f"{draws[name].mean():.3f} ± {draws[name].std():.3f}"
        if ref is not None:
            cell += f" ({(draws[name].mean() - ref[name].mean()) / ref[name].std():+.1f})"
        cells.append(cell)
    if ref is not None:
        sd = ref["h"].std(axis=0)
        cells.append(f"{np.median(np.abs(draws['h'].mean(axis=0) - ref['h'].mean(axis=0)) / sd):.2f}")
        cells.append(f"{np.median(draws['h'].std(axis=0) / sd):.2f}")
    return f"| {label} | " + " | ".join(cells) + f" | {seconds:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fullrank", action="store_true", help="also fit full rank (minutes)")
    args = parser.parse_args()
    start = time.process_time()
    ref = nuts_reference()
    if ref is None:
        print(NUMPYRO_ROWS_LEFT_OUT, file=sys.stderr)
    print("| fit | mu | phi | sigma | h: median mean error / sd | h: median sd ratio | CPU s |")
    print("|---|---|---|---|---|---|---|")
    print("| generating values | " + " | ".join(f"{v:g}" for v in TRUTH.values())
          + " | | | |")
    if ref is not None:
        cells = [f"{ref[k].mean():.3f} ± {ref[k].std():.3f} (MC ± "
                 f"{ref[k].std() / np.sqrt(ref['ess'][k]):.3f})" for k in TRUTH]
        print("| NUTS reference | " + " | ".join(cells)
              + f" | | | {time.process_time() - start:.1f} |")
    fits = [("mean field, h centred (before)", "meanfield", True),
            ("mean field, AR1 innovations", "meanfield", False)]
    if args.fullrank:
        fits.append(("full rank, AR1 innovations", "fullrank", False))
    for label, guide, centred in fits:
        start = time.process_time()
        draws = fit_ppl(guide, centred)
        print(row(label, draws, ref, time.process_time() - start))


if __name__ == "__main__":
    main()
