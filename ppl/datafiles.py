"""Reading data files: JSON, CSV and .npz (never pickle), each refused with one clear message
when hostile (huge ints, deep nesting, duplicate names, header bombs, FIFOs, devices).

``data.py`` checks the values against the model; this module only turns a file (or a dict)
into a raw name -> value mapping.
"""
from __future__ import annotations

import csv
import json
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import errors

try:
    from lzma import LZMAError
except ImportError:  # a Python built without lzma, whose zipfile cannot read such members
    LZMAError = NotImplementedError


# ----- reading ------------------------------------------------------------------------------

def read_data(data) -> dict[str, Any]:
    """The raw name -> value mapping of a dict, a pandas DataFrame (columns by name), a path
    to a data file, or None. pandas Series, Index and DataFrames inside a dict become arrays."""
    if data is None:
        return {}
    pandas = sys.modules.get("pandas")  # a DataFrame can only come from an imported pandas
    if pandas is not None and isinstance(data, pandas.DataFrame):
        for column in data.columns:
            # an int label (a DataFrame of a bare array) or a MultiIndex's tuple became '0'
            # or "('y', 'a')": 'data N is missing' beside undeclared names '0', '1'
            if not isinstance(column, str):
                raise errors.data_key_not_a_name(column, column=True)
        names = list(data.columns)
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:  # data[column] would be both columns, or one hide the other
            raise errors.file_error("the DataFrame", f"column '{twice}' appears twice")
        return {name: data.iloc[:, i].to_numpy() for i, name in enumerate(names)}
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, str):
                raise errors.data_key_not_a_name(key)
        if pandas is None:
            return dict(data)
        # a Series or an Index (df.index) is one data variable, a DataFrame a matrix (rows,
        # columns in order); so is a column's ``.values`` or ``.array`` when its dtype is
        # pandas' own (a nullable 'Float64' or 'Int64', as convert_dtypes() makes): an
        # ExtensionArray, refused as 'a FloatingArray'
        frames = (pandas.Series, pandas.Index, pandas.DataFrame,
                  pandas.api.extensions.ExtensionArray)
        return {name: value.to_numpy() if isinstance(value, frames) else value
                for name, value in data.items()}
    if not isinstance(data, (str, Path)):
        raise errors.bad_data_argument(type(data).__name__)
    if data == "":    # Path("") is the working folder: its .npy files were read as the data
        raise errors.bad_option("data", "must name a data file or a folder of .npy files; "
                                "found ''")
    try:
        return _read_path(Path(data), str(data))
    except OSError as error:  # unreadable: no permission (on the file or a folder above it)
        raise errors.file_error(str(data), error.strerror or str(error)) from None


def _read_path(path: Path, shown: str) -> dict[str, Any]:
    if path.is_dir():
        return _read_npy_folder(path, shown)
    if not path.exists():
        raise errors.file_error(shown, "no such data file")
    if not path.is_file():  # a FIFO would block, /dev/zero never end
        raise errors.not_a_regular_file(shown, path.is_dir())
    readers = {".json": _read_json, ".csv": _read_csv, ".npz": _read_npz, ".npy": _read_npy}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise errors.file_error(shown, f"unknown data file type '{path.suffix}'; expected "
                                ".json, .csv, .npz, .npy or a folder of .npy files")
    return reader(path, shown)


