"""``ppl plot DIR``: the ELBO trace and the marginal posteriors of a saved fit, as PNG files.

Needs the ``plot`` extra (matplotlib); imported only by that command.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import PplError, file_error


def plot_fit(folder: Path, max_panels: int = 30) -> list[Path]:
    """Write ``elbo.png`` and ``marginals.png`` into ``folder``; return their paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PplError("plotting needs matplotlib: pip install 'ppl[plot]'") from None
    try:
        elbo = np.loadtxt(folder / "elbo.csv", delimiter=",", skiprows=1, ndmin=2)
        with (folder / "draws.csv").open(encoding="utf-8", newline="") as stream:
            names = next(csv.reader(stream))
        draws = np.loadtxt(folder / "draws.csv", delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError, StopIteration) as error:
        raise file_error(str(folder), f"cannot read the saved fit ({error})") from None

    written = []
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(elbo[:, 0], elbo[:, 1], lw=0.6)
    # The early steps can be orders of magnitude below the rest: show the last 90% of the trace.
    tail = elbo[len(elbo) // 10:, 1]
    if len(tail) > 1:
        axes.set_ylim(np.quantile(tail, 0.01), tail.max() + 0.05 * np.ptp(tail) + 1e-9)
    axes.set(xlabel="step", ylabel="ELBO", title="ELBO trace")
    figure.tight_layout()
    written.append(_save(figure, folder / "elbo.png"))

    count = min(len(names), max_panels)
    columns = min(count, 5)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.1 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= count:
            axis.axis("off")
            continue
        axis.hist(draws[:, index], bins=40, color="C0", alpha=0.8)
        axis.set_title(names[index], fontsize=9)
        axis.set_yticks([])
    figure.tight_layout()
    written.append(_save(figure, folder / "marginals.png"))
    plt.close("all")
    return written


def _save(figure, path: Path) -> Path:
    # Save to a temporary name, then rename: a failed plot never leaves a partial PNG.
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(path)
    return path
