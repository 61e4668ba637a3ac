"""``zhiku serve``, ``zhiku users``, ``zhiku keys`` and ``zhiku audit``.

Only ``serve`` needs the server extra (FastAPI, uvicorn); accounts and the audit log are
plain SQLite, so they can be managed on a machine that only has the core package.

Exit codes: 0 success; 2 bad input; 3 user, key or knowledge base not found.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from zhiku.cli_common import HomeOpt, JsonOpt, engine, err, fail, out
from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.server import accounts, audit
from zhiku.store import Store

KbsOpt = Annotated[list[str] | None, typer.Option("--kb", help="知識庫名稱（可重複指定）")]
RoleOpt = Annotated[str, typer.Option("--role", help="admin、editor 或 reader")]

users_app = typer.Typer(help="管理使用者、角色與知識庫授權。", no_args_is_help=True)
keys_app = typer.Typer(help="管理 API 金鑰（雜湊保存，只顯示一次）。", no_args_is_help=True)


@contextmanager
def _store(home: str | None) -> Iterator[Store]:
    """The engine's store, errors → message and exit code (see zhiku.cli_common)."""
    with engine(home) as zk:
        yield zk.store


def _ensure_kbs(store: Store, home: str | None, kbs: list[str]) -> None:
    """Create missing KBs with the engine's defaults (the privacy-by-default PII policy)."""
    for k in kbs:
        if store.find_kb(k) is None:
            store.ensure_kb(k, Zhiku.default_kb_settings())
            err.print(f"已建立知識庫「{escape(k)}」")


CLI = audit.Actor(user=None, key="cli")


def _user_row(u: accounts.User) -> list[str]:
    return [
        u.name,
        u.role,
        "、".join(u.kbs) if u.role != "admin" else "（全部）",
        "停用" if u.disabled else "啟用",
        u.created_at,
    ]


# --- users ------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    role: RoleOpt = "reader",
    kb: KbsOpt = None,
    home: HomeOpt = None,
    password: Annotated[
        bool,
        typer.Option("--password", help="同時設定登入密碼（詢問兩次；見 docs/admins/signin.md）"),
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="同時設定登入密碼，從標準輸入讀取（給腳本用）")
    ] = False,
) -> None:
    """建立使用者（第一位管理員：zhiku users create admin --role admin --password）。"""
    secret = _new_password(password, password_stdin)
    with _store(home) as store:
        _ensure_kbs(store, home, kb or [])
        with store.tx(immediate=True):
            user = accounts.create_user(store, name, role, kb or [])
            if secret is not None:
                _set_password(store, user.name, secret)
            audit.record(
                store,
                CLI,
                "user_create",
                target=user.name,
                detail={"role": user.role, "kbs": user.kbs, "password": secret is not None},
            )
    err.print(
        f"已建立使用者「{user.name}」（{user.role}）；建立金鑰：zhiku keys create --user "
        f"{user.name}"
    )


def _new_password(prompt: bool, from_stdin: bool) -> str | None:
    """The password to set (checked before anything is created), or ``None``."""
    if not (prompt or from_stdin):
        return None
    from zhiku.config import lang
    from zhiku.server.errors import message_for
    from zhiku.server.signin.config import AuthSettings

    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("密碼", hide_input=True, confirmation_prompt=True)
    least = AuthSettings.from_env().password_min_length
    if not least <= len(secret) <= 1024:
        code = "password_too_short" if len(secret) < least else "password_too_long"
        err.print(
            "[red]錯誤：[/red]"
            + escape(
                message_for(
                    code,
                    "en" if lang() == "en" else "zh",
                    limit=least if len(secret) < least else 1024,
                )
            )
        )
        raise typer.Exit(2)
    return secret


def _set_password(store: Store, name: str, secret: str) -> None:
    from zhiku.server.signin.config import AuthSettings
    from zhiku.server.signin.core import set_password

    set_password(store, name, secret, AuthSettings.from_env())


@users_app.command("list")
def users_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """列出使用者、角色與授權的知識庫。"""
    with _store(home) as store:
        users = accounts.list_users(store)
    if as_json:
        sys.stdout.write(
            json.dumps({"users": [u.to_dict() for u in users]}, ensure_ascii=False) + "\n"
        )
        return
    t = Table(title=f"使用者（{len(users)}）")
    for col in ("名稱", "角色", "知識庫", "狀態", "建立時間"):
        t.add_column(col)
    for u in users:
        t.add_row(*_user_row(u))
    out.print(t)


