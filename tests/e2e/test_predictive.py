"""Predictive draws, plots, ArviZ export and Ctrl-C, against exact answers where there are any."""
from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

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
    # z = 4 standard errors of N draws: sqrt(var / N) for the mean, sqrt((mu4 - var^2) / N) for
    # the variance (mu4 the fourth central moment, from the draws: a Poisson of mean 4 has excess
    # kurtosis 1/4, so this is about 1.06 var sqrt(2 / N), not a normal's var sqrt(2 / N)).
    model = ppl.compile("data y: int[50]\nsample rate ~ Gamma(2, 0.5)\n"
                        "observe y ~ Poisson(rate)\n")
    fit = model.fit({"y": [4] * 50}, seed=2, draws=N)
    rate = fit.draws()["rate"]
    predicted = fit.predictive(N)["y"]
    assert predicted.shape == (N, 50) and predicted.dtype.kind == "i"
    total_var = rate.mean() + rate.var()
    assert abs(predicted[:, 0].mean() - rate.mean()) < 4 * np.sqrt(total_var / N)
    mu4 = np.mean((predicted[:, 0] - predicted[:, 0].mean()) ** 4)
    assert abs(predicted[:, 0].var() - total_var) < 4 * np.sqrt((mu4 - total_var ** 2) / N)


def _normal_case():
    # mu ~ Normal(0, 3), y ~ Normal(mu, 2): mu | y ~ Normal(m, v), a new y ~ Normal(m, v + 4)
    y = np.array([0.3, 2.1, -1.0, 1.7, 0.9, 3.2])
    v = 1 / (1 / 9 + len(y) / 4)
    m = v * y.sum() / 4
    return ("data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 3)\nobserve y ~ Normal(mu, 2)\n",
            {"N": len(y), "y": y}, {"N": 1}, stats.norm(m, np.sqrt(v + 4)),
            lambda d: stats.norm(d["mu"][:, None], 2).logpdf(y))


def _beta_binomial_case():
    # p ~ Beta(2, 3), y ~ Binomial(10, p): a new y ~ BetaBinomial(10, 2 + sum y, 3 + sum(10 - y))
    y = np.array([3, 5, 2, 7, 4])
    return ("data N: int\ndata y: int[N]\nsample p ~ Beta(2, 3)\nobserve y ~ Binomial(10, p)\n",
            {"N": len(y), "y": y}, {"N": 1}, stats.betabinom(10, 2 + y.sum(), 3 + 50 - y.sum()),
            lambda d: stats.binom(10, d["p"][:, None]).logpmf(y))


def _gamma_poisson_case():
    # lam ~ Gamma(2, rate 0.5), y ~ Poisson(lam): a new y ~ NegativeBinomial(2 + sum y, success
    # probability (0.5 + N) / (1.5 + N))
    y = np.array([3, 5, 2, 7, 4, 0, 1])
    rate = 0.5 + len(y)
    return ("data N: int\ndata y: int[N]\nsample lam ~ Gamma(2, 0.5)\nobserve y ~ Poisson(lam)\n",
            {"N": len(y), "y": y}, {"N": 1}, stats.nbinom(2 + y.sum(), rate / (rate + 1)),
            lambda d: stats.poisson(d["lam"][:, None]).logpmf(y))


def _regression_case():
    # a, b ~ Normal(0, 2), y ~ Normal(a + b x, 0.7): at a new x the predictive is Normal with
    # mean x' m and variance x' S x + 0.49 (m, S the Gaussian posterior's)
    x = np.array([-1.2, -0.4, 0.1, 0.5, 0.9, 1.6, 2.2])
    y = 0.5 - x + 0.7 * np.array([0.3, -1.1, 0.4, 0.8, -0.2, 1.3, -0.6])
    X = np.column_stack([np.ones_like(x), x])
    S = np.linalg.inv(X.T @ X / 0.49 + np.eye(2) / 4)
    new = np.array([1.0, 4.0])      # x = 4, past the data: the slope's sd matters
    return ("data N: int\ndata x: real[N]\ndata y: real[N]\nsample a ~ Normal(0, 2)\n"
            "sample b ~ Normal(0, 2)\nobserve y ~ Normal(a + b * x, 0.7)\n",
            {"N": len(x), "x": x, "y": y}, {"N": 1, "x": [4.0]},
            stats.norm(new @ S @ X.T @ y / 0.49, np.sqrt(new @ S @ new + 0.49)),
            lambda d: stats.norm(d["a"][:, None] + d["b"][:, None] * x, 0.7).logpdf(y))


