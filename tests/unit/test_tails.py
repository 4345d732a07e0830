"""ppl/infer/tails.py: which fits the tail check reads, when the t's weights are trusted, and
the t it builds (the verdict's use of it: tests/unit/test_verdict.py, tests/stats/test_trust.py)."""
from types import SimpleNamespace

import numpy as np
import pytest

from ppl.guides import family
from ppl.infer import tails
from ppl.infer.psis import Psis
from ppl.options import FitOptions


def result(guide: str, D: int):
    return SimpleNamespace(guide=SimpleNamespace(name=guide), names=[f"z{i}" for i in range(D)])


@pytest.mark.parametrize("guide, D, options, checked", [
    ("meanfield", 3, FitOptions(), True),
    ("fullrank", 200, FitOptions(), True),             # up to full rank's auto limit
    ("fullrank", 201, FitOptions(), False),            # the t's D x D frame beyond it
    ("meanfield", 0, FitOptions(), False),             # nothing drawn
    ("flow", 3, FitOptions(), False),                  # not a Gaussian
    ("studentt", 3, FitOptions(), False),              # the t itself
    ("lowrank:2", 3, FitOptions(), False),
    ("meanfield", 3, FitOptions(method="dadvi"), False),
    # --batch: every draw of the t is a pass over the whole data
    ("meanfield", 3, FitOptions(batch={"N": 10}), False),
])
def test_which_fits_are_checked(guide, D, options, checked):
    assert tails.applies(result(guide, D), options) is checked


@pytest.mark.parametrize("khat, n_nonfinite, ess, trusted", [
    (0.5, 0, 2000.0, True),
    (0.7, 0, 2000.0, False),       # at the threshold: the weights cannot correct a summary
    (0.5, 1, 2000.0, False),       # a draw where the log density is not finite
    (0.5, 0, 499.0, False),        # under MIN_WEIGHTS_ESS
    (0.5, 0, 501.0, True),
])
def test_the_t_weights_are_trusted_as_a_corrected_summary_needs(khat, n_nonfinite, ess, trusted):
    # log weights of the given ESS: n equal weights give an ESS of n
    n = int(ess)
    p = Psis(khat, 0.7, np.full(n, -np.log(n)), n_nonfinite, 20)
    assert p.ess == pytest.approx(ess)
    assert tails.trusted(p) is trusted


def test_a_mean_field_fit_is_taken_to_the_t_in_its_own_frame():
    mean_field = family("meanfield", 2)
    theta = np.array([1.0, -2.0, np.log(0.5), np.log(3.0)])     # mu, log sigma
    fit = SimpleNamespace(guide=mean_field, theta=theta, names=["a", "b"])
    t = tails.under_student_t(_replaceable(fit))
    assert t.guide.name == "studentt"
    mu, L = t.guide.frame(t.theta)
    np.testing.assert_allclose(mu, [1.0, -2.0])
    np.testing.assert_allclose(L, np.diag([0.5, 3.0]), atol=1e-12)


def _replaceable(namespace):
    """A dataclass with the namespace's fields, for dataclasses.replace."""
    import dataclasses
    cls = dataclasses.make_dataclass("Result", list(vars(namespace)))
    return cls(**vars(namespace))


def test_the_t_takes_the_degrees_of_freedom_asked_for():
    fit = SimpleNamespace(guide=family("meanfield", 2), theta=np.zeros(4), names=["a", "b"])
    assert tails.under_student_t(_replaceable(fit), nu=5).guide.name == "studentt:5"
    assert tails.under_student_t(_replaceable(fit)).guide.name == "studentt"


@pytest.mark.parametrize("n", [2, tails.ROWS - 1, tails.ROWS, tails.ROWS + 1, 2 * tails.ROWS + 1])
def test_weighted_moments_in_blocks_are_the_one_pass_formulas(n):
    # every row counts, whatever the blocks: the last block may hold a single draw
    rng = np.random.default_rng(n)
    values, weights = rng.standard_normal((n, 3)) * [1.0, 5.0, 0.1], rng.exponential(size=n)
    w = weights / weights.sum()
    mean = w @ values
    var = w @ (values - mean) ** 2
    expected = (mean, np.sqrt(var), np.sqrt(w ** 2 @ (values - mean) ** 2),
                np.sqrt(w ** 2 @ ((values - mean) ** 2 - var) ** 2) / (2 * var))
    for got, want in zip(tails.weighted_moments(values, weights), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def test_the_t_weights_at_exactly_min_weights_ess_are_trusted():
    # 'at least MIN_WEIGHTS_ESS', as verdict.judge bounds a corrected summary's weights (under
    # it unreliable): Psis's own ESS of n equal weights rounds off n (500: 499.99999999999983),
    # so a stand-in with the attributes trusted reads gives the exact figure
    from types import SimpleNamespace
    from ppl.infer.verdict import MIN_WEIGHTS_ESS
    at = SimpleNamespace(khat=0.5, threshold=0.7, n_nonfinite=0, ess=float(MIN_WEIGHTS_ESS))
    assert tails.trusted(at)
    assert not tails.trusted(SimpleNamespace(**{**vars(at), "ess": np.nextafter(500.0, 0)}))


@pytest.mark.parametrize("khat, trusted", [(0.68, False), (0.66, True)])
def test_the_t_weights_are_judged_against_the_threshold_for_their_draws(khat, trusted):
    # 1000 draws: the threshold is 1 - 1/log10(1000) = 0.667, not the cap 0.7
    from ppl.infer.psis import khat_threshold
    n = 1000
    p = Psis(khat, khat_threshold(n), np.full(n, -np.log(n)), 0, 100)
    assert p.threshold == pytest.approx(2 / 3) and p.ess == pytest.approx(n)
    assert tails.trusted(p) is trusted
