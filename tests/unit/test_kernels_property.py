"""Property: for random predictors over the terms the likelihood kernels match (kernels.py) and
some they must not, in any order, signs and nesting, through a let or not, with latents and
params, the fused log joint, its gradient and its Jacobian (each draw's gradient) are the
traced path's (``compile_model(..., fuse=False)``), through the pass over the rows and the
Gram form."""
from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as np
from autograd import grad, jacobian
from hypothesis import given, settings
from hypothesis import strategies as st

from ppl import kernels
from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse

_HEAD = """data N: int
data K: int
data J: int
data x: real[N]
data x2: real[N]
data X: real[N, K]
data g: int[N]
data h: int[N]
data m: int[N]
data y: {y}[N]
sample alpha ~ Normal(0, 1)
sample b0 ~ Cauchy(0.5, 2)
sample beta: real<lower=-2>[K] ~ Normal(0, 1)
sample tau ~ HalfNormal(1)
sample a: real[J] ~ Normal(alpha, tau)
sample b: real<lower=-1, upper=2>[J] ~ Normal(0, 0.5)
sample ab: real[J, 2] ~ Normal(0, 1)
sample sigma ~ HalfCauchy(1)
param p: real
param q: real[J] ~ Normal(0, 1)
let t = alpha * 2.0 - b0
"""
# terms of a predictor [N] or (); the kernel splits most, keeps some whole (a generic term),
# and cannot take a predictor of scalars alone (then the plain path)
TERMS = ["X @ beta", "a[g]", "ab[g, 1]", "ab[g, h]", "ab[g, -1]", "beta[0] * x", "x * b[g]",
         "(b0 + b[g]) * x", "x2 * (alpha - a[g] + X @ beta)", "x * -(a[g] + b0) * x2",
         "alpha", "2.5 * b0", "t", "t * x", "sin(alpha * x)", "exp(alpha) * x",
         "alpha * b0 * x", "a[g] * b[g]", "a[g] / 2.0", "(a + 1.0)[g]", "X[:, 0:1] @ beta[0:1]",
         "m * alpha", "x", "0.5", "x * x2", "p * x", "q[g]", "p", "q[g] * x + b[g]"]
FAMILIES = ["Normal({eta}, 1.5)", "Normal({eta}, sigma)", "Normal({eta}, sigma * 2.0)",
            "Bernoulli(logit={eta})", "Binomial(m, logit={eta})", "Binomial(4, logit={eta})",
            "Poisson(log_rate={eta})",
            # not a kernel's: the plain path
            "StudentT(4, {eta}, sigma)", "Bernoulli(sigmoid({eta}))"]
# the terms linear in the coefficients, which the Gram form takes (with data and constants)
GENERIC = {"sin(alpha * x)", "alpha * b0 * x", "a[g] * b[g]", "a[g] / 2.0", "(a + 1.0)[g]"}
LINEAR = [term for term in TERMS if term not in GENERIC]


def _terms(menu):
    return st.lists(st.tuples(st.sampled_from(menu), st.sampled_from(["+", "-"]), st.booleans()),
                    min_size=1, max_size=4)


# (gram, terms): the Gram form wherever it applies, mostly on linear predictors
_gram_and_terms = st.booleans().flatmap(
    lambda gram: st.tuples(st.just(gram), _terms(LINEAR if gram else TERMS)))


def _predictor(terms) -> str:
    text = ""
    for i, (term, sign, parenthesized) in enumerate(terms):
        term = f"({term})" if parenthesized or sign == "-" else term
        text = (("-" if sign == "-" else "") + term) if i == 0 else f"{text} {sign} {term}"
    return text


def _compile(text: str, data: dict, fuse: bool):
    program = parse(text, "model.ppl")
    with warnings.catch_warnings():     # a latent sigma the checker cannot bound, say
        warnings.simplefilter("ignore")
        values, dims = load_data(check(program), data)
        return compile_model(check(program, dims), values, fuse=fuse)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(_gram_and_terms, st.sampled_from(FAMILIES),
       st.sampled_from(["", "_eta", "mu"]), st.sampled_from([1, 3, 40]),
       st.sampled_from([1, 3]), st.sampled_from([1, 4]), st.sampled_from([1, 3]),
       st.integers(0, 2 ** 16))
def test_fused_log_joint_is_the_traced_one(gram_and_terms, family, let, N, K, J, S, seed):
    gram, terms = gram_and_terms
    eta = _predictor(terms)
    lines = [] if not let else [f"let {let} = {eta}"]   # _eta private (inlined), mu reported
    discrete = "Bernoulli" in family or "Binomial" in family or "Poisson" in family
    text = _HEAD.format(y="int" if discrete else "real") + "\n".join(
        lines + ["observe y ~ " + family.format(eta=let or eta)]) + "\n"
    rng = np.random.default_rng(seed)
    m = rng.integers(1, 6, N)
    y = {"Normal": rng.normal(0, 2, N), "StudentT": rng.normal(0, 2, N),
         "Bernoulli": rng.integers(0, 2, N), "Poisson": rng.poisson(2.0, N),
         "Binomial": rng.binomial(m if "(m," in family else np.full(N, 4), 0.4)}[family.split("(")[0]]
    # an empty level of g when J > 1 (level 0 unused)
    data = {"N": N, "K": K, "J": J, "x": rng.normal(0, 1, N), "x2": rng.normal(0, 1, N),
            "X": rng.normal(0, 1, (N, K)), "g": rng.integers(min(1, J - 1), J, N),
            "h": rng.integers(0, 2, N), "m": m, "y": y}
    saved = kernels.GRAM_MIN_ROWS, kernels.GRAM_ROWS_PER_COLUMN
    try:
        if gram:
            kernels.GRAM_MIN_ROWS, kernels.GRAM_ROWS_PER_COLUMN = 0, 1
        fused = _compile(text, data, True)
    finally:
        kernels.GRAM_MIN_ROWS, kernels.GRAM_ROWS_PER_COLUMN = saved
    traced = _compile(text, data, False)
    z = np.random.default_rng(seed + 1).normal(0, 0.7, (S, fused.dim))
    # the same terms summed in another order (or through the Gram matrix of a design of at
    # most 40 well-conditioned rows): rounding, ~1e-14 relative to the largest term
    want = traced.log_joint(z)
    scale = max(1.0, np.abs(want).max())
    np.testing.assert_allclose(fused.log_joint(z), want, rtol=0, atol=1e-10 * scale)
    w = np.arange(1.0, S + 1.0)     # a VJP mixing up the draws cannot pass

    def total(compiled):
        return lambda zeta: anp.sum(compiled.log_joint(zeta) * w)
    want = grad(total(traced))(z)
    scale = max(1.0, np.abs(want).max())
    np.testing.assert_allclose(grad(total(fused))(z), want, rtol=0, atol=1e-10 * scale)
    want = jacobian(traced.log_joint)(z)
    np.testing.assert_allclose(jacobian(fused.log_joint)(z), want, rtol=0,
                               atol=1e-10 * max(1.0, np.abs(want).max()))
