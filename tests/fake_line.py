"""A local HTTP server that speaks the part of LINE's Messaging API zhiku uses: reply,
push, loading animation and profile. It records every call; reply tokens listed in
``expired`` are refused as LINE refuses a stale token (400 "Invalid reply token")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    auth: str
    at: float


@dataclass
class FakeLine:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, suffix: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path.endswith(suffix)]

    def messages(self) -> list[Call]:
        with self.lock:
            return [
                c for c in self.calls if c.path in ("/v2/bot/message/reply", "/v2/bot/message/push")
            ]

    def wait(self, n: int, timeout: float = 60.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {n} LINE messages, got {len(self.messages())}")


def _handler(fake: FakeLine) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            with fake.lock:
                fake.calls.append(
                    Call(self.path, {}, self.headers.get("Authorization", ""), time.monotonic())
                )
            if self.path.startswith("/v2/bot/profile/"):
                uid = self.path.rsplit("/", 1)[1]
                self._send(200, {"userId": uid, "displayName": "測試用戶", "language": "zh-TW"})
            else:
                self._send(404, {"message": "Not found"})

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._send(401, {"message": "Authentication failed"})
                return
            if self.path == "/v2/bot/message/reply":
                token = body.get("replyToken")
                with fake.lock:
                    bad = token in fake.expired or token in fake.used
                    fake.used.add(token)
                if bad:
                    self._send(400, {"message": "Invalid reply token"})
                    return
            elif self.path not in ("/v2/bot/message/push", "/v2/bot/chat/loading/start"):
                self._send(404, {"message": "Not found"})
                return
            with fake.lock:
                fake.calls.append(
                    Call(self.path, body, self.headers.get("Authorization", ""), time.monotonic())
                )
            self._send(
                202 if self.path.endswith("loading/start") else 200,
                {} if "loading" in self.path else {"sentMessages": [{"id": "1"}]},
            )

    return H


@contextmanager
def fake_line_server() -> Iterator[FakeLine]:
    fake = FakeLine()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def signed(secret: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """A webhook body and its X-Line-Signature, as LINE computes it."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return body, sig


def text_event(
    event_id: str, user: str, text: str, reply_token: str, redelivery: bool = False
) -> dict[str, Any]:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": redelivery},
        "replyToken": reply_token,
        "message": {
            "id": event_id[-8:],
            "type": "text",
            "quoteToken": "q" + event_id,
            "text": text,
        },
    }


def sticker_event(event_id: str, user: str, reply_token: str) -> dict[str, Any]:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": reply_token,
        "message": {
            "id": "s" + event_id[-6:],
            "type": "sticker",
            "packageId": "446",
            "stickerId": "1988",
            "stickerResourceType": "STATIC",
            "quoteToken": "q" + event_id,
        },
    }
