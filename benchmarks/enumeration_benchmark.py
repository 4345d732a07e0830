"""Cost of summing a discrete latent out by enumeration, as a ratio to the same model written
with Mixture (one log joint + gradient, S = 10 draws), measured in the same run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/enumeration_benchmark.py
"""
import json
import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import grad

from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse

MODELS = Path(__file__).resolve().parents[1] / "models"


def _compiled(name):
    program = parse((MODELS / f"{name}.ppl").read_text())
    values, dims = load_data(check(program), json.loads((MODELS / f"{name}.json").read_text()))
    return compile_model(check(program, dims), values)


def _seconds(model, repeats=200):
    zeta = np.random.default_rng(0).normal(size=(10, model.dim))
    g = grad(lambda z: anp.sum(model.log_joint(z)))
    g(zeta)
    start = time.perf_counter()
    for _ in range(repeats):
        g(zeta)
    return (time.perf_counter() - start) / repeats


def main():
    base = _seconds(_compiled("mixture"))
    enumerated = _seconds(_compiled("mixture_enumerated"))
    print(f"mixture_enumerated / mixture (log joint + gradient): {enumerated / base:.2f}")


if __name__ == "__main__":
    main()
