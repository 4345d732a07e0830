"""posteriordb reference posteriors for the accuracy benchmark: data, reference summaries, labels.

Reads `benchmarks/posteriordb/` (data.json, reference.json, model.md per posterior) and
pairs each posterior with its hand translation `models/posteriordb/<name>.ppl`. Fitting and
comparing are left to the benchmark scripts. Plain Python + numpy + json.

The folder ships in the repository (BSD-3, see its LICENSE and README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
MODELS = _REPO / "models" / "posteriordb"
POSTERIORDB = _REPO / "benchmarks" / "posteriordb"

DIFFICULTIES = ("easy", "moderate", "hard")
_SUMMARY_KEYS = ("mean", "sd", "q05", "q50", "q95")

# posterior name -> function(data dict) -> data dict, for derived data that a model cannot
# compute itself with the language's operators. None is needed so far: every derived
# quantity in the model.md files (logs, standardising, nes2000's age indicators) is a
# data-only `let` in the model. A conversion added here must be documented in
# models/posteriordb/README.md.
_CONVERSIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def names() -> list[str]:
    """Posterior names that have both a folder in POSTERIORDB and a model in models/posteriordb.

    Returns
    -------
    Sorted list of posterior names, e.g. ``"eight_schools-eight_schools_noncentered"``.

    Raises
    ------
    ValueError if POSTERIORDB is not a directory.
    """
    if not POSTERIORDB.is_dir():
        raise ValueError(f"{POSTERIORDB}: posteriordb folder not found")
    return sorted(
        d.name for d in POSTERIORDB.iterdir() if d.is_dir() and (MODELS / f"{d.name}.ppl").is_file()
    )


def model_path(name: str) -> Path:
    """Path of the `.ppl` translation of posterior `name`.

    Raises
    ------
    ValueError if the model file does not exist.
    """
    path = MODELS / f"{name}.ppl"
    if not path.is_file():
        raise ValueError(f"{path}: no model file for posterior {name!r}")
    return path


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed JSON: {err}") from None


def load_data(name: str) -> dict[str, Any]:
    """The posterior's data as in its data.json (plus any conversion in _CONVERSIONS).

    Returns
    -------
    Dict of name -> int, float or (nested) list, as read from JSON.

    Raises
    ------
    ValueError if data.json is missing, malformed or not a JSON object.
    """
    path = POSTERIORDB / name / "data.json"
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of name -> value")
    convert = _CONVERSIONS.get(name)
    return convert(data) if convert else data


def load_reference(name: str) -> dict[str, dict[str, float]]:
    """Reference posterior summaries keyed by the element name ppl reports (0-based).

    Returns
    -------
    Dict ppl_name -> {"mean", "sd", "q05", "q50", "q95", "meanfield_sd_ratio"}, in the order
    of reference.json. ``meanfield_sd_ratio`` is diagnostics.gaussian_meanfield_sd_ratio of
    the element (keyed there by its Stan name); 1.0 where there is none (transformed
    parameters such as eight schools' theta, and derived entries without a ratio).

    Raises
    ------
    ValueError if reference.json is missing or lacks a needed field, or a value is not finite.
    """
    path = POSTERIORDB / name / "reference.json"
    ref = _read_json(path)
    try:
        params = ref["parameters"]
        ratios = ref.get("diagnostics", {}).get("gaussian_meanfield_sd_ratio", {})
        out = {}
        for stan_name, entry in params.items():
            summary = {key: float(entry[key]) for key in _SUMMARY_KEYS}
            summary["meanfield_sd_ratio"] = float(ratios.get(stan_name, 1.0))
            if not all(np.isfinite(v) for v in summary.values()):
                raise ValueError(f"{path}: non-finite summary for {stan_name!r}")
            out[entry["ppl_name"]] = summary
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: malformed reference ({type(err).__name__}: {err})") from None
    return out


def difficulty(name: str) -> str:
    """The 'difficulty: easy | moderate | hard ...' label of the posterior's model.md.

    Raises
    ------
    ValueError if model.md is missing or has no line starting with a valid label.
    """
    path = POSTERIORDB / name / "model.md"
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    match = re.search(r"^difficulty:\s*(\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None or match.group(1) not in DIFFICULTIES:
        raise ValueError(f"{path}: no 'difficulty: easy|moderate|hard' line")
    return match.group(1)
