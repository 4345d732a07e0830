"""ELBO estimates and gradients against a Gaussian target, where everything has a closed form.

Target: log p(z) = -1/2 (z - m)^T P (z - m) (a full precision matrix P, unnormalized). For the
mean-field guide N(mu, diag(sigma^2)):
    ELBO = -1/2 [(mu - m)^T P (mu - m) + sum_i P_ii sigma_i^2] + sum log sigma + D/2 (1 + log 2pi)
    dELBO/dmu = -P (mu - m),    dELBO/dlog sigma_i = 1 - P_ii sigma_i^2.
"""
import autograd.numpy as anp
import numpy as np
import pytest

from ppl.infer.elbo import elbo, elbo_and_grad, elbo_value, make_objective
from ppl.guides import MEAN_FIELD
from ppl.guides.fullrank import FullRank

M = np.array([1.0, -2.0, 0.5])
P = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
THETA = np.array([0.3, -1.0, 1.5, np.log(0.8), np.log(1.3), np.log(0.4)])


def log_target(zeta):
    d = zeta - M
    return -0.5 * anp.sum((d @ P) * d, axis=1)


def exact_elbo(theta):
    mu, log_sigma = theta[:3], theta[3:]
    d = mu - M
    return (-0.5 * (d @ P @ d + np.sum(np.diag(P) * np.exp(2 * log_sigma)))
            + np.sum(log_sigma) + 1.5 * (1 + np.log(2 * np.pi)))


def exact_grad(theta):
    mu, log_sigma = theta[:3], theta[3:]
    return np.concatenate([-P @ (mu - M), 1 - np.diag(P) * np.exp(2 * log_sigma)])


def test_elbo_is_mean_log_joint_plus_entropy(rng):
    eps = rng.standard_normal((4, 3))
    zeta = MEAN_FIELD.draw(THETA, eps)
    expected = np.mean(log_target(zeta)) + MEAN_FIELD.entropy(THETA)
    np.testing.assert_allclose(elbo(log_target, THETA, eps), expected, rtol=1e-12)


@pytest.mark.parametrize("stl", [False, True])
def test_value_is_the_closed_form_entropy_estimate(stl, rng):
    eps = rng.standard_normal((4, 3))
    value, grad = elbo_and_grad(log_target, THETA, eps, stl=stl)
    np.testing.assert_allclose(value, elbo(log_target, THETA, eps), rtol=1e-12)
    assert grad.shape == (6,)


@pytest.mark.parametrize("stl", [False, True])
def test_elbo_estimate_is_unbiased(stl, rng):
    # mean of n single-draw estimates vs the closed form, within z = 4 standard errors
    n = 4000
    values = np.array([elbo_and_grad(log_target, THETA, rng.standard_normal((1, 3)), stl=stl)[0]
                       for _ in range(n)])
    se = values.std() / np.sqrt(n)
    assert abs(values.mean() - exact_elbo(THETA)) < 4 * se


@pytest.mark.parametrize("stl", [False, True])
def test_gradient_estimate_is_unbiased(stl, rng):
    # each coordinate's mean of n single-draw estimates within z = 4 standard errors of the
    # exact gradient (n = 4000: about 6e-5 false alarms per coordinate)
    n = 4000
    objective = make_objective(log_target, stl=stl)
    grads = np.array([objective(THETA, rng.standard_normal((1, 3)))[1] for _ in range(n)])
    se = grads.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(grads.mean(axis=0) - exact_grad(THETA)) < 4 * se)


def test_stl_gradient_is_zero_at_the_exact_posterior(rng):
    # With a diagonal P the posterior is in the family: q = p up to a constant, so the STL
    # gradient is exactly zero for every draw (zero variance), while the standard one is not.
    precision = np.array([4.0, 1.0, 0.25])

    def log_p(zeta):
        return -0.5 * anp.sum(precision * (zeta - M) ** 2, axis=1)

    theta = np.concatenate([M, -0.5 * np.log(precision)])
    objective = make_objective(log_p, stl=True)     # the fit's own call passes stl on
    for _ in range(20):
        eps = rng.standard_normal((3, 3))
        _, stl_grad = elbo_and_grad(log_p, theta, eps, stl=True)
        np.testing.assert_allclose(stl_grad, 0.0, atol=1e-12)
        np.testing.assert_allclose(objective(theta, eps)[1], 0.0, atol=1e-12)
    _, plain = elbo_and_grad(log_p, theta, rng.standard_normal((3, 3)))
    assert np.max(np.abs(plain)) > 1e-3



