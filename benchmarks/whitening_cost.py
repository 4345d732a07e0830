"""What the whitening costs as the number of latents grows: hierarchical models with G groups.

A small generator writes a varying-intercept regression (the model of
``models/hierarchical_intercepts.ppl``, G + 4 latents) with 5 observations per group and a
centred parameterization (badly conditioned: the intercepts and their scale are coupled), and
each fit is run with ``precondition='hessian'`` and ``'none'`` (mean field, seed 0), giving the
CPU-time ratio and the counts of gradient evaluations and Hessian-vector passes (end_to_end.py's
wrapper). Up to ``precondition.WHOLE_MAX_DIM`` (30) latents a whitening forms the expected
Hessian whole (D reverse-over-reverse passes, the 'hvp' column); above, it takes
``precondition.RANK`` (20) Lanczos products whatever D, each a central difference of the
gradient, which the wrapper counts among the gradient evaluations (one of 40 draws each; three
whitenings per fit: 60). The fit still whitens only up to ``precondition.MAX_DIM`` (300)
latents, for accuracy, not cost (see there); ``--uncapped`` lifts that cap, as the rows of
1,000 and 3,000 latents in docs/performance.md were measured.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/whitening_cost.py --uncapped

With ``--lanczos-accuracy NAME ...`` it runs benchmarks/accuracy.py instead (seeds 0-1) on those
posteriordb posteriors with every model on the Lanczos path (``WHOLE_MAX_DIM = 0``): they all
have at most 26 latents, so the default fit never takes it there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))
import end_to_end as e2e  # noqa: E402

MODEL = (_REPO / "models" / "hierarchical_intercepts.ppl").read_text()
PER_GROUP = 5


def data(groups: int, seed: int = 20261129) -> dict:
    """G groups of PER_GROUP rows: y = alpha[group] + 0.5 x + noise, alpha ~ N(1, 0.3)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), PER_GROUP)
    x = rng.standard_normal(group.size)
    alpha = rng.normal(1.0, 0.3, groups)
    y = alpha[group] + 0.5 * x + rng.normal(0, 1.0, group.size)
    return {"N": int(group.size), "G": groups, "group": group.tolist(), "x": x.tolist(),
            "y": y.tolist()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[6, 96, 296, 996, 2996])
    parser.add_argument("--uncapped", action="store_true",
                        help="whiten above precondition.MAX_DIM (300) latents too")
    parser.add_argument("--lanczos-accuracy", nargs="+", metavar="POSTERIOR",
                        help="accuracy.py on these posteriors, every model on the Lanczos path")
    args = parser.parse_args(argv)
    if args.lanczos_accuracy:
        import accuracy
        from ppl.infer import precondition
        precondition.WHOLE_MAX_DIM = 0
        accuracy.main(["--seeds", "2", "--only", *args.lanczos_accuracy])
        return
    if args.uncapped:
        from ppl.infer import advi
        advi.PRECONDITION_MAX_DIM = 10 ** 9
    print(f"{'latents':>7s} {'cpu ratio':>9s} {'steps h/n':>11s} {'grads h/n':>11s} {'hvp':>6s}")
    for groups in args.groups:
        d = data(groups)
        whitened = e2e.fit_ppl(MODEL, d, seed=0, guide="meanfield", precondition="hessian")
        plain = e2e.fit_ppl(MODEL, d, seed=0, guide="meanfield", precondition="none")
        print(f"{groups + 4:7d} {whitened['cpu'] / plain['cpu']:9.2f} "
              f"{whitened['steps']:5d}/{plain['steps']:<5d} "
              f"{whitened['grad']:5d}/{plain['grad']:<5d} {whitened['hvp']:6d}", flush=True)


if __name__ == "__main__":
    main()
