"""The CLI's help in the user's language, with plain metavars instead of Python types.

Help texts are written in zh-TW where each command is defined (``cli*.py``,
``pii/cli.py``, ``server/cli.py``). :data:`EN` holds their English, keyed by the zh-TW
text, and :func:`localize` applies the language of ``ZHIKU_LANG`` (zh-TW unless it says
``en``) to the click command tree when ``zhiku`` starts. It also gives every parameter
a metavar (``KB``, ``PATH``, ``N``) so help never shows ``<list[str]>``, and puts click's
own headings and notes (``Usage:``, ``Options``, ``[default: …]``) in zh-TW.

A command added without an English entry keeps its zh-TW help under ``ZHIKU_LANG=en``;
``tests/test_cli_help.py`` fails on it.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Sequence
from typing import Any

from zhiku.config import lang

__all__ = ["help_texts", "localize", "walk"]  # and EN (module __getattr__)


def __getattr__(name: str) -> Any:
    """:data:`EN`, imported when first used (a zh-TW command line never needs it)."""
    if name == "EN":
        from zhiku.cli_help_en import EN

        return EN
    raise AttributeError(f"module 'zhiku.cli_help' has no attribute {name!r}")


_HEADINGS_ZH = {"Usage: ": "用法：", "Options": "選項", "Arguments": "引數", "Commands": "指令"}
_EXTRA_ZH = (("required", "必填"), ("default: ", "預設："), ("env var: ", "環境變數："))
_HELP_OPTION = {"zh-TW": "顯示本說明並離開", "en": "Show this message and exit."}
_TRAILING_EXTRA = re.compile(r"\[([^\[\]]*)\]\s*$")
_NAMED_METAVARS = {
    "home": "DIR",
    "where": "FILTER",
    "meta": "KEY=VALUE",
    "items": "KEY=VALUE",
    "kb": "KB",
}


def _extra_zh(match: re.Match[str]) -> str:
    parts = []
    for part in match.group(1).split("; "):
        for en, zh in _EXTRA_ZH:
            if part.startswith(en):
                part = zh + part[len(en) :]
        parts.append(part)
    return "［" + "；".join(parts) + "］"


class _ZhFormatting:
    """Mixed into click's help formatter: its headings and ``[default: …]`` notes in zh-TW."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, prefix if prefix is not None else "用法：")  # type: ignore[misc]

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{_HEADINGS_ZH.get(heading, heading)}：\n")  # type: ignore[attr-defined]

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = [(a, _TRAILING_EXTRA.sub(_extra_zh, b)) for a, b in rows]
        super().write_dl(rows, col_max, col_spacing)  # type: ignore[misc]


def walk(cmd: Any, path: str = "zhiku") -> Iterator[tuple[str, Any]]:
    """Every command of the tree with its full name (``zhiku kb list``), groups included."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from walk(sub, f"{path} {name}")


def help_texts(root: Any) -> list[tuple[str, str]]:
    """(command, help text) for every help text the tree shows, commands and parameters."""
    found = []
    for path, cmd in walk(root):
        for text in (cmd.help, cmd.short_help):
            if text:
                found.append((path, text))
        for p in cmd.params:
            text = getattr(p, "help", None)
            if text:
                found.append((f"{path} {p.name}", text))
    return found


def _metavar(p: Any) -> str:
    if p.name in _NAMED_METAVARS:
        return _NAMED_METAVARS[p.name]
    desc = getattr(p, "type_descriptor", None)  # typer's parameters
    if desc is not None:
        if desc.is_choice:
            return "|".join(str(c) for c in desc.choices or ())
        if desc.is_path or desc.is_file:
            return "PATH"
        element = desc.annotation
        if desc.is_list:
            element = getattr(element, "__args__", (str,))[0]
        if element in (int, float):
            return "N"
    return (p.name or "value").upper()


def _plain_argument(p: Any) -> None:
    """An argument's help row names it (``PATHS...``) without its Python type."""
    shown = (p.metavar or "") + ("..." if p.nargs != 1 else "")
    p.display_type_rich = types.MethodType(lambda self, ctx: None, p)
    p._rich_display_name = types.MethodType(lambda self: shown, p)


def _localize_help_option(cmd: Any, text: str) -> None:
    original = cmd.get_help_option

    def get_help_option(self: Any, ctx: Any) -> Any:
        opt = original(ctx)
        if opt is not None:
            opt.help = text
        return opt

    cmd.get_help_option = types.MethodType(get_help_option, cmd)


def localize(root: Any, language: str | None = None) -> Any:
    """``root`` with every help text in ``language`` (default: ``ZHIKU_LANG``) and plain
    metavars. Changes the tree in place and returns it."""
    language = language or lang()
    english = language == "en"
    if english:
        from zhiku.cli_help_en import EN
    for _path, cmd in walk(root):
        if english:
            cmd.help = EN.get(cmd.help, cmd.help) if cmd.help else cmd.help
            cmd.short_help = EN.get(cmd.short_help, cmd.short_help) if cmd.short_help else None
        else:
            context_class: Any = cmd.context_class
            formatter = type("ZhHelpFormatter", (_ZhFormatting, context_class.formatter_class), {})
            cmd.context_class = type("ZhContext", (context_class,), {"formatter_class": formatter})
        _localize_help_option(cmd, _HELP_OPTION[language])
        for p in cmd.params:
            if english and getattr(p, "help", None):
                p.help = EN.get(p.help, p.help)
            if p.param_type_name == "option" and (p.is_flag or p.count):
                continue
            if p.metavar is None:
                p.metavar = _metavar(p)
            if p.param_type_name == "argument":
                _plain_argument(p)
    return root