def test_full_rank_stl_gradient_is_zero_at_the_exact_posterior(rng):
    # q = N(M, P^{-1}) is the target itself: every draw's STL gradient is zero. It runs through
    # log_q's triangular solve with zeta traced, so solve_lower's gradient in its right-hand
    # side (linalg.py) counts here; with L^{-1} for L^{-T} there it was up to 1.0 (mutation pass,
    # session 40)
    L = np.linalg.cholesky(np.linalg.inv(P))
    theta = np.concatenate([M, (np.tril(L, -1) + np.diag(np.log(np.diag(L)))).ravel()])
    for _ in range(5):
        _, stl_grad = elbo_and_grad(log_target, theta, rng.standard_normal((3, 3)),
                                    guide=FullRank(3), stl=True)
        np.testing.assert_allclose(stl_grad, 0.0, atol=1e-12)


def test_failed_linear_algebra_is_a_nan_estimate_not_an_exception():
    # a LinAlgError inside the estimate (here the log joint's own Cholesky factor of a matrix
    # that is not positive definite) is a NaN value and gradient, which the fit discards as a
    # non-finite step and the step size search scores as no better than any (NaN compares false:
    # a -inf there would rank it, and a zero gradient would be a step)
    def broken(zeta):
        np.linalg.cholesky(-np.eye(2))
        return log_target(zeta)
    eps = np.zeros((2, 3))
    assert np.isnan(elbo_value(broken, THETA, eps))
    value, gradient = elbo_and_grad(broken, THETA, eps)
    assert np.isnan(value) and gradient.shape == THETA.shape and np.all(np.isnan(gradient))

# ----- the mean-field ELBO with only the log joint traced (elbo._chained) -------------------

_CHAINED_MODELS = {
    "eight_schools": """data N: int
data y: real[N]
data s: real[N]
sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(5)
sample eta: real[N] ~ Normal(0, 1)
observe y ~ Normal(mu + tau * eta, s)
""",
    "kernel_and_bounded": """data N: int
data y: real[N]
data s: real[N]
data g: int[N]
sample a: real[3] ~ Normal(0, 1)
sample w: real<lower=0, upper=2> ~ Uniform(0, 2)
sample sigma ~ Exponential(1)
observe y ~ Normal(a[g] + w * s, sigma)
""",
    # a param (one row of zeta), a matrix and a simplex (their free shapes), a latent read
    # three times
    "param_matrix_simplex": """data N: int
data y: real[N]
data s: real[N]
param c: real[2] ~ Normal(0, 3)
sample B: real[2, 2] ~ Normal(0, 1)
sample p: real[3] ~ Dirichlet([1.0, 2.0, 3.0])
observe y ~ Normal(c[0] + B[0, 1] * s + p[2] * B[1, 0], exp(c[1] + B[1, 1] * B[1, 1]))
""",
}


