"""What every ``zhiku`` command shares, without Typer: consoles, opening the engine,
printing answers, exiting with a code.

Both the Typer commands (through :mod:`zhiku.cli_common`, which adds their option types)
and the plain click commands that start without Typer (:mod:`zhiku.cli_ask`) use these.
A command ends with an exit code by raising :class:`SystemExit`, which Typer, click and
their test runners all pass through unchanged (Typer's own ``typer.Exit`` would need
Typer, which imports pydantic).

Domain errors (:class:`zhiku.errors.ZhikuError`) become a zh-TW message on stderr and
the error's exit code here, and nowhere else in the CLI.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from zhiku.errors import ZhikuError, exit_code
from zhiku.messages import t
from zhiku.settings import SettingsError, core
from zhiku.text import visible

if TYPE_CHECKING:
    from rich.console import Console

    from zhiku.engine import Zhiku
    from zhiku.filters import Filter
    from zhiku.models import Answer


# Help texts of options several commands share (English in zhiku/cli_help_en.py).
HELP_HOME = "資料目錄（預設為使用者資料目錄）"
HELP_KB = "知識庫名稱"
HELP_KBS = "知識庫名稱（可重複指定多個）"
HELP_JSON = "輸出一個 JSON 物件到 stdout"
HELP_WHERE = (
    "篩選條件（可重複，皆須符合），如 dept=hr、tag=規章、"
    "amended>=2020-01-01、status=repealed；見 docs/admins/sources.md"
)
HELP_AS = "以這位使用者的群組與密等查詢（與伺服器對該使用者的篩選相同）"


def esc(text: str) -> str:
    """``text`` for a rich console line: markup escaped, control characters made visible."""
    from rich.markup import escape

    return escape(visible(text))


def _err() -> Console:
    from zhiku.cli_console import err

    return err


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout (messages go to stderr)."""
    # json escapes C0 controls; DEL, C1 and bidi controls are escaped here as well.
    sys.stdout.write(
        _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))
        + "\n"
    )


def fail(exc: ZhikuError) -> SystemExit:
    """Print ``exc`` on stderr; the exit carries its code (:func:`zhiku.errors.exit_code`)."""
    _err().print(f"[red]{t('cli.error')}[/red]{esc(str(exc))}")
    return SystemExit(exit_code(exc))


def check_settings() -> None:
    """Fail fast, before any command runs, when a ``ZHIKU_*`` variable is unusable."""
    try:
        core()
    except SettingsError as exc:
        raise fail(exc) from exc


@contextmanager
def root_home(home: str | None) -> Iterator[None]:
    """What the root ``zhiku --home DIR`` does before the command after it: ``ZHIKU_HOME``
    is DIR while the command runs (every command and the server's worker processes read
    it), then the settings are checked."""
    import os

    before = os.environ.get("ZHIKU_HOME")
    if home:
        os.environ["ZHIKU_HOME"] = home
    try:
        check_settings()
        yield
    finally:
        if home:
            if before is None:
                os.environ.pop("ZHIKU_HOME", None)
            else:
                os.environ["ZHIKU_HOME"] = before


def warning_text(warning: str) -> str:
    """The human part of an ``Answer.warnings`` entry (``code: message``)."""
    _, sep, message = warning.partition(": ")
    return message if sep else warning


def show_warnings(warnings: Sequence[str], console: Console | None = None) -> None:
    """Model warnings on stderr, in zh-TW (the answer itself stays on stdout)."""
    if not warnings:
        return
    c = console or _err()
    for w in warnings:
        c.print(f"[yellow]{t('cli.warning')}[/yellow]{esc(warning_text(w))}")


@contextmanager
def _embed_progress(kb: str, total: int) -> Iterator[Callable[[int], None]]:
    t0 = time.perf_counter()
    err = _err()
    if not err.is_terminal:
        err.print(f"建立向量：知識庫「{esc(kb)}」{total} 段")
        yield lambda _n: None
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as prog:
            task = prog.add_task(f"建立向量（{esc(kb)}）", total=total)
            yield lambda n: prog.update(task, advance=n)
    secs = time.perf_counter() - t0
    err.print(f"已建立向量 {total} 段（{total / secs if secs > 0 else 0:.1f} 段/秒）")


def attach_model_hooks(zk: Zhiku) -> None:
    """Embedding progress and ingest-time model warnings on stderr."""
    zk.embed_progress = _embed_progress
    zk.on_warning = lambda w: show_warnings([w])


