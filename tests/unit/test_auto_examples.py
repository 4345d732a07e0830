"""benchmarks/auto_examples.py: auto's answers on the example models against NUTS."""
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
