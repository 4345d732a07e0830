"""How long the schedule makes a mean-field fit: steps and log-joint evaluations per shipped model.

For every example model (``models/*.ppl``) and posteriordb model (``models/posteriordb``), fit
the mean-field guide (seed 0, default options otherwise) through the API and count the compiled
log joint's calls with end_to_end.py's wrapper: gradient evaluations (first-order passes, S draws
each), Hessian-vector passes (the whitening) and value-only draws (the step-size scores).
Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/schedule_benchmark.py``;
``--json FILE`` also writes the rows, ``--precondition none`` turns the whitening off, and
``--compare FILE`` (the ``--json`` of an earlier run, e.g. of main's code) adds its steps and
gradient evaluations and the ratio of gradient evaluations, before / after. Counts are fixed by
the seed, so two runs compare exactly.
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
    parser.add_argument("--compare", help="a --json file of an earlier run: before / after")
    args = parser.parse_args(argv)
    before = json.loads(Path(args.compare).read_text()) if args.compare else {}
    rows = {}
    print(f"{'model':44s} {'steps':>6s} {'grads':>6s} {'hvp':>5s} {'v-draws':>7s} {'cpu s':>6s}"
          + (f" {'steps0':>6s} {'grads0':>6s} {'ratio':>5s}" if before else ""))
    for name, text, data in cases():
        if args.only and name not in args.only:
            continue
        r = e2e.fit_ppl(text, data, seed=0, guide="meanfield",
                        precondition=args.precondition)
        rows[name] = r
        flag = "" if r["converged"] else "  (not converged)"
        print(f"{name:44s} {r['steps']:6d} {r['grad']:6d} {r['hvp']:5d} "
              f"{r['value_draws']:7d} {r['cpu']:6.2f}{_versus(before.get(name), r)}{flag}",
              flush=True)
    total = {k: sum(r[k] for r in rows.values()) for k in ("steps", "grad", "hvp", "cpu")}
    compared = [name for name in rows if name in before]
    old = {k: sum(before[n][k] for n in compared) for k in ("steps", "grad")}
    new = {k: sum(rows[n][k] for n in compared) for k in ("steps", "grad")}
    print(f"{'total':44s} {total['steps']:6d} {total['grad']:6d} {total['hvp']:5d} "
          f"{'':7s} {total['cpu']:6.2f}")
    if compared:
        print(f"{f'total of the {len(compared)} compared':44s} {new['steps']:6d} "
              f"{new['grad']:6d} {'':13s} {'':6s}{_versus(old, new)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def _versus(before: dict | None, after: dict) -> str:
    """The earlier run's steps and gradient evaluations, and before / after of the latter."""
    if before is None:
        return ""
    return f" {before['steps']:6d} {before['grad']:6d} {before['grad'] / after['grad']:5.2f}"


if __name__ == "__main__":
    main()
