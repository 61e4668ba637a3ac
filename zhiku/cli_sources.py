"""CLI commands for sources that stay in sync (docs/admins/sources.md): ``zhiku law import``,
``zhiku watch``, ``zhiku crawl`` and ``zhiku source …`` (sources the server syncs)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape as esc
from rich.table import Table

from zhiku.cli_common import HomeOpt, JsonOpt, KbOpt, engine, err, out, print_json
from zhiku.config import DEFAULT_KB
from zhiku.filters import parse_meta_args

if TYPE_CHECKING:
    from zhiku.ingest import FileResult, IngestReport

Summary = Callable[["IngestReport", bool], int]
SourceName = Annotated[str, typer.Argument(help="來源名稱")]

_STATUS = {
    "added": "新增",
    "updated": "更新",
    "removed": "移除",
    "failed": "失敗",
    "skipped": "略過",
    "unchanged": "未變更",
}

MetaOpt = Annotated[
    list[str] | None,
    typer.Option("--meta", help="文件中繼資料（可重複），如 dept=hr、tag=規章"),
]


CA_FILE_HELP = "HTTPS：另外信任的 CA 憑證檔（PEM，如內部憑證機構；系統信任的憑證照常使用）"


def install(app: typer.Typer, summary: Summary, progress: Any) -> None:
    """Add the source commands to the root ``zhiku`` app."""
    law_app = typer.Typer(
        help="匯入全國法規資料庫的法規（一部法規一份文件）。", no_args_is_help=True
    )
    app.add_typer(law_app, name="law")

    @law_app.command("import")
    def law_import(
        paths: Annotated[list[Path], typer.Argument(help="法規 JSON 檔或資料夾（如 ChLaw.json）")],
        kb: KbOpt = DEFAULT_KB,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不顯示進度")] = False,
    ) -> None:
        """匯入法規：章節、條號（第 30-1 條）、修正日期與廢止狀態；廢止的法規預設不列入問答。"""
        from zhiku.sources.twlaw import import_laws

        missing = [p for p in paths if not p.exists()]
        with engine(home) as zk, progress(None, "匯入法規", quiet or as_json) as (step, _page):
            report = import_laws(zk, [p for p in paths if p.exists()], kb, on_law=step)
        from zhiku.ingest import missing_file

        report.files.extend(missing_file(p) for p in missing)
        raise typer.Exit(summary(report, as_json))

    @app.command()
    def watch(
        path: Annotated[Path, typer.Argument(help="要持續同步的資料夾（可為掛載的網路磁碟）")],
        kb: KbOpt = DEFAULT_KB,
        home: HomeOpt = None,
        meta: MetaOpt = None,
        debounce: Annotated[
            float, typer.Option("--debounce", min=0.0, help="檔案最後一次變動後等待幾秒再匯入")
        ] = 2.0,
        poll: Annotated[
            bool,
            typer.Option("--poll", help="以輪詢偵測變動（SMB/NFS 網路磁碟收不到變動通知時使用）"),
        ] = False,
        rescan: Annotated[
            float | None,
            typer.Option("--rescan", min=1.0, help="每隔幾秒完整比對一次資料夾（保險）"),
        ] = None,
    ) -> None:
        """持續同步資料夾：新增、修改、改名、刪除都會反映到知識庫；啟動時先完整比對。"""
        from zhiku.sources.watch import Watcher

        if not path.is_dir():
            err.print(f"[red]錯誤：[/red]{esc(str(path))} 不是資料夾")
            raise typer.Exit(2)
        with engine(home) as zk:
            extra = parse_meta_args(meta or [])

            def show(res: FileResult) -> None:
                if res.status == "unchanged":
                    return
                color = "red" if res.status == "failed" else "green"
                why = f"：{res.message}" if res.message else ""
                err.print(
                    f"[{color}]{_STATUS.get(res.status, res.status)}[/{color}] "
                    f"{esc(res.path)}{esc(why)}"
                )

            def reconciled(report: IngestReport) -> None:
                counts = {s: report.count(s) for s in ("added", "updated", "removed", "failed")}
                done = "、".join(f"{_STATUS[s]} {n}" for s, n in counts.items())
                err.print(f"完整比對完成：{done}；開始監看變動（Ctrl-C 結束）")

            w = Watcher(
                zk,
                kb,
                path,
                meta=extra,
                debounce_s=debounce,
                poll=poll,
                rescan_s=rescan,
                on_file=show,
                on_reconciled=reconciled,
            )
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: w.stop())
            t = threading.Thread(target=w.run, name="zhiku-watch")
            t.start()
            while t.is_alive():
                t.join(0.5)
            if w.error is not None:
                raise w.error  # the engine context turns it into a message and exit code
        err.print("已停止監看")

    @app.command()
    def crawl(
        url: Annotated[str, typer.Argument(help="起始網址（http:// 或 https://）")],
        kb: KbOpt = DEFAULT_KB,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
        max_pages: Annotated[int, typer.Option("--max-pages", min=1, help="最多頁數")] = 200,
        max_depth: Annotated[int, typer.Option("--max-depth", min=0, help="最多連結層數")] = 5,
        max_mb: Annotated[float, typer.Option("--max-mb", min=0.01, help="單頁上限（MB）")] = 10.0,
        allow_host: Annotated[
            list[str] | None,
            typer.Option("--allow-host", help="也可抓取的其他主機（預設只抓起始網址的主機）"),
        ] = None,
        allow_ip: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-ip",
                help="明確允許的位址或網段（預設拒絕本機、link-local、雲端中繼資料位址）",
            ),
        ] = None,
        delay: Annotated[float, typer.Option("--delay", min=0.0, help="每頁間隔秒數")] = 0.0,
        ca_file: Annotated[Path | None, typer.Option("--ca-file", help=CA_FILE_HELP)] = None,
        no_sitemap: Annotated[bool, typer.Option("--no-sitemap", help="不讀 sitemap.xml")] = False,
        meta: MetaOpt = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不顯示進度")] = False,
    ) -> None:
        """抓取網站（同主機、遵守 robots.txt、讀 sitemap.xml、以 ETag 增量更新）。"""
        from zhiku.sources.web import Crawler, CrawlSettings

        with engine(home) as zk:
            settings = CrawlSettings(
                max_pages=max_pages,
                max_depth=max_depth,
                max_page_bytes=int(max_mb * 1e6),
                allow_hosts=tuple(allow_host or ()),
                allow_ips=tuple(allow_ip or ()),
                delay_s=delay,
                use_sitemap=not no_sitemap,
                meta=parse_meta_args(meta or []),
                ca_file=str(ca_file) if ca_file else None,
            )
            with progress(max_pages, "抓取中", quiet or as_json) as (step, _page):
                report = Crawler(zk, kb, url, settings, on_page=step).run()
        raise typer.Exit(summary(report, as_json))

    _install_source_commands(app)


def _install_source_commands(app: typer.Typer) -> None:
    from zhiku.sources import registry

    src_app = typer.Typer(
        help="管理由伺服器依排程同步的來源（資料夾、網站）。", no_args_is_help=True
    )
    app.add_typer(src_app, name="source")

    @src_app.command("add")
    def source_add(
        name: Annotated[str, typer.Argument(help="來源名稱")],
        target: Annotated[str, typer.Argument(help="資料夾路徑或網站起始網址")],
        kb: KbOpt = DEFAULT_KB,
        every: Annotated[
            str, typer.Option("--every", help="同步間隔，如 30m、6h、1d；manual 表示只手動")
        ] = "1d",
        meta: MetaOpt = None,
        allow_ip: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-ip",
                help="明確允許的位址或網段（預設拒絕本機、link-local、雲端中繼資料位址）",
            ),
        ] = None,
        allow_host: Annotated[
            list[str] | None,
            typer.Option("--allow-host", help="也可抓取的其他主機（預設只抓起始網址的主機）"),
        ] = None,
        max_pages: Annotated[
            int | None, typer.Option("--max-pages", min=1, help="最多頁數")
        ] = None,
        ca_file: Annotated[Path | None, typer.Option("--ca-file", help=CA_FILE_HELP)] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """登記來源：伺服器的工作執行緒會依排程同步，並記錄最近一次的結果。"""
        with engine(home) as zk:
            settings: dict[str, Any] = {"meta": parse_meta_args(meta or [])}
            if allow_ip:
                settings["allow_ips"] = allow_ip
            if allow_host:
                settings["allow_hosts"] = allow_host
            if max_pages:
                settings["max_pages"] = max_pages
            if ca_file:  # kept as an absolute path: the server reads it, not this shell
                settings["ca_file"] = str(ca_file.expanduser().resolve())
            src = registry.add_source(zk, kb, name, target, every=every, settings=settings)
        if as_json:
            print_json(src)
        else:
            err.print(f"已登記來源「{esc(name)}」（{src['kind']}，{src['every'] or '手動'}）")

    @src_app.command("list")
    def source_list(
        kb: Annotated[str | None, typer.Option("--kb", help="只看這個知識庫")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """列出來源與最近一次同步的結果。"""
        with engine(home) as zk:
            items = registry.list_sources(zk.store, kb)
        if as_json:
            print_json({"sources": items})
            return
        t = Table(title="來源")
        for col in ("知識庫", "名稱", "類型", "目標", "間隔", "上次", "狀態", "結果"):
            t.add_column(col)
        for s in items:
            c = s["last_counts"]
            t.add_row(
                esc(s["kb"]),
                esc(s["name"]),
                s["kind"],
                esc(s["target"]),
                s["every"] or "manual",
                s["last_finished_at"] or "—",
                s["last_status"] or "—",
                " ".join(f"{k}={v}" for k, v in c.items() if v),
            )
        out.print(t)

    @src_app.command("run")
    def source_run(
        name: SourceName, kb: KbOpt = DEFAULT_KB, home: HomeOpt = None, as_json: JsonOpt = False
    ) -> None:
        """立即同步一個來源（在這個行程內執行）。"""
        with engine(home) as zk:
            src = registry.get_source(zk.store, kb, name)
            result = registry.run_source(zk, src["id"])
        if as_json:
            print_json(result)
        else:
            err.print(
                f"同步完成：{result['last_status']} "
                + " ".join(f"{k}={v}" for k, v in result["last_counts"].items() if v)
            )
            for e in result["last_errors"][:20]:
                err.print(f"[red]失敗[/red] {esc(e['path'])}：{esc(e.get('message') or '')}")
        raise typer.Exit(0 if result["last_status"] == "ok" else 1)

    @src_app.command("rm")
    def source_rm(name: SourceName, kb: KbOpt = DEFAULT_KB, home: HomeOpt = None) -> None:
        """取消登記來源（已匯入的文件保留）。"""
        with engine(home) as zk:
            registry.delete_source(zk.store, kb, name)
        err.print(f"已移除來源「{esc(name)}」")
