"""End to end: wall and CPU time to a converged fit, and how many log-joint evaluations it took.

For every example model (``models/*.ppl`` with its ``.json``), every posteriordb model
(``models/posteriordb``, data from ``benchmarks/posteriordb_data.py``) and a 100,000-row,
20-predictor linear regression, fit with the API (compile and summary included, import not)
and count the compiled log joint's calls through one wrapper: gradient evaluations (first-order
traces), Hessian-vector passes (second order, the whitening) and value-only calls, each also
in draws. ADVI always; DADVI too when ``FitOptions`` has ``method='dadvi'`` (a model it refuses,
one with param or guide statements, gets a 'not run' row). If NumPyro is
importable, its AutoNormal fits the models written for it below (eight schools, the linear and
logistic examples, the big regression) to its own loss plateau, JIT compile included.
Each NumPyro row is followed by each ppl method's CPU seconds over NumPyro's (fits back to back
in one process: read the ratio, not the seconds).
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/end_to_end.py [--quick]``
(``--only NAME ...`` for some models, ``--methods advi numpyro`` to leave DADVI out).
``--phases``: instead, where each ADVI fit's CPU goes (compile, step-size searches, steps,
whitening, the optimum check, k̂ and PSIS, summary), exclusive CPU seconds per phase.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from autograd.tracer import isbox

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "benchmarks"))
import ppl  # noqa: E402
from ppl import api  # noqa: E402

BIG_N, BIG_K = 100_000, 20
BIG_REGRESSION = """data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha + X @ beta, sigma)
"""


def big_regression_data() -> dict:
    rng = np.random.default_rng(20240601)
    X = rng.standard_normal((BIG_N, BIG_K))
    return {"N": BIG_N, "K": BIG_K, "X": X,
            "y": 0.5 + X @ rng.normal(0, 1, BIG_K) + rng.normal(0, 0.7, BIG_N)}


def cases(quick: bool):
    """(name, model text, data dict) for every model of the benchmark."""
    for path in sorted((_REPO / "models").glob("*.ppl")):
        yield path.stem, path.read_text(), json.loads(path.with_suffix(".json").read_text())
    if not quick:
        import posteriordb_data as pdb
        for name in pdb.names():
            yield name, pdb.model_path(name).read_text(), pdb.load_data(name)
        yield "big_regression", BIG_REGRESSION, big_regression_data()


# ----- counting log-joint evaluations ------------------------------------------------------------

class Counted:
    """A compiled model whose ``log_joint`` counts its calls; everything else is delegated."""

    def __init__(self, compiled):
        self._compiled = compiled
        self.counts = {"grad": 0, "grad_draws": 0, "hvp": 0, "value": 0, "value_draws": 0}

    def __getattr__(self, name):
        return getattr(self._compiled, name)

    def log_joint(self, zeta):
        if isbox(zeta) and isbox(zeta._value):
            self.counts["hvp"] += 1
        elif isbox(zeta):
            self.counts["grad"] += 1
            self.counts["grad_draws"] += zeta.shape[0]
        else:
            self.counts["value"] += 1
            self.counts["value_draws"] += zeta.shape[0]
        return self._compiled.log_joint(zeta)


def fit_ppl(text: str, data: dict, **options) -> dict:
    """Fit through the API with the compiled model wrapped in a Counted; times and counts."""
    counted = []
    compile_model = api.compile_model

    def counting(*args, **kwargs):
        counted.append(Counted(compile_model(*args, **kwargs)))
        return counted[-1]
    api.compile_model = counting
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ppl.compile(text).fit(data, **options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        api.compile_model = compile_model
    result = fit.result
    return {"wall": wall, "cpu": cpu, "converged": bool(getattr(result, "converged", True)),
            "steps": int(getattr(result, "steps", 0)), **counted[-1].counts}


def has_dadvi() -> bool:
    """Whether this checkout's FitOptions offers ``method='dadvi'`` (issue 14)."""
    from ppl import options
    return "dadvi" in getattr(options, "METHODS", ())


# ----- NumPyro AutoNormal, for the models written for it -------------------------------------

def numpyro_models():
    """name -> numpyro model function taking the data dict, or {} without NumPyro. JAX is
    switched to float64 first, as ppl computes (in float32 poisson_gp's rates overflow and
    NumPyro refuses them), so ``JAX_ENABLE_X64=1`` is not needed."""
    from numpyro_models import numpyro_models as models   # benchmarks/numpyro_models.py
    found = models()
    if found:
        import jax
        jax.config.update("jax_enable_x64", True)
    return found


def fit_numpyro(model, data: dict, window: int = 100, max_steps: int = 20_000,
                guide: str = "AutoNormal", seed: int = 0, keep: bool = False) -> dict:
    """``guide`` (a numpyro.infer.autoguide class name; AutoNormal unless given) by SVI (Adam,
    lr 0.01, 1 draw per step) until the mean loss of the last window is within 2 standard
    errors of the one before (its own plateau). JIT included. ``keep``: the result also holds
    the fitted guide and its params ("guide", "params"), for drawing from it."""
    import jax
    from numpyro.infer import SVI, Trace_ELBO, autoguide
    from numpyro.optim import Adam
    wall, cpu = time.perf_counter(), time.process_time()
    auto = getattr(autoguide, guide)(lambda: model(data))
    svi = SVI(lambda: model(data), auto, Adam(0.01), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(seed))
    update = jax.jit(svi.update)
    losses = []
    while len(losses) < max_steps:
        for _ in range(window):
            state, loss = update(state)
            losses.append(loss)
        trace = np.asarray(jax.device_get(losses[-2 * window:]), dtype=float)
        if len(losses) >= 2 * window:
            a, b = trace[:window], trace[window:]
            se = np.sqrt(a.var(ddof=1) / window + b.var(ddof=1) / window)
            if abs(b.mean() - a.mean()) <= 2 * se:
                break
    out = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
           "steps": len(losses), "grad": len(losses), "grad_draws": len(losses)}
    if keep:
        out.update(guide=auto, params=svi.get_params(state),
                   loss=float(np.mean(trace[-window:])))
    return out


