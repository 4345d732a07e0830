"""Saving a fit to a folder and reading it back (``ppl fit --out``, ``summary``, ``predict``).

Files: draws.csv (element names, one row per draw), summary.csv, elbo.csv (step, ELBO),
fit.json (provenance, options, convergence, guide parameters by element name, and the lines
``ppl fit`` printed, which ``ppl summary`` prints again) and model.ppl (a copy of the model
text). All are written atomically by ``output.write_files``. Paths in fit.json are absolute,
so a saved fit is usable from any working directory. Provenance holds the SHA-256 of the
model's meaning and of the data's values: a fit is restored only from the same model and
data (``restore_fit``); fit.json also holds the SHA-256 of each table, which is read only if
it is the one the fit wrote (``_check_unchanged``).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import math
import platform
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .datafiles import load_json_names
from .errors import (PplError, corrupted_saved_fit, file_error, model_changed_copy_used,
                     no_such_fit_folder, non_finite_summary, not_a_file_reason, not_a_saved_fit,
                     not_ppls_output, saved_file_changed, saved_fit_too_new)
from .guides import family, user
from .ir import element_names
from .output import csv_text, json_text, write_files
from .posterior import Fit
from .summary import COLUMNS, MCSE, Summary


def _versions() -> dict[str, str]:
    """The versions a fit's numbers depend on. scipy's too: its L-BFGS-B (scaled, DADVI, MAP
    fits) and special functions moved the last digits of eight schools' scaled and DADVI
    fits between scipy 1.14 and 1.17 (same seed, numpy, ppl), unrecorded before."""
    import autograd  # noqa: F401 - only for its version
    import lark
    import scipy
    from importlib.metadata import PackageNotFoundError, version
    found = {"ppl": __version__, "python": platform.python_version(), "numpy": np.__version__,
             "scipy": scipy.__version__, "lark": lark.__version__}
    try:
        found["autograd"] = version("autograd")
    except PackageNotFoundError:
        found["autograd"] = "unknown"
    return found


def _flatten(draws: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """(element names, one block [n, elements] per name in its own dtype: a discrete value's
    draws are ints)."""
    names, blocks = [], []
    for name, values in draws.items():
        names += element_names(name, values.shape[1:])
        blocks.append(np.asarray(values).reshape(len(values), -1))
    return names, blocks


def _table(blocks: list[np.ndarray]) -> np.ndarray:
    """The blocks side by side as floats [n, columns]."""
    if not blocks:
        return np.zeros((0, 0))
    return np.concatenate([np.asarray(b, dtype=float) for b in blocks], axis=1)


def _table_rows(blocks: list[np.ndarray]):
    """The rows of the blocks side by side, each cell a Python int or float, so that csv_text
    writes a count as 3, not 3.0, as the API's draws of it are ints."""
    n = len(blocks[0]) if blocks else 0
    return ([v for b in blocks for v in b[i].tolist()] for i in range(n))


def _absolute(path: str | None) -> str | None:
    # "<string>" (a model given as text) and None (data given as a dict) are not paths
    if path is None or path == "<string>":
        return path
    return str(Path(path).resolve())


# fit.json's entry 'saved_fit_format': what save_fit writes marks a folder as a saved fit, and
# says how to read it. Raise it when a change would make an older ppl misread a saved fit (it
# then refuses it); a fit.json without the entry was saved before it, in format 1.
FORMAT = 1
# every file save_fit writes (model.ppl only when the model's text is known)
FILES = ("draws.csv", "summary.csv", "elbo.csv", "fit.json", "model.ppl")
# the files save_predictive writes into a saved fit's folder
PREDICTIVE_FILES = ("predictive.csv", "predictive_summary.csv")
# the files plot.plot_fit writes there
PLOT_FILES = ("elbo.png", "marginals.png")


