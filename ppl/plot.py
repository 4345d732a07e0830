"""``ppl plot DIR``: the ELBO trace and the marginal posteriors of a saved fit, as PNG files.

Needs the ``plot`` extra (matplotlib); imported only by that command.
"""
from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import bad_option, missing_extra, suggest
from .output import write_files
from .savedfit import (PLOT_FILES, check_replaceable, fit_options, is_point_fit, read_draws,
                       read_elbo, read_fit_json, read_phases, recording_written)

MAX_PANELS = 30


@dataclass(frozen=True)
class Plots:
    """What ``plot_fit`` wrote: the PNG paths, and how many marginals it showed of how many."""
    paths: list[Path]
    shown: int
    total: int


def plot_fit(folder: Path, variables: list[str] | None = None,
             max_panels: int = MAX_PANELS) -> Plots:
    """Write ``elbo.png`` (raw and smoothed trace; DADVI's and a params-only fit's exact
    objective alone) and ``marginals.png`` (histograms; a param as a line at its value) into
    ``folder``.

    Parameters
    ----------
    folder : a saved fit (``ppl fit --out``).
    variables : names whose marginals to show: a variable (``eta``, all its elements) or one
        element (``eta[3]``). None: every element, up to ``max_panels``, params last.
    max_panels : the most marginals drawn in one figure.

    Raises
    ------
    PplError if matplotlib is missing, the folder is not a readable saved fit or cannot be
    written to, or a name in ``variables`` is not in the fit.
    """
    try:
        import matplotlib.figure  # noqa: F401 - only to fail here when it is missing
    except ImportError:
        raise missing_extra("ppl plot", "matplotlib", "plot") from None
    info = read_fit_json(folder)
    check_replaceable(folder, PLOT_FILES, "plot")
    names, draws = read_draws(folder, info)
    elbo = read_elbo(folder, info)
    points = _point_columns(info, names)
    columns = _select(names, variables)
    if not variables:   # drawn values before params (a VAE's thousands of weights come first)
        columns = sorted(columns, key=lambda i: i in points)
    shown = columns[:max_panels]
    pictures = dict(zip(PLOT_FILES, (
        _plot_elbo(elbo, _trace(info, folder / "fit.json"),
                   read_phases(info, len(elbo), folder / "fit.json")),
        _plot_marginals([names[i] for i in shown], draws[:, shown], len(columns),
                        [i in points for i in shown], info["verdict"]["line"].partition(":")[0]))))
    write_files(folder, recording_written(folder, pictures))
    return Plots([folder / name for name in pictures], len(shown), len(columns))


@dataclass(frozen=True)
class _Trace:
    """How elbo.png shows a fit's trace: its title, the x and y labels, the window of the
    moving mean beside it (None: the values are not noisy, there is nothing to smooth) and the
    fit's final value (said in words when no step was recorded)."""
    title: str
    xlabel: str
    ylabel: str
    window: int | None
    final: float


def _trace(info: dict, path: Path) -> _Trace:
    """What the saved trace holds. ADVI's steps are noisy ELBO estimates, shown beside their
    moving mean over one convergence window (what its rule compares); DADVI's iterations are
    its deterministic objective at the fixed draws, and a params-only fit's are the log joint
    at the params (L-BFGS-B, infer/point.py): exact values, with no window to average over."""
    options, final = fit_options(info, path), info["final_elbo"]
    if options.method == "dadvi":
        return _Trace(f"ELBO at DADVI's {options.dadvi_draws} fixed draws and their mirrors",
                      "optimizer iteration", "ELBO", None, final)
    if is_point_fit(info):
        return _Trace("log joint at the params (L-BFGS-B, params only)",
                      "L-BFGS-B iteration", "log joint", None, final)
    title = "ELBO estimate at each step"
    if info.get("unmoved_final_elbo") is not None:   # guide auto moved the fit after its steps
        title += " (the fit then moved)"
    if options.batch:
        (dim, size), = options.batch.items()
        title += f" (minibatches of {size} along {dim})"
    return _Trace(title, "step", "ELBO", options.window, final)


def _point_columns(info: dict, names: list[str]) -> set[int]:
    """Columns of draws.csv that are ``param`` values (fit.json's entry 'params'): one value
    repeated in every draw, not a posterior."""
    params = info.get("params")
    if not isinstance(params, dict) or not params:
        return set()
    return {i for i, name in enumerate(names) if re.sub(r"\[.*", "", name) in params}


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


