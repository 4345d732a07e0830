"""Atomic output: a run interrupted while writing leaves complete old files and no debris."""
from __future__ import annotations

import os

import pytest

from ppl import output
from ppl.errors import PplError


def test_files_are_written_completely(tmp_path):
    output.write_files(tmp_path, {"a.csv": "x\n1\n", "fit.json": "{}\n"})
    assert (tmp_path / "a.csv").read_text() == "x\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "fit.json"]


def test_interrupted_write_keeps_old_files_and_leaves_no_temporaries(tmp_path, monkeypatch):
    output.write_files(tmp_path, {"a.csv": "old a\n", "b.csv": "old b\n"})
    calls = []

    def interrupted_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # Ctrl-C arrives while the second file is being written
            raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        output.write_files(tmp_path, {"a.csv": "new a\n", "b.csv": "new b " * 10_000})
    assert (tmp_path / "a.csv").read_text() == "old a\n"
    assert (tmp_path / "b.csv").read_text() == "old b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(PplError, match="cannot write to this folder"):
        output.prepare_dir(blocker / "sub")
    assert blocker.read_text() == "keep"


def test_csv_keeps_every_digit_and_ints():
    text = output.csv_text(["step", "elbo"], [(1, 0.1 + 0.2)])
    assert text == "step,elbo\n1,0.30000000000000004\n"
