"""CLI commands of the service loop (docs/admins/service-loop.md): ``zhiku report`` and
``zhiku export sft``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from zhiku.cli_common import HomeOpt, MultiKbOpt, engine, err


def install(app: typer.Typer) -> None:
    """Add ``report`` and ``export`` to the root ``zhiku`` app."""
    export_app = typer.Typer(help="匯出資料集（如微調用的 SFT JSONL）。", no_args_is_help=True)
    app.add_typer(export_app, name="export")

    @app.command()
    def report(
        since: Annotated[str, typer.Option("--since", help="期間起點：7d、24h、2w 或日期")] = "7d",
        fmt: Annotated[str, typer.Option("--format", help="json、csv 或 html")] = "json",
        kb: MultiKbOpt = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="寫入檔案（預設 stdout）")
        ] = None,
        home: HomeOpt = None,
    ) -> None:
        """服務報告：每日對話與提問、回答／拒答／轉真人比率、👍／👎、處理時間、
        尖峰時段、最常與從未被引用的文件、知識缺口。個資一律遮蔽。"""
        from zhiku.loop.report import build, parse_since, to_csv, to_html
        from zhiku.storage.loop import SqlLoopRepository

        if fmt not in ("json", "csv", "html"):
            err.print(f"[red]錯誤：[/red]--format 必須是 json、csv 或 html（收到「{fmt}」）")
            raise typer.Exit(2)
        with engine(home) as zk:
            start = parse_since(since)
            kbs = [zk.kb(n) for n in kb] if kb else zk.store.list_kbs()
            data = build(SqlLoopRepository(zk.store.database), kbs, start)
        text = (
            json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            if fmt == "json"
            else to_csv(data)
            if fmt == "csv"
            else to_html(data)
        )
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, "utf-8")
            t = data["totals"]
            err.print(f"已寫入 {output}：{t['questions']} 個提問、{t['conversations']} 段對話")

    @export_app.command("sft")
    def export_sft(
        kb: Annotated[str, typer.Option("--kb", help="知識庫名稱")],
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="寫入檔案（預設 stdout）")
        ] = None,
        home: HomeOpt = None,
    ) -> None:
        """微調資料集（chat 格式 JSONL）：精選問答與 👍 回答，引用段落作為脈絡，個資遮蔽。"""
        from zhiku.loop.curate import write_sft

        with engine(home) as zk:
            if output is None:
                n = write_sft(zk, kb, sys.stdout)
            else:
                with output.open("w", encoding="utf-8") as fh:
                    n = write_sft(zk, kb, fh)
        err.print(f"已匯出 {n} 筆訓練資料")
