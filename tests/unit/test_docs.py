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


def test_ci_runs_both_readme_commands_from_a_fresh_clone():
    readme = (ROOT / "README.md").read_text().split("```")[1].strip().splitlines()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert len(readme) == 2 and "pytest" in readme[1]
    commands = ci[ci.index("# --- the README's two commands (keep them identical) ---") + 1:]
    assert [line.strip() for line in commands if line.strip()] == readme
    assert any(line.startswith("git clone") for line in ci)


def test_coming_from_page_models_check_and_it_is_linked_from_the_readme():
    import ppl
    text = (ROOT / "docs" / "coming-from.md").read_text()
    blocks = re.findall(r"```ppl\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        ppl.compile(block)  # raises PplError if the page shows a model that does not check
    assert "(docs/coming-from.md)" in (ROOT / "README.md").read_text()
