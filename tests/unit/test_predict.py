"""Predictions on new data (ppl/predict.py): shapes and lets recomputed, intervals written."""
import json
import warnings

import numpy as np
from scipy import stats
import pytest

import ppl
from ppl.cli import main
from ppl.errors import PplError, PplWarning

REGRESSION = """
data N: int
data X: real[N, 2]
data y: real[N]
sample b: real[2] ~ Normal(0, 5)
sample s: real<lower=0> ~ Normal(0, 2)
let _mu = X @ b
observe y ~ Normal(_mu, s)
"""


def _data(N=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 2))
    return {"N": N, "X": X, "y": X @ [1.0, -1.0] + 0.5 * rng.standard_normal(N)}


def test_regression_predicts_new_rows_without_refitting():
    model = ppl.compile(REGRESSION)
    fit = model.fit(_data(), guide="meanfield", seed=1)
    X_new = np.random.default_rng(9).standard_normal((5, 2))
    pred = fit.predictive(4000, data={"N": 5, "X": X_new})["y"]
    assert pred.shape == (4000, 5)
    # E[y_new] = X_new E[b]; the Monte Carlo error of a mean of 4000 draws is sd(y) / 63, and
    # 5 of them is the tolerance (sd(y) from the draws themselves)
    b = fit.draws(4000)["b"].mean(axis=0)
    se = pred.std(axis=0) / np.sqrt(4000)
    np.testing.assert_array_less(np.abs(pred.mean(axis=0) - X_new @ b), 5 * se)


AMORTIZED = """
data N: int
data y: real[N]
sample z: real[N] ~ Normal(0, 2)
observe y ~ Normal(z, 1)
param a: real
param c: real
guide z ~ Normal(a * y, exp(c))
"""


def test_amortized_latents_are_drawn_from_their_guide_on_new_rows():
    fit = ppl.compile(AMORTIZED).fit({"N": 20, "y": np.linspace(-3, 3, 20)}, guide="meanfield",
                                iter=300)
    pred = fit.predictive(50, data={"N": 3, "y": [0.0, 1.0, 2.0]})["y"]
    assert pred.shape == (50, 3)


def test_new_data_after_a_corrected_fit_with_a_param_uses_the_corrected_draws():
    # a param makes the guide the user family; its predictions on new data were drawn from the
    # guide as it is, while fit.predictive(n) and the summary resample the importance-weighted
    # draws: on the same data the predictive variance was 3.33 against 2.96 (exact: 2.25 +
    # 1 / (1/2 + 2/2.25) = 2.97, mean field missing u and v's negative correlation)
    text = """
data N: int
data y: real[N]
param w: real
sample u ~ Normal(w, 1)
sample v ~ Normal(0, 1)
observe y ~ Normal(u + v, 1.5)
"""
    data = {"N": 2, "y": [1.0, 2.0]}
    fit = ppl.compile(text).fit(data, seed=0)
    assert fit.corrected
    same = fit.predictive(500, data=data)["y"]
    np.testing.assert_array_equal(same, fit.predictive(500)["y"])
    assert fit.predictive(500, data={"N": 3})["y"].shape == (500, 3)


def test_a_changed_shape_without_a_guide_is_an_error():
    text = "data N: int\ndata y: real[N]\nsample z: real[N] ~ Normal(0, 1)\nobserve y ~ Normal(z, 1)\n"
    fit = ppl.compile(text).fit({"N": 4, "y": np.zeros(4)}, guide="meanfield", iter=200)
    with pytest.raises(PplError, match="the latent 'z' has shape") as error:
        fit.predictive(10, data={"N": 3})
    assert error.value.span.line == 3


def test_a_param_sized_by_the_data_is_named_as_a_param():
    # per-row guide params (not an encoder): the error called m 'the latent' and hinted to
    # give it a guide statement, with no line
    text = ("data N: int\ndata y: real[N]\nsample z: real[N] ~ Normal(0, 1)\n"
            "observe y ~ Normal(z, 1)\nparam m: real[N]\nguide z ~ Normal(m, 1)\n")
    fit = ppl.compile(text).fit({"N": 4, "y": np.zeros(4)}, iter=50)
    with pytest.raises(PplError, match="the param 'm' has shape \\[4\\] in the fit and "
                       "\\[3\\] with the new data; its fitted values") as error:
        fit.predictive(10, data={"N": 3})
    assert error.value.span.line == 5 and "guide statement" not in error.value.hint


