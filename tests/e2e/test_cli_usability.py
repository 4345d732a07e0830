"""The command line's rough edges (issue 8): complete help texts with the values of choice
options, a closed pipe, an empty model, `ppl plot --vars` and its note when not all are shown."""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ppl import cli, guides, options
from ppl.plot import _moving_mean

ROOT = Path(__file__).resolve().parents[2]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "ppl", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _fit_actions():
    commands = next(a for a in cli.build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in commands.choices["fit"]._actions}


@pytest.mark.parametrize("name", cli.FIT_FLAGS)
def test_fit_option_help_is_whole_sentences(name):
    text = _fit_actions()[name].help.split(" (default:")[0]
    assert text.endswith((".", ")")), text
    # every word of the option's description in FitOptions reaches the help, as the command
    # line spells it (cli._as_cli_text)
    described = " ".join(options.FitOptions.__doc__.split(f"{name} : ", 1)[1].split())
    fields = [f.name for f in dataclasses.fields(options.FitOptions)]
    assert cli._as_cli_text(described, fields).startswith(" ".join(text.split()))
    assert "``" not in text


@pytest.mark.parametrize("name", cli.FIT_FLAGS)
def test_fit_option_help_speaks_the_command_lines_language(name):
    # the help named the API's keywords ('DADVI ignores ... mc_samples ...', 'up to 'iter'
    # steps'), source files ('(infer/starts.py)', 'precondition.py') and None ('when not
    # given (None)', 'None: the whole data'), none of which a user of the command types
    text = " ".join(_fit_actions()[name].help.split())
    for keyword in ("mc_samples", "init_scale", "dadvi_draws", "'iter'", "(draws,", "(tol)"):
        assert keyword not in text, (name, keyword)
    assert ".py" not in text.replace("NAME.npy", "") and "None" not in text, text
    if name == "method":
        assert "ignores --correct, --iter, --lr, --mc-samples, --optimizer" in text


@pytest.mark.parametrize("name, values", [("guide", guides.SPECS),
                                          ("optimizer", options.OPTIMIZERS),
                                          ("precondition", options.PRECONDITIONERS),
                                          # --correct CORRECT and --method METHOD hid theirs
                                          ("correct", options.CORRECTIONS),
                                          ("method", options.METHODS)])
def test_choice_options_list_their_values(name, values):
    assert _fit_actions()[name].metavar == "{" + ",".join(values) + "}"


def test_the_guide_help_describes_every_family():
    # 'studentt[:NU]' was among the choices but not described in the help
    text = " ".join(_fit_actions()["guide"].help.split())
    for spec in guides.SPECS:
        assert f"'{spec.partition('[')[0]}'" in text, spec


def test_the_help_shows_no_default_that_cannot_be_typed():
    # '--lr LR ... (default: None)' invited `--lr None`, which argparse refuses
    for name in cli.FIT_FLAGS:
        assert "(default: None)" not in (_fit_actions()[name].help or ""), name
    assert "the eta search picks it" in _fit_actions()["lr"].help


def test_a_closed_pipe_ends_quietly():
    # The reader is gone before the summary is printed (as with `| head -1` on a long table):
    # no traceback, no "internal error", the status of a command killed by SIGPIPE.
    process = subprocess.Popen([sys.executable, "-m", "ppl", "fit", "models/eight_schools.ppl",
                                "--quiet", "--iter", "300"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=600) == 141
    assert stderr == ""


@pytest.mark.parametrize("text, line", [("", 1), ("# nothing yet\ndata x: real\n", 3)])
def test_an_empty_model_is_a_located_error(tmp_path, text, line):
    model = tmp_path / "empty.ppl"
    model.write_text(text)
    result = run("fit", model)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{model}:{line}:1: error: nothing to fit: the model has no 'sample', no 'param' and no "
        "'observe' statement")
    assert "Traceback" not in result.stderr


def test_moving_mean_is_the_mean_of_the_last_window():
    values = np.random.default_rng(0).standard_normal(250)
    smoothed = _moving_mean(values, 100)
    expected = [values[max(0, i - 99):i + 1].mean() for i in range(250)]
    np.testing.assert_allclose(smoothed, expected, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def wide_fit(tmp_path_factory):
    """A saved fit with 41 reported elements (more than the 30 panels plotted by default)."""
    folder = tmp_path_factory.mktemp("wide")
    model = folder / "wide.ppl"
    model.write_text("sample z: real[40] ~ Normal(0, 1)\nsample s ~ HalfNormal(1)\n")
    result = run("fit", model, "--quiet", "--iter", "200", "--draws", "50", "--out",
                 folder / "fit")
    assert result.returncode == 0, result.stderr
    return folder / "fit"


def test_plot_says_when_not_all_marginals_are_shown(wide_fit):
    result = run("plot", wide_fit)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "marginals.png shows the first 30 of 41 elements; choose which with --vars NAME ...")
    for name in ("elbo.png", "marginals.png"):
        assert (wide_fit / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_vars_chooses_the_marginals(wide_fit):
    from ppl.plot import plot_fit
    plots = plot_fit(wide_fit, ["s", "z[39]", "z[0]"])
    assert (plots.shown, plots.total) == (3, 3)
    assert plot_fit(wide_fit, ["z"]).total == 40
    result = run("plot", wide_fit, "--vars", "s", "z")
    assert result.returncode == 0 and "marginals.png shows" in result.stdout  # 30 of 41


def test_plot_vars_unknown_name_is_one_clear_line(wide_fit):
    result = run("plot", wide_fit, "--vars", "zz")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: option --vars: no variable or element 'zz' in "
                                     "this fit; did you mean 'z'?")


def test_the_progress_bar_adds_up_every_phase_of_the_fit(monkeypatch):
    # each phase (auto's families, a warm start) reports its own steps from zero: the bar
    # counts on instead of running back
    import tqdm

    class Bar:
        def __init__(self, desc, **kwargs):
            self.n, self.desc = 0, desc

        def update(self, n):
            assert n >= 0
            self.n += n

        def set_postfix_str(self, *args, **kwargs):
            pass

        def set_description_str(self, desc, refresh=True):
            self.desc = desc

        def close(self):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    bar = cli._progress_bar(quiet=True)
    bar.family("meanfield")                    # --guide auto names each family it fits
    for step in (10, 20, 1200, 10, 50, 10):    # mean field to 1,200, then two more phases
        bar(step, -30.0, 0.1)
    assert bar.bar.n == 1200 + 50 + 10 and bar.bar.desc == "fitting meanfield"
    bar.family("fullrank")
    assert bar.bar.desc == "fitting fullrank"