def save_fit(fit: Fit, folder: Path) -> None:
    """Write draws.csv, summary.csv, elbo.csv, fit.json and model.ppl into ``folder``."""
    names, blocks = _flatten(fit._draws())   # the fit's own arrays, only read: no copy
    summary = fit.summary()
    r = fit.result
    provenance = {k: v for k, v in fit.info.items() if k != "model_text"}
    info = {
        "saved_fit_format": FORMAT,
        **provenance,
        "model_path": _absolute(fit.info.get("model_path")),
        "data_path": _absolute(fit.info.get("data_path")),
        "options": dataclasses.asdict(fit.options),
        "seed": fit.options.seed,
        "versions": _versions(),
        "converged": bool(r.converged),
        "reason": r.reason,
        "steps": int(r.steps),
        "seconds": float(r.seconds),
        "final_elbo": float(r.final_elbo),
        # --guide auto moved the fit after its steps: the final ELBO they ended at (elbo.csv's)
        **({"unmoved_final_elbo": float(r.unmoved_final_elbo)} if r.moved else {}),
        # a fit that went on from another family's steps (a warm start): where each begins
        **({"phases": [{"family": name, "first_step": index + 1} for name, index in r.phases]}
           if r.phases else {}),
        # params only: its reason does not say so when Ctrl-C ended it (is_point_fit)
        **({"point_fit": True} if user.point_only(fit.compiled) else {}),
        **_trust(fit),
        # discrete latents: name -> [*shape, K] posterior probabilities of its values
        "probabilities": {name: {"values": fit.values()[name].tolist(), "p": p.tolist()}
                          for name, p in fit.probabilities().items()},
        "summary_note": summary.note,
        "guide": {"family": r.guide.name,
                  "parameters": r.guide.to_dict(r.theta, list(r.names))},
        # param statements: name -> fitted value (a number or nested lists)
        "params": {name: np.asarray(v).tolist() for name, v in fit.params().items()},
        # what ppl predict and ppl plot write here, recorded as they write it: none yet
        # (recording_written; an empty record tells a file of the user's own from theirs)
        "written_sha256": {},
    }
    if getattr(r, "lr_covariance", None) is not None:
        # DADVI: draws and predictive draws come from the linear-response Gaussian
        info["guide"]["lr_covariance"] = np.asarray(r.lr_covariance).tolist()
    if hasattr(r, "draws_used"):
        info["dadvi"] = {"draws": int(r.draws_used), "sds": r.sds, "optimizer": r.optimizer,
                         "evaluations": int(r.evaluations),
                         # the sandwich directions the summary's mcse column is computed from
                         # (restore_fit): they are not recomputed without fitting again
                         "mcse_directions": np.asarray(r.mcse_directions).tolist()}
    tables = {
        "draws.csv": csv_text(names, _table_rows(blocks)),
        "summary.csv": csv_text(["name", *summary.columns],
                                ([name, *row] for name, row in summary.rows.items())),
        "elbo.csv": csv_text(["step", "elbo"], ((i + 1, e) for i, e in enumerate(fit.elbo))),
    }
    # what the readers check the tables against (_check_unchanged)
    info["files_sha256"] = {name: hashlib.sha256(text.encode("utf-8")).hexdigest()
                            for name, text in tables.items()}
    write_files(folder, {
        **tables,
        "fit.json": json_text(info),
        **({"model.ppl": fit.info["model_text"]} if "model_text" in fit.info else {}),
    })


def _trust(fit: Fit) -> dict:
    """k̂ (null when infinite: JSON has no inf), PSIS details, the verdict, the starts."""
    p = fit.psis
    finite = float(p.khat) if np.isfinite(p.khat) else None
    found = {"khat": finite,
             "psis": {"khat": finite if finite is not None else str(p.khat),
                      "threshold": p.threshold if np.isfinite(p.threshold) else None,
                      "draws": int(p.log_weights.size), "nonfinite": p.n_nonfinite,
                      "ess": p.ess, "corrected": fit.corrected},
             "verdict": {"level": fit.verdict().level, "line": fit.verdict().line}}
    if fit.starts is not None:
        found["starts"] = fit.starts.to_dict()
    if fit.auto is not None:
        found["auto"] = fit.auto.to_dict()
    return found


def is_point_fit(info: dict) -> bool:
    """Whether fit.json is a params-only fit's (point estimates, infer/point.py): its trace and
    final ELBO are the log joint at the params, and nothing is drawn. Its entry 'point_fit'
    (written since Ctrl-C keeps such a fit, reason 'interrupted') or, saved before, its
    reason."""
    from .infer import point
    return info.get("point_fit") is True or point.is_point_fit(info["reason"])


def holds_saved_fit(folder: Path) -> bool:
    """Whether ``folder`` holds a fit that ppl wrote, whose files a new fit may replace: its
    fit.json is an object with the entry 'saved_fit_format' or, saved before that entry was
    written, one recording a ppl version with every entry the saved-fit commands read. Any
    other fit.json is the user's own (another tool's may well record the ppl it used)."""
    path = folder / "fit.json"
    if not path.is_file():
        return False
    try:
        info = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(info, dict) or "saved_fit_format" in info:
        return isinstance(info, dict)
    try:
        _check_fit_json(info, path)
    except PplError:
        return False
    return isinstance(info.get("versions"), dict) and "ppl" in info["versions"]


