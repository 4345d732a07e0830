"""Time one ELBO-gradient step of the compiled models against hand-written numpy + autograd.

For every ``models/*.ppl`` (with its ``.json``) and a synthetic linear regression with
N = 100,000 rows and K = 20 predictors, time ``elbo.elbo_and_grad`` (value and gradient of the
mean-field ELBO at fixed eps) with the compiled log joint, and, where one is written below, the
same step with a hand-written log joint, for S = 1 and S = 10. Prints the median time per step
and the median of the paired ratios ours / hand-written.
Run: ``PYTHONPATH=. python benchmarks/step_benchmark.py [--quick] [--repeat 31] [--only NAME ...]``
(without PYTHONPATH it times whichever ppl is installed).

``--families``: instead, the step time of each variational family (ppl/guides) relative to
mean field, on a log density that costs O(S D) (independent normals, so the guide's own cost is
what shows), at D = 10, 100 and 1000 with S = 5 draws (the default ``mc_samples``).

``--path-solve MODEL ...``: instead, the flow's path cotangent (ppl/guides/iaf.py) solved by
sweeps against the whole-Jacobian solve, at the flow each example model's ``--guide flow`` fit
(seed 0) ends at, for S = 5 and 60 draws: a trained flow's layers decide how many sweeps the
fixed point takes, the identity layers of ``--families`` take one.
"""
from __future__ import annotations

import argparse
import json
import time
import timeit
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad

from ppl.compiler import compile_model
from ppl.errors import PplError
from ppl.data import load_data
from ppl.guides import MEAN_FIELD, family
from ppl.infer.elbo import elbo_and_grad
from ppl.frontend.check import check
from ppl.frontend.parse import parse

_REPO = Path(__file__).resolve().parents[1]
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)

BIG_REGRESSION = """\
data N: int
data K: int
data X: real[N, K]
data y: real[N]
sample alpha ~ Normal(0, 10)
sample beta: real[K] ~ Normal(0, 2)
sample sigma ~ HalfNormal(1)
let _mu = alpha + X @ beta
observe y ~ Normal(_mu, sigma)
"""


def _normal(x, mu, sigma):
    z = (x - mu) / sigma
    return -0.5 * z * z - anp.log(sigma) - _LOG_SQRT_2PI


# ----- hand-written log joints: zeta [S, D] -> [S], the same layout as the compiler's --------

def hand_eight_schools(data):
    y, sigma = np.asarray(data["y"], float), np.asarray(data["sigma"], float)

    def log_joint(z):
        mu, log_tau, eta = z[:, 0], z[:, 1], z[:, 2:]
        tau = anp.exp(log_tau)
        theta = mu[:, None] + tau[:, None] * eta
        return (_normal(mu, 0.0, 5.0)
                + np.log(2 / np.pi) - np.log(5.0) - anp.log1p((tau / 5.0) ** 2) + log_tau
                + anp.sum(_normal(eta, 0.0, 1.0), axis=1)
                + anp.sum(_normal(y, theta, sigma), axis=1))
    return log_joint


def hand_linear_regression(data):
    X, y = np.asarray(data["X"], float), np.asarray(data["y"], float)
    x_t, K = np.ascontiguousarray(X.T), X.shape[1]

    def log_joint(z):
        alpha, beta, log_sigma = z[:, 0], z[:, 1:K + 1], z[:, K + 1]
        sigma = anp.exp(log_sigma)
        mu = alpha[:, None] + beta @ x_t
        return (_normal(alpha, 0.0, 10.0) + anp.sum(_normal(beta, 0.0, 2.0), axis=1)
                + np.log(2.0) + _normal(sigma, 0.0, 1.0) + log_sigma
                + anp.sum(_normal(y, mu, sigma[:, None]), axis=1))
    return log_joint


def hand_logistic_regression(data):
    X, y = np.asarray(data["X"], float), np.asarray(data["y"], float)
    x_t, K = np.ascontiguousarray(X.T), X.shape[1]

    def log_joint(z):
        alpha, beta = z[:, 0], z[:, 1:K + 1]
        logit = alpha[:, None] + beta @ x_t
        return (_normal(alpha, 0.0, 2.5) + anp.sum(_normal(beta, 0.0, 1.0), axis=1)
                + anp.sum(y * logit - anp.logaddexp(0.0, logit), axis=1))
    return log_joint


