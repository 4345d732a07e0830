"""What the whitening costs as the number of latents grows: hierarchical models with G groups.

A small generator writes a varying-intercept regression (the model of
``models/hierarchical_intercepts.ppl``, G + 4 latents) with 5 observations per group and a
centred parameterization (badly conditioned: the intercepts and their scale are coupled), and
each fit is run with ``precondition='hessian'`` and ``'none'`` (mean field, seed 0), giving the
CPU-time ratio and the counts of gradient evaluations and Hessian-vector passes (end_to_end.py's
wrapper). Up to ``precondition.WHOLE_MAX_DIM`` (30) latents a whitening forms the expected
Hessian whole (D central differences of the gradient, 40 draws each; before 2026-11-30 D
reverse-over-reverse passes, the 'hvp' column); above, it takes
``precondition.RANK`` (20) Lanczos products whatever D, each a central difference of the
gradient over ``precondition.PRODUCT_DRAWS`` (10) draws of the guide, which the wrapper counts
among the gradient evaluations (one of 20 draws each, 40 before 2026-11-30; three whitenings
per fit: 60). The fit whitens at any number of latents (there was a cap at 300 until the
accuracy comparison below).

With ``--shipped MODEL`` it fits a model of models/ whitened and not (seeds 0..--seeds-1); with
``--optimum MODEL`` it measures those default fits' distance from a precise mean-field optimum
(fits of 50 draws per step at tol 1e-5), in mean-field sds:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/whitening_cost.py \
        --optimum stochastic_volatility --seeds 3

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/whitening_cost.py

With ``--lanczos-accuracy NAME ...`` it runs benchmarks/accuracy.py instead (seeds 0-1) on those
posteriordb posteriors with every model on the Lanczos path (``WHOLE_MAX_DIM = 0``): they all
have at most 26 latents, so the default fit never takes it there.

With ``--dense-hessian MODEL ...`` (example model names, posteriordb names or
``big_regression``, end_to_end.py's 10^5-row regression) it compares the ways of forming the
dense whitening's H, reverse-over-reverse products on the traced path (``expected_hessian``) and
central or forward differences of the fused gradient (``difference_hessian``, what the fit uses:
forward on large data): CPU over a 5-draw gradient and the error in sd units, at 20 draws of a
fitted mean-field guide.

With ``--exact-accuracy`` it compares whitened and unwhitened mean-field
fits on a Normal-Normal hierarchical model with known variances (``NORMAL_NORMAL``: G + 1
latents, centred, tau small, so the group means are coupled to mu), whose posterior is Gaussian
with a closed-form precision Lambda: the best mean-field fit has the exact means and sds
1/sqrt(Lambda_ii). Per fit: the largest |mean error| in exact posterior sds, the range of the
fitted sds over those optimal ones, and the CPU ratio, seeds 0-1 (``--tau 0.05``: more
coupled):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/whitening_cost.py \
        --exact-accuracy --groups 399 999 2999 [--tau 0.05]
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
NORMAL_NORMAL = """
data N: int
data G: int
data group: int[N]
data y: real[N]
data tau: real
data sigma: real
sample mu ~ Normal(0, 5)
sample theta: real[G] ~ Normal(mu, tau)
observe y ~ Normal(theta[group], sigma)
"""
TAU, SIGMA, PRIOR_SD = 0.2, 1.0, 5.0


def data(groups: int, seed: int = 20261129) -> dict:
    """G groups of PER_GROUP rows: y = alpha[group] + 0.5 x + noise, alpha ~ N(1, 0.3)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), PER_GROUP)
    x = rng.standard_normal(group.size)
    alpha = rng.normal(1.0, 0.3, groups)
    y = alpha[group] + 0.5 * x + rng.normal(0, 1.0, group.size)
    return {"N": int(group.size), "G": groups, "group": group.tolist(), "x": x.tolist(),
            "y": y.tolist()}


