"""The end-of-fit stationarity check (ppl/infer/diagnostics.py, issue 9 item 3)."""
from __future__ import annotations

import re
import warnings

import autograd.numpy as anp
import numpy as np
import pytest

import ppl
from ppl.errors import PplWarning
from ppl.infer import diagnostics

M, S = np.array([1.0, -2.0, 300.0]), np.array([0.5, 3.0, 1e-4])


def _gaussian(zeta):
    return -0.5 * anp.sum(((zeta - M) / S) ** 2, axis=1)


def test_newton_sds_is_the_error_of_the_mean_in_sds_on_a_gaussian(rng):
    # on a Gaussian log density with the guide's sd equal to the posterior's, sigma * E[g] is
    # exactly -(mu - m) / s per coordinate, whatever the draws
    offset = np.array([2.0, -0.5, 10.0])
    steps, se = diagnostics.newton_sds(_gaussian, M + offset * S, np.log(S), rng)
    np.testing.assert_allclose(steps, -offset, atol=4 * se.max() + 1e-9)  # z = 4


class _Stub:
    dim = 3

    @staticmethod
    def log_joint(zeta):
        return _gaussian(zeta)

    @staticmethod
    def unconstrained_names():
        return ["a", "b", "c"]


def test_no_warning_at_the_optimum():
    assert diagnostics.check_optimum(_Stub, M, np.log(S), 0.1, -3.0) is None


def test_warning_names_the_worst_element_and_the_narrow_sd():
    warning = diagnostics.check_optimum(_Stub, M + np.array([0, 0, 5e-4]), np.log(S), 0.1, -3.0)
    # the step is -5 plus the mean of 64 standard normals (sd 1/8): within z = 4 of -5
    found = float(re.search(r"mean of 'c' \(unconstrained\) by (\S+) guide sds",
                            warning.message).group(1))
    assert abs(found + 5) < 4 / 8
    assert "the guide sd of 'c' is 0.0001, far below the step size 0.1" in warning.message


MODEL = ("data y: real[20]\nsample mu ~ Normal(0, 10)\nsample sigma ~ HalfNormal(1)\n"
         "observe y ~ Normal(mu, sigma)\n")


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1e12, 1e-12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_data_on_an_extreme_scale_is_never_a_silent_converged(scale, seed):
    y = np.random.default_rng(5).normal(1.0, 0.5, 20) * scale
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = ppl.compile(MODEL).fit({"y": y}, seed=seed)
    mu = fit.draws()["mu"].mean()
    right = abs(mu - y.mean()) < 4 * y.std() / np.sqrt(20)   # z = 4 posterior sds
    flagged = any(isinstance(w.message, PplWarning) and "this fit may be wrong" in str(w.message)
                  for w in record)
    assert right or (flagged and not fit.converged)


def test_a_model_at_ordinary_scale_gives_no_warning():
    y = np.random.default_rng(5).normal(1.0, 0.5, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ppl.compile(MODEL).fit({"y": y}, seed=0)
    assert fit.converged
