"""The trust additions of ppl/posterior.py: log weights, k̂ with non-finite weights, weighted
summaries, corrected draws, fit.json's khat and verdict."""
import json

import autograd.numpy as anp
import numpy as np

import ppl
from ppl.guides import MEAN_FIELD
from ppl.infer.advi import AdviResult
from ppl.options import FitOptions
from ppl.posterior import QUANTILES, Fit, weighted_stats
from ppl.savedfit import save_fit


class Stub:
    """A 'compiled model' N(0, 1) in D coordinates whose log density is NaN where zeta_0 > 2."""

    def __init__(self, D):
        self.dim = D

    def log_joint(self, zeta):
        value = -0.5 * anp.sum(zeta * zeta, axis=1)
        return anp.where(zeta[:, 0] > 2.0, np.nan, value)

    def constrained(self, zeta):
        return {"z": np.asarray(zeta)}


def _fit(D=2, **options):
    theta = np.zeros(2 * D)            # the guide is exactly N(0, 1): weights are constant
    result = AdviResult(MEAN_FIELD, theta, tuple(f"z[{i}]" for i in range(D)), np.zeros(1),
                        True, "converged", 1, 0.0, 0.1, 0.0)
    return Fit(None, Stub(D), result, FitOptions(**options), {})


def test_log_weights_are_log_p_minus_log_q_at_the_guide_draws():
    fit = _fit()
    zeta = fit._zeta(4000)
    expected = Stub(2).log_joint(zeta) - MEAN_FIELD.log_q(fit.result.theta, zeta)
    np.testing.assert_array_equal(fit.log_weights(), expected)


def test_nonfinite_weights_are_counted_and_reported_not_nan():
    fit = _fit()
    # P(z_0 > 2) = 0.0228: about 91 of 4000 draws, +-4 sds of a binomial count (38)
    count = fit.psis.n_nonfinite
    assert abs(count - 4000 * 0.02275) < 4 * np.sqrt(4000 * 0.02275)
    assert not np.isnan(fit.khat)
    assert f"{count} of 4000 draws had a non-finite log density" in fit.verdict().line


def test_weighted_stats_at_equal_weights_are_the_plain_ones(rng):
    flat = rng.standard_normal((500, 3))
    mean, sd, quantiles = weighted_stats(flat, np.full(500, 1 / 500))
    np.testing.assert_allclose(mean, flat.mean(axis=0))
    np.testing.assert_allclose(sd, flat.std(axis=0, ddof=1))
    # Hazen's quantiles (positions (i - 1/2) / n) are numpy's 'hazen' method
    np.testing.assert_allclose(quantiles, np.quantile(flat, QUANTILES, axis=0, method="hazen"))


def test_weighted_stats_reweight_to_the_target(rng):
    # draws from N(0, 1) weighted by N(1, 1) / N(0, 1) = exp(x - 1/2) estimate N(1, 1)'s moments;
    # with n = 200000 and effective sample size n / e, the mean's se is about 0.004: 4 se = 0.016
    x = rng.standard_normal((200_000, 1))
    w = np.exp(x[:, 0])
    mean, sd, quantiles = weighted_stats(x, w / w.sum())
    assert abs(mean[0] - 1.0) < 0.016 and abs(sd[0] - 1.0) < 0.016
    np.testing.assert_allclose(quantiles[:, 0], 1.0 + np.array([-1.6449, 0.0, 1.6449]), atol=0.03)


def test_corrected_fit_resamples_its_draws_and_says_so():
    text = "data y: real[3]\nsample m ~ Normal(0, 1)\nobserve y ~ Normal(m, 1)\n"
    model = ppl.compile(text)
    fit = model.fit({"y": [0.5, 1.0, 1.5]}, guide="meanfield")
    plain = model.fit({"y": [0.5, 1.0, 1.5]}, guide="meanfield", correct="none")
    assert fit.corrected and not plain.corrected
    assert fit.summary().note.startswith("importance-corrected (PSIS, k̂")
    assert plain.summary().note == ""
    draws = fit.draws()["m"]
    assert draws.shape == (1000,)
    # resampled draws come from the 4000 guide draws, and are a subset of them
    assert np.all(np.isin(draws, fit.compiled.constrained(fit._zeta(4000))["m"]))


def test_fit_json_has_khat_and_verdict(tmp_path):
    text = "sample m ~ Normal(0, 1)\n"
    fit = ppl.compile(text).fit(guide="meanfield")
    save_fit(fit, tmp_path)
    info = json.loads((tmp_path / "fit.json").read_text())
    assert info["khat"] == (fit.khat if np.isfinite(fit.khat) else None)  # JSON has no inf
    assert info["verdict"]["line"] == fit.verdict().line
    assert info["psis"]["draws"] == 4000