def exact(d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact posterior of NORMAL_NORMAL for (mu, theta [G]): mean [G + 1], sd [G + 1] and the
    best mean-field sd 1/sqrt(Lambda_ii) [G + 1], from the precision Lambda [G + 1, G + 1]."""
    G, tau2, s2 = d["G"], d["tau"] ** 2, d["sigma"] ** 2
    counts = np.bincount(d["group"], minlength=G)
    sums = np.bincount(d["group"], weights=d["y"], minlength=G)
    lam = np.zeros((G + 1, G + 1))
    lam[0, 0] = 1 / PRIOR_SD ** 2 + G / tau2
    lam[0, 1:] = lam[1:, 0] = -1 / tau2
    lam[np.arange(1, G + 1), np.arange(1, G + 1)] = 1 / tau2 + counts / s2
    cov = np.linalg.inv(lam)
    mean = cov @ np.concatenate([[0.0], sums / s2])
    return mean, np.sqrt(np.diag(cov)), 1 / np.sqrt(np.diag(lam))


def normal_normal_data(groups: int, tau: float = TAU, seed: int = 20261129) -> dict:
    """G groups of PER_GROUP rows: theta ~ N(1, tau), y ~ N(theta[group], SIGMA)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), PER_GROUP)
    theta = rng.normal(1.0, tau, groups)
    y = rng.normal(theta[group], SIGMA)
    return {"N": int(group.size), "G": groups, "group": group.tolist(), "y": y.tolist(),
            "tau": tau, "sigma": SIGMA}


def _errors(fit, mean, sd, best_sd) -> tuple[float, float, float, float]:
    """Max and root-mean-square |mean error| in exact sds, min and max fitted sd / best
    mean-field sd."""
    result = fit.result
    order = {name: i for i, name in enumerate(result.names)}
    index = [order["mu"]] + [order[f"theta[{j}]"] for j in range(mean.size - 1)]
    mu, fitted_sd = result.mu[index], np.exp(result.log_sigma[index])
    ratio, z = fitted_sd / best_sd, (mu - mean) / sd
    return (float(np.max(np.abs(z))), float(np.sqrt(np.mean(z ** 2))), float(ratio.min()),
            float(ratio.max()))


def exact_accuracy(groups: list[int], seeds: int, tau: float) -> None:
    """Whitened against unwhitened mean field on NORMAL_NORMAL, against its exact posterior."""
    import time
    import warnings

    import ppl
    model = ppl.compile(NORMAL_NORMAL)
    print(f"tau = {tau}")
    print(f"{'latents':>7s} {'seed':>4s} {'max mean err h/n':>17s} {'rms mean err h/n':>17s} "
          f"{'sd ratio range h':>17s} {'sd ratio range n':>17s} {'cpu ratio':>9s} {'steps h/n':>11s}")
    for G in groups:
        d = normal_normal_data(G, tau)
        mean, sd, best_sd = exact(d)
        for seed in range(seeds):
            row = {}
            for precondition in ("hessian", "none"):
                cpu = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = model.fit(d, seed=seed, guide="meanfield", precondition=precondition)
                row[precondition] = (time.process_time() - cpu, fit.result.steps,
                                     *_errors(fit, mean, sd, best_sd))
            h, n = row["hessian"], row["none"]
            print(f"{G + 1:7d} {seed:4d} {h[2]:8.3f}/{n[2]:<8.3f} {h[3]:8.3f}/{n[3]:<8.3f} "
                  f"{h[4]:8.3f}-{h[5]:<8.3f} {n[4]:8.3f}-{n[5]:<8.3f} {h[0] / n[0]:9.2f} "
                  f"{h[1]:5d}/{n[1]:<5d}", flush=True)


def _fitted(text: str, d: dict):
    """(compiled model, mean-field mu [D], sd [D]) of a default fit (seed 0)."""
    import warnings

    import ppl
    from ppl import api
    compiled, compile_model = [], api.compile_model

    def keep(*args, **kwargs):
        compiled.append(compile_model(*args, **kwargs))
        return compiled[-1]
    api.compile_model = keep
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = ppl.compile(text).fit(d, seed=0, guide="meanfield").result
    finally:
        api.compile_model = compile_model
    return compiled[-1], np.asarray(result.mu), np.exp(np.asarray(result.log_sigma))


