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


def test_the_early_stop_lines_quoted_in_trust_md_are_what_their_commands_print(capsys):
    # trust.md quotes a convergence line per early-stop rule with the command that prints it:
    # its `ppl fit models/ar1.ppl` had stopped printing its line (auto's climb changed), unseen.
    # Seconds aside, the line is reproducible from its seed.
    from ppl.cli import main
    text = re.sub(r"\s+", " ", (ROOT / "docs" / "trust.md").read_text(encoding="utf-8"))
    quoted = re.findall(r"`(converged after [^`]*?)` \(`ppl fit (models/\S+\.ppl)([^`]*)`", text)
    assert len(quoted) == 2
    seconds = r" in [0-9.]+ s "
    for line, model, flags in quoted:
        assert main(["fit", str(ROOT / model), "--quiet", *flags.split()]) == 0
        printed = next(out for out in capsys.readouterr().out.splitlines()
                       if out.startswith("converged"))
        assert re.sub(seconds, " ", printed) == re.sub(seconds, " ", line)


def test_the_starts_lines_quoted_in_trust_md_are_what_the_two_mode_model_prints():
    # trust.md's --starts example (the two-mode model of tests/stats/test_trust.py at y = 4,
    # seed 0) said a spread of 92.65 sd where the fit printed 92.50, unseen. The number of
    # processes is the machine's.
    import ppl
    from tests.stats.test_trust import BIMODAL
    text = (ROOT / "docs" / "trust.md").read_text(encoding="utf-8")
    quoted = re.search(r"\n```\n(starts: 4 in .*?)\n```", text, re.S).group(1).splitlines()
    fit = ppl.compile(BIMODAL).fit({"y": 4.0}, starts=4, seed=0)
    processes = r"in \d+ process(es)?;"
    assert re.sub(processes, "", fit.starts.line()) == re.sub(processes, "", quoted[0])
    assert fit.verdict().line == quoted[1]


def _subcommands() -> dict:
    import argparse
    from ppl.cli import build_parser
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings} - {"-h", "--help"}


def test_readme_names_every_option_of_each_command():
    # The command table (and, for fit, the paragraph below it) lists the options by name: an
    # option renamed or added in ppl/cli.py or ppl/options.py must be renamed or added there.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## The command"):readme.index("Any mistake in a model")]
    for name, parser in _subcommands().items():
        rows = re.findall(rf"^\| `ppl {name} ([^`]*)`", table, re.M)
        assert rows, name
        named = set(re.findall(r"--[a-z][a-z-]*", rows[0]))
        if name == "fit":
            named |= set(re.findall(r"`(--[a-z][a-z-]*)", table.split("| `ppl plot")[1]))
        assert named == _options(parser), name