def test_cli_predict_new_data_writes_intervals(tmp_path, capsys):
    path = tmp_path / "m.ppl"
    path.write_text(REGRESSION)
    (tmp_path / "m.json").write_text(json.dumps({k: np.asarray(v).tolist()
                                                 for k, v in _data().items()}))
    (tmp_path / "new.json").write_text(json.dumps({"N": 3, "X": [[0, 0], [1, 0], [0, 1]]}))
    assert main(["fit", str(path), "--guide", "meanfield", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "o"), "--data", str(tmp_path / "new.json"),
                 "--draws", "500"]) == 0
    draws = np.loadtxt(tmp_path / "o" / "predictive.csv", delimiter=",", skiprows=1)
    assert draws.shape == (500, 3)
    lines = (tmp_path / "o" / "predictive_summary.csv").read_text().splitlines()
    assert lines[0] == "name,mean,5%,50%,95%" and len(lines) == 4
    row = [float(v) for v in lines[2].split(",")[1:]]
    assert row[1] < row[2] < row[3]
    assert row[0] == pytest.approx(draws[:, 1].mean())
    assert main(["predict", str(tmp_path / "o"), "--data", str(tmp_path / "nope.json")]) == 2
    assert main(["predict", str(tmp_path / "o"), "--data", "/dev/null"]) == 2
    assert capsys.readouterr().err.endswith("error: /dev/null: not a regular file\n")
    new_folder = tmp_path / "new"
    new_folder.mkdir()
    np.save(new_folder / "X.npy", np.array([[0.0, 0], [1, 0]]))
    assert main(["predict", str(tmp_path / "o"), "--data", str(new_folder)]) == 0


OBSERVED_ONLY = "data J: int\ndata y: real[J]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"


@pytest.fixture(scope="module")
def observed_only_fit():
    return ppl.compile(OBSERVED_ONLY).fit({"J": 3, "y": [1.0, 2.0, 3.0]}, iter=100)


@pytest.mark.parametrize("new, message", [
    ({"J": "a"}, "data 'J' must hold numbers; found the string 'a'"),
    ({"J": None}, "data 'J' must hold numbers; found null"),
    ({"J": {}}, "data 'J' must hold numbers; found an object"),
    ({"J": [8]}, "data 'J' must have shape scalar; found [1]"),
    ({"J": 10 ** 20}, "beyond the range of a 64-bit int"),
    ({"J": -1}, "'J' is -1, a negative size"),
    ({"J": 10 ** 12}, "this model needs at least 7.28 TB of memory"),
])
def test_bad_dimension_in_new_data_is_the_data_error_of_a_fit(observed_only_fit, new, message):
    # the placeholder for the left-out y used to be made from J before J was checked:
    # int('a'), np.zeros(-1) and a 7 TiB np.zeros were internal errors
    with pytest.raises(PplError) as caught:
        observed_only_fit.predictive(10, data=new)
    assert message in str(caught.value)


def test_cli_predict_bad_dimension_is_exit_2(tmp_path, capsys):
    path = tmp_path / "m.ppl"
    path.write_text(OBSERVED_ONLY)
    (tmp_path / "m.json").write_text('{"J": 3, "y": [1, 2, 3]}')
    assert main(["fit", str(path), "--out", str(tmp_path / "o"), "--quiet", "--iter", "50"]) == 0
    (tmp_path / "new.csv").write_text("J\n8\n")
    assert main(["predict", str(tmp_path / "o"), "--data", str(tmp_path / "new.csv")]) == 2
    assert "data 'J' must have shape scalar; found [1]" in capsys.readouterr().err


