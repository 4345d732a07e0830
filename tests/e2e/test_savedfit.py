"""Saved fits (`ppl fit --out DIR`) used later from anywhere: `ppl predict DIR`, `ppl summary DIR`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "beta_binomial.ppl"


def run(*args, cwd):
    # PYTHONPATH: the subprocess runs from a folder outside the repository, yet imports this ppl
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "ppl", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def saved(tmp_path):
    """A model and its data in tmp/project, fitted from there with relative paths into fit/."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(MODEL, project / "model.ppl")
    shutil.copy(MODEL.with_suffix(".json"), project / "model.json")
    result = run("fit", "model.ppl", "--quiet", "--iter", 300, "--draws", 50, "--out", "fit",
                 cwd=project)
    assert result.returncode == 0, result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return project, elsewhere


def test_fit_json_paths_are_absolute_and_the_model_text_is_copied(saved):
    project, _ = saved
    info = json.loads((project / "fit" / "fit.json").read_text())
    assert info["model_path"] == str((project / "model.ppl").resolve())
    assert info["data_path"] == str((project / "model.json").resolve())
    assert "model_text" not in info
    assert (project / "fit" / "model.ppl").read_text() == (project / "model.ppl").read_text()


def test_predict_and_summary_work_from_another_working_directory(saved):
    project, elsewhere = saved
    result = run("predict", project / "fit", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (project / "fit" / "predictive.csv").is_file()
    result = run("summary", project / "fit", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # an importance-correction note, when the summary is corrected, comes above the header
    table = lines[1:] if lines[0].startswith("importance-corrected") else lines
    assert table[1].split()[0] == "p"


def test_comments_and_blank_lines_do_not_invalidate_a_fit(saved):
    project, elsewhere = saved
    model = project / "model.ppl"
    model.write_text("# a new comment\n\n" + model.read_text().replace("\n", "\n\n") + "# end\n")
    result = run("predict", project / "fit", cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def test_a_change_of_meaning_predicts_from_the_saved_copy_and_says_so(saved):
    # predict refused this fit ('the model changed since this fit was saved; fit it again')
    # though fit/model.ppl, the copy saved with it, is the fitted model
    project, elsewhere = saved
    model = project / "model.ppl"
    model.write_text(model.read_text().replace("Beta(2, 2)", "Beta(2, 3)"))
    result = run("predict", project / "fit", "--draws", 20, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(
        f"ppl: warning: {model.resolve()}: the model changed since this fit was saved; "
        f"predicting from the fitted model's copy, {(project / 'fit' / 'model.ppl').resolve()}")
    assert (project / "fit" / "predictive.csv").is_file()


@pytest.mark.parametrize("copy", ["changed", "not a model"])
def test_a_change_of_meaning_without_the_fitted_copy_invalidates_a_fit(saved, copy):
    project, elsewhere = saved
    model = project / "model.ppl"
    model.write_text(model.read_text().replace("Beta(2, 2)", "Beta(2, 3)"))
    (project / "fit" / "model.ppl").write_text(model.read_text() if copy == "changed" else "{")
    result = run("predict", project / "fit", cwd=elsewhere)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {model.resolve()}: the model changed since this "
                                     "fit was saved; fit it again")


def test_the_saved_copy_stands_in_for_a_deleted_model_file(saved):
    project, elsewhere = saved
    (project / "model.ppl").unlink()
    result = run("predict", project / "fit", "--draws", 20, cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def test_no_model_file_and_no_copy_is_one_clear_error(saved):
    project, elsewhere = saved
    (project / "model.ppl").unlink()
    (project / "fit" / "model.ppl").unlink()
    result = run("predict", project / "fit", cwd=elsewhere)
    assert result.returncode == 2
    expected = f"error: {(project / 'model.ppl').resolve()}: no such model file"
    assert result.stderr.strip() == expected
