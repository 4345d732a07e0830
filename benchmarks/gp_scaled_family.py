"""A Gaussian bent by one autoregressive layer (``Scaled`` below) as a rung of ``--guide auto``
after a skipped full rank, on gp_pois_regr and centered eight schools, scored against the
posteriordb reference (docs/history/trust-log.md, "gp_pois_regr under auto", sixth attempt). This
probe keeps its own copy of the family for its variants (``--powers``, ``--no-pairs``); the family
as auto fits it is ppl/guides/scaled.py (since the "Twelfth attempt").

The family: zeta = a + A y, A lower-triangular (positive diagonal), eps ~ N(0, I), and

    y_i = m_i + (eps_i + t_i - m_i) exp(s_i),  s_i = sum_{j<i} C_ij eps_j,
    t_i = sum_{j<i} B_ij eps_j^2 + sum_{k<j<i} E_ijk eps_j eps_k   (``--powers``, ``--no-pairs``)

in the model's declaration order: the scale of a later coordinate log-linear in earlier ones
about the centre m (a funnel; the 1/alpha of a non-centred ridge), and a shift quadratic in the
earlier noise. s_i is odd in eps (a linear form in an odd tanh clamp), so E[s_i] = 0 and the
entropy is the Gaussian's, in closed form; log q at a point takes D - 1 passes. At C = B = E = 0
it is the Gaussian N(a, A A^T).

For each seed: a mean-field fit with its summary, timed alone (the baseline of issue 11's 4x),
then auto's own stream: mean field and the Gaussian full rank would start from
(ppl.infer.auto.fullrank_start; full rank is skipped on these posteriors), and one fit of the
family per variant, on a copy of auto's stream at that point. Per variant: CPU seconds of the
fit with its k̂ and summary, steps, the ELBO on 20,000 fresh draws, k̂, the PSIS effective
sample size, whether the summary was importance-corrected, the largest mean error (reference
sds) and sd deviation of the summary ``ppl`` would print, and the whole climb's CPU (mean field
+ start + the fit + summary) over the baseline.

    PYTHONPATH=. python benchmarks/gp_scaled_family.py --seeds 0 1 2 3 4
    PYTHONPATH=. python benchmarks/gp_scaled_family.py --seeds 0 1 2 \
        --posterior eight_schools-eight_schools_centered
    PYTHONPATH=. python benchmarks/gp_scaled_family.py --seeds 0 --no-pairs \
        --variants lbfgs,mf-plain,1024,400

A variant is adam,FROM,CENTRE,WINDOW,DRAWS,LR (advi's fit loop: Adam, its convergence rule,
DRAWS draws a step, LR a base step size or "search") or KIND,FROM,M,ITERS[,ROUNDS|,MEMORY]:
scipy's L-BFGS-B on M fixed standard-normal draws and their mirror images, at most ITERS
iterations in all. KIND "lbfgs" (one set of draws; MEMORY, default 10, its maxcor), "lbfgsc"
(the same with row i of C in units 1 / (1 + |m_i|), since C_ij moves y_i by about |eps_i - m_i|
eps_j), "lbfgsr" (those units, ROUNDS rounds of fresh draws from a generator of their own),
"lbfgss" (the same, the draws from auto's stream, as the integrated rung drew them). M may be a
schedule "128/128/256" (M per round, the last repeated; "1024:30" a round of 30 iterations).
FROM is "start" (fitted in the coordinates of auto's flow start, zeta = m0 + L u, L its
Cholesky factor) or "mf" (the mean-field fit's diagonal frame), each with "-plain" for the
same start fitted in the model's own coordinates; the layer's centre m starts at the model's
zero (CENTRE "zero"; "mean": at the frame's mean, adam only).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import posteriordb_data as pdb  # noqa: E402

import ppl  # noqa: E402
from ppl.guides import MEAN_FIELD  # noqa: E402
from ppl.guides.moments import MonteCarloMoments  # noqa: E402
from ppl.infer import advi, auto  # noqa: E402
from ppl.infer.elbo import elbo  # noqa: E402
from ppl.infer.precondition import Frame  # noqa: E402
from ppl.linalg import solve_lower  # noqa: E402

DEFAULT = "gp_pois_regr-gp_pois_regr"
DEFAULT_VARIANTS = ("adam,start,zero,100,20,search", "lbfgsc,mf-plain,256,500",
                    "lbfgsr,mf-plain,128/128/256,500,5", "lbfgss,mf-plain,128/128/256,500,5")

_LOG_2PI = float(np.log(2 * np.pi))
S_MAX = 6.0          # |s| <= S_MAX (an odd tanh clamp): a diverging step cannot overflow exp(s)
POWERS = (2,)        # the shift's powers of each earlier eps (--powers)
PAIRS = True         # the shift's products of two earlier eps (--no-pairs: none)


@dataclass(frozen=True)
class Scaled(MonteCarloMoments):   # mean and log_sd by Monte Carlo, as ppl's families
    """q = law of a + A y(eps) (module docstring). ``theta`` is a [D], M [D, D] (row-major;
    A = tril(M, -1) + diag(exp(diag M)), as FullRank's L), m [D], then [D, D] blocks whose
    strict lower triangles are C and one B per power, then E [D, D * D] (row i, column
    j * D + k) masked to k < j < i. Unused entries get zero gradients and never move.
    """

    D: int
    name = "scaled"

    def init(self, D: int, init_scale: float) -> np.ndarray:
        """a = 0, A = init_scale I, m = 0, C = B = E = 0: the Gaussian N(0, init_scale^2 I)."""
        return np.concatenate([np.zeros(D), np.diag(np.full(D, np.log(init_scale))).ravel(),
                               np.zeros(D), np.zeros((1 + len(POWERS)) * D * D + D * D * D)])

    def eps_dim(self, D: int) -> int:
        return D

    def split(self, theta):
        """``(a [D], A [D, D], m [D], C [D, D], [B per power] + [E])``, differentiable."""
        D = self.D
        M = anp.reshape(theta[D:D + D * D], (D, D))
        A = anp.tril(M, -1) + anp.diag(anp.exp(anp.diag(M)))
        at, D2 = 2 * D + D * D, D * D
        return (theta[:D], A, theta[D + D * D:at],
                anp.tril(anp.reshape(theta[at:at + D2], (D, D)), -1),
                [anp.tril(anp.reshape(theta[at + k * D2:at + (k + 1) * D2], (D, D)), -1)
                 for k in range(1, 1 + len(POWERS))]
                + [anp.reshape(theta[at + (1 + len(POWERS)) * D2:], (D, D * D)) * _mask(D)])

    def forward(self, theta, eps):
        """(zeta [S, D], log|det d zeta / d eps| [S]) for eps [S, D]."""
        a, A, m, C, B = self.split(theta)
        s = S_MAX * anp.tanh((eps @ C.T) / S_MAX)
        y = m + (eps + _shift(eps, B) - m) * anp.exp(s)
        return a + y @ A.T, anp.sum(anp.log(anp.diag(A))) + anp.sum(s, axis=1)

    def inverse(self, theta, zeta):
        """(eps [S, D], log|det| [S]) for zeta [S, D]: y = A^-1 (zeta - a), then eps in D
        passes (eps before i fixes s_i, so pass i makes eps_i exact)."""
        a, A, m, C, B = self.split(theta)
        y = solve_lower(A, (zeta - a).T).T
        eps = y
        for _ in range(self.D - 1):
            eps = m - _shift(eps, B) + (y - m) * anp.exp(-S_MAX * anp.tanh((eps @ C.T) / S_MAX))
        s = S_MAX * anp.tanh((eps @ C.T) / S_MAX)
        return eps, anp.sum(anp.log(anp.diag(A))) + anp.sum(s, axis=1)

    def draw(self, theta, eps):
        return self.forward(theta, eps)[0]

    def entropy(self, theta, eps=None):
        """The Gaussian's: sum(log diag A) + D/2 (1 + log 2 pi), since E[s_i] = 0."""
        D = self.D
        return anp.sum(anp.diag(anp.reshape(theta[D:D + D * D], (D, D)))) + \
            0.5 * D * (1.0 + _LOG_2PI)

    def draw_and_entropy(self, theta, eps):
        return self.draw(theta, eps), self.entropy(theta)

    def log_q(self, theta, zeta):
        """log q(zeta) [S] = log N(eps; 0, I) - log|det|, by the inverse."""
        eps, log_det = self.inverse(theta, zeta)
        return -0.5 * anp.sum(eps * eps, axis=1) - 0.5 * self.D * _LOG_2PI - log_det

    def sample(self, theta, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(np.asarray(theta, dtype=float), rng.standard_normal((n, self.D)))

    def jitter_scale(self, theta) -> np.ndarray:
        """The affine part's marginal sd (row norm of A) for a_i and row i of A's
        off-diagonal entries, 1 for the log-diagonal, m and C (unit-free)."""
        D = self.D
        _, A, *_ = self.split(np.asarray(theta, dtype=float))
        sd = np.sqrt(np.sum(A * A, axis=1))
        rows = np.repeat(sd[:, None], D, axis=1)
        np.fill_diagonal(rows, 1.0)
        return np.concatenate([sd, rows.ravel(), np.ones(D + (1 + len(POWERS)) * D * D + D ** 3)])

    def frame(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(a, A)``: the affine part (all of q while C = 0)."""
        a, A, *_ = self.split(np.asarray(theta, dtype=float))
        return np.array(a), np.array(A)

    def push_affine(self, theta, m0, W) -> np.ndarray:
        """theta of the law of m0 + W zeta: (a, A) -> (m0 + W a, W A), the layer unchanged.

        Exact for a diagonal or lower-triangular W with a positive diagonal (W A is then of
        A's form). Any other W only while C = 0 (q Gaussian): A becomes the Cholesky factor
        of W A A^T W^T. Otherwise the law is not in the family: ValueError (a caller's bug).
        """
        theta = np.array(theta, dtype=float)
        D = self.D
        a, A, _, C, B = self.split(theta)
        W = np.diag(W) if np.ndim(W) == 1 else np.asarray(W, dtype=float)
        WA = W @ A
        if np.any(np.triu(WA, 1)) or np.any(np.diag(WA) <= 0):
            if np.any(C) or any(np.any(b) for b in B):
                raise ValueError("Scaled.push_affine: W must be lower-triangular with a "
                                 "positive diagonal once the scale layer is not the identity")
            _, R = np.linalg.qr(WA.T)
            WA = R.T * np.sign(np.diag(R))
        theta[:D] = m0 + W @ a
        theta[D:D + D * D] = (np.tril(WA, -1) + np.diag(np.log(np.diag(WA)))).ravel()
        return theta

    def warm_start(self, source, theta) -> np.ndarray:
        """The source's Gaussian (its frame) with the identity layer."""
        m0, W = source.frame(theta)
        return self.push_affine(self.init(self.D, 1.0), m0, W)

def _mask(D):
    """[D, D * D]: 1 where E_ijk is used (k < j < i; none without PAIRS)."""
    i, j, k = np.meshgrid(np.arange(D), np.arange(D), np.arange(D), indexing="ij")
    return ((i > j) & (j > k) & PAIRS).reshape(D, D * D).astype(float)


def _shift(eps, B):
    """t [S, D]: sum_k (eps ** POWERS[k]) B_k^T + (pairs of eps) E^T, from earlier eps."""
    S, D = eps.shape
    pairs = anp.reshape(eps[:, :, None] * eps[:, None, :], (S, D * D))
    return sum((eps ** p) @ b.T for p, b in zip(POWERS, B[:-1])) + pairs @ B[-1].T


def errors(fit, reference) -> tuple[float, float]:
    """(max |mean error| in reference sds, max |sd / reference sd - 1|) of fit's summary."""
    summary = fit.summary().to_dict()
    mean = [abs(summary[e]["mean"] - r["mean"]) / r["sd"] for e, r in reference.items()]
    sd = [abs(summary[e]["sd"] / r["sd"] - 1) for e, r in reference.items()]
    return max(mean), max(sd)


def lbfgs(framed, guide, theta, M: int, iters: int, scale=None, memory: int = 10,
          seed=99):
    """theta + scale * v after at most ``iters`` L-BFGS-B iterations over v on -ELBO at M
    fixed draws and their mirrors, drawn from ``seed`` (an int or a Generator). A non-finite
    value is reported as 1e10, so the line search steps back (it cannot back off from inf)."""
    draws = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    eps = draws.standard_normal((M, framed.dim))
    eps = np.concatenate([eps, -eps])
    scale = np.ones_like(theta) if scale is None else scale
    theta0 = theta
    objective = value_and_grad(
        lambda z: -elbo(framed.log_joint, theta0 + scale * z, eps, guide))

    def safe(th):
        with np.errstate(all="ignore"):
            value, grad = objective(th)
        return (value, grad) if np.isfinite(value) and np.all(np.isfinite(grad)) \
            else (1e10, np.zeros_like(th))
    return theta0 + scale * minimize(safe, np.zeros_like(theta), jac=True, method="L-BFGS-B",
                                     options={"maxiter": iters, "maxcor": memory}).x


def lbfgs_rounds(framed, guide, theta, kind: str, rest, rng):
    """theta after the L-BFGS-B rounds of an lbfgs* variant (module docstring)."""
    D = guide.D
    units = np.ones_like(theta)
    if kind != "lbfgs":   # row i of C in 1 / (1 + |m_i|)
        at = 2 * D + D * D
        units[at:at + D * D] = np.repeat(1 / (1 + np.abs(theta[D + D * D:at])), D)
    rounds = int(rest[2]) if kind in ("lbfgsr", "lbfgss") else 1
    memory = int(rest[2]) if kind in ("lbfgs", "lbfgsc") and len(rest) > 2 else 10
    sizes = [m.partition(":") for m in rest[0].split("/")]
    for r in range(rounds):
        size, _, its = sizes[min(r, len(sizes) - 1)]
        theta = lbfgs(framed, guide, theta, int(size),
                      int(its) if its else int(rest[1]) // rounds, units, memory,
                      rng if kind == "lbfgss" else 99 + r)
    return theta


def fit_variant(fit, meanfield, start, spec: str, rng):
    """(the family's result in the model's coordinates, steps) for one variant."""
    kind, where, *rest = spec.split(",")
    plain = where.endswith("-plain")
    m0, W = (MEAN_FIELD.frame(meanfield.theta) if where.startswith("mf")
             else start.guide.frame(start.theta))
    guide, D = Scaled(fit.compiled.dim), fit.compiled.dim
    theta = guide.init(D, 1.0)
    # the model's zero in the frame's coordinates: the centre of a non-centred ridge
    zero = -m0 / W if np.ndim(W) == 1 else solve_lower(W, -m0[:, None])[:, 0]
    framed = Frame(fit.compiled, m0, W)
    if plain:   # the same start, fitted in the model's own coordinates
        theta[D + D * D:2 * D + D * D] = zero
        theta = guide.push_affine(theta, m0, W)
        framed, m0, W = fit.compiled, np.zeros(D), np.ones(D)
    centre, *rest = rest if kind == "adam" else ["zero"] + rest
    if centre == "zero" and not plain:
        theta[D + D * D:2 * D + D * D] = zero
    if kind.startswith("lbfgs"):
        theta = lbfgs_rounds(framed, guide, theta, kind, rest, rng)
        result = dataclasses.replace(start, guide=guide, theta=guide.push_affine(theta, m0, W))
        return result, int(rest[1])
    window, draws, lr = rest
    options = dataclasses.replace(fit.options, window=int(window), mc_samples=int(draws),
                                  lr=None if lr == "search" else float(lr))
    result = advi._fit_plain(framed, guide, theta, options, rng, None, False,
                             time.perf_counter())
    return dataclasses.replace(result, theta=guide.push_affine(result.theta, m0, W),
                               final_elbo=result.final_elbo + getattr(framed, "log_det", 0.0)
                               ), result.steps


def variant_row(fit, meanfield, start, spec, rng, reference, base, baseline) -> str:
    seed = fit.options.seed
    started = time.process_time()
    try:
        result, steps = fit_variant(fit, meanfield, start, spec, rng)
    except ppl.PplError as error:
        return (f"| {seed} | {spec} | {time.process_time() - started:.1f} | failed: "
                f"{str(error).splitlines()[0].split('error: ')[-1]} |")
    scored = dataclasses.replace(fit, result=result, _cache={})
    shown = errors(scored, reference)
    seconds = time.process_time() - started
    fresh = np.random.default_rng(5).standard_normal((20000, fit.compiled.dim))
    value = float(elbo(fit.compiled.log_joint, result.theta, fresh, result.guide))
    return (f"| {seed} | {spec} | {seconds:.1f} | {steps} | {value:.2f} | "
            f"{scored.khat:.2f} | {scored.psis.ess:.0f} | "
            f"{'yes' if scored.corrected else 'no'} | {shown[0]:.3f} / {shown[1]:.3f} | "
            f"{(base + seconds) / baseline:.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", default=DEFAULT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--powers", type=int, nargs="*", default=[2])
    parser.add_argument("--no-pairs", action="store_true")
    args = parser.parse_args(argv)
    global POWERS, PAIRS
    POWERS, PAIRS = tuple(args.powers), not args.no_pairs
    warnings.simplefilter("ignore")   # the data's unused 'y', and the fits' own warnings
    name = args.posterior
    model, data = ppl.load(pdb.model_path(name)), pdb.load_data(name)
    reference = pdb.load_reference(name)
    print("| seed | variant | CPU s | steps | ELBO (20000 fresh draws) | k̂ | ESS of draws | "
          "corrected | max mean err / max sd dev | climb / mf (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        started = time.process_time()
        fit = model.fit(data, seed=seed, guide="meanfield")
        mf_errors = errors(fit, reference)
        baseline = time.process_time() - started
        started = time.process_time()
        rng = np.random.default_rng(seed)   # auto's stream: mean field, then the probe
        meanfield = advi.fit(fit.compiled, fit.options, rng)
        start = auto.fullrank_start(fit.compiled, fit.options, rng, meanfield)
        probe = dataclasses.replace(fit, result=start, _cache={}).psis
        base = time.process_time() - started
        print(f"| {seed} | (mean field; start k̂ {probe.khat:.2f}, ESS "
              f"{probe.ess / probe.log_weights.size:.0%}) | {baseline:.1f} | {meanfield.steps} | "
              f"{meanfield.final_elbo:.2f} | {fit.khat:.2f} | | | "
              f"{mf_errors[0]:.3f} / {mf_errors[1]:.3f} | {base / baseline:.2f} |", flush=True)
        for spec in args.variants:
            print(variant_row(fit, meanfield, start, spec, copy.deepcopy(rng), reference,
                              base, baseline), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
