"""Tests for ppl.data: reading every input form, dims, and one test per data error class.

Messages are asserted exactly (``error.message``); the span is the ``data`` statement for
load errors, the observed expression or index item for ``validate_observed`` errors.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import ppl
from ppl.data import load_data, validate_observed
from ppl.errors import PplError
from ppl.frontend.check import check
from ppl.frontend.parse import parse

REGRESSION = """\
data N: int
data K: int
data X: real[N, K]
data y: real[N]
data sigma: real<lower=0>
"""


def model(text):
    return check(parse(text, "model.ppl"))


def load(text, data):
    return load_data(model(text), data)


def load_error(text, data) -> PplError:
    with pytest.raises(PplError) as info:
        load(text, data)
    return info.value


def validate(text, data):
    """The whole data pipeline, as the API runs it."""
    program = parse(text, "model.ppl")
    values, dims = load_data(check(program), data)
    validate_observed(check(program, dims), values, dims)
    return values, dims


def validate_error(text, data) -> PplError:
    with pytest.raises(PplError) as info:
        validate(text, data)
    return info.value


GOOD = {"N": 3, "K": 2, "X": [[1, 2], [3, 4], [5, 6]], "y": [0.5, 1, 2], "sigma": 1}


# ----- reading ------------------------------------------------------------------------------

def test_dict_values_become_int64_and_float64_arrays():
    values, dims = load(REGRESSION, GOOD)
    assert list(values) == ["N", "K", "X", "y", "sigma"]
    assert values["N"].dtype == np.int64 and values["X"].dtype == np.float64
    assert values["sigma"].shape == () and values["X"].shape == (3, 2)
    assert dims == {"N": 3, "K": 2}


def test_int_valued_float_is_accepted_for_int():
    values, _ = load("data n: int[2]\n", {"n": [3.0, 4]})
    assert values["n"].dtype == np.int64
    np.testing.assert_array_equal(values["n"], [3, 4])


def test_numpy_arrays_and_scalars_in_a_dict():
    values, _ = load(REGRESSION, {**GOOD, "X": np.ones((3, 2), dtype=np.float32),
                                  "N": np.int32(3), "sigma": np.float64(2.0)})
    assert values["X"].dtype == np.float64 and int(values["N"]) == 3


def test_json_file(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(GOOD))
    values, dims = load(REGRESSION, path)
    assert dims == {"N": 3, "K": 2}
    np.testing.assert_array_equal(values["y"], [0.5, 1, 2])


def test_json_path_given_as_str(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(GOOD))
    assert load(REGRESSION, str(path))[1] == {"N": 3, "K": 2}


def test_csv_file_columns_are_vectors_and_dims_come_from_them(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y,count\n0.5,1\n1.5,2\n2.5,0\n")
    values, dims = load("data N: int\ndata y: real[N]\ndata count: int[N]\n", path)
    assert dims == {"N": 3}
    np.testing.assert_array_equal(values["count"], [1, 2, 0])
    assert values["count"].dtype == np.int64


def test_npz_file(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in GOOD.items()})
    values, _ = load(REGRESSION, path)
    np.testing.assert_array_equal(values["X"], GOOD["X"])


def test_pandas_dataframe_columns_by_name_and_series_in_a_dict():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"y": [0.5, 1.0, 2.0], "other": [1, 2, 3]}, index=[7, 3, 5])
    with pytest.warns(UserWarning, match="other"):
        values, dims = load("data N: int\ndata y: real[N]\n", frame)
    assert values["y"].tolist() == [0.5, 1.0, 2.0] and dims == {"N": 3}
    values, dims = load(REGRESSION, {"X": frame[["other", "y"]], "y": frame["y"], "sigma": 1})
    assert values["X"].tolist() == [[1, 0.5], [2, 1], [3, 2]] and dims == {"N": 3, "K": 2}


def test_pandas_dataframe_with_two_columns_of_one_name_is_refused():
    # frame["y"] is then both columns: "data 'y' must have shape [N]; found [2, 2]"
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["y", "y"])
    assert load_error("data N: int\ndata y: real[N]\n", frame).message == \
        "the DataFrame: column 'y' appears twice"


@pytest.mark.parametrize("columns, label", [([0, 1], "0"),
                                            ([("y", "a"), ("y", "b")], "('y', 'a')")])
def test_pandas_dataframe_column_label_that_is_not_a_str_is_refused(columns, label):
    # the labels were made str: "data 'y' is missing" beside undeclared names '0', '1'
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]],
                         columns=pd.MultiIndex.from_tuples(columns) if isinstance(columns[0], tuple)
                         else columns)
    error = load_error("data N: int\ndata y: real[N]\n", frame)
    assert error.message.startswith(f"data: the DataFrame's column label {label} (of type ")
    assert error.message.endswith(") is not a name; data names are strings, as in a JSON file")


def test_no_data_for_a_model_without_data():
    assert load("sample mu ~ Normal(0, 1)\n", None) == ({}, {})


def test_extra_names_are_a_warning_naming_them():
    with pytest.warns(UserWarning, match="does not declare: extra, other"):
        load(REGRESSION, {**GOOD, "extra": 1, "other": [2]})


def test_a_value_for_a_latent_is_a_warning_that_it_is_ignored():
    # it said "names the model does not declare: mu", of a name the model declares
    text = REGRESSION + "sample mu ~ Normal(0, 1)\nlet shift = 2 * mu\n"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load(text, {**GOOD, "mu": 0.5, "shift": 1.0})
    assert [w.message.message for w in record] == [
        f"the data gives a value for '{name}', a {kind} of the model: it is ignored, not fixed "
        "to that value" for name, kind in (("mu", "latent"), ("shift", "let"))]
    assert record[0].message.span.line == 6


@pytest.mark.parametrize("name, shown", [
    ("y\u200b", "'y\\u200b'"), ("\x1b[31m", "'\\x1b[31m'"), ("", "''"),
    ("x" * 100_000, "x" * 40 + "..."), ("a b" * 30, repr("a b" * 30)[:41] + "'...")])
def test_extra_names_are_shown_quoted_when_not_plain_and_cut_when_long(name, shown):
    with pytest.warns(UserWarning) as record:
        load(REGRESSION, {**GOOD, name: 1})
    assert str(record[0].message) == f"the data has names the model does not declare: {shown}"


def test_many_extra_names_are_counted_not_listed():
    with pytest.warns(UserWarning, match="declare: e0, e1, .*, e9 and 5 more$"):
        load(REGRESSION, {**GOOD, **{f"e{i}": 1 for i in range(15)}})


def test_no_warning_without_extra_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(REGRESSION, GOOD)


# ----- dims ---------------------------------------------------------------------------------

def test_missing_dims_are_read_off_the_arrays_that_use_them():
    data = {k: v for k, v in GOOD.items() if k not in ("N", "K")}
    values, dims = load(REGRESSION, data)
    assert dims == {"N": 3, "K": 2}
    assert values["N"].dtype == np.int64 and int(values["K"]) == 2


def test_arrays_giving_a_missing_dim_must_agree():
    data = {k: v for k, v in GOOD.items() if k != "N"}
    error = load_error(REGRESSION, {**data, "y": [1.0, 2.0]})
    assert error.message == "data 'y' must have shape [N=3]; found [2]"
    assert error.hint == "'N' is not in the data; it was read as 3 from the shape of 'X'"
    assert error.span.line == 4


def test_symbolic_dim_must_equal_the_int_scalar():
    error = load_error(REGRESSION, {**GOOD, "N": 4})
    assert error.message == "data 'X' must have shape [N=4, K=2]; found [3, 2]"


def test_dim_that_is_a_let_must_match():
    # real[Kc] with Kc = K - 1 was unchecked: x of 2 values under K = 5 was fitted as if it
    # had 4 (a log joint of -9.59 against scipy's -5.26)
    text = ("data K: int\nlet Kc = K - 1\ndata x: real[Kc]\nsample m ~ Normal(0, 1)\n"
            "observe x ~ Normal(m, 1)\n")
    error = validate_error(text, {"K": 5, "x": [1.0, 2.0]})
    assert error.message == "data 'x' must have shape [4]; found [2]"
    assert error.span.line == 3
    validate(text, {"K": 3, "x": [1.0, 2.0]})


def test_literal_dim_must_match():
    error = load_error("data x: real[3]\n", {"x": [1, 2]})
    assert error.message == "data 'x' must have shape [3]; found [2]"


ONE_ROW = "data N: int\ndata y: int[N]\n"


def test_an_array_of_one_element_from_the_data_is_read_and_a_number_for_it_has_a_hint():
    # N = 1 from the data: y as [3] is an int[1], as CmdStan reads it
    values, dims = load(ONE_ROW, {"N": 1, "y": [3]})
    assert dims == {"N": 1} and values["y"].tolist() == [3]
    assert load("data y: real[1]\n", {"y": [2.5]})[0]["y"].tolist() == [2.5]
    # a number for it is refused, as CmdStan refuses it; the message alone ('must have shape
    # [N=1]; found scalar') did not say that [3] is what is meant
    for text, data in [(ONE_ROW, {"N": 1, "y": 3}), ("data y: real[1]\n", {"y": 2.5})]:
        error = load_error(text, data)
        assert error.message.endswith("; found scalar")
        assert error.hint == "an array of one element is given as an array: \"y\": [x] in " \
                             "JSON, not x"
    assert load_error(ONE_ROW, {"N": 2, "y": 3}).hint is None


def test_rank_must_match():
    error = load_error(REGRESSION, {**GOOD, "y": [[0.5], [1], [2]]})
    assert error.message == "data 'y' must have shape [N=3]; found [3, 1]"


def test_empty_list_is_an_array_with_no_rows(tmp_path):
    # JSON writes a [0, K] matrix as [] (np.zeros((0, 2)).tolist(); Stan reads it so): it
    # was refused, "must have shape [N=0, K=2]; found [0]"
    path = tmp_path / "d.json"
    path.write_text('{"K": 2, "X": [], "y": [], "sigma": 1}')
    values, dims = load(REGRESSION, path)
    assert values["X"].shape == (0, 2) and dims["N"] == 0
    # it has no rows: a leading size that is not 0, or unknown other sizes, stay an error
    assert load_error("data X: real[2, 3]\n", {"X": []}).message == \
        "data 'X' must have shape [2, 3]; found [0]"
    assert load_error(REGRESSION, {"X": [], "y": [], "sigma": 1}).message == \
        "data 'X' must have shape [N, K]; found [0]"


def test_scalar_given_as_list_is_wrong_shape():
    error = load_error(REGRESSION, {**GOOD, "sigma": [1.0]})
    assert error.message == "data 'sigma' must have shape scalar; found [1]"


# ----- errors, one class each ---------------------------------------------------------------

def test_missing_name():
    data = {k: v for k, v in GOOD.items() if k != "sigma"}
    error = load_error(REGRESSION, data)
    assert error.message == "data 'sigma' is missing"
    assert (error.span.line, error.span.col) == (5, 1)


def test_missing_scalar_from_a_csv_file_says_csv_holds_columns(tmp_path):
    # a newcomer's varying-intercept model with its rows in a CSV: J cannot be a column
    path = tmp_path / "rows.csv"
    path.write_text("g,y\n0,1.5\n1,2.5\n")
    error = load_error("data N: int\ndata J: int\ndata g: int[N]\ndata y: real[N]\n",
                       str(path))
    assert error.message == "data 'J' is missing"
    assert error.hint.startswith("a CSV file holds one column per vector, not scalars")
    assert load_error(REGRESSION, {k: v for k, v in GOOD.items() if k != "sigma"}).hint is None


@pytest.mark.parametrize("beside, found", [
    (None, "there is no m.json beside the model"),
    ("folder", "m.json is a folder, not a file"),
    ("broken link", "m.json is a link to a file that does not exist")])
def test_missing_data_when_none_was_given_says_where_it_was_looked_for(tmp_path, monkeypatch,
                                                                       beside, found):
    # 'data J is missing' and nothing more, though m.json was there: a folder, a broken link
    monkeypatch.chdir(tmp_path)
    Path("m.ppl").write_text("data J: int\nsample m ~ Normal(0, 1)\n")
    if beside == "folder":
        Path("m.json").mkdir()
    elif beside == "broken link":
        Path("m.json").symlink_to("nowhere.json")
    with pytest.raises(PplError) as info:
        ppl.load("m.ppl").fit()
    assert (info.value.message, info.value.hint) == (
        "data 'J' is missing",
        f"no data was given, and {found}: give it with --data FILE (from Python, "
        "model.fit(data)), or save it beside the model as m.json")
    with pytest.raises(PplError) as info:
        ppl.compile("data J: int\nsample m ~ Normal(0, 1)\n").fit()
    assert info.value.hint == "no data was given: pass it to model.fit(data)"


def test_missing_int_scalar_not_used_as_a_dim():
    error = load_error("data n: int\n", {})
    assert error.message == "data 'n' is missing"


@pytest.mark.parametrize("raw, found", [
    ([1, 2.5, 3], "2.5 at n[1]"),
    # 2**63 as a float is one past int64's largest: its cast would wrap to -2**63, silently
    ([1, 2.0 ** 63, 3], "9.223372036854776e+18 at n[1]"),
    (np.array([1.0, 3.0, 2.0 ** 63]), "9.223372036854776e+18 at n[2]"),
])
def test_float_where_int_is_declared(raw, found):
    error = load_error("data n: int[3]\n", {"n": raw})
    assert error.message == f"data 'n' is declared int; found {found}"


def test_big_int_beside_a_float_keeps_its_digits(tmp_path):
    # numpy makes [3.0, 2**53 + 1] a float64 array: k[1] was read as 2**53, silently
    path = tmp_path / "d.csv"
    path.write_text("k\n3.0\n9007199254740993\n")
    values, _ = load("data N: int\ndata k: int[N]\n", path)
    assert values["k"].dtype == np.int64 and values["k"].tolist() == [3, 2 ** 53 + 1]
    values, _ = load("data k: int[2, 2]\n", {"k": [[1.0, -(2 ** 60) - 1], [2, 3]]})
    assert values["k"].tolist() == [[1, -(2 ** 60) - 1], [2, 3]]


def test_float_where_int_scalar_is_declared():
    assert load_error("data n: int\n", {"n": 2.5}).message == "data 'n' is declared int; found 2.5"


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_small_floats_for_an_int_load_without_a_warning(dtype):
    # float16 overflowed comparing with 2**63: "ppl: warning: overflow encountered in cast"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, dims = load("data n: int\ndata k: int[2]\n",
                            {"n": np.array(3, dtype), "k": np.array([1, 2], dtype)})
    assert dims == {"n": 3} and values["k"].tolist() == [1, 2]


@pytest.mark.parametrize("raw,found", [
    ("abc", "the string 'abc'"),
    (True, "the boolean true"),
    ([1, False], "the boolean false at x[1]"),
    ([1, None], "null at x[1]"),
    ([[1, 2], [3]], "a ragged nested list (x[0] is [2] but x[1] is [1])"),
    (np.array(["a", "b"]), "the string 'a' at x[0]"),
    (np.array([1.5, "b"], dtype=object), "the string 'b' at x[1]"),   # a pandas str column
    (np.array([[1.0, 2.0], None], dtype=object), "null at x[1]"),
    (np.array([True, False]), "an array of booleans"),
    ({"a": 1}, "an object"),
    (Ellipsis, "an ellipsis"),    # its article: a pandas Index had been 'a Index'
])
def test_non_numbers(raw, found):
    error = load_error("data x: real[2]\n", {"x": raw})
    assert error.message == f"data 'x' must hold numbers; found {found}"


@pytest.mark.parametrize("raw", [np.array([True, False]), [1, False], True])
def test_booleans_get_the_hint_to_pass_them_as_ints(raw):
    # PyMC takes observed=(df.x > 0); ppl, as Stan, reads 0/1 ints: the error said what it
    # found and not what to write instead
    error = load_error("data x: int[2]\n", {"x": raw})
    assert error.hint == "give 0/1 ints for a boolean: np.asarray(x, dtype=int), or 0 and 1 " \
                         "for false and true in a JSON file"


def test_an_object_array_of_numbers_is_numbers():
    # a pandas column of dtype object holding numbers was refused as 'an array of object'
    values, _ = load("data x: real[2]\ndata k: int[2]\n",
                     {"x": np.array([1.5, 2], dtype=object), "k": np.array([3, 2 ** 40], object)})
    assert values["x"].dtype == np.float64 and values["x"].tolist() == [1.5, 2.0]
    assert values["k"].dtype == np.int64 and values["k"].tolist() == [3, 2 ** 40]


@pytest.mark.parametrize("bad,found", [(float("nan"), "nan"), (float("inf"), "inf"),
                                       (-float("inf"), "-inf")])
def test_not_finite(bad, found):
    error = load_error("data y: real[4]\n", {"y": [0, 1, 2, bad]})
    assert error.message == f"data 'y' must be finite; found {found} at y[3]"
    # a NaN is most often a missing value, which PyMC would impute
    assert (error.hint is not None and error.hint.startswith(
        "a missing value is not imputed: drop its rows")) is (found == "nan")


def test_json_nan_token_is_not_finite(tmp_path):
    # Python's json reads the non-standard NaN token; it is then reported like any NaN.
    path = tmp_path / "data.json"
    path.write_text('{"y": [[0, 1], [NaN, 2]]}')
    error = load_error("data y: real[2, 2]\n", path)
    assert error.message == "data 'y' must be finite; found nan at y[1,0]"


def test_json_nan_as_a_string_is_not_a_number(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"y": [0, "NaN"]}')
    assert load_error("data y: real[2]\n", path).message == (
        "data 'y' must hold numbers; found the string 'NaN' at y[1]")


def test_below_lower_bound():
    error = load_error("data sigma: real<lower=0>[3]\n", {"sigma": [1, 2, -1.5]})
    assert error.message == "data 'sigma' must be >= 0; found -1.5 at sigma[2]"


def test_above_upper_bound():
    error = load_error("data p: real<lower=0, upper=1>\n", {"p": 1.25})
    assert error.message == "data 'p' must be <= 1; found 1.25 at p"


def test_bound_from_other_data_shows_its_value():
    text = "data lo: real[2]\ndata x: real<lower=lo>[2]\n"
    error = load_error(text, {"lo": [0, 5], "x": [1, 4]})
    assert error.message == "data 'x' must be >= lo (= 5); found 4 at x[1]"


@pytest.mark.parametrize("lo", [[0, 1, 2], [0, 5, 2]])
def test_a_bound_with_more_elements_than_its_data_is_refused(lo):
    # [N] and [K] are checked when the sizes are known: at N = 1, K = 3, y >= lo would be
    # 3 comparisons, and a failing one an IndexError (load_data comes before the concrete
    # check, which refuses the shapes too)
    text = "data N: int\ndata K: int\ndata lo: real[K]\ndata y: real<lower=lo>[N]\n"
    error = load_error(text, {"N": 1, "K": 3, "lo": lo, "y": [3]})
    assert error.message == "shapes of data 'y' and its bound do not match: [1] and [3]"
    assert (error.span.line, error.span.col) == (4, 1)


def test_bounds_are_inclusive():
    load("data p: real<lower=0, upper=1>[2]\n", {"p": [0, 1]})


# ----- validate_observed: supports and index ranges -----------------------------------------

@pytest.mark.parametrize("text,data,message", [
    ("data y: int[3]\nobserve y ~ Poisson(2.5)\n", {"y": [1, -1, 2]},
     "observed value -1 at y[1] of 'y' is outside the support {0, 1, ...} of the distribution"),
    ("data y: int[3]\nobserve y ~ Bernoulli(0.5)\n", {"y": [0, 1, 2]},
     "observed value 2 at y[2] of 'y' is outside the support {0, 1} of the distribution"),
    ("data y: real[2]\nobserve y ~ Poisson(2.5)\n", {"y": [1.5, 1]},
     "observed value 1.5 at y[0] of 'y' is outside the support {0, 1, ...} of the distribution"),
    ("data n: int[2]\ndata k: int[2]\nobserve k ~ Binomial(n, 0.5)\n", {"n": [3, 4], "k": [1, 5]},
     "observed value 5 at k[1] of 'k' is outside the support {0..4} of the distribution"),
    ("data p: real[3]\ndata k: int\nobserve k ~ Categorical(p)\n",
     {"p": [0.2, 0.3, 0.5], "k": 3},
     "observed value 3 at k of 'k' is outside the support {0..2} of the distribution"),
    ("data y: real[2]\nobserve y ~ Exponential(1)\n", {"y": [1, -2]},
     "observed value -2 at y[1] of 'y' is outside the support [0, inf) of the distribution"),
    ("data y: int[3]\nobserve y[1:] ~ Poisson(1)\n", {"y": [-5, 1, -1]},
     "observed value -1 at (y[1:])[1] of 'y[1:]' is outside the support {0, 1, ...} of the "
     "distribution"),
    # a vector's support is of the row: its first element was named alone ('observed value
    # 1 at y[1,0]'), a value inside the support
    ("data n: int[2]\ndata y: int[2, 3]\nobserve y ~ Multinomial(n, [0.2, 0.3, 0.5])\n",
     {"n": [5, 4], "y": [[1, 2, 2], [1, 1, 1]]},
     "observed value [1, 1, 1] at y[1] of 'y' is outside the support counts summing to 4 of "
     "the distribution"),
    ("data p: real[8]\ndata y: int[8]\nobserve y ~ Multinomial(9, p)\n",
     {"p": [0.125] * 8, "y": [1, 1, 1, 1, 1, 1, 1, 1]},
     "observed value [1, 1, 1, 1, 1, 1, ...] at y of 'y' is outside the support counts "
     "summing to 9 of the distribution"),
])
def test_observed_value_outside_support(text, data, message):
    error = validate_error(text, data)
    assert error.message == message
    assert error.span.line == text.count("\n")  # the observe statement, the last line


def test_bad_data_parameter_is_blamed_before_the_observed_value():
    # a Binomial n = -3 from data was reported as "observed value 0 ... outside the support
    # {0..-3}", blaming the count for its parameter
    text = "data n: int\ndata y: int\nsample p ~ Beta(1, 1)\nobserve y ~ Binomial(n, p)\n"
    error = validate_error(text, {"n": -3, "y": 0})
    assert error.message == "parameter 'n' of Binomial must be {0, 1, ...}; found -3"


def test_support_that_depends_on_latents_is_not_checked():
    # the latent end needs a declared bound (issue 9); the data end is still not checked here
    text = ("data y: real\nsample lo: real<upper=-1> ~ Normal(0, 1)\n"
            "observe y ~ Uniform(lo, 1)\n")
    validate(text, {"y": 50.0})


def test_observed_data_let_is_checked():
    text = "data y: int[2]\nlet k = y - 1\nobserve k ~ Poisson(1)\n"
    error = validate_error(text, {"y": [1, 0]})
    assert error.message == ("observed value -1 at k[1] of 'k' is outside the support "
                             "{0, 1, ...} of the distribution")


@pytest.mark.parametrize("g,found", [([0, 3, 1], "3 at g[1]")])
def test_index_out_of_range(g, found):
    text = "data g: int[3]\nsample a: real[3] ~ Normal(0, 1)\nlet b = a[g]\n"
    error = validate_error(text, {"g": g})
    assert error.message == (f"index 'g' holds {found}, out of range for a dimension of size 3 "
                             "(indexing is 0-based: 0 to 2)")
    assert (error.span.line, error.span.col) == (3, 11)


@pytest.mark.parametrize("g", [[-3, -1, 2], [0, -4, 1]])
def test_negative_index_from_data_is_an_error(g):
    # LANGUAGE.md v2: numpy would count it from the end; an index from data must be >= 0
    text = "data g: int[3]\nsample a: real[3] ~ Normal(0, 1)\nlet b = a[g]\n"
    error = validate_error(text, {"g": g})
    bad = next(i for i, v in enumerate(g) if v < 0)
    assert error.message == (f"index 'g' holds {g[bad]} at g[{bad}]; an index from the data must "
                             "be non-negative (numpy would silently count it from the end)")


def test_negative_literal_index_still_counts_from_the_end():
    validate("data x: real[3]\nlet b = x[-1]\n", {"x": [1.0, 2.0, 3.0]})


def test_index_out_of_range_in_a_data_let_is_found_before_it_is_computed():
    text = "data x: real[2]\ndata g: int[2]\nlet z = x[g] * 2\n"
    error = validate_error(text, {"x": [1, 2], "g": [0, 2]})
    assert error.message == ("index 'g' holds 2 at g[1], out of range for a dimension of size 2 "
                             "(indexing is 0-based: 0 to 1)")


def test_scalar_index_computed_from_data_is_checked():
    # an int scalar data index is range-checked by the checker itself; a computed one here
    text = "data x: real[2]\ndata g: int[2]\nlet z = x[sum(g)]\n"
    error = validate_error(text, {"x": [1, 2], "g": [1, 1]})
    assert error.message == ("index 'sum(g)' holds 2 at sum(g), out of range for a dimension "
                             "of size 2 (indexing is 0-based: 0 to 1)")


def test_inner_index_is_checked_before_outer():
    text = "data x: real[3]\ndata g: int[2]\ndata h: int[2]\nlet z = x[g[h]]\n"
    error = validate_error(text, {"x": [1, 2, 3], "g": [0, 1], "h": [0, 5]})
    assert error.message == ("index 'h' holds 5 at h[1], out of range for a dimension of size 2 "
                             "(indexing is 0-based: 0 to 1)")


# ----- files --------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    error = load_error(REGRESSION, path)
    assert error.message == f"{path}: no such data file"
    assert error.span is None


def test_bad_json_reports_the_line(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"N": 3,\n "K": }\n')
    assert load_error(REGRESSION, path).message == (
        f"{path}: invalid JSON on line 2, column 7: Expecting value")


def test_json_must_hold_an_object(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("[1, 2]")
    assert load_error(REGRESSION, path).message == (
        f"{path}: a JSON data file must hold one object of names and values; found a list")


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("N = 3")
    assert load_error(REGRESSION, path).message == (
        f"{path}: unknown data file type '.txt'; expected .json, .csv, .npz, .npy or a folder of .npy files")


def test_unreadable_npz(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("not a zip archive")
    assert load_error(REGRESSION, path).message.startswith(f"{path}: cannot read as .npz")


@pytest.mark.parametrize("name, reason", [
    ("data.npz", "cannot read as .npz: member 'y.npy' holds Python objects, which only "
                 "unpickling could read (data is read with allow_pickle=False)"),
    # a pickle named .npy: np.load unpickles what has no .npy header unless allow_pickle=False;
    # numpy's own words then suggested loading it unsafely, with allow_pickle
    ("y.npy", "cannot read as .npy: it is not a .npy file (it does not start with numpy's "
              "header)"),
])
def test_pickled_data_is_refused_without_unpickling(tmp_path, monkeypatch, name, reason):
    import pickle
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, y=np.array([{"a": 1}], dtype=object))
    else:
        path.write_bytes(pickle.dumps([1.0, 2.0]))

    def never(*args, **kwargs):
        raise AssertionError("unpickled")
    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    message = load_error(REGRESSION, path).message
    assert message.startswith(f"{path}: {reason}") and "unsafe" not in message


def _npz(path, members: dict) -> None:
    """An .npz written member by member (name -> bytes), as np.savez never would."""
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _npy_bytes(value) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def test_npz_member_not_named_npy(tmp_path):
    path = tmp_path / "data.npz"
    _npz(path, {"J": _npy_bytes(np.array(8))})
    assert load_error(REGRESSION, path).message == (
        f"{path}: cannot read as .npz: member 'J' is not named NAME.npy (np.savez writes "
        "one NAME.npy per array)")


def test_npz_member_that_is_not_an_npy_array(tmp_path):
    path = tmp_path / "data.npz"
    _npz(path, {"N.npy": _npy_bytes(np.array(3)), "y.npy": b"not an array"})
    message = load_error(REGRESSION, path).message
    assert message.startswith(f"{path}: cannot read as .npz: member 'y.npy': the magic string")


def test_npz_with_two_members_of_one_name(tmp_path):
    path = tmp_path / "data.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
        _npz(path, {"N.npy": _npy_bytes(np.array(3))})
        import zipfile
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("N.npy", _npy_bytes(np.array(4)))
    assert load_error(REGRESSION, path).message == (
        f"{path}: cannot read as .npz: two members are named 'N.npy'")


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "data.npz"
    np.save(tmp_path / "data.npy", np.arange(3.0))
    (tmp_path / "data.npy").rename(path)
    assert load_error(REGRESSION, path).message == (
        f"{path}: cannot read as .npz: not a valid zip archive (File is not a zip file)")


def test_npy_that_is_an_npz_archive(tmp_path):
    path = tmp_path / "y.npy"
    np.savez(tmp_path / "d.npz", y=np.arange(3.0))
    (tmp_path / "d.npz").rename(path)
    assert load_error(REGRESSION, path).message == (
        f"{path}: cannot read as .npy: the file is an .npz archive")


def test_npz_compressed_reads_as_before(tmp_path):
    path = tmp_path / "data.npz"
    y = np.array([0.1, 2.5, -3.25])
    np.savez_compressed(path, N=3, y=y)
    values = load("data N: int\ndata y: real[N]\n", path)[0]
    assert values["y"].tobytes() == y.tobytes() and values["N"] == 3


def test_unreadable_npy_folder(tmp_path, monkeypatch):
    from pathlib import Path
    np.save(tmp_path / "y.npy", np.arange(3.0))

    def denied(self):  # chmod 000 does not stop root, who runs these tests in CI
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "iterdir", denied)
    assert load_error(REGRESSION, str(tmp_path)).message == f"{tmp_path}: Permission denied"


def test_unreadable_npy_file_in_a_folder(tmp_path, monkeypatch):
    np.save(tmp_path / "N.npy", np.array(3))
    np.save(tmp_path / "y.npy", np.arange(3.0))
    load_npy = np.load

    def denied(path, *args, **kwargs):
        if path.name == "y.npy":
            raise PermissionError(13, "Permission denied", str(path))
        return load_npy(path, *args, **kwargs)
    monkeypatch.setattr(np, "load", denied)
    assert load_error(REGRESSION, str(tmp_path)).message == (
        f"{tmp_path}/y.npy: Permission denied")


def test_an_npy_folder_reads_its_npy_files_of_any_case_and_their_dtypes(tmp_path):
    # 0-d arrays are scalars (no rows to check chunk by chunk); float32 and int32 become the
    # declared float64 and int64, as from any other source
    np.save(tmp_path / "N.npy", np.array(3))
    np.save(tmp_path / "s.npy", np.array(2.5))
    np.save(tmp_path / "y.npy", np.array([0.5, 1.5, 2.5], dtype=np.float32))
    np.save(tmp_path / "k.npy", np.array([4, 5, 6], dtype=np.int32))
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    (tmp_path / "x.npy").rename(tmp_path / "x.NPY")
    (tmp_path / "notes.txt").write_text("not data")
    values, dims = load("data N: int\ndata s: real\ndata y: real[N]\ndata k: int[N]\n"
                        "data x: real[N]\n", str(tmp_path))
    assert dims == {"N": 3} and values["s"].dtype == np.float64 and values["s"] == 2.5
    assert values["y"].dtype == np.float64 and values["y"].tolist() == [0.5, 1.5, 2.5]
    assert values["k"].dtype == np.int64 and values["k"].tolist() == [4, 5, 6]
    assert values["x"].tolist() == [1.0, 2.0, 3.0]


def test_an_npy_folder_with_two_files_of_one_name_is_refused(tmp_path):
    # y.NPY beside y.npy: one replaced the other silently (the one sorted last, y.npy)
    np.save(tmp_path / "y.npy", np.array([1.0, 2.0]))
    np.save(tmp_path / "upper.npy", np.array([7.0, 8.0]))
    (tmp_path / "upper.npy").rename(tmp_path / "y.NPY")
    assert load_error("data y: real[2]\n", str(tmp_path)).message == (
        f"{tmp_path}: two files hold the data 'y': y.NPY and y.npy")


def test_an_npy_folder_without_npy_files_is_refused(tmp_path):
    (tmp_path / "y.txt").write_text("1\n2\n")
    assert load_error("data y: real[2]\n", str(tmp_path)).message == (
        f"{tmp_path}: the folder has no .npy files")


@pytest.mark.parametrize("bad, row, col, found", [
    (np.nan, 3, 1, "nan"),     # the last row of the first chunk
    (np.inf, 6, 0, "inf"),     # a later chunk: its row counted from the array's start
    (-np.inf, 9, 1, "-inf"),
])
def test_a_mapped_npy_is_checked_in_chunks_to_its_last_row(tmp_path, monkeypatch, bad, row, col,
                                                           found):
    import ppl.data
    monkeypatch.setattr(ppl.data, "_CHUNK_ROWS", 4)
    X = np.zeros((10, 2))
    X[row, col] = bad
    np.save(tmp_path / "X.npy", X)
    assert load_error("data X: real[10, 2]\n", str(tmp_path / "X.npy")).message == (
        f"data 'X' must be finite; found {found} at X[{row},{col}]")


def test_fifo_in_an_npy_folder_is_not_opened(tmp_path):
    import os
    np.save(tmp_path / "N.npy", np.array(3))
    os.mkfifo(tmp_path / "y.npy")
    assert load_error(REGRESSION, str(tmp_path)).message == (
        f"{tmp_path}/y.npy: not a regular file")


@pytest.mark.parametrize("cell", ["", "  "])
def test_csv_blank_cell_refused_where_used(tmp_path, cell):
    # a blank cell is how pandas' to_csv writes a missing value (one of spaces is blank too):
    # a column the model uses refuses it with its element and line ...
    path = tmp_path / "data.csv"
    path.write_text(f"y,z\n1,2\n{cell},3\n")
    assert load_error("data y: real[2]\ndata z: real[2]\n", path).message == (
        "data 'y' must hold numbers; found a blank cell (a missing value, on line 3 of the "
        "CSV file) at y[1]")


def test_csv_blank_cell_in_an_unused_column_is_read(tmp_path):
    # ... while one the model does not use may hold it, as it may hold NaN or 'NA' (the whole
    # file was refused: 'line 3: blank cell in column z')
    path = tmp_path / "data.csv"
    path.write_text("y,z\n1,2\n3,\n")
    with pytest.warns(UserWarning, match="names the model does not declare: z"):
        values, _ = load("data y: real[2]\n", path)
    assert values["y"].tolist() == [1.0, 3.0]


def test_csv_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y,z\n1,2\n\n3,4\n\n")
    values, _ = load("data y: real[2]\ndata z: real[2]\n", path)
    assert values["y"].tolist() == [1.0, 3.0] and values["z"].tolist() == [2.0, 4.0]


def test_csv_blank_line_in_a_one_column_file_is_a_blank_cell(tmp_path):
    # a spreadsheet saves an empty cell of a one-column sheet as an empty line: skipping it
    # (as a blank line of a wider file is) dropped the missing value and read y as [1, 3],
    # every later row shifted up by one; trailing blank lines are still only line ends
    path = tmp_path / "data.csv"
    path.write_text("y\n1\n\n3\n\n")
    assert load_error("data N: int\ndata y: real[N]\n", path).message == (
        "data 'y' must hold numbers; found a blank cell (a missing value, on line 3 of the "
        "CSV file) at y[1]")


def test_csv_column_named_twice_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y,z,y\n1,2,3\n")
    assert load_error("data y: real[1]\n", path).message == (
        f"{path}: line 1: column 'y' appears twice")

@pytest.mark.parametrize("content, reason", [
    (",y\n0,1.5\n", "column 1 has a blank name (pandas' to_csv writes its index so: pass "
                     "index=False)"),
    ("y,\n1.5,2\n", "column 2 has a blank name")])
def test_csv_blank_column_name_says_which(tmp_path, content, reason):
    # df.to_csv(path) writes the index first, without a name: "a blank column name" said
    # neither where nor why
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert load_error("data y: real[1]\n", path).message == f"{path}: line 1: {reason}"


@pytest.mark.parametrize("content, separator", [
    ("x;y\n1;2\n2;4\n", "';'"), ("x;y\n1,5;2\n2,5;4\n", "';'"),
    ("x\ty\n1\t2\n2\t4\n", "a tab")])
def test_csv_with_another_separator_says_so(tmp_path, content, separator):
    # a spreadsheet in a locale whose decimal mark is ',' saves ';'-separated CSV, and TSV
    # is common: the header read as one column 'x;y' gave a warning of an undeclared name
    # and 'data N is missing' with a hint about scalars, or (with decimal commas) 'line 2:
    # expected 1 cells, found 2', and none said the separator was the matter
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert load_error("data N: int\ndata x: real[N]\ndata y: real[N]\n", path).message == (
        f"{path}: line 1: the header is one column, {content.splitlines()[0]!r}, holding "
        f"{separator}: ppl reads a CSV file's cells separated by ','; save the file with ',' "
        "between cells and '.' as the decimal mark")


@pytest.mark.parametrize("name, hint", [
    # np.savez(path, x, y) names the arrays arr_0 and arr_1
    ("data.npz", "np.savez(path, a, b) names its arrays arr_0, arr_1, ...: name them by "
                 "their data declarations, np.savez(path, x=x, y=y)"),
    # {"data": {"x": ..., "y": ...}}, a wrapper written by another tool
    ("data.json", "'x' is inside the object 'data': the data's names go at the top level "
                  "({\"x\": ...}, not {\"data\": {\"x\": ...}})")])
def test_data_under_other_names_says_where_it_is(tmp_path, name, hint):
    # the error said 'data x is missing' beside a warning of the undeclared arr_0, arr_1 or
    # data, and not how to name them
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, np.ones(3), np.ones(3))
    else:
        path.write_text('{"data": {"x": [1, 2, 3], "y": [1, 2, 3]}}')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        error = load_error("data x: real[3]\ndata y: real[3]\n", path)
    assert (error.message, error.hint) == ("data 'x' is missing", hint)


def test_csv_row_with_wrong_number_of_cells(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y,z\n1,2\n3\n")
    assert load_error("data y: real[2]\n", path).message == (
        f"{path}: line 3: expected 2 cells, found 1")


@pytest.mark.parametrize("content, line, reason", [
    ('y\n"1\n2\n3\n', 2, "unexpected end of data"),     # a lenient reader read 123
    ('y,z\n1,2\n3,"4"5\n', 3, "',' expected after '\"'"),
])
def test_csv_quote_not_closed_is_refused_at_its_line(tmp_path, content, line, reason):
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert load_error("data y: real[3]\n", path).message == (
        f"{path}: line {line}: cannot read as CSV ({reason}); a quoted cell ends with '\"' "
        "before the next ',' or the end of its line")


def test_csv_quoted_numbers_are_read(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('y,z\n"1",2\n"3","4.5"\n')
    values, _ = load("data y: int[2]\ndata z: real[2]\n", path)
    np.testing.assert_array_equal(values["y"], [1, 3])
    np.testing.assert_array_equal(values["z"], [2.0, 4.5])


def test_a_decimal_comma_in_a_one_column_csv_is_named(tmp_path):
    # 'expected 1 cells, found 2' and nothing on why (found by the audit11 helper)
    path = tmp_path / "data.csv"
    path.write_text("y\n1,5\n2,25\n")
    error = load_error("data y: real[2]\n", path)
    assert error.message == f"{path}: line 2: expected 1 cell, found 2"
    assert error.hint == "a decimal comma? ppl reads '.' as the decimal mark: 1.5, not 1,5"
    path.write_text("y,z\n1,2\nx,y,z\n")              # a cell too many, not of digits
    assert load_error("data y: real[1]\n", path).hint is None


@pytest.mark.parametrize("cell", ["1_000", "\u0661", "\uff11", "1.5_0", "\u0661e3"])
def test_csv_number_that_is_not_ascii_digits(tmp_path, cell):
    # Python's int() and float() read all of these; JSON's grammar reads none of them
    path = tmp_path / "data.csv"
    path.write_text(f"y\n1\n{cell}\n", encoding="utf-8")
    assert load_error("data y: real[2]\n", path).message == (
        f"{path}: line 3, column 'y': {cell!r} is not a plain number; the numbers of a data "
        "file are ASCII digits, without '_'")


@pytest.mark.parametrize("content", ["\ny\n1\n", " \ny\n1\n", " , \n1,2\n", "\n"])
def test_csv_with_a_blank_header_row(tmp_path, content):
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert load_error("data y: real[1]\n", path).message == (
        f"{path}: line 1: the header row is blank; a CSV data file starts with a row of "
        "column names")


def test_csv_int_with_too_many_digits(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y\n1\n" + "9" * 5000 + "\n")
    assert load_error("data y: real[2]\n", path).message == (
        f"{path}: line 3, column 'y': the int 999999999999... has 5000 digits; data must fit "
        "in 64-bit ints or float64")


def test_leading_zeros_are_not_digits_of_an_int(tmp_path):
    # the digit cap counts an int's digits from its first that is not 0: 400 zeros and a 7
    # in a CSV file is 7 (JSON refuses leading zeros itself) (mutation3 audit)
    path = tmp_path / "data.csv"
    path.write_text("y\n1\n-" + "0" * 400 + "7\n")
    assert load("data y: int[2]\n", path)[0]["y"].tolist() == [1, -7]
    # a signed int is read as an int, not through a float: 2^53 + 1 keeps its last digit
    path.write_text("y\n+9007199254740993\n-9007199254740993\n")
    assert load("data y: int[2]\n", path)[0]["y"].tolist() == [2 ** 53 + 1, -2 ** 53 - 1]


@pytest.mark.parametrize("name", ["data.csv", "data.json"])
def test_an_int_is_read_up_to_the_digits_of_float64s_largest(tmp_path, name):
    # an int of up to 309 digits is read (for a real, as the nearest float64, as data.py
    # reads a Python int beyond int64, and as numpy and Stan's JSON reader do); one of 31
    # digits was refused: '1e40 written as digits' (found by the leftalone3 audit). Of more
    # digits (float64's largest is 1.8e308) it is refused where it is
    path = tmp_path / name

    def write(digits):
        path.write_text(f"y\n1\n{digits}\n" if name.endswith(".csv") else
                        f'{{"y": [1, {digits}]}}')
    where = "line 3, column 'y': " if name.endswith(".csv") else ""
    for digits, read in (("1" + "0" * 29, 1e29), ("1" + "0" * 40, 1e40),
                         ("1" + "0" * 308, 1e308)):
        write(digits)
        assert load("data y: real[2]\n", path)[0]["y"].tolist() == [1.0, read]
    write("2" + "0" * 308)      # 309 digits, beyond float64: refused with its element
    assert load_error("data y: real[2]\n", path).message == (
        "data 'y' must hold numbers; found an int of more than 30 digits at y[1], beyond the "
        "range of float64")
    write("1" + "0" * 309)
    assert load_error("data y: real[2]\n", path).message == (
        f"{path}: {where}the int 100000000000... has 310 digits; data must fit in 64-bit ints "
        "or float64")


def test_csv_numbers_python_and_json_agree_on_are_read_as_before(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y\n +1 \n-2.5e3\n.5\n007\n1E-2\n")
    assert load("data y: real[5]\n", path)[0]["y"].tolist() == [1.0, -2500.0, 0.5, 7.0, 0.01]


def test_csv_text_cell_is_not_a_number(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y\n1\nabc\n")
    assert load_error("data y: real[2]\n", path).message == (
        "data 'y' must hold numbers; found the string 'abc' at y[1]")


# ----- hostile data files (issue 9, item 6) ------------------------------------------------

HOSTILE_MODEL = "data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\n"


def _hostile_error(tmp_path, name, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(PplError) as info:
        ppl.compile(HOSTILE_MODEL).prepare(str(path))
    return info.value.message


def test_json_int_with_thousands_of_digits(tmp_path):
    message = _hostile_error(tmp_path, "d.json", '{"N": 1, "y": [' + "9" * 5000 + "]}")
    assert message.endswith("has 5000 digits; data must fit in 64-bit ints or float64")


@pytest.mark.parametrize("name,content", [
    ("d.json", '{"N": 2, "y": [1, 99999999999999999999]}'),
    ("d.csv", "y\n1\n99999999999999999999\n")])
def test_int_beyond_int64_is_a_real_for_real_data(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    values = ppl.compile(HOSTILE_MODEL).prepare(str(tmp_path / name))[1]
    assert values["y"].tolist() == [1.0, 1e20]


@pytest.mark.parametrize("name,content", [
    ("d.json", '{"N": 2, "y": [1, 99999999999999999999]}'),
    ("d.csv", "y\n1\n99999999999999999999\n")])
def test_int_beyond_int64_is_refused_for_int_data_with_its_element(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(PplError) as info:
        ppl.compile("data N: int\ndata y: int[N]\n").prepare(str(tmp_path / name))
    assert info.value.message == ("data 'y' must hold numbers; found 99999999999999999999 at "
                                  "y[1], beyond the range of a 64-bit int")


@pytest.mark.parametrize("raw,found", [([1, 2 ** 63], "9223372036854775808 at k[1]"),
                                       ([-1, -2 ** 63 - 1], "-9223372036854775809 at k[1]"),
                                       ([1.5, 10 ** 20], "100000000000000000000 at k[1]")])
def test_python_int_beyond_int64_is_refused_for_int_data(raw, found):
    with pytest.raises(PplError) as info:
        ppl.compile("data k: int[2]\n").prepare({"k": raw})
    assert info.value.message == (f"data 'k' must hold numbers; found {found}, beyond the "
                                  "range of a 64-bit int")


def test_python_int_beyond_float64_is_refused_for_real_data():
    with pytest.raises(PplError) as info:
        ppl.compile(HOSTILE_MODEL).prepare({"y": [1, 10 ** 400]})
    assert info.value.message == ("data 'y' must hold numbers; found an int of more than 30 "
                                  "digits at y[1], beyond the range of float64")


def test_json_nested_a_thousand_deep(tmp_path):
    text = '{"N": 1, "y": ' + "[" * 1000 + "1" + "]" * 1000 + "}"
    assert _hostile_error(tmp_path, "d.json", text).endswith("the JSON is nested too deeply")


def test_json_duplicate_names(tmp_path):
    message = _hostile_error(tmp_path, "d.json", '{"N": 2, "N": 3, "y": [1, 2]}')
    assert message.endswith("the name 'N' appears twice in one JSON object")


def test_json_and_csv_with_a_byte_order_mark(tmp_path):
    (tmp_path / "d.json").write_bytes(b'\xef\xbb\xbf{"N": 2, "y": [1, 2]}')
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbfy\n1\n2\n")
    for name in ("d.json", "d.csv"):
        values = ppl.compile(HOSTILE_MODEL).prepare(str(tmp_path / name))[1]
        np.testing.assert_array_equal(values["y"], [1.0, 2.0])


@pytest.mark.parametrize("size, claimed", [
    (1000000000000, "8,000,000,000,000"),
    (20, "160"),   # a member cut short: 160 bytes claimed, 145 held (a header of 129, 16)
])
def test_npz_header_bomb(tmp_path, size, claimed):
    import io
    import struct
    import zipfile
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({size},), }}"
    header = header + " " * (118 - len(header)) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("y.npy", npy)
    message = _hostile_error(tmp_path, "d.npz", buffer.getvalue())
    assert message.endswith(f"array 'y' claims shape [{size}] ({claimed} bytes) but holds 145")


def test_corrupted_npz(tmp_path):
    message = _hostile_error(tmp_path, "d.npz", b"PK\x03\x04" + bytes(100))
    assert message.startswith(f"{tmp_path / 'd.npz'}: cannot read as .npz")


def test_uint64_beyond_int64_is_refused_not_wrapped():
    text = "data k: int[2]\nsample mu ~ Normal(0, 1)\n"
    with pytest.raises(PplError) as info:
        ppl.compile(text).prepare({"k": np.array([2 ** 64 - 1, 2], dtype=np.uint64)})
    assert info.value.message == ("data 'k' must hold numbers; found 18446744073709551615 at "
                                  "k[0], beyond the range of a 64-bit int")


def test_longdouble_beyond_float64_is_refused():
    value = np.array([np.longdouble("1e400"), 2], dtype=np.longdouble)
    if not np.isfinite(value[0]):
        pytest.skip("this platform's longdouble is float64")
    with pytest.raises(PplError, match=r"found 1\.e\+400 at y\[0\], beyond the range of float64"):
        ppl.compile(HOSTILE_MODEL).prepare({"N": 2, "y": value})


@pytest.mark.parametrize("raw, at", [
    (np.ma.masked_array([[1.0, 2.0], [3.0, 4.0]], mask=[[1, 0], [0, 0]]), ""),
    # a list of masked rows: np.asarray read the masked 1.0, silently
    ([np.ma.masked_array([1.0, 2.0], mask=[1, 0])] * 2, " at y[0]"),
    ([[1.0, 2.0], np.ma.masked_array([3.0, 4.0], mask=[0, 1])], " at y[1]"),
])
def test_a_masked_array_at_any_level_is_refused(raw, at):
    assert load_error("data y: real[2, 2]\n", {"y": raw}).message == (
        f"data 'y' must hold numbers; found a masked array{at} (fill or drop the masked values "
        "first)")


def test_masked_array_is_refused():
    with pytest.raises(PplError, match="a masked array"):
        ppl.compile(HOSTILE_MODEL).prepare({"N": 2, "y": np.ma.masked_array([1.0, 2.0],
                                                                           mask=[0, 1])})


@pytest.mark.parametrize("data", [[1, 2], 3.0, (("y", 1),)])
def test_data_that_is_not_a_dict_or_path(data):
    # every form load_data reads: the message named .json, .csv and .npz, not a DataFrame,
    # .npy or a folder
    with pytest.raises(PplError, match="data must be a dict of names and values, a pandas "
                       "DataFrame, or a path to a .json, .csv, .npz or .npy file or a folder "
                       "of .npy files; found"):
        ppl.compile(HOSTILE_MODEL).prepare(data)


@pytest.mark.parametrize("key, shown", [(5, "5 (of type int)"), (None, "None (of type NoneType)"),
                                        (("N",), "('N',) (of type tuple)")])
def test_a_data_dicts_key_that_is_not_a_str_is_refused(key, shown):
    # {5: 3, ...} was only warned of as an undeclared name quoted '5', as if it were the str;
    # no declaration can match it (found by the outdir audit)
    with pytest.raises(PplError) as info:
        ppl.compile(HOSTILE_MODEL).prepare({key: 2, "N": 2, "y": [1.0, 2.0]})
    assert info.value.message == f"data: the key {shown} is not a name; data names are " \
                                 "strings, as in a JSON file"


def test_a_data_dicts_numpy_str_key_is_a_name():
    ppl.compile(HOSTILE_MODEL).prepare({np.str_("N"): 2, np.str_("y"): [1.0, 2.0]})


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_data_path_that_is_not_a_regular_file(tmp_path, kind):
    import os
    path = {"fifo": tmp_path / "d.json", "device": "/dev/null"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(PplError) as info:
        ppl.compile(HOSTILE_MODEL).prepare(str(path))
    assert info.value.message == f"{path}: not a regular file"


@pytest.mark.parametrize("declaration, name", [
    ("sample L: real[K, K] ~ LKJCholesky(2)", "LKJCholesky"),
    ("sample p: real[K] ~ Dirichlet(a)", "Dirichlet"),
])
def test_a_simplex_or_correlation_factor_of_size_zero_is_refused(declaration, name):
    # K = 0 from data: the Dirichlet was an internal error (a reshape), the LKJCholesky fitted
    # a 1 x 1 factor (its bijector cannot tell K = 0 from K = 1) reported as 0 x 0
    model = ppl.compile(f"data K: int\ndata a: real<lower=0>[K]\n{declaration}\n"
                        "sample m ~ Normal(0, 1)\n")
    with pytest.raises(PplError) as info:
        model.fit({"K": 0, "a": []}, seed=0)
    assert info.value.span.line == 3
    assert f"a {name} value needs at least one element on its last axis" in info.value.message
    model.fit({"K": 2, "a": [1.0, 1.0]}, seed=0, iter=200)   # K = 2 fits
