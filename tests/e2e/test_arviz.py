"""ArviZ and pandas from the API: fit.to_arviz() groups with az.loo, az.plot_ppc and az.compare;
DataFrames and Series as data; Summary.to_pandas()."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import ppl

matplotlib.use("Agg")
az = pytest.importorskip("arviz")  # the test extra installs it: never skipped in CI
pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = ROOT / "models" / "linear_regression.ppl"
# The same data with an intercept only: a worse model for az.compare to rank second.
INTERCEPT_ONLY = """\
data N: int
data y: real[N]
sample alpha ~ Normal(0, 10)
sample sigma ~ HalfNormal(1)
observe y ~ Normal(alpha, sigma)
"""


@pytest.fixture(scope="module")
def data():
    return json.loads(REGRESSION.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def idata(data):
    return ppl.load(REGRESSION).fit(data, iter=2000, draws=400).to_arviz()


def test_to_arviz_has_all_four_groups(idata, data):
    assert set(idata.groups()) == {"posterior", "posterior_predictive", "log_likelihood",
                                   "observed_data"}
    n = len(data["y"])
    assert idata.log_likelihood["y"].shape == (1, 400, n)
    assert idata.posterior_predictive["y"].shape == (1, 400, n)
    np.testing.assert_array_equal(idata.observed_data["y"].values, data["y"])
    assert np.all(np.isfinite(idata.log_likelihood["y"].values))


def test_loo_works(idata, data):
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == len(data["y"])


def test_plot_ppc_works(idata):
    axes = az.plot_ppc(idata, num_pp_samples=20)
    assert np.size(axes) >= 1
    matplotlib.pyplot.close("all")


def test_compare_ranks_the_true_model_first(idata, data):
    worse = ppl.compile(INTERCEPT_ONLY).fit({"N": data["N"], "y": data["y"]},
                                            iter=2000, draws=400).to_arviz()
    table = az.compare({"regression": idata, "intercept_only": worse})
    assert list(table.index) == ["regression", "intercept_only"]


def test_to_arviz_without_predictive(data):
    fit = ppl.load(REGRESSION).fit(data, iter=200, draws=50)
    assert "posterior_predictive" not in fit.to_arviz(predictive=False).groups()


def test_dataframe_as_data_gives_the_same_fit_as_a_dict():
    frame = pd.DataFrame({"x": [0.1, 0.4, 1.2, 2.0, 2.2], "y": [1.0, 1.3, 2.4, 3.1, 3.0]})
    model = ppl.compile("data N: int\ndata x: real[N]\ndata y: real[N]\nsample a ~ Normal(0, 5)\n"
                        "sample b ~ Normal(0, 5)\nsample s ~ HalfNormal(1)\n"
                        "observe y ~ Normal(a + b * x, s)\n")
    from_frame = model.fit(frame, iter=300).summary().to_dict()
    from_dict = model.fit({"x": frame["x"].tolist(), "y": frame["y"].tolist()},
                          iter=300).summary().to_dict()
    assert from_frame == from_dict
    # Series and a DataFrame (a matrix) inside a dict
    regression = ppl.load(REGRESSION)
    raw = json.loads(REGRESSION.with_suffix(".json").read_text())
    mixed = {"y": pd.Series(raw["y"]), "X": pd.DataFrame(raw["X"])}
    assert (regression.fit(mixed, iter=300).summary().to_dict()
            == regression.fit({"y": raw["y"], "X": raw["X"]}, iter=300).summary().to_dict())


def test_a_pandas_index_is_data_as_a_series_is():
    # df.index (a time or a dose column made the index) was refused as 'a Index'
    from ppl.data import load_data
    model = ppl.compile("data t: real[3]\n")
    values, _ = load_data(model.ir, {"t": pd.Index([0.5, 1.0, 2.0])})
    assert values["t"].tolist() == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_a_nullable_columns_values_are_data_as_the_column_is(dtype):
    # df["t"].values of a column of pandas' nullable dtypes (convert_dtypes()) is an
    # ExtensionArray: it was refused as 'a FloatingArray', and its missing value unnamed
    from ppl.data import load_data
    model = ppl.compile("data t: real[3]\n")
    column = pd.Series([1, 2, 3], dtype=dtype)
    values, _ = load_data(model.ir, {"t": column.values})
    assert values["t"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ppl.PplError, match=r"data 't' must be finite; found nan at t\[1\]"):
        load_data(model.ir, {"t": pd.array([1, None, 3], dtype=dtype)})


def test_non_numeric_dataframe_column_is_a_data_error():
    model = ppl.compile("data y: real[2]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n")
    with pytest.raises(ppl.PplError,
                       match=r"data 'y' must hold numbers; found the string 'a' at y\[0\]"):
        model.fit(pd.DataFrame({"y": ["a", "b"]}), iter=10)


def test_summary_to_pandas():
    fit = ppl.compile("sample mu ~ Normal(1, 2)\n").fit(iter=300, draws=100)
    frame = fit.summary().to_pandas()
    assert list(frame.columns) == ["mean", "sd", "5%", "50%", "95%"]
    assert list(frame.index) == ["mu"]
    assert frame.loc["mu", "mean"] == fit.summary().to_dict()["mu"]["mean"]


CONJUGATE = """\
data N: int
data y: real[N]
sample mu ~ Normal(0, 3)
observe y ~ Normal(mu, 1.5)
"""


def test_loo_matches_the_exact_leave_one_out_of_a_conjugate_model():
    from scipy import stats
    y = np.random.default_rng(1).normal(1.0, 1.5, 20)
    y[3] = 6.0   # an outlier, so the points' terms differ
    exact = 0.0  # p(y_i | y_-i) = Normal(mean_-i, sqrt(1.5^2 + var_-i)), closed form
    for i in range(len(y)):
        rest = np.delete(y, i)
        precision = 1 / 3 ** 2 + len(rest) / 1.5 ** 2
        exact += stats.norm.logpdf(y[i], rest.sum() / 1.5 ** 2 / precision,
                                   np.sqrt(1.5 ** 2 + 1 / precision))
    fit = ppl.compile(CONJUGATE).fit({"N": 20, "y": y}, guide="meanfield", draws=4000)
    loo = az.loo(fit.to_arviz(predictive=False))
    # elpd_loo - exact over seeds 0-3 at 4000 draws: 0.010 to 0.030 (sd 0.009; iid exact
    # posterior draws: -0.007 to 0.004); 0.1 is about z = 4 on the larger spread of 1000
    # draws (0.01 to 0.075). The SE az.loo reports (4.8) is that of the sum over points.
    assert abs(loo.elpd_loo - exact) < 0.1 < loo.se


def test_a_model_with_discrete_latents_has_no_log_likelihood_and_says_why():
    text = ("data N: int\ndata y: real[N]\nsample mu: real[2] ~ Normal(0, 5)\n"
            "sample z: int[N] ~ Bernoulli(0.5)\nobserve y ~ Normal(mu[z], 1)\n")
    fit = ppl.compile(text).fit({"N": 4, "y": [-2.0, -1.5, 2.0, 2.5]}, iter=300, draws=50)
    from ppl.errors import PplWarning
    with pytest.warns(PplWarning, match=r"no log_likelihood group, so az.loo, az.waic "
                      r"and az.compare cannot run on it: the model's discrete latents \(z\)"):
        idata = fit.to_arviz()
    assert "log_likelihood" not in idata.groups()
    assert idata.posterior["z"].shape == (1, 50, 4)


def test_a_model_without_an_observe_has_no_log_likelihood_and_says_why():
    # az.loo said only 'log likelihood not found in inference data object'
    text = "data y: real[3]\nsample mu ~ Normal(0, 5)\nfactor -0.5 * (y - mu) ** 2\n"
    fit = ppl.compile(text).fit({"y": [0.5, 1.0, 2.0]}, guide="meanfield", iter=200,
                               draws=50)
    from ppl.errors import PplWarning
    with pytest.warns(PplWarning, match=r"no log_likelihood group, so az.loo, az.waic and "
                      r"az.compare cannot run on it: the model has no observe statement"):
        idata = fit.to_arviz()
    assert "log_likelihood" not in idata.groups()


def test_a_scalar_observation_has_the_same_dims_in_all_three_groups():
    # ArviZ gives a scalar's observed_data a dim of length 1; log_likelihood and
    # posterior_predictive had none, and az.loo_pit refused the observation
    text = ("data y: real[3]\nsample mu ~ Normal(0, 5)\nobserve y[0] ~ Normal(mu, 1)\n"
            "observe y[1:] ~ Normal(mu, 2)\n")
    fit = ppl.compile(text).fit({"y": [0.5, 1.0, 2.0]}, guide="meanfield", iter=200,
                               draws=50)
    idata = fit.to_arviz()
    for group in ("observed_data", "log_likelihood", "posterior_predictive"):
        assert idata[group]["y[0]"].dims[-1:] == ("y[0]_dim_0",)
        assert idata[group]["y[1:]"].dims[-1:] == ("y[1:]_dim_0",)
    assert idata.log_likelihood["y[0]"].shape == (1, 50, 1)
    assert np.all(np.isfinite(az.loo_pit(idata, y="y[0]")))
    np.testing.assert_array_equal(idata.log_likelihood["y[0]"].values[0, :, 0],
                                  fit.compiled.pointwise_log_likelihood(
                                      fit._posterior_zeta(50))["y[0]"])
