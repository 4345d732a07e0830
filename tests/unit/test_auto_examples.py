"""benchmarks/auto_examples.py: auto's answers on the example models against NUTS (and on
posteriordb against its reference posteriors, or another family's or method's)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import auto_examples  # noqa: E402


def test_a_fit_is_scored_against_its_nuts_reference_and_counted(capsys):
    # linear_regression, seed 0: auto's fit is within the targets (docs/trust.md)
    assert auto_examples.main(["--only", "linear_regression", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert "| linear_regression | 0 | meanfield " in out
    assert "1 of 1 fits within 0.1 sd and 15%; 0 miss under 'unreliable', 0 under a usable" in out


def test_a_miss_is_outside_either_target():
    row = {"mean": 0.05, "sd": 0.10}
    assert not auto_examples.misses(row)
    assert auto_examples.misses({**row, "mean": 0.101})
    assert auto_examples.misses({**row, "sd": 0.151})


def test_a_model_without_a_reference_is_an_option_error(capsys):
    with pytest.raises(SystemExit) as stop:
        auto_examples.main(["--only", "no_such_model"])
    assert stop.value.code == 2
    assert "no NUTS reference for no_such_model" in capsys.readouterr().err


def test_a_posteriordb_posterior_is_scored_against_its_reference_posterior(capsys):
    # sblri-blr, seed 0: mean field alone under auto, within the targets (docs/trust.md)
    assert auto_examples.main(["--posteriordb", "--only", "sblri-blr", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert "| sblri-blr | 0 | meanfield " in out
    assert "1 of 1 fits within 0.1 sd and 15%" in out


def test_another_family_is_fitted_alone(capsys):
    assert auto_examples.main(["--only", "linear_regression", "--seeds", "0",
                               "--guide", "meanfield"]) == 0
    assert "| linear_regression | 0 | - | - | " in capsys.readouterr().out


def test_fits_the_optimum_check_warned_are_counted(capsys, monkeypatch):
    rows = iter([{"model": "m", "seed": 0, "level": "usable with care", "tried": "-",
                  "chosen": "-", "warned": True, "mean": 0.05, "sd": 0.1, "cpu": 0.0},
                 {"model": "m", "seed": 1, "level": "reliable", "tried": "-",
                  "chosen": "-", "warned": False, "mean": 0.05, "sd": 0.1, "cpu": 0.0}])
    monkeypatch.setattr(auto_examples, "fit_row", lambda *args, **kwargs: next(rows))
    monkeypatch.setattr(auto_examples, "load_references", lambda: {"m": {}})
    assert auto_examples.main(["--only", "m", "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "| m | 0 | - | - | usable with care | yes | 0.050 |" in out
    assert "1 warned 'this fit may be wrong' (not converged), 1 of them within the targets" in out


def test_the_largest_summary_khat_of_a_usable_fit_within_the_targets_is_given(capsys,
                                                                              monkeypatch):
    # verdict.SUMMARY_KHAT_BAD was set above the largest of these (docs/trust.md)
    rows = iter([{"model": "m", "seed": seed, "level": level, "tried": "-", "chosen": "-",
                  "warned": False, "mean": mean, "sd": 0.1, "cpu": 0.0, "summary_khat": khat}
                 for seed, level, mean, khat in ((0, "usable with care", 0.05, 0.71),
                                                 (1, "usable with care", 0.30, 0.95),
                                                 (2, "unreliable", 0.05, 1.20),
                                                 (3, "reliable", 0.05, None))])
    monkeypatch.setattr(auto_examples, "fit_row", lambda *args, **kwargs: next(rows))
    monkeypatch.setattr(auto_examples, "load_references", lambda: {"m": {}})
    assert auto_examples.main(["--only", "m", "--seeds", "0", "1", "2", "3"]) == 0
    out = capsys.readouterr().out
    assert "| m | 0 | - | - | usable with care |  | 0.050 | 0.100 | 0.71 | 0.00 |" in out
    assert "| m | 3 | - | - | reliable |  | 0.050 | 0.100 | - | 0.00 |" in out
    assert out.rstrip().endswith("largest summary's k̂ of a usable fit within the targets: "
                                 "0.710 (m seed 0)")


def test_a_dadvi_row_gives_the_largest_mcse_against_its_sd(capsys):
    # tumor_rates, seed 1: a's mcse is 0.080 of its sd, which makes the fit usable with care
    # (verdict.NOISY_CORRECTION; docs/dadvi.md)
    assert auto_examples.main(["--only", "tumor_rates", "--seeds", "1", "--method", "dadvi"]) == 0
    out = capsys.readouterr().out
    assert "| largest mcse / sd | summary's k̂ | CPU s |" in out
    assert "| tumor_rates | 1 | - | - | usable with care |  | 0.120 | 0.079 | 0.080 | " in out