def _compiled(name, fuse=True):
    from ppl.compiler import compile_model
    from ppl.data import load_data
    from ppl.frontend.check import check
    from ppl.frontend.parse import parse
    rng = np.random.default_rng(5)
    data = {"N": 8, "y": rng.normal(0, 3, 8), "s": rng.uniform(1, 3, 8),
            "g": rng.integers(0, 3, 8)}
    if "data g" not in _CHAINED_MODELS[name]:
        del data["g"]
    program = parse(_CHAINED_MODELS[name], "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values, fuse=fuse)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("name", _CHAINED_MODELS)
def test_chained_elbo_is_the_traced_elbo_bit_for_bit(name, fuse):
    # elbo_and_grad traces only the log joint and applies mean field's VJPs by hand, in the
    # traced order: value and gradient equal, not merely close, to value_and_grad(elbo)
    from autograd import value_and_grad
    compiled = _compiled(name, fuse)
    rng = np.random.default_rng(1)
    for S in (1, 7):
        theta = np.concatenate([rng.normal(0, 1, compiled.dim),
                                rng.normal(-0.5, 0.3, compiled.dim)])
        eps = rng.standard_normal((S, compiled.dim))
        value, gradient = elbo_and_grad(compiled.log_joint, theta, eps)
        want_value, want_gradient = value_and_grad(elbo, 1)(compiled.log_joint, theta, eps)
        assert value == float(want_value)
        np.testing.assert_array_equal(gradient, want_gradient)


def test_chained_elbo_of_a_log_joint_free_of_zeta():
    # a log joint that ignores zeta: the gradient is the entropy's alone, no warning
    import warnings
    theta = THETA.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, gradient = elbo_and_grad(lambda z: np.full(z.shape[0], 2.0), theta,
                                        np.ones((3, 3)))
    assert value == pytest.approx(2.0 + MEAN_FIELD.entropy(theta))
    np.testing.assert_array_equal(gradient, np.r_[np.zeros(3), np.ones(3)])


def test_chained_elbo_when_the_log_joint_reads_zeta_itself_too():
    # zeta read whole besides the latents' blocks (a wrapper such as precondition.Frame's
    # reads it only whole): the whole gradient is added to the blocks' (up to the order of
    # that one addition, rounding)
    from autograd import value_and_grad
    compiled = _compiled("param_matrix_simplex")
    rng = np.random.default_rng(2)
    theta = np.concatenate([rng.normal(0, 1, compiled.dim), np.full(compiled.dim, -1.0)])
    eps = rng.standard_normal((4, compiled.dim))
    for log_joint in (lambda z: compiled.log_joint(z * 1.0),
                      lambda z: compiled.log_joint(z) - anp.sum(z * z, axis=1)):
        value, gradient = elbo_and_grad(log_joint, theta, eps)
        want_value, want_gradient = value_and_grad(elbo, 1)(log_joint, theta, eps)
        assert value == pytest.approx(float(want_value), rel=1e-15)
        np.testing.assert_allclose(gradient, want_gradient, rtol=1e-14, atol=1e-14)


# ----- the full-rank and low-rank ELBO with only the log joint traced (draw_with_pullback) ----

_DENSE_SPECS = ("fullrank", "lowrank", "lowrank:1", "lowrank:3")
# every spec at every D, except a rank above D (family() refuses it)
_DENSE_CASES = [(spec, D) for spec in _DENSE_SPECS for D in (1, 3, 8, 25)
                if not (spec == "lowrank:3" and D < 3)]


def _dense_guide_and_theta(spec, D, rng):
    # theta away from init in every entry (L's upper triangle is unused, so its entries are
    # free): a gradient with every path of the draw and the entropy in play
    from ppl.guides import family
    guide = family(spec, D)
    theta = guide.init(D, 0.5)
    return guide, theta + rng.normal(0.0, 0.3, theta.shape)


def _bumpy(z):
    # not quadratic, so g [S, D] differs draw by draw and entry by entry
    return -0.5 * anp.sum(z * z, axis=1) + anp.sum(anp.sin(3.0 * z), axis=1)


@pytest.mark.parametrize(("spec", "D"), _DENSE_CASES)
def test_dense_pullback_is_the_traced_vjp_bit_for_bit(spec, D):
    # zeta, the entropy and pullback(g) against autograd's trace of draw and entropy: the
    # VJP of theta -> sum(draw(theta, eps) * g) + entropy(theta) is the traced ELBO's guide half
    from autograd import make_vjp
    rng = np.random.default_rng(D)
    guide, theta = _dense_guide_and_theta(spec, D, rng)
    for S in (1, 4, 9):
        eps = rng.standard_normal((S, guide.eps_dim(D)))
        zeta, entropy, pullback = guide.draw_with_pullback(theta, eps)
        np.testing.assert_array_equal(zeta, guide.draw(theta, eps))
        assert entropy == guide.entropy(theta)
        noise = rng.standard_normal((S, D))
        # a zero column too: mu's gradient there is a zero, whose sign is compared as well
        # (as are those of full rank's unused upper triangle)
        for g in (noise, noise * (np.arange(D) > 0)):
            vjp, _ = make_vjp(lambda t, g=g: anp.sum(guide.draw(t, eps) * g)
                              + guide.entropy(t))(theta)
            want = vjp(1.0)
            np.testing.assert_array_equal(pullback(g), want)
            np.testing.assert_array_equal(np.signbit(pullback(g)), np.signbit(want))


@pytest.mark.parametrize("nu", [3, 10])
def test_student_t_elbo_is_the_traced_elbo_of_its_t_draws(nu):
    # StudentT keeps full rank's theta but not its draw_with_pullback, whose draws are
    # Gaussian: the ELBO and its gradient are autograd's trace of the t's own draw and
    # entropy (with full rank's pullback inherited, no test had run a t's ELBO)
    from autograd import value_and_grad
    from ppl.guides import StudentT
    rng = np.random.default_rng(nu)
    guide = StudentT(3, nu)
    theta = guide.init(3, 0.5)
    theta = theta + rng.normal(0.0, 0.3, theta.shape)
    eps = rng.standard_normal((5, guide.eps_dim(3)))
    value, gradient = elbo_and_grad(_bumpy, theta, eps, guide)
    want_value, want_gradient = value_and_grad(elbo, 1)(_bumpy, theta, eps, guide)
    assert value == float(want_value)
    np.testing.assert_array_equal(gradient, want_gradient)
    assert value == pytest.approx(np.mean(_bumpy(guide.draw(theta, eps))) + guide.entropy(theta),
                                  rel=1e-14)


@pytest.mark.parametrize(("spec", "D"), _DENSE_CASES)
def test_dense_chained_elbo_is_the_traced_elbo_bit_for_bit(spec, D):
    from autograd import value_and_grad
    rng = np.random.default_rng(100 + D)
    guide, theta = _dense_guide_and_theta(spec, D, rng)
    for S in (1, 5, 12):
        eps = rng.standard_normal((S, guide.eps_dim(D)))
        value, gradient = elbo_and_grad(_bumpy, theta, eps, guide)
        want_value, want_gradient = value_and_grad(elbo, 1)(_bumpy, theta, eps, guide)
        assert value == float(want_value)
        np.testing.assert_array_equal(gradient, want_gradient)


@pytest.mark.parametrize("spec", ["fullrank", "lowrank"])
@pytest.mark.parametrize("name", ["eight_schools", "param_matrix_simplex"])
def test_dense_chained_elbo_of_compiled_models_bit_for_bit(spec, name):
    from autograd import value_and_grad
    compiled = _compiled(name)
    rng = np.random.default_rng(3)
    guide, theta = _dense_guide_and_theta(spec, compiled.dim, rng)
    for S in (1, 7):
        eps = rng.standard_normal((S, guide.eps_dim(compiled.dim)))
        value, gradient = elbo_and_grad(compiled.log_joint, theta, eps, guide)
        want_value, want_gradient = value_and_grad(elbo, 1)(compiled.log_joint, theta, eps,
                                                            guide)
        assert value == float(want_value)
        np.testing.assert_array_equal(gradient, want_gradient)


@pytest.mark.parametrize("spec", ["fullrank", "lowrank:2"])
def test_dense_chained_elbo_of_an_overflowed_theta_is_the_traced_one(spec):
    # a bad trial step (L's diagonal or F overflowing): the same non-finite value and
    # gradient entries (NaN where the traced pass gives NaN) as the traced path
    from autograd import value_and_grad
    from ppl.guides import family
    D = 4
    guide = family(spec, D)
    theta = guide.init(D, 1.0)
    if spec == "fullrank":
        theta[D:] = 800.0        # exp(800) on L's diagonal
    else:
        theta[2 * D:] = 1e200    # F F^T, and so K, overflow
    eps = np.random.default_rng(0).standard_normal((3, guide.eps_dim(D)))
    with np.errstate(all="ignore"):
        value, gradient = elbo_and_grad(_bumpy, theta, eps, guide)
        want_value, want_gradient = value_and_grad(elbo, 1)(_bumpy, theta, eps, guide)
    assert not np.isfinite(value)
    np.testing.assert_array_equal(value, float(want_value))
    np.testing.assert_array_equal(gradient, want_gradient)


def test_trace_blocks_visits_nodes_in_autograds_order():
    # blocks._toposort is autograd's util.toposort as a list: the same nodes in the same
    # order (the order gradients are added in) on a graph with shared and repeated parents
    from autograd.core import VJPNode
    from autograd.tracer import new_box, trace_stack
    from autograd.util import toposort

    from ppl.blocks import _toposort
    with trace_stack.new_trace() as trace:
        x = new_box(np.arange(1.0, 4.0), trace, VJPNode.new_root())
        a = anp.sin(x)
        b = a * x + anp.exp(a)
        out = anp.sum(b * a + x * b)
    assert _toposort(out._node) == list(toposort(out._node))
    assert len(_toposort(out._node)) >= 8


def test_trace_blocks_gradient_is_make_vjps_when_a_node_gets_an_index_gradient():
    # u and t each get the gradient of u + t (the very same array: add's VJP passes it on to
    # both) and one of an index (autograd's SparseObject, which add_outgrads adds in place into
    # a sum it may change): blocks._add must not mark the shared array changeable, or t's
    # gradient is changed under it (in this order of the terms, u's index comes first)
    from autograd import make_vjp

    from ppl.blocks import cutter, trace_blocks
    rng = np.random.default_rng(6)
    zeta, w, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 2)), rng.standard_normal(3)
    cut = cutter(1, 2, (2,))

    def fun(z):
        u, t = cut(z) * 2.0, anp.sin(cut(z))
        return u[0, 1] * 3.0 + t[1, 0] + anp.sum((u + t) * w, axis=1)
    value, vjp = trace_blocks(fun, zeta)
    want_vjp, want_value = make_vjp(fun)(zeta)
    np.testing.assert_array_equal(value, want_value)
    np.testing.assert_array_equal(vjp(g), want_vjp(g))


