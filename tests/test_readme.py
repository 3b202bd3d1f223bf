"""The README's Python example runs as written (on the tiny task, as the config an export writes)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
import yaml
from conftest import TINY_TASK

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_the_training_loop_example_runs(tmp_path, monkeypatch):
    (block,) = _python_blocks("Using a strategy in your own training loop")
    config = {"task": copy.deepcopy(TINY_TASK),
              "strategy": {"temperature": 4.0, "alpha": 0.5,
                           "pairs": [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 1.0}],
                           "relations": [{"loss": "crd", "weight": 0.5}], "recipe": {"epochs": 2}}}
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)  # noqa: S102 - the README's own code
    assert set(scope["out"].parts) == {"ce", "kd", "fitnet@stages.1", "crd"}
    assert torch.isfinite(scope["out"].total)
    assert all(p.grad is None for p in scope["prepared"].teacher.parameters())  # the teacher stays frozen


# --- links and the Commands table ---------------------------------------------------------------

ROOT = README.parent
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (where ``](`` is not a link)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (lower case, punctuation dropped, spaces to '-')."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def test_every_relative_link_in_the_docs_points_to_a_file_that_exists():
    assert len(DOCS) >= 5, DOCS  # the README and docs/{spaces,strategies,studies,compare}.md
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(doc.read_text(encoding="utf-8"))):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def _commands_table() -> list[str]:
    """The first cell of each row of the README's Commands table."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Commands")
    section = text[start:text.index("\n## ", start + 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `autokd ")]
    return [re.split(r"(?<!\\)\|", row)[1] for row in rows]


def test_every_command_in_the_commands_table_exists_with_the_flags_it_shows():
    from click.testing import CliRunner

    from autokd.cli.main import cli

    help_text = CliRunner().invoke(cli, ["--help"]).output
    listed = re.findall(r"^  (\w+)  ", help_text.split("Commands:")[1], flags=re.M)
    cells = _commands_table()
    named = [re.findall(r"`autokd (\w+)", cell) for cell in cells]
    assert all(named) and len(cells) == len(set(n[0] for n in named)), cells  # one row per command
    assert sorted(n[0] for n in named) == sorted(listed)  # every command of `autokd --help`, and no other
    for cell, names in zip(cells, named):
        (name,) = set(names)
        assert name in listed, f"autokd {name} is not a command of `autokd --help`"
        command = cli.commands[name]
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0
        options = {opt for param in command.params for opt in [*param.opts, *getattr(param, "secondary_opts", [])]
                   if opt.startswith("-")} - {"-h", "--help"}  # secondary: --no-pruning of --pruning/--no-pruning
        shown = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", cell.replace("\\|", "|")))
        assert shown <= options, f"autokd {name}: the table shows flags it does not have: {sorted(shown - options)}"
        missing = {o for o in options if o.startswith("--")} - shown
        short = {o for o in options if not o.startswith("--")}
        missing -= {long for param in command.params for long in param.opts if set(param.opts) & short & shown}
        assert not missing, f"autokd {name}: the table leaves out flags: {sorted(missing)}"
