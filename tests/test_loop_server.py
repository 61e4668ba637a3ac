"""The service loop through the real app (TestClient, SQLite on disk): 轉真人 and the
agent inbox, analytics, a knowledge gap closed by a curated entry, ``zhiku report`` and
``zhiku export sft``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.server_util import auth, build_home
from zhiku.cli import app as cli_app
from zhiku.engine import Zhiku
from zhiku.loop import handoff
from zhiku.server import accounts
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings

PHONE = "0912-345-678"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("loop") / "home"
    keys = build_home(home)
    with Zhiku(home) as zk:
        s = zk.store
        s.update_kb_settings("hr", {"handoff_department": "人資服務"})
        accounts.create_user(s, "agnes", "reader", ["hr"])
        accounts.create_user(s, "fred", "reader", ["hr"])
        agent = {
            "agnes": accounts.create_key(s, "agnes")[0],
            "fred": accounts.create_key(s, "fred")[0],
        }
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        for dept, member in (("人資服務", "agnes"), ("財務服務", "fred")):
            assert (
                client.post(
                    "/api/v1/departments", json={"name": dept}, headers=auth(keys.admin)
                ).status_code
                == 201
            )
            r = client.post(
                f"/api/v1/departments/{dept}/members",
                json={"user": member},
                headers=auth(keys.admin),
            )
            assert r.status_code == 201, r.text
        yield client, keys, agent, home


def _ask(
    client: TestClient, key: str, q: str, conv: str | None = None
) -> tuple[dict[str, Any], str, str]:
    body: dict[str, Any] = {"question": q}
    if conv:
        body["conversation_id"] = conv
    r = client.post("/api/v1/kbs/hr/ask", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json(), r.headers["X-Conversation-Id"], r.headers["X-Answer-Id"]


def test_handoff_inbox_notes_replies_and_resolution(env: Any) -> None:
    client, keys, agent, _ = env
    delivered: list[tuple[str, str]] = []
    events: list[tuple[str, dict[str, Any]]] = []
    handoff.set_deliverer(lambda conv, text: delivered.append((conv, text)))
    handoff.on(lambda ev, payload: events.append((ev, payload)))
    try:
        first, conv, _ = _ask(client, keys.hr_reader, "特別休假有幾天？")
        assert not first["refused"] and first["citations"]
        ans, conv2, _ = _ask(client, keys.hr_reader, "請幫我轉真人客服", conv)
        assert conv2 == conv
        assert ans["citations"] == [] and "真人" in ans["answer"]  # not answered from the KB
        assert events[-1][0] == "handoff.requested"
        case_id = events[-1][1]["case_id"]

        # agnes (人資服務) sees it; fred (財務服務) and a plain reader do not.
        inbox = client.get("/api/v1/inbox", headers=auth(agent["agnes"])).json()["cases"]
        assert [c["id"] for c in inbox] == [case_id]
        assert inbox[0]["department"] == "人資服務" and inbox[0]["reason"] == "asked"
        assert client.get("/api/v1/inbox", headers=auth(agent["fred"])).json()["cases"] == []
        assert (
            client.get(f"/api/v1/cases/{case_id}", headers=auth(agent["fred"])).status_code == 404
        )
        assert client.get("/api/v1/inbox", headers=auth(keys.hr_reader)).status_code == 403

        case = client.get(f"/api/v1/cases/{case_id}", headers=auth(agent["agnes"])).json()
        assert [t["question"] for t in case["turns"]] == ["特別休假有幾天？", "請幫我轉真人客服"]
        assert case["turns"][0]["answer"]["citations"][0]["doc"]  # the citations travel along

        client.post(
            f"/api/v1/cases/{case_id}/notes",
            json={"body": "內部：查年資"},
            headers=auth(agent["agnes"]),
        )
        r = client.post(
            f"/api/v1/cases/{case_id}/replies",
            json={"body": "您好，年資滿一年有七天"},
            headers=auth(agent["agnes"]),
        )
        assert r.status_code == 201 and r.json()["delivered"] == 1
        assert delivered == [(conv, "您好，年資滿一年有七天")]
        seen = client.get(
            f"/api/v1/conversations/{conv}/replies", headers=auth(keys.hr_reader)
        ).json()
        assert [x["body"] for x in seen["replies"]] == ["您好，年資滿一年有七天"]  # no note
        assert seen["handoff"]["status"] == "open"
        # Only the conversation's owner reads its replies.
        assert (
            client.get(
                f"/api/v1/conversations/{conv}/replies", headers=auth(keys.hr_editor)
            ).status_code
            == 404
        )

        # Hand the case to 財務服務: now fred sees it and agnes does not.
        r = client.post(
            f"/api/v1/cases/{case_id}/assign",
            json={"user": "fred", "department": "財務服務"},
            headers=auth(agent["agnes"]),
        )
        assert r.json()["assignee"] == "fred"
        assert [
            c["id"]
            for c in client.get("/api/v1/inbox", headers=auth(agent["fred"])).json()["cases"]
        ] == [case_id]
        assert (
            client.get(f"/api/v1/cases/{case_id}", headers=auth(agent["agnes"])).status_code == 404
        )

        done = client.post(f"/api/v1/cases/{case_id}/resolve", headers=auth(agent["fred"])).json()
        assert done["status"] == "resolved" and done["resolved_at"] >= done["first_reply_at"]
        assert events[-1][0] == "handoff.resolved"
        assert (
            client.post(
                f"/api/v1/cases/{case_id}/replies", json={"body": "x"}, headers=auth(agent["fred"])
            ).status_code
            == 409
        )
        again = client.post(f"/api/v1/cases/{case_id}/reopen", headers=auth(keys.admin)).json()
        assert again["status"] == "open" and again["resolved_at"] is None
        kinds = [
            e["kind"]
            for e in client.get(f"/api/v1/cases/{case_id}", headers=auth(keys.admin)).json()[
                "entries"
            ]
        ]
        assert kinds == ["note", "reply", "event", "event", "event"]

        report = client.get("/api/v1/analytics?since=1d&kb=hr", headers=auth(keys.admin)).json()
        assert report["totals"]["handoff"] >= 1 and report["handoff"]["cases"] >= 1
        assert report["handoff"]["first_reply_s_avg"] is not None
        assert client.get("/api/v1/analytics", headers=auth(keys.hr_reader)).status_code == 403
    finally:
        handoff.clear()


def test_refused_answer_can_be_handed_off_explicitly(env: Any) -> None:
    client, keys, agent, _ = env
    ans, conv, _ = _ask(client, keys.hr_reader, "公司停車場的月租費用多少？")
    assert ans["refused"]
    r = client.post(
        f"/api/v1/conversations/{conv}/handoff",
        json={"reason": "refused"},
        headers=auth(keys.hr_reader),
    )
    assert r.status_code == 201 and r.json()["reason"] == "refused"
    assert r.json()["department"] == "人資服務"  # the KB's hand-off department
    again = client.post(
        f"/api/v1/conversations/{conv}/handoff", json={}, headers=auth(keys.hr_reader)
    ).json()
    assert again["id"] == r.json()["id"]  # one open case per conversation
    assert (
        client.post(
            f"/api/v1/conversations/{conv}/handoff", json={}, headers=auth(keys.fin_reader)
        ).status_code
        == 404
    )


def test_gap_cluster_closed_by_a_curated_entry(env: Any) -> None:
    client, keys, _, home = env
    asked = ["公司的寵物友善政策是什麼？", "請問公司寵物友善政策？", "寵物友善政策有哪些規定"]
    for q in asked:
        assert _ask(client, keys.hr_reader, q)[0]["refused"]
    _ask(client, keys.hr_reader, f"我的電話 {PHONE} 可以登記寵物友善政策嗎")
    report = client.get("/api/v1/analytics?since=1d&kb=hr", headers=auth(keys.admin)).json()
    pet = [g for g in report["gaps"] if asked[0] in g["examples"]]
    assert len(pet) == 1 and set(asked) <= set(pet[0]["examples"])  # one need, one cluster
    assert pet[0]["trend"]["per_day"][-1] >= 3
    assert PHONE not in json.dumps(report, ensure_ascii=False)  # masked in the report

    r = client.post(
        "/api/v1/kbs/hr/curated",
        headers=auth(keys.hr_editor),
        json={
            "question": asked[0],
            "questions": pet[0]["examples"],
            "answer": "本公司為寵物友善職場，員工可攜帶已施打疫苗的貓狗進入辦公室，"
            "需先向總務處登記。",
            "message_ids": pet[0]["message_ids"],
        },
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (
        client.post(
            "/api/v1/kbs/hr/curated",
            headers=auth(keys.hr_reader),
            json={"question": "x", "answer": "y"},
        ).status_code
        == 403
    )

    ans, _, _ = _ask(client, keys.hr_reader, asked[1])
    assert not ans["refused"]
    assert ans["citations"][0]["path"] == entry["path"]
    assert "寵物友善職場" in ans["answer"]
    with Zhiku(home) as zk:  # provenance in the document's meta
        doc = zk.store.get_document("hr", entry["path"])
        assert doc is not None and doc.meta["curated"]["author"] == "erin"
        assert set(asked) <= set(doc.meta["curated"]["questions"])
    listed = client.get("/api/v1/kbs/hr/curated", headers=auth(keys.hr_reader)).json()
    assert [(e["path"], e["author"]) for e in listed["entries"]] == [(entry["path"], "erin")]

    report = client.get("/api/v1/analytics?since=1d&kb=hr", headers=auth(keys.admin)).json()
    [cur] = [c for c in report["curated"] if c["id"] == entry["id"]]
    assert cur["before"]["unanswered"] >= 3 and cur["before"]["rate"] == 1.0
    assert cur["after"] == {"asked": 1, "unanswered": 0, "rate": 0.0}


def test_rename_conversation(env: Any) -> None:
    client, keys, _, _ = env
    _, conv, _ = _ask(client, keys.hr_reader, "病假上限？")
    r = client.patch(
        f"/api/v1/conversations/{conv}",
        json={"title": "  病假  問題 "},
        headers=auth(keys.hr_reader),
    )
    assert r.json()["title"] == "病假 問題"
    listed = client.get("/api/v1/conversations", headers=auth(keys.hr_reader)).json()
    assert [c["title"] for c in listed["conversations"] if c["id"] == conv] == ["病假 問題"]
    assert (
        client.patch(
            f"/api/v1/conversations/{conv}", json={"title": "x"}, headers=auth(keys.fin_reader)
        ).status_code
        == 404
    )


def test_report_and_sft_export_on_the_command_line(env: Any, tmp_path: Path) -> None:
    client, keys, _, home = env
    ans, _, answer_id = _ask(client, keys.hr_reader, f"我是{PHONE}，病假全年上限幾天？")
    assert not ans["refused"]
    assert (
        client.post(
            f"/api/v1/answers/{answer_id}/feedback",
            json={"rating": "up"},
            headers=auth(keys.hr_reader),
        ).status_code
        == 200
    )
    runner = CliRunner()
    r = runner.invoke(cli_app, ["report", "--since", "7d", "--home", str(home)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["totals"]["questions"] >= 5 and data["busiest_hours"]
    assert data["most_cited"][0]["title"]
    assert PHONE not in r.stdout
    out = tmp_path / "r.csv"
    r = runner.invoke(cli_app, ["report", "--format", "csv", "-o", str(out), "--home", str(home)])
    assert r.exit_code == 0 and out.read_text("utf-8").startswith("section,key,value")
    r = runner.invoke(cli_app, ["report", "--format", "html", "--kb", "hr", "--home", str(home)])
    assert "<h2>知識缺口</h2>" in r.stdout and PHONE not in r.stdout
    r = runner.invoke(cli_app, ["report", "--since", "lastweek", "--home", str(home)])
    assert r.exit_code == 2 and "lastweek" in r.output

    sft = tmp_path / "sft.jsonl"
    r = runner.invoke(cli_app, ["export", "sft", "--kb", "hr", "-o", str(sft), "--home", str(home)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in sft.read_text("utf-8").splitlines()]
    assert all(
        [m["role"] for m in row["messages"]] == ["system", "user", "assistant"] for row in rows
    )
    sources = {row["meta"]["source"].split(":")[0] for row in rows}
    assert sources == {"curated", "thumbs_up"}
    thumbs = [row for row in rows if row["meta"]["source"] == f"thumbs_up:{answer_id}"]
    assert "病假" in thumbs[0]["messages"][0]["content"]  # the cited passage as context
    assert PHONE not in sft.read_text("utf-8")