@users_app.command("grant")
def users_grant(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    kb: KbsOpt = None,
    home: HomeOpt = None,
) -> None:
    """授權使用者使用知識庫（不存在的知識庫會先建立）。"""
    if not kb:
        err.print("[red]錯誤：[/red]請以 --kb 指定至少一個知識庫")
        raise typer.Exit(2)
    with _store(home) as store:
        _ensure_kbs(store, home, kb)
        user = accounts.grant(store, name, kb)
        audit.record(store, CLI, "grant", target=user.name, detail={"kbs": kb})
    err.print(f"「{user.name}」可使用：{'、'.join(user.kbs)}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    kb: KbsOpt = None,
    home: HomeOpt = None,
) -> None:
    """取消使用者對知識庫的授權。"""
    if not kb:
        err.print("[red]錯誤：[/red]請以 --kb 指定至少一個知識庫")
        raise typer.Exit(2)
    with _store(home) as store:
        user = accounts.revoke(store, name, kb)
        audit.record(store, CLI, "revoke", target=user.name, detail={"kbs": kb})
    err.print(f"「{user.name}」可使用：{'、'.join(user.kbs) or '（無）'}")


@users_app.command("set-role")
def users_set_role(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    role: Annotated[str, typer.Argument(help="admin、editor 或 reader")],
    home: HomeOpt = None,
) -> None:
    """變更使用者角色。"""
    with _store(home) as store:
        user = accounts.set_role(store, name, role)
        audit.record(store, CLI, "user_update", target=user.name, detail={"role": role})
    err.print(f"「{user.name}」的角色為 {user.role}")


def _set_disabled(home: str | None, name: str, disabled: bool) -> None:
    with _store(home) as store:
        user = accounts.set_disabled(store, name, disabled)
        audit.record(store, CLI, "user_update", target=user.name, detail={"disabled": disabled})
    err.print(f"已{'停用' if disabled else '啟用'}「{user.name}」")


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    home: HomeOpt = None,
) -> None:
    """停用使用者（其所有金鑰立即失效）。"""
    _set_disabled(home, name, True)


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    home: HomeOpt = None,
) -> None:
    """重新啟用使用者。"""
    _set_disabled(home, name, False)


@users_app.command("delete")
def users_delete(
    name: Annotated[str, typer.Argument(help="使用者名稱")],
    home: HomeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="不詢問直接刪除")] = False,
) -> None:
    """刪除使用者與其金鑰、對話（稽核紀錄保留）。"""
    if not yes:
        typer.confirm(f"確定刪除使用者「{name}」？", abort=True)
    with _store(home) as store:
        user = accounts.delete_user(store, name)
        audit.record(store, CLI, "user_delete", target=user.name)
    err.print(f"已刪除使用者「{user.name}」")


# --- keys -------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    user: Annotated[str | None, typer.Option("--user", help="金鑰所屬的使用者")] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="沒有 --user 時：為這把金鑰建立服務帳號的角色")
    ] = None,
    kb: KbsOpt = None,
    name: Annotated[str, typer.Option("--name", help="標籤，如 erp、n8n")] = "",
    home: HomeOpt = None,
) -> None:
    """建立 API 金鑰；stdout 只輸出金鑰本身（只顯示這一次）。

    \b
    zhiku keys create --user alice
    zhiku keys create --role reader --kb hr --name erp   # 建立服務帳號與金鑰
    """
    with _store(home) as store:
        if user is not None and accounts.user_exists(store, user):
            if role is not None or kb:
                err.print(
                    f"[red]錯誤：[/red]使用者「{user}」已存在；請用 zhiku users set-role / "
                    "grant 變更其角色與授權"
                )
                raise typer.Exit(2)
            owner = user
        else:
            if role is None:
                err.print("[red]錯誤：[/red]請指定 --user（既有使用者）或 --role（建立服務帳號）")
                raise typer.Exit(2)
            _ensure_kbs(store, home, kb or [])
            owner = user or f"svc-{name or 'key'}-{os.urandom(3).hex()}"
            created = accounts.create_user(store, owner, role, kb or [])
            audit.record(
                store,
                CLI,
                "user_create",
                target=created.name,
                detail={"role": created.role, "kbs": created.kbs},
            )
            err.print(f"已建立帳號「{created.name}」（{created.role}）")
        raw, key = accounts.create_key(store, owner, name)
        audit.record(
            store, CLI, "key_create", target=key.prefix, detail={"user": key.user, "name": key.name}
        )
    err.print(f"金鑰 {key.prefix} 屬於「{key.user}」；請立即保存，之後無法再次顯示。")
    sys.stdout.write(raw + "\n")


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="只列出這位使用者的金鑰")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """列出金鑰（前綴、使用者、最後使用時間；不含金鑰本身）。"""
    with _store(home) as store:
        keys = accounts.list_keys(store, user)
    if as_json:
        sys.stdout.write(
            json.dumps({"keys": [k.to_dict() for k in keys]}, ensure_ascii=False) + "\n"
        )
        return
    t = Table(title=f"API 金鑰（{len(keys)}）")
    for col in ("前綴", "使用者", "標籤", "建立時間", "最後使用", "狀態"):
        t.add_column(col)
    for k in keys:
        t.add_row(
            k.prefix,
            k.user,
            k.name,
            k.created_at,
            k.last_used_at or "—",
            "已撤銷" if k.revoked_at else "有效",
        )
    out.print(t)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="金鑰前綴（keys list 所列）")],
    home: HomeOpt = None,
) -> None:
    """撤銷金鑰（立即失效）。"""
    with _store(home) as store:
        key = accounts.revoke_key(store, prefix)
        audit.record(store, CLI, "key_revoke", target=key.prefix, detail={"user": key.user})
    err.print(f"已撤銷金鑰 {key.prefix}（{key.user}）")


