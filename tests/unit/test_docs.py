"""The docs list every registered distribution and function, and README's commands are CI's."""
from __future__ import annotations

import re
import unicodedata
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


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: a link keeps its text; lower case; letters, digits, '-',
    '_' and spaces kept, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return "".join(ch for ch in text if ch in "-_ " or unicodedata.category(ch)[0] in "LMN") \
        .replace(" ", "-")


def _prose(path: Path, inline: str = "") -> list[str]:
    """The file's lines with fenced code blocks blanked and inline code replaced by ``inline``
    (a link there is text; a heading's anchor keeps the code's text, without the backticks)."""
    lines, code = [], False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.lstrip().startswith("```"):
            code = not code
            line = ""
        lines.append("" if code else re.sub(r"`([^`]*)`", inline, line))
    return lines


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for line in _prose(path, inline=r"\1"):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = _slug(heading.group(1))
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def test_every_relative_link_and_anchor_in_the_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for number, line in enumerate(_prose(page), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):
                    continue                     # http(s), mailto: not checked here
                path, _, anchor = target.partition("#")
                dest = (page.parent / path).resolve() if path else page
                if not dest.exists() or (anchor and dest.suffix == ".md"
                                         and anchor not in _anchors(dest)):
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {target}")
    assert broken == []


def test_readme_python_example_prints_the_readme_table(monkeypatch, capsys):
    # README: "print(fit.summary())  # the table above", the table of its `ppl fit` example
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    shown = re.search(r"\$ ppl fit models/eight_schools\.ppl\n(.*?)```", readme, re.S).group(1)
    table = [line for line in shown.splitlines() if not line.startswith(
        ("converged", "did NOT", "guide auto:", "reliable", "usable", "unreliable"))]
    monkeypatch.chdir(ROOT)          # the example's paths are the repository's
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == table
    assert namespace["tau"].shape == (1000,)
