"""``zhiku models …`` (check, show, embed, calibrate) and ``zhiku chat``.

Mounted by :func:`install` from :mod:`zhiku.cli`. Exit codes as the main CLI: 0 success;
1 a backend failed its check (``models check``); 2 bad input or configuration; 3 knowledge
base not found; 5 a model failed where no fallback exists (``models embed``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from zhiku.cli_common import (
    HomeOpt,
    JsonOpt,
    KbOpt,
    MultiKbOpt,
    engine,
    err,
    out,
    pick_kbs,
    print_json,
    print_sources,
    show_warnings,
    stream_answer,
)
from zhiku.config import DEFAULT_KB

models_app = typer.Typer(
    help="模型設定：檢查連線、檢視設定、建立向量、校準混合檢索。", no_args_is_help=True
)


# --- models check / show ---------------------------------------------------------------------


@models_app.command("check")
def models_check(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """呼叫每個已設定的模型一次，逐一說明是否可用。"""
    with engine(home) as zk:
        backends = zk.settings.configured()
        from zhiku.backends.check import check_backend

        results = [check_backend(cfg) for cfg in backends.values()]
    if as_json:
        print_json({"backends": [r.to_dict() for r in results], "ok": all(r.ok for r in results)})
        raise typer.Exit(0 if all(r.ok for r in results) else 1)
    if not results:
        out.print(
            "沒有設定任何模型：檢索使用關鍵字（BM25），回答為摘錄式。"
            "設定方式見 docs/admins/models.md（zhiku.toml 或 ZHIKU_CHAT_URL 等環境變數）。"
        )
        return
    roles = {"chat": "對話", "embed": "嵌入", "rerank": "重排序"}
    out.print("[bold]模型檢查[/bold]")
    for r in results:  # one line each: error messages must not be cut by a table
        status = "[green]正常[/green]" if r.ok else "[red]失敗[/red]"
        name = "" if r.name == "default" else f"（{escape(r.name)}）"
        out.print(
            f"{status} {roles.get(r.role, r.role)}{name} {escape(r.target)}\n"
            f"     {escape(r.detail)}（{r.ms:.0f} ms）"
        )
    failed = [r for r in results if not r.ok]
    if failed:
        err.print(
            f"[red]{len(failed)} 個模型無法使用[/red]；相關功能會自動改用關鍵字檢索與摘錄式回答。"
        )
        raise typer.Exit(1)
    out.print("全部模型皆可使用。")


@models_app.command("show")
def models_show(kb: MultiKbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """顯示各知識庫實際使用的模型、混合檢索權重與向量索引狀態（不顯示 API key）。"""
    with engine(home) as zk:
        names = kb or sorted(
            {k.name for k in zk.store.list_kbs()} | set(zk.settings.kbs) | {DEFAULT_KB}
        )
        rows: list[dict[str, Any]] = []
        for name in names:
            cfg = zk.model_config(name)
            kbo = zk.store.find_kb(name)
            vec = None
            if kbo is not None:
                meta = zk.vectors(kbo).meta()
                if meta is not None:
                    vec = {
                        "model": meta["model"],
                        "dim": meta["dim"],
                        "rows": int(meta["rows"]) - int(meta["dead"]),
                    }
            rows.append(
                {
                    "kb": name,
                    "chat": cfg.chat.describe() if cfg.chat else None,
                    "embed": cfg.embed.describe() if cfg.embed else None,
                    "rerank": cfg.rerank.describe() if cfg.rerank else None,
                    "language": cfg.language,
                    "system_prompt": cfg.system_prompt,
                    "uncited": cfg.uncited,
                    "hybrid": {
                        "rrf_k": cfg.hybrid.rrf_k,
                        "lexical_weight": cfg.hybrid.lexical_weight,
                        "dense_weight": cfg.hybrid.dense_weight,
                        "adaptive": cfg.hybrid.adaptive,
                        "dense_weight_max": cfg.hybrid.dense_weight_max,
                        "evidence_low": cfg.hybrid.evidence_low,
                        "evidence_high": cfg.hybrid.evidence_high,
                        "candidates": cfg.hybrid.candidates,
                        "rerank_top": cfg.hybrid.rerank_top,
                        "dense_rerank": cfg.hybrid.dense_rerank,
                    },
                    "vectors": vec,
                    "exists": kbo is not None,
                }
            )
        source = str(zk.settings.source) if zk.settings.source else None
    if as_json:
        print_json({"config": source, "kbs": rows})
        return
    out.print(f"設定檔：{escape(source) if source else '（無，僅環境變數／預設值）'}")
    for r in rows:
        t = Table(
            title=f"知識庫「{escape(r['kb'])}」" + ("" if r["exists"] else "（尚未建立）"),
            show_header=False,
        )
        t.add_row("對話模型", escape(r["chat"] or "（無：摘錄式回答）"))
        t.add_row("嵌入模型", escape(r["embed"] or "（無：關鍵字檢索）"))
        t.add_row("重排序模型", escape(r["rerank"] or "（無）"))
        h = r["hybrid"]
        dense = f"向量權重 {h['dense_weight']:g}"
        if h["adaptive"] and h["dense_weight_max"] > h["dense_weight"]:
            dense += (
                f"–{h['dense_weight_max']:g}（依查詢：關鍵字證據 {h['evidence_high']:g}"
                f" → {h['evidence_low']:g}）"
            )
        if h["dense_rerank"]:
            dense += f"；向量未齊全時重排關鍵字前 {h['dense_rerank']} 筆"
        t.add_row("混合檢索", f"rrf_k={h['rrf_k']:g}，關鍵字權重 {h['lexical_weight']:g}，{dense}")
        v = r["vectors"]
        t.add_row(
            "向量索引",
            f"{v['rows']} 段 × {v['dim']} 維（{escape(v['model'])}）" if v else "（未建立）",
        )
        t.add_row("回答語言", r["language"])
        t.add_row(
            "未引用時",
            {"extractive": "改用摘錄式回答", "refuse": "拒答", "keep": "保留並標示"}.get(
                r["uncited"], r["uncited"]
            ),
        )
        if r["system_prompt"]:
            t.add_row("語氣設定", escape(r["system_prompt"][:80]))
        out.print(t)


# --- models embed / calibrate -----------------------------------------------------------------


@models_app.command("embed")
def models_embed(
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="捨棄向量索引後重建（仍使用快取）")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """為知識庫的段落建立或補齊向量（未變更的段落不會重算）。"""
    with engine(home) as zk:
        zk.kb(kb)
        if zk.embedder(kb) is None:
            err.print(f"[red]錯誤：[/red]知識庫「{escape(kb)}」沒有設定嵌入模型（embed）")
            raise typer.Exit(2)
        zk.sync_index(kb, keep_writer=True)  # lexical queue first (cheap)
        t0 = time.perf_counter()
        report = zk.sync_vectors(kb, rebuild=rebuild)
        secs = time.perf_counter() - t0
        rows = zk.vectors(kb).live_rows()
    assert report is not None
    info = {
        "kb": kb,
        "added": report.added,
        "deleted": report.deleted,
        "embedded": report.embedded,
        "cached": report.added - report.embedded,
        "rebuilt": report.rebuilt,
        "vectors": rows,
        "seconds": round(secs, 3),
    }
    if as_json:
        print_json(info)
        return
    err.print(
        f"向量索引「{escape(kb)}」：新增 {report.added} 段（模型計算 {report.embedded}，"
        f"快取 {report.added - report.embedded}），移除 {report.deleted} 段，"
        f"共 {rows} 段，耗時 {secs:.1f} 秒"
    )


def _read_questions(path: Path) -> list[tuple[str, str]]:
    out_: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out_.append((str(obj["question"]), str(obj["doc"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(
                f'{path} 第 {n} 行應為 {{"question": …, "doc": 文件路徑或標題}}'
            ) from exc
    return out_


@models_app.command("calibrate")
def models_calibrate(
    kb: KbOpt = DEFAULT_KB,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions", help='JSONL，每行 {"question": 問題, "doc": 應找到的文件路徑或標題}'
        ),
    ] = None,
    auto: Annotated[
        int,
        typer.Option(
            "--auto", help="沒有題目檔時，由知識庫抽取 N 句當作題目（偏向關鍵字，較保守）"
        ),
    ] = 200,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只顯示結果，不寫入設定")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """用知識庫自己的問題校準混合檢索的權重（rrf_k、向量權重），並記錄於知識庫設定。"""
    qs = _read_questions(questions) if questions else None
    with engine(home) as zk:
        zk.kb(kb)
        if qs is None:
            qs = zk.sample_questions(kb, auto)
        res = zk.calibrate_fusion(kb, qs, save=not dry_run)
    info = {
        "kb": kb,
        "questions": res.questions,
        "rrf_k": res.rrf_k,
        "dense_weight": res.dense_weight,
        "hybrid_r_at_1": round(res.r_at_1, 4),
        "lexical_r_at_1": round(res.lexical_r_at_1, 4),
        "dense_r_at_1": round(res.dense_r_at_1, 4),
        "saved": not dry_run,
    }
    if as_json:
        print_json(info)
        return
    t = Table(title=f"混合檢索校準「{escape(kb)}」（{res.questions} 題）", show_header=False)
    t.add_row("關鍵字 R@1", f"{res.lexical_r_at_1:.4f}")
    t.add_row("向量 R@1", f"{res.dense_r_at_1:.4f}")
    t.add_row("混合 R@1", f"{res.r_at_1:.4f}")
    t.add_row("選定參數", f"rrf_k={res.rrf_k:g}，向量權重 {res.dense_weight:g}")
    out.print(t)
    err.print(
        "（僅試算，未寫入）" if dry_run else "已寫入知識庫設定；zhiku.toml 中明定的值仍優先。"
    )


# --- chat ------------------------------------------------------------------------------------


def chat(
    kb: MultiKbOpt = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=50, help="參考的段落數")] = 5,
    home: HomeOpt = None,
) -> None:
    """多輪對話：追問會結合前文改寫成完整問題再檢索。/new 開新對話，/exit 或 Ctrl-D 離開。"""
    with engine(home) as zk:
        names = pick_kbs(zk, kb)
        for name in names:
            zk.kb(name)
        chat_model = zk.model_config(names[0]).chat
        mode = (
            "對話模型：" + chat_model.describe() if chat_model else "未設定對話模型，使用摘錄式回答"
        )
        err.print(f"知庫對話（{escape(mode)}）。輸入問題後按 Enter；/new 開新對話，/exit 離開。")
        history: list[dict[str, str]] = []
        while True:
            err.print("[bold]你：[/bold]", end="")
            line = sys.stdin.readline()
            if not line:
                break
            q = line.strip()
            if not q:
                continue
            if q in ("/exit", "/quit", "/bye"):
                break
            if q == "/new":
                history.clear()
                err.print("（已開始新的對話）")
                continue
            err.print("[bold]知庫：[/bold]", end="")
            ans = stream_answer(zk, q, names, k, history)
            print_sources(ans)
            show_warnings(ans.warnings)
            history.extend(
                [{"role": "user", "content": q}, {"role": "assistant", "content": ans.text}]
            )


def install(app: typer.Typer) -> None:
    """Mount ``zhiku models …`` and ``zhiku chat`` on the main CLI."""
    app.add_typer(models_app, name="models")
    app.command("chat")(chat)
