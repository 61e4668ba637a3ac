"""Follow-ups without a model (zhiku.followup): the previous turn's subject is carried
into an elliptical follow-up, in the engine, `zhiku chat`, server conversations and the
OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.server_util import auth
from zhiku.cli import app as cli_app
from zhiku.engine import Zhiku
from zhiku.followup import carry_subject, is_elliptical, segments, standalone
from zhiku.ingest import ingest_paths
from zhiku.server import accounts
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings

# Two companies' LINE official-account figures: searched alone, 「轉換率」 finds the
# other company (its article talks about conversion rates more).
ARTICLES = {
    "恆隆行官方帳號經營.txt": (
        "恆隆行官方帳號經營回顧\n\n"
        "恆隆行官方帳號的好友人數在二〇二四年突破五十萬人，封鎖率維持在百分之十二。\n\n"
        "行銷團隊每週檢討推播的時段與內容，並與門市活動搭配。\n\n"
        "恆隆行推播訊息的轉換率約為百分之三點五，高於前一年。\n"
    ),
    "全家官方帳號觀察.txt": (
        "全家便利商店官方帳號觀察\n\n"
        "全家便利商店官方帳號的轉換率高達百分之八，轉換率在零售業名列前茅。\n"
        "全家便利商店的會員推播轉換率來自優惠券，封鎖率則為百分之二十。\n"
    ),
    "員工請假辦法.txt": (
        "員工請假辦法\n\n"
        "員工特別休假應於休假二日前提出申請，經主管核准後生效。\n"
        "病假全年合計不得超過三十日。\n"
    ),
    "資訊安全規定.txt": (
        "資訊安全規定\n\n員工密碼長度至少十二個字元，每一百八十天必須變更一次。\n"
    ),
}
FIRST = "恆隆行官方帳號的封鎖率是多少？"
FOLLOW = "那轉換率呢？"
HENG_DOC = "恆隆行官方帳號經營回顧"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("followup")
    src = root / "src"
    src.mkdir()
    for name, text in ARTICLES.items():
        (src / name).write_text(text, "utf-8")
    home = root / "home"
    with Zhiku(home) as zk:
        ingest_paths(zk, [src], "web")
        accounts.create_user(zk.store, "amy", "reader", ["web"])
    return home


def _key(home: Path) -> str:
    with Zhiku(home) as zk:
        return accounts.create_key(zk.store, "amy")[0]


def test_ellipsis_detection() -> None:
    assert is_elliptical("那轉換率呢？") and is_elliptical("還有病假？")
    assert is_elliptical("另外，密碼多久要變更一次？") and is_elliptical("幾天？")
    assert not is_elliptical(FIRST) and not is_elliptical("員工特別休假要提前幾天申請？")
    assert segments(FIRST) == ["恆隆行官方帳號", "封鎖率"]


def test_follow_up_replaces_the_attribute_and_keeps_the_subject(home: Path) -> None:
    with Zhiku(home) as zk:
        q = carry_subject(FOLLOW, FIRST, lambda s: zk.term_stats(s, ["web"]))
    assert "恆隆行" in q and "轉換率" in q
    assert "封鎖率" not in q  # the slot the follow-up fills is not carried


def test_engine_carries_the_subject(home: Path) -> None:
    with Zhiku(home) as zk:
        alone = zk.ask(FOLLOW, "web")
        # On its own the follow-up finds the other company: the behaviour being fixed.
        assert alone.refused or alone.citations[0].hit.doc_title != HENG_DOC
        first = zk.ask(FIRST, "web").text
        assert "百分之十二" in first and "百分之三點五" not in first
        history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": first}]
        done = list(zk.ask_stream(FOLLOW, "web", history=history))[-1]["answer"]
        assert not done["refused"]
        assert done["citations"][0]["doc"] == HENG_DOC
        assert "百分之三點五" in done["answer"]
        # Three turns: the subject survives an elliptical second turn.
        history += [
            {"role": "user", "content": FOLLOW},
            {"role": "assistant", "content": done["answer"]},
        ]
        q3 = standalone("那好友人數呢？", history, lambda s: zk.term_stats(s, ["web"]))
        assert "恆隆行" in q3
        # A new topic is answered on its own, not pulled back to the company.
        new = list(zk.ask_stream("員工密碼多久必須變更一次？", "web", history=history))[-1]
        assert new["answer"]["citations"][0]["doc"] == "資訊安全規定"


def test_cli_chat_carries_the_subject(home: Path) -> None:
    res = CliRunner().invoke(
        cli_app,
        ["chat", "--kb", "web"],
        input=f"{FIRST}\n{FOLLOW}\n/exit\n",
        env={"ZHIKU_HOME": str(home)},
    )
    assert res.exit_code == 0, res.output
    first, second = res.output.split("知庫：")[1:3]
    assert "百分之十二" in first and "百分之三點五" not in first
    assert "百分之三點五" in second and "百分之八" not in second


def test_server_conversation_and_openai_endpoint(home: Path) -> None:
    key = _key(home)
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        h = auth(key)
        first = client.post("/api/v1/kbs/web/ask", json={"question": FIRST}, headers=h)
        assert first.status_code == 200, first.text
        conv = first.headers["x-conversation-id"]
        second = client.post(
            "/api/v1/kbs/web/ask", json={"question": FOLLOW, "conversation_id": conv}, headers=h
        )
        body: dict[str, Any] = second.json()
        assert body["citations"][0]["doc"] == HENG_DOC and "百分之三點五" in body["answer"]

        r = client.post(
            "/v1/chat/completions",
            headers=h,
            json={
                "model": "web",
                "messages": [
                    {"role": "user", "content": FIRST},
                    {"role": "assistant", "content": first.json()["answer"]},
                    {"role": "user", "content": FOLLOW},
                ],
            },
        ).json()
        content = r["choices"][0]["message"]["content"]
        assert "百分之三點五" in content and "百分之八" not in content