def _doc_commands():
    """Every ``ppl COMMAND ...`` the docs show in a code span, an indented block or a fence:
    (page, argv)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        lines = re.findall(r"`(ppl [^`]*)`", re.sub(r"\s*\n\s*", " ", text))
        lines += re.findall(r"^ {4}(ppl .*)$", text, re.M)
        lines += [line.removeprefix("$ ") for block in re.findall(r"```\n(.*?)```", text, re.S)
                  for line in block.splitlines() if line.startswith(("ppl ", "$ ppl "))]
        for line in lines:
            yield page.name, line.split("#")[0].split("&&")[0].split()[1:]


def test_every_ppl_command_in_the_docs_parses_with_todays_options():
    # A command the docs show (with its model path, option names and values, '--guide
    # flow:4', '--batch N=128') is one ppl's parser takes today; usage lines ('[--data DATA]')
    # and placeholders ('MODEL.ppl', 'DIR', '...') aside, whose options the test above checks.
    from ppl.cli import build_parser
    from ppl.errors import PplError
    from ppl.options import FitOptions
    commands = _subcommands()
    parsed = 0
    for page, argv in _doc_commands():
        if len(argv) < 2 or argv[0] not in commands or argv[1].startswith("-") or any(
                "[" in word or word == "..." or re.fullmatch(r"[A-Z][A-Z.]*", word)
                for word in argv):
            continue
        try:
            args = build_parser().parse_args(argv)
        except PplError as error:
            raise AssertionError(f"{page}: ppl {' '.join(argv)}: {error}") from None
        if argv[0] == "fit":
            FitOptions(**{key: getattr(args, key) for key in FitOptions.__dataclass_fields__
                          if hasattr(args, key)})     # values each option accepts
            assert args.model.startswith("models/NAME") or (ROOT / args.model).exists() \
                or "/" not in args.model, (page, args.model)
        parsed += 1
    assert parsed >= 15


def test_option_defaults_quoted_in_the_docs_are_the_code_s():
    from ppl.options import FitOptions
    default = FitOptions()
    quoted = [("README.md", r"\(`init_scale`, ([0-9.e-]+)\)", "init_scale"),
              ("README.md", r"every `window` \(([0-9,]+)\) steps", "window"),
              ("README.md", r"below `tol` \(([0-9.e-]+)\)", "tol"),
              ("README.md", r"`iter` \(([0-9,]+)\) is the hard limit", "iter"),
              ("README.md", r"fixes ([0-9]+) standard-normal draws \(`--dadvi-draws`", "dadvi_draws"),
              ("docs/dadvi.md", r"`--dadvi-draws` \(default ([0-9]+),", "dadvi_draws")]
    for page, pattern, field in quoted:
        text = re.sub(r"\s+", " ", (ROOT / page).read_text(encoding="utf-8"))
        found = re.search(pattern, text)
        assert found, (page, pattern)
        assert float(found.group(1).replace(",", "")) == getattr(default, field), (page, field)


def test_every_convergence_reason_is_quoted_in_the_docs():
    # The convergence line's parenthesis is the fit's reason, word for word; the docs quote
    # each one a fit can end with, so a reworded reason must be re-quoted.
    from ppl.infer import advi, dadvi, early, fixed_draws, point
    reasons = [advi.CONVERGED, advi.NO_LATENTS, advi.MAX_ITER, advi.INTERRUPTED,
               advi.NOT_AT_OPTIMUM, advi.FELL, early.STOPPED, fixed_draws.CONVERGED,
               fixed_draws.STILL_RISING, dadvi.CONVERGED, point.CONVERGED]
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs = re.sub(r"\s+", " ", " ".join(page.read_text(encoding="utf-8") for page in pages))
    missing = [reason for reason in reasons if reason.removeprefix("converged: ") not in docs]
    assert missing == []


def test_readme_names_every_key_of_fit_json_s_auto_entry():
    # README's fit.json row names each key `--guide auto` writes, a rung's included: a key
    # added to auto.AutoReport.to_dict ('moved' was, unnamed there) must be named there too.
    from ppl.infer.auto import AutoReport, Tried
    from ppl.infer.ladder import FAILED, SKIPPED
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `fit.json` |"))
    tried = (Tried("meanfield", 0.9, "unreliable", 1.0, elbo=(-3.0, 0.1)),
             Tried("fullrank", 0.8, SKIPPED, 0.1, ess=0.05),
             Tried("scaled", 0.5, "usable with care", 2.0, moved=True),
             Tried("flow", float("inf"), FAILED, 0.5, error="m.ppl:3:1: diverged"),
             # 'student_t' and 'noisy' were written, unnamed there
             Tried("fullrank", 0.6, "usable with care", 1.0, student_t=True),
             Tried("meanfield", 0.49, "reliable", 0.5, noisy=True))
    entry = AutoReport(tried, 2).to_dict()
    keys = set(entry) | {key for rung in entry["tried"] for key in rung}
    missing = sorted(key for key in keys if f"`{key}`" not in row and f'`"{key}"' not in row)
    assert missing == []


def test_readme_names_every_key_of_fit_json_s_starts_entry():
    # the same for `--starts K`'s entry (README had not named 'workers')
    from ppl.infer.starts import StartsReport
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `fit.json` |"))
    entry = StartsReport((-3.0, -3.1), (0.4, 0.5), (1.0, 1.1), {"mu": 0.1}, (), 0, 2).to_dict()
    assert sorted(key for key in entry if f"`{key}`" not in row) == []


def test_every_form_of_the_guide_auto_line_is_quoted_in_the_docs():
    # The 'guide auto:' line's forms, as auto.py writes them, numbers aside (the docs may
    # write a number as K, P or ...): a reworded form must be re-quoted.
    from ppl.infer.auto import ALONE_USER, AutoReport, Tried, alone_line
    from ppl.infer.ladder import SKIPPED
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs = re.sub(r"\s+", " ", " ".join(page.read_text(encoding="utf-8") for page in pages))
    number = r"(?:-?[0-9][0-9.]*|[A-Z]|\.\.\.)"
    by_elbo = AutoReport((Tried("meanfield", 0.89, "unreliable", 3.64, elbo=(-1899.24, 0.02)),
                          Tried("fullrank", 0.70, "unreliable", 8.32, elbo=(-1897.32, 0.0)),
                          Tried("flow", 0.96, "unreliable", 12.54, elbo=(-1897.32, 0.0))),
                         1, usable=False).line()
    forms = [by_elbo,
             Tried("fullrank", 0.75, SKIPPED, 0.01, ess=0.05).text(),
             Tried("fullrank", 0.57, "usable with care", 1.0, moved=True).text(),
             Tried("scaled", 0.50, "usable with care", 1.0, moved=True).text(),
             alone_line(ALONE_USER).replace(ALONE_USER, "...")]
    missing = []
    for form in forms:
        form = re.sub(r" \([0-9.]+ s\)$", "", form)        # a rung's seconds, left out
        pattern = re.escape(re.sub(r"-?[0-9][0-9.]*", "NUMBER", form)).replace("NUMBER", number)
        if not re.search(pattern, docs):
            missing.append(form)
    assert missing == []


def test_the_ladder_s_figures_quoted_in_the_docs_are_the_code_s():
    # The thresholds and sizes of auto's ladder, the early stop and the verdict (and the flow's
    # sweep tolerance) that docs/trust.md, docs/guides.md, docs/performance.md and README quote
    # in words: a constant changed in the code must be re-quoted (each pattern's numbers, in
    # order, against the code's).
    from ppl.guides import REGISTRY
    from ppl.guides.flow import DEFAULT_LAYERS, MAX_LAYERS
    from ppl.guides.fullrank import AUTO_MAX_DIM
    from ppl.guides.iaf import SWEEP_TOL
    from ppl.infer import auto, early, fixed_draws, ladder, precondition, verdict
    from ppl.posterior import PSIS_GROWTH, SUMMARY_ESS
    words = {"two": 2, "twice": 2, "ten": 10}
    quoted = [
        ("docs/trust.md", r"k̂ < ([0-9.]+) and an ESS of at least half of ([0-9,]+) check draws",
         (early.KHAT, early.CHECK_DRAWS), 0),
        ("docs/trust.md", r"an ESS of at least (\d+)% of the check's draws",
         (verdict.BULK_ESS,), 2),
        ("docs/trust.md", r"at most ([0-9,]+) elements a draw",
         (early.CHECK_ELEMENTS // early.CHECK_DRAWS,), 0),
        ("docs/trust.md", r"under (\d+) \(Stan's and ArviZ's minimum; `verdict.MIN_SUMMARY_ESS`",
         (verdict.MIN_SUMMARY_ESS,), 0),
        ("docs/trust.md", r"an ESS under (\d+) \(`verdict.MIN_WEIGHTS_ESS`",
         (verdict.MIN_WEIGHTS_ESS,), 0),
        ("docs/trust.md", r"an ESS of at least \*\*(\d+)\*\*", (SUMMARY_ESS,), 0),
        ("docs/trust.md", r"`PSIS_GROWTH` = (\d+)", (PSIS_GROWTH,), 0),
        ("docs/trust.md", r"\*\*low rank\*\* instead beyond (\d+)", (AUTO_MAX_DIM,), 0),
        ("docs/trust.md", r"only where full rank was skipped and up to (\d+) dimensions",
         (REGISTRY["scaled"].max_dim,), 0),
        ("docs/trust.md", r"\*\*the flow\*\* \(up to (\d+) dimensions\)",
         (REGISTRY["flow"].max_dim,), 0),
        ("docs/trust.md", r"(\w+) rounds of fixed draws of at most (\d+) iterations \((\d+), (\d+), "
         r"then (\d+) draws", (len(fixed_draws.ROUND_DRAWS), fixed_draws.ROUND_ITER,
                               *fixed_draws.ROUND_DRAWS[:3]), 0),
        ("docs/trust.md", r"(\w+) more rounds of (\d+) draws",
         (len(fixed_draws.MORE_DRAWS), fixed_draws.MORE_DRAWS[0]), 0),
        ("docs/trust.md", r"covariance of (\d+) fresh draws of its own", (auto.MOMENT_DRAWS,), 0),
        ("docs/trust.md", r"below \*\*(\d+)% of the draws\*\* \(`SKIP_ESS`\)",
         (auto.SKIP_ESS,), 2),
        ("docs/trust.md", r"\(`RETRY_ESS` = (\d+)%\)", (auto.RETRY_ESS,), 2),
        ("docs/trust.md", r"a flow of (\d+) layers with (\w+) the window and base step ([0-9.]+)",
         (auto.RETRY_LAYERS, auto.RETRY_WINDOW, auto.RETRY_LR), 0),
        ("docs/trust.md", r"fits within (\d+) standard errors of the difference, or within "
         r"([0-9.]+) nats",
         (ladder.ELBO_TIE, ladder.ELBO_TIE_NATS), 0),
        ("docs/guides.md", r"(\w+) rounds of at most (\d+) iterations on (\d+), (\d+), then (\d+) "
         r"fresh draws", (len(fixed_draws.ROUND_DRAWS), fixed_draws.ROUND_ITER,
                          *fixed_draws.ROUND_DRAWS[:3]), 0),
        ("docs/guides.md", r"estimated on ([0-9,]+) fresh draws",
         (2 * fixed_draws.FINAL_DRAWS,), 0),
        ("docs/guides.md", r"K = (\d+) by default, at most (\d+)", (DEFAULT_LAYERS, MAX_LAYERS), 0),
        ("docs/guides.md", r"Up to D = (\d+) \(beyond that `--guide fullrank`",
         (REGISTRY["fullrank"].max_dim,), 0),
        ("docs/performance.md", r"moved no entry by more than ([0-9.e-]+) of the largest "
         r"\(`iaf.SWEEP_TOL`", (SWEEP_TOL,), 0),
        ("README.md", r"above (\d+) from (\d+) Hessian-vector products",
         (precondition.WHOLE_MAX_DIM, precondition.RANK), 0),
        ("README.md", r"Newton steps on the whitening's draws take its mean and sds there first "
         r"\(up to (\d+) dimensions", (precondition.WHOLE_MAX_DIM,), 0),
    ]
    for page, pattern, values, percent in quoted:
        text = re.sub(r"\s+", " ", (ROOT / page).read_text(encoding="utf-8"))
        found = re.search(pattern, text)
        assert found, (page, pattern)
        numbers = [words[g] if g in words else float(g.replace(",", "")) for g in found.groups()]
        assert numbers == [round(v * 10 ** percent, 6) for v in values], (page, pattern)