HAND = {"eight_schools": hand_eight_schools, "linear_regression": hand_linear_regression,
        "logistic_regression": hand_logistic_regression,
        "big_regression": hand_linear_regression}


def hand_step(log_joint, D):
    """The hand-written mean-field ELBO step: value and gradient in theta = (mu, log_sigma)."""
    def elbo(theta, eps):
        mu, log_sigma = theta[:D], theta[D:]
        return anp.mean(log_joint(mu + anp.exp(log_sigma) * eps)) + anp.sum(log_sigma)
    return value_and_grad(elbo)


# ----- timing -------------------------------------------------------------------------------

def _number(fn) -> int:
    """Calls per timing round: enough for ~20 ms, so timer resolution does not matter."""
    number, _ = timeit.Timer(fn, timer=time.process_time).autorange()
    return max(1, number // 10)


def paired_times(ours, hand, repeat: int) -> tuple[float, float | None, float | None]:
    """Median seconds per call of ``ours`` and ``hand`` and the median of their ratio.

    The two are timed alternately, round after round, in CPU time (``time.process_time``:
    on a loaded machine wall time mostly measures the waiting), and the ratio is taken within
    each round: load from other processes drifts slowly, so it cancels in the paired ratio.
    """
    n_ours = _number(ours)
    n_hand = _number(hand) if hand is not None else 0
    t_ours, t_hand = [], []
    for _ in range(repeat):
        t_ours.append(timeit.Timer(ours, timer=time.process_time).timeit(n_ours) / n_ours)
        if hand is not None:
            t_hand.append(timeit.Timer(hand, timer=time.process_time).timeit(n_hand) / n_hand)
    if hand is None:
        return float(np.median(t_ours)), None, None
    ratio = np.median(np.asarray(t_ours) / np.asarray(t_hand))
    return float(np.median(t_ours)), float(np.median(t_hand)), float(ratio)


def compile_text(text: str, data) -> object:
    program = parse(text)
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values)


def cases(include_big: bool, only=None):
    """(name, compiled, data dict) for every example model, then the big regression (those
    named in ``only``, if given)."""
    for path in sorted((_REPO / "models").glob("*.ppl")):
        if only and path.stem not in only:
            continue
        data = json.loads(path.with_suffix(".json").read_text())
        yield path.stem, compile_text(path.read_text(), data), data
    if include_big and (not only or "big_regression" in only):
        rng = np.random.default_rng(20240601)
        N, K = 100_000, 20
        X = rng.standard_normal((N, K))
        y = 0.5 + X @ rng.normal(0, 1, K) + rng.normal(0, 0.7, N)
        data = {"N": N, "K": K, "X": X, "y": y}
        yield "big_regression", compile_text(BIG_REGRESSION, data), data


FAMILY_SPECS = ("fullrank", "lowrank", "flow")


def family_rows(repeat: int, dims=(10, 100, 1000), S: int = 5):
    """(D, spec, ms per step of the family, ms of mean field, paired ratio) per family and D;
    the times are None where the family refuses D (flow beyond 300 dimensions)."""
    for D in dims:
        scales = np.linspace(0.5, 2.0, D)

        def log_joint(z):
            return -0.5 * anp.sum((z / scales) ** 2, axis=1)
        theta_mf = MEAN_FIELD.init(D, 0.1)
        eps_mf = np.random.default_rng(D).standard_normal((S, D))
        for spec in FAMILY_SPECS:
            try:
                guide = family(spec, D)
            except PplError:
                yield D, spec, None, None, None
                continue
            theta = guide.init(D, 0.1)
            eps = np.random.default_rng(D).standard_normal((S, guide.eps_dim(D)))
            ours, base, ratio = paired_times(
                lambda: elbo_and_grad(log_joint, theta, eps, guide),
                lambda: elbo_and_grad(log_joint, theta_mf, eps_mf, MEAN_FIELD), repeat)
            yield D, guide.name, ours, base, ratio


