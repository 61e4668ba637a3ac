"""Registering channels and webhook targets (shared by the admin API and the CLI).

A LINE channel or a widget key answers as a *service user* of its own (``line:NAME``,
``widget:NAME``, role reader) granted exactly the channel's KBs: its conversations
belong to that user, and the server's usual access rules keep it to those KBs.
"""

from __future__ import annotations

import re
import secrets

from zhiku.channels.webhooks import EVENTS, TargetPolicy, WebhookError
from zhiku.server import accounts
from zhiku.storage.channels import LineChannel, SqlChannels, WebhookTarget, WidgetKey
from zhiku.store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


class ChannelError(WebhookError):
    """Bad channel input (exit code 2); ``status`` is the HTTP status for the API."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = 3 if status == 404 else 2


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ChannelError(f"名稱「{name}」不合法：請用 1–48 個英數字、- 或 _")
    return name


def _check_kbs(store: Store, kbs: list[str]) -> list[str]:
    if not kbs:
        raise ChannelError("請至少指定一個知識庫")
    for kb in kbs:
        if store.find_kb(kb) is None:
            raise ChannelError(f"找不到知識庫「{kb}」", 404)
    return list(dict.fromkeys(kbs))


def add_line_channel(
    store: Store, name: str, secret: str, token: str, kbs: list[str]
) -> LineChannel:
    _check_name(name)
    if not secret.strip() or not token.strip():
        raise ChannelError("請提供 LINE 的 channel secret 與 channel access token")
    kbs = _check_kbs(store, kbs)
    repo = SqlChannels(store.database)
    if repo.line_channel(name) is not None:
        raise ChannelError(f"LINE 頻道「{name}」已存在", 409)
    with store.database.tx(immediate=True):
        user = accounts.create_user(store, f"line:{name}", "reader", kbs)
        return repo.add_line_channel(name, secret.strip(), token.strip(), kbs, user.id)


def remove_line_channel(store: Store, name: str) -> LineChannel:
    repo = SqlChannels(store.database)
    with store.database.tx(immediate=True):
        ch = repo.delete_line_channel(name)
        if ch is None:
            raise ChannelError(f"找不到 LINE 頻道「{name}」", 404)
        accounts.delete_user(store, ch.user_id)  # its conversations go with it
    return ch


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def add_widget_key(
    store: Store,
    name: str,
    kbs: list[str],
    origins: list[str],
    rate_limit: float = 30.0,
    rate_burst: int = 10,
) -> WidgetKey:
    """A public widget key for ``kbs``, usable from pages of ``origins`` only."""
    _check_name(name)
    kbs = _check_kbs(store, kbs)
    clean = [o.strip().rstrip("/") for o in origins if o.strip()]
    bad = [o for o in clean if not _ORIGIN.match(o)]
    if not clean or bad:
        raise ChannelError(
            "請以 --origin 指定網站來源，如 https://www.example.com"
            + (f"（不合法：{'、'.join(bad)}）" if bad else "")
        )
    if rate_limit <= 0 or rate_burst < 1:
        raise ChannelError("rate_limit 必須大於 0，rate_burst 至少為 1")
    repo = SqlChannels(store.database)
    if any(w.name == name for w in repo.widget_keys()):
        raise ChannelError(f"網站小工具「{name}」已存在", 409)
    with store.database.tx(immediate=True):
        user = accounts.create_user(store, f"widget:{name}", "reader", kbs)
        return repo.add_widget_key(
            name,
            "zkw_" + secrets.token_urlsafe(18),
            kbs,
            list(dict.fromkeys(clean)),
            rate_limit,
            rate_burst,
            user.id,
        )


def remove_widget_key(store: Store, name: str) -> WidgetKey:
    repo = SqlChannels(store.database)
    with store.database.tx(immediate=True):
        w = repo.delete_widget_key(name)
        if w is None:
            raise ChannelError(f"找不到網站小工具「{name}」", 404)
        accounts.delete_user(store, w.user_id)
    return w


def add_webhook(
    store: Store,
    name: str,
    url: str,
    events: list[str],
    secret: str | None = None,
    policy: TargetPolicy | None = None,
) -> tuple[WebhookTarget, str]:
    """Register a target; returns it and its signing secret (generated when not given)."""
    _check_name(name)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ChannelError(f"未知的事件：{'、'.join(unknown)}（可用：{'、'.join(EVENTS)}）")
    (policy or TargetPolicy.from_env()).resolve(url)  # WebhookError names the reason
    repo = SqlChannels(store.database)
    if any(t.name == name for t in repo.targets()):
        raise ChannelError(f"webhook「{name}」已存在", 409)
    secret = secret or "whsec_" + secrets.token_urlsafe(24)
    return repo.add_target(name, url, secret, list(dict.fromkeys(events))), secret


def remove_webhook(store: Store, name: str) -> WebhookTarget:
    t = SqlChannels(store.database).delete_target(name)
    if t is None:
        raise ChannelError(f"找不到 webhook「{name}」", 404)
    return t
