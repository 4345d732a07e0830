"""Which flow layers: RealNVP affine coupling or IAF, measured on the posteriors the flow is for.

For each kind (ppl.guides.FLOW_KIND is switched for the run), fits ``--guide flow`` to the 2-D
banana and the 5-D funnel of tests/stats/test_families.py (KL(q || p) by Monte Carlo, exact
normalizing constants) and to the two eight schools posteriors of posteriordb (max |mean error|
and max |sd / reference sd - 1|), and prints one line per fit with its wall time.

    python benchmarks/flow_architectures.py [--seeds 1]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
import accuracy  # noqa: E402

import ppl.guides  # noqa: E402

EIGHT_SCHOOLS = ("eight_schools-eight_schools_centered", "eight_schools-eight_schools_noncentered")


def _targets():
    spec = importlib.util.spec_from_file_location(
        "test_families", _HERE.parent / "tests" / "stats" / "test_families.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--kinds", nargs="*", default=["realnvp", "iaf"])
    args = parser.parse_args(argv)
    targets = _targets()
    for kind in args.kinds:
        ppl.guides.FLOW_KIND = kind
        for seed in range(args.seeds):
            for name, target in (("banana", targets.banana()), ("funnel", targets.funnel())):
                started = time.perf_counter()
                value, se = targets.kl(target, "flow", seed)
                print(f"{kind:8s} seed {seed} {name:40s} KL {value:.4f} (se {se:.4f}) "
                      f"{time.perf_counter() - started:6.1f} s", flush=True)
            for name in EIGHT_SCHOOLS:
                result, _ = accuracy.fit_posterior(name, seed, guide="flow")
                print(f"{kind:8s} seed {seed} {name:40s} max mean err "
                      f"{result.max_mean_error:.3f} max sd dev {result.max_sd_vs_reference:.3f} "
                      f"{result.seconds:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