def test_trace_blocks_of_a_function_free_of_zeta_keeps_an_outer_trace():
    # fun(zeta) a box of another (outer) trace, not of trace_blocks' own: its value is handed
    # back boxed, as make_vjp's is, so the outer gradient goes through; zeta's gradient is zeros
    from autograd import grad

    from ppl.blocks import trace_blocks
    zeta = np.ones((2, 3))

    def outer(t):
        value, vjp = trace_blocks(lambda z: t * np.arange(1.0, 3.0), zeta)
        np.testing.assert_array_equal(vjp(np.ones(2)), np.zeros((2, 3)))
        return anp.sum(value)
    assert grad(outer)(1.5) == 3.0


# ----- the flow's ELBO with only the log joint traced (Flow.draw_with_pullback, IAF) -------------

def _flow_and_theta(D, K, rng, kind="iaf"):
    # every parameter away from the identity flow's (mu, A and each layer's W1, b1, W2, b2),
    # so every layer's shift and scale depend on its input and every VJP is in play
    from ppl.guides import Flow
    flow = Flow(D, K, kind)
    theta = flow.init(D, 1.0)
    return flow, theta + rng.normal(0.0, 0.3, theta.shape)


def _read_once(z):
    # zeta read by one operation (as a compiled model's latents' blocks, or precondition's
    # whole read, each entry is): its gradient is one contribution per entry
    y = 3.0 * z
    return anp.sum(anp.sin(y) - y * y / 18.0, axis=1)


