"""The ``ppl`` command's entry point, and quiet Ctrl-C while it starts.

A Ctrl-C while the command is still importing numpy, scipy and autograd (a second or more)
ends it quietly with status 130, as one after start-up does, instead of printing a traceback
of the imports. This module imports nothing heavy (``import ppl`` is lazy, see
``ppl/__init__.py``), so :func:`main` installs the handler before anything heavy loads. A
program that imports ppl as a library is not touched. SIGTERM keeps its default action
(the process ends at once, no traceback; a shell shows status 143) until the output writer
defers it (output.py).
"""
from __future__ import annotations

import os

# The C module, loaded before any Python code runs: `import signal` first builds its enums, and
# a Ctrl-C in those milliseconds, before the handler below, printed a traceback through
# ppl/startup.py (1 run in 120 of the start-up test on a loaded machine)
import _signal


def main(argv: list[str] | None = None) -> int:
    """Run the ``ppl`` command (console script and ``python -m ppl``); returns its status.

    SIGINT ends the command quietly while ppl's modules import; after that, Python's own
    handler is back and the command's KeyboardInterrupt handling (cli.py, the fit loop) acts;
    once the command has its status, SIGINT is ignored (see :func:`_ignoring_ctrl_c`).
    """
    # an inherited ignore (`ppl fit ... &` in a script) stays: a Ctrl-C in the first 0.3 s
    # had ended such a run with 130, and later ones were ignored
    ignored = _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN
    previous = _signal.signal(_signal.SIGINT, _signal.SIG_IGN if ignored else _interrupted)
    import importlib
    from .cli import main as run
    # The commands' slow imports (numpy, autograd, lark), here rather than inside the command:
    # a KeyboardInterrupt inside a C extension's initialization surfaces as an ImportError.
    for module in ("api", "savedfit"):
        importlib.import_module(f"{__package__}.{module}")
    try:
        _signal.signal(_signal.SIGINT, previous)
        status = run(argv)
    except KeyboardInterrupt:      # in the few instructions before run's own handler
        os.write(2, b"ppl: interrupted\n")
        status = 130
    return _ignoring_ctrl_c(status)


def _ignoring_ctrl_c(status: int) -> int:
    """The command's status, SIGINT ignored from now on: the command has finished and said how.

    Python's teardown after main returns (a quarter of a second freeing numpy's and scipy's
    modules) first puts SIGINT back to its default action, so a Ctrl-C there killed the
    process: status -2 to a caller (a test), after a run that had printed its whole result
    and meant 0, or after 'ppl: interrupted' and 130. An ignored signal stays ignored there.
    """
    try:
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    except KeyboardInterrupt:      # one that came just before: raised by signal() itself
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        if status != 130:
            os.write(2, b"ppl: interrupted\n")
        return 130
    return status


def _interrupted(signum, frame):
    os.write(2, b"ppl: interrupted\n")
    os._exit(130)
