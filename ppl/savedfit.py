"""Saving a fit to a folder and reading it back (``ppl fit --out``, ``summary``, ``predict``).

Files: draws.csv (element names, one row per draw), summary.csv, elbo.csv (step, ELBO) and
fit.json (provenance, options, convergence, guide parameters by element name). All are written
atomically by ``output.write_files``.
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
from .ir import element_names
from .output import csv_text, json_text, write_files
from .posterior import COLUMNS, Fit, Summary


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


def save_fit(fit: Fit, folder: Path) -> None:
    """Write draws.csv, summary.csv, elbo.csv and fit.json into ``folder`` (atomically)."""
    names, table = _flatten(fit.draws())
    summary = fit.summary()
    r = fit.result
    info = {
        **fit.info,
        "options": dataclasses.asdict(fit.options),
        "seed": fit.options.seed,
        "versions": _versions(),
        "converged": bool(r.converged),
        "reason": r.reason,
        "steps": int(r.steps),
        "seconds": float(r.seconds),
        "final_elbo": float(r.final_elbo),
        # discrete latents: name -> [*shape, K] posterior probabilities of its values
        "probabilities": {name: {"values": fit.values()[name].tolist(), "p": p.tolist()}
                          for name, p in fit.probabilities().items()},
        "guide": {"family": fit.options.guide,
                  "parameters": {name: {"mu": mu, "log_sigma": log_sigma} for name, (mu, log_sigma)
                                 in fit.guide_parameters.items()}},
    }
    write_files(folder, {
        "draws.csv": csv_text(names, table),
        "summary.csv": csv_text(["name", *COLUMNS],
                                ([name, *row] for name, row in summary.rows.items())),
        "elbo.csv": csv_text(["step", "elbo"], ((i + 1, e) for i, e in enumerate(fit.elbo))),
        "fit.json": json_text(info),
    })


def read_fit_json(folder: Path) -> dict:
    """The saved fit's fit.json as a dict; a clear error if it is missing or unreadable."""
    path = folder / "fit.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise file_error(str(path), "no saved fit here (run 'ppl fit MODEL --out DIR' first)") \
            from None
    except (OSError, ValueError) as error:
        raise file_error(str(path), f"cannot read the saved fit ({error})") from None


def read_summary(folder: Path) -> Summary:
    """The saved summary.csv as a Summary table."""
    path = folder / "summary.csv"
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream))
        return Summary({row[0]: tuple(float(v) for v in row[1:]) for row in rows[1:]})
    except (OSError, ValueError, IndexError) as error:
        raise file_error(str(path), f"cannot read the saved summary ({error})") from None


def restore_fit(folder: Path) -> Fit:
    """Rebuild a Fit from a saved folder: reload the model and data, reuse the guide parameters.

    Raises PplError when the model file changed since the fit (its SHA-256 differs).
    """
    from .api import load
    from .options import FitOptions
    info = read_fit_json(folder)
    try:
        model = load(info["model_path"])
        if model.hash != info["model_sha256"]:
            raise file_error(info["model_path"], "the model changed since this fit was saved; "
                             "fit it again")
        options = FitOptions(**info["options"])
        concrete, _, compiled = model.prepare(info["data_path"])
        parameters = info["guide"]["parameters"]
        names = compiled.unconstrained_names()
        mu = np.array([parameters[n]["mu"] for n in names])
        log_sigma = np.array([parameters[n]["log_sigma"] for n in names])
    except KeyError as error:
        raise file_error(str(folder / "fit.json"), f"missing entry {error}") from None
    result = SimpleNamespace(mu=mu, log_sigma=log_sigma, names=names, converged=info["converged"],
                             reason=info.get("reason", ""), steps=info["steps"],
                             seconds=info["seconds"], final_elbo=info["final_elbo"],
                             elbo=_read_elbo(folder))
    return Fit(concrete, compiled, result, options, {k: info[k] for k in
                                                     ("model_path", "model_sha256", "data_path")})


def _read_elbo(folder: Path) -> np.ndarray:
    path = folder / "elbo.csv"
    if not path.exists():
        return np.zeros(0)
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)[:, 1]


def save_predictive(fit: Fit, folder: Path, n: int | None) -> Path:
    """Write posterior predictive draws of every observed expression to predictive.csv."""
    names, table = _flatten(fit.predictive(n))
    write_files(folder, {"predictive.csv": csv_text(names, table)})
    return folder / "predictive.csv"


