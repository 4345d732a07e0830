"""ppl/distributions/incomplete.py: the shape derivatives of the incomplete gamma functions and
of Student t's CDF (central differences) against an independent reference. Their values and
x-derivatives are tested through the CDFs in test_distributions.py."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from autograd import grad

from ppl.distributions import incomplete


def _richardson(f, a):
    """d f / d a from central differences at steps h and h / 2, combined to cancel their h^2
    error. h = 1e-2 min(a, sqrt(a)): these functions vary in a on the scale of a below 1 and
    sqrt(a) above (P(a, x) is near Phi((x - a) / sqrt(a)) for a large a), so truncation is
    ~1e-8 relative, rounding ~1e-16 / h. At the points below it agreed with mpmath's
    derivatives at 40 digits to 4e-10 (checked when this test was written)."""
    h = 1e-2 * min(a, np.sqrt(a))
    wide, narrow = [(f(a + d) - f(a - d)) / (2 * d) for d in (h, h / 2)]
    return (4 * narrow - wide) / 3


GAMMA_POINTS = [(a, sp.gammaincinv(a, q)) for a in (0.3, 3.0, 100.0) for q in (0.5, 0.99)]
T_POINTS = [(nu, t) for nu in (0.5, 3.0, 100.0) for t in (-3.0, 0.5, 2.0)]


@pytest.mark.parametrize("name, points", [("gammainc", GAMMA_POINTS), ("gammaincc", GAMMA_POINTS),
                                          ("stdtr", T_POINTS)])
def test_shape_derivative_matches_richardsons_extrapolation(name, points):
    # 1e-7 relative: the code's step, 1e-5 relative (absolute below 1), is within 7e-9 of
    # mpmath at these points; an absolute step of 1e-5 above 1 too was 5e-7 off at nu = 100,
    # t = 0.5 (rounding: 1e-16 over a step of 1e-5, against a derivative of 5e-6)
    primitive, reference = getattr(incomplete, name), getattr(sp, name)
    for a, x in points:
        got = grad(lambda s: primitive(s, x))(a)
        np.testing.assert_allclose(got, _richardson(lambda s: reference(s, x), a), rtol=1e-7,
                                   err_msg=f"{name} at {a}, {x}")
