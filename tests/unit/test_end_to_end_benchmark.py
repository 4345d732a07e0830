"""benchmarks/end_to_end.py runs past a model DADVI refuses: its default methods include DADVI,
which does not fit models with param or guide statements (bnn_regression_map, vae_digits), and
until 2026-12-06 the refusal ended the whole run with a traceback at the first of them."""
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_model_dadvi_refuses_gets_a_not_run_row_and_the_run_goes_on(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import end_to_end
    try:
        end_to_end.main(["--quick", "--only", "bnn_regression_map", "linear_regression",
                         "--methods", "dadvi"])
    finally:
        sys.modules.pop("end_to_end", None)
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 2
    assert rows[0].split()[:2] == ["bnn_regression_map", "dadvi"]
    assert "not run: " in rows[0] and "param or guide" in rows[0]
    assert rows[1].split()[:2] == ["linear_regression", "dadvi"] and "not run" not in rows[1]
