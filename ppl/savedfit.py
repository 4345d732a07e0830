"""Saving a fit to a folder and reading it back (``ppl fit --out``, ``summary``, ``predict``).

Files: draws.csv (element names, one row per draw), summary.csv, elbo.csv (step, ELBO),
fit.json (provenance, options, convergence, guide parameters by element name) and model.ppl (a
copy of the model text). All are written atomically by ``output.write_files``. Paths in
fit.json are absolute, so a saved fit is usable from any working directory.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import platform
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import __version__
from .errors import file_error
from .guides import family, user
from .ir import element_names
from .output import csv_text, json_text, write_files
from .posterior import Fit
from .summary import COLUMNS, Summary


def _versions() -> dict[str, str]:
    import autograd  # noqa: F401 - only for its version
    import lark
    from importlib.metadata import PackageNotFoundError, version
    found = {"ppl": __version__, "python": platform.python_version(), "numpy": np.__version__,
             "lark": lark.__version__}
    try:
        found["autograd"] = version("autograd")
    except PackageNotFoundError:
        found["autograd"] = "unknown"
    return found


def _flatten(draws: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    names, columns = [], []
    for name, values in draws.items():
        names += element_names(name, values.shape[1:])
        columns.append(np.asarray(values, dtype=float).reshape(len(values), -1))
    return names, np.concatenate(columns, axis=1) if columns else np.zeros((0, 0))


def _absolute(path: str | None) -> str | None:
    # "<string>" (a model given as text) and None (data given as a dict) are not paths
    if path is None or path == "<string>":
        return path
    return str(Path(path).resolve())


# every file save_fit writes (model.ppl only when the model's text is known)
FILES = ("draws.csv", "summary.csv", "elbo.csv", "fit.json", "model.ppl")


def save_fit(fit: Fit, folder: Path) -> None:
    """Write draws.csv, summary.csv, elbo.csv, fit.json and model.ppl into ``folder``."""
    names, table = _flatten(fit.draws())
    summary = fit.summary()
    r = fit.result
    provenance = {k: v for k, v in fit.info.items() if k != "model_text"}
    info = {
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
        **_trust(fit),
        # discrete latents: name -> [*shape, K] posterior probabilities of its values
        "probabilities": {name: {"values": fit.values()[name].tolist(), "p": p.tolist()}
                          for name, p in fit.probabilities().items()},
        "summary_note": summary.note,
        "guide": {"family": r.guide.name,
                  "parameters": r.guide.to_dict(r.theta, list(r.names))},
        # param statements: name -> fitted value (a number or nested lists)
        "params": {name: np.asarray(v).tolist() for name, v in fit.params().items()},
    }
    if getattr(r, "lr_covariance", None) is not None:
        # DADVI: draws and predictive draws come from the linear-response Gaussian
        info["guide"]["lr_covariance"] = np.asarray(r.lr_covariance).tolist()
    if hasattr(r, "draws_used"):
        info["dadvi"] = {"draws": int(r.draws_used), "sds": r.sds, "optimizer": r.optimizer,
                         "evaluations": int(r.evaluations)}
    write_files(folder, {
        "draws.csv": csv_text(names, table),
        "summary.csv": csv_text(["name", *summary.columns],
                                ([name, *row] for name, row in summary.rows.items())),
        "elbo.csv": csv_text(["step", "elbo"], ((i + 1, e) for i, e in enumerate(fit.elbo))),
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


def read_fit_json(folder: Path) -> dict:
    """The saved fit's fit.json as a dict; a clear error if it is missing or unreadable."""
    path = folder / "fit.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise file_error(str(path), "no saved fit here (run 'ppl fit MODEL --out DIR' first)") \
            from None
    except (OSError, ValueError, RecursionError) as error:
        raise file_error(str(path), f"cannot read the saved fit ({error})") from None
    _check_fit_json(info, path)
    return info


# entry -> (types allowed, what to say); nested guide parameters are checked separately
_FIT_JSON = {"model_path": (str, "a path"), "model_sha256": (str, "a SHA-256 hex digest"),
             "data_path": ((str, type(None)), "a path or null"), "options": (dict, "an object"),
             "converged": (bool, "true or false"), "reason": (str, "a string"),
             "steps": (int, "an int"), "seconds": ((int, float), "a number"),
             "final_elbo": ((int, float), "a number"), "guide": (dict, "an object")}


def _check_fit_json(info, path: Path) -> None:
    """Refuse a fit.json that is not what save_fit writes, naming the first bad entry."""
    if not isinstance(info, dict):
        raise file_error(str(path), "corrupted saved fit: not a JSON object")
    for name, (kinds, what) in _FIT_JSON.items():
        if name not in info:
            raise file_error(str(path), f"corrupted saved fit: missing entry '{name}'")
        if not isinstance(info[name], kinds) or (kinds is int and isinstance(info[name], bool)):
            raise file_error(str(path), f"corrupted saved fit: entry '{name}' must be {what}")
    parameters = info["guide"].get("parameters")
    # each family reads its own parameters back (guides/*.py from_dict, errors caught there)
    if not isinstance(parameters, dict):
        raise file_error(str(path), "corrupted saved fit: entry 'guide' must hold an object "
                                    "of parameters")


