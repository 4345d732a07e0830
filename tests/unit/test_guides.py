"""MeanField: initial parameters, reparameterized draws, closed-form entropy, log q."""
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.stats
from autograd import hessian, value_and_grad

from ppl.guides import MEAN_FIELD

THETAS = [
    np.array([0.0, 0.0]),                                   # D = 1, standard normal
    np.array([1.0, -2.0, 3.0, np.log(0.5), 0.0, np.log(4.0)]),
]


def test_init_is_origin_with_init_scale():
    theta = MEAN_FIELD.init(3, 0.1)
    mu, log_sigma = MEAN_FIELD.split(theta)
    assert theta.shape == (6,) and theta.dtype == np.float64
    np.testing.assert_array_equal(mu, np.zeros(3))
    np.testing.assert_allclose(np.exp(log_sigma), 0.1)


@pytest.mark.parametrize("theta", THETAS)
def test_draw_is_mu_plus_sigma_eps(theta, rng):
    mu, log_sigma = MEAN_FIELD.split(theta)
    eps = rng.standard_normal((7, mu.size))
    np.testing.assert_allclose(MEAN_FIELD.draw(theta, eps), mu + np.exp(log_sigma) * eps)


@pytest.mark.parametrize("theta", THETAS)
def test_entropy_matches_scipy(theta):
    mu, log_sigma = MEAN_FIELD.split(theta)
    expected = np.sum(scipy.stats.norm(mu, np.exp(log_sigma)).entropy())
    np.testing.assert_allclose(MEAN_FIELD.entropy(theta), expected, rtol=1e-12)


@pytest.mark.parametrize("theta", THETAS)
def test_entropy_matches_monte_carlo(theta, rng):
    # -E[log q] from n draws; tolerance z = 4 Monte Carlo standard errors
    n = 20_000
    log_q = MEAN_FIELD.log_q(theta, MEAN_FIELD.sample(theta, rng, n))
    se = np.std(log_q) / np.sqrt(n)
    assert abs(-np.mean(log_q) - MEAN_FIELD.entropy(theta)) < 4 * se


@pytest.mark.parametrize("theta", THETAS)
def test_log_q_matches_scipy(theta, rng):
    mu, log_sigma = MEAN_FIELD.split(theta)
    zeta = rng.standard_normal((5, mu.size)) * 3
    expected = scipy.stats.norm(mu, np.exp(log_sigma)).logpdf(zeta).sum(axis=1)
    np.testing.assert_allclose(MEAN_FIELD.log_q(theta, zeta), expected, rtol=1e-12)


def test_sample_shape_and_moments(rng):
    theta = THETAS[1]
    mu, log_sigma = MEAN_FIELD.split(theta)
    n = 40_000
    draws = MEAN_FIELD.sample(theta, rng, n)
    assert draws.shape == (n, 3)
    # means within z = 4 standard errors sigma / sqrt(n)
    sigma = np.exp(log_sigma)
    assert np.all(np.abs(draws.mean(axis=0) - mu) < 4 * sigma / np.sqrt(n))


# ----- the richer families (ppl/guides/fullrank.py, lowrank.py, flow.py) and the registry -----

import autograd.numpy as anp  # noqa: E402
from autograd import grad, jacobian  # noqa: E402

from ppl.errors import PplError  # noqa: E402
from ppl.guides import (FAMILIES, GAUSSIAN, REGISTRY, SPECS, WARM_FROM, Flow,  # noqa: E402
                        FullRank, LowRank, Scaled, StudentT, family)

D3 = 3


def random_theta(guide, rng, scale=0.5):
    """A generic point of the family: init plus noise on every parameter."""
    theta = guide.init(D3, 1.0)
    return theta + scale * rng.standard_normal(theta.shape)


def gaussian_cov(guide, theta):
    """The covariance of a Gaussian family's q, from its own factors."""
    if isinstance(guide, FullRank):
        _, L = guide.split(theta)
        return L @ L.T
    _, log_sigma, F = guide.split(theta)
    return np.diag(np.exp(2 * log_sigma)) + F @ F.T


GAUSSIANS = [FullRank(D3), LowRank(D3, 1), LowRank(D3, 2)]
STUDENTS = [StudentT(D3), StudentT(D3, 5), StudentT(1, 3)]
FAMILY_OBJECTS = [MEAN_FIELD, *GAUSSIANS, Flow(D3, 2), Flow(1, 2), Flow(2, 3),
                  Flow(D3, 2, "realnvp"), Scaled(1), Scaled(D3), Scaled(5), *STUDENTS]


def dim_of(guide):
    return getattr(guide, "D", D3)


@pytest.mark.parametrize("guide", GAUSSIANS, ids=str)
def test_gaussian_log_q_and_entropy_match_scipy(guide, rng):
    theta = random_theta(guide, rng)
    mvn = scipy.stats.multivariate_normal(guide.mean(theta), gaussian_cov(guide, theta))
    zeta = 2 * rng.standard_normal((6, D3))
    np.testing.assert_allclose(guide.log_q(theta, zeta), mvn.logpdf(zeta), rtol=1e-10)
    eps = rng.standard_normal((2, guide.eps_dim(D3)))
    np.testing.assert_allclose(guide.draw_and_entropy(theta, eps)[1], mvn.entropy(), rtol=1e-10)
    np.testing.assert_allclose(np.exp(2 * guide.log_sd(theta)), np.diag(mvn.cov), rtol=1e-10)


@pytest.mark.parametrize("guide", GAUSSIANS, ids=str)
def test_gaussian_draws_have_the_covariance(guide, rng):
    theta = random_theta(guide, rng)
    n = 40_000
    draws = guide.sample(theta, rng, n)
    cov = gaussian_cov(guide, theta)
    # each covariance entry within z = 4 standard errors; the standard error of a sample
    # covariance entry is sqrt((S_ij^2 + S_ii S_jj) / n) for a Gaussian
    se = np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(draws.T) - cov) < 4 * se)


@pytest.mark.parametrize("guide", STUDENTS, ids=str)
def test_student_t_log_q_and_entropy_match_scipy(guide, rng):
    D = guide.D
    theta = guide.init(D, 1.0) + 0.5 * rng.standard_normal(guide.init(D, 1.0).shape)
    mu, L = guide.frame(theta)
    t = scipy.stats.multivariate_t(mu, L @ L.T, df=guide.nu)
    zeta = 2 * rng.standard_normal((6, D))
    np.testing.assert_allclose(guide.log_q(theta, zeta), t.logpdf(zeta), rtol=1e-10)
    eps = rng.standard_normal((2, guide.eps_dim(D)))
    np.testing.assert_allclose(guide.draw_and_entropy(theta, eps)[1], t.entropy(), rtol=1e-10)
    np.testing.assert_allclose(np.exp(2 * guide.log_sd(theta)),
                               np.diag(L @ L.T) * guide.nu / (guide.nu - 2), rtol=1e-10)


