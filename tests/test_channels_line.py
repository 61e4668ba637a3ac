"""LINE channel: real signed webhooks, the SDK pointed at a local server speaking LINE's API."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fake_line import FakeLine, fake_line_server, signed, sticker_event, text_event
from tests.server_util import Keys, auth, build_home
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings

SECRET = "line-channel-secret-0123456789"
TOKEN = "line-access-token-abcdef"


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, FakeLine, Keys, Path]]:
    home = tmp_path_factory.mktemp("line") / "home"
    keys = build_home(home)
    mp = pytest.MonkeyPatch()
    with fake_line_server() as fake:
        mp.setenv("ZHIKU_LINE_API", fake.url)
        settings = ServerSettings.from_env({}, home=str(home), ingest_worker=False)
        with TestClient(create_app(settings)) as client:
            r = client.post(
                "/api/v1/channels/line",
                headers=auth(keys.admin),
                json={
                    "name": "store1",
                    "channel_secret": SECRET,
                    "access_token": TOKEN,
                    "kbs": ["hr"],
                },
            )
            assert r.status_code == 201, r.text
            yield client, fake, keys, home
    mp.undo()


def _post(client: TestClient, events: list[dict[str, Any]], secret: str = SECRET) -> Any:
    body, sig = signed(secret, {"destination": "Ubot", "events": events})
    return client.post(
        "/line/store1/webhook",
        content=body,
        headers={"X-Line-Signature": sig, "Content-Type": "application/json"},
    )


def _texts(call: Any) -> list[str]:
    return [m.get("text") or m.get("altText") for m in call.body["messages"]]


def test_admin_registers_channels_without_revealing_secrets(env: Any) -> None:
    client, _fake, keys, _home = env
    listed = client.get("/api/v1/channels/line", headers=auth(keys.admin)).json()["channels"]
    assert [c["name"] for c in listed] == ["store1"]
    assert SECRET not in str(listed) and TOKEN not in str(listed)
    assert listed[0]["webhook_path"] == "/line/store1/webhook"
    assert client.get("/api/v1/channels/line", headers=auth(keys.hr_reader)).status_code == 403
    r = client.post(
        "/api/v1/channels/line",
        headers=auth(keys.admin),
        json={"name": "bad", "channel_secret": "s", "access_token": "t", "kbs": ["no-such-kb"]},
    )
    assert r.status_code == 404 and "no-such-kb" in r.json()["error"]["message"]


def test_bad_signature_is_refused_and_nothing_is_answered(env: Any) -> None:
    client, fake, _keys, _home = env
    before = len(fake.calls)
    r = _post(
        client,
        [text_event("01BADSIG0000000000000001", "Ubad", "特休幾天？", "rt-bad")],
        secret="not-the-secret",
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "line_bad_signature"
    r = client.post("/line/store1/webhook", content=b'{"events":[]}')  # no signature at all
    assert r.status_code == 401
    time.sleep(0.3)
    assert len(fake.calls) == before
    assert _post(client, []).status_code == 200  # LINE's "verify" request: no events


def test_question_answered_by_reply_with_citations_then_followup(env: Any) -> None:
    client, fake, _keys, home = env
    n = len(fake.messages())
    t0 = time.monotonic()
    r = _post(
        client,
        [
            text_event(
                "01ASK00000000000000000001",
                "Uask1",
                "我的手機 0912-345-678，到職滿一年特別休假有幾天？",
                "rt-ask1",
            )
        ],
    )
    assert r.status_code == 200 and r.json() == {"queued": 1}
    assert time.monotonic() - t0 < 5
    calls = fake.wait(n + 1)
    reply = calls[-1]
    assert reply.path == "/v2/bot/message/reply" and reply.body["replyToken"] == "rt-ask1"
    assert reply.auth == f"Bearer {TOKEN}"
    text = reply.body["messages"][0]["text"]
    assert "七日" in text
    flex = reply.body["messages"][1]
    assert flex["type"] == "flex" and "請假辦法" in flex["altText"]
    assert "特別休假" in str(flex["contents"])
    loading = fake.of("/chat/loading/start")
    assert any(c.body["chatId"] == "Uask1" for c in loading)
    # a follow-up of the same user lands in the same conversation
    _post(client, [text_event("01ASK00000000000000000002", "Uask1", "那病假呢？", "rt-ask2")])
    follow = fake.wait(n + 2)[-1]
    assert follow.body["replyToken"] == "rt-ask2" and "三十日" in follow.body["messages"][0]["text"]
    db = sqlite3.connect(home / "zhiku.db")
    rows = db.execute(
        "SELECT c.id, c.channel, c.channel_ref, m.question FROM conversations c "
        "JOIN messages m ON m.conversation_id=c.id WHERE c.channel_ref LIKE "
        "'line:%:Uask1' ORDER BY m.seq"
    ).fetchall()
    assert len(rows) == 2 and rows[0][0] == rows[1][0]
    assert {r[1] for r in rows} == {"line"}
    assert "0912" not in rows[0][3] and "345-678" not in rows[0][3]  # masked in the store
    assert "特別休假" in rows[0][3]
    audit = " ".join(r[0] for r in db.execute("SELECT detail FROM audit"))
    assert "0912-345-678" not in audit
    db.close()


def test_replayed_event_is_ignored(env: Any) -> None:
    client, fake, _keys, _home = env
    ev = text_event("01REPLAY0000000000000001", "Ureplay", "病假全年上限？", "rt-replay")
    assert _post(client, [ev]).json() == {"queued": 1}
    n = len(fake.wait(1))
    deadline = time.monotonic() + 30
    while not any(c.body.get("replyToken") == "rt-replay" for c in fake.messages()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    replayed = {**ev, "deliveryContext": {"isRedelivery": True}}
    assert _post(client, [replayed]).json() == {"queued": 0}
    assert _post(client, [ev]).json() == {"queued": 0}
    time.sleep(0.5)
    assert len(fake.messages()) == n or all(c.body.get("to") != "Ureplay" for c in fake.messages())
    assert sum(1 for c in fake.messages() if c.body.get("replyToken") == "rt-replay") == 1


def test_expired_reply_token_falls_back_to_push(env: Any) -> None:
    client, fake, _keys, _home = env
    fake.expired.add("rt-expired")
    _post(client, [text_event("01EXPIRED000000000000001", "Uexp", "特別休假", "rt-expired")])
    deadline = time.monotonic() + 30
    while not any(c.body.get("to") == "Uexp" for c in fake.of("/message/push")):
        assert time.monotonic() < deadline, "no push after the refused reply token"
        time.sleep(0.05)
    push = next(c for c in fake.of("/message/push") if c.body.get("to") == "Uexp")
    assert "七日" in push.body["messages"][0]["text"]
    # a redelivered event not seen before: its reply token is stale, so it is pushed
    _post(
        client,
        [text_event("01REDELIV000000000000001", "Uredel", "病假", "rt-redel", redelivery=True)],
    )
    deadline = time.monotonic() + 30
    while not any(c.body.get("to") == "Uredel" for c in fake.of("/message/push")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not any(c.body.get("replyToken") == "rt-redel" for c in fake.messages())


def test_sticker_gets_a_polite_answer(env: Any) -> None:
    client, fake, _keys, _home = env
    _post(client, [sticker_event("01STICKER000000000000001", "Ustk", "rt-sticker")])
    deadline = time.monotonic() + 30
    while not any(c.body.get("replyToken") == "rt-sticker" for c in fake.messages()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    call = next(c for c in fake.messages() if c.body.get("replyToken") == "rt-sticker")
    assert "貼圖" in call.body["messages"][0]["text"]


def test_burst_of_50_events_all_answered_once(env: Any) -> None:
    client, fake, _keys, _home = env
    start = len(fake.messages())
    questions = ("病假全年合計不得超過幾日？", "到職滿一年的特別休假有幾天？")
    events = [
        text_event(f"01BURST{i:017d}", f"Uburst{i % 10}", questions[i % 2], f"rt-burst-{i}")
        for i in range(50)
    ]

    def send(ev: dict[str, Any]) -> int:
        return int(_post(client, [ev]).json()["queued"])

    with ThreadPoolExecutor(8) as ex:
        queued = sum(ex.map(send, events))
    assert queued == 50
    fake.wait(start + 50, timeout=120)
    time.sleep(0.5)
    burst = fake.messages()[start:]
    tokens = [c.body.get("replyToken") for c in burst]
    assert len(burst) == 50
    assert sorted(tokens) == sorted(f"rt-burst-{i}" for i in range(50))  # none lost or doubled
    for c in burst:
        i = int(c.body["replyToken"].rsplit("-", 1)[1])
        assert ("七日" if i % 2 else "三十日") in c.body["messages"][0]["text"]


def test_line_user_asks_for_a_person_and_gets_the_agents_reply(env: Any) -> None:
    """Issue 12's loop on LINE: a cited answer, 「轉真人」 opens a case, and the agent's
    reply from the inbox reaches the user by push."""
    client, fake, keys, _home = env
    n = len(fake.messages())
    _post(client, [text_event("01HAND0000000000000000001", "Uhand", "病假全年上限？", "rt-h1")])
    first = fake.wait(n + 1)[-1]
    assert first.body["replyToken"] == "rt-h1" and first.body["messages"][1]["type"] == "flex"
    _post(client, [text_event("01HAND0000000000000000002", "Uhand", "我要轉真人", "rt-h2")])
    ack = fake.wait(n + 2)[-1]
    assert ack.body["replyToken"] == "rt-h2" and len(ack.body["messages"]) == 1
    inbox = client.get("/api/v1/inbox", headers=auth(keys.admin)).json()["cases"]
    case = next(c for c in inbox if c["channel"] == "line")
    r = client.post(
        f"/api/v1/cases/{case['id']}/replies",
        json={"body": "您好，我是人資小美。"},
        headers=auth(keys.admin),
    )
    assert r.status_code == 201, r.text
    push = fake.wait(n + 3)[-1]
    assert push.path == "/v2/bot/message/push" and push.body["to"] == "Uhand"
    assert push.body["messages"][0]["text"] == "您好，我是人資小美。"
