"""Bijectors: round trips, landing in the support, log-Jacobians against autograd, biject_to;
AR1Innovations (an AR1 latent's non-centred map) against the recursion written out.

One row per bijector and kind of bound (float, data array [1, N], latent-dependent array
[S, ...]); u always carries the leading draw axis S.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, jacobian
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from ppl import constraints as c
from ppl.bijectors import (AR1Innovations, CorrCholeskyBijector, Identity, IntervalBound,
                           LowerBound, OrderedBijector, StickBreaking, UpperBound, biject_to)
from ppl.distributions.multivariate import AR1

S = 4


@dataclass
class Row:
    """``constraint(rng)`` builds the support (bounds broadcast against [S, *shape])."""
    id: str
    constraint: Callable[[np.random.Generator], c.Constraint]
    shape: tuple                      # constrained shape of one draw


def _interval_latent_bounds(rng):
    # lower depends on a latent ([S, 1]), upper on data and that latent ([S, 3])
    lower = rng.normal(0, 3, (S, 1))
    return c.Interval(lower, lower + rng.uniform(0.5, 4.0, (1, 3)))


ROWS = [
    Row("real", lambda rng: c.real, (3,)),
    Row("lower_float", lambda rng: c.GreaterThan(1.5), (3,)),
    Row("lower_negative_float", lambda rng: c.GreaterThan(-2.0), (3,)),   # not 0 (exp alone)
    Row("lower_inclusive", lambda rng: c.non_negative, (2, 3)),
    Row("lower_data", lambda rng: c.GreaterThan(rng.normal(0, 3, (1, 3))), (3,)),
    Row("lower_latent", lambda rng: c.GreaterThan(rng.normal(0, 3, (S, 3))), (3,)),
    Row("upper_float", lambda rng: c.LessThan(-2.0), (3,)),
    Row("upper_data", lambda rng: c.LessThan(rng.normal(0, 3, (1, 3))), (3,)),
    Row("upper_latent", lambda rng: c.LessThan(rng.normal(0, 3, (S, 1))), (3,)),
    Row("interval_float", lambda rng: c.Interval(-1.0, 2.5), (3,)),
    Row("interval_unit_scalar", lambda rng: c.Interval(0.0, 1.0), ()),
    Row("interval_data", lambda rng: c.Interval(rng.uniform(-3, -1, (1, 3)),
                                                rng.uniform(1, 3, (1, 3))), (3,)),
    Row("interval_latent", _interval_latent_bounds, (3,)),
    Row("simplex", lambda rng: c.simplex, (4,)),
    Row("simplex_batched", lambda rng: c.simplex, (2, 5)),
    Row("simplex_two", lambda rng: c.simplex, (2,)),
    Row("ordered", lambda rng: c.ordered, (4,)),
    Row("ordered_batched", lambda rng: c.ordered, (2, 3)),
    Row("ordered_one", lambda rng: c.ordered, (1,)),
    Row("positive_ordered", lambda rng: c.positive_ordered, (4,)),
    Row("positive_ordered_batched", lambda rng: c.positive_ordered, (2, 3)),
    Row("corr_cholesky_2", lambda rng: c.corr_cholesky, (2, 2)),
    Row("corr_cholesky_4", lambda rng: c.corr_cholesky, (4, 4)),
    Row("corr_cholesky_batched", lambda rng: c.corr_cholesky, (2, 3, 3)),
]


def _free_part(bijector, x):
    """The constrained coordinates that the free ones determine: a simplex's first K-1, a
    correlation Cholesky factor's strict lower triangle (the rest follows from them)."""
    if isinstance(bijector, StickBreaking):
        return x[..., :-1]
    if isinstance(bijector, CorrCholeskyBijector):
        rows, cols = np.tril_indices(x.shape[-1], -1)
        return x[..., rows, cols]
    return x


