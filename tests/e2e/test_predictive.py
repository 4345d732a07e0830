"""Predictive draws, plots, ArviZ export and Ctrl-C, against exact answers where there are any."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ppl

ROOT = Path(__file__).resolve().parents[2]
N = 20_000


def test_prior_predictive_matches_the_marginal_moments():
    # mu ~ Normal(1, 2), y[i] ~ Normal(mu, 1.5): y's prior predictive is Normal(1, 2^2 + 1.5^2).
    # Standard errors with N draws: mean sd/sqrt(N), variance var*sqrt(2/N); z = 4.
    model = ppl.compile("data J: int\ndata y: real[J]\nsample mu ~ Normal(1, 2)\n"
                        "observe y ~ Normal(mu, 1.5)\n")
    draws = model.prior_predictive({"J": 3, "y": [0.0, 0.0, 0.0]}, n=N, seed=1)
    assert draws["mu"].shape == (N,) and draws["y"].shape == (N, 3)
    var = 2.0 ** 2 + 1.5 ** 2
    assert abs(draws["y"].mean() - 1.0) < 4 * np.sqrt(var / N)
    assert abs(draws["y"][:, 0].var() - var) < 4 * var * np.sqrt(2 / N)
    # the three observations share mu: their prior covariance is Var(mu) = 4
    assert abs(np.cov(draws["y"][:, 0], draws["y"][:, 1])[0, 1] - 4.0) < 4 * var * np.sqrt(2 / N)


def test_posterior_predictive_of_counts_matches_the_fitted_rate():
    # y ~ Poisson(rate) with rate's posterior concentrated near 200 counts / 50: the predictive
    # mean is E[rate] and its variance E[rate] + Var(rate) (law of total variance), each within
    # z = 4 standard errors of N draws.
    model = ppl.compile("data y: int[50]\nsample rate ~ Gamma(2, 0.5)\n"
                        "observe y ~ Poisson(rate)\n")
    fit = model.fit({"y": [4] * 50}, seed=2, draws=N)
    rate = fit.draws()["rate"]
    predicted = fit.predictive(N)["y"]
    assert predicted.shape == (N, 50) and predicted.dtype.kind == "i"
    total_var = rate.mean() + rate.var()
    assert abs(predicted[:, 0].mean() - rate.mean()) < 4 * np.sqrt(total_var / N)
    assert abs(predicted[:, 0].var() - total_var) < 4 * np.sqrt(2 / N) * total_var * 1.5


def test_plot_writes_png_files(tmp_path):
    out = tmp_path / "fit"
    run = [sys.executable, "-m", "ppl"]
    assert subprocess.run([*run, "fit", "models/eight_schools.ppl", "--quiet", "--out", out,
                           "--draws", "200"], cwd=ROOT, capture_output=True).returncode == 0
    result = subprocess.run([*run, "plot", out], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("elbo.png", "marginals.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_arviz_holds_the_posterior_and_the_predictive():
    fit = ppl.load(ROOT / "models" / "eight_schools.ppl").fit(seed=0, draws=100)
    data = fit.to_arviz(predictive=True)
    assert data.posterior["tau"].shape == (1, 100)
    assert data.posterior["eta"].shape == (1, 100, 8)
    assert data.posterior_predictive["y"].shape == (1, 100, 8)
    assert np.allclose(data.posterior["tau"].values[0], fit.draws()["tau"])


@pytest.mark.slow
def test_ctrl_c_reports_the_current_approximation_as_not_converged():
    process = subprocess.Popen(
        [sys.executable, "-m", "ppl", "fit", "models/eight_schools.ppl", "--quiet",
         "--iter", "10000000", "--window", "1000000"],  # no convergence check for 2e6 steps
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # past start-up and into the optimization
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr  # printed the fit, then the status of SIGINT
    assert "did NOT converge" in stdout and "interrupted" in stdout, stderr
    lines = stdout.splitlines()
    # an importance-correction note, when the summary is corrected, comes above the header
    table = lines[1:] if lines[0].startswith("importance-corrected") else lines
    assert table[1].split()[0] == "mu"