def test_ints_are_written_as_ints_in_draws_and_predictive_csv(tmp_path):
    # a discrete latent's draws were floats in the API (its values() are ints), and the CSV
    # files wrote every draw of an int, a count's too, as 3.0, through one float table
    from ppl.savedfit import save_fit, save_predictive
    text = """
data N: int
data y: int[N]
data x: real[N]
sample lam ~ Gamma(2, 1)
sample z: int ~ Bernoulli(0.5)
observe y ~ Poisson(lam + z)
observe x ~ Normal(lam, 1)
"""
    fit = ppl.compile(text).fit({"N": 2, "y": [1, 3], "x": [0.5, 1.5]}, iter=200)
    assert fit.draws()["z"].dtype == np.int64 and fit.draws()["lam"].dtype == float
    save_fit(fit, tmp_path)
    save_predictive(fit, tmp_path, 20)
    draws = (tmp_path / "draws.csv").read_text().splitlines()
    assert draws[0] == "lam,z"
    assert all(row.split(",")[1] in ("0", "1") for row in draws[1:])
    predictive = [row.split(",") for row in (tmp_path / "predictive.csv").read_text().splitlines()]
    assert predictive[0] == ["y[0]", "y[1]", "x[0]", "x[1]"]
    for row in predictive[1:]:
        assert all(cell.isdigit() for cell in row[:2]) and all("." in cell for cell in row[2:])
    pred = fit.predictive(20)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "predictive.csv", delimiter=",",
                                             skiprows=1), np.hstack([pred["y"], pred["x"]]))


def test_predict_refuses_data_that_changed_since_the_fit(tmp_path, capsys):
    # the restored fit weighted the fitted guide by the new data's posterior: after x was
    # edited to 5, 5, 5, 5 its corrected draws had b near 0 where the saved summary said 1.06,
    # and the predictions followed without a word
    path = tmp_path / "m.ppl"
    path.write_text("data N: int\ndata y: int[N]\ndata x: real[N]\nsample a ~ Normal(0, 2)\n"
                    "sample b ~ Normal(0, 2)\nobserve y ~ Poisson(exp(a + b * x))\n")
    data = tmp_path / "m.json"
    data.write_text('{"N": 4, "y": [1, 2, 3, 4], "x": [0.1, 0.5, 0.9, 1.2]}')
    out = str(tmp_path / "o")
    assert main(["fit", str(path), "--out", out, "--quiet", "--iter", "200"]) == 0
    data.write_text('{"x": [0.1, 0.5, 0.9, 1.2], "y": [1.0, 2, 3, 4]}')  # the same numbers
    assert main(["predict", out, "--draws", "10"]) == 0
    data.write_text('{"N": 4, "y": [1, 2, 3, 4], "x": [5, 5, 5, 5]}')
    capsys.readouterr()
    assert main(["predict", out, "--draws", "10"]) == 2
    assert capsys.readouterr().err == (f"error: {data}: the data changed since this fit was "
                                       "saved; fit it again\n")


LABELS = ("data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 3)\n"
          "sample z: int[N] ~ Bernoulli(0.4)\nobserve y ~ Normal(mu * z, 1)\n")


def test_new_data_with_a_discrete_latent_is_a_located_error(tmp_path, capsys):
    # z's draws came from its conditional posterior given the observations of the data it
    # was compiled on: on new data the zeros standing in for y (or the y given) took their
    # place, so a new row's mean was 0.12 where 0.4 E[mu] = 0.95 (z drawn from its prior)
    path = tmp_path / "m.ppl"
    path.write_text(LABELS)
    (tmp_path / "m.json").write_text('{"N": 4, "y": [-0.3, 2.5, 3.1, 0.2]}')
    assert main(["fit", str(path), "--out", str(tmp_path / "o"), "--quiet", "--iter", "50"]) == 0
    capsys.readouterr()
    (tmp_path / "new.json").write_text('{"N": 3}')
    assert main(["predict", str(tmp_path / "o"), "--data", str(tmp_path / "new.json")]) == 2
    err = capsys.readouterr().err
    assert "m.ppl:4:1: error: predict on new data: the discrete latent 'z'" in err
    fit = ppl.compile(LABELS).fit({"N": 4, "y": [-0.3, 2.5, 3.1, 0.2]}, iter=50)
    with pytest.raises(PplError, match="the discrete latent 'z'"):
        fit.predictive(10, data={"N": 3, "y": [5.0, 5.0, 5.0]})
    assert fit.predictive(10)["y"].shape == (10, 4)    # on the fitted data it is the posterior's


GROUPS = """data N: int
data J: int
data g: int[N]
data y: real[N]
sample a: real[J] ~ Normal(0, 1)
observe y ~ Normal(a[g], 0.1)
"""


