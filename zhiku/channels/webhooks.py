"""Outbound webhooks: events signed with HMAC-SHA256, a persistent retry queue.

:func:`emit` writes one pending delivery per subscribed target into the database (in
the caller's transaction when there is one), so an event is never lost to a restart;
the :class:`Dispatcher` thread of each server process claims due deliveries with a lease
and POSTs them. A failed attempt is retried with exponential backoff (30 s, 1 min,
2 min, … capped at 1 h, with jitter; ``ZHIKU_WEBHOOK_RETRY_S`` sets the
first delay) up to ``MAX_ATTEMPTS``; then the delivery is
``failed`` and an admin can redeliver it.

Each request carries ``X-Zhiku-Event``, ``X-Zhiku-Delivery`` and
``X-Zhiku-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
receivers recompute it and reject old timestamps (see :func:`verify`).

Targets are checked when registered and on every attempt: http(s) only, the host on
the allow-list when one is configured (``ZHIKU_WEBHOOK_HOSTS``), and the address after
DNS never loopback, link-local or a cloud metadata service unless its network is in
``ZHIKU_WEBHOOK_ALLOW_IPS`` (the crawler's :class:`~zhiku.sources.web.AddressPolicy`).
The connection goes to the address that was checked (no second DNS lookup), and
redirects are not followed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from zhiku.channels import EVENTS
from zhiku.errors import ZhikuError
from zhiku.sources.web import AddressPolicy, CrawlError, Refused
from zhiku.storage.channels import Delivery, SqlChannels
from zhiku.storage.db import Database, now_iso

log = logging.getLogger("zhiku.webhooks")

MAX_ATTEMPTS = 8
BASE_DELAY_S = 30.0
MAX_DELAY_S = 3600.0
TIMEOUT_S = 10.0
LEASE_S = 60.0
#: Wakes this process's dispatcher when an event is emitted.
WAKE = threading.Event()


class WebhookError(ZhikuError):
    exit_code = 2


def sign(secret: str, body: bytes, ts: int | None = None) -> str:
    """The ``X-Zhiku-Signature`` value of ``body``."""
    t = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` (receivers)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff(attempts: int, base: float = BASE_DELAY_S) -> float:
    """Seconds before attempt ``attempts + 1``: exponential with ±20 % jitter."""
    delay = min(MAX_DELAY_S, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


# --- targets ------------------------------------------------------------------------


class TargetPolicy:
    """Which URLs webhooks may be sent to (see the module docstring)."""

    def __init__(self, hosts: Iterable[str] = (), allow_ips: Iterable[str] = ()) -> None:
        self.hosts = tuple(h.strip().lower() for h in hosts if h.strip())
        try:
            self.addresses = AddressPolicy.from_strings([i for i in allow_ips if i.strip()])
        except CrawlError as exc:
            raise WebhookError(str(exc)) from exc

    @classmethod
    def from_env(cls) -> TargetPolicy:
        return cls(
            os.environ.get("ZHIKU_WEBHOOK_HOSTS", "").split(","),
            os.environ.get("ZHIKU_WEBHOOK_ALLOW_IPS", "").split(","),
        )

    def check_url(self, url: str) -> httpx.URL:
        """``url`` parsed, or :class:`WebhookError` naming why it is not allowed."""
        try:
            parts = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise WebhookError(f"網址格式錯誤：{url}") from exc
        if parts.scheme not in ("http", "https") or not parts.host:
            raise WebhookError(f"webhook 網址須為 http(s)：{url}")
        host = parts.host.lower()
        if self.hosts and not any(fnmatch.fnmatch(host, pat) for pat in self.hosts):
            raise WebhookError(f"主機 {host} 不在允許清單（ZHIKU_WEBHOOK_HOSTS）中")
        return parts

    def resolve(self, url: str) -> tuple[httpx.URL, str]:
        """The URL and the checked address to connect to."""
        parts = self.check_url(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            return parts, self.addresses.resolve(parts.host, port)
        except Refused as exc:
            raise WebhookError(exc.message) from exc


# --- emitting -----------------------------------------------------------------------


def envelope(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "event": event,
        "created_at": now_iso(),
        "data": payload,
    }


def emit(db: Database, event: str, payload: dict[str, Any]) -> list[int]:
    """Queue ``event`` with ``payload`` for every target subscribed to it.

    ``payload`` must already be fit to leave the server (personal data masked with the
    KB's policy). Runs in the caller's transaction when one is open; returns the new
    delivery ids (none when no target takes the event). Never raises for delivery
    problems: those are the dispatcher's.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    body = envelope(event, payload)
    ids = SqlChannels(db).enqueue(
        event, body["id"], json.dumps(body, ensure_ascii=False), time.time()
    )
    if ids:
        WAKE.set()
    return ids


def citations_brief(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"doc": c.get("doc"), "section": c.get("section"), "page": c.get("page")}
        for c in answer.get("citations") or []
    ]


