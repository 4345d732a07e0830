"""Every variational family downstream: draws, summary, predictive, --out folders, ArviZ,
reproducibility (short fits; accuracy is tested in tests/stats/test_families.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ppl
from ppl.savedfit import restore_fit, save_fit

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "eight_schools.ppl"
SPECS = ["fullrank", "lowrank:2", "flow:2", "scaled"]


@pytest.fixture(scope="module")
def fits():
    model = ppl.load(MODEL)
    return {spec: model.fit(guide=spec, seed=2, iter=150, draws=200) for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS)
def test_family_fit_reports_finite_draws_and_predictive(fits, spec):
    fit = fits[spec]
    assert fit.result.guide.name == spec
    assert all(np.all(np.isfinite(v)) for v in fit.draws().values())
    assert len(fit.elbo) == fit.result.steps and np.all(np.isfinite(fit.elbo))
    assert all(v.shape[0] == 30 for v in fit.predictive(30).values())


@pytest.mark.parametrize("spec", SPECS)
def test_family_saved_and_restored_gives_the_same_draws(fits, spec, tmp_path):
    fit = fits[spec]
    save_fit(fit, tmp_path)
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved["guide"]["family"] == spec
    assert "mu" in saved["guide"]["parameters"]
    restored = restore_fit(tmp_path)
    for name, values in fit.draws().items():
        np.testing.assert_array_equal(restored.draws()[name], values)


@pytest.mark.parametrize("spec", ["fullrank", "flow:1", "scaled"])
def test_family_same_seed_same_result(spec):
    model = ppl.load(MODEL)
    a, b = (model.fit(guide=spec, seed=5, iter=120) for _ in range(2))
    np.testing.assert_array_equal(a.result.theta, b.result.theta)
    np.testing.assert_array_equal(a.elbo, b.elbo)


def test_family_to_arviz(fits):
    data = fits["lowrank:2"].to_arviz(predictive=True)
    assert "posterior" in data.groups() and "posterior_predictive" in data.groups()


def test_cli_refuses_unknown_guide():
    run = subprocess.run([sys.executable, "-m", "ppl", "fit", str(MODEL), "--guide", "fulrank"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "option --guide: unknown guide 'fulrank'; did you mean 'fullrank'?" in run.stderr
