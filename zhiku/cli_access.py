"""``zhiku access …`` (users' groups and clearance, document labels), ``zhiku pii
subject …`` (個資法 data-subject requests), ``zhiku retention …``, and ``--as USER`` for
``search`` / ``ask`` / ``docs`` (the same scope the server applies to that user)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from zhiku.cli_base import HELP_AS
from zhiku.cli_common import HomeOpt, JsonOpt, KbOpt, engine, err, esc, out, print_json
from zhiku.config import DEFAULT_KB
from zhiku.engine import Zhiku
from zhiku.retention import KINDS as RETENTION_KINDS

AsOpt = Annotated[
    str | None,
    typer.Option("--as", help=HELP_AS),
]
CLI_ACTOR = "cli"

access_app = typer.Typer(
    help="文件存取：使用者的群組與密等、文件的可閱群組與機密等級。", no_args_is_help=True
)
subject_app = typer.Typer(
    help="個資法當事人權利：查找、匯出、刪除某人的個資，與請求期限。", no_args_is_help=True
)
retention_app = typer.Typer(
    help="保存期限：對話、回饋、稽核、存取紀錄與上傳檔。", no_args_is_help=True
)


def _audit(zk: Zhiku, action: str, **kw: Any) -> None:
    from zhiku.server import audit

    with zk.store.tx(immediate=True):
        audit.record(zk.store, audit.Actor(user=None, key=CLI_ACTOR), action, **kw)


# --- access -----------------------------------------------------------------------------


@access_app.command("user")
def access_user(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    groups: Annotated[
        str | None, typer.Option("--groups", help="群組（逗號分隔，取代原有；空字串清除）")
    ] = None,
    level: Annotated[str | None, typer.Option("--level", help="密等：公開、內部、機密、密")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """檢視或設定使用者的群組與密等。"""
    from zhiku.access import caller_scope, set_user_access
    from zhiku.server import accounts

    with engine(home) as zk:
        accounts.get_user(zk.store, name)
        if groups is not None or level is not None:
            glist = None if groups is None else [g for g in groups.split(",") if g.strip()]
            scope = set_user_access(zk.store.database, name, glist, level)
            _audit(zk, "user_access", target=name, detail=scope.to_dict())
        else:
            scope = caller_scope(zk.store.database, name)
    if as_json:
        print_json(scope.to_dict())
        return
    out.print(
        f"{esc(name)}：群組 {esc('、'.join(sorted(scope.groups)) or '（無）')}；"
        f"密等 {esc(scope.to_dict()['clearance_name'])}"
    )


@access_app.command("label")
def access_label(
    path: Annotated[str, typer.Argument(help="文件路徑（如 docs 所列）")],
    groups: Annotated[
        str | None, typer.Option("--groups", help="可閱群組（逗號分隔；空字串：知識庫的所有讀者）")
    ] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="機密等級：公開、內部、機密、密")
    ] = None,
    kb: KbOpt = DEFAULT_KB,
    home: HomeOpt = None,
) -> None:
    """設定文件的存取標籤（下一次查詢即生效，不需重新嵌入）。"""
    if groups is None and level is None:
        err.print("[red]錯誤：[/red]請指定 --groups 或 --level")
        raise typer.Exit(2)
    from zhiku.cli_app import meta_set  # the same path lookup, index sync and exit codes

    items = ([] if groups is None else [f"access_groups={groups}"]) + (
        [] if level is None else [f"access_level={level}"]
    )
    meta_set(path, items, kb, home)  # "access_groups=" (empty) removes the label
    with engine(home) as zk:
        _audit(zk, "document_access", kb=kb, target=path, detail={"labels": items})


@access_app.command("levels")
def access_levels() -> None:
    """列出機密等級（由低到高；ZHIKU_ACCESS_LEVELS 可改）。"""
    from zhiku.access import scale

    for i, name in enumerate(scale()):
        out.print(f"{i}\t{esc(name)}")


def audit_access(
    since: str | None, user: str | None, output: Path | None, home: str | None
) -> None:
    """``zhiku audit access``: the passage access log as JSON lines."""
    from zhiku.storage.access import AccessRepository

    with engine(home) as zk:
        rows = AccessRepository(zk.store.database).access_log(since, user)
    lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows)
    if output is None:
        out.file.write(lines)
    else:
        output.write_text(lines, "utf-8")
    err.print(f"已匯出 {len(rows)} 筆個資存取紀錄" + (f"至 {output}" if output else ""))


# --- pii subject ------------------------------------------------------------------------

KindArg = Annotated[str, typer.Argument(help="id（身分證）、arc（居留證）、phone、email、name")]
ValueArg = Annotated[str, typer.Argument(help="識別值（如 A123456789）")]
RequestOpt = Annotated[int | None, typer.Option("--request", help="所屬請求編號")]


@subject_app.command("find")
def subject_find(
    kind: KindArg,
    value: ValueArg,
    request: RequestOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """列出某人的個資出現的每一處（段落、文件、對話、回饋、稽核、上傳檔），含假名化的。"""
    from zhiku.pii.subject import Subject, SubjectSearch

    with engine(home) as zk:
        s = SubjectSearch(zk.store.database, Subject.parse(kind, value))
        places = s.find()
        _audit(
            zk,
            "subject_find",
            target=s.subject.masked,
            detail={"request": request, "places": len(places)},
        )
    if as_json:
        print_json({"subject": s.subject.masked, "places": [p.to_dict() for p in places]})
        return
    t = Table(title=f"{s.subject.masked}：{len(places)} 處")
    for col in ("位置", "編號", "知識庫", "方式", "次數"):
        t.add_column(col)
    for p in places:
        t.add_row(p.where, esc(p.id), esc(p.kb or ""), "、".join(sorted(p.how)), str(p.count))
    out.print(t)


@subject_app.command("export")
def subject_export(
    kind: KindArg,
    value: ValueArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="輸出檔（.json 或 .zip）")],
    request: RequestOpt = None,
    home: HomeOpt = None,
) -> None:
    """匯出某人的個資（交付當事人的檔案：JSON，或含 JSON 的 ZIP）。"""
    import zipfile

    from zhiku.pii.subject import Subject, SubjectSearch

    with engine(home) as zk:
        s = SubjectSearch(zk.store.database, Subject.parse(kind, value))
        data = s.export()
        _audit(
            zk,
            "subject_export",
            target=s.subject.masked,
            detail={"request": request, "places": len(data["places"])},
        )
    body = json.dumps(data, ensure_ascii=False, indent=2)
    if output.suffix.lower() == ".zip":
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("personal-data.json", body)
    else:
        output.write_text(body, "utf-8")
    err.print(f"已匯出 {len(data['places'])} 處至 {esc(str(output))}")


@subject_app.command("erase")
def subject_erase(
    kind: KindArg,
    value: ValueArg,
    request: RequestOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="確認刪除（不可復原）")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """刪除某人的個資：每一處改為類型標記（不可復原）、重建索引，留下不含個資的刪除紀錄。"""
    from zhiku.pii.subject import Subject, SubjectSearch
    from zhiku.storage.access import AccessRepository

    if not yes:
        err.print("[red]錯誤：[/red]刪除不可復原，請加上 --yes 確認")
        raise typer.Exit(2)
    with engine(home) as zk:
        s = SubjectSearch(zk.store.database, Subject.parse(kind, value))
        counts, files = s.erase(CLI_ACTOR, request)
        if request is not None:
            AccessRepository(zk.store.database).close_request(request, "done", {"erased": counts})
        from zhiku.server.uploads import remove_stored

        for stored in files:
            remove_stored(zk.home, stored)
        for kbo in zk.store.list_kbs():
            zk.sync_index(kbo.name)
        _audit(
            zk,
            "subject_erase",
            target=s.subject.masked,
            detail={"request": request, "erased": counts},
        )
    if as_json:
        print_json({"subject": s.subject.masked, "erased": counts, "files_removed": len(files)})
        return
    err.print(
        f"已刪除 {s.subject.masked} 的個資："
        + ("、".join(f"{k} {v}" for k, v in counts.items()) or "沒有找到")
    )


@subject_app.command("request")
def subject_request(
    type_: Annotated[
        str, typer.Argument(metavar="TYPE", help="access、copy、correct、stop 或 erase")
    ],
    kind: KindArg,
    value: ValueArg,
    received: Annotated[str | None, typer.Option("--received", help="收件日 YYYY-MM-DD")] = None,
    home: HomeOpt = None,
) -> None:
    """登記當事人請求（依第 13 條計算期限：查詢／複製 15 日，更正／停止／刪除 30 日）。"""
    from datetime import date

    from zhiku.pii.subject import Subject, open_request, request_rows

    try:
        day = date.fromisoformat(received) if received else None
    except ValueError:
        err.print(f"[red]錯誤：[/red]收件日「{esc(received or '')}」不是 YYYY-MM-DD")
        raise typer.Exit(2) from None
    with engine(home) as zk:
        subject = Subject.parse(kind, value)
        rid = open_request(zk.store.database, type_, subject, day)
        _audit(zk, "subject_request", target=subject.masked, detail={"id": rid, "type": type_})
        row = next(r for r in request_rows(zk.store.database) if r["id"] == rid)
    out.print(f"請求 #{rid}：{row['kind']} {row['subject']}，期限 {row['due_at']}")


@subject_app.command("requests")
def subject_requests(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出當事人請求與期限（逾期者標示）。"""
    from zhiku.pii.subject import request_rows

    with engine(home) as zk:
        rows = request_rows(zk.store.database)
    if as_json:
        print_json({"requests": rows})
        return
    t = Table(title=f"當事人請求（{len(rows)}）")
    for col in ("編號", "種類", "當事人", "收件", "期限", "狀態"):
        t.add_column(col)
    for r in rows:
        status = "逾期" if r["overdue"] else r["status"]
        t.add_row(str(r["id"]), r["kind"], esc(r["subject"]), r["received_at"], r["due_at"], status)
    out.print(t)