def _figure(rows: int, columns: int, size: tuple[float, float]):
    """(a figure, its axes [rows, columns]), made without pyplot: pyplot would need a backend
    (matplotlib.use, which closes every figure of a process that has pyplot open, a notebook's
    too, and leaves its backend switched) and keeps its figures in a process-wide list
    (plt.close('all') closed the caller's); this figure is PNG bytes and then garbage."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=size)
    return figure, figure.subplots(rows, columns, squeeze=False)


def _plot_elbo(elbo: np.ndarray, trace: _Trace, phases: list[tuple[str, int]] = ()) -> bytes:
    # Raw estimates (noisy: S draws each) beside their moving mean over one convergence
    # window, which is what the convergence rule compares; exact values alone. A fit that
    # went on from another family's steps (``phases``: a warm start, auto's climb) has each
    # family's first step marked and named: the trace of auto's full rank is mean field's
    # steps and then its own, and a scaled fit's own are L-BFGS-B iterations on fixed draws.
    panels = 1 if trace.window is None or not len(elbo) else 2
    figure, axes = _figure(1, panels, (5.5 * panels, 4))
    steps, (values, unit) = elbo[:, 0], _in_units(elbo[:, 1])
    traces = [(values, trace.title, 0.6 if panels == 2 else 1.2)]
    if panels == 2:
        traces.append((_moving_mean(values, trace.window),
                       f"mean over the last {trace.window} steps", 1.2))
    for axis, (values, title, width) in zip(axes.flat, traces):
        axis.plot(steps, values, lw=width)
        _zoom(axis, values)
        axis.set(xlabel=trace.xlabel, ylabel=trace.ylabel + unit, title=title)
        for family, first in phases:
            if first > 1:
                axis.axvline(first - 0.5, color="0.4", lw=0.8, ls="--")
            axis.text(first, 0.98, f" {family}", transform=axis.get_xaxis_transform(),
                      ha="left", va="top", fontsize=8, color="0.3",
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    if not len(elbo):   # nothing to fit, or DADVI's Laplace start already at the optimum
        axes[0, 0].set(xticks=[], yticks=[])
        axes[0, 0].text(0.5, 0.5, f"no steps recorded; final {trace.ylabel} {trace.final:.6g}",
                        ha="center", va="center", transform=axes[0, 0].transAxes)
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


def _plot_marginals(names: list[str], draws: np.ndarray, total: int,
                    points: list[bool], verdict: str) -> bytes:
    count = max(len(names), 1)
    columns = min(count, 5)
    rows = -(-count // columns)
    figure, axes = _figure(rows, columns, (2.6 * columns, 2.1 * rows + 0.4))
    for index, axis in enumerate(axes.flat):
        if index >= len(names):
            axis.axis("off")
            continue
        # a let that overflows has inf or nan draws (the summary warns): histogram the rest
        values = draws[:, index]
        finite = values[np.isfinite(values)]
        left_out = len(values) - len(finite)
        same = len(finite) and np.all(finite == finite[0])
        finite, unit = _in_units(finite)   # near the float limit matplotlib places no ticks
        title = names[index] + unit + (f" ({left_out} not finite)" if left_out else "")
        if same:
            # a param, or one value in every draw (a Cholesky factor's fixed entries): a line
            value, half = finite[0], 0.5 * max(abs(finite[0]), 1.0)
            axis.axvline(value, color="C1")
            axis.set_xlim(value - half, value + half)
            title = (f"{names[index]}{unit} = {value:.4g} "
                     f"({'param' if points[index] else 'every draw'})")
        else:
            bins = _bins(finite)
            axis.hist(finite, bins=bins, color="C0", alpha=0.8,
                      rwidth=None if isinstance(bins, int) else 0.8)
        axis.set_title(title, fontsize=9)
        axis.set_yticks([])
    if not names:
        axes[0, 0].text(0.5, 0.5, "no reported elements", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
    # the fit's verdict over its marginals: an unreliable fit's histograms are not the posterior
    heading = [f"verdict: {verdict}"]
    if len(names) < total:
        heading.append(f"the first {len(names)} of {total} elements (choose others with --vars)")
    figure.suptitle("\n".join(textwrap.fill(h, 28 * columns) for h in heading), fontsize=10)
    figure.tight_layout()
    return _png(figure)


def _bins(values: np.ndarray):
    """40 bins; one per value for whole numbers spanning 1 to 40 (a discrete latent's
    draws), so each value is one bar of its own and none is split or merged."""
    if len(values) and np.all(values == np.round(values)) and 0 < np.ptp(values) < 40:
        return np.arange(values.min() - 0.5, values.max() + 1.5)
    return 40


def _png(figure) -> bytes:
    # Rendered in memory and written by write_files with the other picture, all or nothing:
    # a failed plot (a read-only folder) leaves no partial PNG and no temporary file.
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
