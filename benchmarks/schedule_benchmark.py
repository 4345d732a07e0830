"""How long the schedule makes a mean-field fit: steps and log-joint evaluations per shipped model.

For every example model (``models/*.ppl``) and posteriordb model (``models/posteriordb``), fit
the mean-field guide (seed 0, default options otherwise) through the API and count the compiled
log joint's calls with end_to_end.py's wrapper: gradient evaluations (first-order passes, S draws
each), Hessian-vector passes (the whitening) and value-only draws (the step-size scores).
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/schedule_benchmark.py``;
``--json FILE`` also writes the rows, ``--precondition none`` turns the whitening off.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))
import end_to_end as e2e  # noqa: E402
import posteriordb_data as pdb  # noqa: E402


def cases():
    """(name, model text, data) for the example and posteriordb models."""
    for path in sorted((_REPO / "models").glob("*.ppl")):
        yield path.stem, path.read_text(), json.loads(path.with_suffix(".json").read_text())
    for name in pdb.names():
        yield name, pdb.model_path(name).read_text(), pdb.load_data(name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="model names to run")
    parser.add_argument("--precondition", default="hessian")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    rows = {}
    print(f"{'model':44s} {'steps':>6s} {'grads':>6s} {'hvp':>5s} {'v-draws':>7s} {'cpu s':>6s}")
    for name, text, data in cases():
        if args.only and name not in args.only:
            continue
        r = e2e.fit_ppl(text, data, seed=0, guide="meanfield",
                        precondition=args.precondition)
        rows[name] = r
        flag = "" if r["converged"] else "  (not converged)"
        print(f"{name:44s} {r['steps']:6d} {r['grad']:6d} {r['hvp']:5d} "
              f"{r['value_draws']:7d} {r['cpu']:6.2f}{flag}", flush=True)
    total = {k: sum(r[k] for r in rows.values()) for k in ("steps", "grad", "hvp", "cpu")}
    print(f"{'total':44s} {total['steps']:6d} {total['grad']:6d} {total['hvp']:5d} "
          f"{'':7s} {total['cpu']:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