# --- audit ------------------------------------------------------------------------------


def audit_cmd(
    what: Annotated[
        str | None,
        typer.Argument(help="access：個資段落的存取紀錄（誰看了哪些含個資的段落，僅遮罩值）"),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="起始時間（ISO 8601，如 2025-01-01）")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="結束時間（不含）")] = None,
    user: Annotated[str | None, typer.Option("--user", help="只看這位使用者")] = None,
    kb: Annotated[str | None, typer.Option("--kb", help="只看這個知識庫")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="ask、chat、search、upload、document_delete…")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl（預設）或 csv")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="寫入檔案（預設 stdout）")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """匯出稽核紀錄：誰問了什麼（依個資政策遮罩）、引用了哪些文件、誰上傳或刪除了什麼。"""
    if what is not None:
        if what != "access":
            err.print(f"[red]錯誤：[/red]未知的紀錄「{escape(what)}」（可用：access）")
            raise typer.Exit(2)
        from zhiku.cli_access import audit_access

        audit_access(since, user, output, home)
        return
    if fmt not in ("jsonl", "csv"):
        err.print("[red]錯誤：[/red]--format 必須是 jsonl 或 csv")
        raise typer.Exit(2)
    with _store(home) as store:
        rows = audit.query(store, since=since, until=until, user=user, kb=kb, action=action)
        if output is None:
            n = audit.write(rows, fmt, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                n = audit.write(rows, fmt, fh)
    err.print(f"已匯出 {n} 筆稽核紀錄" + (f"至 {output}" if output else ""))


# --- serve ------------------------------------------------------------------------------


def serve(
    host: Annotated[
        str, typer.Option("--host", help="監聽位址（對內網開放：0.0.0.0）")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="連接埠")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="工作行程數（共用同一資料庫）")
    ] = 1,
    max_upload_mb: Annotated[
        float | None, typer.Option("--max-upload-mb", help="單檔上傳上限（MB，預設 50）")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option("--rate-limit", help="每把金鑰每分鐘請求上限（0 為不限，預設 600）"),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug、info、warning")] = "info",
    home: HomeOpt = None,
) -> None:
    """啟動伺服器：網頁介面、REST API（/api/v1）與 OpenAI 相容 API（/v1）。"""
    try:
        import uvicorn

        from zhiku.server.app import serve_database
        from zhiku.server.observability import log_config
        from zhiku.server.settings import ServerSettings
    except ImportError as exc:
        err.print(
            f"[red]錯誤：[/red]伺服器需要額外套件（{exc.name}）：pip install 'zhiku\\[server]'"
        )
        raise typer.Exit(2) from exc
    try:
        settings = ServerSettings.from_env(
            home=home, max_upload_mb=max_upload_mb, rate_limit=rate_limit
        )
        serve_database(settings.home)
    except ZhikuError as exc:
        raise fail(exc) from exc
    os.environ.update(settings.to_env())  # worker processes read the same settings
    with _store(str(settings.home)) as store:
        if accounts.count_admins(store) == 0:
            err.print(
                "[yellow]尚無管理員。[/yellow]請先執行：zhiku users create admin --role admin"
                " 與 zhiku keys create --user admin"
            )
    err.print(f"知庫 zhiku 伺服器：http://{host}:{port}/　資料目錄 {settings.home}")
    uvicorn.run(
        "zhiku.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(log_level),
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        http="zhiku.server.protocol:NoDelayH11Protocol",
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise.
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies.strip() or None,
    )


def register(app: typer.Typer) -> None:
    """Mount the server commands on the main ``zhiku`` app."""
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("audit")(audit_cmd)
