"""All-or-nothing output: a set of files appears complete, or the old set stays.

Each file is written to a temporary file in the target folder and flushed to disk; every
existing target is kept as a hard link (a backup) until all renames have succeeded, and a
failed rename puts the backups back, so a failure at any point leaves the complete old set.
SIGINT, SIGTERM, SIGHUP and SIGQUIT are deferred while a set is written (then delivered), so
an interrupt cannot leave a temporary file or half a set either. Files get the user's umask.
"""
from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np

from .errors import file_error

# SIGHUP (a closed terminal or SSH session) and SIGQUIT too: a hangup while a set was written
# killed the run and left a 136 MB temporary draws file in the folder (found by fuzzing)
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
                 if hasattr(signal, name))
_TEMPORARY = ".ppl-"  # prefix of every temporary and backup file


def prepare_dir(path: str | Path) -> Path:
    """Check, before any work, that the output folder can be written (or created).

    A folder that does not exist yet is created and removed again: a run that fails before
    writing leaves nothing behind. (os.access alone said yes to root for /proc/x, whose mkdir
    then failed after the whole fit.) SIGINT and SIGTERM are held meanwhile: SIGTERM's default
    action skipped the clean-up and left the folder, with the probe file in it.
    """
    folder = Path(path)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    created = []
    with _DeferredSignals(folder, []):
        try:
            if existing != folder and existing.is_dir() and \
                    os.access(existing, os.W_OK | os.X_OK):
                created = _make_folder(folder)
            if folder.is_dir():
                probe = tempfile.NamedTemporaryFile(dir=folder, prefix=_TEMPORARY + "probe-")
                probe.close()
            elif not existing.is_dir():
                raise NotADirectoryError(f"{existing} is not a folder")
            else:
                raise PermissionError(f"{existing} is not writable")
        except OSError as error:
            raise file_error(str(folder),
                             f"cannot write to this folder ({error.strerror or error})")
        finally:
            _remove_empty(created)
    return folder


class InterruptedAfterWriting(KeyboardInterrupt):
    """The Ctrl-C held while a set of files was written, raised once all of them were:
    ``folder`` holds the complete new ``names`` (the command says so, not only 'interrupted')."""

    def __init__(self, folder: Path, names: list[str]):
        super().__init__()
        self.folder, self.names = folder, names


class _DeferredSignals:
    """Hold _SIGNALS while the block runs; deliver the first one afterwards.

    Only the main thread can set handlers; elsewhere the block runs undeferred. A
    KeyboardInterrupt the delivery raises after ``written`` files were all written is an
    InterruptedAfterWriting.
    """

    def __init__(self, folder: Path, written: list[str]):
        self.folder, self.written = folder, written

    def __enter__(self):
        self.caught, self.previous = [], {}
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self.previous[sig] = signal.signal(sig, self._hold)
        return self

    def _hold(self, signum, frame):
        self.caught.append(signum)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.caught:
            try:
                signal.raise_signal(self.caught[0])  # the previous handler acts on it now
            except KeyboardInterrupt:
                if exc[0] is None:
                    raise InterruptedAfterWriting(self.folder, self.written) from None
                raise
        return False


def write_files(folder: Path, contents: dict[str, str | bytes]) -> None:
    """Write every ``name -> text`` (or bytes: a PNG) into ``folder`` (created if needed), all
    or nothing.

    Raises
    ------
    PplError : a file cannot be written or replaced; the folder then holds its old files
        (and a folder created here is removed again).
    """
    folder = Path(folder)
    with _DeferredSignals(folder, list(contents)):
        created = _make_folder(folder)
        staged: list[tuple[Path, Path]] = []
        try:
            _refuse_folders(folder, contents)
            for name, text in contents.items():
                handle, temporary = _create_temporary(folder, name)
                staged.append((temporary, folder / name))  # before writing: cleaned up
                _write(handle, text)
            _replace_all(folder, staged)
        except OSError as error:
            raise file_error(str(folder),
                             f"cannot write output files ({error.strerror or error})") from None
        finally:
            for temporary, _ in staged:
                _remove(temporary)
            _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders ``_make_folder`` created (outermost first) that are still empty."""
    for made in reversed(created):
        if not any(made.iterdir()):
            made.rmdir()


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; the ones created, outermost first (none left
    if one cannot be created)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            made.append(path)
    except OSError as error:
        _remove_empty(made)
        raise file_error(str(missing[0]), f"cannot create the folder ({error.strerror or error})")
    return made


def _refuse_folders(folder: Path, contents) -> None:
    for name in contents:
        if (folder / name).is_dir():
            raise IsADirectoryError(21, "a folder is in the way", str(folder / name))


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new temporary file for ``name`` in ``folder``, open for writing, with the mode open()
    gives (0666 less the umask, applied by the system). mkstemp's 0600 ignores the umask, and
    reading the umask to correct it means setting it, for the whole process: a file another
    thread created meanwhile got the mode of umask 0022 (0644 under the user's 0077)."""
    while True:
        path = folder / f"{_TEMPORARY}{name}.{secrets.token_hex(8)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(path, flags, 0o666), path
        except FileExistsError:     # a name already taken: draw another
            continue


def _write(handle: int, content: str | bytes) -> None:
    with os.fdopen(handle, "wb") as stream:
        stream.write(content.encode("utf-8") if isinstance(content, str) else content)
        stream.flush()
        os.fsync(stream.fileno())


def _replace_all(folder: Path, staged: list[tuple[Path, Path]]) -> None:
    """Rename every temporary over its target; on a failure, restore every target."""
    backups = {}
    done: list[Path] = []
    try:
        for _, target in staged:
            if target.exists():
                backups[target] = _backup(folder, target)
        for temporary, target in staged:
            os.replace(temporary, target)
            done.append(target)
    except BaseException:
        for target in done:
            if target in backups:
                os.replace(backups.pop(target), target)
            else:
                _remove(target)
        raise
    finally:
        for backup in backups.values():
            _remove(backup)


def _backup(folder: Path, target: Path) -> Path:
    """A second name for ``target``'s current content (a hard link, or a copy)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=f"{_TEMPORARY}{target.name}.",
                                    suffix=".old")
    os.close(handle)
    backup = Path(name)
    try:
        os.unlink(backup)
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
