"""``ppl plot DIR``: the ELBO trace and the marginal posteriors of a saved fit, as PNG files.

Needs the ``plot`` extra (matplotlib); imported only by that command.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import bad_option, missing_extra, suggest
from .output import write_files
from .savedfit import fit_options, read_elbo, read_fit_json, read_numbers

MAX_PANELS = 30


@dataclass(frozen=True)
class Plots:
    """What ``plot_fit`` wrote: the PNG paths, and how many marginals it showed of how many."""
    paths: list[Path]
    shown: int
    total: int


def plot_fit(folder: Path, variables: list[str] | None = None,
             max_panels: int = MAX_PANELS) -> Plots:
    """Write ``elbo.png`` (raw and smoothed trace) and ``marginals.png`` into ``folder``.

    Parameters
    ----------
    folder : a saved fit (``ppl fit --out``).
    variables : names whose marginals to show: a variable (``eta``, all its elements) or one
        element (``eta[3]``). None: every element, up to ``max_panels``.
    max_panels : the most marginals drawn in one figure.

    Raises
    ------
    PplError if matplotlib is missing, the folder is not a readable saved fit or cannot be
    written to, or a name in ``variables`` is not in the fit.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_extra("ppl plot", "matplotlib", "plot") from None
    elbo, names, draws, window = _read(folder)
    columns = _select(names, variables)
    shown = columns[:max_panels]
    pictures = {"elbo.png": _plot_elbo(plt, elbo, window),
                "marginals.png": _plot_marginals(plt, [names[i] for i in shown], draws[:, shown],
                                                 len(columns))}
    plt.close("all")
    write_files(folder, pictures)
    return Plots([folder / name for name in pictures], len(shown), len(columns))


def _read(folder: Path):
    """(elbo [steps, 2], element names, draws [n, names], the fit's ELBO window)."""
    window = fit_options(read_fit_json(folder), folder / "fit.json").window
    names, draws = read_numbers(folder / "draws.csv")
    return read_elbo(folder), names, draws, window


def _select(names: list[str], variables: list[str] | None) -> list[int]:
    """Column indices of the chosen elements, in the order of ``variables``."""
    if not variables:
        return list(range(len(names)))
    bases = {re.sub(r"\[.*", "", name) for name in names}
    chosen: list[int] = []
    for variable in variables:
        if variable in bases:
            found = [i for i, n in enumerate(names) if re.sub(r"\[.*", "", n) == variable]
        else:
            found = [i for i, n in enumerate(names) if n == variable]
        if not found:
            raise bad_option("--vars", f"no variable or element '{variable}' in this fit"
                                       f"{suggest(variable, sorted(bases) + names)}")
        chosen += [i for i in found if i not in chosen]
    return chosen


def _moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start): [steps]."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _plot_elbo(plt, elbo: np.ndarray, window: int) -> bytes:
    # Raw estimates (noisy: S draws each) beside their moving mean over one convergence
    # window, which is what the convergence rule compares.
    figure, (raw, smooth) = plt.subplots(1, 2, figsize=(11, 4))
    steps, (values, unit) = elbo[:, 0], _in_units(elbo[:, 1])
    smoothed = _moving_mean(values, window) if len(values) else values
    for axis, trace, title in ((raw, values, "ELBO estimate at each step"),
                               (smooth, smoothed, f"mean over the last {window} steps")):
        axis.plot(steps, trace, lw=0.6 if axis is raw else 1.2)
        _zoom(axis, trace)
        axis.set(xlabel="step", ylabel="ELBO" + unit, title=title)
    figure.tight_layout()
    return _png(figure)


def _in_units(values: np.ndarray) -> tuple[np.ndarray, str]:
    """``values`` and "", or, beyond 1e100, ``values`` in units of a power of ten and " / 1eP".
    An ELBO near the float limit (a fit of data near 1e153 writes -1.6e307) overflows the
    moving mean's running sum, and matplotlib cannot place ticks on it (ValueError)."""
    largest = np.max(np.abs(values), initial=0.0)
    if largest < 1e100:
        return values, ""
    power = int(np.floor(np.log10(largest)))
    return values / 10.0 ** power, f" / 1e{power}"


def _zoom(axis, trace: np.ndarray) -> None:
    # The early steps can be orders of magnitude below the rest: show the last 90% of the trace.
    tail = trace[len(trace) // 10:]
    if len(tail) > 1:
        with np.errstate(all="ignore"):
            low, high = np.quantile(tail, 0.01), tail.max() + 0.05 * np.ptp(tail) + 1e-9
        if np.isfinite(high) and low < high:  # ELBOs near the float limit overflow the margin
            axis.set_ylim(low, high)


def _plot_marginals(plt, names: list[str], draws: np.ndarray, total: int) -> bytes:
    count = max(len(names), 1)
    columns = min(count, 5)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.1 * rows + 0.4),
                                squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(names):
            axis.axis("off")
            continue
        # a let that overflows has inf or nan draws (the summary warns): histogram the rest
        values = draws[:, index]
        finite = values[np.isfinite(values)]
        axis.hist(finite, bins=40, color="C0", alpha=0.8)
        left_out = len(values) - len(finite)
        axis.set_title(names[index] + (f" ({left_out} not finite)" if left_out else ""),
                       fontsize=9)
        axis.set_yticks([])
    if len(names) < total:
        figure.suptitle(f"the first {len(names)} of {total} elements "
                        "(choose others with --vars)", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def _png(figure) -> bytes:
    # Rendered in memory and written by write_files with the other picture, all or nothing:
    # a failed plot (a read-only folder) leaves no partial PNG and no temporary file.
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
