"""The fit on fixed draws (ppl/infer/fixed_draws.py) of the scaled family, through advi.fit."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import ppl

from ppl.errors import PplError
from ppl.guides import Scaled
from ppl.infer import advi, fixed_draws
from ppl.options import FitOptions

from .test_auto import OPTIONS, Banana


def _scaled(model, seed=0, progress=None):
    return advi.fit(model, dataclasses.replace(OPTIONS, guide="scaled"),
                    np.random.default_rng(seed), progress)


def test_the_scaled_family_climbs_from_mean_field_on_fixed_draws():
    # On the banana (y | x ~ N(x^2, 0.5^2)) the fixed-draw ELBO climbs above mean field's final
    # one, and the layer's shift learns y's curve in x^2: E[y, x*x] near 1 in eps units
    model = Banana()
    mean_field = advi.fit(model, dataclasses.replace(OPTIONS, guide="meanfield"),
                          np.random.default_rng(0))
    fit = _scaled(model)
    assert fit.guide == Scaled(2)
    assert fit.steps == len(fit.elbo) > mean_field.steps   # its iterations count as steps
    assert np.array_equal(fit.elbo[:mean_field.steps], mean_field.elbo)   # the same start
    assert fit.final_elbo > mean_field.final_elbo + 0.1
    *_, E = fit.guide.split(fit.theta)
    assert abs(E[1, 0]) > 0.1
    assert fit.converged and fit.reason == fixed_draws.CONVERGED
    np.testing.assert_array_equal(_scaled(model).theta, fit.theta)   # same seed, same fit


def test_ctrl_c_keeps_the_rounds_done(monkeypatch):
    # Ctrl-C in the third round: the fit of the first two rounds, reported interrupted
    with monkeypatch.context() as patch:
        patch.setattr(fixed_draws, "ROUND_DRAWS", fixed_draws.ROUND_DRAWS[:2])
        two_rounds = _scaled(Banana())

    def progress(step, value, lr):
        if step > two_rounds.steps:
            raise KeyboardInterrupt
    fit = _scaled(Banana(), progress=progress)
    assert fit.reason == advi.INTERRUPTED and not fit.converged
    np.testing.assert_array_equal(fit.theta, two_rounds.theta)
    np.testing.assert_array_equal(fit.elbo, two_rounds.elbo)
    assert fit.steps == two_rounds.steps and fit.final_elbo == two_rounds.final_elbo


def test_a_second_ctrl_c_leaves_the_last_iterates_value_as_the_final_elbo(monkeypatch):
    # Ctrl-C while the final ELBO is estimated on fresh draws (fixed_draws._final_draws)
    # leaves no estimate: the final ELBO is then the last iteration's, its own round's value
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(fixed_draws, "_final_draws", interrupted)
    capped = dataclasses.replace(OPTIONS, iter=30)   # (short: the cap is not the reason)
    mean_field = advi.fit(Banana(), dataclasses.replace(capped, guide="meanfield"),
                          np.random.default_rng(0))
    fit = advi.fit(Banana(), dataclasses.replace(capped, guide="scaled"),
                   np.random.default_rng(0))
    assert fit.reason == advi.INTERRUPTED and not fit.converged
    assert fit.steps > mean_field.steps + 1 and fit.elbo[mean_field.steps] != fit.elbo[-1]
    assert fit.final_elbo == fit.elbo[-1]


def test_the_paired_gain_is_the_mean_difference_with_the_pairs_standard_error():
    model, guide, rng = Banana(), Scaled(2), np.random.default_rng(3)
    before = guide.init(2, 1.0)
    after = before + 0.05 * rng.standard_normal(before.shape)
    eps = rng.standard_normal((64, 2))
    eps = np.concatenate([eps, -eps])

    def elbo_draws(theta):
        return model.log_joint(guide.draw(theta, eps)) + guide.entropy(theta)
    difference = elbo_draws(after) - elbo_draws(before)
    pairs = 0.5 * (difference[:64] + difference[64:])
    gain, se = fixed_draws.paired_gain(model.log_joint, guide, before, after, eps)
    assert gain == pytest.approx(difference.mean(), rel=1e-12)
    assert se == pytest.approx(pairs.std(ddof=1) / 8, rel=1e-12)
    # the terms at ``after`` a round's start computed already give the same gain, bit for bit
    assert fixed_draws.paired_gain(model.log_joint, guide, before, after, eps,
                                   after_terms=fixed_draws._elbo_draws(
                                       model.log_joint, guide, after, eps)) == (gain, se)
    with np.errstate(all="ignore"):
        assert fixed_draws.paired_gain(lambda z: np.full(len(z), np.nan), guide, before, after,
                                       eps) == (-np.inf, 0.0)
        # one draw not finite is no gain either, not a NaN mean (a mutation pass, 2026-12-04)
        assert fixed_draws.paired_gain(
            lambda z: np.where(z[:, 0] == z[0, 0], -np.inf, model.log_joint(z)), guide, before,
            after, eps) == (-np.inf, 0.0)


@pytest.mark.parametrize("gains, converged", [((0.0, 0.0, 5.0, 0.0), False),
                                               ((5.0, 5.0, 0.0, 0.0), True),
                                               ((0.0, 0.0, np.nan, 0.0), False),
                                               ((5.0, 0.0, 0.0, 5.0), False)])
def test_the_rounds_converge_on_consecutive_flat_gains(monkeypatch, gains, converged):
    # FLAT_ROUNDS (2) flat gains in a row, the last round's among them (measured on the final
    # estimate's draws: four rounds, four gains): a gain that is not flat, or not finite,
    # starts the count again (a mutant that never reset it passed; a mutation pass,
    # 2026-12-04), and a last round that still gained is not converged (the last case was
    # converged while that gain went unmeasured). Each gain here has a standard error of 1,
    # so 5 is significant and 0 flat.
    scripted = iter(gains)
    monkeypatch.setattr(fixed_draws, "paired_gain", lambda *args, **kwargs: (next(scripted), 1.0))
    model, guide = Banana(), Scaled(2)
    fitted = fixed_draws.fit(model.log_joint, guide, guide.init(2, 1.0),
                             np.random.default_rng(0), rounds=(16,) * 4)
    assert fitted.converged == converged


@pytest.mark.parametrize("chunk", [1, 7, 64, 128])
def test_a_round_evaluated_in_chunks_of_draws_is_the_whole_round(chunk):
    # on large data the log joint sees a score chunk of draws at a time (optim.score_chunk):
    # the ELBO estimate, its gradient and the paired gain are the whole round's to rounding;
    # with the round's pairwise products (Scaled.prepare) each chunk takes its own rows
    model, guide, rng = Banana(), Scaled(2), np.random.default_rng(5)
    before = guide.init(2, 1.0)
    theta = before + 0.1 * rng.standard_normal(before.shape)
    eps = rng.standard_normal((64, 2))
    eps = np.concatenate([eps, -eps])
    whole = fixed_draws._chunked_elbo_and_grad(model.log_joint, theta, eps, guide, np.inf)
    parts = fixed_draws._chunked_elbo_and_grad(model.log_joint, theta, eps, guide, chunk)
    assert parts[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(parts[1], whole[1], rtol=1e-11, atol=1e-13)
    prepared = fixed_draws._chunked_elbo_and_grad(model.log_joint, theta, eps, guide, chunk,
                                                  guide.prepare(eps))
    assert prepared[0] == parts[0]
    np.testing.assert_array_equal(prepared[1], parts[1])
    assert fixed_draws.paired_gain(model.log_joint, guide, before, theta, eps, chunk) == \
        pytest.approx(fixed_draws.paired_gain(model.log_joint, guide, before, theta, eps),
                      rel=1e-12)


def test_a_rounds_draws_are_read_only_and_come_with_their_elbo_terms():
    # a round's draws are fixed (the round computes their pairwise products once), and
    # the terms checked finite at its start are those the paired gain and final ELBO reuse
    model, guide = Banana(), Scaled(2)
    theta = guide.init(2, 1.0)
    eps, finite, terms = fixed_draws.finite_draws(model.log_joint, guide, theta,
                                                  np.random.default_rng(0), 8)
    assert finite and eps.shape == (16, 2) and not eps.flags.writeable
    np.testing.assert_array_equal(eps[8:], -eps[:8])
    np.testing.assert_array_equal(terms, fixed_draws._elbo_draws(model.log_joint, guide,
                                                                 theta, eps))


def test_method_dadvi_refuses_the_scaled_family():
    with pytest.raises(PplError, match="not scaled"):
        FitOptions(method="dadvi", guide="scaled")


def test_further_rounds_converge_on_the_gains_they_measure(monkeypatch):
    # auto's further rounds (MORE_DRAWS) measure their gains, the last on the final
    # estimate's draws: on the banana, converged by then, flat gains are convergence (before
    # the last round's gain was measured there, one further round measured none and never
    # converged)
    fit = _scaled(Banana())
    more = advi.refine(Banana(), fit, np.random.default_rng(7), fixed_draws.MORE_DRAWS)
    assert more.converged and more.reason == fixed_draws.CONVERGED
    assert more.steps > fit.steps and np.array_equal(more.elbo[:fit.steps], fit.elbo)
    one_round = advi.refine(Banana(), fit, np.random.default_rng(7), (512,))
    assert one_round.converged
    # the same rounds with their gains made significant (5 standard errors): still rising
    monkeypatch.setattr(fixed_draws, "paired_gain", lambda *args, **kwargs: (5.0, 1.0))
    rising = advi.refine(Banana(), fit, np.random.default_rng(7), fixed_draws.MORE_DRAWS)
    assert not rising.converged and rising.reason == fixed_draws.STILL_RISING
    np.testing.assert_array_equal(rising.theta, more.theta)


def test_further_rounds_count_on_the_fits_seconds_and_steps():
    # advi.refine goes on from the fit it is given: its trace, steps and seconds cover both
    capped = dataclasses.replace(OPTIONS, guide="scaled", iter=30)
    fit = advi.fit(Banana(), capped, np.random.default_rng(0))
    fit = dataclasses.replace(fit, seconds=1000.0)   # far above what one round takes
    more = advi.refine(Banana(), fit, np.random.default_rng(7), (256,))
    assert 1000.0 < more.seconds < 1100.0
    assert more.steps == len(more.elbo) > fit.steps
    assert np.array_equal(more.elbo[:fit.steps], fit.elbo)


class Cliff(Banana):
    """The banana, its log density NaN beyond y = 50 (a 'compiled model')."""

    def log_joint(self, zeta):
        return np.where(zeta[:, 1] < 50, super().log_joint(zeta), np.nan)


def test_a_fit_whose_draws_are_not_finite_is_a_located_divergence_not_converged():
    # L-BFGS-B cannot leave a start where the objective is NOT_FINITE (zero gradient): the
    # rounds stayed there, each gain (-inf) counted as flat, and the fit said 'converged' with
    # a final ELBO of -1e10 and every draw non-finite. Now a round draws again, MAX_FAILURES
    # times, then the fit has diverged
    fit = _scaled(Banana())
    far = fit.guide.push_affine(fit.theta, np.array([0.0, 100.0]), np.ones(2))
    with pytest.raises(PplError, match="fit on fixed draws diverged") as error:
        advi.refine(Cliff(), dataclasses.replace(fit, theta=far), np.random.default_rng(1),
                    fixed_draws.MORE_DRAWS)
    assert "--guide flow" in error.value.hint


def test_iter_caps_the_iterations_of_the_rounds():
    # --iter caps every family's steps (FitOptions.iter); scaled's are L-BFGS-B iterations
    capped = dataclasses.replace(OPTIONS, iter=30)
    mean_field = advi.fit(Banana(), dataclasses.replace(capped, guide="meanfield"),
                          np.random.default_rng(0))
    fit = advi.fit(Banana(), dataclasses.replace(capped, guide="scaled"),
                   np.random.default_rng(0))
    assert fit.steps - mean_field.steps == 30   # the warm start's 30, then its own 30
    assert fit.reason == advi.MAX_ITER and not fit.converged


ROOT = Path(__file__).resolve().parents[2]


def test_the_final_elbo_is_estimated_on_fresh_draws():
    # The last iterate's value on the draws its round fitted overstated the ELBO on eight
    # schools by 0.36-0.42 nats (seeds 0-2, against 20,000 fresh draws). The final ELBO must
    # agree with a large fresh estimate within 4 standard errors of their difference
    # (independent draws' se, a bound for the mirrored pairs')
    _, _, compiled = ppl.load(ROOT / "models" / "eight_schools.ppl").prepare()
    fit = advi.fit(compiled, FitOptions(guide="scaled"), np.random.default_rng(0))
    eps = np.random.default_rng(99).standard_normal((20_000, compiled.dim))
    terms = compiled.log_joint(fit.guide.draw(fit.theta, eps)) + fit.guide.entropy(fit.theta)
    se = terms.std() * np.hypot(1 / np.sqrt(2048), 1 / np.sqrt(20_000))   # 2 FINAL_DRAWS
    assert abs(fit.final_elbo - terms.mean()) < 4 * se
