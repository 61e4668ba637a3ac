"""``zhiku line`` (LINE channels), ``zhiku widget`` (website widget keys) and
``zhiku webhooks`` (targets, delivery log).

Exit codes: 0 success; 2 bad input (name, KB list, a refused webhook address);
3 channel, target or delivery not found.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from zhiku.channels import EVENTS
from zhiku.cli_common import HomeOpt, JsonOpt, engine, err, out
from zhiku.server import audit
from zhiku.storage.channels import SqlChannels

line_app = typer.Typer(help="管理 LINE 頻道（每個頻道對應自己的知識庫）。", no_args_is_help=True)
widget_app = typer.Typer(help="管理網站聊天小工具的公開金鑰。", no_args_is_help=True)
hooks_app = typer.Typer(help="管理對外 webhook 與傳送紀錄。", no_args_is_help=True)
CLI = audit.Actor(user=None, key="cli")
KbsOpt = Annotated[list[str], typer.Option("--kb", help="知識庫名稱（可重複指定）")]


def _dump(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


@line_app.command("add")
def line_add(
    name: Annotated[str, typer.Argument(help="頻道名稱（webhook 網址 /line/NAME/webhook）")],
    secret: Annotated[str, typer.Option("--secret", help="LINE 頻道密鑰（channel secret）")],
    token: Annotated[
        str, typer.Option("--token", help="LINE 頻道存取權杖（channel access token）")
    ],
    kb: KbsOpt,
    home: HomeOpt = None,
) -> None:
    """登記 LINE 頻道：secret、access token 與回答用的知識庫。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        ch = registry.add_line_channel(zk.store, name, secret, token, kb)
        audit.record(zk.store, CLI, "line_channel_add", target=name, detail={"kbs": kb})
    err.print(
        f"已登記 LINE 頻道「{name}」；Webhook URL：https://<伺服器>{ch.to_dict()['webhook_path']}"
    )


@line_app.command("list")
def line_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出 LINE 頻道（不顯示 secret 與 token）。"""
    with engine(home) as zk:
        repo = SqlChannels(zk.store.database)
        rows = [
            {**c.to_dict(), "events": repo.line_event_counts(c.id)} for c in repo.line_channels()
        ]
    if as_json:
        _dump({"channels": rows})
        return
    t = Table(title=f"LINE 頻道（{len(rows)}）")
    for col in ("名稱", "知識庫", "Webhook 路徑", "事件", "建立時間"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["name"],
            "、".join(r["kbs"]),
            r["webhook_path"],
            " ".join(f"{k}={v}" for k, v in r["events"].items()),
            r["created_at"],
        )
    out.print(t)


@line_app.command("remove")
def line_remove(
    name: Annotated[str, typer.Argument(help="頻道名稱")], home: HomeOpt = None
) -> None:
    """移除 LINE 頻道（連同它的對話）。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        registry.remove_line_channel(zk.store, name)
        audit.record(zk.store, CLI, "line_channel_remove", target=name)
    err.print(f"已移除 LINE 頻道「{name}」")


@widget_app.command("add")
def widget_add(
    name: Annotated[str, typer.Argument(help="名稱")],
    kb: KbsOpt,
    origin: Annotated[
        list[str],
        typer.Option("--origin", help="允許嵌入的網站來源，如 https://www.example.com（可重複）"),
    ],
    rate: Annotated[float, typer.Option("--rate", help="每分鐘提問上限（整把金鑰）")] = 30.0,
    burst: Annotated[int, typer.Option("--burst", help="瞬間上限")] = 10,
    home: HomeOpt = None,
) -> None:
    """建立網站小工具的公開金鑰，並印出要貼到網站上的 script 標籤。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        w = registry.add_widget_key(zk.store, name, kb, origin, rate, burst)
        audit.record(
            zk.store, CLI, "widget_add", target=name, detail={"kbs": kb, "origins": origin}
        )
    err.print(f"已建立網站小工具「{name}」；請在網站加上：")
    sys.stdout.write(
        f'<script src="https://<伺服器>/widget.js" data-key="{w.public_key}" async></script>\n'
    )


@widget_app.command("list")
def widget_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出網站小工具金鑰。"""
    with engine(home) as zk:
        rows = [w.to_dict() for w in SqlChannels(zk.store.database).widget_keys()]
    if as_json:
        _dump({"widgets": rows})
        return
    t = Table(title=f"網站小工具（{len(rows)}）")
    for col in ("名稱", "金鑰", "知識庫", "允許來源", "每分鐘"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["name"], r["key"], "、".join(r["kbs"]), " ".join(r["origins"]), f"{r['rate_limit']:g}"
        )
    out.print(t)