@pytest.mark.parametrize("guide", [StudentT(D3), StudentT(D3, 5)], ids=str)
def test_student_t_draws_have_the_covariance(guide, rng):
    # the covariance is NU / (NU - 2) L L^T; each entry within z = 4 standard errors, the
    # standard error of a sample covariance entry of a centred multivariate t (NU > 4) being
    # sqrt((k (S_ii S_jj + 2 S_ij^2) - C_ij^2) / n), k = NU^2 / ((NU - 2)(NU - 4)) its fourth
    # moments' factor on the scale matrix S = L L^T
    theta = random_theta(guide, rng)
    n, nu = 200_000, guide.nu
    _, L = guide.frame(theta)
    S = L @ L.T
    C = S * nu / (nu - 2)
    draws = guide.sample(theta, rng, n)
    k = nu ** 2 / ((nu - 2) * (nu - 4))
    se = np.sqrt((k * (np.outer(np.diag(S), np.diag(S)) + 2 * S ** 2) - C ** 2) / n)
    assert np.all(np.abs(np.cov(draws.T) - C) < 4 * se)


def test_a_full_rank_fits_parameters_are_the_student_ts_frame(rng):
    # auto assesses a full-rank fit under t noise from the same theta (infer/auto.py)
    theta = random_theta(FullRank(D3), rng)
    assert all(np.array_equal(a, b) for a, b in zip(StudentT(D3).frame(theta),
                                                    FullRank(D3).frame(theta)))


def flow_theta(flow, rng, scale=0.3):
    """A flow (or the scaled family) away from the identity: every parameter perturbed."""
    theta = flow.init(flow.D, 1.0)
    return theta + scale * rng.standard_normal(theta.shape)


FLOWS = [Flow(1, 2), Flow(2, 3), Flow(5, 4), Flow(1, 2, "realnvp"), Flow(2, 3, "realnvp"),
         Flow(5, 4, "realnvp")]


@pytest.mark.parametrize("flow", FLOWS, ids=str)
def test_flow_log_det_matches_autograd_jacobian(flow, rng):
    theta = flow_theta(flow, rng)
    eps = rng.standard_normal((4, flow.D))
    _, log_det = flow.forward(theta, eps)
    for i in range(4):
        J = jacobian(lambda e: flow.draw(theta, e[None])[0])(eps[i])
        np.testing.assert_allclose(log_det[i], np.linalg.slogdet(J)[1], rtol=1e-10, atol=1e-10)



@pytest.mark.parametrize("kind", ["iaf", "realnvp"])
def test_consecutive_layers_transform_in_turn(kind, rng):
    # The log-det and inverse tests hold for any triangular layers, so layers that never
    # reversed their order (IAF) or never swapped their halves (realnvp), each leaving a
    # coordinate only ever moved by the affine map, passed them. IAF (MADE masks): layer k's
    # y_i depends on exactly the x_j before i in its order, reversed on odd layers;
    # realnvp: layer k keeps its half (the first D // 2 on even layers, the rest on odd
    # ones), and each moved coordinate depends on every kept one and on itself alone.
    flow = Flow(4, 2, kind)
    _, _, layers = flow._unpack(flow_theta(flow, rng, scale=0.5))
    x = rng.standard_normal(4)
    for k in range(2):
        J = jacobian(lambda v: flow._layer_forward(k, layers[k], v[None])[0][0])(x)
        if kind == "iaf":
            order = np.arange(4) if k % 2 == 0 else np.arange(3, -1, -1)
            ordered = J[np.ix_(order, order)]
            assert np.all(np.triu(ordered, 1) == 0) and np.all(np.diag(ordered) > 0)
            assert np.all(ordered[np.tril_indices(4, -1)] != 0)
        else:
            kept, moved = (np.arange(2), np.arange(2, 4))[::1 if k % 2 == 0 else -1]
            np.testing.assert_array_equal(J[kept], np.eye(4)[kept])
            assert np.all(J[np.ix_(moved, kept)] != 0)
            np.testing.assert_array_equal(J[np.ix_(moved, moved)],
                                          np.diag(np.diag(J[np.ix_(moved, moved)])))

