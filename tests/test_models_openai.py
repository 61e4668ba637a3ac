"""The OpenAI-compatible clients against a local server that speaks the protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI, free_port, hashed_embedding
from zhiku.backends import BackendConfig, ModelBadResponse, ModelUnavailable, build
from zhiku.backends.openai import OpenAIChat, OpenAIEmbedder, OpenAIReranker


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI(reply="特別休假應於二日前申請[1]。")
    yield s
    s.close()


def cfg(role: str, url: str, **kw: object) -> BackendConfig:
    base: dict[str, object] = {"model": "test-model", "timeout": 2.0, "retries": 2, "backoff": 0.01}
    base.update(kw)
    return BackendConfig(role=role, url=url, **base)  # type: ignore[arg-type]


def test_chat_complete_and_stream(server: FakeOpenAI) -> None:
    chat = build(cfg("chat", server.url, api_key="sk-local"))
    assert isinstance(chat, OpenAIChat)
    msgs = [{"role": "user", "content": "特休？"}]
    assert chat.complete(msgs) == "特別休假應於二日前申請[1]。"
    pieces = list(chat.stream(msgs))
    assert len(pieces) > 3  # really streamed, in small deltas
    assert "".join(pieces) == "特別休假應於二日前申請[1]。"
    route, body = server.requests[-1]
    assert route == "chat" and body["stream"] is True and body["model"] == "test-model"
    assert body["messages"] == msgs


def test_stream_when_server_ignores_stream_flag(server: FakeOpenAI) -> None:
    server.fail["chat"] = "json-for-stream"
    chat = build(cfg("chat", server.url))
    assert "".join(chat.stream([{"role": "user", "content": "x"}])) == "特別休假應於二日前申請[1]。"


def test_embeddings_in_order_normalised_batched(server: FakeOpenAI) -> None:
    emb = build(cfg("embed", server.url, batch_size=2))
    assert isinstance(emb, OpenAIEmbedder)
    texts = ["請假規定", "出貨異常", "密碼規則"]
    m = emb.embed(texts)
    assert m.shape == (3, 32) and m.dtype == np.float32
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    # The server answers in reverse order; the client sorts by index.
    assert np.allclose(m[1], hashed_embedding("出貨異常"), atol=1e-6)
    assert server.count("embeddings") == 2  # batches of 2
    assert emb.model_id == "openai:test-model"


@pytest.mark.parametrize("shape", ["results", "tei"])
def test_rerank_both_response_shapes(server: FakeOpenAI, shape: str) -> None:
    server.rerank_shape = shape
    rr = build(cfg("rerank", server.url))
    assert isinstance(rr, OpenAIReranker)
    passages = ["出貨異常處理流程", "員工請假規定與請假天數", "請假"]
    scores = rr.score("員工請假規定", passages)
    assert len(scores) == 3
    assert scores[1] == max(scores)  # in the passages' order, not the server's
    _, body = server.requests[-1]
    assert body.get("documents", body.get("texts")) == passages
    assert body["query"] == "員工請假規定"
    if shape == "tei":  # the Jina/Cohere shape was refused once, then TEI's was used
        assert server.count("rerank") == 2
        rr.score("請假", ["a"])
        assert server.count("rerank") == 3


def test_500_is_retried_then_succeeds(server: FakeOpenAI) -> None:
    server.fail["chat"] = "500-once"
    chat = build(cfg("chat", server.url))
    assert chat.complete([{"role": "user", "content": "x"}]).startswith("特別休假")
    assert server.count("chat") == 2


def test_500_every_time_gives_up_with_clear_message(server: FakeOpenAI) -> None:
    server.fail["embeddings"] = "500"
    emb = build(cfg("embed", server.url, retries=2))
    with pytest.raises(ModelUnavailable, match="HTTP 500.*model is loading"):
        emb.embed(["x"])
    assert server.count("embeddings") == 3  # 1 + 2 retries


def test_401_is_not_retried(server: FakeOpenAI) -> None:
    server.fail["chat"] = "401"
    chat = build(cfg("chat", server.url))
    with pytest.raises(ModelBadResponse, match="401.*invalid api key.*API key"):
        chat.complete([{"role": "user", "content": "x"}])
    assert server.count("chat") == 1


@pytest.mark.parametrize(
    "route,role", [("chat", "chat"), ("embeddings", "embed"), ("rerank", "rerank")]
)
def test_garbage_and_bad_shapes(server: FakeOpenAI, route: str, role: str) -> None:
    model = build(cfg(role, server.url))

    def call() -> object:
        if role == "chat":
            return model.complete([{"role": "user", "content": "x"}])
        if role == "embed":
            return model.embed(["x"])
        return model.score("q", ["a", "b"])

    server.fail[route] = "garbage"
    with pytest.raises(ModelBadResponse, match="不是 JSON"):
        call()
    server.fail[route] = "bad-shape"
    with pytest.raises(ModelBadResponse):
        call()


def test_broken_event_mid_stream(server: FakeOpenAI) -> None:
    server.fail["chat"] = "sse-garbage"
    chat = build(cfg("chat", server.url))
    got: list[str] = []
    with pytest.raises(ModelBadResponse, match="串流內容無法解析"):
        for piece in chat.stream([{"role": "user", "content": "x"}]):
            got.append(piece)
    assert got == ["特別"]  # what came before the broken event was delivered


def test_timeout(server: FakeOpenAI) -> None:
    server.fail["chat"] = "slow"
    server.slow_seconds = 1.0
    chat = build(cfg("chat", server.url, timeout=0.2, retries=1))
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="逾時"):
        chat.complete([{"role": "user", "content": "x"}])
    assert time.perf_counter() - t0 < 1.5
    assert server.count("chat") == 2


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    for role in ("chat", "embed", "rerank"):
        model = build(cfg(role, url, retries=1))
        with pytest.raises(ModelUnavailable, match="無法連線"):
            if role == "chat":
                list(model.stream([{"role": "user", "content": "x"}]))
            elif role == "embed":
                model.embed(["x"])
            else:
                model.score("q", ["a"])


def test_wrong_base_url_hints_v1(server: FakeOpenAI) -> None:
    chat = build(cfg("chat", server.url.removesuffix("/v1")))
    with pytest.raises(ModelBadResponse, match="/v1"):
        chat.complete([{"role": "user", "content": "x"}])
