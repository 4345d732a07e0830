"""The release fuzz run: ``python tests/fuzz/run.py --n 100000`` runs that many random programs
(tests/fuzz/programs.py) through the compiler and evaluator and reports every one that ends
in anything but a result or a PplError, with its seed, text and data.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's ppl and tests

from tests.fuzz.programs import check_int_let, program, run_one  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="programs to run")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    args = parser.parse_args(argv)
    outcomes, failures = Counter(), 0
    for seed in range(args.seed, args.seed + args.n):
        text, data = program(random.Random(seed))
        try:
            outcomes[run_one(text, data, seed)] += 1
            check_int_let(text, data)
        except Exception:  # noqa: BLE001 - the point: report every bug, keep going
            failures += 1
            print(f"--- seed {seed}: {traceback.format_exc().splitlines()[-1]}\n{text}"
                  f"data: {json.dumps(data)}\n", flush=True)
    print(f"{args.n} programs: {dict(outcomes)}, {failures} internal errors")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