def load_json(path: Path, shown: str, encoding: str = "utf-8", **hooks) -> Any:
    """The JSON value in a file, each way its text is not JSON one located error: the one
    wording of data files, --init files and a saved fit's fit.json. Other errors (OSError, a
    hook's own ValueError) are the caller's to word."""
    try:
        return json.loads(path.read_text(encoding=encoding), **hooks)
    except RecursionError:
        raise errors.file_error(shown, "the JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise errors.invalid_json(shown, error) from None
    except UnicodeDecodeError:
        raise errors.file_error(shown, "the file is not UTF-8 text") from None


def load_json_names(path: Path, shown: str, **options) -> Any:
    """A JSON file of names (data, --init) as ``load_json`` reads it, a byte-order mark
    skipped and a name given twice in one object refused (json kept the last value);
    ``options`` go to json.loads."""
    try:
        return load_json(path, shown, "utf-8-sig", object_pairs_hook=_json_object, **options)
    except _Refused as refused:
        raise errors.file_error(shown, str(refused)) from None


def _read_json(path: Path, shown: str) -> dict[str, Any]:
    # Python's json accepts the non-standard NaN and Infinity tokens: they load as floats
    # and are then reported as not finite, with the element, like any other NaN.
    raw = load_json_names(path, shown, parse_int=_int)
    if not isinstance(raw, dict):
        raise errors.file_error(shown, "a JSON data file must hold one object of "
                                       f"names and values; found {describe(raw)}")
    return raw


class _Refused(ValueError):
    """Raised inside json.loads by the hooks below, or by ``_int`` for CSV; becomes
    file_error."""


# the digits of float64's largest value (1.8e308): an int of more is beyond every number data
# can hold. Up to it, data.py reads an int for a real as the nearest float64, as numpy's
# loadtxt does ('1' and 40 zeros is 1e40, as the literal 1e40 is; a cap of 30 digits
# refused it)
_MAX_INT_DIGITS = 309


def _int(text: str) -> int:
    # Python refuses ints of more than 4300 digits with a ValueError of its own; any int
    # too long to be a number ppl can hold is refused here, with its first digits
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > _MAX_INT_DIGITS and digits.isdigit():
        raise _Refused(f"the int {text[:12]}... has {len(digits)} digits; "
                       "data must fit in 64-bit ints or float64")
    return int(text)


def _json_object(pairs: list) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _Refused(f"the name '{key}' appears twice in one JSON object")
        found[key] = value
    return found


def _read_csv(path: Path, shown: str) -> dict[str, Any]:
    try:
        rows = _csv_rows(path.read_text(encoding="utf-8-sig").splitlines())
    except UnicodeDecodeError as error:
        raise errors.file_error(shown, f"cannot read as CSV: {error}") from None
    except _Refused as refused:
        raise errors.file_error(shown, str(refused)) from None
    if not rows:
        raise errors.file_error(shown, "the file is empty; expected a header row of names")
    header = [name.strip() for name in rows[0]]
    if not any(header):
        raise errors.file_error(shown, "line 1: the header row is blank; a CSV data file "
                                       "starts with a row of column names")
    # a ';'-separated (a spreadsheet where ',' is the decimal mark) or tab-separated file reads
    # as one column named 'x;y', which no declaration can match: say so here, not later as
    # an undeclared name and missing data
    for separator, shown_separator in ((";", "';'"), ("\t", "a tab")):
        if len(header) == 1 and separator in header[0]:
            raise errors.file_error(shown, f"line 1: the header is one column, {rows[0][0]!r}, "
                                           f"holding {shown_separator}: ppl reads a CSV file's "
                                           "cells separated by ','; save the file with ',' "
                                           "between cells and '.' as the decimal mark")
    for i, name in enumerate(header):
        if not name or header.count(name) > 1:
            reason = f"column {i + 1} has a blank name" if not name else \
                f"column '{name}' appears twice"
            if not name and i == 0:
                reason += " (pandas' to_csv writes its index so: pass index=False)"
            raise errors.file_error(shown, f"line 1: {reason}")
    columns: dict[str, list] = {name: [] for name in header}
    # in a one-column file an empty line before the last row is an empty cell (a spreadsheet
    # saves a missing value of a one-column sheet so), not a line to skip
    last_row = max((i for i, row in enumerate(rows) if row), default=0)
    for line, row in enumerate(rows[1:], start=2):
        if not row and len(header) == 1 and line - 1 < last_row:
            row = [""]
        if not row:
            continue
        if len(row) != len(header):
            raise errors.csv_row_width(shown, line, len(header), row)
        for name, cell in zip(header, row):
            columns[name].append(_csv_number(cell, f"line {line}, column '{name}'", shown)
                                 if cell.strip() else BlankCell(line))
    return columns


def _csv_rows(lines: list[str]) -> list[list[str]]:
    """The rows of a CSV file's lines. Strict: a lenient reader joins the lines after an
    unclosed quote into one cell, so a one-column file '"1', '2', '3' read as the number 123."""
    reader = csv.reader(lines, strict=True)
    rows: list[list[str]] = []
    while True:
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as error:
            raise _Refused(f"line {first_line}: cannot read as CSV ({error}); a quoted cell "
                           "ends with '\"' before the next ',' or the end of its line") from None
        rows.append(row)


class BlankCell:
    """A blank CSV cell, the way pandas' to_csv writes a missing value. Kept in its column,
    so that a column the model does not use may have one (as it may hold NaN or 'NA'); a
    column the model uses refuses it where it is checked, with its line (``describe``)."""
    __slots__ = ("line",)

    def __init__(self, line: int):
        self.line = line


def _csv_number(cell: str, where: str, shown: str):
    """An int or float, or the text itself (reported later as not a number, with its name).

    Python's int() and float() also read '1_000' and non-ASCII digits ('١', '１'); a data
    file's numbers are ASCII digits, as JSON's are, so such a cell is refused where it is."""
    text = cell.strip()
    # int() is tried only on what may be one: its ValueError on every float cell was most of
    # the reading time of a CSV of floats
    for kind in (_int, float) if text.lstrip("+-").isdigit() else (float,):
        try:
            number = kind(text)
        except _Refused as refused:
            raise errors.file_error(shown, f"{where}: {refused}") from None
        except ValueError:
            continue
        if not text.isascii() or "_" in text:
            raise errors.file_error(shown, f"{where}: {text!r} is not a plain number; the "
                                           "numbers of a data file are ASCII digits, "
                                           "without '_'")
        return number
    return text


def _read_npy(path: Path, shown: str) -> dict[str, Any]:
    """One .npy file: the data named by its file name (``x.npy`` is ``x``), memory-mapped
    (read-only) so that a minibatch fit reads only the rows it uses."""
    try:
        value = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise errors.file_error(shown, f"cannot read as .npy: {_npy_refusal(path, error)}"
                                ) from None
    except OSError as error:  # named here: in a folder, the file and not the folder
        raise errors.file_error(shown, error.strerror or str(error)) from None
    if not isinstance(value, np.ndarray):  # np.load opens a zip as an .npz archive
        value.close()
        raise errors.file_error(shown, "cannot read as .npy: the file is an .npz archive")
    return {path.stem: value}


def _npy_refusal(path: Path, error: Exception) -> str:
    """Why np.load refused ``path``: numpy's words say a file without the .npy magic string
    'contains pickled data' and suggest loading it unsafely, which ppl never does."""
    if "pickle" not in str(error):
        return str(error)
    with open(path, "rb") as file:
        magic = file.read(6)
    if magic != b"\x93NUMPY":
        return "it is not a .npy file (it does not start with numpy's header)"
    return ("it holds Python objects, which only unpickling could read (data is read with "
            "allow_pickle=False)")


def _read_npy_folder(folder: Path, shown: str) -> dict[str, Any]:
    """Every ``NAME.npy`` of a folder, memory-mapped, as the data NAME (int scalars used as
    dimensions may be left out: they are read off the arrays' shapes)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npy")
    if not files:
        raise errors.file_error(shown, "the folder has no .npy files")
    raw = {}
    for path in files:
        if not path.is_file():  # a FIFO would block, /dev/zero never end
            raise errors.not_a_regular_file(f"{shown}/{path.name}", path.is_dir())
        if path.stem in raw:  # y.NPY beside y.npy: refused, as a name twice anywhere else is
            twice = next(p.name for p in files if p.stem == path.stem)
            raise errors.npy_name_twice(shown, path.stem, twice, path.name)
        raw.update(_read_npy(path, f"{shown}/{path.name}"))
    return raw


def _read_npz(path: Path, shown: str) -> dict[str, Any]:
    """Each member ``NAME.npy`` of the zip archive as the data NAME, read without pickle."""
    with path.open("rb") as file:  # opened here, so that an OSError below is a damaged archive
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as error:
            raise errors.file_error(shown, f"cannot read as .npz: not a valid zip archive "
                                           f"({error})") from None
        raw = {}
        with archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if name == info.filename:
                    raise errors.file_error(shown, f"cannot read as .npz: member "
                                                   f"'{info.filename}' is not named NAME.npy "
                                                   "(np.savez writes one NAME.npy per array)")
                if name in raw:
                    raise errors.file_error(shown, f"cannot read as .npz: two members are "
                                                   f"named '{info.filename}'")
                try:
                    raw[name] = _read_npz_member(archive, info, name, shown)
                except _BROKEN_MEMBER as error:
                    raise errors.file_error(shown, f"cannot read as .npz: member "
                                                   f"'{info.filename}': {error}") from None
        return raw


# What a damaged member raises: bad .npy magic or header, or too few bytes (ValueError,
# EOFError); a bad CRC or local header (BadZipFile); an offset outside the file (OSError);
# corrupt deflate data (zlib.error); an unknown compression method (NotImplementedError);
# encryption (RuntimeError); corrupt bzip2 (OSError) or lzma data (LZMAError).
_BROKEN_MEMBER = (ValueError, EOFError, zipfile.BadZipFile, OSError, zlib.error,
                  NotImplementedError, RuntimeError, LZMAError)


def _read_npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
                     shown: str) -> np.ndarray:
    """One array, its header checked first: object arrays are refused without unpickling,
    and an array whose header claims more data than its member holds before allocating it
    (10^12 elements in 300 bytes)."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
    if dtype.hasobject:
        raise errors.file_error(shown, f"cannot read as .npz: member '{info.filename}' holds "
                                       "Python objects, which only unpickling could read "
                                       "(data is read with allow_pickle=False)")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if claimed > info.file_size:
        raise errors.file_error(shown, f"array '{name}' claims shape {list(shape)} "
                                       f"({claimed:,} bytes) but holds {info.file_size:,}")
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def describe(raw) -> str:
    if isinstance(raw, (bool, np.bool_)):
        return f"the boolean {str(bool(raw)).lower()}"
    if raw is None:
        return "null"
    if isinstance(raw, BlankCell):
        return f"a blank cell (a missing value, on line {raw.line} of the CSV file)"
    if isinstance(raw, str):
        return f"the string {raw!r}"
    if isinstance(raw, dict):
        return "an object"
    if isinstance(raw, (list, tuple)):
        return "a list"
    kind = type(raw).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"