def _flow_elbo_pairs(D, K, log_joint):
    """(chained, traced) value-and-gradient pairs at S = 1, 5, 60, random theta and eps."""
    from autograd import value_and_grad

    import ppl.infer.elbo as elbo_module
    rng = np.random.default_rng(10 * D + K)
    flow, theta = _flow_and_theta(D, K, rng)
    calls, chained = [], elbo_module._chained
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(elbo_module, "_chained", lambda *a: calls.append(1) or chained(*a))
        for S in (1, 5, 60):
            eps = rng.standard_normal((S, D))
            yield (elbo_and_grad(log_joint, theta, eps, flow),
                   value_and_grad(elbo, 1)(log_joint, theta, eps, flow))
    assert len(calls) == 3          # the guide was not traced


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("D", [1, 2, 5, 10])
def test_flow_chained_elbo_is_the_traced_elbo_bit_for_bit(D, K):
    # the path ('sticking the landing') gradient without autograd tracing the guide: value
    # and gradient equal, not merely close, to value_and_grad(elbo) through the IAF
    # primitive and _path_entropy (three IAF passes there, one here)
    for (value, gradient), (want_value, want_gradient) in _flow_elbo_pairs(D, K, _read_once):
        assert value == float(want_value)
        np.testing.assert_array_equal(gradient, want_gradient)


