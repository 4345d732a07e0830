"""Atomic file writes: every output file appears complete or not at all.

Each file is written to a temporary file in the same folder, flushed to disk, then renamed over
its target (``os.replace`` is atomic on POSIX and Windows), so an interrupted run leaves the old
file or the new one, never half of either.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import file_error


def prepare_dir(path: str | Path) -> Path:
    """Create the output folder if needed and check that it can be written, before any work."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".ppl-probe-", delete=True)
        probe.close()
    except OSError as error:
        raise file_error(str(folder), f"cannot write to this folder ({error.strerror or error})")
    return folder


def write_files(folder: Path, contents: dict[str, str]) -> None:
    """Write every ``name -> text`` into ``folder``: all temporaries first, then the renames.

    Writing every temporary before renaming any means a failure while producing the outputs
    leaves all the old files in place.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in contents.items():
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            staged.append((temporary, folder / name))  # before writing: cleaned up if cut short
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
        for temporary, target in staged:
            os.replace(temporary, target)
    except OSError as error:
        raise file_error(str(folder), f"cannot write output files ({error.strerror or error})")
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)


def csv_text(header: list[str], rows) -> str:
    """CSV text with ``header`` then one line per row (floats with full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))  # repr keeps every digit of a float64


def json_text(value) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"
