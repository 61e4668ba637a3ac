"""Docs that tests keep true: every CLI command has help and is named in README or docs/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from zhiku.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
# Commands may be documented in README or in a page of docs/ (README stays short).
DOCS = README + "".join(p.read_text("utf-8") for p in sorted(
    (Path(__file__).resolve().parent.parent / "docs").glob("*.md")))


def _commands(group: Any, prefix: str = "zhiku") -> list[tuple[str, Any]]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        out.append((full, cmd))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, full))
    return out


def test_every_command_has_help_and_is_in_readme() -> None:
    root = typer.main.get_command(app)
    cmds = _commands(root)
    assert len(cmds) >= 15
    for full, cmd in cmds:
        assert (cmd.help or "").strip(), f"{full} has no help text"
        leaf = full.split(" ", 1)[1]
        parts = leaf.split()
        if len(parts) == 1:
            assert f"zhiku {leaf}" in DOCS or f"`{leaf}" in DOCS, f"{full} not in the docs"
        else:
            assert f"{parts[0]} {parts[-1]}" in DOCS, f"{full} not in the docs"


def test_readme_starts_with_the_two_commands() -> None:
    blocks = README.split("```")
    assert blocks[1].strip().startswith("bash\npip install -e . && zhiku ingest samples")
    assert blocks[3].strip() == 'bash\npip install -e ".[dev]" && python -m pytest -q'
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text("utf-8")
    assert 'pip install -e ".[dev]" && python -m pytest -q' in ci