def fitted_model_path(folder: Path) -> str | None:
    """The model path the saved fit in ``folder`` records (fit.json's 'model_path'), or None
    where there is none to read."""
    try:
        info = json.loads((folder / "fit.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    path = info.get("model_path") if isinstance(info, dict) else None
    return path if isinstance(path, str) else None


def read_fit_json(folder: Path) -> dict:
    """The saved fit's fit.json as a dict, with every entry that ``ppl summary``, ``plot`` and
    ``predict`` read checked; a clear error if it is missing, unreadable or corrupted."""
    path = folder / "fit.json"
    try:
        _refuse_special(path)
        # worded as a data file's; a name given twice is refused, as in a data file (json
        # kept the last value: a hand-edited duplicate 'converged' read as the later one)
        info = load_json_names(path, str(path), parse_int=_json_int)
    except FileNotFoundError:
        if not folder.exists():     # a mistyped DIR: 'DIR/fit.json: no saved fit here' said
            raise no_such_fit_folder(str(folder)) from None     # the folder was there
        raise file_error(str(path), "no saved fit here (run 'ppl fit MODEL --out DIR' first)") \
            from None
    except NotADirectoryError:    # 'ppl summary DIR/fit.json': the errno and path twice
        raise file_error(str(folder), "not a folder; a saved fit is the folder that 'ppl fit "
                         "MODEL --out DIR' wrote") from None
    except OSError as error:
        raise file_error(str(path), f"cannot read the saved fit ({error.strerror or error})") \
            from None
    except ValueError as error:
        raise file_error(str(path), f"cannot read the saved fit ({error})") from None
    _check_fit_json(info, path)
    return info


def _refuse_special(path: Path) -> None:
    """An OSError for a saved fit's file that is neither missing nor a regular file (a folder
    would fail to open anyway): reading a FIFO waited forever, /dev/zero never ends."""
    if path.exists() and not path.is_file():
        raise OSError(f"{path.name} is {not_a_file_reason(path.is_dir())}")


def _json_int(text: str) -> int:
    # an int beyond a float's range would overflow where it is printed or computed with
    if len(text.lstrip("-")) > 308:
        raise ValueError(f"the integer {text[:20]}... is too large")
    return int(text)


# entry -> (types allowed, what to say): the entries the commands read, a dotted name inside
# the entry listed before it. Each guide family reads its own parameters (guides/*.py
# from_dict, checked in _saved_guide); FitOptions checks the options.
_FIT_JSON = {"model_path": (str, "a path"), "model_sha256": (str, "a SHA-256 hex digest"),
             "data_path": ((str, type(None)), "a path or null"), "options": (dict, "an object"),
             "converged": (bool, "true or false"), "reason": (str, "a string"),
             "steps": (int, "an int"), "seconds": ((int, float), "a number"),
             "final_elbo": ((int, float), "a number"),
             "khat": ((int, float, type(None)), "a number or null"),
             "verdict": (dict, "an object"), "verdict.line": (str, "a string"),
             "summary_note": (str, "a string"), "guide": (dict, "an object"),
             "guide.family": (str, "a guide family name"),
             "guide.parameters": (dict, "an object")}


def _check_fit_json(info, path: Path) -> None:
    """Refuse a fit.json that is not what save_fit writes, naming the first bad entry; one
    with none of save_fit's entries is another program's, not a corrupted one of ppl's."""
    if not isinstance(info, dict):
        raise not_a_saved_fit(str(path), "not a JSON object")
    if "saved_fit_format" not in info and not info.keys() & _FIT_JSON.keys():
        raise not_a_saved_fit(str(path), "it has none of the entries 'ppl fit --out' writes "
                                         "(saved_fit_format, model_path, options, guide, ...)")
    version = info.get("saved_fit_format", 1)   # 1: saved before the entry was written
    if type(version) is not int or version < 1:
        raise corrupted_saved_fit(str(path), "entry 'saved_fit_format' must be a positive int")
    if version > FORMAT:        # a later ppl's: its entries may mean what this one cannot know
        raise saved_fit_too_new(str(path), version, FORMAT)
    for name, (kinds, what) in _FIT_JSON.items():
        *outer, key = name.split(".")
        holder = info
        for part in outer:
            holder = holder[part]     # an object: checked before its entries
        if key not in holder:
            raise corrupted_saved_fit(str(path), f"missing entry '{name}'")
        value = holder[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
            raise corrupted_saved_fit(str(path), f"entry '{name}' must be {what}")
    # numbers save_fit never writes (a count, a duration, k̂ is null when infinite), which
    # 'ppl summary' printed as they were: 'after -5 steps in nan s'
    for name, least in (("steps", 0), ("seconds", 0), ("khat", -np.inf)):
        value = info[name]
        if value is not None and not (math.isfinite(value) and value >= least):
            raise corrupted_saved_fit(str(path), f"entry '{name}' is {value}; it must be a "
                                                 "finite number" + (" >= 0" if least == 0 else ""))
    fit_options(info, path)


def fit_options(info: dict, path: Path):
    """The saved fit's FitOptions, from the entry 'options' of its fit.json at ``path``."""
    from .options import FitOptions
    try:
        return FitOptions(**info["options"])
    except PplError as error:
        raise corrupted_saved_fit(str(path), f"entry 'options': {error.message}") from None


def read_summary(folder: Path, info: dict) -> Summary:
    """The saved summary.csv as a Summary table, with fit.json's summary_note (``info``)
    printed above it."""
    path = folder / "summary.csv"
    rows = _rows(path)
    header = _header(path, rows, (["name", *COLUMNS], ["name", *COLUMNS, MCSE]))
    table: dict[str, tuple[float, ...]] = {}
    for line, row in rows:
        if not row:
            continue
        values = _numbers(path, line, row, len(header), first=1)
        if not row[0] or row[0] in table:
            raise corrupted_saved_fit(str(path), f"line {line}: " + (
                "a blank name" if not row[0] else f"the name {row[0]!r} appears twice"))
        table[row[0]] = values
    _check_unchanged(path, info)
    return Summary(table, tuple(header[1:]), info["summary_note"])


def read_draws(folder: Path, info: dict) -> tuple[list[str], np.ndarray]:
    """The saved draws.csv: its element names and the draws [draws, elements]."""
    path = folder / "draws.csv"
    found = read_numbers(path)
    _check_unchanged(path, info)
    return found


def read_elbo(folder: Path, info: dict) -> np.ndarray:
    """The saved ELBO trace [steps, 2]: the step (1, 2, 3, ...) and the ELBO estimate."""
    path = folder / "elbo.csv"
    elbo = read_numbers(path, ["step", "elbo"])[1]
    steps = np.arange(1, len(elbo) + 1)
    for i in np.flatnonzero(elbo[:, 0] != steps)[:1]:
        raise corrupted_saved_fit(str(path), f"row {i + 1} has step {elbo[i, 0]:g}; the "
                                             "steps count 1, 2, 3, ...")
    for i in np.flatnonzero(~np.isfinite(elbo[:, 1]))[:1]:
        # the fit skips steps whose ELBO is not finite: it never writes one
        raise corrupted_saved_fit(str(path), f"the ELBO at step {i + 1} is {elbo[i, 1]}")
    _check_unchanged(path, info)
    return elbo


def read_phases(info: dict, steps: int, path: Path) -> list[tuple[str, int]]:
    """fit.json's 'phases' (save_fit): (family, its first step) of each family whose steps
    the trace of ``steps`` holds, in order; [] for a fit of one family (or saved before the
    entry was written)."""
    phases = info.get("phases", [])
    where = "entry 'phases' must be a list of objects with a 'family' (a string) and a " \
            "'first_step' (an int)"
    if not isinstance(phases, list) or not all(
            isinstance(p, dict) and isinstance(p.get("family"), str)
            and type(p.get("first_step")) is int for p in phases):
        raise corrupted_saved_fit(str(path), where)
    firsts = [p["first_step"] for p in phases]
    if firsts and (firsts[0] != 1 or firsts != sorted(set(firsts)) or firsts[-1] > steps):
        raise corrupted_saved_fit(str(path), f"entry 'phases': the first steps {firsts} must "
                                             f"begin at 1 and rise, within the {steps} steps "
                                             "of elbo.csv")
    return [(p["family"], p["first_step"]) for p in phases]


def _check_unchanged(path: Path, info: dict) -> None:
    """Refuse a table whose SHA-256 is not the one fit.json records for it (fits saved before
    'files_sha256' was written have none). A column renamed, dropped or added, rows cut at a
    line's end, or a value changed still read as a table, and plot drew them as the fit's."""
    recorded = info.get("files_sha256")
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise corrupted_saved_fit(str(path.with_name("fit.json")),
                                  "entry 'files_sha256' must be an object")
    if path.name not in recorded:
        return
    digest = hashlib.sha256()
    with path.open("rb") as stream:     # in blocks: a large draws.csv is not held twice
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != recorded[path.name]:
        raise saved_file_changed(str(path))


def read_numbers(path: Path, header: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """The header and the numbers [rows, columns] of a CSV table that save_fit wrote
    (draws.csv, elbo.csv); ``header``, when given, is the one the file must have.

    Raises
    ------
    PplError naming the file, and the line where it can, when it is missing, empty or not
    a header and rows of one number per column.
    """
    rows = _rows(path)
    found = _header(path, rows, () if header is None else (header,))
    first = next((item for item in rows if item[1]), None)     # the first line that is not blank
    if first is None:
        # a fit of no steps or no elements has no rows. Not left to loadtxt, which warns of
        # them: silencing that needs warnings.catch_warnings, which sets the process's filters
        # (two commands in threads could leave 'ignore UserWarning' set for good)
        return found, np.zeros((0, len(found)))
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, comments=None,
                            encoding="utf-8")
    except (OSError, ValueError):
        values = None
    if values is None or values.shape[1] != len(found):
        for line, row in itertools.chain([first], rows):  # read again to name the bad line
            if row:
                _numbers(path, line, row, len(found))
        raise corrupted_saved_fit(str(path), "not a table of numbers")
    return found, values


def _rows(path: Path):
    """(line number, cells) of each line of a CSV file of the saved fit; line 1 is its
    header."""
    try:
        _refuse_special(path)
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            for row in reader:
                yield reader.line_num, row
    except FileNotFoundError:
        raise file_error(str(path), "missing from the saved fit") from None
    except (OSError, ValueError, csv.Error) as error:
        raise corrupted_saved_fit(str(path), f"cannot read it as CSV ({error})") from None


def _header(path: Path, rows, allowed: tuple[list[str], ...]) -> list[str]:
    """The first row of ``rows``, which must be one of ``allowed`` (any, when none is)."""
    _, header = next(rows, (0, None))
    expected = " or ".join(repr(",".join(h)) for h in allowed)
    if header is None:
        raise corrupted_saved_fit(str(path), "the file is empty" + (
            f"; expected the header {expected}" if allowed else ""))
    if allowed and header not in allowed:
        raise corrupted_saved_fit(str(path), f"line 1: expected the header {expected}; found "
                                             f"{','.join(header)[:60]!r}")
    return header


def _numbers(path: Path, line: int, row: list[str], width: int, first: int = 0) -> tuple:
    """The numbers in ``row`` from cell ``first`` on; it must have ``width`` cells."""
    if len(row) != width:
        raise corrupted_saved_fit(str(path), f"line {line}: expected {width} cells, "
                                             f"found {len(row)}")
    values = []
    for cell in row[first:]:
        try:
            values.append(float(cell))
        except ValueError:
            raise corrupted_saved_fit(str(path), f"line {line}: {cell[:40]!r} is not a "
                                                 "number") from None
    return tuple(values)


def restore_fit(folder: Path) -> Fit:
    """Rebuild a Fit from a saved folder: reload the model and data, reuse the guide parameters.

    The model is read from its recorded path, or, when that file is gone, from the folder's
    copy model.ppl. Edits to comments, blank lines or spacing do not matter (``Model.hash``).

    Raises
    ------
    PplError when the model's meaning changed since the fit, or fit.json is incomplete or
    corrupted.
    """
    from .api import check_draw_memory
    info = read_fit_json(folder)
    path = folder / "fit.json"
    model = _saved_model(folder, info["model_path"], info["model_sha256"])
    options = fit_options(info, path)
    if info["data_path"] is None and model.ir.data:
        # null is a fit of no data file (a model without data); loading MODEL.json beside the
        # model, or none, said 'the data: the data changed' or 'data y is missing' at the model
        raise corrupted_saved_fit(str(path), "entry 'data_path' is null (no data file), but "
                                             "the model declares data")
    if info["data_path"] is not None and not Path(info["data_path"]).exists():
        # 'no such data file' alone named a path the command line never gave
        raise file_error(info["data_path"], "the data file this fit was saved from is gone "
                                            "(fit.json records it); put it back, or fit again")
    concrete, values, compiled = model.prepare(info["data_path"])
    _check_same_data(info, values)
    # k̂'s draws are the saved options' (posterior.py): too many were a MemoryError
    check_draw_memory(concrete, compiled, options, f"{path}: the saved fit's options.draws")
    names = compiled.unconstrained_names()
    guide, theta = _saved_guide(info["guide"], compiled, names, path)
    _check_guide_moments(guide, theta, names, info["guide"]["parameters"], path)
    covariance = _lr_covariance(info["guide"].get("lr_covariance"), len(names), path)
    elbo = read_elbo(folder, info)[:, 1] if (folder / "elbo.csv").exists() else np.zeros(0)
    result = _saved_result(info, guide, theta, names, elbo, covariance, path)
    provenance = {k: info[k] for k in ("model_path", "model_sha256", "data_path",
                                       "data_sha256") if k in info}
    provenance["model_text"] = model.text     # for predictions on new data
    return Fit(concrete, compiled, result, options, provenance)


def _saved_result(info: dict, guide, theta: np.ndarray, names: list[str], elbo: np.ndarray,
                  covariance: np.ndarray | None, path: Path):
    """The fit's result as the fit had it (AdviResult, or DadviResult for a DADVI fit), so the
    restored Fit computes what the fitted one showed: its summary (a DADVI fit's linear-response
    note, mirrored draws and mcse column), convergence line, repr and verdict. The step size
    is not saved (nothing after the fit reads it): nan."""
    from .infer.advi import AdviResult
    unmoved = info.get("unmoved_final_elbo")     # a number: save_fit's; else not moved
    common = (guide, theta, tuple(names), elbo, info["converged"], info["reason"],
              info["steps"], info["seconds"], float("nan"), info["final_elbo"])
    moved = {"unmoved_final_elbo": float(unmoved)} if type(unmoved) in (int, float) else {}
    if fit_options(info, path).method != "dadvi":
        return AdviResult(*common, **moved)
    from .infer.dadvi import LINEAR_RESPONSE, MEAN_FIELD_SDS, DadviResult
    saved = info.get("dadvi")
    if not isinstance(saved, dict):
        raise corrupted_saved_fit(str(path), "entry 'dadvi' must be an object (a DADVI fit's "
                                             "fixed draws and sds)")
    draws, sds = saved.get("draws"), saved.get("sds")
    optimizer, evaluations = saved.get("optimizer"), saved.get("evaluations")
    for name, bad, what in (("draws", type(draws) is not int or draws < 1, "a positive int"),
                            ("sds", sds not in (LINEAR_RESPONSE, MEAN_FIELD_SDS),
                             f"{LINEAR_RESPONSE!r} or {MEAN_FIELD_SDS!r}"),
                            ("optimizer", type(optimizer) is not str, "a string"),
                            ("evaluations", type(evaluations) is not int or evaluations < 0,
                             "an int >= 0")):
        if bad:
            raise corrupted_saved_fit(str(path), f"entry 'dadvi.{name}' must be {what}")
    directions = _mcse_directions(saved.get("mcse_directions"), (theta.size, draws), path)
    return DadviResult(*common, **moved, draws_used=draws, lr_covariance=covariance,
                       mcse_directions=directions, sds=sds, optimizer=optimizer,
                       evaluations=evaluations)


def _mcse_directions(value, shape: tuple[int, int], path: Path) -> np.ndarray | None:
    """DADVI's sandwich directions [guide parameters, fixed draws], which the summary's mcse
    column is computed from; None for a fit saved before fit.json kept them (its summary then
    says the mcse is not known)."""
    if value is None:
        return None
    try:
        matrix = np.array(value, dtype=float)
        if matrix.size == 0 and shape[0] == 0:   # no parameters: json wrote [] for [0, M]
            return np.zeros(shape)
        if matrix.shape == shape and np.all(np.isfinite(matrix)):
            return matrix
    except (TypeError, ValueError, OverflowError):
        pass
    raise corrupted_saved_fit(str(path), f"entry 'dadvi.mcse_directions' must be a "
                                         f"{shape[0]} x {shape[1]} matrix of finite numbers")


def _check_same_data(info: dict, values: dict) -> None:
    """Refuse data that changed since the fit: the restored fit would weight the fitted guide
    by the new data's posterior (its draws and predictions moved to it without a word). A
    fit.json written before data hashes were recorded has none to compare."""
    from .api import data_hash
    if "data_sha256" in info and info["data_sha256"] != data_hash(values):
        raise file_error(info["data_path"] or "the data", "the data changed since this fit "
                                                           "was saved; fit it again")


def _saved_guide(saved: dict, compiled, names: list[str], path: Path):
    """(the fitted family, its parameters theta) from fit.json's entry 'guide'."""
    spec = saved["family"]
    try:
        # 'user+' is written for a model with params or guide statements, and for every
        # --batch fit (whose guide wraps the automatic one the same way)
        wrapped = user.applies(compiled) or spec.startswith(user.PREFIX)
        guide = user.family_for(compiled, spec) if wrapped else family(spec, len(names))
    except PplError as error:
        raise corrupted_saved_fit(str(path), f"entry 'guide.family': {error.message}") from None
    try:
        return guide, guide.from_dict(saved["parameters"], names)
    except KeyError as error:
        raise corrupted_saved_fit(str(path), f"the guide's parameters have no entry {error}") \
            from None
    except (TypeError, ValueError, OverflowError) as error:
        raise corrupted_saved_fit(str(path), f"the guide's parameters ({error})") from None


def _check_guide_moments(guide, theta: np.ndarray, names: list[str], parameters: dict,
                         path: Path) -> None:
    """Refuse guide parameters that are not finite, or whose mean or an sd (exp of the log sd)
    overflows, which would make every prediction NaN."""
    if not np.all(np.isfinite(theta)):
        raise corrupted_saved_fit(str(path), f"entry 'guide.parameters"
                                             f"{_non_finite(parameters)}' is not a finite number")
    with np.errstate(all="ignore"):
        mean, log_sd = guide.mean(theta), guide.log_sd(theta)
        bad = ~np.isfinite(mean) | ~np.isfinite(np.exp(log_sd))
    for i in np.flatnonzero(bad)[:1]:
        raise corrupted_saved_fit(str(path), f"entry 'guide.parameters' gives {names[i]!r} the "
                                             f"mean {mean[i]:.6g} and the sd exp({log_sd[i]:.6g})"
                                             "; both must be finite")


def _non_finite(value, where: str = "") -> str | None:
    """Where in ``value`` (nested objects and lists) the first non-finite number is:
    '.name.log_sigma', '.layers[3]'."""
    if isinstance(value, float):
        return None if np.isfinite(value) else where
    items = (value.items() if isinstance(value, dict) else
             ((f"[{i}]", v) for i, v in enumerate(value)) if isinstance(value, list) else ())
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if isinstance(value, dict) else where + key)
        if found is not None:
            return found
    return None


def _lr_covariance(value, D: int, path: Path) -> np.ndarray | None:
    """DADVI's linear-response covariance [D, D] (None when there is none, or it is empty):
    finite, with a Cholesky factor (posterior.py draws with it)."""
    if value is None or value == []:
        return None
    try:
        matrix = np.array(value, dtype=float)
        if matrix.shape == (D, D) and np.all(np.isfinite(matrix)):
            np.linalg.cholesky(matrix)
            return matrix
    except (TypeError, ValueError, OverflowError, np.linalg.LinAlgError):
        pass
    raise corrupted_saved_fit(str(path), f"entry 'guide.lr_covariance' must be a {D} x {D} "
                                         "positive-definite matrix")


def _saved_model(folder: Path, path: str, sha256: str):
    """The saved fit's model: from its recorded path or, when that file is gone or its meaning
    changed since the fit (``Model.hash``), the folder's copy model.ppl, with a warning in the
    second case (predict refused a fit whose model file had been edited, though the copy saved
    with it is the fitted model); refused when neither is the fitted model."""
    copy = folder / "model.ppl"
    if not Path(path).is_file() and copy.is_file():
        path = str(copy)
    if not Path(path).exists():
        raise file_error(path, "no such model file")
    model = _valid_model(path)
    if model is not None and model.hash == sha256:
        return model
    fitted = _valid_model(str(copy)) if path != str(copy) and copy.is_file() else None
    if fitted is not None and fitted.hash == sha256:
        warnings.warn(model_changed_copy_used(path, str(copy)), stacklevel=2)
        return fitted
    if model is None:
        # a fit.json naming some other file (/etc/passwd) must not get a line of it echoed
        # in a syntax error: say only that it is not the fitted model
        raise file_error(path, "the saved fit's model file is not a valid model (or the saved "
                               "fit names another file); fit it again")
    raise file_error(path, "the model changed since this fit was saved; fit it again")


def _valid_model(path: str):
    """The model in the file ``path``, or None when it is not a valid model."""
    from .api import load
    try:
        return load(path)
    except PplError:
        return None


def save_predictive(fit: Fit, folder: Path, n: int | None, data=None) -> Path:
    """Write posterior predictive draws of every observed expression to predictive.csv (one
    column per element, one row per draw) and their summaries to predictive_summary.csv (one
    row per element: mean, 5%, 50%, 95%). ``data`` predicts for new data (ppl/predict.py)."""
    from . import memory
    check_replaceable(folder, PREDICTIVE_FILES, "predict")
    memory.check_draws(fit.options.draws if n is None else n, fit.model, "--draws")
    with np.errstate(all="ignore"):  # an overflow is reported once, by name, below
        draws = fit.predictive(n, data=data)
    names, blocks = _flatten(draws)
    intervals = _intervals(names, _table(blocks))
    bad = [row[0] for row in intervals if not np.all(np.isfinite(row[1:]))]
    if bad:
        warnings.warn(non_finite_summary(bad), stacklevel=2)
    draws_file, summary_file = PREDICTIVE_FILES
    write_files(folder, recording_written(folder, {
        draws_file: csv_text(names, _table_rows(blocks)),
        summary_file: csv_text(["name", "mean", "5%", "50%", "95%"], intervals)}))
    return folder / draws_file


def recording_written(folder: Path, contents: dict) -> dict:
    """``contents`` (what ppl predict or ppl plot writes into a saved fit's folder) and the
    folder's fit.json recording each file's SHA-256 under 'written_sha256', to be written
    together, all or nothing. A later fit into the folder removes such a file only as it was
    written (:func:`written_as_recorded`): a file of the user's own by the same name, or one
    edited since, is kept (a refit had removed them all)."""
    info = json.loads((folder / "fit.json").read_bytes())
    written = info.get("written_sha256")
    written = dict(written) if isinstance(written, dict) else {}
    written.update((name, _sha256(text)) for name, text in contents.items())
    info["written_sha256"] = written
    return {**contents, "fit.json": json_text(info)}


def check_replaceable(folder: Path, names, command: str) -> None:
    """Refuse to write ``names`` (ppl predict's or ppl plot's files) into the saved fit in
    ``folder`` where one exists that is not as either wrote it (:func:`written_as_recorded`):
    a file of the user's own by that name, or one edited since, was replaced without a word,
    where a later fit into the folder keeps it. A fit saved before the record was kept (no
    'written_sha256') cannot tell them apart: its files are replaced as before."""
    try:
        recorded = "written_sha256" in json.loads((folder / "fit.json").read_bytes())
    except (OSError, ValueError, TypeError):
        return      # read_fit_json has said what is wrong with it
    for name in names:
        if recorded and (folder / name).exists() and not written_as_recorded(folder, name):
            raise not_ppls_output(str(folder / name), command)


def written_as_recorded(folder: Path, name: str) -> bool:
    """Whether ``folder``/``name`` is as ppl predict or ppl plot wrote it for the saved fit in
    ``folder`` (:func:`recording_written`); false for a fit saved before the record."""
    try:
        written = json.loads((folder / "fit.json").read_bytes()).get("written_sha256")
        return isinstance(written, dict) and \
            written.get(name) == _sha256((folder / name).read_bytes())
    except (OSError, ValueError, AttributeError):
        return False


def _sha256(content: str | bytes) -> str:
    """The SHA-256 of a file's content as write_files writes it (text as UTF-8)."""
    return hashlib.sha256(content.encode("utf-8") if isinstance(content, str)
                          else content).hexdigest()


def _intervals(names: list[str], table: np.ndarray) -> list[list]:
    """Rows [name, mean, 5%, 50%, 95%] of each column of ``table`` [n, columns]."""
    if not names:       # a model that observes nothing predicts nothing
        return []
    with np.errstate(all="ignore"):
        mean = table.mean(axis=0)
        quantiles = np.quantile(table, (0.05, 0.5, 0.95), axis=0)
    return [[name, mean[i], *quantiles[:, i]] for i, name in enumerate(names)]


