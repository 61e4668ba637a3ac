"""What every Typer ``zhiku`` command shares: the light part (consoles, opening the
engine, exit codes) from :mod:`zhiku.cli_base`, and the option types of the commands.

Domain errors (:class:`zhiku.errors.ZhikuError`) become a zh-TW message on stderr and
the error's exit code in :mod:`zhiku.cli_base`, and nowhere else in the CLI.
"""

from __future__ import annotations

from typing import Annotated

import typer

from zhiku.cli_base import (
    HELP_HOME,
    HELP_JSON,
    HELP_KB,
    HELP_KBS,
    attach_model_hooks,
    check_settings,
    engine,
    esc,
    fail,
    pick_kbs,
    print_json,
    print_sources,
    root_home,
    scoped,
    show_warnings,
    stream_answer,
    warning_text,
)
from zhiku.cli_console import SafeConsole, err, out

__all__ = [
    "HomeOpt",
    "JsonOpt",
    "KbOpt",
    "MultiKbOpt",
    "SafeConsole",
    "attach_model_hooks",
    "check_settings",
    "engine",
    "err",
    "esc",
    "fail",
    "out",
    "pick_kbs",
    "print_json",
    "print_sources",
    "root_home",
    "scoped",
    "show_warnings",
    "stream_answer",
    "warning_text",
]

HomeOpt = Annotated[str | None, typer.Option("--home", envvar="ZHIKU_HOME", help=HELP_HOME)]
KbOpt = Annotated[str, typer.Option("--kb", help=HELP_KB)]
MultiKbOpt = Annotated[list[str] | None, typer.Option("--kb", help=HELP_KBS)]
JsonOpt = Annotated[bool, typer.Option("--json", help=HELP_JSON)]