@contextmanager
def engine(home: str | None) -> Iterator[Zhiku]:
    """Open the engine, translating domain errors into a message and an exit code."""
    from zhiku.engine import Zhiku

    try:
        zk = Zhiku(home)
    except ZhikuError as exc:
        raise fail(exc) from exc
    attach_model_hooks(zk)
    try:
        yield zk
    except ZhikuError as exc:
        raise fail(exc) from exc
    finally:
        zk.close()


def pick_kbs(zk: Zhiku, kb: Sequence[str] | None) -> list[str]:
    """The knowledge bases a question goes to: those named with ``--kb``, else ``default``
    when it exists. Without either, list the knowledge bases there are, say how to pick
    one, and exit 2 (a usage error)."""
    from zhiku.config import DEFAULT_KB, lang

    if kb:
        return list(kb)
    names = [k.name for k in zk.store.list_kbs()]
    if DEFAULT_KB in names:
        return [DEFAULT_KB]
    en = lang() == "en"
    err = _err()
    if not names:
        err.print(
            "No knowledge base yet: create one with  zhiku ingest PATH… --kb NAME"
            if en
            else "還沒有任何知識庫：先以  zhiku ingest 路徑… --kb 名稱  建立"
        )
    else:
        err.print(
            "Which knowledge base? Name it with --kb NAME (repeat for several). Knowledge bases:"
            if en
            else "要問哪個知識庫？請以 --kb 名稱 指定（可重複指定多個）。現有知識庫："
        )
        for name in names:
            err.print(f"  {esc(name)}")
        err.print(
            f"  zhiku ask QUESTION --kb {esc(names[0])}"
            if en
            else f'  例：zhiku ask "問題" --kb {esc(names[0])}'
        )
    raise SystemExit(2)


def scoped(zk: Zhiku, as_user: str | None, where: Filter | None) -> Filter | None:
    """``where`` restricted to what ``as_user`` may see (unchanged without ``--as``: the
    operator at the console reads the files themselves)."""
    if as_user is None:
        return where
    from zhiku.access import caller_scope
    from zhiku.server import accounts

    accounts.get_user(zk.store, as_user)  # a clear error for a name that is no user
    return caller_scope(zk.store.database, as_user).restrict(where)


def stream_answer(
    zk: Zhiku,
    question: str,
    kbs: list[str],
    k: int,
    history: Sequence[dict[str, str]] | None = None,
    where: Filter | None = None,
) -> Answer:
    """Print the answer to stdout as it is generated; return the final Answer."""
    from zhiku.models import Answer

    final: Answer | None = None
    for item in zk.iter_answer(question, kbs, k=k, history=history, where=where):
        if isinstance(item, Answer):
            final = item
        else:
            sys.stdout.write(item)
            sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    assert final is not None
    return final


def _styled(stream: Any) -> bool | None:
    """Whether rich would style text written to ``stream`` (bold, dim), decided as rich
    decides it (``TTY_COMPATIBLE``, ``FORCE_COLOR``, a terminal, ``TERM=dumb``); None on
    Windows, where only rich knows the console."""
    import os

    if sys.platform == "win32":
        return None
    env = os.environ
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        terminal = compatible == "1"
    elif env.get("FORCE_COLOR") is not None:
        terminal = env["FORCE_COLOR"] != ""
    else:
        try:
            terminal = bool(getattr(stream, "isatty", lambda: False)())
        except ValueError:  # closed
            terminal = False
    return terminal and env.get("TERM", "").lower() not in ("dumb", "unknown")


_SGR = {"bold": "\x1b[1m", "dim": "\x1b[2m"}


def print_sources(ans: Answer, english: bool = False) -> None:
    """The numbered citations under an answer, on stdout. Written without rich (a
    ``zhiku ask`` process does not import it), byte for byte as rich's console wrote
    them, except that ``:name:`` is kept as written (rich turned known names into emoji)."""
    from zhiku import citations

    if not ans.citations:
        return
    lang = "en" if english else "zh-TW"
    heading = citations.heading(lang).rstrip("：:")
    lines = citations.numbered([c.to_dict() for c in ans.citations], lang)
    rows = [
        (visible(line) + "　", visible(c.hit.path))
        for line, c in zip(lines, ans.citations, strict=True)
    ]
    stream = sys.stdout
    styled = _styled(stream)
    if styled is None:  # Windows: rich's console
        from zhiku.cli_console import out

        out.print(f"\n[bold]{esc(heading)}[/bold]")
        for line, path in rows:
            out.print(f"{esc(line)}[dim]{esc(path)}[/dim]")
        return

    def style(text: str, name: str) -> str:
        return f"{_SGR[name]}{text}\x1b[0m" if styled else text

    stream.write("\n" + style(visible(heading), "bold") + "\n")
    for line, path in rows:
        stream.write(line + style(path, "dim") + "\n")
    stream.flush()