def main_families(repeat: int) -> None:
    print(f"{'D':>5s} {'family':12s} {'family (ms)':>12s} {'meanfield (ms)':>15s} {'ratio':>7s}")
    for D, name, ours, base, ratio in family_rows(repeat):
        if ours is None:
            print(f"{D:5d} {name:12s} {'refused (D too large for this family)':>36s}")
            continue
        print(f"{D:5d} {name:12s} {ours * 1e3:12.3f} {base * 1e3:15.3f} {ratio:7.1f}",
              flush=True)


def path_solve_rows(names, repeat: int):
    """(model, D, S, sweeps ms, whole ms, paired ratio sweeps / whole, sweeps used per layer)."""
    import warnings

    import ppl
    from ppl.guides import iaf
    for name in names:
        model = ppl.load(_REPO / "models" / f"{name}.ppl")
        data = json.loads((_REPO / "models" / f"{name}.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(data, seed=0, guide="flow").result
        guide, theta = result.guide, result.theta
        D = guide.D
        A = theta[D:D + D * D].reshape(D, D)
        params = iaf._iaf_layers(theta[D + D * D:], D, iaf.hidden_units(D), guide.K)
        for S in (5, 60):
            eps = np.random.default_rng(S).standard_normal((S, D))
            saved = iaf._iaf_run(params, eps, D)[1]
            counted = []
            settled = iaf._settled     # called once a sweep: count the sweeps
            iaf._settled = lambda *args: counted.append(1) or settled(*args)
            try:
                iaf._solve_by_sweeps(params, saved, eps, A, D)
            finally:
                iaf._settled = settled
            ours, whole, ratio = paired_times(
                lambda: iaf._solve_by_sweeps(params, saved, eps, A, D),
                lambda: iaf._solve_whole(params, saved, eps, A, D), repeat)
            yield name, D, S, ours, whole, ratio, len(counted) / guide.K


def main_path_solve(names, repeat: int) -> None:
    print("| model | D | S | sweeps ms | whole ms | sweeps / whole | sweeps a layer |\n"
          "|---|---|---|---|---|---|---|")
    for name, D, S, ours, whole, ratio, sweeps in path_solve_rows(names, repeat):
        print(f"| {name} | {D} | {S} | {ours * 1e3:.3f} | {whole * 1e3:.3f} | {ratio:.2f} | "
              f"{sweeps:.1f} |", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the N = 100,000 regression")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--only", nargs="*", help="model names to run")
    parser.add_argument("--families", action="store_true",
                        help="time each variational family against mean field instead")
    parser.add_argument("--path-solve", nargs="+", metavar="MODEL",
                        help="time the flow's two path-cotangent solves instead")
    args = parser.parse_args(argv)
    if args.path_solve:
        main_path_solve(args.path_solve, min(args.repeat, 9))
        return
    if args.families:
        main_families(args.repeat)
        return
    print(f"{'model':28s} {'S':>3s} {'ours (ms)':>10s} {'hand (ms)':>10s} {'ratio':>6s}")
    for name, compiled, data in cases(not args.quick, args.only):
        D = compiled.dim
        theta = np.concatenate([np.zeros(D), np.full(D, np.log(0.1))])
        for S in (1, 10):
            eps = np.random.default_rng(S).standard_normal((S, D))
            step = hand_step(HAND[name](data), D) if name in HAND else None
            try:
                ours, hand, ratio = paired_times(
                    lambda: elbo_and_grad(compiled.log_joint, theta, eps),
                    (lambda: step(theta, eps)) if step else None, args.repeat)
            except ValueError as error:   # a bug elsewhere must not hide the other rows
                print(f"{name:28s} {S:3d} failed: {error}", flush=True)
                continue
            line = f"{name:28s} {S:3d} {ours * 1e3:10.3f}"
            if hand is not None:
                line += f" {hand * 1e3:10.3f} {ratio:6.2f}"
            print(line, flush=True)

if __name__ == "__main__":
    main()