@pytest.mark.parametrize("D", [1, 2, 5, 10])
def test_flow_chained_elbo_of_a_log_joint_reading_zeta_thrice(D):
    # _bumpy reads zeta three times: autograd adds the path cotangent u to zeta's gradient
    # first, ((u + g1) + g2) + g3, the pullback last, ((g1 + g2) + g3) + u: a few ulps per
    # entry, carried linearly to theta (measured: at most 2 ulps of the largest entry over
    # D = 1..10, S = 1..60). 1e-13 of the largest entry bounds that with room; a dropped or
    # wrong term would be of the order of the entry itself
    for (value, gradient), (want_value, want_gradient) in _flow_elbo_pairs(D, 2, _bumpy):
        assert value == float(want_value)
        np.testing.assert_allclose(gradient, want_gradient, rtol=0,
                                   atol=1e-13 * np.max(np.abs(want_gradient)))


@pytest.mark.parametrize("name", ["eight_schools", "param_matrix_simplex"])
def test_flow_chained_elbo_of_compiled_models_bit_for_bit(name):
    from autograd import value_and_grad
    compiled = _compiled(name)
    rng = np.random.default_rng(4)
    flow, theta = _flow_and_theta(compiled.dim, 2, rng)
    for S in (1, 7):
        eps = rng.standard_normal((S, compiled.dim))
        value, gradient = elbo_and_grad(compiled.log_joint, theta, eps, flow)
        want_value, want_gradient = value_and_grad(elbo, 1)(compiled.log_joint, theta, eps,
                                                            flow)
        assert value == float(want_value)
        np.testing.assert_array_equal(gradient, want_gradient)


def test_flow_without_the_path_gradient_or_iaf_keeps_the_traced_elbo():
    # realnvp layers and the plain gradient (entropy's gradient through log|det|) have no
    # pullback: elbo_and_grad traces the guide as before
    from ppl.guides import Flow

    class PlainFlow(Flow):
        path_gradient = False
    assert Flow(3, 2, "realnvp").draw_with_pullback is None
    assert PlainFlow(3, 2).draw_with_pullback is None


def test_flow_chained_elbo_of_a_singular_frame_is_nan_as_traced():
    # A = 0: the path cotangent's solve fails (LinAlgError) in both paths, a NaN step
    rng = np.random.default_rng(6)
    flow, theta = _flow_and_theta(3, 2, rng)
    theta[3:12] = 0.0
    value, gradient = elbo_and_grad(_bumpy, theta, rng.standard_normal((4, 3)), flow)
    assert np.isnan(value) and np.all(np.isnan(gradient))


# ----- the scaled family's ELBO with only the log joint traced (Scaled.draw_with_pullback) -----

