"""The Python API's own choices (ppl/api.py), tested without a fit where one is not needed (the
mutation pass over options.py and api.py, docs/history/trust-log.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

import ppl
from ppl.errors import PplError


def test_the_default_data_is_a_file_beside_the_model_never_a_folder(tmp_path):
    # a folder named MODEL.json is not the model's data file: read as a folder of .npy files,
    # it failed the fit of a model that needs no data ('the folder has no .npy files')
    (tmp_path / "m.ppl").write_text("sample mu ~ Normal(0, 1)\n")
    (tmp_path / "m.json").mkdir()
    assert ppl.load(tmp_path / "m.ppl").default_data_path() is None
    (tmp_path / "n.ppl").write_text("sample mu ~ Normal(0, 1)\n")
    (tmp_path / "n.json").write_text("{}")
    assert ppl.load(tmp_path / "n.ppl").default_data_path() == tmp_path / "n.json"


def test_a_model_compiled_from_text_reads_no_data_beside_its_path(tmp_path, monkeypatch):
    # compile(text, path=None) named the model 'None' and read ./None.json as its data; a path
    # given to name it in errors read MODEL.json beside that path
    monkeypatch.chdir(tmp_path)
    text = "data y: real\nsample a ~ Normal(0, 1)\nobserve y ~ Normal(a, 1)\n"
    Path("None.json").write_text('{"y": 2.0}')
    Path("m.json").write_text('{"y": 2.0}')
    with pytest.raises(PplError, match="option path: must be a str or os.PathLike; found "
                                       "NoneType"):
        ppl.compile(text, path=None)
    model = ppl.compile(text, path="m.ppl")
    assert model.default_data_path() is None
    with pytest.raises(PplError, match="data 'y' is missing"):
        model.fit()
    Path("m.ppl").write_text(text)
    assert ppl.load("m.ppl").default_data_path() == Path("m.json")


def test_a_model_with_one_latent_left_to_the_guide_family_has_something_to_fit():
    # a's guide statement is fixed (no param), but b is the family's to fit: only when every
    # continuous latent is guided is there nothing to optimize
    model = ppl.compile("sample a ~ Normal(0, 1)\nsample b ~ Normal(a, 1)\n"
                        "guide a ~ Normal(0, 1)\n")
    model.check_something_to_fit()
    with pytest.raises(PplError, match="nothing to fit: every latent has a guide statement"):
        ppl.compile("sample a ~ Normal(0, 1)\nguide a ~ Normal(0, 1)\n").check_something_to_fit()


def test_a_minibatch_fit_under_auto_records_mean_field_and_says_why():
    # the steps are mean field's either way; the options a saved fit records and the note
    # that auto did not climb ('a minibatch fit, --batch') were of 'auto' without the swap
    from ppl.infer import auto
    model = ppl.compile("data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\n"
                        "observe y ~ Normal(mu, 1)\n")
    fit = model.fit({"N": 6, "y": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}, batch={"N": 3}, iter=200,
                    draws=10)
    assert fit.options.guide == "meanfield"
    assert fit.auto_alone == auto.ALONE_BATCH
