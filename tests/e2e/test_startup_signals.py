"""Ctrl-C and SIGTERM while the ``ppl`` command starts (issue 9, item 6): no traceback, and the
status a shell expects (130 after SIGINT; killed by SIGTERM)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "eight_schools.ppl")
# eight schools' fit imports no scipy.special (PSIS's logsumexp is numpy): this one's compile
# does (the Poisson kernel's constant, gammaln)
SCIPY_MODEL = str(ROOT / "models" / "poisson_regression.ppl")

# The child runs the command's entry point with an import hook that sends SIGINT to the
# process when the named module starts to import: an interrupt at a known instant of the slow
# imports, whatever the machine's load.
_AT_IMPORT = """
import os, signal, sys

class _Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _Interrupt())
sys.argv = ["ppl", "fit", {model!r}]
from ppl.startup import main
sys.exit(main())
"""


def test_the_entry_point_imports_no_numpy():
    code = "import sys, ppl.startup; print(sorted({'numpy', 'autograd', 'scipy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_import_ppl_still_gives_the_api():
    code = "import ppl; print(ppl.compile.__name__, ppl.Fit.__name__, ppl.__version__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["compile", "Fit", "0.1.0"], result.stderr


# "datetime" is imported by numpy's C extension while it initializes: an interrupt there once
# surfaced as an ImportError, i.e. an "internal error"
@pytest.mark.parametrize("module", ["ppl.cli", "numpy", "datetime", "numpy.linalg",
                                    "scipy.special", "autograd", "lark", "ppl.compiler",
                                    "ppl.infer.advi"])
def test_ctrl_c_during_each_slow_import_is_quiet(module):
    code = _AT_IMPORT.format(module=module,
                             model=SCIPY_MODEL if module == "scipy.special" else MODEL)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stderr) == (130, "ppl: interrupted\n")


# An object of the child's __main__, freed in Python's teardown after main has returned (where
# Python has put SIGINT back to its default action), sends SIGINT then: a Ctrl-C at the
# instant the command ends, whatever the machine's load.
_AT_TEARDOWN = """
import os, signal, sys

class _Interrupt:
    def __del__(self, kill=os.kill, pid=os.getpid(), sigint=signal.SIGINT):
        kill(pid, sigint)

_interrupt = _Interrupt()
sys.argv = ["ppl", *{argv!r}]
from ppl.startup import main
sys.exit(main())
"""


def test_ctrl_c_in_pythons_teardown_keeps_the_commands_status():
    # it killed the process (status -2 to a caller) after a run that had printed its whole
    # result: 13 runs in 20 of a fit SIGINTed 0-0.25 s after its output came (found by the
    # signals audit)
    result = subprocess.run([sys.executable, "-c", _AT_TEARDOWN.format(argv=["check", MODEL])],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith(f"{MODEL}: ok")


def _started(sig: int, delay: float) -> subprocess.CompletedProcess:
    # a window of 1000 steps: the fit still runs when the last delay is up (eight schools with
    # the default window converges within about 1 s of wall time on an idle machine, and the
    # signal would then reach a process that has already exited)
    child = subprocess.Popen([sys.executable, "-m", "ppl", "fit", MODEL, "--window", "1000"],
                             cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    child.send_signal(sig)
    out, err = child.communicate(timeout=120)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


# Python's own start-up (its standard streams, its `site` module running the environment's
# .pth files, runpy for `-m`: all before the first line of ppl) can take a good fraction of a
# second on a loaded machine; an interrupt there is CPython's to report, out of ppl's reach.
# Two of them CPython reports and then drops, and the command runs on (1 run in 300 each,
# SIGINT 5-50 ms after the start): one in `site`'s processing of a .pth file (the editable
# install's), and one in the callback that frees an import's module lock, which CPython
# cannot raise (an "unraisable" exception; the CI run of 2026-12-06 at 0.01 s).
_CPYTHON_START_UP = ("Fatal Python error: init_", "Could not import runpy module",
                     "Error processing line ",
                     "Exception ignored in: <function _get_module_lock.<locals>.cb ")


def _in_runpy(stderr: str) -> bool:
    """A KeyboardInterrupt raised while runpy looks for ``ppl`` to run (``-m``), every frame
    CPython's own: before any line of ppl (1 run in 120 at 0.05 s on a loaded machine)."""
    return (stderr.startswith('Traceback (most recent call last):\n  File "<frozen runpy>"')
            and stderr.endswith("KeyboardInterrupt\n"))


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.01, 0.05, 0.1, 0.2, 0.5, 1.0])
def test_ctrl_c_at_any_moment_of_start_up_prints_no_traceback(delay):
    result = _started(signal.SIGINT, delay)
    if result.stderr.startswith(_CPYTHON_START_UP) or _in_runpy(result.stderr):
        assert "/ppl/" not in result.stderr   # no frame of ppl's own code
        return
    assert "Traceback" not in result.stderr, result.stderr
    if "interrupted" in result.stdout:   # past start-up: the fit printed itself, as it does
        assert (result.returncode, result.stderr) == (130, ""), result.stderr
        return
    # quiet at 130, or killed by SIGINT before Python installed its handler (a shell shows 130)
    assert (result.returncode, result.stderr) in ((130, "ppl: interrupted\n"),
                                                   (-signal.SIGINT, "")), result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.01, 0.2, 1.0])
def test_sigterm_at_start_up_ends_the_command_without_a_traceback(delay):
    result = _started(signal.SIGTERM, delay)
    assert (result.returncode, result.stderr) == (-signal.SIGTERM, "")


def test_a_library_import_keeps_its_own_ctrl_c():
    code = ("import signal; before = signal.getsignal(signal.SIGINT); import ppl; ppl.Fit; "
            "print(signal.getsignal(signal.SIGINT) is before)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr


def test_the_command_runs_with_pythons_own_ctrl_c_handler(monkeypatch):
    # the start-up handler ends the process at once (os._exit): left in place, a Ctrl-C during
    # a fit would end it with 'ppl: interrupted' instead of the fit stopping and printing itself
    from ppl import cli, startup
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(signal.getsignal(signal.SIGINT)) or 3)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert startup.main([]) == 3
    finally:
        after = signal.signal(signal.SIGINT, before)
    assert seen == [before] and after == signal.SIG_IGN


class _InterruptedOnce:
    """Stands in for the _signal module: its first signal() call raises KeyboardInterrupt, as
    a Ctrl-C that came just before it does."""
    SIGINT, SIG_IGN = signal.SIGINT, signal.SIG_IGN

    def __init__(self):
        self.calls = []

    def signal(self, signum, handler):
        self.calls.append((signum, handler))
        if len(self.calls) == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("status, said", [(0, "ppl: interrupted\n"), (130, "")])
def test_a_ctrl_c_as_the_command_ends_is_status_130_said_once(monkeypatch, capfd, status, said):
    from ppl import startup
    fake = _InterruptedOnce()
    monkeypatch.setattr(startup, "_signal", fake)
    assert startup._ignoring_ctrl_c(status) == 130
    assert fake.calls == [(signal.SIGINT, signal.SIG_IGN)] * 2
    assert capfd.readouterr().err == said


def test_an_inherited_ignore_of_ctrl_c_stays_while_the_command_starts():
    # `ppl fit ... &` in a script starts with SIGINT ignored; a Ctrl-C while the modules
    # imported had ended such a run with 130, while later ones were ignored
    code = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            + _AT_IMPORT.format(module="numpy", model=MODEL))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "reliable" in result.stdout or "usable with care" in result.stdout
