"""Docs that tests keep true: the README's two commands and size, every CLI command has
help and is named in README, and every relative link in README.md and docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import typer

from zhiku.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


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
            assert f"zhiku {leaf}" in README or f"`{leaf}" in README, f"{full} not in README"
        else:
            assert leaf in README or f"{parts[0]} {parts[-1]}" in README, f"{full} not in README"


def test_readme_starts_with_the_two_commands() -> None:
    blocks = README.split("```")
    assert blocks[1].strip().startswith("bash\npip install -e . && zhiku ingest samples")
    assert blocks[3].strip() == 'bash\npip install -e ".[dev]" && python -m pytest -q'
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert 'pip install -e ".[dev]" && python -m pytest -q' in ci


def test_readme_is_short() -> None:
    assert len(README.encode("utf-8")) <= 15_000


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for m in LINK.finditer(text)]


def test_every_relative_link_resolves() -> None:
    broken = []
    checked = 0
    for page in PAGES:
        for target in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / unquote(path)).resolve() if path else page
            checked += 1
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and unquote(anchor) not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert checked > 50
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n[a](missing.md) `[b](x.md)`\n\n```\n[c](y.md)\n```\n", "utf-8")
    assert _links(page) == ["missing.md"]
    assert _anchors(page) == {"title"}
    assert _slug("JSON output for scripts") == "json-output-for-scripts"
    assert _slug("Personal data (個資)") == "personal-data-個資"
