"""Pinned passages through the real app (TestClient, SQLite on disk): an editor pins a
passage for a refused question (found with the KB's search), the same and a
near-identical question are then answered citing it first, a caller who may not see a
pinned passage (access labels) gets the ordinary answer, provenance and audit are kept,
and unpinning restores the ordinary answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import auth, build_home
from zhiku.access import set_user_access
from zhiku.engine import Zhiku
from zhiku.models import Block, LoadedDocument
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.storage.audit import SqlAuditLog

PET = "員工可攜帶已施打疫苗的貓狗進入辦公室，需先向總務處登記。"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("pins") / "home"
    keys = build_home(home)
    with Zhiku(home) as zk:
        zk.add_loaded(
            "hr",
            "寵物辦法.md",
            LoadedDocument(
                title="寵物友善辦法",
                kind="markdown",
                blocks=[Block(PET)],
                meta={"access_groups": ["管理部"]},
            ),
        )
        zk.sync_index("hr")
        set_user_access(zk.store.database, "erin", groups=["管理部"])
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        yield client, keys, home


def _ask(client: TestClient, key: str, q: str) -> dict[str, Any]:
    r = client.post("/api/v1/kbs/hr/ask", json={"question": q}, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def _passage(client: TestClient, key: str, query: str, text: str, kb: str = "hr") -> str:
    r = client.post(
        f"/api/v1/kbs/{kb}/search", json={"query": query, "k": 10, "kbs": [kb]}, headers=auth(key)
    )
    assert r.status_code == 200, r.text
    return next(h["passage_id"] for h in r.json()["hits"] if text in h["text"])


def test_a_pinned_passage_answers_the_question_until_unpinned(env: Any) -> None:
    client, keys, home = env
    question = "年假怎麼算？"
    before = _ask(client, keys.hr_reader, question)
    assert before["refused"]  # 「年假」 is not how the KB says it
    passage = _passage(client, keys.hr_editor, "特別休假", "特別休假七日")
    r = client.post(
        "/api/v1/kbs/hr/pins",
        headers=auth(keys.hr_editor),
        json={
            "question": question,
            "passage_id": passage,
            "questions": ["年假有幾天"],
            "message_ids": ["m-from-the-gap"],
        },
    )
    assert r.status_code == 201, r.text
    pin = r.json()
    assert (pin["author"], pin["doc"], pin["source_messages"]) == (
        "erin",
        "員工請假辦法",
        ["m-from-the-gap"],
    )
    assert "特別休假七日" in pin["text"] and pin["created_at"]

    for asked in (question, "請問年假怎麼算", "年假有幾天？"):  # same, near-identical, listed
        ans = _ask(client, keys.hr_reader, asked)
        assert not ans["refused"], asked
        assert "特別休假七日" in ans["citations"][0]["text"]
    # An unrelated question is not answered from the pin.
    other = _ask(client, keys.hr_reader, "病假全年上限幾天？")
    assert "三十日" in other["citations"][0]["text"]

    # Only editors of the KB pin and list; a passage of another KB is not found.
    assert client.get("/api/v1/kbs/hr/pins", headers=auth(keys.hr_reader)).status_code == 403
    fin = _passage(client, keys.admin, "住宿費", "兩千六百元", "finance")
    assert (
        client.post(
            "/api/v1/kbs/hr/pins",
            headers=auth(keys.hr_editor),
            json={"question": "x", "passage_id": fin},
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/kbs/hr/pins",
            headers=auth(keys.hr_editor),
            json={"question": "x", "passage_id": "p_nope"},
        ).status_code
        == 404
    )
    listed = client.get("/api/v1/kbs/hr/pins", headers=auth(keys.hr_editor)).json()["pins"]
    assert [p["id"] for p in listed] == [pin["id"]]

    r = client.delete(f"/api/v1/kbs/hr/pins/{pin['id']}", headers=auth(keys.hr_editor))
    assert r.status_code == 200 and r.json()["removed"]
    assert (
        client.delete(f"/api/v1/kbs/hr/pins/{pin['id']}", headers=auth(keys.hr_editor)).status_code
        == 404
    )
    assert _ask(client, keys.hr_reader, question)["refused"]
    with Zhiku(home) as zk:
        actions = [
            (e["action"], e["user"], e["target"])
            for e in SqlAuditLog(zk.store.database).query(kb="hr")
            if e["action"].startswith("pin.")
        ]
    assert actions == [
        ("pin.create", "erin", str(pin["id"])),
        ("pin.remove", "erin", str(pin["id"])),
    ]


def test_a_pinned_passage_the_caller_may_not_see_is_not_used(env: Any) -> None:
    client, keys, _ = env
    question = "可以帶狗來上班嗎？"
    # erin (group 管理部) sees the labelled passage and pins it; alice does not see it.
    passage = _passage(client, keys.hr_editor, "貓狗 辦公室", "貓狗")
    r = client.post(
        "/api/v1/kbs/hr/pins",
        headers=auth(keys.hr_editor),
        json={"question": question, "passage_id": passage},
    )
    assert r.status_code == 201, r.text
    mine = _ask(client, keys.hr_editor, question)
    assert PET[:10] in mine["citations"][0]["text"]
    theirs = _ask(client, keys.hr_reader, question)
    assert PET[:6] not in str(theirs) and "寵物友善辦法" not in str(theirs)
    # The admin (no group) neither pins it nor sees the pin in the list.
    assert (
        client.post(
            "/api/v1/kbs/hr/pins",
            headers=auth(keys.admin),
            json={"question": "q", "passage_id": passage},
        ).status_code
        == 404
    )
    listed = client.get("/api/v1/kbs/hr/pins", headers=auth(keys.admin)).json()["pins"]
    assert listed == []

    # Analytics: the cited labelled document shows for erin, not for the admin.
    def report(key: str) -> str:
        r = client.get("/api/v1/analytics?since=1d&kb=hr", headers=auth(key))
        assert r.status_code == 200, r.text
        return json.dumps(r.json()["most_cited"], ensure_ascii=False)

    assert "寵物友善辦法" in report(keys.hr_editor)
    assert "寵物友善辦法" not in report(keys.admin) and "員工請假辦法" in report(keys.admin)
    assert (
        client.delete(f"/api/v1/kbs/hr/pins/{r.json()['id']}", headers=auth(keys.admin)).status_code
        == 404
    )
