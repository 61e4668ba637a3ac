"""The Typer tree of the ``zhiku`` command line (the entry point is :mod:`zhiku.cli`).

Exit codes: 0 success; 1 some files failed (ingest/sync) or the answer was refused
(``ask``); 2 usage error; 3 knowledge base or document not found; 4 store error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
from rich.table import Table
from typer.core import TyperGroup

from zhiku import __version__, citations
from zhiku import messages as m
from zhiku.calibration import RefusalCalibration
from zhiku.cli_access import AsOpt
from zhiku.cli_access import install as _install_access
from zhiku.cli_ask import CLICK_COMMANDS
from zhiku.cli_base import HELP_WHERE, root_home
from zhiku.cli_common import (
    HomeOpt,
    JsonOpt,
    KbOpt,
    MultiKbOpt,
    engine,
    err,
    esc,
    fail,
    out,
    pick_kbs,
    print_json,
    scoped,
)
from zhiku.cli_models import install as install_models
from zhiku.config import DEFAULT_KB, lang
from zhiku.errors import ZhikuError
from zhiku.filters import FILTER_META, Filter, meta_key, parse_meta_args
from zhiku.pii import format_counts
from zhiku.pii.cli import app as pii_app

if TYPE_CHECKING:  # ingesting imports the loaders: only the commands that ingest need them
    from zhiku.ingest import FileResult, IngestReport
    from zhiku.ocr import PageProgress


class ZhikuGroup(TyperGroup):
    """The root group: the Typer commands, and the plain click commands of
    :mod:`zhiku.cli_ask` (``ask``: see there why) in their place after ``search``.

    Typer 0.29 builds on its own copy of click (``typer._click``), so what the click
    commands raise to end (click's ``Exit``, usage errors, ``Abort``) is turned here into
    what Typer handles: the same message, the same exit code."""

    click_commands: ClassVar[tuple[str, ...]] = tuple(CLICK_COMMANDS)

    def __init__(self, *args: Any, commands: dict[str, Any] | None = None, **kwargs: Any):
        merged: dict[str, Any] = {}
        extra = {n: CLICK_COMMANDS[n]() for n in self.click_commands}
        for name, cmd in (commands or {}).items():
            merged[name] = cmd
            if name == "search":
                merged.update(extra)
        merged.update({n: c for n, c in extra.items() if n not in merged})
        super().__init__(*args, commands=merged, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        import click

        try:
            return super().invoke(ctx)
        except click.exceptions.Exit as exc:
            raise typer.Exit(exc.exit_code) from None
        except click.exceptions.Abort:
            raise typer.Abort() from None
        except click.ClickException as exc:
            exc.show()
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=ZhikuGroup,
    name="zhiku",
    help="知庫 zhiku：地端、繁體中文優先的知識庫問答。",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
kb_app = typer.Typer(help="管理知識庫（建立、列出、檢視、刪除、個資政策）。", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(pii_app, name="pii")

WhereOpt = Annotated[list[str] | None, typer.Option("--where", help=HELP_WHERE)]
MetaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--meta", help="文件中繼資料（可重複），如 dept=hr、tag=規章,差勤、effective=2024-01-01"
    ),
]


def version_callback(value: bool) -> None:
    if value:
        out.print(f"zhiku {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=version_callback, is_eager=True, help="顯示版本"),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            metavar="DIR",
            help="資料目錄，適用於之後的指令（同 ZHIKU_HOME；指令自己的 --home 優先）",
        ),
    ] = None,
) -> None:
    """知庫 zhiku：把公司文件變成會引用出處的問答知識庫；資料不離開你的伺服器。"""
    ctx.with_resource(root_home(home))  # ZHIKU_HOME=DIR until the command ends


# --- ingest ---------------------------------------------------------------------------

_STATUS_ZH = {
    "added": "新增",
    "updated": "更新",
    "unchanged": "未變更",
    "skipped": "略過",
    "failed": "失敗",
    "removed": "移除",
}


def _summary(report: IngestReport, as_json: bool) -> int:
    code = 1 if report.failed else 0
    if as_json:
        print_json(report.to_dict())
        return code
    t = Table(title="匯入結果", show_header=True)
    t.add_column("項目")
    t.add_column("數量", justify="right")
    for key in ("added", "updated", "unchanged", "removed", "skipped", "failed"):
        t.add_row(_STATUS_ZH[key], str(report.count(key)))
    t.add_row("段落（chunks）", str(report.chunks))
    t.add_row("頁數", str(report.pages))
    t.add_row("耗時（秒）", f"{report.seconds:.2f}")
    err.print(t)
    if report.masked:
        err.print(m.t("cli.masked", counts=format_counts(report.masked)))
    for f in report.files:
        if f.status == "skipped":
            err.print(
                f"[yellow]{m.t('cli.skipped')}[/yellow] {esc(f.path)}：{esc(f.message or '')}"
            )
    for f in report.failed:
        err.print(
            f"[red]{m.t('cli.failed')}[/red] {esc(f.path)}：{esc(f.message or '')}（{f.reason}）"
        )
    for f in report.files:
        for w in f.warnings:
            err.print(f"[yellow]{m.t('cli.note')}[/yellow] {esc(f.path)}：{esc(w)}")
    return code


@contextmanager
def _progress(
    total: int | None, label: str, quiet: bool
) -> Iterator[tuple[Callable[[FileResult], None], PageProgress | None]]:
    """(one step per file, one update per OCR'd page)."""
    if quiet:
        yield (lambda _r: None), None
        return
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
        TextColumn("{task.fields[name]}"),
        console=err,
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=total, name="")

        def step(res: FileResult) -> None:
            prog.update(task, advance=1, name=esc(Path(res.path).name[:40]))

        def page(name: str, done: int, total: int) -> None:  # OCR, page by page
            prog.update(task, name=f"{name[:30]} OCR {done}/{total} 頁")

        yield step, page


def _say_waiting() -> None:
    err.print(f"[yellow]{m.t('cli.waiting_lock')}[/yellow]")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="檔案或資料夾（遞迴）")],
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不顯示進度")] = False,
    meta: MetaOpt = None,
) -> None:
    """匯入文件（PDF、Office、ODF、掃描影像、郵件、ZIP 等）；未變更的檔案會略過。"""
    from zhiku.ingest import ingest_paths, missing_file, walk

    missing = [p for p in paths if not p.exists()]
    for p in missing:
        err.print(f"[red]{m.t('cli.path_not_found')}[/red] {esc(str(p))}")
    with engine(home) as zk:
        extra = parse_meta_args(meta or [])
        files = list(walk([p for p in paths if p.exists()]))
        with _progress(len(files), "匯入中", quiet or as_json) as (step, page):
            report = ingest_paths(
                zk, files, kb, on_file=step, meta=extra, on_wait=_say_waiting, on_page=page
            )
        for p in missing:
            report.files.append(missing_file(p))
        raise typer.Exit(_summary(report, as_json))


