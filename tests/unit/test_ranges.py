"""The range analysis is sound: every value an expression takes lies in its computed range.

Checked by drawing points inside random ranges, applying each operation in floats, and asking
the resulting Range to contain them (hypothesis); then a few exact ranges the checker needs.
"""
from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppl.errors import PplError, PplWarning
from ppl.frontend import ranges
from ppl.frontend.check import check
from ppl.frontend.parse import parse

_ENDS = st.floats(-50, 50, allow_nan=False)


@st.composite
def _range_and_points(draw):
    a, b = sorted((draw(_ENDS), draw(_ENDS)))
    lo_open, hi_open = draw(st.booleans()), draw(st.booleans())
    if a == b:
        lo_open = hi_open = False
    t = np.asarray(draw(st.lists(st.floats(0, 1), min_size=1, max_size=5)) + [0.0, 1.0])
    # a + t (b - a) can round past b (a = -1, b = -1.5e-9 gives -1.51644053e-09 > b), and a
    # reciprocal then magnifies that rounding: clip, so every point is truly in [a, b]
    points = np.clip(a + t * (b - a), a, b)
    keep = ((points > a) | (not lo_open)) & ((points < b) | (not hi_open))
    return ranges.Range(a, b, lo_open, hi_open), points[keep]


def _inside(r: ranges.Range, values) -> bool:
    """Whether the values lie in r, up to float rounding (the analysis is about real numbers:
    1e-70 + 1 is above 1, but rounds to it). Open ends are checked by the exact tests below."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    slack = 1e-9 * (1 + np.abs(values))
    return bool(np.all((values >= r.lo - slack) & (values <= r.hi + slack)))


_BINARY = {"+": (ranges.add, np.add), "*": (ranges.mul, np.multiply),
           "-": (lambda a, b: ranges.add(a, ranges.neg(b)), np.subtract),
           "/": (lambda a, b: ranges.mul(a, ranges.reciprocal(b)), np.divide)}


@settings(max_examples=300, deadline=None)
@given(_range_and_points(), _range_and_points(), st.sampled_from(sorted(_BINARY)))
def test_binary_ranges_hold_every_result(left, right, op):
    (a, xs), (b, ys) = left, right
    if op == "/" and np.any(ys == 0):
        return
    rule, apply = _BINARY[op]
    with np.errstate(all="ignore"):
        assert _inside(rule(a, b), apply.outer(xs, ys)), (a, b, xs, ys)


@settings(max_examples=300, deadline=None)
@given(_range_and_points(), st.sampled_from(["exp", "sigmoid", "tanh", "softplus", "square",
                                             "abs", "log", "sqrt"]))
def test_function_ranges_hold_every_result(arg, name):
    a, xs = arg
    text = f"data x: real\nsample v ~ Normal(0, 1)\nlet z = {name}(v)\n"
    call = check(parse(text)).lets["z"].value
    result = ranges._call(call, lambda i: a)
    f = {"exp": np.exp, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh,
         "softplus": np.logaddexp.__call__, "square": np.square, "abs": np.abs,
         "log": np.log, "sqrt": np.sqrt}[name]
    with np.errstate(all="ignore"):
        values = f(0.0, xs) if name == "softplus" else f(xs)
    if name in ("log", "sqrt"):
        values = values[~np.isnan(values)]
    assert _inside(result, values), (a, xs, result)


def _range_of(text: str, name: str = "z") -> ranges.Range:
    model = check(parse(text))
    statements = {s.name: s for s in model.statements if hasattr(s, "name")}
    return ranges.Analysis(statements).of(statements[name].value)


def test_exp_of_a_real_latent_is_positive():
    r = _range_of("sample v ~ Normal(0, 1)\nlet z = exp(v) * 2\n")
    assert r.positive()


def test_latents_lie_in_the_open_interior_of_their_support():
    r = _range_of("sample v ~ HalfNormal(1)\nlet z = v\n")
    assert (r.lo, r.lo_open, r.hi) == (0.0, True, math.inf)


def test_a_positive_ordered_latent_is_positive_elementwise():
    # its support is no interval, so its range was taken as any real: `observe y ~
    # Exponential(r[g])` with `r: positive_ordered[3]` was warned of a rate that can leave
    # (0, inf) (found by a v2 audit against NUTS, 2026-12-05); an ordered one may be any real
    r = _range_of("sample r: positive_ordered[3] ~ Gamma(2, 1)\nlet z = r[0]\n")
    assert (r.lo, r.lo_open, r.hi) == (0.0, True, math.inf)
    assert _range_of("sample r: ordered[3] ~ Normal(0, 1)\nlet z = r\n") == ranges.REAL
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(parse("data y: real[4]\ndata g: int[4]\nsample r: positive_ordered[3] ~ "
                    "Gamma(2, 1)\nobserve y ~ Exponential(r[g])\n"))


def test_declared_data_bounds_are_used():
    r = _range_of("data x: real<lower=1>\nsample v ~ Exponential(1)\nlet z = x * v\n")
    assert r.positive()


def test_unbounded_data_times_a_latent_is_anything():
    assert _range_of("data x: real\nsample v ~ Exponential(1)\nlet z = x * v\n") == ranges.REAL


def test_where_minimum_and_maximum_keep_a_positive_rate_positive():
    # the change point's rate where(t < s, e1, e2) of two positive latents is positive
    # (two data arrays: one observed twice is warned of, check.py)
    text = ("data T: int\ndata t: int[T]\ndata y: int<lower=0>[T]\ndata z: int<lower=0>[T]\n"
            "sample e1 ~ Exponential(0.5)\nsample e2 ~ Exponential(0.5)\n"
            "sample s: int ~ DiscreteUniform(0, T - 1)\n"
            "let r = where(t < s, e1, e2)\nlet m = minimum(e1, e2) + maximum(e1, 0.0)\n"
            "observe y ~ Poisson(r)\nobserve z ~ Poisson(m)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(parse(text))


def test_an_enumerated_discrete_latent_takes_its_closed_finite_support():
    # n ~ Binomial(5, p) lies in {0..5}, so n + 0.5 is a positive Poisson rate: it was taken
    # as the whole real line and the checker warned that n could make the rate negative
    r = _range_of("sample p ~ Beta(1, 1)\nsample n: int ~ Binomial(5, p)\nlet z = n\n")
    assert (r.lo, r.lo_open, r.hi, r.hi_open) == (0.0, False, 5.0, False)
    r = _range_of("sample p ~ Beta(1, 1)\nsample b: int ~ Bernoulli(p)\nlet z = b\n")
    assert (r.lo, r.hi) == (0.0, 1.0)
    text = ("data y: int[2]\nsample p ~ Beta(1, 1)\nsample n: int ~ Binomial(5, p)\n"
            "observe y ~ Poisson(n + 0.5)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(parse(text))


def test_a_comparison_lies_in_zero_one():
    # e1 * (t < s), a change point's rate written with a comparison, is non-negative: the
    # comparison was taken as the whole real line and the checker warned that e1 could make
    # the rate negative
    r = _range_of("data t: real\nsample e1 ~ Exponential(1)\nlet z = t < e1\n")
    assert (r.lo, r.lo_open, r.hi, r.hi_open) == (0.0, False, 1.0, False)
    text = ("data T: int\ndata t: int[T]\ndata y: int[T]\nsample e1 ~ Exponential(1)\n"
            "sample e2 ~ Exponential(1)\nsample s: int ~ DiscreteUniform(0, T - 1)\n"
            "observe y ~ Poisson(e1 * (t < s) + e2 * (t >= s))\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(parse(text))


_R = ranges.Range
# Exact ranges, open ends included (the property tests above check only that the values lie
# within lo..hi, so a wrong open flag or a needlessly wide end passed them). An end reached by
# some value is closed: 1 / x on [1, 2) reaches 1; x^2 and |x| on (-1, 2) reach 0.
EXACT = [
    ("point", lambda: ranges.point(2.0), _R(2.0, 2.0, False, False)),
    ("union keeps an end either reaches", lambda: ranges.union(_R(0, 1, True, False),
                                                               _R(0, 2, False, True)),
     _R(0, 2, False, True)),
    ("minimum's upper end is the smaller",
     lambda: ranges.elementwise_min(_R(0, 1, False, False), _R(0, 5, True, True)),
     _R(0, 1, False, False)),
    ("a sum is open where either term is", lambda: ranges.add(_R(0, 1, False, False),
                                                              _R(0, 1, True, True)),
     _R(0, 2, True, True)),
    ("a reached 0 times a positive factor is reached",
     lambda: ranges.mul(_R(0, 2, False, True), _R(1, 3, True, True)), _R(0, 6, False, True)),
    # was the half-open [0, 0), which 'AR1(0, 0 * exp(v) + 1, 1)' turned into [1, 1): inside
    # phi's (-1, 1) by its open end, so the checker passed a phi that is always 1
    ("0 times a positive factor is the point 0",
     lambda: ranges.mul(ranges.point(0.0), ranges.POSITIVE), ranges.point(0.0)),
    ("a vector literal holds each item's values",
     lambda: _range_of("sample v ~ Exponential(1)\nlet z = [v, -1.0]\n"),
     _R(-1.0, math.inf, False, True)),
    ("a constant factor scales a range across 0",
     lambda: ranges.mul(ranges.point(2.0), _R(-1, 3, True, False)), _R(-2, 6, True, False)),
    ("a reciprocal swaps the open ends", lambda: ranges.reciprocal(_R(1, 2, False, True)),
     _R(0.5, 1.0, True, False)),
    ("an odd power of a range across 0 is anything",
     lambda: ranges.power(_R(-2, 2, True, True), ranges.point(3.0)), ranges.REAL),
    ("an even power is non-negative",
     lambda: ranges.power(_R(-2, 2, True, True), ranges.point(2.0)), ranges.NON_NEGATIVE),
    ("a square across 0 reaches 0", lambda: ranges._square(_R(-1, 2, True, True)),
     _R(0.0, 4, False, True)),
    ("abs across 0 reaches 0 and the larger end", lambda: ranges._abs(_R(-5, 1, True, True)),
     _R(0.0, 5, False, True)),
    ("a sum of non-negative elements", lambda: ranges._total(ranges.NON_NEGATIVE),
     ranges.NON_NEGATIVE),
    ("sin reaches -1 and 1", lambda: _range_of("sample v ~ Normal(0, 1)\nlet z = sin(v)\n"),
     _R(-1.0, 1.0, False, False)),
    ("data take their declared bounds, ends included",
     lambda: _range_of("data x: real<lower=0, upper=2>\nlet z = x\n"), _R(0.0, 2.0, False, False)),
    ("1 / a subnormal is finite: the largest float bounds it",
     lambda: ranges.reciprocal(_R(0.0, 1e-310, True, False)),
     _R(sys.float_info.max, math.inf, False, True)),
    # rows added by the mutation pass of session 41, one per rule a mutant changed unseen
    ("union keeps an upper end either reaches",
     lambda: ranges.union(ranges.point(1.0), _R(-1, 1, True, True)), _R(-1, 1, True, False)),
    ("maximum's lower end is the larger",
     lambda: _range_of("sample v ~ Normal(0, 1)\nlet z = maximum(v, 1.0)\n"),
     _R(1.0, math.inf, False, True)),
    ("a negative constant factor swaps the open ends",
     lambda: ranges.mul(ranges.point(-2.0), _R(-1, 3, True, False)), _R(-6, 2, False, True)),
    ("a reciprocal of negatives open at 0", lambda: ranges.reciprocal(_R(-2, 0, True, True)),
     _R(-math.inf, -0.5, True, True)),
    ("where takes the values of either branch",
     lambda: _range_of("data t: real\nsample v ~ Normal(0, 1)\n"
                       "let z = where(t < 0, exp(v), -1.0)\n"),
     _R(-1.0, math.inf, False, True)),
    ("a latent above a moving lower bound is bounded by the bound's lowest value",
     lambda: _range_of("sample a ~ Normal(0, 1)\nsample v ~ Uniform(a, 10)\nlet z = v\n"),
     _R(-math.inf, 10.0, True, True)),
    ("a difference", lambda: _range_of("sample v ~ Normal(0, 1)\nlet z = exp(v) - 1\n"),
     _R(-1.0, math.inf, True, True)),
    ("a quotient", lambda: _range_of("sample v ~ Normal(0, 1)\nlet z = 2 / (1 + exp(v))\n"),
     _R(0.0, 2.0, True, True)),
    # a sum of values in (0, 1) can pass 1: only its sign is known
    ("cumsum", lambda: _range_of("sample v: real[3] ~ Normal(0, 1)\n"
                                 "let z = cumsum(sigmoid(v))\n"), ranges.POSITIVE),
    ("dot", lambda: _range_of("sample v: real[3] ~ Normal(0, 1)\n"
                              "let z = dot(sigmoid(v), sigmoid(v))\n"), ranges.POSITIVE),
    ("matmul", lambda: _range_of("sample v: real[3] ~ Normal(0, 1)\n"
                                 "let z = sigmoid(v) @ sigmoid(v)\n"), ranges.POSITIVE),
]


@pytest.mark.parametrize("what, compute, expected", EXACT, ids=[e[0] for e in EXACT])
def test_exact_ranges(what, compute, expected):
    assert compute() == expected


def test_a_parameter_that_a_product_with_zero_holds_on_its_open_end_is_an_error():
    text = "data y: real[4]\nsample v ~ Normal(0, 1)\nobserve y ~ AR1(0, 0 * exp(v) + 1, 1)\n"
    with pytest.raises(PplError, match="'phi' of AR1 must be .-1, 1., but it is outside"):
        check(parse(text))


def test_a_rate_that_reaches_zero_is_warned_about():
    # square(v) and abs(v) of a real latent reach 0, where Exponential's rate leaves its
    # constraint; a range open at 0 there would let the fit meet -inf without a word
    for rate in ("square(v)", "abs(v)"):
        text = (f"data y: real<lower=0>[2]\nsample v ~ Normal(0, 1)\n"
                f"observe y ~ Exponential({rate})\n")
        with pytest.warns(UserWarning, match="Exponential"):
            check(parse(text))


def test_ranges_that_touch_at_an_end_are_disjoint_unless_both_include_it():
    closed, left_open = _R(1.0, 2.0, False, False), _R(0.0, 1.0, False, True)
    assert ranges.disjoint(left_open, closed) and ranges.disjoint(closed, left_open)
    assert not ranges.disjoint(_R(0.0, 1.0, False, False), closed)


def _holds(r: ranges.Range, v: float) -> bool:
    """Whether the number v lies in r, open ends honoured exactly."""
    return ((r.lo < v or (r.lo == v and not r.lo_open))
            and (v < r.hi or (v == r.hi and not r.hi_open)))


# Soundness at values the operation reaches (the property tests above draw ranges, and almost
# never a point 0 against a range across 0, or a base reaching 0): 0 * x is 0 for every x in
# (-1, 1); 0 ** 2 is 0.
REACHED = [
    ("0 times a range across 0", lambda: ranges.mul(ranges.point(0.0), _R(-1, 1, True, True)),
     0.0),
    ("an even power of a base reaching 0",
     lambda: ranges.power(ranges.NON_NEGATIVE, ranges.point(2.0)), 0.0),
]


@pytest.mark.parametrize("what, compute, value", REACHED, ids=[r[0] for r in REACHED])
def test_a_range_holds_the_values_its_operation_reaches(what, compute, value):
    assert _holds(compute(), value)


# A parameter that some values of a latent take outside its constraint must be warned of:
# each model reaches a value outside (phi = 1, sigma = 0, a rate <= 0, p > 1), and a rule made
# too narrow let it through without a word. (data, parameter's distribution)
REACHES_OUTSIDE = [
    ("AR1(0, where(t < 0, 1.0, tanh(v)), 1)", "phi"),                 # t < 0: phi = 1
    ("AR1(0, -1 * where(t < 0, -1.0, 0.5 * tanh(v)), 1)", "phi"),     # the same, scaled by -1
    ("Normal(0, 0 * tanh(v))", "sigma"),                              # sigma = 0 always
    ("Exponential(abs(v) ** 2)", "rate"),                              # 0 at v = 0
    ("Exponential(where(t < 0, exp(v), -1.0))", "rate"),
    ("Exponential(exp(v) - 1)", "rate"),
    ("Beta(2 / (1 + exp(v)) - 1, 1)", "a"),
    ("Bernoulli(cumsum(sigmoid(w))[2])", "p"),
    ("Bernoulli(dot(sigmoid(w), sigmoid(w)))", "p"),
    ("Bernoulli(sigmoid(w) @ sigmoid(w))", "p"),
    ("Exponential(u)", "rate"),                                       # u ~ Uniform(v, 10)
]


@pytest.mark.parametrize("dist, param", REACHES_OUTSIDE, ids=[r[0] for r in REACHES_OUTSIDE])
def test_a_parameter_some_latent_values_take_outside_is_warned_of(dist, param):
    value = "y_int" if dist.startswith("Bernoulli") else "y"
    text = ("data t: real\ndata y: real[4]\ndata y_int: int[4]\nsample v ~ Normal(0, 1)\n"
            "sample w: real[3] ~ Normal(0, 1)\nsample u ~ Uniform(v, 10)\n"
            f"observe {value} ~ {dist}\n")
    with pytest.warns(PplWarning, match=f"parameter '{param}' of {dist.split('(')[0]}"):
        check(parse(text))


@pytest.mark.parametrize("dist", ["Exponential(maximum(v, 1.0))", "Exponential(-1 / -exp(v))"])
def test_a_parameter_inside_its_constraint_is_not_warned_of(dist):
    text = f"data y: real[4]\nsample v ~ Normal(0, 1)\nobserve y ~ {dist}\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(parse(text))


def test_logit_of_a_latent_in_zero_one_is_checked():
    # logit's end at p = 1 was p / (1 - p), a ZeroDivisionError: the checker crashed on
    # logit(p) of any latent in (0, 1) (a Beta, a sigmoid); logit(1) is inf in the limit
    assert _range_of("sample p ~ Beta(2, 2)\nlet z = logit(p)\n") == ranges.REAL
    assert (_range_of("sample p ~ Uniform(0.5, 1)\nlet z = logit(p)\n")
            == _R(0.0, math.inf, True, True))
    check(parse("data y: real[2]\nsample v ~ Normal(0, 1)\n"
                "observe y ~ Normal(logit(sigmoid(v)), 1)\n"))