# ----- per-phase CPU split ---------------------------------------------------------------------

# (module, attribute path, phase): the functions whose CPU, less that of the others called from
# them, makes each phase; what is left is charged to "steps" (advi._run's own loop) or "other"
PHASES = (("ppl.api", "Model.prepare", "compile"),
          ("ppl.infer.schedule", "StepSize.first", "step-size search"),
          ("ppl.infer.schedule", "StepSize.after_whitening", "step-size search"),
          ("ppl.infer.schedule", "Whitening.coordinates", "whitening"),
          ("ppl.infer.advi", "_run", "steps"),
          ("ppl.infer.advi", "_check_start", "start check"),
          ("ppl.infer.advi", "settle", "optimum check (diagnostics.settle)"),
          ("ppl.posterior", "Fit.log_weights", "k-hat: log weights of the draws"),
          ("ppl.posterior", "psis", "k-hat: Pareto fit"),
          ("ppl.posterior", "Fit.summary", "summary"))


def phase_split(text: str, data: dict) -> tuple[float, dict]:
    """(total CPU, phase -> exclusive CPU seconds) of parse, fit and summary of one model."""
    import importlib
    spent, stack, last = {}, ["other"], [time.process_time()]

    def charge():
        now = time.process_time()
        spent[stack[-1]] = spent.get(stack[-1], 0.0) + now - last[0]
        last[0] = now

    def timed(fn, phase):
        def wrapper(*args, **kwargs):
            charge()
            stack.append(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                charge()
                stack.pop()
        return wrapper
    saved = []
    for module, path, phase in PHASES:
        owner = importlib.import_module(module)
        *outer, attr = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, timed(getattr(owner, attr), phase))
    try:
        start = last[0] = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timed(ppl.compile, "parse and check")(text)
            str(model.fit(data, seed=0).summary())
        charge()
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
    return time.process_time() - start, spent


def main_phases(names) -> None:
    for name, text, data in cases(quick=not names):
        if names and name not in names:
            continue
        total, spent = phase_split(text, data)
        print(f"{name}: {total:.3f} s of CPU")
        for phase, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {phase:40s} {seconds:7.3f} s {100 * seconds / total:5.1f}%", flush=True)


# ----- main -------------------------------------------------------------------------------------

def _line(name: str, method: str, r: dict) -> str:
    ok = "" if r.get("converged", True) else "  (not converged)"
    return (f"{name:42s} {method:8s} {r['wall']:7.2f} {r['cpu']:7.2f} {r['steps']:6d} "
            f"{r['grad']:6d} {r['grad_draws']:7d} {r.get('hvp', 0):5d} "
            f"{r.get('value_draws', 0):7d}{ok}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="example models only (no posteriordb, no big regression)")
    parser.add_argument("--only", nargs="*", help="model names to run")
    parser.add_argument("--methods", nargs="+", default=["advi", "dadvi", "numpyro"],
                        help="which of advi, advi-mf, dadvi, numpyro to run (default: all "
                             "available but advi-mf); advi is the default guide (auto), advi-mf "
                             "mean field, the family of NumPyro's AutoNormal")
    parser.add_argument("--phases", action="store_true",
                        help="the CPU split of each ADVI fit by phase (example models, or those named "
                             "by --only)")
    args = parser.parse_args(argv)
    if args.phases:
        main_phases(args.only)
        return
    methods = {"advi": {}} if "advi" in args.methods else {}
    if "advi-mf" in args.methods:
        methods["advi-mf"] = {"guide": "meanfield"}
    if has_dadvi() and "dadvi" in args.methods:
        methods["dadvi"] = {"method": "dadvi"}
    numpyro = numpyro_models() if "numpyro" in args.methods else {}
    if "numpyro" in args.methods and not numpyro:
        from numpyro_models import NUMPYRO_ROWS_LEFT_OUT
        print(NUMPYRO_ROWS_LEFT_OUT, file=sys.stderr)
    print(f"{'model':42s} {'method':8s} {'wall s':>7s} {'cpu s':>7s} {'steps':>6s} "
          f"{'grads':>6s} {'g-draws':>7s} {'hvp':>5s} {'v-draws':>7s}")
    for name, text, data in cases(args.quick):
        if args.only and name not in args.only:
            continue
        cpu = {}
        for method, options in methods.items():
            try:
                fitted = fit_ppl(text, data, seed=0, **options)
            except ppl.PplError as refused:   # dadvi on a model with param or guide statements
                print(f"{name:42s} {method:8s} not run: {refused.message}", flush=True)
                continue
            cpu[method] = fitted["cpu"]
            print(_line(name, method, fitted), flush=True)
        if name in numpyro:
            fitted = fit_numpyro(numpyro[name], data)
            print(_line(name, "numpyro", fitted), flush=True)
            # seconds depend on the machine's load: the ratio of two fits back to back less so
            print(f"{name:42s} CPU / NumPyro's: " + ", ".join(
                f"{method} {seconds / fitted['cpu']:.2f}" for method, seconds in cpu.items()),
                flush=True)


if __name__ == "__main__":
    main()