def read_summary(folder: Path) -> Summary:
    """The saved summary.csv as a Summary table."""
    path = folder / "summary.csv"
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream))
        columns = tuple(rows[0][1:]) if rows and rows[0][1:] else COLUMNS
        # the note printed above the table when it was made (importance correction, DADVI)
        note = read_fit_json(folder).get("summary_note", "")
        return Summary({row[0]: tuple(float(v) for v in row[1:]) for row in rows[1:]}, columns,
                       note)
    except (OSError, ValueError, IndexError) as error:
        raise file_error(str(path), f"cannot read the saved summary ({error})") from None


def restore_fit(folder: Path) -> Fit:
    """Rebuild a Fit from a saved folder: reload the model and data, reuse the guide parameters.

    The model is read from its recorded path, or, when that file is gone, from the folder's
    copy model.ppl. Edits to comments, blank lines or spacing do not matter (``Model.hash``).

    Raises
    ------
    PplError when the model's meaning changed since the fit, or fit.json is incomplete.
    """
    info = read_fit_json(folder)
    try:
        model = _saved_model(folder, info["model_path"], info["model_sha256"])
        options = _options(info["options"], folder / "fit.json")
        concrete, _, compiled = model.prepare(info["data_path"])
        names = compiled.unconstrained_names()
        spec = info["guide"].get("family", options.guide)
        guide = (user.family_for(compiled, spec) if user.applies(compiled)
                 else family(spec, len(names)))
        theta = guide.from_dict(info["guide"]["parameters"], names)
        covariance = info["guide"].get("lr_covariance")
    except KeyError as error:
        raise file_error(str(folder / "fit.json"), f"missing entry {error}") from None
    except (TypeError, ValueError) as error:
        raise file_error(str(folder / "fit.json"),
                         f"corrupted saved fit: the guide's parameters ({error})") from None
    result = SimpleNamespace(guide=guide, theta=theta, mu=guide.mean(theta),
                             log_sigma=guide.log_sd(theta), names=names,
                             converged=info["converged"],
                             reason=info.get("reason", ""), steps=info["steps"],
                             seconds=info["seconds"], final_elbo=info["final_elbo"],
                             elbo=_read_elbo(folder),
                             lr_covariance=None if covariance is None else np.array(covariance))
    provenance = {k: info[k] for k in ("model_path", "model_sha256", "data_path")}
    provenance["model_text"] = model.text     # for predictions on new data
    return Fit(concrete, compiled, result, options, provenance)


def _saved_model(folder: Path, path: str, sha256: str):
    """The saved fit's model: from its recorded path or, when that file is gone, the folder's
    copy model.ppl; refused when its meaning changed since the fit (``Model.hash``)."""
    from .api import load
    from .errors import PplError
    copy = folder / "model.ppl"
    if not Path(path).is_file() and copy.is_file():
        path = str(copy)
    if not Path(path).exists():
        raise file_error(path, "no such model file")
    try:
        model = load(path)
    except PplError:
        # a fit.json naming some other file (/etc/passwd) must not get a line of it echoed
        # in a syntax error: say only that it is not the fitted model
        raise file_error(path, "the saved fit's model file is not a valid model (or the saved "
                               "fit names another file); fit it again") from None
    if model.hash != sha256:
        raise file_error(path, "the model changed since this fit was saved; fit it again")
    return model


def _options(options: dict, path: Path):
    from .errors import PplError
    from .options import FitOptions
    try:
        return FitOptions.from_kwargs(**options)
    except PplError as error:
        raise file_error(str(path), f"corrupted saved fit: {error.message}") from None


def _read_elbo(folder: Path) -> np.ndarray:
    path = folder / "elbo.csv"
    if not path.exists():
        return np.zeros(0)
    try:
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)[:, 1]
    except (OSError, ValueError, IndexError) as error:
        raise file_error(str(path), f"cannot read the saved ELBO trace ({error})") from None


def save_predictive(fit: Fit, folder: Path, n: int | None, data=None) -> Path:
    """Write posterior predictive draws of every observed expression to predictive.csv (one
    column per element, one row per draw) and their summaries to predictive_summary.csv (one
    row per element: mean, 5%, 50%, 95%). ``data`` predicts for new data (ppl/predict.py)."""
    from . import memory
    memory.check_draws(fit.options.draws if n is None else n, fit.model, "--draws")
    draws = fit.predictive(n, data=data)
    names, table = _flatten(draws)
    write_files(folder, {"predictive.csv": csv_text(names, table),
                         "predictive_summary.csv": csv_text(
                             ["name", "mean", "5%", "50%", "95%"], _intervals(names, table))})
    return folder / "predictive.csv"


def _intervals(names: list[str], table: np.ndarray):
    """Rows [name, mean, 5%, 50%, 95%] of each column of ``table`` [n, columns]."""
    with np.errstate(all="ignore"):
        mean = table.mean(axis=0)
        quantiles = np.quantile(table, (0.05, 0.5, 0.95), axis=0)
    return ([name, mean[i], *quantiles[:, i]] for i, name in enumerate(names))