def dense_hessian(names: list[str], repeat: int) -> None:
    """The dense whitening's Hessian (20 draws of the fitted guide) by reverse-over-reverse
    products (``expected_hessian``, the traced path) and by differences of the gradient
    (``difference_hessian``, through the fused kernels), central and forward, each in the
    largest chunks the fit would give it: CPU of each over one 5-draw gradient (medians of
    ``repeat`` interleaved rounds), and each difference's error against the traced H scaled by
    the guide's sds (S H S, about unit diagonal): its largest entry and its Frobenius norm
    relative to the traced one's. The last column is the rule the fit takes (by the model's
    ``optim.score_chunk``)."""
    import time

    import autograd.numpy as anp
    from autograd import grad
    from ppl.infer import optim, precondition
    import posteriordb_data as pdb
    print(f"{'model':42s} {'D':>3s} {'traced/grad':>11s} {'central/grad':>12s} "
          f"{'forward/grad':>12s} {'central err max, rel':>20s} {'forward err max, rel':>20s} "
          f"{'fit':>7s}")
    for name in names:
        if name == "big_regression":
            text, d = e2e.BIG_REGRESSION, e2e.big_regression_data()
        elif (_REPO / "models" / f"{name}.ppl").exists():
            text = (_REPO / "models" / f"{name}.ppl").read_text()
            d = __import__("json").loads((_REPO / "models" / f"{name}.json").read_text())
        else:
            text, d = pdb.model_path(name).read_text(), pdb.load_data(name)
        compiled, mu, sd = _fitted(text, d)
        rng = np.random.default_rng(1)
        zeta = mu + sd * rng.standard_normal((20, mu.size))
        gradient = grad(lambda z: anp.sum(compiled.log_joint(z)))
        five = zeta[:5]
        log_joint, M = compiled.log_joint, len(zeta)
        chunk = optim.score_chunk(getattr(compiled, "model", None))   # the fit's
        jobs = {"grad": lambda: gradient(five),
                "traced": lambda: precondition.expected_hessian(log_joint, zeta),
                "central": lambda: precondition.difference_hessian(log_joint, zeta, sd,
                                                                   max(chunk, 2 * M)),
                "forward": lambda: precondition.difference_hessian(log_joint, zeta, sd,
                                                                   min(chunk, 2 * M - 1))}
        cpu, H = {key: [] for key in jobs}, {}
        for _ in range(repeat):
            for key, job in jobs.items():
                start = time.process_time()
                H[key] = job()
                cpu[key].append(time.process_time() - start)
        c = {k: float(np.median(v)) for k, v in cpu.items()}
        t = sd[:, None] * H["traced"] * sd
        errors = []
        for key in ("central", "forward"):
            f = sd[:, None] * H[key] * sd
            relative = np.linalg.norm(f - t) / np.linalg.norm(t)
            errors.append(f"{np.abs(f - t).max():9.1e} {relative:9.1e}")
        rule = "forward" if chunk < 2 * M else "central"
        print(f"{name:42s} {mu.size:3d} {c['traced'] / c['grad']:11.1f} "
              f"{c['central'] / c['grad']:12.1f} {c['forward'] / c['grad']:12.1f} "
              f"{errors[0]:>20s} {errors[1]:>20s} {rule:>7s}", flush=True)


def shipped(name: str, seeds: int) -> None:
    """A shipped model (models/NAME.ppl) whitened and not, seeds 0..n-1: CPU ratio and counts."""
    import json
    text = (_REPO / "models" / f"{name}.ppl").read_text()
    d = json.loads((_REPO / "models" / f"{name}.json").read_text())
    print(f"{'seed':>4s} {'cpu ratio':>9s} {'steps h/n':>11s} {'grads h/n':>11s} "
          f"{'g-draws h/n':>13s}")
    for seed in range(seeds):
        h = e2e.fit_ppl(text, d, seed=seed, guide="meanfield", precondition="hessian")
        n = e2e.fit_ppl(text, d, seed=seed, guide="meanfield", precondition="none")
        print(f"{seed:4d} {h['cpu'] / n['cpu']:9.2f} {h['steps']:5d}/{n['steps']:<5d} "
              f"{h['grad']:5d}/{n['grad']:<5d} {h['grad_draws']:6d}/{n['grad_draws']:<6d}",
              flush=True)


