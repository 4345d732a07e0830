"""A Ctrl-C while the ``ppl`` command is still importing numpy, scipy and autograd (a second
or more) ends the command quietly with status 130, as one after start-up does, instead of
printing a traceback of the imports. A program that imports ppl as a library is not touched.
"""
from __future__ import annotations

import os
import signal
import sys
import threading


def _is_command() -> bool:
    """Whether this process is the ``ppl`` command (console script or ``python -m ppl``)."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if os.path.basename(sys.argv[0] or "") == "ppl":
        return True
    return len(argv) >= 3 and argv[1] == "-m" and argv[2] == "ppl"


def _interrupted(signum, frame):
    os.write(2, b"ppl: interrupted\n")
    os._exit(130)


class quiet_interrupts:
    """While the block runs (the package's imports), SIGINT ends the command quietly."""

    def __enter__(self):
        self.previous = None
        if _is_command() and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, _interrupted)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