@pytest.mark.parametrize("g, message", [
    ([-1], "index 'g' holds -1 at g[0]; an index from the data must be non-negative"),
    ([5], "index 'g' holds 5 at g[0], out of range for a dimension of size 3"),
])
def test_index_in_new_data_is_checked_as_in_a_fit(g, message):
    # new data skipped the fit's index checks: g = -1 predicted for the last group (numpy
    # wraps it) and g = 5 was an internal IndexError
    fit = ppl.compile(GROUPS).fit({"J": 3, "g": [0, 1, 2], "y": [-1.0, 0.0, 1.0]}, iter=50)
    with pytest.raises(PplError) as caught:
        fit.predictive(10, data={"J": 3, "g": g})
    assert message in caught.value.message


def test_left_out_observed_values_are_not_checked_against_their_support():
    # zeros stand in for y, outside LogNormal's support: they are what is predicted
    text = "data N: int\ndata y: real[N]\nsample s ~ Exponential(1)\nobserve y ~ LogNormal(0, s)\n"
    fit = ppl.compile(text).fit({"y": [1.0, 2.0]}, iter=50)
    assert fit.predictive(10, data={"N": 3})["y"].shape == (10, 3)


def test_left_out_observed_data_that_a_guide_reads_says_why_it_is_needed():
    # an amortized guide (a VAE's encoder) reads the observed y: it cannot be left out, and
    # 'data 'y' is missing' alone contradicted 'observed data may be left out'
    fit = ppl.compile(AMORTIZED).fit({"N": 5, "y": np.linspace(-1, 1, 5)}, iter=50)
    with pytest.raises(PplError, match="data 'y' is missing") as info:
        fit.predictive(5, data={"N": 3})
    assert info.value.span.line == 3
    assert info.value.hint == ("'y' is observed, but line 8 reads it too: only data that is "
                               "observed and read nowhere else may be left out (it is what is "
                               "drawn)")


def test_prior_predictive_draws_observed_data_that_is_left_out():
    # y is what a prior predictive check draws; it was refused as "data 'y' is missing"
    # unless a placeholder was given (PyMC and NumPyro draw it without one)
    model = ppl.compile("data N: int\ndata x: real[N]\ndata y: real[N]\nsample a ~ Normal(0, 1)\n"
                        "sample s ~ HalfNormal(1)\nobserve y ~ Normal(a * x, s)\n")
    left_out = model.prior_predictive({"N": 3, "x": [1.0, 2.0, 3.0]}, n=5, seed=1)
    given = model.prior_predictive({"N": 3, "x": [1.0, 2.0, 3.0], "y": [0.0] * 3}, n=5, seed=1)
    assert left_out["y"].shape == (5, 3)
    assert all(np.array_equal(left_out[name], given[name]) for name in given)


@pytest.mark.parametrize("text, masses", [
    # masses(draws) -> [n, K] prior masses of the values 1..5 given each draw: the truncated
    # Poisson renormalized over the bounds, given the draw of lam where the rate is a latent
    ("sample k: int<lower=1, upper=5> ~ Poisson(3)\n",
     lambda d: np.broadcast_to(stats.poisson(3).pmf(np.arange(1, 6)), (len(d["k"]), 5))),
    ("sample lam ~ Gamma(2, 1)\nsample k: int<lower=1, upper=5> ~ Poisson(lam)\n",
     lambda d: stats.poisson(d["lam"][:, None]).pmf(np.arange(1, 6))),
], ids=["constant rate", "latent rate"])
def test_prior_predictive_draws_a_truncated_discrete_latent_from_its_truncated_prior(text,
                                                                                     masses):
    # the declared bounds were ignored when drawing from the prior: k ~ Poisson(3) truncated
    # to 1..5 took 0 in 4.9% of the draws and 6 to 11 in 18%, values the model gives no mass
    n = 20_000
    draws = ppl.compile(text).prior_predictive(n=n, seed=0)
    assert draws["k"].dtype == np.int64 and set(np.unique(draws["k"])) <= {1, 2, 3, 4, 5}
    p = masses(draws)
    p = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)
    frequency = np.bincount(draws["k"] - 1, minlength=5) / n
    # each value's frequency within z = 4 standard errors of a proportion from n draws
    np.testing.assert_array_less(np.abs(frequency - p), 4 * np.sqrt(p * (1 - p) / n))


