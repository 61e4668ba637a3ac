"""The OpenAI-compatible API: raw request shapes (what Open WebUI, n8n and curl send) and,
when the ``openai`` package is installed, the official client itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import auth, build_home
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings

Q = "到職滿一年有幾天特休？"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("oai") / "home"
    keys = build_home(home)
    with TestClient(create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))) as c:
        yield c, keys


def _chunks(text: str) -> list[Any]:
    out = []
    for block in text.strip().split("\n\n"):
        assert block.startswith("data: "), block
        payload = block[6:]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_models_are_the_callers_kbs(env: Any) -> None:
    client, keys = env
    r = client.get("/v1/models", headers=auth(keys.hr_reader)).json()
    assert r["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in r["data"]] == [("hr", "model", "zhiku")]
    assert isinstance(r["data"][0]["created"], int)
    admin = {m["id"] for m in client.get("/v1/models", headers=auth(keys.admin)).json()["data"]}
    assert admin == {"hr", "finance"}
    assert client.get("/v1/models", headers=auth(keys.nobody)).json()["data"] == []


def test_chat_completion_non_stream(env: Any) -> None:
    client, keys = env
    r = client.post(
        "/v1/chat/completions",
        headers=auth(keys.hr_reader),
        json={
            "model": "hr",
            "temperature": 0.2,
            "max_tokens": 512,
            "user": "u1",
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": Q},
            ],
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "hr"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert "七日" in content
    # Citations: in the message text and as an extra field.
    assert "出處：\n[1] 《員工請假辦法》" in content
    assert body["citations"][0]["doc"] == "員工請假辦法" and "七日" in body["citations"][0]["text"]
    assert body["refused"] is False
    u = body["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0
    en = client.post(
        "/v1/chat/completions",
        headers={**auth(keys.hr_reader), "Accept-Language": "en"},
        json={"model": "hr", "messages": [{"role": "user", "content": Q}]},
    ).json()
    assert "\n\nSources:\n[1]" in en["choices"][0]["message"]["content"]


def test_chat_completion_stream(env: Any) -> None:
    client, keys = env
    r = client.post(
        "/v1/chat/completions",
        headers=auth(keys.hr_reader),
        json={
            "model": "hr",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": [{"type": "text", "text": Q}]}],
        },
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = _chunks(r.text)
    assert chunks[-1] == "[DONE]"
    objs = chunks[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in objs)
    assert len({c["id"] for c in objs}) == 1
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in objs if c["choices"])
    assert "七日" in text and "出處：" in text
    final = [c for c in objs if c["choices"] and c["choices"][0]["finish_reason"] == "stop"]
    assert len(final) == 1 and final[0]["citations"][0]["doc"] == "員工請假辦法"
    assert objs[-1]["choices"] == [] and objs[-1]["usage"]["total_tokens"] > 0


def test_history_and_refusal(env: Any) -> None:
    client, keys = env
    r = client.post(
        "/v1/chat/completions",
        headers=auth(keys.hr_reader),
        json={
            "model": "hr",
            "messages": [
                {"role": "user", "content": Q},
                {"role": "assistant", "content": "七日。\n\n出處：\n[1] 《員工請假辦法》"},
                {"role": "user", "content": "火星基地的氧氣存量是多少？"},
            ],
        },
    ).json()
    assert r["refused"] is True and r["citations"] == []
    assert "出處" not in r["choices"][0]["message"]["content"]


def test_errors_use_the_openai_shape(env: Any) -> None:
    client, keys = env
    r = client.post(
        "/v1/chat/completions",
        headers=auth(keys.hr_reader),
        json={"model": "finance", "messages": [{"role": "user", "content": Q}]},
    )
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and err["type"] == "not_found_error" and err["message"]
    r = client.post(
        "/v1/chat/completions", json={"model": "hr", "messages": []}, headers=auth(keys.hr_reader)
    )
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.get("/v1/models")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_the_official_openai_client(env: Any) -> None:
    openai = pytest.importorskip("openai")
    client, keys = env
    oc = openai.OpenAI(
        base_url="http://testserver/v1", api_key=keys.hr_reader, http_client=client, max_retries=0
    )
    assert [m.id for m in oc.models.list()] == ["hr"]
    res = oc.chat.completions.create(model="hr", messages=[{"role": "user", "content": Q}])
    assert "七日" in (res.choices[0].message.content or "")
    assert (res.model_extra or {})["citations"][0]["doc"] == "員工請假辦法"
    parts = []
    for chunk in oc.chat.completions.create(
        model="hr", stream=True, messages=[{"role": "user", "content": Q}]
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    assert "七日" in "".join(parts)
    with pytest.raises(openai.NotFoundError):
        oc.chat.completions.create(model="finance", messages=[{"role": "user", "content": Q}])
    bad = openai.OpenAI(
        base_url="http://testserver/v1", api_key="zk_nope_nope", http_client=client, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