@app.command()
def sync(kb: KbOpt = DEFAULT_KB, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """重新檢查已匯入的檔案：變更者重新匯入，已刪除者自知識庫移除。"""
    from zhiku.ingest import sync_kb

    with engine(home) as zk:
        zk.kb(kb)
        with _progress(len(zk.store.document_hashes(kb)), "同步中", as_json) as (step, _page):
            report = sync_kb(zk, kb, on_file=step, on_wait=_say_waiting)
        raise typer.Exit(_summary(report, as_json))


@app.command()
def rm(
    paths: Annotated[list[str], typer.Argument(help="要移除的文件路徑（如 docs 所列）")],
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
) -> None:
    """自知識庫移除文件（不會刪除原始檔案）。"""
    code = 0
    with engine(home) as zk:
        zk.kb(kb)
        for p in paths:
            candidates = [p, str(Path(p).expanduser().resolve())]
            if any(zk.remove(kb, c) for c in dict.fromkeys(candidates)):
                err.print(m.t("cli.removed", path=esc(p)))
            else:
                err.print(f"[red]{m.t('cli.no_document', kb=esc(kb))}[/red] {esc(p)}")
                code = 3
        zk.sync_index(kb)
    raise typer.Exit(code)


@app.command()
def docs(
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    where: WhereOpt = None,
    as_user: AsOpt = None,
) -> None:
    """列出知識庫中的文件（可用 --where 篩選）。"""
    with engine(home) as zk:
        kbo = zk.store.get_kb(kb)
        items = zk.store.list_documents(
            kb, scoped(zk, as_user, Filter.parse(where) if where else None)
        )
        for d in items:  # as every reader sees them (file names masked)
            d.path = zk.redact_path(kbo, d.path)
            d.title = zk.redact_output(kbo, d.title)
    if as_json:
        print_json(
            {
                "documents": [
                    {
                        "title": d.title,
                        "path": d.path,
                        "kind": d.kind,
                        "chunks": d.chunks,
                        "size": d.size,
                        "updated_at": d.updated_at,
                        "meta": {k: d.meta[k] for k in FILTER_META if k in d.meta},
                    }
                    for d in items
                ]
            }
        )
        return
    # One block per document, its path whole on a line of its own: never cut to a
    # terminal's width (a table column would be), so it can be copied into `zhiku rm`.
    out.print(f"[bold]知識庫「{esc(kb)}」的文件（{len(items)}）[/bold]")
    for d in items:
        out.print(f"《{esc(d.title)}》　{d.kind}．{d.chunks} 段．{d.updated_at[:19]}")
        out.print(f"  {esc(d.path)}", soft_wrap=True, overflow="ignore", crop=False)


@app.command("meta")
def meta_set(
    path: Annotated[str, typer.Argument(help="文件路徑（如 docs 所列）")],
    items: Annotated[list[str], typer.Argument(help="鍵=值，如 dept=hr tag=規章；鍵= 表示移除")],
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
) -> None:
    """設定文件的中繼資料（部門、標籤、施行／修正日期），供 --where 篩選。"""
    with engine(home) as zk:
        changes: dict[str, Any] = parse_meta_args([i for i in items if not i.endswith("=")])
        changes.update({meta_key(i[:-1]): None for i in items if i.endswith("=")})
        zk.kb(kb)
        candidates = dict.fromkeys([path, str(Path(path).expanduser().resolve())])
        if not any(zk.store.set_document_meta(kb, c, changes) for c in candidates):
            err.print(f"[red]{m.t('cli.no_document', kb=esc(kb))}[/red] {esc(path)}")
            raise typer.Exit(3)
        zk.sync_index(kb)
    err.print(m.t("cli.meta_updated", path=esc(path)))


# --- search / ask ------------------------------------------------------------------------


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="查詢文字")],
    kb: MultiKbOpt = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=200, help="回傳筆數")] = 5,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    where: WhereOpt = None,
    as_user: AsOpt = None,
) -> None:
    """檢索最相關的段落（--where 篩選在索引查詢之內套用）。"""
    with engine(home) as zk:
        hits = zk.search(
            query, pick_kbs(zk, kb), k=k, where=scoped(zk, as_user, Filter.parse(where))
        )
    if as_json:
        print_json({"hits": [h.citation() for h in hits]})
        return
    if not hits:
        err.print(m.t("cli.no_hits"))
        return
    for i, h in enumerate(hits, 1):
        out.print(
            f"[bold]\\[{i}][/bold] {esc(citations.where(h.citation()))}　[dim]{h.score:.2f}[/dim]"
        )
        out.print(f"    {esc(h.text[:300])}")
        out.print(f"    [dim]{esc(h.path)}[/dim]")


