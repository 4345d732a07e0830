"""Optimizers (pure init/update on immutable states) and the eta search."""
import autograd.numpy as anp
import numpy as np
import pytest

from ppl.compiler import compile_model
from ppl.data import load_data
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.infer.elbo import make_objective
from ppl.infer.optim import (OPTIMIZERS, SCORE_CHUNK, SCORE_ELEMENTS, STAN_ETAS, _score,
                             draw_elements, optimizer, score_chunk, search_lr)

H = np.array([4.0, 1.0, 0.25])       # curvatures of the quadratic
C = np.array([1.0, -2.0, 3.0])       # its minimum

# name, step size, steps: each converges on the quadratic below well within the steps
CASES = [("adam", 0.05, 3000), ("sgd", 0.05, 3000), ("stan", 1.0, 3000)]


def quadratic_grad(x):
    return H * (x - C)


@pytest.mark.parametrize("name, lr, steps", CASES)
def test_minimizes_a_quadratic(name, lr, steps):
    opt = optimizer(name)
    state = opt.init(np.zeros(3), lr)
    for _ in range(steps):
        state = opt.update(state, quadratic_grad(state.params))
    np.testing.assert_allclose(state.params, C, atol=1e-3)
    assert state.step == steps and state.lr == lr


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_leaves_the_old_state_untouched(name):
    opt = optimizer(name)
    state = opt.init(np.zeros(3), 0.1)
    before = [np.copy(x) if isinstance(x, np.ndarray) else x for x in state]
    new = opt.update(state, quadratic_grad(state.params))
    for old, kept in zip(before, state):
        np.testing.assert_array_equal(old, kept)
    assert not np.array_equal(new.params, state.params)


def test_adam_first_step_is_lr_times_sign():
    # bias correction makes m_hat / sqrt(v_hat) = g / |g| on the first step (Kingma and Ba 2015)
    opt = optimizer("adam")
    grad = np.array([3.0, -0.01, 200.0])
    state = opt.update(opt.init(np.zeros(3), 0.1), grad)
    np.testing.assert_allclose(state.params, -0.1 * np.sign(grad), rtol=1e-6)


@pytest.mark.parametrize("name, small_scale", [("adam", 1.0), ("stan", 2.0 ** 100)])
def test_steps_on_gradients_too_large_to_square(name, small_scale):
    # A finite gradient above ~1.3e154 squared to inf in Adam's second moment (Stan's s_k),
    # and the step m / sqrt(v) (rho g) was 0 from then on: a frozen coordinate (the first link
    # of the collapsed Poisson(exp(a + b * year)) fit; under --optimizer stan the same model's
    # seeds 1 and 2 ended "diverged" and 267 posterior sds off). Adam's step does not depend on
    # the gradients' scale but for eps, Stan's eta g / (tau + sqrt(s)) not but for tau = 1: so
    # gradients times 2^600 must take the steps of gradients times small_scale, up to
    # eps / sqrt(v_hat) ~ 1e-8 (tau / sqrt(s) ~ 1e-30) relative.
    opt = optimizer(name)
    rng = np.random.default_rng(0)
    small = opt.init(np.zeros(3), 0.1)
    large = opt.init(np.zeros(3), 0.1)
    for _ in range(20):
        grad = rng.normal(size=3) * np.array([1.0, 10.0, 0.1])
        small = opt.update(small, grad * small_scale)
        large = opt.update(large, grad * 2.0 ** 600)
    np.testing.assert_allclose(large.params, small.params, rtol=1e-6)
    assert np.all(np.abs(large.params) > 1e-3)