@pytest.mark.parametrize("D", [1, 2, 5, 10])
def test_scaled_chained_elbo_is_the_traced_elbo(D):
    # the hand-written pullback of the scaled layer (its scale, shift, centre and affine part,
    # every parameter away from the identity layer) against autograd through Scaled.draw and
    # entropy: equal to rounding (the sums are in another order), the masked entries zero.
    # S = 300 at D = 10 passes the products' chunks of 131 rows (scaled.SINGLE_THREADED): a
    # sum over the chunks that skipped one passed at 60 draws (a mutation pass, 2026-12-04)
    from autograd import value_and_grad

    from ppl.guides import Scaled
    rng = np.random.default_rng(D)
    guide = Scaled(D)
    theta = guide.init(D, 1.0) + rng.normal(0.0, 0.3, guide.init(D, 1.0).shape)
    for S in (1, 5, 60, 300):
        eps = rng.standard_normal((S, D))
        value, gradient = elbo_and_grad(_read_once, theta, eps, guide)
        want_value, want_gradient = value_and_grad(elbo, 1)(_read_once, theta, eps, guide)
        assert value == pytest.approx(float(want_value), rel=1e-13, abs=1e-13)
        np.testing.assert_allclose(gradient, want_gradient, rtol=1e-11, atol=1e-12)
        assert np.all(gradient[want_gradient == 0] == 0)


def test_scaled_pullback_with_the_draws_prepared_pairs_is_the_same_bit_for_bit():
    # a fit on fixed draws computes a round's pairwise products once (Scaled.prepare) and
    # hands them to every evaluation: value and gradient are those computed without them, and
    # they are the products used (other rows give another value)
    from ppl.guides import Scaled
    rng, guide = np.random.default_rng(4), Scaled(4)
    theta = guide.init(4, 1.0) + rng.normal(0.0, 0.3, guide.init(4, 1.0).shape)
    eps = rng.standard_normal((20, 4))
    value, gradient = elbo_and_grad(_read_once, theta, eps, guide)
    prepared = guide.prepare(eps)
    for _ in range(2):
        got_value, got_gradient = elbo_and_grad(_read_once, theta, eps, guide,
                                                prepared=prepared)
        assert got_value == value
        np.testing.assert_array_equal(got_gradient, gradient)
    assert elbo_and_grad(_read_once, theta, eps, guide, prepared=2 * prepared)[0] != value


# ----- a family fitted in a warm start's coordinates (precondition.Frame.chain) ----------------

@pytest.mark.parametrize("spec", ["fullrank", "lowrank:2", "flow"])
@pytest.mark.parametrize("dense", [False, True])
def test_framed_chained_elbo_is_the_traced_frames_bit_for_bit(spec, dense):
    # zeta = m0 + W u mapped and pulled back in plain numpy, the model's own log joint traced
    # alone, against autograd through Frame.log_joint (its product traced, the latents'
    # blocks sliced from it): the very operations, so equal, not merely close
    from autograd import value_and_grad

    import ppl.infer.elbo as elbo_module
    from ppl.guides import family
    from ppl.infer.precondition import Frame
    compiled = _compiled("eight_schools")
    D = compiled.dim
    rng = np.random.default_rng(7)
    W = np.exp(rng.normal(0.0, 0.3, D))
    if dense:   # a lower-triangular factor, as full rank's L is
        W = np.diag(W) + np.tril(rng.normal(0.0, 0.2, (D, D)), -1)
    frame = Frame(compiled, rng.normal(0.0, 1.0, D), W)
    guide = family(spec, D)
    theta = guide.init(D, 1.0)
    theta = theta + rng.normal(0.0, 0.3, theta.shape)
    calls, chained = [], elbo_module._chained
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(elbo_module, "_chained", lambda *a: calls.append(a[0]) or chained(*a))
        for S in (1, 7):
            eps = rng.standard_normal((S, guide.eps_dim(D)))
            value, gradient = elbo_and_grad(frame.log_joint, theta, eps, guide, frame=frame)
            want_value, want_gradient = value_and_grad(elbo, 1)(frame.log_joint, theta, eps,
                                                                guide)
            assert value == float(want_value)
            np.testing.assert_array_equal(gradient, want_gradient)
    assert calls == [compiled.log_joint] * 2     # the model's own log joint, not the frame's