# ``ask`` is a plain click command (zhiku/cli_ask.py), mounted by ZhikuGroup.


# --- store management ----------------------------------------------------------------------


@app.command()
def stats(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """顯示各知識庫的文件與段落數。"""
    with engine(home) as zk:
        st = zk.stats()
    if as_json:
        print_json(st)
        return
    t = Table(title=f"資料庫 {st['database']}（{st['database_bytes'] / 1e6:.1f} MB）")
    for col in ("知識庫", "文件", "段落", "字數"):
        t.add_column(col)
    for row in st["kbs"]:
        t.add_row(
            esc(row["name"]), str(row["documents"]), str(row["chunks"]), str(row["characters"])
        )
    out.print(t)


@app.command()
def reindex(kb: KbOpt = DEFAULT_KB, home: HomeOpt = None) -> None:
    """由資料庫重建知識庫的檢索索引。"""
    with engine(home) as zk:
        n = zk.index(kb).rebuild()
    err.print(m.t("cli.reindexed", n=n))


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="備份檔路徑（SQLite 檔）")],
    home: HomeOpt = None,
) -> None:
    """線上備份資料庫（SQLite backup API）；索引可由 reindex 重建。"""
    import sqlite3

    if dest.exists():
        err.print(f"[red]{m.t('cli.error')}[/red]{m.t('cli.exists_no_overwrite', path=dest)}")
        raise typer.Exit(2)
    with engine(home) as zk:
        if zk.store.database.dialect != "sqlite":
            err.print(
                f"[red]錯誤：[/red]資料庫在 {esc(zk.store.database.location)}，"
                "請改用 pg_dump 備份（見 docs/operators/postgresql.md）"
            )
            raise typer.Exit(4)
        target = sqlite3.connect(dest)
        with target:
            zk.store.db.backup(target)
        target.close()
    err.print(m.t("cli.backed_up", dest=dest))


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="zhiku backup 產生的備份檔")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """由備份還原資料庫：確認沒有程序使用中、移開舊檔與殘留的 WAL、檢查完整性、重建索引。"""
    from zhiku.config import home_dir
    from zhiku.restore import restore as do_restore

    try:
        rep = do_restore(home_dir(home), src)
    except ZhikuError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(
            {
                "database": rep.database,
                "previous": rep.previous,
                "kbs": rep.kbs,
                "seconds": round(rep.seconds, 3),
            }
        )
        return
    if rep.previous:
        err.print(m.t("cli.moved_aside", path=rep.previous))
    err.print(m.t("cli.restored", src=src, n=len(rep.kbs)))


