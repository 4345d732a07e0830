"""The docs list every registered distribution and function, and README's commands are CI's."""
from __future__ import annotations

import re
from pathlib import Path

from ppl.distributions import DISTRIBUTIONS
from ppl.functions import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_language_page_lists_every_distribution_and_function():
    text = (ROOT / "docs" / "language.md").read_text()
    for name in DISTRIBUTIONS:
        assert f"`{name}(" in text, name
    for name in FUNCTIONS:
        assert re.search(rf"\b{name}\b", text), name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()[:20]
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line.strip() for line in readme if "pytest" in line)
    assert test_command in ci