@pytest.mark.parametrize("case", [_normal_case, _beta_binomial_case, _gamma_poisson_case,
                                  _regression_case], ids=lambda c: c.__name__[1:-5])
def test_posterior_predictive_of_conjugate_models_is_the_exact_predictive(case):
    # full rank contains (or nearly contains, on the unconstrained scale) each posterior, and
    # the corrected draws are resampled from weights of effective sample size at least 4000
    # (the beta-binomial's are not corrected, k̂ 1.6 on nearly equal weights: N iid draws of a
    # guide that nearly is the posterior): a mean's standard error is then at most
    # sd / sqrt(4000), a variance's about var * sqrt(2 / 4000); z = 4. Measured: within 0.2 of
    # these tolerances. The pointwise log-likelihoods are exact at each draw.
    text, data, new, exact, log_likelihood = case()
    fit = ppl.compile(text).fit(data, guide="fullrank", seed=0)
    predicted = fit.predictive(N, data=new)["y"][:, 0]
    assert predicted.dtype.kind == ("i" if exact.dist.name in ("betabinom", "nbinom") else "f")
    assert abs(predicted.mean() - exact.mean()) < 4 * exact.std() / np.sqrt(4000)
    assert abs(predicted.var() - exact.var()) < 4 * exact.var() * np.sqrt(2 / 4000)
    arviz_data = fit.to_arviz(predictive=False)
    draws = {k: v.values[0] for k, v in arviz_data.posterior.items()}
    np.testing.assert_allclose(arviz_data.log_likelihood["y"].values[0], log_likelihood(draws),
                               rtol=1e-12, atol=1e-12)


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


def _drained(leader: int, into: list) -> None:
    """Read a pseudo-terminal's leader side to its end (EIO once the child's side is closed),
    so that the child never blocks writing its stderr there."""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            return
        if not chunk:
            return
        into.append(chunk)


@pytest.mark.slow
def test_ctrl_c_reports_the_current_approximation_as_not_converged():
    # stderr on a pseudo-terminal, so that the command shows its progress bar, which starts at
    # the fit's first progress report: the Ctrl-C comes once the optimization runs, however
    # long a loaded machine takes to start the command (a fixed 6 s sleep once reached it
    # still starting, on CI: 'ppl: interrupted' and no fit, as a Ctrl-C there should)
    leader, follower = pty.openpty()
    # a terminal 80 columns wide: tqdm draws nothing on one of width 0 (a new pty's)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ppl", "fit", "models/eight_schools.ppl",
         "--iter", "10000000", "--window", "1000000"],  # no convergence check for 2e6 steps
        cwd=ROOT, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    written: list[bytes] = []
    reader = threading.Thread(target=_drained, args=(leader, written), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while b"fitting" not in b"".join(written) and process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()   # its fit would run for hours
            pytest.fail(f"no progress bar within 120 s: {b''.join(written)!r}")
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    stderr = b"".join(written).decode(errors="replace")
    assert process.returncode == 130, stderr  # printed the fit, then the status of SIGINT
    assert "did NOT converge" in stdout and "interrupted" in stdout, stderr
    lines = stdout.splitlines()
    # an importance-correction note, when the summary is corrected, comes above the header
    table = lines[1:] if lines[0].startswith("importance-corrected") else lines
    assert table[1].split()[0] == "mu"