# --- retention --------------------------------------------------------------------------


@retention_app.command("set")
def retention_set(
    what: Annotated[str, typer.Argument(help="、".join(RETENTION_KINDS))],
    days: Annotated[int, typer.Argument(help="保存天數（0 表示移除此期限）")],
    kb: Annotated[str | None, typer.Option("--kb", help="只對這個知識庫（預設：全域）")] = None,
    home: HomeOpt = None,
) -> None:
    """設定保存期限（知識庫的期限優先於全域）。"""
    from zhiku.retention import set_period

    with engine(home) as zk:
        set_period(zk.store.database, what, days or None, kb)
        _audit(zk, "retention_set", kb=kb, detail={"what": what, "days": days or None})
    err.print(f"已設定 {what} 保存期限：{days or '不限'}" + (f"（{kb}）" if kb else "（全域）"))


@retention_app.command("show")
def retention_show(home: HomeOpt = None) -> None:
    """列出保存期限與最近的清除紀錄（JSON）。"""
    from zhiku.retention import periods
    from zhiku.storage.access import AccessRepository

    with engine(home) as zk:
        db = zk.store.database
        print_json({"periods": periods(db), "runs": AccessRepository(db).retention_runs()})


@retention_app.command("run")
def retention_run(home: HomeOpt = None) -> None:
    """立即清除超過保存期限的資料，並記錄清除筆數（JSON）。"""
    from zhiku.retention import run_retention

    with engine(home) as zk:
        result = run_retention(zk.store.database, zk.home, CLI_ACTOR)
        _audit(zk, "retention_run", detail=result)
    print_json(result)


def install(app: typer.Typer, pii_app: typer.Typer) -> None:
    """Mount ``access``, ``retention`` and ``pii subject`` on the main app."""
    app.add_typer(access_app, name="access")
    app.add_typer(retention_app, name="retention")
    pii_app.add_typer(subject_app, name="subject")