@app.command("migrate")
def migrate_cmd(
    to: Annotated[str, typer.Option("--to", help="空的 PostgreSQL 資料庫網址 postgresql://…")],
    home: HomeOpt = None,
    sample: Annotated[
        int, typer.Option("--sample", min=0, help="每個知識庫用來比對搜尋結果的問題數")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """把內建的 SQLite 資料庫複製到空的 PostgreSQL：逐表複製、比對筆數與搜尋結果。

    結束碼：0 完成且一致；1 複製完成但比對不一致；4 目標不是空的或無法連線。"""
    from zhiku.pgmigrate import migrate_to

    try:
        rep = migrate_to(home, to, sample=sample)
    except ZhikuError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(
            {
                "target": rep.target,
                "tables": rep.tables,
                "ok": rep.ok,
                "mismatched_tables": rep.mismatched_tables,
                "questions": rep.questions,
                "mismatched_searches": [list(x) for x in rep.mismatched_searches],
            }
        )
    else:
        err.print(
            f"已複製 {len(rep.tables)} 個資料表、{sum(rep.tables.values())} 筆資料至 "
            f"{esc(rep.target)}"
        )
        for table, (src, dst) in rep.mismatched_tables.items():
            err.print(f"[red]筆數不符：[/red]{table}：來源 {src}、目標 {dst}")
        for kb, q in rep.mismatched_searches:
            err.print(f"[red]搜尋結果不同：[/red]{esc(kb)}：{esc(q)}")
        if rep.ok:
            err.print(
                f"已比對 {rep.questions} 個問題的搜尋結果：一致。"
                '請在 zhiku.toml 設定 database = "postgresql://…" 後改用 PostgreSQL'
            )
    if not rep.ok:
        raise typer.Exit(1)


@kb_app.command("list")
def kb_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出知識庫。"""
    with engine(home) as zk:
        kbs = zk.store.list_kbs()
    if as_json:
        print_json({"kbs": [{"name": k.name, "created_at": k.created_at} for k in kbs]})
        return
    for k in kbs:
        out.print(f"{esc(k.name)}\t{k.created_at}")


@kb_app.command("create")
def kb_create(
    name: Annotated[str, typer.Argument(help="知識庫名稱")],
    home: HomeOpt = None,
    index: Annotated[
        str | None,
        typer.Option("--index", help="索引後端：embedded（預設，tantivy＋向量檔）或 milvus"),
    ] = None,
    milvus_uri: Annotated[
        str | None,
        typer.Option(
            "--milvus-uri", help="Milvus 位址：本機 .db 檔（Milvus Lite）或 http://主機:19530"
        ),
    ] = None,
) -> None:
    """建立知識庫（已存在則不變；給了 --index 則改用該索引，由資料庫重建）。"""
    from zhiku.index import IndexConfig

    cfg = None
    try:
        if index is not None or milvus_uri is not None:
            cfg = IndexConfig.from_settings(
                {"backend": index or "milvus", "uri": milvus_uri}
            ).to_settings()
        with engine(home) as zk:
            kbo = zk.kb(name, create=True)
            if cfg is not None and kbo.settings.get("index", {"backend": "embedded"}) != cfg:
                zk.store.update_kb_settings(name, {"index": cfg})
                zk.index(name).rebuild()  # the index now used follows the database as it is
    except ZhikuError as exc:
        raise fail(exc) from exc
    err.print(m.t("cli.kb_ready", kb=esc(name)))


@kb_app.command("show")
def kb_show(
    name: Annotated[str, typer.Argument(help="知識庫名稱")] = DEFAULT_KB,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """顯示知識庫的設定（含個資政策）與統計。"""
    with engine(home) as zk:
        k = zk.kb(name)
        docs_ = zk.store.list_documents(name)
        info = {
            "name": k.name,
            "created_at": k.created_at,
            "documents": len(docs_),
            "chunks": sum(d.chunks for d in docs_),
            "settings": k.settings,
            "tw_output": zk.tw_output(name, zk.settings.for_kb(name).language),
        }
        rows = zk.pii_policy(k).describe(lang())
        cal = zk.refusal_calibration(name)
        threshold = zk.refusal_threshold(name)
    info["refusal_threshold"] = threshold
    if as_json:
        print_json(info)
        return
    t = Table(title=f"知識庫「{name}」", show_header=False)
    t.add_row("建立時間", k.created_at)
    t.add_row("文件數", str(info["documents"]))
    t.add_row("段落數", str(info["chunks"]))
    t.add_row("生成回答轉臺灣正體", "開" if info["tw_output"] else "關")
    for a, b in rows:
        t.add_row(esc(a), esc(b))
    t.add_row("拒答門檻", _refusal_line(threshold, cal))
    out.print(t)
    if cal is not None:
        out.print(_refusal_curve(cal))


def _refusal_line(threshold: float, cal: RefusalCalibration | None) -> str:
    if cal is None:
        return f"{threshold:.3f}（預設值，尚未校準：zhiku kb calibrate）"
    return (
        f"{threshold:.3f}（{cal.at[:16]} 以 {cal.positives} 題可答、{cal.negatives} "
        f"題無關問題校準：可答題拒答 {cal.answerable_refused:.0%}，"
        f"無關題拒答 {cal.offtopic_refused:.0%}）"
        + (
            f"；問題長度校正：斜率 {cal.length_slope:.2f}，基準 {cal.length_ref:g} 詞"
            if cal.length_slope
            else ""
        )
    )


def _refusal_curve(cal: RefusalCalibration) -> Table:
    t = Table(title="拒答曲線（信心低於門檻即拒答）")
    for col in ("信心門檻", "可答題被拒", "無關題被拒"):
        t.add_column(col, justify="right")
    for thr, a, u in cal.curve[1::2]:
        mark = " ◀" if abs(thr - cal.threshold) < 0.05 else ""
        t.add_row(f"{thr:.2f}{mark}", f"{a:.0%}", f"{u:.0%}")
    return t


@kb_app.command("calibrate")
def kb_calibrate(
    name: Annotated[str, typer.Argument(help="知識庫名稱")] = DEFAULT_KB,
    max_refused: Annotated[
        float, typer.Option("--max-refused", min=0.0, max=0.5, help="可答問題最多被拒答的比例")
    ] = 0.05,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """以知識庫自己的段落重新校準拒答門檻，並顯示拒答曲線。"""
    with engine(home) as zk:
        zk.kb(name)
        cal = zk.calibrate_refusal(name, max_refused=max_refused)
    if cal is None:
        err.print(m.t("cli.too_few_passages", kb=esc(name)))
        raise typer.Exit(1)
    if as_json:
        print_json(cal.to_dict())
        return
    out.print(f"拒答門檻：{_refusal_line(cal.threshold, cal)}")
    out.print(_refusal_curve(cal))


@kb_app.command("set")
def kb_set(
    name: Annotated[str, typer.Argument(help="知識庫名稱")],
    pii_mode: Annotated[
        str | None,
        typer.Option("--pii-mode", help="ingest（匯入時遮罩）、output（輸出時遮罩）或 off"),
    ] = None,
    pii_types: Annotated[
        str | None,
        typer.Option("--pii-types", help='要遮罩的類型，如 "+landline,-name" 或完整清單'),
    ] = None,
    pii_strategy: Annotated[
        str | None, typer.Option("--pii-strategy", help="mask、tag 或 pseudonym")
    ] = None,
    keep_business: Annotated[
        bool | None,
        typer.Option(
            "--pii-keep-business/--pii-mask-business",
            help="保留機構聯絡資訊（服務信箱、客服專線、營業地址）",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--pii-min-confidence", min=0.0, max=1.0, help="遮罩的最低信心值（0–1）"),
    ] = None,
    tw_output: Annotated[
        bool | None,
        typer.Option(
            "--tw-output/--no-tw-output",
            help="對話模型輸出的簡體中文轉為臺灣正體（OpenCC s2twp；預設開）",
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """變更知識庫的個資政策（之後匯入的文件適用；既有文件請重新匯入）與輸出設定。"""
    with engine(home) as zk:
        k = zk.kb(name)
        if tw_output is not None:
            zk.store.update_kb_settings(name, {"tw_output": tw_output})
            out.print(f"生成回答轉臺灣正體：{'開' if tw_output else '關'}")
        changes: dict[str, Any] = {}
        if pii_mode is not None:
            changes["mode"] = pii_mode
        if pii_types is not None:
            changes["types"] = pii_types
        if pii_strategy is not None:
            changes["strategy"] = pii_strategy
        if keep_business is not None:
            changes["keep_business"] = keep_business
        if min_confidence is not None:
            changes["min_confidence"] = min_confidence
        policy = zk.pii_policy(k).updated(**changes)
        zk.set_pii_policy(name, policy)
        for a, b in policy.describe(lang()):
            out.print(f"{a}：{b}")


@kb_app.command("delete")
def kb_delete(
    name: Annotated[str, typer.Argument(help="知識庫名稱")],
    home: HomeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="不詢問直接刪除")] = False,
) -> None:
    """刪除知識庫與其中所有文件（原始檔案不受影響）。"""
    if not yes:
        typer.confirm(f"確定刪除知識庫「{name}」與其中所有文件？", abort=True)
    with engine(home) as zk:
        zk.delete_kb(name)
    err.print(m.t("cli.kb_deleted", kb=esc(name)))


# --- sources: Taiwan law, watch, crawl (zhiku/sources) -------------------------------------

from zhiku.cli_sources import install as _install_sources  # noqa: E402

_install_sources(app, _summary, _progress)


# --- server: serve, users, keys, audit (zhiku/server/cli.py) --------------------------------

from zhiku.server.cli import register as _register_server  # noqa: E402

_register_server(app)
_install_access(app, pii_app)  # zhiku access …, zhiku retention …, zhiku pii subject …
from zhiku.channels.cli import register as _register_channels  # noqa: E402

_register_channels(app)  # zhiku line …, zhiku webhooks … (zhiku/channels/cli.py)
install_models(app)  # zhiku models …, zhiku chat (zhiku/cli_models.py)

from zhiku.cli_loop import install as _install_loop  # noqa: E402

_install_loop(app)  # zhiku report, zhiku export sft (zhiku/cli_loop.py)


def _only(root: typer.Typer, name: str) -> typer.Typer:
    """``root`` with its one top-level command (or group) ``name``: a process runs one
    command, and Typer building all ~70 costs more than answering a question. Unknown
    names keep the whole tree (click's own error for them). A plain click command
    (:data:`zhiku.cli_ask.CLICK_COMMANDS`) is kept by the root group's class."""
    from typer.main import get_command_name, solve_typer_info_defaults

    commands = [
        c
        for c in root.registered_commands
        if (c.name or get_command_name(c.callback.__name__ if c.callback else "")) == name
    ]
    groups = [
        g
        for g in root.registered_groups
        if solve_typer_info_defaults(g).name in (name, None)  # nameless: merged, kept
    ]
    clicks = tuple(n for n in CLICK_COMMANDS if n == name)
    if not (commands or clicks) and not any(
        solve_typer_info_defaults(g).name == name for g in groups
    ):
        return root
    small = copy.copy(root)
    small.registered_commands = commands
    small.registered_groups = groups
    small.info = copy.copy(root.info)
    small.info.cls = type("ZhikuGroup", (ZhikuGroup,), {"click_commands": clicks})
    return small


def command(only: str | None = None) -> Any:
    """The click command tree of ``zhiku``, its help in the language of ``ZHIKU_LANG``;
    with ``only``, just that top-level command under the root (what
    :func:`zhiku.cli.main` runs for a Typer command)."""
    from zhiku.cli_help import localize

    return localize(typer.main.get_command(app if only is None else _only(app, only)))