@pytest.mark.parametrize("flow", [Flow(1, 2), Flow(2, 3), Flow(5, 4), Flow(10, 4)], ids=str)
def test_iaf_primitive_matches_the_layer_by_layer_composition(flow, rng):
    # The IAF's forward pass is one autograd primitive with a hand-written gradient
    # (flow._iaf_chain); the layer-by-layer version, differentiated by autograd, is the
    # reference. Same arithmetic, so agreement to rounding.
    theta, eps = flow_theta(flow, rng), rng.standard_normal((7, flow.D))
    w, v = rng.standard_normal((7, flow.D)), rng.standard_normal(7)

    def composed(th, e):
        mu, A, layers = flow._unpack(th)
        x, log_det = e, anp.linalg.slogdet(A)[1] * anp.ones(e.shape[0])
        for k, params in enumerate(layers):
            x, layer_log_det = flow._layer_forward(k, params, x)
            log_det = log_det + layer_log_det
        return mu + x @ A.T, log_det

    def objective(forward):
        def value(th, e):
            zeta, log_det = forward(th, e)
            return anp.sum(zeta * w) + anp.sum(log_det * v)
        return value

    for argnum in (0, 1):
        np.testing.assert_allclose(grad(objective(flow.forward), argnum)(theta, eps),
                                   grad(objective(composed), argnum)(theta, eps),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("flow", FLOWS, ids=str)
def test_flow_inverse_undoes_forward(flow, rng):
    theta = flow_theta(flow, rng)
    eps = rng.standard_normal((6, flow.D))
    zeta, log_det = flow.forward(theta, eps)
    back, log_det_back = flow.inverse(theta, zeta)
    np.testing.assert_allclose(back, eps, atol=1e-10)
    np.testing.assert_allclose(log_det_back, log_det, atol=1e-10)


def test_flow_starts_at_the_identity(rng):
    flow = Flow(4, 3)
    eps = rng.standard_normal((5, 4))
    zeta, log_det = flow.forward(flow.init(4, 0.5), eps)
    np.testing.assert_allclose(zeta, 0.5 * eps, rtol=1e-14)
    np.testing.assert_allclose(log_det, 4 * np.log(0.5), rtol=1e-14)


@pytest.mark.parametrize("kind", ["iaf", "realnvp"])
def test_a_flow_stacked_on_a_flow_with_fewer_layers_starts_as_that_flow(kind, rng):
    # auto's last rung (flow:4) goes on from the flow:2 it follows: in the frame of the flow's
    # mu and A, its first two layers the flow's, its last two the identity, it is the same q
    source, flow = Flow(D3, 2, kind), Flow(D3, 4, kind)
    theta = flow_theta(source, rng)
    m0, W = source.frame(theta)
    stacked = flow.push_affine(flow.stacked_start(source, theta), m0, W)
    eps = rng.standard_normal((7, D3))
    for got, expected in zip(flow.forward(stacked, eps), source.forward(theta, eps)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    zeta = source.draw(theta, eps)
    np.testing.assert_allclose(flow.log_q(stacked, zeta), source.log_q(theta, zeta), rtol=1e-10)
    # not from a flow of as many layers or more, of another kind or size, or a Gaussian
    assert Flow(D3, 2, kind).stacked_start(source, theta) is None
    assert Flow(D3, 4, "realnvp" if kind == "iaf" else "iaf").stacked_start(source, theta) is None
    assert Flow(D3 + 1, 4, kind).stacked_start(source, theta) is None
    assert flow.stacked_start(MEAN_FIELD, np.zeros(2 * D3)) is None


@pytest.mark.parametrize("flow", [Flow(2, 4, "realnvp"), Flow(2, 4, "iaf"), Scaled(2)], ids=str)
def test_flow_density_integrates_to_one(flow, rng):
    # Importance sampling in 2-D: E_r[q(z) / r(z)] = 1 for a proposal r wider than q. The
    # estimate's standard error is sd(q / r) / sqrt(n); tolerance z = 4 of them.
    theta = flow_theta(flow, rng, scale=0.5 if flow.name != "scaled" else 0.4)
    n = 200_000
    proposal = scipy.stats.multivariate_normal(np.zeros(2), 25 * np.eye(2))
    z = proposal.rvs(n, random_state=rng)
    ratio = np.exp(flow.log_q(theta, z) - proposal.logpdf(z))
    assert abs(ratio.mean() - 1) < 4 * ratio.std() / np.sqrt(n)


def test_flow_entropy_estimate_matches_minus_mean_log_q(rng):
    flow = Flow(3, 2)
    theta = flow_theta(flow, rng)
    eps = rng.standard_normal((50, 3))
    zeta, entropy = flow.draw_and_entropy(theta, eps)
    # the estimate takes the base Gaussian's entropy in closed form, where -mean(log q) has
    # -mean(log N(eps)); the rest (the mean log-determinant) is the same
    log_n = -0.5 * np.sum(eps * eps, axis=1) - 1.5 * np.log(2 * np.pi)
    gap = entropy - (-np.mean(flow.log_q(theta, zeta)))
    assert abs(gap - np.mean(log_n) - 1.5 * (1 + np.log(2 * np.pi))) < 1e-10


class PlainFlow(Flow):
    """The flow with the plain reparameterized entropy gradient (no 'sticking the landing')."""
    path_gradient = False


def _elbo_grad(flow, log_p):
    """The gradient of the flow's ELBO estimate at noise eps: (theta, eps) -> [P]."""
    from ppl.infer.elbo import elbo
    return grad(lambda th, e: elbo(log_p, th, e, flow), 0)


def _target(z):
    # a correlated, shifted, non-Gaussian target (a quartic term), so that q != p
    return -0.5 * anp.sum((z - 1.0) ** 2, axis=1) - 0.1 * anp.sum(z, axis=1) ** 4 / 4


@pytest.mark.parametrize("flow", [Flow(1, 2), Flow(3, 2), Flow(5, 3)], ids=str)
def test_path_gradient_is_the_stop_gradient_through_log_q(flow, rng):
    # 'Sticking the landing' as Roeder et al. write it: the gradient of mean(log p(zeta) -
    # log q(zeta; theta0)) with theta0 = theta held fixed, log q by the exact inverse
    # (ppl.infer.elbo._stl_surrogate). The flow's path entropy gets it without the inverse,
    # from J^-T; the same quantity, so agreement to rounding.
    from ppl.infer.elbo import _stl_surrogate
    theta, eps = flow_theta(flow, rng), rng.standard_normal((6, flow.D))
    reference = grad(_stl_surrogate, 1)(_target, theta, eps, PlainFlow(flow.D, flow.K))
    np.testing.assert_allclose(_elbo_grad(flow, _target)(theta, eps), reference,
                               rtol=1e-9, atol=1e-11)
    # the value is the plain ELBO estimate's
    from ppl.infer.elbo import elbo
    assert elbo(_target, theta, eps, flow) == elbo(_target, theta, eps, PlainFlow(flow.D, flow.K))


def test_stl_with_the_path_gradient_flow_takes_its_own_gradient(rng):
    # --stl on an IAF flow went through log q's D-pass inverse: the same estimator as the
    # flow's own path gradient (the test above), at 5-20x a step's cost. It now is that one,
    # bit for bit; a flow with the plain gradient still takes --stl's
    from ppl.infer.elbo import elbo_and_grad
    flow = Flow(3, 2)
    theta, eps = flow_theta(flow, rng), rng.standard_normal((6, flow.D))
    assert flow.sticks_the_landing and not PlainFlow(3, 2).sticks_the_landing
    with_stl = elbo_and_grad(_target, theta, eps, flow, stl=True)
    without = elbo_and_grad(_target, theta, eps, flow, stl=False)
    assert with_stl[0] == without[0]
    np.testing.assert_array_equal(with_stl[1], without[1])
    plain = elbo_and_grad(_target, theta, eps, PlainFlow(3, 2), stl=True)
    np.testing.assert_allclose(plain[1], without[1], rtol=1e-9, atol=1e-11)


def test_path_gradient_has_the_plain_gradients_expectation(rng):
    # Both are unbiased for the ELBO's gradient: they differ by the score term, whose
    # expectation is zero. Per-draw gradients at n paired draws; the mean difference of every
    # coordinate must be within z = 4.5 of its standard error (sd of the paired differences
    # / sqrt(n)); over ~200 coordinates a false failure has probability ~1e-3 (fixed seed).
    flow, plain = Flow(3, 2), PlainFlow(3, 2)
    theta, n = flow_theta(flow, rng), 2000
    eps = rng.standard_normal((n, 1, 3))
    path, score = _elbo_grad(flow, _target), _elbo_grad(plain, _target)
    diff = np.array([path(theta, e) - score(theta, e) for e in eps])
    se = diff.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(diff.mean(axis=0)) <= 4.5 * se + 1e-12)
    # the check has power: leaving the entropy's gradient out altogether is caught
    log_p_only = grad(lambda th, e: anp.mean(_target(flow.draw(th, e))))
    missing = np.array([log_p_only(theta, e) - score(theta, e) for e in eps[:500]])
    se_missing = missing.std(axis=0, ddof=1) / np.sqrt(500)
    assert np.any(np.abs(missing.mean(axis=0)) > 10 * se_missing + 1e-3)



def test_realnvp_keeps_the_plain_gradient(rng):
    # the path cotangent is the IAF layers' (iaf.py); realnvp's entropy keeps the plain
    # reparameterized gradient even with path_gradient set
    flow = Flow(3, 2, "realnvp")
    theta, eps = flow_theta(flow, rng), rng.standard_normal((6, 3))
    np.testing.assert_array_equal(_elbo_grad(flow, _target)(theta, eps),
                                  _elbo_grad(PlainFlow(3, 2, "realnvp"), _target)(theta, eps))

def test_path_gradient_is_zero_when_q_is_the_target(rng):
    # At q = p, log p - log q is constant in zeta, so every draw's path gradient is zero (the
    # estimator's variance vanishes); the plain gradient's per-draw values are not zero.
    flow = Flow(3, 2)
    theta = flow_theta(flow, rng)
    plain = PlainFlow(3, 2)

    def log_p(z):
        return plain.log_q(theta, z)

    for e in rng.standard_normal((5, 1, 3)):
        np.testing.assert_allclose(_elbo_grad(flow, log_p)(theta, e), 0.0, atol=1e-9)
    assert np.max(np.abs(_elbo_grad(plain, log_p)(theta, e))) > 1e-2


def test_path_cotangent_solves_with_the_given_right_hand_side(rng):
    # _iaf_path_cotangent(layers, x, rhs, B) = (B J_g(x))^-T (rhs + grad_x log|det J_g|) / S,
    # with the Jacobian J_g of the layers and the gradient of their log-determinant from
    # autograd as the reference (the flow itself passes rhs = x = eps, B = A).
    from ppl.guides.iaf import _iaf_chain, _iaf_path_cotangent, hidden_units
    flow = Flow(4, 2)
    D, H = 4, hidden_units(4)
    layers = flow_theta(flow, rng)[D + D * D:]
    x, rhs = rng.standard_normal((3, D)), rng.standard_normal((3, D))
    B = rng.standard_normal((D, D)) + 3 * np.eye(D)
    got = _iaf_path_cotangent(layers, x, rhs, B, D, H, 2)
    for i in range(3):
        J = jacobian(lambda v: _iaf_chain(layers, v[None], D, H, 2)[0, :D])(x[i])
        g = grad(lambda v: _iaf_chain(layers, v[None], D, H, 2)[0, D])(x[i])
        expected = np.linalg.solve((B @ J).T, rhs[i] + g) / 3
        np.testing.assert_allclose(got[i], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("S", [6, 30])
@pytest.mark.parametrize(("D", "K"), [(1, 2), (2, 3), (5, 2), (10, 2), (13, 4), (41, 2)])
def test_path_cotangent_is_the_solve_with_the_whole_jacobian(D, K, S, rng, monkeypatch):
    # the cotangent solves either layer by layer (up to D - 1 sweeps of a triangular system
    # each, then A^T: D <= 5, D >= 40, or S >= 2 D) or with J^T built whole (D = 10, 13 at
    # S = 6); the
    # reference builds J = A J_g(eps) by autograd and solves J^T u S = eps + grad log|det|.
    # Layers far from the identity (scale 0.5), so every sweep matters: with one sweep fewer
    # D = 2, 5 and 10 fail (by 1.5, 2e-4 and 6e-9).
    # Tolerance: both are backward-stable solves, so they agree to a small multiple of
    # cond(J) * 2^-52 relative; 100 cond(J) * 2^-52 of the largest entry. The sweeps run to
    # their fixed point here (SWEEP_TOL 0): their early stop is bounded by
    # test_path_cotangent_sweeps_stop_at_the_tolerance.
    from ppl.guides import iaf
    from ppl.guides.iaf import _iaf_chain, _iaf_path_cotangent, hidden_units
    monkeypatch.setattr(iaf, "SWEEP_TOL", 0.0)
    flow, H = Flow(D, K), hidden_units(D)
    theta = flow_theta(flow, rng, scale=0.5)
    A = np.eye(D) + rng.normal(0.0, 0.3 / np.sqrt(D), (D, D))   # conditioned as a fit's
    layers, eps = theta[D + D * D:], rng.standard_normal((S, D))
    got = _iaf_path_cotangent(layers, eps, eps, A, D, H, K)
    for i in range(0, S, 5):
        J = A @ jacobian(lambda v: _iaf_chain(layers, v[None], D, H, K)[0, :D])(eps[i])
        g = grad(lambda v: _iaf_chain(layers, v[None], D, H, K)[0, D])(eps[i])
        expected = np.linalg.solve(J.T, eps[i] + g) / S
        tol = 100 * np.linalg.cond(J) * 2.0 ** -52 * np.max(np.abs(expected))
        np.testing.assert_allclose(got[i], expected, rtol=0, atol=tol)


def test_a_sweep_settles_at_the_bound_and_never_on_nan():
    from ppl.guides import iaf
    v, change, bound = np.array([[1.5, -2.0, 0.0]]), np.empty((1, 3)), 2.0 ** -30   # exact sums
    assert iaf._settled(v, v.copy(), bound, change)
    assert iaf._settled(v, v + bound, bound, change)
    assert iaf._settled(v, v - bound, bound, change)
    assert not iaf._settled(v, v + 2 * bound, bound, change)
    assert not iaf._settled(v, v - 2 * bound, bound, change)
    assert not iaf._settled(v + np.nan, v + np.nan, bound, change)
    assert not iaf._settled(v, v, np.nan, change)


@pytest.mark.parametrize(("scale", "most_sweeps"), [(0.0, 1), (0.05, 10), (0.5, 19)])
def test_path_cotangent_sweeps_stop_at_the_tolerance(scale, most_sweeps, rng, monkeypatch):
    # The sweeps stop at the first one that changes v by at most SWEEP_TOL of its largest
    # entry. A new flow (identity layers, scale 0) stops after its first sweep; layers near the
    # identity (0.05, as a trained flow's chains decay) well before D - 1 = 19; far layers
    # (0.5) may need them all. Against all D - 1 sweeps (exact): the error left after a sweep
    # that moved v by at most SWEEP_TOL is below that (it falls faster than geometrically),
    # then carried through the next layer and A^T's solve; 10 SWEEP_TOL of the largest entry.
    from ppl.guides import iaf
    D, K, S = 20, 2, 7
    flow, H = Flow(D, K), iaf.hidden_units(D)
    theta = flow_theta(flow, rng, scale=scale)
    A = np.eye(D) + rng.normal(0.0, 0.3 / np.sqrt(D), (D, D))
    params = iaf._iaf_layers(theta[D + D * D:], D, H, K)
    eps = rng.standard_normal((S, D))
    saved = iaf._iaf_run(params, eps, D)[1]
    sweeps, settled = [], iaf._settled
    monkeypatch.setattr(iaf, "_settled", lambda *args: sweeps.append(1) or settled(*args))
    early = iaf._solve_by_sweeps(params, saved, eps, A, D)
    monkeypatch.setattr(iaf, "_settled", lambda *args: False)
    every = iaf._solve_by_sweeps(params, saved, eps, A, D)
    np.testing.assert_allclose(early, every, rtol=0,
                               atol=10 * iaf.SWEEP_TOL * np.max(np.abs(every)))
    assert len(sweeps) <= K * most_sweeps


def _placement():
    """benchmarks/flow_placement.py: the layers-after flow gp_flow_diagnosis.py measures."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "flow_placement.py"
    spec = importlib.util.spec_from_file_location("flow_placement", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["AfterFlow", "SinhArcsinhFlow"])
@pytest.mark.parametrize("D, K", [(1, 2), (3, 2), (5, 3)])
def test_layers_after_the_affine_map_are_a_flow(name, D, K, rng):
    # the probe's flows zeta = c + C g(mu + A eps) and c + C h(g(mu + A eps)): exact
    # log-determinant (autograd's Jacobian), exact inverse, and the path gradient equal to the
    # stop-gradient through log q (as test_path_gradient_is_the_stop_gradient_through_log_q)
    from ppl.infer.elbo import _stl_surrogate
    kind = getattr(_placement(), name)
    flow = kind(D, K)
    plain = type("Plain", (kind,), {"path_gradient": False})(D, K)
    theta, eps = flow_theta(flow, rng), rng.standard_normal((6, D))
    zeta, log_det = flow.forward(theta, eps)
    for i in range(3):
        J = jacobian(lambda e: flow.draw(theta, e[None])[0])(eps[i])
        np.testing.assert_allclose(log_det[i], np.linalg.slogdet(J)[1], rtol=1e-10, atol=1e-10)
    back, log_det_back = flow.inverse(theta, zeta)
    np.testing.assert_allclose(back, eps, atol=1e-10)
    np.testing.assert_allclose(log_det_back, log_det, atol=1e-10)
    reference = grad(_stl_surrogate, 1)(_target, theta, eps, plain)
    np.testing.assert_allclose(_elbo_grad(flow, _target)(theta, eps), reference,
                               rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["AfterFlow", "SinhArcsinhFlow"])
def test_layers_after_start_in_the_model_coordinates_at_the_same_gaussian(name, rng):
    # model_start in the frame zeta = m0 + W u, pushed back: the same q as ppl's flow warm
    # started at N(m0, W W^T) (same log q at the same points), with the layers' input the
    # model's coordinates standardized: A = diag(1/sd) W and C A = I before the push
    D = 4
    flow = getattr(_placement(), name)(D, 2)
    W = np.linalg.cholesky(np.cov(rng.standard_normal((D, 9))))
    m0, sd = rng.standard_normal(D), np.sqrt(np.sum(W * W, axis=1))
    start = flow.model_start(W)
    mu, A, _ = flow._unpack(start)
    np.testing.assert_allclose(A, W / sd[:, None])
    np.testing.assert_allclose(flow._outer(start)[1] @ A, np.eye(D), atol=1e-12)
    pushed = flow.push_affine(start, m0, W)
    gaussian = Flow(D, 2).push_affine(Flow(D, 2).init(D, 1.0), m0, W)
    zeta = m0 + 2 * rng.standard_normal((5, D))
    np.testing.assert_allclose(flow.log_q(pushed, zeta), Flow(D, 2).log_q(gaussian, zeta),
                               rtol=1e-10)
    np.testing.assert_allclose(flow.frame(pushed)[0], m0, atol=1e-12)


@pytest.mark.parametrize("guide", FAMILY_OBJECTS, ids=str)
def test_to_dict_round_trips(guide, rng):
    D = dim_of(guide)
    theta = guide.init(D, 1.0) + 0.3 * rng.standard_normal(guide.init(D, 1.0).shape)
    names = [f"x[{i}]" for i in range(D)]
    import json
    saved = json.loads(json.dumps(guide.to_dict(theta, names)))
    # the same q: identical draws from identical noise (fullrank does not save the unused
    # upper triangle of its matrix block)
    restored = guide.from_dict(saved, names)
    np.testing.assert_array_equal(guide.sample(restored, np.random.default_rng(2), 4),
                                  guide.sample(theta, np.random.default_rng(2), 4))


@pytest.mark.parametrize("guide", FAMILY_OBJECTS, ids=str)
def test_jitter_scale_matches_theta(guide, rng):
    theta = guide.init(dim_of(guide), 0.7)
    scale = guide.jitter_scale(theta)
    assert scale.shape == theta.shape and np.all(scale > 0)



def _rows_but_the_diagonal(sd):
    rows = np.repeat(sd[:, None], sd.size, axis=1)
    np.fill_diagonal(rows, 1.0)
    return rows.ravel()


# each family's documented units after mu's (its jitter_scale docstring), from the sds
JITTER_UNITS = [
    (Flow(D3, 2), lambda sd, rest: np.concatenate([np.repeat(sd, D3), np.ones(rest - D3 * D3)])),
    (FullRank(D3), lambda sd, rest: _rows_but_the_diagonal(sd)),
    (Scaled(D3), lambda sd, rest: np.concatenate([_rows_but_the_diagonal(sd),
                                                  np.ones(rest - D3 * D3)])),
    (LowRank(D3, 2), lambda sd, rest: np.concatenate([np.ones(D3), np.repeat(sd, 2)]))]


@pytest.mark.parametrize(("guide", "units_after_mu"), JITTER_UNITS,
                         ids=[str(guide) for guide, _ in JITTER_UNITS])
def test_jitter_scale_is_the_affine_parts_marginal_sds(guide, units_after_mu, rng):
    # mu_i and the entries that move zeta_i linearly (row i of A, L or F) in units of the
    # affine part's sd of zeta_i, sqrt((W W^T)_ii) for its frame W (q with the layers at the
    # identity); log scales and the layers in 1s (the convergence rule's window comparison
    # reads them). Column norms, a tiled sd or the log-diagonal in sds passed the shape test
    # (the last three: a mutation pass, 2026-12-04)
    theta = flow_theta(guide, rng)
    W = guide.frame(theta)[1]
    sd = np.sqrt(np.diag(W @ W.T))
    np.testing.assert_allclose(guide.jitter_scale(theta),
                               np.concatenate([sd, units_after_mu(sd, theta.size - D3)]),
                               rtol=1e-14)


@pytest.mark.parametrize("guide", [MEAN_FIELD, FullRank(D3), Flow(D3, 2), StudentT(D3)], ids=str)
def test_push_affine_is_the_law_of_the_affine_map(guide, rng):
    theta = random_theta(guide, rng, 0.3)
    m0, W = rng.standard_normal(D3), rng.standard_normal((D3, D3)) + 3 * np.eye(D3)
    if guide is MEAN_FIELD:   # a positive diagonal W only (a whitening's sds), given as [D]
        W = np.diag(np.abs(np.diag(W)))
        pushed = guide.push_affine(theta, m0, np.diag(W))
    else:
        pushed = guide.push_affine(theta, m0, W)
    zeta = m0 + guide.sample(theta, np.random.default_rng(1), 5) @ W.T
    if isinstance(guide, Flow):   # the same eps give the mapped draws
        np.testing.assert_allclose(guide.sample(pushed, np.random.default_rng(1), 5), zeta)
    # the log density changes by the Jacobian of the map
    np.testing.assert_allclose(guide.log_q(pushed, zeta),
                               guide.log_q(theta, (zeta - m0) @ np.linalg.inv(W).T)
                               - np.linalg.slogdet(W)[1], rtol=1e-9)


@pytest.mark.parametrize("guide", [FullRank(D3), LowRank(D3, 2), Flow(D3, 2), Scaled(D3)],
                         ids=str)
def test_warm_start_from_mean_field_is_the_same_gaussian(guide, rng):
    theta_mf = np.concatenate([rng.standard_normal(D3), rng.standard_normal(D3)])
    theta = guide.warm_start(MEAN_FIELD, theta_mf)
    zeta = 2 * rng.standard_normal((5, D3))
    expected = MEAN_FIELD.log_q(theta_mf, zeta)
    # lowrank's small F start (F_INIT) changes log q a little; the others are exact
    rtol = 1e-2 if isinstance(guide, LowRank) else 1e-10
    np.testing.assert_allclose(guide.log_q(theta, zeta), expected, rtol=rtol)


def test_a_low_rank_warm_start_from_a_dense_source_keeps_its_marginal_sds(rng):
    # a dense frame W (a Cholesky factor) has the marginal sds in its row norms, not on its
    # diagonal; F starts at F_INIT of sigma, so the sds are sigma sqrt(1 + F_INIT^2 sum cos^2),
    # within R F_INIT^2 / 2 = 1e-4 relative of the source's
    source = FullRank(D3)
    theta = random_theta(source, rng, 0.5)
    mu, W = source.frame(theta)
    start = LowRank(D3, 2).warm_start(source, theta)
    np.testing.assert_allclose(LowRank(D3, 2).mean(start), mu, rtol=1e-12)
    np.testing.assert_allclose(np.exp(LowRank(D3, 2).log_sd(start)),
                               np.sqrt(np.diag(W @ W.T)), rtol=2e-4)


@pytest.mark.parametrize("R", [1, 2, 3])
def test_a_low_rank_start_has_a_factor_of_full_rank(R):
    # F = 0 is a stationary point of the expected ELBO, and equal columns of F get equal
    # expected gradients ((Sigma_q^-1 - Sigma_p^-1) F on a Gaussian target) and would move as
    # one: the start's F is F_INIT * init_scale in size, with R independent columns (F = 0
    # and equal columns passed every test before; a mutation pass, 2026-12-04)
    from ppl.guides.lowrank import F_INIT
    guide = LowRank(4, R)
    _, _, F = guide.split(guide.init(4, 0.5))
    assert np.linalg.matrix_rank(F) == R
    assert 0.5 * F_INIT * 0.5 < np.max(np.abs(F)) <= F_INIT * 0.5


SPEC_TABLE = [
    ("meanfield", MEAN_FIELD), ("fullrank", FullRank(5)), ("lowrank", LowRank(5, 3)),
    ("lowrank:2", LowRank(5, 2)), ("flow", Flow(5, 2)), ("flow:4", Flow(5, 4)),
    ("scaled", Scaled(5)), ("studentt", StudentT(5)), ("studentt:4", StudentT(5, 4))]


@pytest.mark.parametrize("spec, expected", SPEC_TABLE)
def test_family_parses_specs(spec, expected):
    assert family(spec, 5) == expected


# the protocol every family keeps (ppl/guides/__init__.py's docstring)
PROTOCOL = ("init", "eps_dim", "draw", "draw_and_entropy", "log_q", "sample", "mean", "log_sd",
            "jitter_scale", "frame", "push_affine", "warm_start", "to_dict", "from_dict")


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_has_a_consistent_record(name):
    # one record per family (guides.REGISTRY) is all the rest of ppl reads: a new family
    # with a field missing or pointing nowhere fails here
    record = REGISTRY[name]
    assert record.name == name
    assert any(spec.partition(":")[0] == name for spec, _ in SPEC_TABLE)   # a row above
    guide = family(name, 5)
    assert all(hasattr(guide, method) for method in PROTOCOL)
    assert record.warm_from is None or record.warm_from in REGISTRY and record.warm_from != name
    assert isinstance(record.gaussian, bool) and isinstance(record.suggested, bool)
    assert [r.flexibility for r in REGISTRY.values()].count(record.flexibility) == 1
    assert (record.spec in SPECS) and (("[:" in record.spec) == (record.size is not None))
    if record.size is not None:
        assert family(f"{name}:2", 5) is not None
        with pytest.raises(PplError, match=f"the {record.size} in '{name}:0' must be"):
            family(f"{name}:0", 5)
    else:
        with pytest.raises(PplError, match=f"'{name}' takes no ':N'"):
            family(f"{name}:2", 5)
    if record.max_dim is not None:
        assert family(name, record.max_dim) is not None
        with pytest.raises(PplError, match=f"is limited to {record.max_dim} unconstrained"):
            family(name, record.max_dim + 1)
        # the hint's family takes the size letter the hint shows ('lowrank (or lowrank:R)')
        assert REGISTRY[record.beyond].size is not None and record.beyond != name
    assert record.auto_max_dim is None or record.auto_max_dim <= (record.max_dim or np.inf)


def test_the_registry_views_are_the_families_records():
    assert FAMILIES == ("meanfield", "fullrank", "lowrank", "flow", "scaled", "studentt")
    assert SPECS == ("auto", "meanfield", "fullrank", "lowrank[:R]", "flow[:K]", "scaled",
                     "studentt[:NU]")
    assert WARM_FROM == {"fullrank": "meanfield", "lowrank": "meanfield", "flow": "meanfield",
                         "scaled": "meanfield", "studentt": "meanfield"}
    assert GAUSSIAN == ("meanfield", "fullrank", "lowrank")


@pytest.mark.parametrize("spec, message", [
    ("flw", "unknown guide 'flw'; did you mean 'flow'?"),
    ("lowrank:0", "the rank R in 'lowrank:0' must be a positive integer"),
    ("flow:x", "the number of layers K in 'flow:x' must be a positive integer"),
    ("flow:", "the number of layers K in 'flow:' must be a positive integer"),
    # str.isdigit's other digits: int('²') raised ValueError (an internal error)
    ("lowrank:\u00b2", "the rank R in 'lowrank:\u00b2' must be a positive integer"),
    ("flow:\u0663", "the number of layers K in 'flow:\u0663' must be a positive integer"),
    ("fullrank:2", "'fullrank' takes no ':N'"), ("scaled:2", "'scaled' takes no ':N'"),
    # flow:100000 built its layers for 18 s, then 12 s per 10 draws, with nothing shown
    ("flow:101", "the number of layers K in 'flow:101' is at most 100"),
    # 'auto:2' was 'unknown guide', listing families without auto
    ("auto:2", "'auto' takes no ':N'"), ("autox", "did you mean 'auto'.*families: auto, "),
    ("lowrank:9", "rank 9 is larger than the model's 5 unconstrained dimensions"),
    # what a saved fit naming 'auto' reaches: it was read as lowrank, then refused for a
    # missing entry 'factor'
    ("auto", "'auto' is not a family")])
def test_family_refuses_bad_specs(spec, message):
    with pytest.raises(PplError, match="option guide: .*" + message.replace("?", r"\?")):
        family(spec, 5)


def test_lowrank_takes_any_rank_where_there_is_no_dimension():
    # D = 0: the family draws nothing (params alone, or a guide statement for every latent),
    # and the fit warns that --guide has no effect, as for any other family; lowrank:2 was
    # the one spec refused there ('rank 2 is larger than the model's 0 dimensions'). Its rank
    # is then its default, 1; above 0 the rank is at most D
    assert family("lowrank:1", 0).R == family("lowrank", 0).R == family("lowrank:2", 0).R == 1
    with pytest.raises(PplError, match="rank 2 is larger than the model's 1 unconstrained"):
        family("lowrank:2", 1)


def test_flow_takes_up_to_its_largest_number_of_layers():
    # flow:101 is refused, flow:100 is not (mutation3 audit)
    from ppl.guides import check_spec
    from ppl.guides.flow import MAX_LAYERS
    assert check_spec(f"flow:{MAX_LAYERS}") == ("flow", MAX_LAYERS) == ("flow", 100)


def test_fullrank_too_large_suggests_lowrank():
    with pytest.raises(PplError) as error:
        family("fullrank", 2001)
    assert "2001" in str(error.value) and "lowrank" in str(error.value)


@pytest.mark.parametrize("guide", [g for g in FAMILY_OBJECTS if hasattr(g, "draw_and_log_q")],
                         ids=str)
def test_draw_and_log_q_agree_with_draw_and_log_q_at_the_draws(guide, rng):
    D = dim_of(guide)
    theta = guide.init(D, 1.0) + 0.3 * rng.standard_normal(guide.init(D, 1.0).shape)
    eps = rng.standard_normal((6, guide.eps_dim(D)))
    zeta, log_q = guide.draw_and_log_q(theta, eps)
    np.testing.assert_array_equal(zeta, guide.draw(theta, eps))
    np.testing.assert_allclose(log_q, guide.log_q(theta, zeta), rtol=1e-9)


def test_lowrank_log_q_keeps_its_digits_when_sigma_is_far_below_the_factor(rng):
    # sigma 1e-8 of F's rows: the Woodbury form |x|^2 - y^T K^-1 y cancelled two terms of
    # order 1e16 and was off by hundreds of nats, draw by draw. The reference is exact: the
    # 2 x 2 covariance's inverse in rational arithmetic at the (float) draws; what is left is
    # the draws' own rounding, 1e-16 |zeta| over the conditional sd 1e-8: ~1e-8 nats.
    from fractions import Fraction
    guide = LowRank(2, 1)
    mu, sigma, f = np.array([0.3, -1.2]), np.array([2e-8, 3e-8]), np.array([2.0, 3.0])
    theta = np.concatenate([mu, np.log(sigma), f])
    zeta, log_q = guide.draw_and_log_q(theta, rng.standard_normal((20, 3)))
    s2 = [Fraction(float(s)) ** 2 for s in np.exp(np.log(sigma))]
    F = [Fraction(float(v)) for v in f]
    a, b, d = s2[0] + F[0] ** 2, F[0] * F[1], s2[1] + F[1] ** 2     # [[a, b], [b, d]]
    det = a * d - b * b
    for z, value in zip(zeta, log_q):
        r = [Fraction(float(z[i])) - Fraction(float(mu[i])) for i in range(2)]
        quad = (d * r[0] ** 2 - 2 * b * r[0] * r[1] + a * r[1] ** 2) / det
        exact = -0.5 * (float(quad) + np.log(float(det)) + 2 * np.log(2 * np.pi))
        assert abs(value - exact) < 1e-6


# ----- the scaled family (ppl/guides/scaled.py) ------------------------------------------------

SCALED = [Scaled(1), Scaled(2), Scaled(D3), Scaled(6)]


@pytest.mark.parametrize("guide", SCALED, ids=str)
def test_scaled_log_det_matches_autograd_jacobian(guide, rng):
    theta, eps = flow_theta(guide, rng), rng.standard_normal((4, guide.D))
    _, log_det = guide.forward(theta, eps)
    for i in range(4):
        J = jacobian(lambda e: guide.draw(theta, e[None])[0])(eps[i])
        assert abs(np.linalg.slogdet(J)[1] - log_det[i]) < 1e-10


@pytest.mark.parametrize("guide", SCALED, ids=str)
def test_scaled_inverse_undoes_forward(guide, rng):
    theta, eps = flow_theta(guide, rng), rng.standard_normal((6, guide.D))
    zeta, log_det = guide.forward(theta, eps)
    back, log_det_back = guide.inverse(theta, zeta)
    np.testing.assert_allclose(back, eps, atol=1e-10)
    np.testing.assert_allclose(log_det_back, log_det, atol=1e-10)


def test_scaled_entropy_is_minus_the_mean_log_q(rng):
    # the closed form (the Gaussian's, since E[s_i] = 0) against -mean(log q) over n draws;
    # tolerance 4 Monte Carlo standard errors, sd(log q) / sqrt(n)
    guide = Scaled(4)
    theta = flow_theta(guide, rng, 0.4)
    n = 100_000
    _, log_q = guide.draw_and_log_q(theta, rng.standard_normal((n, guide.D)))
    assert abs(guide.entropy(theta) + log_q.mean()) < 4 * log_q.std() / np.sqrt(n)


def test_scaled_push_affine_is_exact_for_triangular_maps(rng):
    guide = Scaled(D3)
    theta = flow_theta(guide, rng)
    m0 = rng.standard_normal(D3)
    for W in (np.tril(rng.standard_normal((D3, D3)), -1) + np.diag([0.5, 2.0, 1.5]),
              np.array([0.5, 2.0, 1.5])):
        pushed = guide.push_affine(theta, m0, W)
        Wm = np.diag(W) if W.ndim == 1 else W
        np.testing.assert_allclose(guide.sample(pushed, np.random.default_rng(1), 5),
                                   m0 + guide.sample(theta, np.random.default_rng(1), 5) @ Wm.T)
    with pytest.raises(ValueError):   # a dense map bends the layer's order
        guide.push_affine(theta, m0, rng.standard_normal((D3, D3)) + 3 * np.eye(D3))


def test_scaled_push_affine_of_a_dense_map_is_exact_while_gaussian(rng):
    guide = Scaled(D3)
    theta = guide.warm_start(MEAN_FIELD, rng.standard_normal(2 * D3))
    m0, W = rng.standard_normal(D3), rng.standard_normal((D3, D3)) + 3 * np.eye(D3)
    pushed = guide.push_affine(theta, m0, W)
    zeta = rng.standard_normal((5, D3))
    np.testing.assert_allclose(guide.log_q(pushed, zeta),
                               guide.log_q(theta, (zeta - m0) @ np.linalg.inv(W).T)
                               - np.linalg.slogdet(W)[1], rtol=1e-9)


@pytest.mark.parametrize("bent", ["C", "E"])
def test_scaled_push_affine_refuses_a_dense_map_once_either_block_bends(bent, rng):
    # a dense W is pushed by a Cholesky factor only while q is Gaussian (C = E = 0); with
    # either block non-zero the law is not in the family (ValueError). The refusal above had
    # both blocks non-zero, so 'C and E' for 'C or E' passed it (a mutation pass, 2026-12-04)
    guide = Scaled(D3)
    theta = guide.warm_start(MEAN_FIELD, rng.standard_normal(2 * D3))
    at = 2 * D3 + D3 * D3                                  # C, then E [D, D * D]
    theta[at + D3 if bent == "C" else at + D3 * D3 + 2 * D3 * D3 + D3] = 0.3  # C_10 or E_210
    assert np.count_nonzero(theta[at:]) == 1
    with pytest.raises(ValueError):
        guide.push_affine(theta, np.zeros(D3), rng.standard_normal((D3, D3)) + 3 * np.eye(D3))


def test_scaled_units_put_row_i_of_c_in_one_over_one_plus_its_centre(rng):
    # C_ij moves y_i by about |eps_i - m_i| eps_j (Scaled.units): row i of C, not column i,
    # is in 1 / (1 + |m_i|); every other parameter in 1s
    guide = Scaled(D3)
    theta = flow_theta(guide, rng)
    m, at = np.array([0.0, -3.0, 7.0]), D3 + D3 * D3      # m, then C [D, D]
    theta[at:at + D3] = m
    units = guide.units(theta)
    np.testing.assert_array_equal(units[at + D3:at + D3 + D3 * D3].reshape(D3, D3),
                                  np.repeat(1.0 / (1.0 + np.abs(m))[:, None], D3, axis=1))
    units[at + D3:at + D3 + D3 * D3] = 1.0
    np.testing.assert_array_equal(units, np.ones(theta.size))


def test_scaled_warm_start_centres_the_layer_at_the_models_zero(rng):
    # the layer's fixed point eps = m maps to zeta = 0 while the shift is zero
    guide = Scaled(D3)
    theta = guide.warm_start(MEAN_FIELD, rng.standard_normal(2 * D3))
    _, _, m, _, _ = guide.split(theta)
    np.testing.assert_allclose(guide.draw(theta, m[None]), 0.0, atol=1e-12)


def test_scaled_too_large_is_refused_with_the_flow_as_the_hint():
    with pytest.raises(PplError) as error:
        family("scaled", 21)
    assert "21" in str(error.value) and error.value.hint == "use --guide flow (or flow:K) instead"
    # above the flow's own limit (300) the hint goes on to the family that takes any D: it
    # named the flow, a second refusal (stochastic_volatility, D = 403)
    with pytest.raises(PplError) as error:
        family("scaled", 403)
    assert error.value.hint == "use --guide lowrank (or lowrank:R) instead"
    with pytest.raises(PplError) as error:
        family("flow", 403)
    assert error.value.hint == "use --guide lowrank (or lowrank:R) instead"


# ----- the fused draw and entropy (one autograd primitive each) against the traced formulas ---

def _traced_elbo_terms(theta, eps, weights):
    # the formulas MeanField traced op by op before they were fused
    D = theta.shape[0] // 2
    mu, log_sigma = theta[:D], theta[D:]
    zeta = mu + anp.exp(log_sigma) * eps
    entropy = anp.sum(theta[D:]) + 0.5 * D * (1.0 + np.log(2 * np.pi))
    return anp.sum(anp.sin(zeta) * weights) + entropy


def _fused_elbo_terms(theta, eps, weights):
    zeta, entropy = MEAN_FIELD.draw_and_entropy(theta, eps)
    return anp.sum(anp.sin(zeta) * weights) + entropy


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("S", [1, 5])
def test_fused_draw_and_entropy_match_traced_bit_for_bit(theta, S, rng):
    # The VJPs repeat autograd's own operations in its order, so value and gradient are equal,
    # not merely close: a fit is the fit of the traced path (ppl/guides/meanfield.py)
    eps = rng.standard_normal((S, theta.size // 2))
    weights = rng.standard_normal(eps.shape)
    for argnum in (0, 1):
        fused = value_and_grad(_fused_elbo_terms, argnum)(theta, eps, weights)
        traced = value_and_grad(_traced_elbo_terms, argnum)(theta, eps, weights)
        assert fused[0] == traced[0]
        np.testing.assert_array_equal(fused[1], traced[1])


@pytest.mark.parametrize("theta", THETAS)
def test_fused_draw_and_entropy_second_order_match_traced(theta, rng):
    # the VJPs are written in autograd.numpy: a Hessian through them is the traced one
    eps = rng.standard_normal((4, theta.size // 2))
    weights = rng.standard_normal(eps.shape)
    fused = hessian(_fused_elbo_terms)(theta, eps, weights)
    traced = hessian(_traced_elbo_terms)(theta, eps, weights)
    np.testing.assert_allclose(fused, traced, rtol=1e-12, atol=1e-12)


def test_scaled_draws_keep_their_spread_far_from_the_models_zero():
    # warm-started from a collapsed mean field (sigma 1e-100 at mean +-10) the layer's centre
    # m = -A^-1 a is 1e101; y = m + (eps - m) exp(s) rounded eps + t - m to -m, so every draw
    # was y = 0 whatever A, and L-BFGS-B grew A to 1e210 on a fixed-draw ELBO 560 nats above
    # log p(data) (logistic_regression --init-scale 1e-100 --iter 1). Once A has grown (here
    # to I, a C far below rounding), the draws must be a + eps
    guide, D = Scaled(2), 2
    theta = guide.warm_start(MEAN_FIELD, np.array([10.0, -10.0, np.log(1e-100), np.log(1e-100)]))
    theta[D:D + D * D] = 0.0          # A = I
    theta[2 * D + D * D + 2] = 1e-120   # C[1, 0]
    eps = np.random.default_rng(0).standard_normal((5, D))
    zeta = guide.draw(theta, eps)
    np.testing.assert_allclose(zeta - [10.0, -10.0], eps, rtol=1e-12)
    back, _ = guide.inverse(theta, zeta)
    np.testing.assert_allclose(back, eps, rtol=1e-12)


@pytest.mark.parametrize("richer", [Flow(D3, 2), FullRank(D3), Scaled(D3)], ids=str)
def test_a_warm_start_from_low_rank_is_its_whole_gaussian(richer, rng):
    # under auto beyond 200 dimensions the flow is warm-started from the low-rank fit; its
    # frame was diag(sigma) alone, so the flow started from N(mu, diag(sigma^2)), without F F^T
    source = LowRank(D3, 2)
    theta = source.init(D3, 1.0) + 0.5 * rng.standard_normal(source.init(D3, 1.0).shape)
    start = richer.warm_start(source, theta)
    zeta = rng.standard_normal((6, D3))
    np.testing.assert_allclose(richer.log_q(start, zeta), source.log_q(theta, zeta), rtol=1e-10)


def test_mean_field_pullback_at_one_size_then_at_twice_it(rng):
    # draw_with_pullback caches the entropy's gradient by theta's length 2 D: a cache read by
    # D instead gave D = 2 the [2] gradient of D = 1 (and D = 4 that of D = 2), so the sizes
    # run here in that order, each against autograd's VJP of draw and entropy
    from autograd import make_vjp
    for D in (1, 2, 4):
        theta = rng.normal(0.0, 0.5, 2 * D)
        eps, g = rng.standard_normal((3, D)), rng.standard_normal((3, D))
        _, _, pullback = MEAN_FIELD.draw_with_pullback(theta, eps)
        vjp, _ = make_vjp(lambda t: anp.sum(MEAN_FIELD.draw(t, eps) * g)
                          + MEAN_FIELD.entropy(t))(theta)
        np.testing.assert_array_equal(pullback(g), vjp(1.0))


@pytest.mark.parametrize("guide", [Flow(D3, 2), Scaled(D3)], ids=str)
def test_monte_carlo_moments_of_a_gaussian_start(guide):
    # warm-started from a mean field, the flow and the scaled family are its Gaussian
    # N(mu, sigma^2) exactly, and their mean and log_sd come from MOMENT_DRAWS fixed draws:
    # each mean within z = 4 standard errors sigma / sqrt(n), each log sd within 4 of the
    # log of a Gaussian sample sd, 1 / sqrt(2 (n - 1)); sigma = 0.1 keeps the first small
    # (6e-3) beside the means. Asked twice, the same numbers (seed 0, not the caller's)
    from ppl.guides.moments import MOMENT_DRAWS
    mu, sigma = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, 0.05])
    theta = guide.warm_start(MEAN_FIELD, np.concatenate([mu, np.log(sigma)]))
    n = MOMENT_DRAWS
    assert np.all(np.abs(guide.mean(theta) - mu) < 4 * sigma / np.sqrt(n))
    assert np.all(np.abs(guide.log_sd(theta) - np.log(sigma)) < 4 / np.sqrt(2 * (n - 1)))
    np.testing.assert_array_equal(guide.mean(theta), guide.mean(theta))
    np.testing.assert_array_equal(guide.log_sd(theta), guide.log_sd(theta))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_an_iaf_layer_scales_by_at_most_e_cubed(sign):
    # the clamp s = 3 tanh(u / 3) (iaf.S_MAX) bounds a layer's log scale by 3 per coordinate,
    # so a diverging step cannot overflow exp(s): at u = +-100, tanh rounds to +-1 and each of
    # the K layers adds exactly +-3 D to log|det|
    from ppl.guides.iaf import _iaf_chain, hidden_units
    D, K = 3, 2
    H = hidden_units(D)
    layer = np.zeros(D * H + H + 2 * D * H + 2 * D)
    layer[D * H + H + 2 * D * H:][:D] = sign * 100.0    # b2's scale half
    eps = np.random.default_rng(0).standard_normal((4, D))
    out = _iaf_chain(np.tile(layer, K), eps, D, H, K)
    np.testing.assert_array_equal(out[:, D], sign * 3.0 * D * K)
    np.testing.assert_allclose(out[:, :D], eps * np.exp(sign * 3.0 * K), rtol=1e-14)
