"""LANGUAGE.md, rule by rule: one row per rule that no other test pins down, each citing its
section. A value row computes ``let v = EXPR`` on the data (and again with the data as
latents, through the traced path) and compares it with numpy; an error row checks the first
line of the located error (LINE:COL: message)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.special
import scipy.stats

from ppl.compiler import compile_model
from ppl.data import load_data, validate_observed
from ppl.errors import PplError
from ppl.evaluate import data_lets
from ppl.frontend.check import check
from ppl.frontend.parse import parse

M = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]])
V = np.array([0.2, 0.9, -0.4])

# (section, EXPR, expected value); M: real[2, 3] and v: real[3] are in scope
VALUES = [
    ("Lexical rules: numbers", ".5 + 1e-3 + 2.5E+4", 25000.501),
    ("Lexical rules: an integer literal is an int", "7 - 2 - 1", np.int64(4)),
    ("Lexical rules: newlines inside () and []", "sum([1,\n 2],\n axis=0)", np.int64(3)),
    ("Expressions: * binds tighter than +", "2 + 3 * 4", np.int64(14)),
    ("Expressions: unary - below **", "-2 ** 2", -4.0),
    ("Expressions: ** right associative", "2 ** 3 ** 2", 512.0),
    ("Expressions: ** with a negated exponent", "2 ** -1", 0.5),
    ("Expressions: / is true division", "7 / 2", 3.5),
    ("Expressions: / left associative", "8 / 2 / 2", 2.0),
    ("Expressions: indexing is 0-based", "v[0]", V[0]),
    ("Expressions: a negative literal index counts from the end", "v[-1]", V[-1]),
    ("Expressions: slices are half open", "v[1:]", V[1:]),
    ("Expressions: slice x[:-1]", "v[:-1]", V[:-1]),
    ("Expressions: slice x[a:b]", "v[0:2]", V[0:2]),
    ("Expressions: a negative literal slice bound counts from the end", "v[-2:-1]", V[-2:-1]),
    ("Expressions: X[:, 0]", "M[:, 0]", M[:, 0]),
    ("Expressions: x[i, j]", "M[1, 2]", M[1, 2]),
    ("Expressions: int-array index gathers", "v[[2, 0, 2]]", V[[2, 0, 2]]),
    ("Expressions: gather of rows", "M[[1, 0]]", M[[1, 0]]),
    ("Expressions: elementwise operators broadcast", "M - v", M - V),
    ("Expressions: @", "M @ v", M @ V),
    ("Expressions: sum over one axis", "sum(M, axis=0)", M.sum(0)),
    ("Expressions: mean over one axis", "mean(M, axis=1)", M.mean(1)),
    ("Expressions: log_sum_exp over all", "log_sum_exp(M)", scipy.special.logsumexp(M)),
    ("Expressions: log_sum_exp over one axis", "log_sum_exp(M, axis=1)",
     scipy.special.logsumexp(M, 1)),
    ("Expressions: softmax", "softmax(M)", scipy.special.softmax(M, -1)),
    ("Expressions: transpose", "transpose(M)", M.T),
    ("docs/language.md: transpose of a stack swaps its last two axes",
     "transpose(reshape(M, [1, 2, 3]))", np.swapaxes(M.reshape(1, 2, 3), -1, -2)),
    ("Version 2, operators: comparisons bind below + -", "1 + 2 < 4", np.int64(1)),
    ("Version 2, operators: comparisons give 0/1", "M >= 0.1", (M >= 0.1).astype(int)),
    ("Version 2, operators: where", "where(M > 0, M, v)", np.where(M > 0, M, V)),
    ("Version 2, functions: Phi", "Phi(M)", scipy.stats.norm.cdf(M)),
    ("Version 2, functions: inv_logit is sigmoid", "inv_logit(M) - sigmoid(M)", 0 * M),
    ("Version 2, functions: minimum", "minimum(M, v)", np.minimum(M, V)),
    ("Version 2, arrays: nested vector literal", "[[1, 2], [3, 4]]", np.array([[1, 2], [3, 4]])),
    ("Version 2, arrays: concat", "concat(M, M, axis=1)", np.concatenate([M, M], 1)),
    ("Version 2, arrays: stack", "stack(v, v, axis=1)", np.stack([V, V], 1)),
    ("Version 2, arrays: reshape", "reshape(M, [3, 2])", M.reshape(3, 2)),
    ("Version 2, arrays: reshape to one size, as numpy (was an internal error)",
     "reshape(M, 6)", M.reshape(6)),
    ("Version 2, arrays: newaxis", "v[:, newaxis] * v[newaxis, :]", np.outer(V, V)),
    ("Version 2, linear algebra: solve", "solve(outer(v, v) + eye(3), v)",
     np.linalg.solve(np.outer(V, V) + np.eye(3), V)),
    ("Version 2, linear algebra: gp_exp_quad_cov", "gp_exp_quad_cov(v, 1.5, 0.7)",
     1.5 ** 2 * np.exp(-np.subtract.outer(V, V) ** 2 / (2 * 0.7 ** 2))),
    ("Version 2, densities: lpdf", "lpdf(Normal(v, 2), M)", scipy.stats.norm.logpdf(M, V, 2)),
    ("Version 2, densities: lccdf", "lccdf(Weibull(1.5, 2), abs(M))",
     scipy.stats.weibull_min.logsf(abs(M), 1.5, scale=2)),
    ("Version 2, densities: lpdf of a Mixture (was an internal error on latents)",
     "lpdf(Mixture([0.3, 0.7], Normal([0, 1], 2)), v)",
     np.logaddexp(np.log(0.3) + scipy.stats.norm.logpdf(V, 0, 2),
                  np.log(0.7) + scipy.stats.norm.logpdf(V, 1, 2))),
    ("Version 2, densities: lcdf of a count", "lcdf(Poisson(2.5), 3)",
     scipy.stats.poisson.logcdf(3, 2.5)),
]

# (section, model text, data, first line of the error without 'model.ppl:')
ERRORS = [
    ("Lexical rules: one statement per line",
     "sample a ~ Normal(0, 1) sample b ~ Normal(0, 1)\n", None,
     "1:25: error: syntax error: unexpected keyword 'sample'; expected a newline, end of file"),
    ("Lexical rules: keywords are reserved", "let lower = 1\n", None,
     "1:5: error: syntax error: unexpected keyword 'lower'; expected a name"),
    ("Lexical rules: version 2 keywords are reserved", "let factor = 1\n", None,
     "1:5: error: syntax error: unexpected keyword 'factor'; expected a name"),
    ("Lexical rules: distribution names are reserved", "let Normal = 1\n", None,
     "1:5: error: 'Normal' is a reserved name and cannot be defined"),
    ("Lexical rules: function names are reserved", "sample sum ~ Normal(0, 1)\n", None,
     "1:8: error: 'sum' is a reserved name and cannot be defined"),
    ("Lexical rules: an int literal is 64-bit, in a dimension too (was an internal error at fit)",
     "sample m: real[99999999999999999999] ~ Normal(0, 1)\n", None,
     "1:16: error: int literal out of range: ints are 64-bit (-9223372036854775808 to "
     "9223372036854775807)"),
    ("Lexical rules: names", "let 1a = 2\n", None,
     "1:5: error: syntax error: unexpected number '1'; expected a name"),
    ("Errors: a syntax error at the unexpected token", "sample mu ~ Normal(0, 1))\n", None,
     "1:25: error: syntax error: unexpected ')'; expected a newline, end of file"),
    ("Errors: the contract's example",
     "data y: real\nsample mu ~ Normal(0, 1)\nobserve y ~ Normall(mu, 1)\n", {"y": 1.0},
     "3:13: error: unknown distribution 'Normall'; did you mean 'Normal'?"),
    ("Statements: a name is used only after its definition",
     "factor a\nsample a ~ Normal(0, 1)\n", None,
     "1:8: error: 'a' is used before it is defined (on line 2)"),
    ("Types: a dimension declared later", "data y: real[N]\ndata N: int\n", None,
     "1:14: error: 'N' is used before it is defined (on line 2)"),
    ("Types: a dimension that is a latent",
     "sample n ~ Normal(0, 1)\nsample x: real[n] ~ Normal(0, 1)\n", None,
     "2:16: error: bad dimension: 'n' is a latent variable, not an int data scalar"),
    ("docs/language.md: a dimension may be a data-only int let of + - *, not of /",
     "data K: int\nlet Kc = K / 1\nsample z: real[Kc] ~ Normal(0, 1)\n", {"K": 3},
     "3:16: error: bad dimension: 'Kc' is a let that is not built from int literals and int "
     "data scalars with + - *"),
    ("Types: bounds outside the support (upper)", "sample s: real<upper=-1> ~ HalfNormal(1)\n",
     None, "1:22: error: bound upper=-1 of 's' lies outside the support [0, inf) of its "
     "distribution"),
    ("Types: data bounds of a latent outside the support",
     "data a: real\nsample s: real<upper=a> ~ HalfNormal(1)\n", {"a": 0.0},
     "2:22: error: bound upper=a (= 0) of 's' lies outside the support [0, inf) of its "
     "distribution"),
    ("Types: data bounds of a param outside its prior's support",
     "data a: real\nparam x: real<lower=a> ~ Exponential(1)\n", {"a": -1.0},
     "2:21: error: bound lower=a (= -1) of 'x' lies outside the support [0, inf) of its "
     "distribution"),
    ("Types: a bound computed from data is finite",
     "data a: real\nsample s: real<lower=exp(a)> ~ Normal(0, 1)\n", {"a": 1000.0},
     "2:22: error: bad bounds: lower bound exp(a) is not finite (= inf)"),
    ("Version 2, types: bounds on an LKJCholesky latent (was an internal error)",
     "sample L: real<lower=0>[3, 3] ~ LKJCholesky(2)\n", None,
     "1:11: error: 'L' has the support Cholesky factor of a correlation matrix; bounds cannot "
     "be declared on it"),
    ("Discrete latents: elements independent, not Multinomial's (was an internal error)",
     "sample m ~ Normal(0, 1)\nsample a: int<lower=0, upper=2>[2] ~ Multinomial(2, [0.3, 0.7])\n"
     "observe [1.0, 0.5] ~ Normal(m + a, 1)\n", None,
     "2:38: error: discrete latent 'a' ~ Multinomial: its elements are drawn jointly, so they "
     "cannot be summed out one by one"),
    ("Discrete latents: an int latent's bounds inside its support",
     "sample mu ~ Normal(0, 1)\nsample z: int<lower=-1, upper=4> ~ DiscreteUniform(0, 2)\n"
     "factor mu * z\n", None,
     "2:21: error: bound lower=-1 of 'z' lies outside the support {0..2} of its distribution"),
    ("Discrete latents: an empty support from the data",
     "data L: int[2]\nsample mu ~ Normal(0, 1)\nsample z: int[2] ~ DiscreteUniform(L, 2)\n"
     "factor mu * z\n", {"L": [0, 3]},
     "3:20: error: the parameters of DiscreteUniform give an empty support {3..2} at z[1]"),
    ("Discrete latents: a literal bound outside a support from the data names the element",
     "data L: int[2]\nsample mu ~ Normal(0, 1)\n"
     "sample z: int<lower=0, upper=3>[2] ~ DiscreteUniform(L, 3)\nfactor mu * z\n",
     {"L": [0, 2]}, "3:21: error: bound lower=0 (= 0 at z[1]) of 'z' lies outside the support "
     "{L..3} of its distribution"),
    ("Version 2, linear algebra: eye takes one size (was an internal error)",
     "sample m ~ Normal(0, 1)\nlet r = eye([2, 3])\n", None,
     "2:9: error: argument 'K' of 'eye' must be an int literal or an int data scalar"),
    ("Distributions: RandomWalk takes init", "sample h: real[4] ~ RandomWalk(1)\n", None,
     "1:21: error: wrong arguments to 'RandomWalk'; expected RandomWalk(sigma, init)"),
    ("Version 2, distributions: OrderedLogistic's cutpoints are ordered",
     "data y: int\nsample e ~ Normal(0, 1)\nobserve y ~ OrderedLogistic(e, [1.0, -1.0])\n",
     {"y": 1}, "3:32: error: parameter 'cutpoints' of OrderedLogistic must be ordered; "
     "found [1, -1]"),
    ("Version 2, distributions: DiscreteUniform takes ints",
     "sample z: int ~ DiscreteUniform(0.5, 3)\n", None,
     "1:33: error: parameter 'lower' of DiscreteUniform must be int; found real"),
    ("Version 2, distributions: Multinomial's p is a simplex (each in [0, 1] is not enough)",
     "data y: int[2]\nsample e ~ Normal(0, 1)\nobserve y ~ Multinomial(3, [0.5, 0.6])\n",
     {"y": [1, 2]}, "3:28: error: parameter 'p' of Multinomial must be simplex; found [0.5, 0.6]"),
    ("Version 2, distributions: zi in [0, 1]",
     "data y: int\nsample e ~ Exponential(1)\nobserve y ~ ZeroInflatedPoisson(e, 1.5)\n",
     {"y": 1}, "3:36: error: parameter 'zi' of ZeroInflatedPoisson must be [0, 1]; found 1.5"),
    ("Version 2, indexing: a negative index in a data-only let",
     "data i: int\ndata y: real\nlet j = i - 2\nsample a: real[3] ~ Normal(0, 1)\n"
     "observe y ~ Normal(a[j], 1)\n", {"i": 1, "y": 1.0},
     "5:22: error: index 'j' holds -1 at j; an index from the data must be non-negative "
     "(numpy would silently count it from the end)"),
    ("Version 2, indexing: an index from the data out of range offers no count from the end",
     "data N: int\ndata y: real\nsample m: real[3] ~ Normal(0, 1)\n"
     "observe y ~ Normal(m[N], 1)\n", {"N": 3, "y": 1.0},
     "4:22: error: bad index: index 3 is out of range for an axis of size 3 (indexing is "
     "0-based: 0 to 2)"),
    ("Version 2, indexing: a negative slice bound from the data (was y[:-1], silently)",
     "data T: int\ndata y: real[3]\nsample m ~ Normal(0, 1)\nobserve y[:T - 4] ~ Normal(m, 1)\n",
     {"T": 3, "y": [1.0, 2.0, 3.0]},
     "4:12: error: slice bound 'T - 4' is -1; a slice bound from the data must be non-negative "
     "(numpy would silently count it from the end)"),
    ("Version 2, indexing: a slice bound past the end (was clipped, silently shorter)",
     "data K: int\ndata y: real[3]\nsample m ~ Normal(0, 1)\nobserve y[K:] ~ Normal(m, 1)\n",
     {"K": 5, "y": [1.0, 2.0, 3.0]},
     "4:11: error: bad slice: bound 5 is out of range for an axis of size 3 (slice bounds "
     "run from 0 to 3; numpy would silently clip the slice)"),
    ("Version 2, indexing: a literal slice bound before the start (was clipped)",
     "data y: real[3]\nsample m ~ Normal(0, 1)\nobserve y[:-5] ~ Normal(m, 1)\n",
     {"y": [1.0, 2.0, 3.0]},
     "3:12: error: bad slice: bound -5 is out of range for an axis of size 3 (slice bounds "
     "run from 0 to 3, or -3 to -1 from the end; numpy would silently clip the slice)"),
    ("Statements: observe of a param names it a param (was 'the latent variable')",
     "param a: real\nsample z ~ Normal(0, 1)\nobserve a ~ Normal(z, 1)\n", None,
     "3:9: error: observed expression depends on the param 'a'"),
    ("Statements: an observed expression names its latent before a param",
     "param a: real\nsample z ~ Normal(0, 1)\nobserve z + a ~ Normal(0, 1)\n", None,
     "3:9: error: observed expression depends on the latent variable 'z'"),
    ("Version 2, statements: a param's range names it a param",
     "param a: real<upper=-1>\nsample z ~ Normal(0, 1)\nobserve 0.5 ~ Beta(a, 1)\n", None,
     "3:20: error: parameter 'a' of Beta must be (0, inf), but it is outside that for every "
     "value of the param 'a'"),
    ("Errors: data outside the likelihood's support (a count above n)",
     "data y: int\nobserve y ~ Binomial(3, 0.5)\n", {"y": 4},
     "2:9: error: observed value 4 at y of 'y' is outside the support {0..3} of the "
     "distribution"),
    ("Errors: data outside an open support (0 under LogNormal)",
     "data y: real\nsample m ~ Normal(0, 1)\nobserve y ~ LogNormal(m, 1)\n", {"y": 0.0},
     "3:9: error: observed value 0 at y of 'y' is outside the support (0, inf) of the "
     "distribution"),
]


def _prepare(text, data):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data or {})
    concrete = check(program, dims)
    validate_observed(concrete, values, dims)
    return concrete, values


def _data_value(expr):
    text = f"data M: real[2, 3]\ndata v: real[3]\nlet w = {expr}\nsample mu ~ Normal(0, 1)\n"
    concrete, values = _prepare(text, {"M": M, "v": V})
    return data_lets(concrete, values)["w"]


def _latent_value(expr):
    text = ("sample M: real[2, 3] ~ Normal(0, 1)\nsample v: real[3] ~ Normal(0, 1)\n"
            f"let w = {expr}\n")
    concrete, values = _prepare(text, None)
    compiled = compile_model(concrete, values)
    return compiled.constrained(np.concatenate([M.ravel(), V])[None])["w"][0]


LATENT = [r for r in VALUES if re.search(r"\b[Mv]\b", r[1])]


@pytest.mark.parametrize("section, expr, want", VALUES, ids=[r[0] for r in VALUES])
def test_value(section, expr, want):
    got = _data_value(expr)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if isinstance(want, np.int64):       # an int stays an int (LANGUAGE.md, Lexical rules)
        assert np.asarray(got).dtype.kind == "i"


@pytest.mark.parametrize("section, expr, want", LATENT, ids=[r[0] for r in LATENT])
def test_value_of_latents(section, expr, want):
    # the same expression on latents: the traced path computes what numpy does
    np.testing.assert_allclose(_latent_value(expr), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("section, text, data, want", ERRORS, ids=[r[0] for r in ERRORS])
def test_error(section, text, data, want):
    with pytest.raises(PplError) as info:
        _prepare(text, data)
    assert str(info.value).splitlines()[0] == f"model.ppl:{want}"
