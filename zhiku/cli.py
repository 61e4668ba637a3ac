"""The ``zhiku`` command line: its entry point, :func:`main`.

Exit codes: 0 success; 1 some files failed (ingest/sync) or the answer was refused
(``ask``); 2 usage error; 3 knowledge base or document not found; 4 store error.

``zhiku [--home DIR] ask …`` runs the plain click command of :mod:`zhiku.cli_ask`
without importing Typer or pydantic (what half of a ``zhiku ask`` process used to cost).
Every other command line builds the Typer tree of :mod:`zhiku.cli_app`, only the
command it invokes. ``app``, ``command`` and the rest of that module are reachable here
as before (``from zhiku.cli import app``), imported when first asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

# The commands main() runs without Typer (zhiku.cli_ask.CLICK_COMMANDS, which checks it).
PLAIN = ("ask",)


def root_args(args: Sequence[str]) -> tuple[str | None, str | None, list[str]]:
    """``args`` split as the root group reads them: the root's ``--home`` (the last one
    given), the top-level command (None for ``--help``, ``--version``, no arguments or
    any other option before the command) and the arguments after it."""
    home: str | None = None
    rest = list(args)
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--home":
            home = rest[i + 1] if i + 1 < len(rest) else None
            i += 2
        elif arg.startswith("--home="):
            home = arg[len("--home=") :]
            i += 1
        elif arg.startswith("-"):
            return home, None, rest[i + 1 :]
        else:
            return home, arg, rest[i + 1 :]
    return home, None, []


def invoked(args: Sequence[str]) -> str | None:
    """The top-level command that ``args`` runs (``ask`` in ``--home D ask 問題``), or
    None when they run none (``--help``, ``--version``, no arguments)."""
    return root_args(args)[1]


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    home, name, rest = root_args(args)
    if name in PLAIN:
        from zhiku.cli_ask import run

        run(name, rest, home)
        return
    from zhiku.cli_app import command

    command(name)(args, prog_name="zhiku")


def __getattr__(name: str) -> Any:
    """``app``, ``command``, ``kb_app``…: the Typer tree (zhiku/cli_app.py)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from zhiku import cli_app

    try:
        return getattr(cli_app, name)
    except AttributeError:
        raise AttributeError(f"module 'zhiku.cli' has no attribute {name!r}") from None


if __name__ == "__main__":
    main()
