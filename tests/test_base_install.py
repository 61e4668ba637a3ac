"""README's first command works with the base install alone.

A package that is installed on the developer's machine but missing from
``[project].dependencies`` breaks a fresh ``pip install zhiku`` without any other test
noticing (it happened with pydantic-settings). Here the CLI runs in a subprocess whose
import system refuses every third-party module that the base dependencies (and what they
require, transitively) do not provide, as if the optional extras were not installed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_distributions() -> set[str]:
    """The base dependencies of pyproject.toml and everything they require (no extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [_NAME.match(r).group(1) for r in project["dependencies"]]  # type: ignore[union-attr]
    seen: set[str] = set()
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req.replace('"', "'").replace("extra=='", "extra == '"):
                continue
            match = _NAME.match(req)
            if match:
                todo.append(match.group(1))
    return seen


BOOTSTRAP = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata, re, sys
    allowed = set(sys.argv.pop(1).split(","))
    dists = importlib.metadata.packages_distributions()
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    blocked = {top for top, names in dists.items()
               if top not in sys.stdlib_module_names and top != "zhiku"
               and not any(norm(n) in allowed for n in names)}

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"not a base dependency: {name}", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    sys.argv[0] = "zhiku"
    from zhiku.cli import main
    main()
    """
)


def run_cli(home: Path, *args: str, allowed: set[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZHIKU_LANG": "zh-TW", "PYTHONPATH": str(ROOT)}
    env.pop("ZHIKU_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, ",".join(sorted(allowed)), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def readme_first_command() -> list[list[str]]:
    """The ``zhiku …`` steps of README's first command (the ``pip install`` step is the
    environment this test stands in for)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.+?)\n```", readme, re.S)
    assert first is not None
    steps = [shlex.split(step) for step in first.group(1).split("&&")]
    return [step[1:] for step in steps if step and step[0] == "zhiku"]


def test_the_guard_refuses_an_optional_extra() -> None:
    # fastapi is installed here (the server extra) but is not a base dependency.
    allowed = base_distributions()
    assert "fastapi" not in allowed and "typer" in allowed
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            BOOTSTRAP.replace("from zhiku.cli import main\nmain()", "import typer\nimport fastapi"),
            ",".join(sorted(allowed)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert probe.returncode != 0
    assert "not a base dependency: fastapi" in probe.stderr


def test_readme_first_command_runs_on_the_base_install(tmp_path: Path) -> None:
    allowed = base_distributions()
    steps = readme_first_command()
    assert [s[0] for s in steps] == ["ingest", "ask"]
    for step in steps:
        result = run_cli(tmp_path, *step, allowed=allowed)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "出貨異常處理SOP" in result.stdout