def _setup(row, seed=0):
    rng = np.random.default_rng(seed)
    constraint = row.constraint(rng)
    bijector = biject_to(constraint)
    u = rng.normal(0.0, 2.0, (S,) + bijector.free_shape(row.shape))
    return constraint, bijector, u


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_inverse_undoes_forward(row):
    _, bijector, u = _setup(row)
    # atol only for u near 0, where a relative tolerance means nothing
    np.testing.assert_allclose(bijector.inverse(bijector.forward(u)), u, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_forward_lands_in_support(row):
    constraint, bijector, u = _setup(row)
    x = bijector.forward(u)
    assert x.shape == (S,) + row.shape
    assert np.all(constraint.check(x))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_log_det_jacobian_matches_autograd(row):
    _, bijector, u = _setup(row)

    def flat_forward(v):
        x = bijector.forward(anp.reshape(v, u.shape))
        return anp.reshape(_free_part(bijector, x), (-1,))

    m = u.size // S
    # draws are independent, so the full Jacobian is block diagonal: one [m, m] block per draw
    full = jacobian(flat_forward)(u.reshape(-1)).reshape(S, m, S, m)
    want = [np.linalg.slogdet(full[s, :, s, :])[1] for s in range(S)]
    got = bijector.log_det_jacobian(u)
    assert got.shape == (S,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_forward_mixes_only_the_axes_of_one_value(row):
    # a value's other elements move only its own: the minibatch check (infer/batchaxis.py)
    # refuses a latent whose rows are the constraint's event_dim axes, and no other
    constraint, bijector, u = _setup(row)
    batch = int(np.prod(row.shape[:len(row.shape) - constraint.event_dim]))
    full = jacobian(bijector.forward)(u).reshape(S, batch, -1, S, batch, u[0].size // batch)
    for s in range(S):
        across = full[s, :, :, s, :, :].transpose(0, 2, 1, 3)[~np.eye(batch, dtype=bool)]
        assert not np.any(across), "forward mixes values: raise the constraint's event_dim"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_forward_and_log_det_are_forward_and_log_det_jacobian(row):
    # the compiler takes both at once (a bijector may share their work): the same numbers,
    # bit for bit, and the same gradient
    _, bijector, u = _setup(row)
    x, log_det = bijector.forward_and_log_det(u)
    np.testing.assert_array_equal(x, bijector.forward(u))
    np.testing.assert_array_equal(log_det, bijector.log_det_jacobian(u))

    def both(v):
        x, log_det = bijector.forward_and_log_det(v)
        return anp.sum(anp.sin(x)) + anp.sum(log_det)

    def apart(v):
        return anp.sum(anp.sin(bijector.forward(v))) + anp.sum(bijector.log_det_jacobian(v))
    np.testing.assert_allclose(grad(both)(u), grad(apart)(u), rtol=1e-13, atol=1e-13)


@pytest.mark.filterwarnings("ignore:Output seems independent of input")   # the identity's
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_log_det_jacobian_and_its_gradient_stay_finite_far_out(row):
    # the value may round onto a bound there (bijectors.py's docstring), the log-Jacobian
    # must not: log sigmoid, log(1 - tanh^2) and the stick's logs are written stably
    _, bijector, u = _setup(row)
    for far in (20.0, 40.0, 300.0, 745.0, 800.0):
        for v in (np.full(u.shape, far), np.full(u.shape, -far), np.where(u < 0, -far, far)):
            log_det = bijector.log_det_jacobian(v)
            gradient = grad(lambda w: anp.sum(bijector.log_det_jacobian(w)))(v)
            assert np.all(np.isfinite(log_det)) and np.all(np.isfinite(gradient)), (far, v)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(row=hs.sampled_from(ROWS),
       u=arrays(np.float64, (S, 5), elements=hs.floats(-10.0, 10.0)))
def test_roundtrip_property(row, u):
    # |u| <= 10 keeps sigmoid(u) away from rounding to 0 or 1 for the interval bijector
    constraint, bijector, _ = _setup(row)
    free = bijector.free_shape(row.shape)
    u = np.resize(u, (S,) + free)
    if isinstance(bijector, OrderedBijector):
        # x_k - x_{k-1} loses digits when the increment exp(u_k) is small beside x_k, which
        # grows like exp(max u): |u| <= 4 bounds that loss by e^8 * 1e-16 (about 3e-13)
        u = u * 0.4
    x = bijector.forward(u)
    assert np.all(constraint.check(x))
    np.testing.assert_allclose(bijector.inverse(x), u, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("constraint, kind, bounds", [
    (c.real, Identity, {}),
    (c.GreaterThan(2.0), LowerBound, {"lower": 2.0}),
    (c.GreaterThan(0.0, inclusive=True), LowerBound, {"lower": 0.0}),
    (c.LessThan(-1.0), UpperBound, {"upper": -1.0}),
    (c.Interval(0.0, 3.0), IntervalBound, {"lower": 0.0, "upper": 3.0}),
    (c.simplex, StickBreaking, {}),
    (c.ordered, OrderedBijector, {"positive": False}),
    (c.positive_ordered, OrderedBijector, {"positive": True}),
    (c.corr_cholesky, CorrCholeskyBijector, {}),
], ids=lambda v: type(v).__name__ if isinstance(v, c.Constraint) else None)
def test_biject_to_picks_the_bijector(constraint, kind, bounds):
    bijector = biject_to(constraint)
    assert type(bijector) is kind
    assert {name: getattr(bijector, name) for name in bounds} == bounds


def test_zero_lower_bound_is_exp_bit_for_bit():
    # LowerBound(0) skips adding the zero (one traced operation less): value and gradient
    # must be those of 0.0 + exp(u) exactly, extremes included
    u = np.array([[-800.0, -30.0, -1e-300, 0.0, 0.3, 40.0, 700.0, 710.0]])
    bijector = LowerBound(0.0)
    plain = lambda v: 0.0 + anp.exp(v)  # noqa: E731
    weights = np.linspace(-2.0, 3.0, u.size).reshape(u.shape)
    with np.errstate(over="ignore"):   # exp(710) is inf in both
        np.testing.assert_array_equal(bijector.forward(u), plain(u))
        np.testing.assert_array_equal(
            grad(lambda v: anp.sum(weights * bijector.forward(v)))(u),
            grad(lambda v: anp.sum(weights * plain(v)))(u))
    assert not np.any(np.signbit(bijector.forward(u[:, :-1])))


def test_every_continuous_constraint_has_a_bijector():
    for kind in c.Constraint.__subclasses__():
        if not kind.discrete and not kind.parameter_only:
            fields = {"lower": 0.0, "upper": 1.0}
            args = [fields[f] for f in getattr(kind, "__dataclass_fields__", {})
                    if f in fields]
            biject_to(kind(*args))


@pytest.mark.parametrize("constraint", [c.boolean, c.non_negative_integer,
                                        c.IntegerInterval(0, 3)])
def test_discrete_support_has_no_bijector(constraint):
    with pytest.raises(NotImplementedError, match="internal"):
        biject_to(constraint)


@pytest.mark.parametrize("constraint", [c.positive_definite, c.lower_cholesky])
def test_parameter_only_constraint_has_no_bijector(constraint):
    with pytest.raises(NotImplementedError, match="internal"):
        biject_to(constraint)


def test_corr_cholesky_free_shape_is_k_choose_2():
    assert biject_to(c.corr_cholesky).free_shape((5, 4, 4)) == (5, 6)


@pytest.mark.parametrize("n_free", [2, 4, 5])
def test_corr_cholesky_refuses_a_count_of_free_values_that_is_not_k_choose_2(n_free):
    # K is read off the count; 4 values rounded to K = 3 and one of them was dropped silently
    with pytest.raises(ValueError, match="internal"):
        CorrCholeskyBijector().forward(np.zeros((1, n_free)))


def test_corr_cholesky_gives_a_correlation_matrix():
    u = np.random.default_rng(3).normal(0.0, 2.0, (S, 10))
    x = biject_to(c.corr_cholesky).forward(u)
    omega = x @ np.swapaxes(x, -1, -2)
    np.testing.assert_allclose(np.diagonal(omega, axis1=-2, axis2=-1), 1.0, rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(omega) > 0)


def test_corr_cholesky_keeps_precision_near_unit_correlation():
    # tanh(18) rounds to within 1e-15 of 1: the inverse must not go through arctanh(z)
    u = np.array([[18.0, -17.0, 0.5]])
    bijector = biject_to(c.corr_cholesky)
    np.testing.assert_allclose(bijector.inverse(bijector.forward(u)), u, rtol=1e-9)


def _corr_cholesky_traced(u):
    """The correlation-Cholesky map and its log-Jacobian as plain autograd operations (the
    bijector's code before its hand-written gradient): the reference for that gradient."""
    k = CorrCholeskyBijector._size(u.shape[-1])
    rows, cols = np.tril_indices(k, -1)

    def scatter(v):
        index = np.zeros((k, k), dtype=int)
        index[rows, cols] = np.arange(1, len(rows) + 1)
        return anp.concatenate([anp.zeros(v.shape[:-1] + (1,)), v], axis=-1)[..., index]
    z = scatter(anp.tanh(u))
    log_1mz2 = scatter(anp.log(1.0 - anp.tanh(u) ** 2))
    log_left = anp.cumsum(log_1mz2, axis=-1) - log_1mz2
    x = (z + anp.eye(k)) * anp.exp(0.5 * log_left)
    terms = log_1mz2[..., rows, cols] + 0.5 * log_left[..., rows, cols]
    return x, anp.sum(anp.reshape(terms, (u.shape[0], -1)), axis=1)


@pytest.mark.parametrize("free_shape", [(1,), (3,), (10,), (2, 6)])
def test_corr_cholesky_gradient_and_hessian_match_the_traced_map(free_shape):
    # the hand-written gradient against autograd's of the same map, first and second order
    # (the whitening's Hessian-vector products trace through it); |u| <= 2.5 keeps
    # log(1 - tanh^2) of the reference free of cancellation, so both agree to rounding
    rng = np.random.default_rng(11)
    u = rng.uniform(-2.5, 2.5, (S,) + free_shape)
    k = CorrCholeskyBijector._size(free_shape[-1])
    weights = rng.normal(size=(S,) + free_shape[:-1] + (k, k))
    direction = rng.normal(size=u.shape)
    bijector = CorrCholeskyBijector()

    def scalar(map_):
        def f(v):
            x, log_det = map_(v)
            return anp.sum(anp.sin(x) * weights) + anp.sum(log_det ** 2)
        return f
    ours, traced = scalar(bijector.forward_and_log_det), scalar(_corr_cholesky_traced)
    np.testing.assert_allclose(grad(ours)(u), grad(traced)(u), rtol=1e-10, atol=1e-12)

    def hvp(f):
        return grad(lambda v: anp.sum(grad(f)(v) * direction))(u)
    np.testing.assert_allclose(hvp(ours), hvp(traced), rtol=1e-9, atol=1e-11)


def test_ordered_maps_zero_to_unit_steps():
    np.testing.assert_allclose(OrderedBijector().forward(np.zeros((1, 3))), [[0.0, 1.0, 2.0]])
    np.testing.assert_allclose(OrderedBijector(positive=True).forward(np.zeros((1, 3))),
                               [[1.0, 2.0, 3.0]])


def test_free_shape_drops_one_simplex_coordinate():
    assert biject_to(c.simplex).free_shape((2, 5)) == (2, 4)
    assert biject_to(c.GreaterThan(0.0)).free_shape((2, 5)) == (2, 5)


def test_stick_breaking_maps_zero_to_the_centre():
    np.testing.assert_allclose(StickBreaking().forward(np.zeros((1, 3))), [[0.25] * 4])


def test_stick_breaking_far_out_keeps_a_sparse_dirichlet_finite():
    # Dirichlet(0.01) puts an empty category's u near -1000 (its u-density is about
    # exp(0.01 u)): exp underflowed to x = 0 and (alpha - 1) log x to +inf, and the fit
    # diverged. Clipped at the smallest normal (as numpyro), value and gradient stay finite
    from ppl.distributions.continuous import Dirichlet
    alpha = np.full(4, 0.01)

    def log_joint(u):
        bijector = StickBreaking()
        x, log_det = bijector.forward_and_log_det(u)
        return anp.sum(Dirichlet.log_density(x, alpha) + log_det)
    u = np.array([[-1000.0, 0.5, -800.0]])
    x = StickBreaking().forward(u)
    assert np.all(x > 0) and abs(np.sum(x) - 1.0) < 1e-15
    assert np.isfinite(log_joint(u)) and np.all(np.isfinite(grad(log_joint)(u)))
    inside = np.array([[-700.0, 0.5, -20.0]])     # above the clip: exactly the plain map
    log_x = np.log(StickBreaking().forward(inside))
    np.testing.assert_allclose(log_x[0, 0], -700.0 - np.log(3.0), rtol=1e-12)


@pytest.mark.parametrize("lower, upper, u", [(-1.0, 0.0, 30.0), (0.0, 1.0, -30.0)])
def test_interval_keeps_precision_near_a_zero_bound(lower, upper, u):
    # x is within 1e-13 of a bound at 0: no digits may be lost to cancellation
    bijector, u_arr = IntervalBound(lower, upper), np.array([u])
    np.testing.assert_allclose(bijector.inverse(bijector.forward(u_arr)), u_arr, rtol=1e-9)


# ----- AR1Innovations: an AR1 latent through its standardized innovations ---------------------

def _ar1_loop(u, mu, phi, sigma):
    """The AR(1) recursion written out step by step (the reference); the parameters have the
    batch shape [S or 1, *batch] (or are floats)."""
    x = np.empty_like(u)
    x[..., 0] = mu + sigma / np.sqrt(1 - phi ** 2) * u[..., 0]
    for t in range(1, u.shape[-1]):
        x[..., t] = mu + phi * (x[..., t - 1] - mu) + sigma * u[..., t]
    return x


# parameters per draw ([S]), shared floats, and a [S, 2] batch of series (T = 1 and 2 are
# the edges of the doubling filter; 13 is not a power of 2)
AR1_CASES = {
    "per_draw_T13": (lambda rng: (rng.normal(size=S), rng.uniform(-0.99, 0.99, S),
                                  rng.uniform(0.1, 2.0, S)), (13,)),
    "floats_T1": (lambda rng: (0.5, -0.3, 0.7), (1,)),
    "floats_T2": (lambda rng: (0.5, 0.95, 0.7), (2,)),
    "batched_T6": (lambda rng: (rng.normal(size=(S, 2)), rng.uniform(-0.9, 0.9, (S, 2)),
                                rng.uniform(0.1, 2.0, (1, 2))), (2, 6)),
}


def _ar1_setup(case):
    rng = np.random.default_rng(1)
    params, shape = AR1_CASES[case]
    mu, phi, sigma = params(rng)
    return (mu, phi, sigma), AR1Innovations(mu, phi, sigma), rng.normal(size=(S,) + shape)


@pytest.mark.parametrize("case", AR1_CASES)
def test_ar1_innovations_forward_is_the_recursion_and_inverse_undoes_it(case):
    (mu, phi, sigma), bijector, u = _ar1_setup(case)
    x = bijector.forward(u)
    np.testing.assert_allclose(x, _ar1_loop(u, mu, phi, sigma), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bijector.inverse(x), u, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", AR1_CASES)
def test_ar1_innovations_log_det_matches_autograd(case):
    _, bijector, u = _ar1_setup(case)
    m = u.size // S
    full = jacobian(lambda v: anp.reshape(bijector.forward(anp.reshape(v, u.shape)), (-1,)))(
        u.reshape(-1)).reshape(S, m, S, m)
    want = [np.linalg.slogdet(full[s, :, s, :])[1] for s in range(S)]
    got = bijector.log_det_jacobian(u)
    assert got.shape == (S,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", AR1_CASES)
def test_ar1_innovations_turn_the_prior_into_standard_normals(case):
    # change of variables: log AR1(x) + log|det dx/du| is the standard normal log density of u
    (mu, phi, sigma), bijector, u = _ar1_setup(case)
    x = bijector.forward(u)
    prior = AR1.log_density(x, mu, phi, sigma)
    prior = prior.reshape(S, -1).sum(axis=1) if np.ndim(prior) > 1 else prior
    np.testing.assert_allclose(prior + bijector.log_det_jacobian(u),
                               norm.logpdf(u).reshape(S, -1).sum(axis=1), rtol=1e-10)


def test_ar1_innovations_gradient_in_phi_matches_central_differences():
    rng = np.random.default_rng(2)
    u, w = rng.normal(size=(1, 40)), rng.normal(size=(1, 40))

    def f(phi):
        return anp.sum(w * AR1Innovations(0.3, phi, 0.8).forward(u))
    h = 1e-6
    for phi in (-0.95, 0.0, 0.5, 0.97):
        want = (f(phi + h) - f(phi - h)) / (2 * h)
        np.testing.assert_allclose(grad(f)(phi), want, rtol=1e-6)


def test_ar1_innovations_hessian_matches_differences_of_the_gradient():
    # the filter is an autograd primitive whose gradient is written in autograd ops: the
    # Hessian-vector products of the whitening (precondition.py) must trace through it
    rng = np.random.default_rng(3)
    w, v = rng.normal(size=(1, 12)), rng.normal(size=15)

    def f(p):               # p = (u [12], mu, phi, sigma)
        b = AR1Innovations(p[12], anp.tanh(p[13]), anp.exp(p[14]))
        x = b.forward(p[None, :12])
        return anp.sum(anp.sin(w * x)) + anp.sum(b.log_det_jacobian(p[None, :12]))
    p = np.concatenate([rng.normal(size=12), [0.3, 1.2, -0.4]])
    g, h = grad(f), 1e-5
    want = (g(p + h * v) - g(p - h * v)) / (2 * h)
    hvp = grad(lambda q: anp.dot(g(q), v))(p)
    np.testing.assert_allclose(hvp, want, rtol=1e-6, atol=1e-8)