def optimum(name: str, seeds: int) -> None:
    """A shipped model's default mean-field fits, whitened and not (seeds 0..n-1), against a
    precise mean-field optimum: the mean of four fits with 50 draws per step and tol 1e-5
    (whitened and not, seeds 0-1), whose spread is printed too. Errors of the fitted means in
    the reference's mean-field sds: the first three latents (stochastic_volatility: mu, phi,
    sigma), the largest and the root mean square over all."""
    import json
    import warnings

    import ppl
    model = ppl.compile((_REPO / "models" / f"{name}.ppl").read_text())
    d = json.loads((_REPO / "models" / f"{name}.json").read_text())

    def fit(seed, precondition, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(d, seed=seed, guide="meanfield", precondition=precondition,
                               **options).result
        return np.asarray(result.mu), np.asarray(result.log_sigma), list(result.names)

    precise = [fit(seed, pre, mc_samples=50, tol=1e-5, iter=40_000)
               for pre in ("hessian", "none") for seed in (0, 1)]
    mean = np.mean([p[0] for p in precise], axis=0)
    sd = np.exp(np.mean([p[1] for p in precise], axis=0))
    names = precise[0][2]
    spread = max(np.abs((p[0] - mean) / sd).max() for p in precise)
    print(f"reference: {len(mean)} latents, precise fits within {spread:.3f} sds of their mean")
    print(f"{'fit':>12s} {'first three (' + ', '.join(names[:3]) + ')':>32s} {'max':>6s} {'rms':>6s}")
    for seed in range(seeds):
        for pre in ("hessian", "none"):
            z = (fit(seed, pre)[0] - mean) / sd
            first = " ".join(f"{v:+.2f}" for v in z[:3])
            print(f"{pre + ' ' + str(seed):>12s} {first:>32s} {np.abs(z).max():6.2f} "
                  f"{np.sqrt(np.mean(z ** 2)):6.3f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[6, 96, 296, 996, 2996])
    parser.add_argument("--lanczos-accuracy", nargs="+", metavar="POSTERIOR",
                        help="accuracy.py on these posteriors, every model on the Lanczos path")
    parser.add_argument("--exact-accuracy", action="store_true",
                        help="whitened vs unwhitened fits against an exact Gaussian posterior")
    parser.add_argument("--seeds", type=int, default=2,
                        help="with --exact-accuracy, --shipped or --optimum: seeds 0..n-1")
    parser.add_argument("--tau", type=float, default=TAU,
                        help="with --exact-accuracy: the group sd (smaller: more coupled)")
    parser.add_argument("--dense-hessian", nargs="+", metavar="MODEL",
                        help="cost and accuracy of the dense Hessian, traced vs differences")
    parser.add_argument("--repeat", type=int, default=3, help="with --dense-hessian: rounds")
    parser.add_argument("--shipped", metavar="MODEL",
                        help="a shipped model whitened and not, seeds 0..--seeds-1")
    parser.add_argument("--optimum", metavar="MODEL",
                        help="a shipped model's fits against a precise mean-field optimum")
    args = parser.parse_args(argv)
    if args.optimum:
        optimum(args.optimum, args.seeds)
        return
    if args.shipped:
        shipped(args.shipped, args.seeds)
        return
    if args.dense_hessian:
        dense_hessian(args.dense_hessian, args.repeat)
        return
    if args.lanczos_accuracy:
        import accuracy
        from ppl.infer import precondition
        precondition.WHOLE_MAX_DIM = 0
        accuracy.main(["--seeds", "2", "--only", *args.lanczos_accuracy])
        return
    if args.exact_accuracy:
        exact_accuracy(args.groups, args.seeds, args.tau)
        return
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