@widget_app.command("remove")
def widget_remove(name: Annotated[str, typer.Argument(help="名稱")], home: HomeOpt = None) -> None:
    """移除網站小工具金鑰（連同它的對話）。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        registry.remove_widget_key(zk.store, name)
        audit.record(zk.store, CLI, "widget_remove", target=name)
    err.print(f"已移除網站小工具「{name}」")


@hooks_app.command("add")
def hooks_add(
    name: Annotated[str, typer.Argument(help="名稱")],
    url: Annotated[str, typer.Argument(help="接收端網址（http/https）")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help=f"事件（可重複；預設全部）：{', '.join(EVENTS)}"),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """新增 webhook 接收端；簽章金鑰只顯示這一次。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        t, secret = registry.add_webhook(zk.store, name, url, event or [])
        audit.record(zk.store, CLI, "webhook_add", target=name, detail={"events": event or []})
    err.print(f"已新增 webhook「{t.name}」；簽章金鑰（X-Zhiku-Signature）：")
    sys.stdout.write(secret + "\n")


@hooks_app.command("list")
def hooks_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出 webhook 接收端。"""
    with engine(home) as zk:
        rows = [t.to_dict() for t in SqlChannels(zk.store.database).targets()]
    if as_json:
        _dump({"webhooks": rows})
        return
    t = Table(title=f"Webhook（{len(rows)}）")
    for col in ("名稱", "網址", "事件"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["url"], "、".join(r["events"]) or "（全部）")
    out.print(t)


@hooks_app.command("remove")
def hooks_remove(name: Annotated[str, typer.Argument(help="名稱")], home: HomeOpt = None) -> None:
    """移除 webhook 接收端與其傳送紀錄。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        registry.remove_webhook(zk.store, name)
        audit.record(zk.store, CLI, "webhook_remove", target=name)
    err.print(f"已移除 webhook「{name}」")


@hooks_app.command("deliveries")
def hooks_deliveries(
    status: Annotated[
        str | None, typer.Option("--status", help="pending、sending、delivered 或 failed")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="最多列出幾筆")] = 50,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """傳送紀錄（最新的在前）。"""
    with engine(home) as zk:
        rows = [d.to_dict() for d in SqlChannels(zk.store.database).deliveries(status, limit)]
    if as_json:
        _dump({"deliveries": rows})
        return
    t = Table(title=f"傳送紀錄（{len(rows)}）")
    for col in ("ID", "接收端", "事件", "狀態", "次數", "最後結果", "建立時間"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["id"]),
            r["target"],
            r["event"],
            r["status"],
            str(r["attempts"]),
            r["last_error"] or str(r["last_status"] or ""),
            r["created_at"],
        )
    out.print(t)


@hooks_app.command("redeliver")
def hooks_redeliver(
    delivery_id: Annotated[int, typer.Argument(help="傳送紀錄 ID")], home: HomeOpt = None
) -> None:
    """重新傳送一筆（次數歸零；執行中的伺服器會送出）。"""
    from zhiku.channels import registry

    with engine(home) as zk:
        if not SqlChannels(zk.store.database).redeliver(delivery_id, time.time()):
            raise registry.ChannelError(f"找不到可重送的傳送紀錄 {delivery_id}", 404)
        audit.record(zk.store, CLI, "webhook_redeliver", target=str(delivery_id))
    err.print(f"已排入重送：{delivery_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(line_app, name="line")
    app.add_typer(hooks_app, name="webhooks")
    app.add_typer(widget_app, name="widget")