def test_adam_below_the_rescaling_is_plain_adam():
    # the scaled second moment changes no bit where no gradient reaches 2^500 (golden fits)
    opt = optimizer("adam")
    state = opt.init(np.array([0.3, -1.0]), 0.05)
    m = v = np.zeros(2)
    params = state.params
    for step, grad in enumerate([np.array([2.0 ** 499, -3e-7]), np.array([-7.5, 1e140])], 1):
        state = opt.update(state, grad)
        m = 0.9 * m + (1 - 0.9) * grad
        v = 0.999 * v + (1 - 0.999) * grad * grad
        params = params - 0.05 * (m / (1 - 0.9 ** step)) / (
            np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        np.testing.assert_array_equal(state.params, params)
        np.testing.assert_array_equal(state.v, v)


def test_stan_below_the_rescaling_is_plain_stan():
    # the scaled s_k changes no bit where no gradient reaches 2^500 (fits under --optimizer stan)
    opt = optimizer("stan")
    state = opt.init(np.array([0.3, -1.0]), 0.05)
    s, params = None, state.params
    for step, grad in enumerate([np.array([2.0 ** 499, -3e-7]), np.array([-7.5, 1e140])], 1):
        state = opt.update(state, grad)
        s = grad * grad if s is None else 0.1 * (grad * grad) + 0.9 * s
        params = params - 0.05 * step ** (-0.5 + 1e-16) / (1.0 + np.sqrt(s)) * grad
        np.testing.assert_array_equal(state.params, params)
        np.testing.assert_array_equal(state.s, s)


def test_stan_first_step():
    # rho_1 = eta / (1 + sqrt(g^2)): the step is eta * g / (1 + |g|) (Kucukelbir et al. 2017)
    opt = optimizer("stan")
    grad = np.array([3.0, -0.5])
    state = opt.update(opt.init(np.zeros(2), 2.0), grad)
    np.testing.assert_allclose(state.params, -2.0 * grad / (1 + np.abs(grad)))


def _gaussian_loss(mean, sd):
    """-ELBO of a mean-field guide against N(mean, diag(sd^2)): minimum at mu = mean."""
    def log_p(zeta):
        return -0.5 * anp.sum(((zeta - mean) / sd) ** 2, axis=1)
    objective = make_objective(log_p)

    def loss(params, eps):
        value, grad = objective(params, eps)
        return -value, -grad
    return loss


@pytest.mark.parametrize("name, etas", [("adam", tuple(e / 10 for e in STAN_ETAS)),
                                        ("stan", STAN_ETAS)])
def test_search_picks_a_sane_step_size(name, etas, rng):
    # a target 5 units away with sd 1: after 50 steps the largest step sizes overshoot or
    # overflow and the smallest have barely moved; the search must land in between
    loss = _gaussian_loss(np.full(2, 5.0), np.ones(2))
    params = np.concatenate([np.zeros(2), np.full(2, np.log(0.1))])
    result = search_lr(loss, params, optimizer(name), lambda n: rng.standard_normal((n, 2)), 5,
                       etas)
    assert result.found
    assert etas[0] > result.lr > etas[-1]
    assert np.isfinite(result.losses[result.lr])
    assert result.losses[result.lr] == min(result.losses.values())


@pytest.mark.parametrize("target, sd, tried_largest", [(1.0, 0.1, False), (5000.0, 1.0, True)])
def test_search_tries_the_largest_eta_only_when_the_next_wins(target, sd, tried_largest):
    # largest_last: start at the grid's second eta (1.0 for Adam); the largest (10.0) is tried
    # only when the second wins: a target 10 sds away, where 0.1 beats 1.0, not; one 5000 units
    # away, where 1.0 beats 0.1, yes. Here the choice is the full search's (each search with a
    # Generator of seed 0; the draws differ once a trial is skipped, so in general it agrees
    # only when the scores are clear-cut)
    loss = _gaussian_loss(np.full(2, target), np.full(2, sd))
    params = np.concatenate([np.zeros(2), np.full(2, np.log(0.1))])
    etas = tuple(e / 10 for e in STAN_ETAS)
    results = [search_lr(loss, params, optimizer("adam"),
                         lambda n, g=np.random.default_rng(0): g.standard_normal((n, 2)), 5, etas,
                         largest_last=last) for last in (False, True)]
    assert (etas[0] in results[1].losses) == tried_largest
    assert results[1].lr == results[0].lr and results[1].found


def test_search_falls_back_to_the_smallest_eta_when_all_fail(rng):
    def loss(params, eps):           # finite only at the start: every step lands on NaN
        value = 0.0 if not np.any(params) else np.nan
        return value, np.ones_like(params)
    result = search_lr(loss, np.zeros(4), optimizer("adam"),
                       lambda n: rng.standard_normal((n, 2)), 1)
    assert not result.found
    assert result.lr == min(STAN_ETAS)


def test_search_scores_with_the_value_alone_in_chunks(rng):
    # the score function, not the objective, sees the 100 score draws, SCORE_CHUNK at a time
    loss = _gaussian_loss(np.full(2, 5.0), np.ones(2))
    seen = {"objective": set(), "score": []}

    def objective(params, eps):
        seen["objective"].add(eps.shape[0])
        return loss(params, eps)

    def score(params, eps):
        seen["score"].append(eps.shape[0])
        return loss(params, eps)[0]
    params = np.concatenate([np.zeros(2), np.full(2, np.log(0.1))])
    search_lr(objective, params, optimizer("adam"), lambda n: rng.standard_normal((n, 2)), 5,
              score=score)
    assert seen["objective"] == {5}
    assert set(seen["score"]) == {SCORE_CHUNK} and sum(seen["score"]) % 100 == 0


def test_chunked_score_is_the_mean_over_all_draws(rng):
    # the chunk means, weighted by chunk size, are the mean over all draws (23 draws: a short
    # last chunk), up to rounding
    loss = _gaussian_loss(np.full(3, 1.0), np.full(3, 2.0))
    params, eps = rng.normal(size=6), rng.standard_normal((23, 3))
    assert _score(lambda p, e: loss(p, e)[0], params, eps) == pytest.approx(
        loss(params, eps)[0], rel=1e-14)


def test_search_scores_in_the_chunk_it_is_given(rng):
    # chunk=100: each score of the 100 draws is one call (a small model's scores)
    loss = _gaussian_loss(np.full(2, 5.0), np.ones(2))
    seen = []

    def score(params, eps):
        seen.append(eps.shape[0])
        return loss(params, eps)[0]
    params = np.concatenate([np.zeros(2), np.full(2, np.log(0.1))])
    search_lr(loss, params, optimizer("adam"), lambda n: rng.standard_normal((n, 2)), 5,
              score=score, chunk=100)
    assert seen and set(seen) == {100}


def _model(text, data):
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    return compile_model(check(program, dims), values).model


@pytest.mark.parametrize("N, elements", [(8, 8), (3000, 3000), (10 ** 5, 10 ** 5)])
def test_score_chunk_follows_the_largest_per_draw_value(N, elements):
    # mu [N] is a latent-dependent expression, the likelihood's density [N] too; the [3] latent
    # and the data [N, 3] are smaller or not per draw
    text = ("data N: int\ndata X: real[N, 3]\ndata y: real[N]\nsample b: real[3] ~ Normal(0, 1)"
            "\nlet mu = X @ b\nobserve y ~ Normal(mu, 1)\n")
    model = _model(text, {"N": N, "X": np.zeros((N, 3)), "y": np.zeros(N)})
    assert draw_elements(model) == elements
    assert score_chunk(model) == max(SCORE_CHUNK, SCORE_ELEMENTS // elements)


def test_score_chunk_sees_a_broadcast_inside_an_expression():
    # sum over an [N, K] temporary: the let is [N], the product inside it is [N, K]
    text = ("data N: int\ndata K: int\ndata X: real[N, K]\nsample b: real[K] ~ Normal(0, 1)"
            "\nlet s = sum(X * b[newaxis, :], axis=1)\nfactor -0.5 * s * s\n")
    model = _model(text, {"N": 500, "K": 40, "X": np.zeros((500, 40))})
    assert draw_elements(model) == 500 * 40
    assert score_chunk(model) == SCORE_ELEMENTS // (500 * 40)


def test_a_large_model_keeps_the_chunk_of_ten():
    text = "data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"
    model = _model(text, {"N": 10 ** 6, "y": np.zeros(10 ** 6)})
    assert draw_elements(model) == 10 ** 6 and score_chunk(model) == SCORE_CHUNK


# ----- the mutation pass of session 40 (docs/history/trust-log.md) -------------------------

def _adam_by_hand(params, grads, lr):
    """Kingma and Ba (2015), Algorithm 1, in 60-digit decimals (no overflow, no scaling)."""
    from decimal import Decimal, localcontext
    with localcontext() as context:
        context.prec = 60
        b1, b2, eps = Decimal("0.9"), Decimal("0.999"), Decimal("1e-8")
        theta = [Decimal(float(x)) for x in params]
        m, v = [Decimal(0)] * len(theta), [Decimal(0)] * len(theta)
        for t, grad in enumerate(grads, 1):
            for i, g in enumerate(Decimal(float(x)) for x in grad):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
                theta[i] -= Decimal(lr) * m_hat / (v_hat.sqrt() + eps)
        return np.array([float(x) for x in theta])


def _stan_by_hand(params, grads, lr):
    """Kucukelbir et al. (2017), eq. (10)-(11) with Stan's a = 0.1, tau = 1, in decimals."""
    from decimal import Decimal, localcontext
    with localcontext() as context:
        context.prec = 60
        theta = [Decimal(float(x)) for x in params]
        s = [None] * len(theta)
        for k, grad in enumerate(grads, 1):
            power = Decimal(k) ** (Decimal("-0.5") + Decimal(float(1e-16)))
            for i, g in enumerate(Decimal(float(x)) for x in grad):
                s[i] = g * g if k == 1 else Decimal("0.1") * g * g + Decimal("0.9") * s[i]
                theta[i] -= Decimal(lr) * power / (1 + s[i].sqrt()) * g
        return np.array([float(x) for x in theta])


# Gradients across the rescaling of the second moment (2^500): coordinate 0 just below it for
# two steps, so its second moment is near its largest, then over it and over the new scale's
# too; coordinate 1 ordinary, coordinate 2 huge from the start. 9 steps: the references'
# parameters agree with the float run to about 1e-15 relative; 1e-12 allows for that.
RESCALED_GRADS = [np.array(g) for g in (
    [0.9 * 2.0 ** 500, 1.0, -1e200], [-0.8 * 2.0 ** 500, -2.0, 3e200],
    [1.5 * 2.0 ** 500, 0.5, -1e200], [2.0 ** 1010, 1e-3, 2e200], [3.0, 4.0, -1e180],
    [-2.0 ** 1000, -1.0, 1e201], [1e10, 2.0, -1e150], [-5.0, 0.25, 1e200], [7.0, -3.0, 1.0])]


@pytest.mark.parametrize("name, by_hand", [("adam", _adam_by_hand), ("stan", _stan_by_hand)])
def test_steps_across_the_rescaling_are_the_published_rule_by_hand(name, by_hand):
    opt = optimizer(name)
    state = opt.init(np.array([0.5, -1.0, 2.0]), 0.1)
    for grad in RESCALED_GRADS:
        state = opt.update(state, grad)
    np.testing.assert_allclose(state.params, by_hand([0.5, -1.0, 2.0], RESCALED_GRADS, 0.1),
                               rtol=1e-12)


def test_sgd_is_torchs_heavy_ball_by_hand():
    # torch.optim.SGD(momentum=0.9, dampening=0): v = 0.9 v + g; p -= lr v
    opt = optimizer("sgd")
    state = opt.init(np.array([1.0, -2.0]), 0.1)
    p, v = np.array([1.0, -2.0]), np.zeros(2)
    for grad in (np.array([1.0, -3.0]), np.array([0.5, 2.0]), np.array([-4.0, 0.25])):
        state = opt.update(state, grad)
        v = 0.9 * v + grad
        p = p - 0.1 * v
        np.testing.assert_array_equal(state.params, p)
        np.testing.assert_array_equal(state.velocity, v)


def test_search_goes_on_past_worse_etas_until_one_beats_the_start(monkeypatch):
    # scripted scores, the start at 10: 1.0 scores 20 and 0.1 30, both worse than the start,
    # so the search goes on (Stan's adapt_eta stops only once the best beats the start); 0.01
    # beats it (5), and 0.001, worse than that, ends the search at 0.01
    from ppl.infer import optim
    scores = {1.0: 20.0, 0.1: 30.0, 0.01: 5.0, 0.001: 6.0, 1e-4: 1.0}
    monkeypatch.setattr(optim, "_trial", lambda objective, params, opt, noise, mc, eta, *rest:
                        scores[eta])
    result = search_lr(None, np.zeros(2), optimizer("adam"), lambda n: np.zeros((n, 2)), 1,
                       tuple(scores), score=lambda params, eps: 10.0)
    assert result == (0.01, {1.0: 20.0, 0.1: 30.0, 0.01: 5.0, 0.001: 6.0}, True)


def test_search_skips_steps_whose_gradient_is_not_finite():
    # a loss finite everywhere whose gradient is NaN at every third call: those steps are
    # skipped (as Stan skips them), the others reach the minimum at 1; a step on a NaN
    # gradient would make every later iterate, and every score, NaN
    calls = []

    def loss(params, eps):
        calls.append(1)
        grad = params - 1.0 if len(calls) % 3 else np.full_like(params, np.nan)
        return 0.5 * float(np.sum((params - 1.0) ** 2)), grad
    result = search_lr(loss, np.zeros(2), optimizer("adam"), lambda n: np.zeros((n, 2)), 1,
                       (0.1, 0.01))
    assert result.found and result.lr == 0.1
    assert all(np.isfinite(list(result.losses.values())))
