"""The ``ppl`` command as a user runs it: a subprocess on every example model."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ppl
from ppl.ir import element_names

ROOT = Path(__file__).resolve().parents[2]
# The seed's applications (VAE, BNN) are fitted by tests/e2e/test_applications.py on small
# settings; fitted here as they ship, the VAE alone takes many minutes of CPU.
APPLICATIONS = {"vae_digits", "bnn_regression", "bnn_regression_map"}
MODELS = sorted(p for p in (ROOT / "models").glob("*.ppl") if p.stem not in APPLICATIONS)


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "ppl", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def reported_elements(path: Path) -> list[str]:
    concrete = ppl.load(path).prepare()[0]
    names = []
    for statement in concrete.statements:
        if statement.name.startswith("_") if hasattr(statement, "name") else False:
            continue
        if statement in concrete.latents.values():
            names += element_names(statement.name, statement.shape)
        elif statement in concrete.lets.values() and statement.reported:
            names += element_names(statement.name, statement.value.shape)
    return names


def _value_rows(element: str, info: dict) -> list[str]:
    """``element`` itself, or ``element=v`` per value v when it belongs to a discrete latent."""
    name = element.split("[")[0]
    if name not in info["probabilities"]:
        return [element]
    return [f"{element}={v}" for v in info["probabilities"][name]["values"]]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_fit_prints_summary_and_writes_files(model, tmp_path):
    out = tmp_path / "fit"
    # mean-field: the default `--guide auto` may escalate to richer families (minutes on the
    # enumerated models); its choice is tested in tests/stats/test_trust.py
    result = run("fit", model, "--quiet", "--out", out, "--draws", 200, "--guide", "meanfield")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # the importance-correction note, if any, comes above the table's header
    table = lines[2:] if lines[0].startswith("importance-corrected") else lines[1:]
    rows = [line.split()[0] for line in table
            if line and not line.startswith(("converged", "did NOT", "wrote", "reliable",
                                             "usable with care", "unreliable", "guide auto:",
                                             "starts:"))]
    expected = reported_elements(model)
    info = json.loads((out / "fit.json").read_text())
    # a discrete latent's element gets one summary row per value: z[0]=0, z[0]=1, ...
    in_summary = [row for name in expected for row in _value_rows(name, info)]
    assert rows == in_summary
    assert any(line.startswith(("converged", "did NOT converge"))
               for line in result.stdout.splitlines())

    with (out / "draws.csv").open() as stream:
        header = next(csv.reader(stream))
    assert header == expected
    draws = np.loadtxt(out / "draws.csv", delimiter=",", skiprows=1, ndmin=2)
    assert draws.shape == (200, len(expected)) and np.all(np.isfinite(draws))
    summary = list(csv.reader((out / "summary.csv").open()))
    assert summary[0] == ["name", "mean", "sd", "5%", "50%", "95%"]
    assert [row[0] for row in summary[1:]] == in_summary
    elbo = np.loadtxt(out / "elbo.csv", delimiter=",", skiprows=1, ndmin=2)
    assert np.all(np.isfinite(elbo[:, 1]))
    assert info["model_path"] == str(model)
    assert info["steps"] == len(elbo)
    assert set(info["options"]) >= {"iter", "lr", "mc_samples", "draws", "seed"}
    assert info["versions"]["ppl"] == ppl.__version__

    again = run("summary", out)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    # [correction note], header, rows, convergence line, verdict line
    table = lines[2:] if lines[0].startswith("importance-corrected") else lines[1:]
    assert [line.split()[0] for line in table[:-2]] == in_summary
    assert lines[-1].startswith(("reliable", "usable with care", "unreliable"))

    predicted = run("predict", out, "--draws", 50)
    assert predicted.returncode == 0, predicted.stderr
    pred = np.loadtxt(out / "predictive.csv", delimiter=",", skiprows=1, ndmin=2)
    assert pred.shape[0] == 50 and np.all(np.isfinite(pred))


def test_check_lists_latents_and_data(tmp_path):
    # without data (no --data, no MODEL.json beside it) the sizes are the declared names
    alone = tmp_path / "eight_schools.ppl"
    alone.write_text((ROOT / "models/eight_schools.ppl").read_text())
    result = run("check", alone)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{alone}: ok"
    assert any(line.split()[:3] == ["tau", "scalar", "[0,"] for line in lines)
    assert any(line.split()[:2] == ["eta", "[J]"] for line in lines)
    for args in (["--data", "models/eight_schools.json"], []):   # the JSON beside it is read
        with_data = run("check", "models/eight_schools.ppl", *args)
        assert with_data.returncode == 0, with_data.stderr
        assert any(line.split()[:2] == ["eta", "[8]"] for line in with_data.stdout.splitlines())


def test_check_lists_the_innovations_bijector_of_an_ar1_latent():
    # h ~ AR1(...) is fitted through its standardized innovations (docs/language.md), but
    # `ppl check` listed its bijector as Identity (found by the time-series audit)
    result = run("check", "models/stochastic_volatility.ppl")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:6]}
    assert rows["h"][-1] == "AR1Innovations" and rows["mu"][-1] == "Identity"


def test_help_and_version():
    assert run("--help").returncode == 0
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"ppl {ppl.__version__}"


@pytest.mark.parametrize("args, message", [
    (["fit", "models/eight_schools.ppl", "--iter", "0"], "option --iter: must be a positive integer"),
    # the command's own help, where its flags are, not 'ppl --help'
    (["fit", "models/eight_schools.ppl", "--iterations", "5"],
     "error: unrecognized arguments: --iterations 5; did you mean '--iter'? "
     "(see 'ppl fit --help')"),
    (["predict", "no_such_dir", "--drawz", "3"], "(see 'ppl predict --help')"),
    # a flag is spelled in full: '--dat' was --data (argparse's abbreviations)
    (["check", "models/eight_schools.ppl", "--dat", "models/eight_schools.json"],
     "error: unrecognized arguments: --dat models/eight_schools.json; did you mean '--data'?"),
    # an option is named as it is typed, not as the API's keyword (init_scale, batch)
    (["fit", "models/eight_schools.ppl", "--init-scale", "-1"],
     "option --init-scale: must be a positive finite number"),
    (["fit", "models/eight_schools.ppl", "--batch", "K=2"],
     "option --batch: 'K' is not a dimension declared by the data"),
    (["fit", "models/eight_schools.ppl", "--lr", "abc"], "invalid float value"),
    (["fit", "models/eight_schools.ppl", "--guide", "fulrank"], "unknown guide 'fulrank'"),
    (["fit", "models/no_such_model.ppl"], "no such model file"),
    (["fit", "models/eight_schools.ppl", "--data", "nowhere.json"], "no such data file"),
    # an empty path is the working folder to pathlib: --data '' read its .npy files as the
    # data, ppl check skipped it, --init '' and a model '' said ': not a regular file'
    (["fit", "models/eight_schools.ppl", "--data", ""], "option --data: must name a data file"),
    (["check", "models/eight_schools.ppl", "--data", ""], "option --data: must name a data file"),
    (["fit", "models/eight_schools.ppl", "--init", ""], "option --init: must name a JSON file"),
    (["fit", ""], "'': an empty path names no model file"),
    # it said 'no_such_dir/fit.json: no saved fit here', as if the folder were there
    (["summary", "no_such_dir"], "error: no_such_dir: no such folder; a saved fit is the "
                                 "folder that 'ppl fit MODEL --out DIR' wrote"),
    (["plot", "no_such_dir/sub"], "error: no_such_dir/sub: no such folder"),
    # and to ppl summary, predict and plot: '' read ./fit.json
    *([[command, ""], "'': an empty path names no folder; a saved fit is the folder"]
      for command in ("summary", "predict", "plot")),
    (["frobnicate"], "invalid choice"),
    # CmdStan and Stan users give the data file positionally, or the data first: the error
    # said 'unrecognized arguments: models/eight_schools.json' alone
    (["fit", "models/eight_schools.ppl", "models/eight_schools.json"],
     "error: unrecognized arguments: models/eight_schools.json; a data file is given with "
     "--data: ppl fit MODEL.ppl --data models/eight_schools.json (see 'ppl fit --help')"),
    (["fit", "models/eight_schools.json", "models/eight_schools.ppl"],
     "error: unrecognized arguments: models/eight_schools.ppl; the model comes first and a "
     "data file is given with --data: ppl fit models/eight_schools.ppl --data DATA "
     "(see 'ppl fit --help')"),
])
def test_bad_command_lines_give_one_clear_line_and_status_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_init_naming_a_latent_is_an_option_error(tmp_path):
    # eight schools has no param: an init for its latent mu was read and ignored before
    init = tmp_path / "init.json"
    init.write_text('{"mu": 1.0}')
    result = run("fit", "models/eight_schools.ppl", "--quiet", "--init", init)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: option --init: 'mu': a sample statement's latent, "
                                     "not a param; init gives starting values to param "
                                     "statements only (params: none)")


def test_bad_model_gives_located_error(tmp_path):
    bad = tmp_path / "bad.ppl"
    bad.write_text("sample mu ~ Normall(0, 1)\n")
    result = run("check", bad)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad}:1:13: error: unknown distribution 'Normall'; "
                                    "did you mean 'Normal'?")
    assert "Traceback" not in result.stderr


def test_a_digit_outside_ascii_is_a_located_error_with_status_2(tmp_path):
    # The Arabic-Indic three was read as the number 3 (the grammar's \d): numbers are ASCII
    bad = tmp_path / "bad.ppl"
    bad.write_text("sample mu ~ Normal(0, 1)\nlet z = \u0663\n", encoding="utf-8")
    result = run("check", bad)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (f"{bad}:2:9: error: syntax error: "
                                             "unexpected character '\u0663'")


def test_unwritable_out_dir_fails_before_fitting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    result = run("fit", "models/eight_schools.ppl", "--quiet", "--out", blocker / "sub")
    assert result.returncode == 2 and "cannot write" in result.stderr
    assert blocker.read_text() == "keep me"


def test_failed_run_keeps_previous_outputs(tmp_path):
    out = tmp_path / "fit"
    assert run("fit", "models/eight_schools.ppl", "--quiet", "--out", out,
               "--draws", 100).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad_data = tmp_path / "bad.json"
    bad_data.write_text('{"J": 8, "y": [1, 2], "sigma": [1, 2]}')
    result = run("fit", "models/eight_schools.ppl", "--quiet", "--out", out, "--data", bad_data)
    assert result.returncode == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_result_stdout_cannot_take_is_a_clear_error_after_the_fit_is_saved(tmp_path):
    # a full device: the fit is saved to --out first, then one error and status 2 (it was an
    # internal error, status 1, before --out was written)
    out = tmp_path / "fit"
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "ppl", "fit",
                                 ROOT / "models" / "eight_schools.ppl", "--quiet", "--out", out],
                                cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
                                timeout=600)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: cannot write the result to standard output "
                                        f"(No space left on device); the fit was saved to {out}")
        assert "Traceback" not in result.stderr
        assert (out / "fit.json").exists()
        summary = subprocess.run([sys.executable, "-m", "ppl", "summary", out], cwd=ROOT,
                                 stdout=full, stderr=subprocess.PIPE, text=True, timeout=600)
    assert summary.returncode == 2
    assert summary.stderr.startswith("error: cannot write the result to standard output")


def test_a_stdout_encoding_without_the_hat_escapes_it(tmp_path):
    # PYTHONIOENCODING=ascii: k̂ could not be encoded, an internal error before --out was written
    import os
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    result = subprocess.run([sys.executable, "-m", "ppl", "fit",
                             ROOT / "models" / "eight_schools.ppl", "--quiet", "--out",
                             tmp_path / "fit"], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "(k\\u0302 " in result.stdout and (tmp_path / "fit" / "fit.json").exists()
