"""ppl.special: values equal scipy.special's, gradients match central finite differences."""
import subprocess
import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special as sp
from autograd import grad
from autograd.test_util import check_grads

from ppl import special

ROOT = Path(__file__).resolve().parents[2]

# name -> (function of the arguments, argument arrays inside the function's domain)
_X = np.array([-3.0, -0.4, 0.7, 2.5])
_POS = np.array([0.3, 1.0, 2.7, 11.0])
_UNIT = np.array([0.05, 0.3, 0.6, 0.97])
UNARY = {
    "gammaln": _POS, "digamma": _POS, "expit": _X, "logit": _UNIT, "log_expit": _X,
    "erf": _X, "ndtr": _X, "log_ndtr": _X,
}
BINARY = {"betaln": (_POS, _POS[::-1]), "xlogy": (_X, _POS), "xlog1py": (_X, _POS)}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_value_and_gradient(name):
    f, x = getattr(special, name), UNARY[name]
    np.testing.assert_array_equal(f(x), getattr(sp, name)(x))
    check_grads(f, modes=["rev"], order=2)(x)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_value_and_gradient(name):
    f, (a, b) = getattr(special, name), BINARY[name]
    np.testing.assert_array_equal(f(a, b), getattr(sp, name)(a, b))
    # check_grads differentiates in its argnum only (0 by default): each argument in turn
    for argnum in (0, 1):
        check_grads(f, argnum, modes=["rev"], order=1)(a, b)


@pytest.mark.parametrize("name", ["betaln", "xlogy", "xlog1py"])
def test_binary_gradient_unbroadcasts(name):
    # a scalar first argument against a vector second: its gradient is the sum over the vector
    f, (_, b) = getattr(special, name), BINARY[name]
    for argnum in (0, 1):
        check_grads(f, argnum, modes=["rev"], order=1)(1.5, b)
        check_grads(f, argnum, modes=["rev"], order=1)(b, 1.5)


# name -> its derivative in closed form, from scipy.special and numpy's own constants: the VJPs'
# constants and formulas to a few ulps (check_grads' finite differences see only ~1e-6, so a
# constant such as 1 / sqrt(2 pi) a little off passed them; mutation pass, session 41)
DERIVATIVE = {
    "gammaln": sp.digamma,
    "digamma": lambda x: sp.polygamma(1, x),
    "expit": lambda x: sp.expit(x) * sp.expit(-x),
    "logit": lambda x: 1.0 / (x * (1.0 - x)),
    "log_expit": lambda x: sp.expit(-x),
    "erf": lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-x * x),
    "ndtr": lambda x: np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi),
    "log_ndtr": lambda x: np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi) / sp.ndtr(x),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradient_is_the_closed_form_derivative(name):
    # a few ulps: the formulas are the same up to the rounding of a product or two (expit's
    # ans (1 - ans) against expit(x) expit(-x), log_ndtr's exp of a difference against a ratio)
    x = UNARY[name]
    got = grad(lambda v: anp.sum(getattr(special, name)(v)))(x)
    np.testing.assert_allclose(got, DERIVATIVE[name](x), rtol=1e-14, atol=0)


def test_polygamma_gradient_in_x():
    x = _POS
    np.testing.assert_array_equal(special.polygamma(1, x), sp.polygamma(1, x))
    check_grads(lambda x: special.polygamma(1, x), modes=["rev"], order=1)(x)


@pytest.mark.parametrize("kwargs", [{}, {"axis": 0}, {"axis": 1}, {"axis": -1, "keepdims": True}])
def test_logsumexp_value_and_gradient(kwargs):
    x = np.arange(12.0).reshape(3, 4) / 3.0 - 1.5
    np.testing.assert_array_equal(special.logsumexp(x, **kwargs), sp.logsumexp(x, **kwargs))
    check_grads(lambda x: special.logsumexp(x, **kwargs), modes=["rev"], order=2)(x)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_is_scipys_bit_for_bit(axis, keepdims):
    # scipy's steps in numpy (scipy's own goes through array-API layers): the same bits, shape
    # and type, ties, infinities and NaN included
    rng = np.random.default_rng(2)
    inf = np.inf
    cases = [rng.normal(0.0, 30.0, (4, 5, 6)), np.repeat(rng.normal(size=(4, 5, 2)), 3, axis=2),
             np.where(rng.random((4, 5, 6)) < 0.3, -inf, rng.normal(size=(4, 5, 6))),
             np.full((4, 5, 6), -inf), np.full((4, 5, 6), 1e308)]
    odd = rng.normal(size=(4, 5, 6))
    odd[0, 0, 0], odd[1, 1, 1], odd[2, 2, 2] = inf, np.nan, -inf
    for x in cases + [odd]:
        ours, scipys = special.logsumexp(x, axis=axis, keepdims=keepdims), \
            sp.logsumexp(x, axis=axis, keepdims=keepdims)
        assert type(ours) is type(scipys) and np.shape(ours) == np.shape(scipys)
        np.testing.assert_array_equal(ours, scipys)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_of_no_elements_is_minus_inf(axis, keepdims):
    # log of an empty sum, log 0 = -inf (data of length 0: log_sum_exp(m) of a [0, K] matrix
    # reduces axes (1, 2) of [S, 0, K]); scipy's own answer along one axis. Over a tuple of
    # axes scipy 1.17 raised IndexError, and so did log_sum_exp, which called it (mutation
    # pass, session 41)
    x = np.zeros((4, 0, 6))
    with np.errstate(divide="ignore"):
        want = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    got = special.logsumexp(x, axis=axis, keepdims=keepdims)
    assert type(got) is type(want) and np.shape(got) == np.shape(want)
    np.testing.assert_array_equal(got, want)
    assert np.all(got == -np.inf)
    if isinstance(axis, int):
        np.testing.assert_array_equal(got, sp.logsumexp(x, axis=axis, keepdims=keepdims))
    gradient = grad(lambda v: anp.sum(special.logsumexp(v, axis=axis, keepdims=keepdims)))(x)
    assert gradient.shape == x.shape


