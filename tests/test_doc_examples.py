"""Run the examples of README.md and docs/: every ```console block, in page order.

Convention (docs/README.md): a ``$ zhiku …`` line is a command, a trailing ``# exit N``
its expected exit code (else 0); each line under it is a fragment of its output (stdout
and stderr), ``…`` standing for text left out. Each page gets a fresh data directory and
runs from the repository root, so ``samples`` is the bundled sample documents.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


@dataclass
class Example:
    command: str
    exit_code: int = 0
    expected: list[str] = field(default_factory=list)


def examples(text: str) -> list[Example]:
    found: list[Example] = []
    for block in CONSOLE.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                m = EXIT.search(command)
                code = int(m.group(1)) if m else 0
                found.append(Example(EXIT.sub("", command), code))
            elif line.strip():
                assert found, f"output before any command: {line!r}"
                found[-1].expected.append(line.strip())
    return found


def matches(fragment: str, output: str) -> bool:
    """``fragment``'s pieces between ``…`` appear in ``output`` in order, on one line."""
    pieces = [p.strip() for p in fragment.split("…") if p.strip()]
    for line in output.splitlines():
        pos = 0
        for piece in pieces:
            pos = line.find(piece, pos)
            if pos < 0:
                break
            pos += len(piece)
        else:
            return True
    return False


PAGES_WITH_EXAMPLES = [p for p in PAGES if examples(p.read_text("utf-8"))]


def test_the_pages_have_examples() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES_WITH_EXAMPLES}
    assert {
        "README.md",
        "docs/users/asking.md",
        "docs/admins/ingest.md",
        "docs/admins/pii.md",
    } <= names
    assert sum(len(examples(p.read_text("utf-8"))) for p in PAGES_WITH_EXAMPLES) >= 20


def test_the_parser_and_matcher() -> None:
    found = examples(
        "```console\n$ zhiku ask x   # exit 1\n找不到\n\n$ zhiku docs\n```\n"
        "```bash\nzhiku rm y\n```\n"
    )
    assert [(e.command, e.exit_code, e.expected) for e in found] == [
        ("zhiku ask x", 1, ["找不到"]),
        ("zhiku docs", 0, []),
    ]
    assert matches("[1] …/samples/a.docx", "x\n[1] 《A》 /w/samples/a.docx\n")
    assert not matches("[1] …/samples/a.docx", "[1]\n/w/samples/a.docx\n")
    assert not matches("b … a", "a b")


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZHIKU_LANG", raising=False)
    monkeypatch.delenv("ZHIKU_CONFIG", raising=False)
    runner = CliRunner()
    for ex in examples(page.read_text("utf-8")):
        argv = shlex.split(ex.command)
        assert argv[0] == "zhiku", f"{page.name}: not a zhiku command: {ex.command}"
        res = runner.invoke(app, argv[1:])
        output = res.stdout + res.stderr
        assert res.exit_code == ex.exit_code, (ex.command, res.exit_code, output)
        for fragment in ex.expected:
            assert matches(fragment, output), (page.name, ex.command, fragment, output)
