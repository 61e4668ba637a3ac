"""A local OpenAI-compatible server for the tests (127.0.0.1, random port, a thread).

Speaks what zhiku uses: ``POST /v1/chat/completions`` (JSON, or Server-Sent Events with
``stream: true``), ``/v1/embeddings`` and ``/v1/rerank`` (Jina/Cohere shape, or TEI's
bare list). ``FakeOpenAI.fail`` scripts failures per route: ``500`` (every time),
``500-once``, ``401``, ``garbage`` (not JSON), ``bad-shape`` (JSON without the fields),
``slow`` (sleeps past the client's timeout), ``sse-garbage`` (a broken event mid-stream),
``json-for-stream`` (ignores ``stream`` and answers one JSON object).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

ChatReply = Callable[[dict[str, Any]], str]


def hashed_embedding(text: str, dim: int = 32) -> list[float]:
    """A deterministic embedding: character bigrams hashed into ``dim`` buckets."""
    v = np.zeros(dim, dtype=np.float64)
    chars = [c for c in text if not c.isspace()]
    for a, b in zip(chars, chars[1:], strict=False):
        h = int.from_bytes(hashlib.md5((a + b).encode()).digest()[:4], "little")
        v[h % dim] += 1.0
    if not v.any():
        v[0] = 1.0
    return (v / np.linalg.norm(v)).tolist()


def cited_leave_answer(req: dict[str, Any]) -> str:
    """A generated answer citing the source numbered for 《員工請假管理辦法》 in the prompt."""
    n = re.search(r"\[(\d+)\] 《員工請假管理辦法》", req["messages"][-1]["content"])
    return f"特別休假應於休假二日前提出申請[{n.group(1) if n else 9}]。"


class FakeOpenAI:
    def __init__(self, reply: ChatReply | str = "好。", dim: int = 32) -> None:
        self.reply: ChatReply = reply if callable(reply) else (lambda _req, r=reply: r)
        self.dim = dim
        self.fail: dict[str, str] = {}  # route ("chat", "embeddings", "rerank") -> mode
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.rerank_shape = "results"  # or "tei" (needs "texts", answers a bare list)
        self.chunk_size = 2  # characters per streamed delta
        self.slow_seconds = 1.5
        self._once: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                fake.handle(self, body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout tests) is not an error here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, route: str) -> int:
        return sum(1 for r, _ in self.requests if r == route)

    # --- responses ------------------------------------------------------------------

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json"
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
        self._send(h, status, json.dumps(obj, ensure_ascii=False).encode())

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        path = h.path
        route = {
            "/v1/chat/completions": "chat",
            "/v1/embeddings": "embeddings",
            "/v1/rerank": "rerank",
        }.get(path)
        if route is None:
            self._json(h, {"error": {"message": f"no route {path}"}}, 404)
            return
        self.requests.append((route, body))
        mode = self.fail.get(route, "")
        if mode == "500" or (mode == "500-once" and route not in self._once):
            self._once.add(route)
            self._json(h, {"error": {"message": "model is loading"}}, 500)
            return
        if mode == "401":
            self._json(h, {"error": {"message": "invalid api key"}}, 401)
            return
        if mode == "garbage":
            self._send(h, 200, b"<html>proxy error</html>", "application/json")
            return
        if mode == "bad-shape":
            self._json(h, {"unexpected": True})
            return
        if mode == "slow":
            time.sleep(self.slow_seconds)
        if route == "chat":
            self._chat(h, body, mode)
        elif route == "embeddings":
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            data = [
                {"object": "embedding", "index": i, "embedding": hashed_embedding(t, self.dim)}
                for i, t in enumerate(texts)
            ]
            self._json(h, {"object": "list", "data": data[::-1], "model": body.get("model")})
        else:
            if self.rerank_shape == "tei" and "texts" not in body:
                self._json(
                    h,
                    {
                        "error": "Json deserialize error: missing field `texts`",
                        "error_type": "Validation",
                    },
                    422,
                )
                return
            q = body.get("query", "")
            docs = body.get("documents") or body.get("texts") or []
            qv = np.array(hashed_embedding(q, self.dim))
            scores = [float(qv @ np.array(hashed_embedding(d, self.dim))) for d in docs]
            items = sorted(range(len(docs)), key=lambda i: -scores[i])
            if self.rerank_shape == "tei":
                self._json(h, [{"index": i, "score": scores[i]} for i in items])
            else:
                self._json(
                    h, {"results": [{"index": i, "relevance_score": scores[i]} for i in items]}
                )

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any], mode: str) -> None:
        text = self.reply(body)
        if not body.get("stream") or mode == "json-for-stream":
            self._json(
                h,
                {
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                },
            )
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        pieces = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        for n, ev in enumerate(events):
            if mode == "sse-garbage" and n == 2:
                h.wfile.write(b"data: {not json\n\n")
                h.wfile.flush()
                break
            h.wfile.write(f"data: {json.dumps(ev, ensure_ascii=False)}\n\n".encode())
            h.wfile.flush()
        else:
            h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()
        h.close_connection = True


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
