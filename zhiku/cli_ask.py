"""``zhiku ask`` as a plain click command, defined once for both ways it runs.

Typer 0.29 coerces every parameter of a command through a pydantic ``TypeAdapter``
(``typer/_coercion.py``), so a Typer command with a ``str`` argument imports Typer and
pydantic before it does anything: about half of what a ``zhiku ask`` process cost.
:func:`ask_command` builds ``ask`` with click alone. :func:`zhiku.cli.main` runs it
straight away for ``zhiku [--home DIR] ask …`` (no Typer, no pydantic), and the Typer
app mounts the same command in its click group (:class:`zhiku.cli.ZhikuGroup`), so
``zhiku --help``, the test runners and the help in English see it as before.

The command looks and fails as the Typer one did: an ``Arguments`` section with a help
row for ``QUESTION``, ``{QUESTION}`` in the usage line, the ``[env var: ZHIKU_HOME]``
note, and the same messages for a bad ``-k`` as Typer's pydantic coercion gave. Its help
texts are in zh-TW here and in English in :mod:`zhiku.cli_help_en`, keyed by the zh-TW,
as every command's are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import click

from zhiku.cli import PLAIN
from zhiku.cli_base import (
    HELP_AS,
    HELP_HOME,
    HELP_JSON,
    HELP_KBS,
    HELP_WHERE,
    engine,
    pick_kbs,
    print_json,
    print_sources,
    scoped,
    show_warnings,
    stream_answer,
)
from zhiku.text import visible

__all__ = ["CLICK_COMMANDS", "ask_command", "run"]


class HelpArgument(click.Argument):
    """A click argument with a help row, shown as Typer shows its arguments: ``QUESTION
    問題  [required]`` under ``Arguments``, ``{QUESTION}`` in the usage line."""

    def __init__(self, param_decls: Sequence[str], help: str | None = None, **attrs: Any):
        super().__init__(param_decls, **attrs)
        self.help = help

    def _shown(self) -> str:
        return (self.metavar or (self.name or "").upper()) + ("..." if self.nargs != 1 else "")

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        piece = f"{{{name}}}" if self.required else f"[{name}]"
        return [piece + ("..." if self.nargs != 1 else "")]

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        extra = "  [required]" if self.required else ""
        return self._shown(), (self.help or "") + extra


class TyperLikeCommand(click.Command):
    """A click command whose help lists its arguments, then its options, and whose usage
    errors read as Typer's (its click copy, ``typer._click``, words two of them apart
    from click's own)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for p in self.get_params(ctx):
            row = p.get_help_record(ctx)
            if row is not None:
                (arguments if isinstance(p, click.Argument) else options).append(row)
        for heading, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        allow_extra = ctx.allow_extra_args
        ctx.allow_extra_args = True  # checked below, in Typer's words
        try:
            rest = super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise _NoSuchOption(exc, ctx) from None
        finally:
            ctx.allow_extra_args = allow_extra
        if rest and not allow_extra and not ctx.resilient_parsing:
            ctx.fail(f"Got unexpected extra argument(s) ({visible(' '.join(rest))})")
        return rest


class _NoSuchOption(click.NoSuchOption):
    """``No such option: --jsn (Possible options: --json)``, as Typer words it."""

    def __init__(self, exc: click.NoSuchOption, ctx: click.Context) -> None:
        super().__init__(exc.option_name, f"No such option: {visible(exc.option_name)}", ctx=ctx)
        self.close = sorted(exc.possibilities or ())

    def format_message(self) -> str:
        if not self.close:
            return self.message
        return f"{self.message} (Possible options: {', '.join(self.close)})"


_INTEGER = re.compile(r"\s*[+-]?[0-9]+(?:_[0-9]+)*(?:\.0*)?\s*", re.ASCII)


class Count(click.IntRange):
    """An integer within ``[min, max]``, read and refused with the messages Typer's
    pydantic coercion gives (``Input should be greater than or equal to 1``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value):
            n = int(value.strip().split(".")[0])
        else:
            self.fail(
                "Input should be a valid integer, unable to parse string as an integer", param, ctx
            )
        if self.min is not None and n < self.min:
            self.fail(f"Input should be greater than or equal to {self.min}", param, ctx)
        if self.max is not None and n > self.max:
            self.fail(f"Input should be less than or equal to {self.max}", param, ctx)
        return n


def _ask(
    question: str,
    kb: tuple[str, ...],
    k: int,
    home: str | None,
    as_json: bool,
    where: tuple[str, ...],
    as_user: str | None,
) -> None:
    """回答問題並附上出處；知識庫沒有答案時會明說。設定對話模型時逐字輸出生成的回答。"""
    from zhiku.config import lang
    from zhiku.filters import Filter

    with engine(home) as zk:
        flt = scoped(zk, as_user, Filter.parse(list(where) or None))
        kbs = pick_kbs(zk, kb or None)
        if as_json:
            ans = zk.ask(question, kbs, k=k, where=flt)
        else:
            ans = stream_answer(zk, question, kbs, k, where=flt)
    show_warnings(ans.warnings)  # stderr, zh-TW: model down, fallback used…
    if as_json:
        print_json(ans.to_dict())
    else:
        print_sources(ans, english=lang() == "en")
    raise SystemExit(1 if ans.refused else 0)


def ask_command() -> click.Command:
    """A new ``ask`` command (each tree gets its own: :func:`zhiku.cli_help.localize`
    changes the commands it is given in place)."""
    return TyperLikeCommand(
        "ask",
        callback=_ask,
        help=_ask.__doc__,
        params=[
            HelpArgument(["question"], help="問題", required=True),
            click.Option(["--kb"], multiple=True, help=HELP_KBS),
            click.Option(
                ["-k", "--top", "k"],
                type=Count(1, 50),
                default=5,
                show_default=True,
                metavar="N",
                help="參考的段落數",
            ),
            click.Option(["--home"], envvar="ZHIKU_HOME", show_envvar=True, help=HELP_HOME),
            click.Option(["--json", "as_json"], is_flag=True, help=HELP_JSON),
            click.Option(["--where"], multiple=True, help=HELP_WHERE),
            click.Option(["--as", "as_user"], help=HELP_AS),
        ],
    )


# The plain click commands of the command line: name -> a function that builds one.
CLICK_COMMANDS: dict[str, Callable[[], click.Command]] = {"ask": ask_command}
assert tuple(CLICK_COMMANDS) == PLAIN, "zhiku.cli.main dispatches these names"


def run(name: str, args: Sequence[str], home: str | None) -> None:
    """``zhiku [--home DIR] NAME ARGS…`` without Typer: the root's ``--home`` applied as
    the Typer root applies it, then the command, its help in the language of
    ``ZHIKU_LANG``. Exits the process with the command's code."""
    from zhiku.cli_base import root_home
    from zhiku.cli_help import localize

    cmd = localize(CLICK_COMMANDS[name]())
    with root_home(home):
        cmd.main(list(args), prog_name=f"zhiku {name}")