def test_prior_predictive_warns_that_a_factor_of_latents_is_not_followed():
    # with factor -0.5 (mu / 0.1)^2 the model's prior sd of mu is 1 / sqrt(101) = 0.0995;
    # its prior draws kept mu ~ Normal(0, 1), sd 1.00, without a word (PyMC warns so of
    # Potentials)
    model = ppl.compile("data y: real[1]\nsample mu ~ Normal(0, 1)\n"
                        "factor -0.5 * (mu / 0.1) ** 2\nfactor sum(y)\nobserve y ~ Normal(mu, 1)\n")
    with pytest.warns(PplWarning) as caught:
        model.prior_predictive({"y": [0.0]}, n=10)
    assert len(caught) == 1 and caught[0].message.span.line == 3
    assert "they are drawn as if it were absent" in str(caught[0].message)
    without = ppl.compile("data y: real[1]\nsample mu ~ Normal(0, 1)\nfactor sum(y)\n"
                          "observe y ~ Normal(mu, 1)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # a factor of data alone is a constant: no warning
        without.prior_predictive({"y": [0.0]}, n=10)


BOUNDED = ("data N: int\ndata y: real[N]\ndata b: real\n"
           "sample u: real<lower=b> ~ Exponential(0.1)\nobserve y ~ Uniform(0, u)\n")


def test_new_data_that_moves_a_latents_bound_is_a_located_error():
    # the fit's unconstrained draws were reused through the new data's bijector: with b = 7.5
    # in the fit and 0 in the new data, u = b + exp(zeta) had posterior mean 9.4 in the
    # summary and 1.9 in the predictions, and the predictive mean fell from 4.7 to 0.95
    fit = ppl.compile(BOUNDED).fit({"N": 5, "y": [1.0, 4.0, 7.5, 3.0, 6.0], "b": 7.5}, seed=0)
    with pytest.raises(PplError) as caught:
        fit.predictive(100, data={"N": 3, "b": 0.0})
    assert caught.value.span.line == 4
    assert "'u' takes other values at the fit's posterior draws" in caught.value.message
    same_bound = fit.predictive(100, data={"N": 5, "b": 7.5})["y"]
    np.testing.assert_array_equal(same_bound, fit.predictive(100)["y"])
    # a small move is a move: u about 9.4 shifted by 0.001 (1e-4 of it) is no longer the
    # fitted posterior either
    with pytest.raises(PplError, match="takes other values"):
        fit.predictive(100, data={"N": 3, "b": 7.501})


def test_prior_predictive_warns_that_a_param_without_a_distribution_has_no_prior():
    # the draws of m were its default start, 0 +/- 0.1, and y's drawn from them, as if that
    # were m's prior; a param with ~ DIST is drawn from it, without a word
    model = ppl.compile("data N: int\ndata y: real[N]\nparam s: real<lower=0> ~ HalfNormal(1)\n"
                        "param m: real\nparam w: real[2]\nsample z: real[N] ~ Normal(m, s)\n"
                        "observe y ~ Normal(z + sum(w), 1)\n")
    with pytest.warns(PplWarning) as caught:
        model.prior_predictive({"N": 3}, n=10)
    assert len(caught) == 1 and caught[0].message.span.line == 4
    assert "params 'm', 'w' have no distribution, so no prior" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_prior = ppl.compile("param m: real ~ Normal(0, 1)\nobserve 1.0 ~ Normal(m, 1)\n")
        with_prior.prior_predictive(n=5)


def test_a_fits_prior_predictive_draws_the_latents_at_the_fitted_params():
    # a VAE's generated images: z from its prior through the fitted decoder. The model's
    # prior_predictive drew the params too (here b at its default start, 0 +/- 0.1), and the
    # fit had no way to draw from the prior at its own params
    model = ppl.compile("data y: real[50]\nparam b: real\nsample z ~ Normal(0, 1)\n"
                        "observe y ~ Normal(b + z, 1)\n")
    y = 3.0 + np.random.default_rng(0).standard_normal(50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the fitted b is a value: no warning
        fit = model.fit({"y": y.tolist()}, seed=0)
        draws = fit.prior_predictive(20000)
    b = float(fit.params()["b"])
    assert np.all(draws["b"] == b) and draws["y"].shape == (20000, 50)
    # z ~ Normal(0, 1) and each y ~ Normal(b, sqrt 2): means within 4 standard errors
    # (sd / sqrt(n), the 50 columns' mean from 20000 x 50 draws sharing each row's z)
    assert abs(draws["z"].mean()) < 4 / np.sqrt(20000)
    assert abs(draws["y"].mean() - b) < 4 * np.sqrt(1 + 1 / 50) / np.sqrt(20000)
    assert draws["z"].std() == pytest.approx(1.0, abs=4 * np.sqrt(0.5 / 20000))
    # the fit's own stream: the same draws again, and n defaults to the draws option
    np.testing.assert_array_equal(fit.prior_predictive(20000)["z"], draws["z"])
    assert fit.prior_predictive()["z"].shape == (fit.options.draws,)


GUIDED_BOUNDED = ("data N: int\ndata y: real[N]\ndata b: real\n"
                  "sample u: real<lower=b> ~ Normal(8, 1)\nsample z: real[N] ~ Normal(0, 2)\n"
                  "observe y ~ Normal(z + u, 1)\nparam a: real\nparam c: real\n"
                  "guide z ~ Normal(a * y, exp(c))\n")


def test_new_data_that_moves_a_latents_bound_is_refused_after_a_guided_fit():
    # the new-data check was skipped for fits with guide statements: u moved with b without
    # a word (the predictive mean was 8.9 at the fitted b = 7.5, 1.4 at b = 0); with 5 rows
    # z's guided shape is kept, with 3 it changes
    y = [8.1, 9.7, 8.6, 9.3, 8.9]
    fit = ppl.compile(GUIDED_BOUNDED).fit({"N": 5, "y": y, "b": 7.5}, guide="meanfield",
                                          iter=100, seed=0)
    for rows in (5, 3):
        with pytest.raises(PplError) as caught:
            fit.predictive(20, data={"N": rows, "y": y[:rows], "b": 0.0})
        assert caught.value.span.line == 4
        assert "'u' takes other values at the fit's posterior draws" in caught.value.message
        fit.predictive(20, data={"N": rows, "y": y[:rows], "b": 7.5})  # the fitted bound


# ----- the mutation pass over predict.py (session 40, docs/history/trust-log.md) -----

def test_guided_draws_and_the_predictive_noise_are_independent_streams():
    # a guided fit's latents on new data are the fitted guide's, z ~ Normal(a y, exp(c)), and
    # y_rep = z + Normal(0, 1): each y_rep - a y has variance exp(2c) + 1. Drawn from the
    # predictive's own stream, the guide's noise equals y's (variance (exp(c) + 1)^2)
    fit = ppl.compile(AMORTIZED).fit({"N": 20, "y": np.linspace(-3, 3, 20)}, iter=300, seed=0)
    params = fit.params()
    a, c = float(params["a"]), float(params["c"])
    new = np.array([0.0, 1.0, 2.0])
    n = 4000
    residual = fit.predictive(n, data={"N": 3, "y": new})["y"] - a * new
    variance = np.exp(2 * c) + 1
    # 3n independent Normal residuals: the mean's standard error is sqrt(variance / 3n), the
    # sample variance's variance * sqrt(2 / (3n - 1)); 5 of each is the tolerance
    m = residual.size
    assert abs(residual.mean()) < 5 * np.sqrt(variance / m)
    assert abs(residual.var(ddof=1) - variance) < 5 * variance * np.sqrt(2 / (m - 1))


@pytest.mark.parametrize("text, line", [
    # y is read by x's distribution; by the guide's scale
    ("data N: int\ndata y: real[N]\ndata x: real[N]\nsample m ~ Normal(0, 1)\n"
     "observe y ~ Normal(m, 1)\nobserve x ~ Normal(y, 1)\n", 6),
    ("data N: int\ndata y: real[N]\nsample z: real[N] ~ Normal(0, 2)\n"
     "observe y ~ Normal(z, 1)\nparam a: real\nparam c: real\nguide z ~ Normal(a, exp(c * y))\n",
     7),
], ids=["another observe", "a guide's scale"])
def test_observed_data_read_elsewhere_cannot_be_left_out(text, line):
    # left out, zeros would stand in for y where x's distribution or z's guide reads it
    data = {"N": 3, "y": [1.0, 2.0, 3.0], "x": [1.0, 2.0, 3.0]}
    model = ppl.compile(text)
    fit = model.fit({k: v for k, v in data.items() if k in model.ir.data}, iter=50, seed=0)
    with pytest.raises(PplError, match="data 'y' is missing") as caught:
        fit.predictive(5, data={"N": 2})
    assert caught.value.hint.startswith(f"'y' is observed, but line {line} reads it too")


def test_missing_data_that_is_not_observed_is_the_fits_error():
    # X is read, never observed: its error is a fit's, without the hint about observed data
    fit = ppl.compile(REGRESSION).fit(_data(), guide="meanfield", iter=50, seed=0)
    with pytest.raises(PplError, match="data 'X' is missing") as caught:
        fit.predictive(5, data={"N": 3})
    assert caught.value.hint is None


def test_an_observed_size_is_never_left_out():
    # N sizes y and is observed: left out it would stand as a placeholder (0 rows)
    text = ("data N: int\ndata y: real[N]\nsample lam ~ Gamma(2, 1)\nobserve N ~ Poisson(lam)\n"
            "observe y ~ Normal(lam, 1)\n")
    fit = ppl.compile(text).fit({"N": 3, "y": [1.0, 2.0, 3.0]}, iter=50, seed=0)
    with pytest.raises(PplError, match="data 'N' is missing"):
        fit.predictive(5, data={})
    assert fit.predictive(5, data={"N": 2})["y"].shape == (5, 2)


def test_left_out_scalars_predict_exactly_what_the_fitted_data_predicts():
    # k (an int scalar) and x observed only: left out, the draws are fit.predictive's own
    # (the same posterior draws, the same stream), evaluated in one call as there
    text = ("data k: int\ndata x: real\nsample lam ~ Gamma(2, 1)\nobserve k ~ Poisson(lam)\n"
            "observe x ~ Normal(lam, 1)\n")
    fit = ppl.compile(text).fit({"k": 3, "x": 2.5}, iter=100, seed=0)
    left_out, fitted = fit.predictive(200, data={}), fit.predictive(200)
    assert left_out["k"].dtype == np.int64 and left_out["k"].shape == (200,)
    for name in ("k", "x"):
        np.testing.assert_array_equal(left_out[name], fitted[name])


def test_a_size_read_off_the_new_data_is_its_value_in_expressions():
    # N, given by X's length only, is read as a value too (X / N): as if given
    text = ("data N: int\ndata X: real[N]\ndata y: real[N]\nsample m ~ Normal(0, 1)\n"
            "observe y ~ Normal(m * X / N, 0.01)\n")
    fit = ppl.compile(text).fit({"N": 3, "X": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, iter=100,
                                seed=0)
    read_off = fit.predictive(50, data={"X": [4.0, 4.0]})["y"]
    np.testing.assert_array_equal(read_off, fit.predictive(50, data={"N": 2, "X": [4.0, 4.0]})["y"])
    assert np.all(np.isfinite(read_off))


def test_prior_predictive_warns_once_of_several_factors_of_latents():
    model = ppl.compile("sample mu ~ Normal(0, 1)\nfactor -mu ** 2\nfactor -mu ** 4\n"
                        "observe 1.0 ~ Normal(mu, 1)\n")
    with pytest.warns(PplWarning) as caught:
        model.prior_predictive(n=10)
    assert len(caught) == 1 and caught[0].message.span.line == 2
    assert caught[0].filename == __file__      # the caller's line, not ppl's


def test_a_bound_that_moves_at_some_draws_only_is_refused():
    # u's bound maximum(v, b) moves with b only at the draws where v < b: the check reads
    # SUPPORT_CHECK_DRAWS draws, and at this seed the first draw alone has v above each new b
    # (one draw let all three through)
    text = ("data N: int\ndata y: real[N]\ndata b: real\nsample v ~ Normal(0, 1)\n"
            "sample u: real<lower=maximum(v, b)> ~ Normal(0, 3)\nobserve y ~ Normal(u, 1)\n")
    fit = ppl.compile(text).fit({"N": 3, "y": [2.0, 3.0, 2.5], "b": -10.0}, seed=4)
    assert fit.predictive(100, data={"N": 2, "b": -10.0})["y"].shape == (100, 2)
    for b in (-0.5, 0.0, 0.5):
        with pytest.raises(PplError, match="'u' takes other values") as caught:
            fit.predictive(100, data={"N": 2, "b": b})
        assert caught.value.span.line == 5