def emit_answer(
    db: Database,
    kb: str,
    channel: str,
    masked_question: str,
    answer: dict[str, Any],
    answer_id: str | None,
    conversation_id: str | None,
) -> list[int]:
    """``question.answered`` or ``question.refused`` for one answer (the answer text is
    the engine's output, already under the KB's output policy)."""
    refused = bool(answer.get("refused"))
    return emit(
        db,
        "question.refused" if refused else "question.answered",
        {
            "kb": kb,
            "channel": channel,
            "conversation_id": conversation_id,
            "answer_id": answer_id,
            "question": masked_question,
            "answer": answer.get("answer", ""),
            "refused": refused,
            "citations": citations_brief(answer),
        },
    )


# --- delivering ---------------------------------------------------------------------


def deliver_once(
    d: Delivery, policy: TargetPolicy, client: httpx.Client
) -> tuple[int | None, str | None]:
    """POST ``d``: (HTTP status, None) on a 2xx, else (status or None, error)."""
    body = d.payload.encode()
    try:
        parts, ip = policy.resolve(d.url)
    except WebhookError as exc:
        return None, str(exc)
    headers = {
        "Host": parts.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": "zhiku-webhooks",
        "X-Zhiku-Event": d.event,
        "X-Zhiku-Delivery": str(d.id),
        "X-Zhiku-Event-Id": d.event_id,
        "X-Zhiku-Signature": sign(d.secret, body),
    }
    ext = {"sni_hostname": parts.host} if parts.scheme == "https" else {}
    try:
        resp = client.post(parts.copy_with(host=ip), content=body, headers=headers, extensions=ext)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if 200 <= resp.status_code < 300:
        return resp.status_code, None
    return resp.status_code, f"HTTP {resp.status_code}"


def run_due(
    db: Database,
    policy: TargetPolicy,
    client: httpx.Client,
    limit: int = 20,
    retry_s: float = BASE_DELAY_S,
) -> int:
    """Send what is due now; returns how many were attempted."""
    repo = SqlChannels(db)
    due = repo.claim_due(time.time(), LEASE_S, limit)
    for d in due:
        status, error = deliver_once(d, policy, client)
        if error is None:
            repo.delivered(d.id, status or 0)
        else:
            final = d.attempts >= MAX_ATTEMPTS
            repo.retry_later(d.id, time.time() + backoff(d.attempts, retry_s), status, error, final)
            log.warning(
                "webhook delivery failed",
                extra={
                    "delivery": d.id,
                    "target": d.target,
                    "attempt": d.attempts,
                    "error": error,
                    "final": final,
                },
            )
    return len(due)


class Dispatcher:
    """A daemon thread of a server process that delivers due webhooks."""

    def __init__(
        self, connect: Any, policy: TargetPolicy | None = None, poll_s: float = 2.0
    ) -> None:
        self._connect = connect  # () -> Database, opened in the thread
        self.policy = policy or TargetPolicy.from_env()
        self.poll_s = poll_s
        self.retry_s = float(os.environ.get("ZHIKU_WEBHOOK_RETRY_S") or BASE_DELAY_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zhiku-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        WAKE.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        db = self._connect()
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    busy = run_due(db, self.policy, client, retry_s=self.retry_s)
                except Exception:  # noqa: BLE001 - the thread must survive a bad moment
                    log.exception("webhook dispatcher error")
                    busy = 0
                if not busy:
                    wait = self.poll_s
                    try:
                        due = SqlChannels(db).next_due()
                        if due is not None:
                            wait = min(wait, max(0.0, due - time.time()))
                    except Exception:  # noqa: BLE001
                        log.exception("webhook dispatcher error")
                    WAKE.wait(wait)
                    WAKE.clear()
