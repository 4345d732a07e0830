"""``--guide auto``: climb the family ladder until k̂ says the fit can be used.

Mean field first; when its verdict is ``unreliable``, full rank (low rank beyond full rank's
size limit) warm-started from it; then the flow, warm-started from the full-rank fit. Stops at
the first fit that is reliable, or usable with care and importance-corrected (the corrected
summary was as accurate as a richer family's on posteriordb, docs/trust.md, at a fraction of
the time); otherwise returns the one with the smallest k̂. The families live in
ppl/guides/, the fitting in advi.py, k̂ and the verdict in psis.py and verdict.py.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PplError
from ..guides import FLOW_MAX_DIM, FULLRANK_MAX_DIM
from . import advi
from .verdict import CARE, RELIABLE

AUTO = "auto"


def ladder(D: int) -> tuple[str, ...]:
    """The families auto tries for D unconstrained dimensions, least flexible first."""
    families = ["meanfield", "fullrank" if D <= FULLRANK_MAX_DIM else "lowrank"]
    if D <= FLOW_MAX_DIM:
        families.append("flow")
    return tuple(families)


@dataclass(frozen=True)
class Tried:
    """One family auto fitted: its k̂, verdict level (or the error) and seconds."""

    family: str
    khat: float
    level: str
    seconds: float

    def text(self) -> str:
        what = "failed" if self.level == "failed" else f"k̂ {self.khat:.2f}"
        return f"{self.family} {what} ({self.seconds:.2f} s)"


@dataclass(frozen=True)
class AutoReport:
    """The families tried, in order, and the one chosen (an index into ``tried``)."""

    tried: tuple
    chosen: int

    def line(self) -> str:
        return (f"guide auto: tried {', '.join(t.text() for t in self.tried)}; "
                f"chose {self.tried[self.chosen].family}")

    def to_dict(self) -> dict:
        return {"chosen": self.tried[self.chosen].family,
                "tried": [{"family": t.family, "level": t.level, "seconds": t.seconds,
                           "khat": float(t.khat) if np.isfinite(t.khat) else None}
                          for t in self.tried]}


def fit_auto(compiled, options, rng: np.random.Generator, assess: Callable,
             progress=None) -> tuple[object, AutoReport]:
    """Fit the ladder's families in turn until one can be used (see the module docstring).

    Parameters
    ----------
    compiled : as for advi.fit.
    options : FitOptions with guide 'auto' (each family is fitted with its name instead).
    rng : one stream for the whole climb: same seed, same families, same result.
    assess : assess(result) -> an object with ``khat`` and ``verdict()`` (posterior.Fit),
        which is kept and returned for the chosen family, so k̂ is not computed twice.
    progress : passed to every family's fit.

    Returns
    -------
    (the assessed object of the chosen family, AutoReport).

    Raises
    ------
    PplError : from the mean-field fit (a failing richer family is recorded and skipped).
    """
    tried, assessed, warm = [], [], None
    for name in ladder(compiled.dim):
        started = time.perf_counter()
        try:
            result = advi.fit(compiled, dataclasses.replace(options, guide=name), rng,
                              progress, warm)
        except PplError:
            if warm is None:
                raise          # mean field failed: there is no fit to report
            tried.append(Tried(name, np.inf, "failed", time.perf_counter() - started))
            break
        fit = assess(result)
        level = fit.verdict().level
        tried.append(Tried(name, fit.khat, level, time.perf_counter() - started))
        assessed.append((len(tried) - 1, fit))
        if level == RELIABLE or (level == CARE and fit.corrected):
            break
        warm = result
    # the smallest k̂ wins; among equals, the earlier (cheaper) family
    index, best = min(assessed, key=lambda pair: (pair[1].khat, pair[0]))
    return best, AutoReport(tuple(tried), index)
