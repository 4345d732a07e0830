"""Special functions for differentiated code: autograd primitives over `scipy.special`.

Each function is scipy's, wrapped with `autograd.extend.primitive` and given its VJP here
(but `softplus`, `logaddexp` and `logsumexp`: numpy's own formulas on its vectorized
loops, scipy's steps for logsumexp).
`autograd.scipy.special` does the same, but importing it imports `autograd.scipy`, which pulls
in `scipy.stats` and `scipy.integrate`: most of `import ppl`'s time. Import special functions
from this module, never from `autograd.scipy`. `scipy.special` itself (about 0.2 s) is imported
on the first call, so `import ppl` and `ppl check` do not pay for it.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Callable

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_vjps import repeat_to_match_shape, unbroadcast_f

__all__ = [
    "betaln", "digamma", "erf", "expit", "gammaln", "log_expit", "log_ndtr", "logit",
    "logaddexp", "logsumexp", "ndtr", "polygamma", "softplus", "xlog1py", "xlogy",
]



@cache
def scipy_special() -> Any:
    """The scipy.special module, imported on first use."""
    return importlib.import_module("scipy.special")


def _lazy(name: str) -> Callable[..., Any]:
    """scipy.special.<name> as an autograd primitive that imports scipy.special when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(scipy_special(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"scipy.special.{name}, differentiable by autograd (VJP in ppl/special.py)."
    return primitive(call)


_INV_SQRT_PI = 0.56418958354775627928  # 1 / sqrt(pi)
_INV_SQRT_2PI = 0.39894228040143267794  # 1 / sqrt(2 pi)

# Gamma family: d/dx log Gamma(x) = digamma(x); d/dx polygamma(n, x) = polygamma(n + 1, x).
gammaln = _lazy("gammaln")
digamma = _lazy("digamma")
polygamma = _lazy("polygamma")
defvjp(gammaln, lambda ans, x: lambda g: g * digamma(x))
defvjp(digamma, lambda ans, x: lambda g: g * polygamma(1, x))
defvjp(polygamma, None, lambda ans, n, x: lambda g: g * polygamma(n + 1, x))

# log B(a, b) = gammaln(a) + gammaln(b) - gammaln(a + b); a and b may broadcast, so each
# gradient is summed back to its argument's shape.
betaln = _lazy("betaln")
defvjp(
    betaln,
    lambda ans, a, b: unbroadcast_f(a, lambda g: g * (digamma(a) - digamma(a + b))),
    lambda ans, a, b: unbroadcast_f(b, lambda g: g * (digamma(b) - digamma(a + b))),
)

# Logistic: expit' = expit (1 - expit); logit' = 1 / (x (1 - x));
# log_expit' = 1 - expit(x) = expit(-x), which stays accurate for large x.
expit = _lazy("expit")
logit = _lazy("logit")
log_expit = _lazy("log_expit")
defvjp(expit, lambda ans, x: lambda g: g * ans * (1.0 - ans))
defvjp(logit, lambda ans, x: lambda g: g / (x * (1.0 - x)))
defvjp(log_expit, lambda ans, x: lambda g: g * expit(-x))



def _log1p_exp_minus(d):
    """``log1p(exp(-|d|))``, in a new array, on numpy's vectorized exp and log1p."""
    out = np.abs(d)
    np.exp(np.negative(out, out=out), out=out)
    return np.log1p(out, out=out)


@primitive
def softplus(x):
    """``log(1 + exp(x))``, as numpy's ``logaddexp(0, x)`` computes it element by element,
    max(x, 0) + log1p(exp(-|x|)), but on numpy's vectorized exp and log1p: logaddexp's loop
    is scalar, 7.5 ms against 0.3 ms for exp on 460,000 elements (the Bernoulli likelihood of
    models/vae_digits.ppl at 5 draws: most of its step). Its last bits may differ from
    logaddexp's (a vectorized exp or log1p is within an ulp, not correctly rounded). The VJP
    is autograd's for logaddexp, g exp(x - ans) = g sigmoid(x), in autograd ops so that it has
    derivatives itself (the whitening's Hessian-vector products)."""
    if anp.ndim(x) == 0:
        return anp.logaddexp(0.0, x)
    x = np.asarray(x, dtype=float)
    out = _log1p_exp_minus(x)
    return np.add(out, np.maximum(x, 0.0), out=out)


defvjp(softplus, lambda ans, x: lambda g: g * anp.exp(x - ans))


@primitive
def logaddexp(a, b):
    """``log(exp(a) + exp(b))`` as numpy's ``logaddexp`` computes it, max(a, b) + log1p(exp(-|a
    - b|)) (a + log 2 where a == b, infinities included), on vectorized loops (see
    :func:`softplus`); a and b broadcast. The VJPs are autograd's for logaddexp."""
    if anp.ndim(a) == 0 and anp.ndim(b) == 0:
        return anp.logaddexp(a, b)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):   # inf - inf where a == b: set to 0 below
        d = a - b
    d[a == b] = 0.0
    out = _log1p_exp_minus(d)
    return np.add(out, np.maximum(a, b), out=out)


defvjp(
    logaddexp,
    lambda ans, a, b: unbroadcast_f(a, lambda g: g * anp.exp(a - ans)),
    lambda ans, a, b: unbroadcast_f(b, lambda g: g * anp.exp(b - ans)),
)

# Gaussian: erf' = 2/sqrt(pi) exp(-x^2); ndtr' = phi(x); log_ndtr' = phi(x) / Phi(x), taken as
# exp(log phi - log Phi) so that it stays finite far in the left tail.
erf = _lazy("erf")
ndtr = _lazy("ndtr")
log_ndtr = _lazy("log_ndtr")
defvjp(erf, lambda ans, x: lambda g: g * 2.0 * _INV_SQRT_PI * anp.exp(-x * x))
defvjp(ndtr, lambda ans, x: lambda g: g * _INV_SQRT_2PI * anp.exp(-0.5 * x * x))
defvjp(log_ndtr, lambda ans, x: lambda g: g * _INV_SQRT_2PI * anp.exp(-0.5 * x * x - ans))

# x log y and x log1p(y), 0 where x == 0 (scipy's convention, for log densities at 0 counts).
xlogy = _lazy("xlogy")
xlog1py = _lazy("xlog1py")
defvjp(
    xlogy,
    lambda ans, x, y: unbroadcast_f(x, lambda g: g * anp.log(y)),
    lambda ans, x, y: unbroadcast_f(y, lambda g: g * x / y),
)
defvjp(
    xlog1py,
    lambda ans, x, y: unbroadcast_f(x, lambda g: g * anp.log1p(y)),
    lambda ans, x, y: unbroadcast_f(y, lambda g: g * x / (1.0 + y)),
)

def log_sum_exp(a, axis=None, keepdims=False):
    """``log(sum(exp(a)))`` over ``axis`` in plain numpy, by scipy.special.logsumexp's own steps
    (1.17: the largest elements taken out of the sum and added back by log1p, the plain formula
    where that is not finite), so equal to it bit for bit (tests/unit/test_special.py) at
    1.4-6x less CPU on the arrays models make: scipy's goes through its array-API layers.
    Also psis.py's, on 1-D weights."""
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        # log of an empty sum is log 0 = -inf, scipy's answer along one axis; scipy 1.17's
        # own logsumexp raises IndexError on an empty array over a tuple of axes (its shape
        # bookkeeping), and log_sum_exp(m) of a [0, K] matrix is one (mutation pass, session 41)
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))
        return out[()] if np.ndim(out) == 0 else out
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a_max = np.max(a, axis=axis, keepdims=True)
        top = a == a_max
        m = np.count_nonzero(top, axis=axis, keepdims=True).astype(float)
        s = np.sum(np.exp(np.where(top, -np.inf, a) - a_max), axis=axis, keepdims=True)
        s = np.where(s == 0, s, s / m)
        out = np.log1p(s) + np.log(m) + a_max
        bad = ~np.isfinite(out)
        if bad.any():
            out = np.where(bad, np.log(np.sum(np.exp(a), axis=axis, keepdims=True)), out)
    if not keepdims:
        out = out.reshape(()) if axis is None else np.squeeze(out, axis=axis)
    return out[()] if out.ndim == 0 else out


logsumexp = primitive(log_sum_exp)


def _logsumexp_vjp(ans, x, axis=None, keepdims=False):
    # d/dx_i log sum_j exp(x_j) = exp(x_i - ans): the softmax weights. g and ans are repeated
    # back over the reduced axes to x's shape.
    shape, dtype = anp.shape(x), anp.result_type(x)

    def vjp(g):
        g_full, _ = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        ans_full, _ = repeat_to_match_shape(ans, shape, dtype, axis, keepdims)
        return g_full * anp.exp(x - ans_full)

    return vjp


defvjp(logsumexp, _logsumexp_vjp)