def test_log_ndtr_gradient_is_finite_far_in_the_left_tail():
    # phi(x) / Phi(x) ~ -x for x -> -inf: both underflow separately, their ratio must not
    assert grad(lambda x: special.log_ndtr(x))(-40.0) == pytest.approx(40.0, rel=1e-3)


def _modules_after_import_ppl(prefixes):
    code = f"import sys, ppl; print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_import_ppl_imports_neither_scipy_stats_nor_integrate():
    assert _modules_after_import_ppl(("scipy.stats", "scipy.integrate", "autograd.scipy")) == "[]"


def test_scipy_special_is_imported_on_first_call_only():
    # `ppl check` never evaluates a density, so it need not pay for scipy.special (~0.2 s)
    assert _modules_after_import_ppl(("scipy.special",)) == "[]"


def test_special_works_inside_autograd_numpy_expressions():
    # the primitives compose with autograd.numpy (a Beta log density, as continuous.py has it)
    def log_beta(a):
        return anp.sum((a - 1) * anp.log(_UNIT) - special.betaln(a, 2.0))

    check_grads(log_beta, modes=["rev"], order=1)(np.array(1.7))


def test_softplus_is_logaddexp_to_an_ulp_with_its_gradients():
    # numpy's logaddexp(0, x) formula on vectorized loops: within two ulps (the vectorized
    # exp and log1p are each within an ulp, not correctly rounded; measured: 0.1% of these
    # 11,000 values differ by two ulps, about 5% by one), exact at the edges where the terms
    # are; gradients of first and second order by finite differences
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.0, 8.0, 10_000), rng.normal(0.0, 1e-3, 1000)])
    want = np.logaddexp(0.0, x)
    np.testing.assert_array_max_ulp(special.softplus(x), want, maxulp=2)
    edges = np.array([-np.inf, -800.0, -0.0, 0.0, 800.0, np.inf, np.nan])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(special.softplus(edges), np.logaddexp(0.0, edges))
    assert special.softplus(2.0) == np.logaddexp(0.0, 2.0)      # a scalar stays a scalar
    check_grads(special.softplus, modes=["rev"], order=2)(_X)
    # the gradient exp(x - ans) (autograd's for logaddexp) is sigmoid(x) up to the rounding of
    # x - ans, about an ulp of max(|x|, 1) in the exponent, so that much relative error
    gradient = grad(lambda v: anp.sum(special.softplus(v)))(x)
    error = np.abs(gradient / sp.expit(x) - 1)
    assert np.all(error <= 2 * np.finfo(float).eps * np.maximum(np.abs(x), 1.0))


def test_logaddexp_is_numpys_to_rounding_with_its_gradients():
    # numpy's formula, max(a, b) + log1p(exp(-|a - b|)), on vectorized loops: within two ulps
    # of max(|a|, |b|, |result|) (the sum can cancel to a small result, whose own ulps are
    # then finer than the terms'); numpy's at the infinities and where a == b; gradients of
    # first and second order, broadcasting, by finite differences
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 5.0, (5, 300)), rng.normal(0.0, 5.0, 300)
    want = np.logaddexp(a, b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.abs(want))
    assert np.all(np.abs(special.logaddexp(a, b) - want) <= 2 * np.spacing(scale))
    inf = np.inf
    edges = (np.array([-inf, -inf, inf, inf, 0.0, 1.0, -800.0, np.nan]),
             np.array([-inf, 2.0, inf, -inf, 0.0, 1.0, 5.0, 1.0]))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(special.logaddexp(*edges), np.logaddexp(*edges))
    assert special.logaddexp(1.0, 2.0) == np.logaddexp(1.0, 2.0)
    # a scalar against an array takes the vectorized loops too (numpy's scalar loop is 25x
    # slower, and its last bits differ): the same bits as the scalar broadcast to the array
    wide = rng.normal(0.0, 5.0, 10_000)
    for x, y in ((2.5, wide), (wide, 2.5)):
        np.testing.assert_array_equal(special.logaddexp(x, y),
                                      special.logaddexp(*np.broadcast_arrays(x, y)))
    # both arguments: check_grads alone differentiates in the first only
    check_grads(special.logaddexp, modes=["rev"], order=2, argnum=(0, 1))(a[:, :4], b[:4])
