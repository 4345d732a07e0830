"""Start-up time of ppl relative to numpy: `import ppl`, and `ppl check` on a small model.

Each measurement is a fresh interpreter (`python -X importtime` would perturb the timing), run
alternately so that machine load hits both sides alike; the ratios are of medians. The baseline
is `import numpy`, measured in the same run: ppl cannot start faster than its own dependency.
Run from the repository root: ``python benchmarks/import_time.py [--repeat 9]``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CASES = {
    "import numpy": "import numpy",
    "import ppl": "import ppl",
    "ppl check eight_schools": (
        "import sys; from ppl.cli import main; sys.argv = ['ppl', 'check', "
        "'models/eight_schools.ppl']; import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main()\n"
        "    except SystemExit as e: assert not e.code, e.code"
    ),
}


def _seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=_REPO, check=True)
    return time.perf_counter() - start


def measure(repeat: int) -> dict[str, list[float]]:
    """Wall-clock seconds of each case, `repeat` fresh interpreters each, interleaved."""
    _seconds("import ppl; ppl.compile")  # warm the file cache and the parser cache once
    times: dict[str, list[float]] = {name: [] for name in _CASES}
    for _ in range(repeat):
        for name, code in _CASES.items():
            times[name].append(_seconds(code))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="fresh interpreters per case")
    args = parser.parse_args()
    times = measure(args.repeat)
    base = statistics.median(times["import numpy"])
    print(f"{'case':<26}{'median s':>10}{'/ import numpy':>16}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26}{median:>10.3f}{median / base:>16.2f}")


if __name__ == "__main__":
    main()
