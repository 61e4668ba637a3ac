"""The REST API through FastAPI's TestClient: KBs, uploads and jobs, search, ask (JSON and
SSE), passages, conversations, feedback, users and keys, audit, metrics, logs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.filegen import make_docx
from tests.server_util import auth, build_home, wait_job
from zhiku.cli import app as cli_app
from zhiku.engine import Zhiku
from zhiku.lexical import IndexBusy, LexicalIndex
from zhiku.models import Answer, Citation
from zhiku.server.app import create_app
from zhiku.server.observability import JsonFormatter
from zhiku.server.settings import ServerSettings
from zhiku.services.indexes import IndexService
from zhiku.store import SCHEMA_VERSION


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("api") / "home"
    keys = build_home(home)
    settings = ServerSettings.from_env(
        {}, home=str(home), metrics_token="scrape-token", rate_limit=0
    )
    with TestClient(create_app(settings)) as client:
        yield client, keys, home


def _sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        data = [ln[5:].strip() for ln in block.splitlines() if ln.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


def _upload(client: TestClient, key: str, kb: str, *files: tuple[str, bytes]) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/kbs/{kb}/documents",
        headers=auth(key),
        files=[("files", (name, data)) for name, data in files],
    )
    assert r.status_code == 202, r.text
    return wait_job(client, r.json()["id"], key)


# --- system -----------------------------------------------------------------------------------


def test_health_ready_and_openapi(env: Any) -> None:
    client, _, _ = env
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["schema"] == SCHEMA_VERSION
    assert ready["ingest_worker"]
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/v1/kbs",
        "/api/v1/kbs/{kb}/documents",
        "/api/v1/kbs/{kb}/ask",
        "/api/v1/kbs/{kb}/search",
        "/api/v1/conversations",
        "/api/v1/answers/{answer_id}/feedback",
        "/v1/chat/completions",
        "/v1/models",
        "/api/v1/jobs/{job_id}",
        "/api/v1/users",
        "/api/v1/keys",
        "/api/v1/audit",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    upload = schema["paths"]["/api/v1/kbs/{kb}/documents"]["post"]["requestBody"]
    assert "files" in upload["content"]["multipart/form-data"]["schema"]["properties"]
    # No Swagger UI: it would load from a CDN. Unknown URLs answer with the JSON error shape.
    r = client.get("/docs")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_me_lists_only_granted_kbs(env: Any) -> None:
    client, keys, _ = env
    me = client.get("/api/v1/me", headers=auth(keys.hr_reader)).json()
    assert (me["user"], me["role"], me["kbs"]) == ("alice", "reader", ["hr"])
    assert me["limits"]["max_upload_mb"] == 50
    admin = client.get("/api/v1/me", headers=auth(keys.admin)).json()
    assert set(admin["kbs"]) >= {"hr", "finance"}


# --- knowledge bases --------------------------------------------------------------------------


def test_kb_create_list_policy_delete(env: Any) -> None:
    client, keys, home = env
    h = auth(keys.admin)
    r = client.post("/api/v1/kbs", json={"name": "legal"}, headers=h)
    assert r.status_code == 201 and r.json()["documents"] == 0
    assert (
        client.post("/api/v1/kbs", json={"name": "legal"}, headers=h).json()["error"]["code"]
        == "kb_exists"
    )
    assert "legal" in [k["name"] for k in client.get("/api/v1/kbs", headers=h).json()["kbs"]]
    # A new KB starts with the privacy-by-default policy; admins change it.
    assert client.get("/api/v1/kbs/legal/policy", headers=h).json()["mode"] == "ingest"
    r = client.put("/api/v1/kbs/legal/policy", json={"mode": "output", "types": "-name"}, headers=h)
    assert r.status_code == 200 and r.json()["mode"] == "output"
    assert "name" not in r.json()["types"]
    bad = client.put("/api/v1/kbs/legal/policy", json={"types": ["shoe_size"]}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_policy"
    assert (
        client.put("/api/v1/kbs/legal/policy", json={"mode": "loud"}, headers=h).status_code == 422
    )
    # Readers and editors cannot create, delete or change policy.
    for key in (keys.hr_reader, keys.hr_editor):
        assert client.post("/api/v1/kbs", json={"name": "x"}, headers=auth(key)).status_code == 403
        assert client.delete("/api/v1/kbs/hr", headers=auth(key)).status_code == 403
        assert (
            client.put("/api/v1/kbs/hr/policy", json={"mode": "off"}, headers=auth(key)).status_code
            == 403
        )
    # Grant, upload, delete: uploads and grants go with the KB.
    client.post(
        "/api/v1/users", json={"name": "lea", "role": "reader", "kbs": ["legal"]}, headers=h
    )
    lea = client.post("/api/v1/keys", json={"user": "lea"}, headers=h).json()["key"]
    job = _upload(client, keys.admin, "legal", ("合約.txt", "保密期間為五年。".encode()))
    assert job["files"][0]["status"] == "added"
    kb_id = Zhiku(home).store.get_kb("legal").id
    assert (home / "uploads" / str(kb_id)).is_dir()
    assert client.delete("/api/v1/kbs/legal", headers=h).json() == {"deleted": "legal"}
    assert not (home / "uploads" / str(kb_id)).exists()
    assert client.get("/api/v1/kbs/legal", headers=h).status_code == 404
    # Re-created under the same name, the KB does not inherit the old grant.
    client.post("/api/v1/kbs", json={"name": "legal"}, headers=h)
    assert client.get("/api/v1/me", headers=auth(lea)).json()["kbs"] == []
    client.delete("/api/v1/kbs/legal", headers=h)


# --- documents and jobs -----------------------------------------------------------------------


def test_upload_many_files_progress_and_documents(env: Any, tmp_path: Path) -> None:
    client, keys, home = env
    docx = make_docx(
        tmp_path / "加班管理辦法.docx",
        [
            ("heading", 1, "1 加班申請"),
            ("para", "加班須事先經主管核准，每月加班時數不得超過四十六小時。"),
        ],
        title="加班管理辦法",
    )
    job = _upload(
        client,
        keys.hr_editor,
        "hr",
        ("加班管理辦法.docx", docx.read_bytes()),
        ("出差須知.md", "# 出差須知\n\n出差前須填寫出差申請單。\n".encode()),
        ("空白.txt", b""),
    )
    assert job["status"] == "done" and (job["total"], job["done"], job["failed"]) == (3, 3, 1)
    by_name = {f["name"]: f for f in job["files"]}
    assert by_name["加班管理辦法.docx"]["status"] == "added"
    assert by_name["加班管理辦法.docx"]["chunks"] >= 1
    assert by_name["空白.txt"]["reason"] == "empty"
    docs = client.get("/api/v1/kbs/hr/documents", headers=auth(keys.hr_reader)).json()
    titles = {d["title"]: d for d in docs["documents"]}
    assert titles["加班管理辦法"]["path"] == "upload://hr/加班管理辦法.docx"
    assert titles["加班管理辦法"]["uploaded"] is True and len(titles["加班管理辦法"]["id"]) == 16
    # Stored content-addressed under uploads/<kb id>/<sha256 prefix>/<name>.
    stored = list((home / "uploads").rglob("加班管理辦法.docx"))
    digest = hashlib.sha256(stored[0].read_bytes()).hexdigest()
    assert len(stored) == 1 and stored[0].parent.name == digest[:16]
    # Searchable once the job is done, and listed in the KB's jobs.
    hits = client.post(
        "/api/v1/kbs/hr/search", json={"query": "加班時數上限"}, headers=auth(keys.hr_reader)
    ).json()["hits"]
    assert hits[0]["doc"] == "加班管理辦法" and hits[0]["kb"] == "hr"
    jobs = client.get("/api/v1/kbs/hr/jobs", headers=auth(keys.hr_reader)).json()["jobs"]
    assert job["id"] in [j["id"] for j in jobs]


def test_new_version_reingest_and_delete(env: Any) -> None:
    client, keys, home = env
    h = auth(keys.hr_editor)
    first = _upload(client, keys.hr_editor, "hr", ("值班表.txt", "本週值班：王大同。".encode()))
    assert first["files"][0]["status"] == "added"
    same = _upload(client, keys.hr_editor, "hr", ("值班表.txt", "本週值班：王大同。".encode()))
    assert same["files"][0]["status"] == "unchanged"
    second = _upload(client, keys.hr_editor, "hr", ("值班表.txt", "本週值班：李小華。".encode()))
    assert second["files"][0]["status"] == "updated"
    files = list((home / "uploads").rglob("值班表.txt"))
    assert len(files) == 1 and "李小華" in files[0].read_text("utf-8")  # old version removed
    doc = next(
        d
        for d in client.get("/api/v1/kbs/hr/documents", headers=h).json()["documents"]
        if d["path"] == "upload://hr/值班表.txt"
    )
    r = client.post(f"/api/v1/kbs/hr/documents/{doc['id']}/reingest", headers=h)
    assert r.status_code == 202
    job = wait_job(client, r.json()["id"], keys.hr_editor)
    assert job["kind"] == "reingest" and job["files"][0]["status"] == "updated"
    r = client.delete(f"/api/v1/kbs/hr/documents/{doc['id']}", headers=h)
    assert r.status_code == 200
    assert not list((home / "uploads").rglob("值班表.txt"))
    hits = client.post("/api/v1/kbs/hr/search", json={"query": "值班"}, headers=h).json()["hits"]
    assert all("值班" not in x["doc"] for x in hits)
    assert (
        client.delete(f"/api/v1/kbs/hr/documents/{doc['id']}", headers=h).json()["error"]["code"]
        == "document_not_found"
    )
    assert (
        client.post("/api/v1/kbs/hr/documents/0000000000000000/reingest", headers=h).status_code
        == 404
    )
    # Readers may list but not change documents.
    r = client.delete(f"/api/v1/kbs/hr/documents/{doc['id']}", headers=auth(keys.hr_reader))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_delete_does_not_wait_for_vectors_or_the_index_writer(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DELETE never syncs vectors (that waits for the ingest worker's embedding) and
    does not wait for the lexical writer either: the search after it still cannot
    return the document, even when another process held the writer."""
    client, keys, _ = env
    h = auth(keys.hr_editor)
    _upload(client, keys.hr_editor, "hr", ("停車證.txt", "停車證申請請洽總務處。".encode()))
    doc = next(
        d
        for d in client.get("/api/v1/kbs/hr/documents", headers=h).json()["documents"]
        if d["path"] == "upload://hr/停車證.txt"
    )
    hits = client.post("/api/v1/kbs/hr/search", json={"query": "停車證"}, headers=h).json()
    assert any("停車證" in x["text"] for x in hits["hits"])
    synced: list[str] = []

    def busy(self: LexicalIndex, *a: Any, **kw: Any) -> int:
        synced.append("lexical")
        raise IndexBusy("held by another process")

    def no_vectors(self: Zhiku, *a: Any, **kw: Any) -> None:
        raise AssertionError("DELETE must not sync vectors")

    with monkeypatch.context() as m:
        m.setattr(LexicalIndex, "sync", busy)
        m.setattr(Zhiku, "sync_vectors", no_vectors)
        m.setattr(Zhiku, "sync_index", no_vectors)
        m.setattr(IndexService, "sync_vectors", no_vectors)
        r = client.delete(f"/api/v1/kbs/hr/documents/{doc['id']}", headers=h)
    assert r.status_code == 200 and synced == ["lexical"]
    hits = client.post("/api/v1/kbs/hr/search", json={"query": "停車證"}, headers=h).json()
    assert all("停車證" not in x["text"] for x in hits["hits"])


# --- search and ask ---------------------------------------------------------------------------


def test_ask_json_is_the_cli_object(env: Any) -> None:
    client, keys, home = env
    q = "到職滿一年有幾天特休？"
    r = client.post("/api/v1/kbs/hr/ask", json={"question": q}, headers=auth(keys.hr_reader))
    assert r.status_code == 200
    res = CliRunner().invoke(cli_app, ["ask", q, "--kb", "hr", "--json", "--home", str(home)])
    assert res.exit_code == 0, res.output
    assert r.json() == json.loads(res.stdout)
    assert "七日" in r.json()["answer"] and not r.json()["refused"]
    assert r.headers["x-answer-id"] and r.headers["x-conversation-id"]
    # The search endpoint keeps the `zhiku search --json` hit fields.
    hits = client.post(
        "/api/v1/kbs/hr/search", json={"query": "病假", "k": 2}, headers=auth(keys.hr_reader)
    ).json()["hits"]
    cli = json.loads(
        CliRunner()
        .invoke(cli_app, ["search", "病假", "--kb", "hr", "-k", "2", "--json", "--home", str(home)])
        .stdout
    )
    assert [{k: h[k] for k in cli["hits"][0]} for h in hits] == cli["hits"]


def test_refusal_when_nothing_fits(env: Any) -> None:
    client, keys, _ = env
    r = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "火星基地的氧氣存量是多少？"},
        headers=auth(keys.hr_reader),
    ).json()
    assert r["refused"] is True and r["citations"] == []


def test_ask_stream_sse_then_passage(env: Any) -> None:
    client, keys, _ = env
    r = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "病假全年上限幾日？", "stream": True},
        headers=auth(keys.hr_reader),
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    assert [e["type"] for e in events][-1] == "done"
    assert all(e["type"] == "delta" for e in events[:-1]) and len(events) >= 2
    done = events[-1]
    assert "".join(e["text"] for e in events[:-1]) == done["answer"]["answer"]
    assert "三十日" in done["answer"]["answer"]
    assert done["answer_id"] and done["conversation_id"]
    src = done["sources"][0]
    assert src["kb"] == "hr" and len(src["passage_id"]) == 16
    p = client.get(f"/api/v1/passages/{src['passage_id']}", headers=auth(keys.hr_reader)).json()
    cite = done["answer"]["citations"][0]
    assert cite["text"] in p["text"] and p["doc"] == cite["doc"] == "員工請假辦法"
    assert p["section"] == cite["section"] and p["document_id"] == src["document_id"]
    assert p["before"] is not None  # the neighbouring passage, for context
    # Accept: text/event-stream also selects the stream.
    r2 = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "特休"},
        headers={**auth(keys.hr_reader), "Accept": "text/event-stream"},
    )
    assert _sse(r2.text)[-1]["type"] == "done"


def test_sources_link_the_cited_passage_not_the_first_with_its_text(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same sentence in two sections: the source is the chunk the citation came from
    (its hit), not the first chunk whose text contains the quote."""
    client, keys, _ = env
    h = auth(keys.admin)
    assert client.post("/api/v1/kbs", json={"name": "dup"}, headers=h).status_code == 201
    try:
        doc = (
            "# 假別\n\n## 婚假\n\n婚假八日。請於三日前提出申請。\n\n"
            "## 喪假\n\n喪假依親等給予三至八日。請於三日前提出申請。\n"
        )
        _upload(client, keys.admin, "dup", ("假別.md", doc.encode()))
        hits = client.post(
            "/api/v1/kbs/dup/search", json={"query": "請於三日前提出申請"}, headers=h
        ).json()["hits"]
        by_section = {x["section"]: x["passage_id"] for x in hits}
        assert len(by_section) == 2, by_section
        (second,) = [s for s in by_section if "喪假" in s]
        quote = "請於三日前提出申請。"

        def cite_second(
            self: Zhiku,
            question: str,
            kbs: Any = "default",
            k: int = 5,
            history: Any = None,
            where: Any = None,
        ) -> Any:
            hit = next(x for x in self.search(quote, kbs, k=10, where=where) if x.section == second)
            yield quote
            yield Answer(text=quote, citations=[Citation(hit=hit, text=quote)])

        monkeypatch.setattr(Zhiku, "iter_answer", cite_second)
        r = client.post(
            "/api/v1/kbs/dup/ask", json={"question": "喪假怎麼請？", "stream": True}, headers=h
        )
        done = _sse(r.text)[-1]
        assert done["answer"]["citations"][0]["section"] == second
        assert done["sources"][0]["passage_id"] == by_section[second]
        turn = client.get(f"/api/v1/conversations/{done['conversation_id']}", headers=h).json()[
            "turns"
        ][0]
        assert turn["sources"][0]["passage_id"] == by_section[second]
    finally:
        client.delete("/api/v1/kbs/dup", headers=h)


def test_conversation_history_reaches_the_engine(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, keys, _ = env
    seen: list[list[dict[str, str]]] = []
    original = Zhiku.iter_answer

    def spy(
        self: Zhiku,
        question: str,
        kbs: Any = "default",
        k: int = 5,
        history: Any = None,
        where: Any = None,
    ) -> Any:
        seen.append(list(history or []))
        return original(self, question, kbs, k=k, history=history, where=where)

    monkeypatch.setattr(Zhiku, "iter_answer", spy)
    h = auth(keys.hr_reader)
    first = client.post(
        "/api/v1/kbs/hr/ask", json={"question": "到職滿一年有幾天特休？"}, headers=h
    )
    conv = first.headers["x-conversation-id"]
    second = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "病假全年上限幾日？", "conversation_id": conv},
        headers=h,
    )
    assert second.headers["x-conversation-id"] == conv
    assert seen[0] == []
    assert seen[1] == [
        {"role": "user", "content": "到職滿一年有幾天特休？"},
        {"role": "assistant", "content": first.json()["answer"]},
    ]
    detail = client.get(f"/api/v1/conversations/{conv}", headers=h).json()
    assert [t["question"] for t in detail["turns"]] == [
        "到職滿一年有幾天特休？",
        "病假全年上限幾日？",
    ]
    assert detail["title"] == "到職滿一年有幾天特休？" and detail["kb"] == "hr"
    assert "七日" in seen[1][1]["content"]
    assert detail["turns"][1]["answer"] == second.json()
    listed = client.get("/api/v1/conversations?kb=hr", headers=h).json()["conversations"]
    assert listed[0]["id"] == conv
    # Someone else's conversation does not exist for you; a finance one cannot take hr turns.
    r = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "x", "conversation_id": conv},
        headers=auth(keys.hr_editor),
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found"
    fin = client.post(
        "/api/v1/conversations", json={"kb": "finance"}, headers=auth(keys.admin)
    ).json()
    r = client.post(
        "/api/v1/kbs/hr/ask",
        json={"question": "x", "conversation_id": fin["id"]},
        headers=auth(keys.admin),
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conversation_kb_mismatch"
    assert client.delete(f"/api/v1/conversations/{conv}", headers=h).status_code == 200
    assert client.get(f"/api/v1/conversations/{conv}", headers=h).status_code == 404


def test_feedback_on_an_answer(env: Any) -> None:
    client, keys, _ = env
    h = auth(keys.hr_reader)
    r = client.post("/api/v1/kbs/hr/ask", json={"question": "到職滿一年有幾天特休？"}, headers=h)
    aid, conv = r.headers["x-answer-id"], r.headers["x-conversation-id"]
    ok = client.post(
        f"/api/v1/answers/{aid}/feedback",
        json={"rating": "down", "comment": "缺少年資對照表"},
        headers=h,
    )
    assert ok.json() == {"answer_id": aid, "rating": "down", "comment": "缺少年資對照表"}
    client.post(f"/api/v1/answers/{aid}/feedback", json={"rating": "up"}, headers=h)
    turn = client.get(f"/api/v1/conversations/{conv}", headers=h).json()["turns"][0]
    assert turn["feedback"] == {"answer_id": aid, "rating": "up", "comment": ""}
    fb = client.get("/api/v1/feedback?kb=hr", headers=auth(keys.admin)).json()["feedback"]
    assert any(f["answer_id"] == aid and f["rating"] == "up" and f["user"] == "alice" for f in fb)
    bad = client.post(f"/api/v1/answers/{aid}/feedback", json={"rating": "meh"}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    other = client.post(
        f"/api/v1/answers/{aid}/feedback", json={"rating": "down"}, headers=auth(keys.hr_editor)
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "answer_not_found"


# --- users and keys ---------------------------------------------------------------------------


def test_users_and_keys_lifecycle(env: Any) -> None:
    client, keys, _ = env
    h = auth(keys.admin)
    user = client.post(
        "/api/v1/users", json={"name": "張三", "role": "editor", "kbs": ["hr"]}, headers=h
    )
    assert user.status_code == 201 and user.json()["kbs"] == ["hr"]
    uid = user.json()["id"]
    created = client.post("/api/v1/keys", json={"user": uid, "name": "erp"}, headers=h)
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    key = created.json()["key"]
    assert key.startswith("zk_") and created.json()["prefix"] in key
    listed = client.get("/api/v1/keys", headers=h).text
    assert key not in listed and key.split("_", 2)[2] not in listed  # shown once only
    assert client.get("/api/v1/me", headers=auth(key)).json()["role"] == "editor"
    client.patch(f"/api/v1/users/{uid}", json={"role": "reader"}, headers=h)
    assert client.get("/api/v1/me", headers=auth(key)).json()["role"] == "reader"
    client.put(f"/api/v1/users/{uid}/grants", json={"kbs": ["hr", "finance"]}, headers=h)
    assert client.get("/api/v1/me", headers=auth(key)).json()["kbs"] == ["finance", "hr"]
    client.patch(f"/api/v1/users/{uid}", json={"disabled": True}, headers=h)
    assert client.get("/api/v1/me", headers=auth(key)).status_code == 401
    client.patch(f"/api/v1/users/{uid}", json={"disabled": False}, headers=h)
    assert client.get("/api/v1/me", headers=auth(key)).status_code == 200
    client.delete(f"/api/v1/keys/{created.json()['id']}", headers=h)
    r = client.get("/api/v1/me", headers=auth(key))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.delete(f"/api/v1/users/{uid}", headers=h).json() == {"deleted": "張三"}
    dup = client.post("/api/v1/users", json={"name": "alice", "role": "reader"}, headers=h)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "user_exists"
    root = next(
        u for u in client.get("/api/v1/users", headers=h).json()["users"] if u["name"] == "root"
    )
    last = client.patch(f"/api/v1/users/{root['id']}", json={"role": "reader"}, headers=h)
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin"
    assert (
        client.post("/api/v1/users", json={"name": "x", "role": "god"}, headers=h).status_code
        == 422
    )


# --- audit, metrics, logs ---------------------------------------------------------------------


def test_audit_records_questions_masked_and_changes(env: Any) -> None:
    client, keys, home = env
    h = auth(keys.hr_reader)
    client.post("/api/v1/kbs/hr/ask", json={"question": "到職滿一年有幾天特休？"}, headers=h)
    client.post(
        "/api/v1/kbs/hr/ask", json={"question": "請問手機 0912-345-678 的員工特休幾天？"}, headers=h
    )
    entries = client.get("/api/v1/audit?action=ask&user=alice", headers=auth(keys.admin)).json()[
        "entries"
    ]
    masked, cited = entries[0], entries[1]  # newest first
    assert masked["kb"] == "hr" and masked["key"] == keys.hr_reader.split("_")[1]
    assert "0912-345-678" not in masked["detail"]["question"]
    assert "特休" in masked["detail"]["question"]
    assert cited["detail"]["question"] == "到職滿一年有幾天特休？"
    assert cited["detail"]["cited"] == [
        {"doc": "員工請假辦法", "path": cited["detail"]["cited"][0]["path"]}
    ]
    assert cited["detail"]["answer_id"] and cited["detail"]["refused"] is False
    actions = {
        x["action"]
        for x in client.get("/api/v1/audit?limit=1000", headers=auth(keys.admin)).json()["entries"]
    }
    assert {"ask", "search", "upload", "document_delete", "key_create"} <= actions
    # Exports: JSONL and CSV over the API and from the command line.
    lines = client.get("/api/v1/audit?format=jsonl&action=ask", headers=auth(keys.admin)).text
    assert all(json.loads(x)["action"] == "ask" for x in lines.strip().splitlines())
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/api/v1/audit?format=csv", headers=auth(keys.admin)).text)
        )
    )
    assert rows and set(rows[0]) == {
        "id",
        "ts",
        "user",
        "key",
        "action",
        "kb",
        "target",
        "detail",
        "ip",
    }
    res = CliRunner().invoke(
        cli_app, ["audit", "--action", "ask", "--user", "alice", "--home", str(home)]
    )
    assert res.exit_code == 0
    assert all("0912-345-678" not in ln for ln in res.stdout.splitlines())
    assert any("特休" in json.loads(ln)["detail"]["question"] for ln in res.stdout.splitlines())
    assert client.get("/api/v1/audit", headers=auth(keys.hr_reader)).status_code == 403


def test_audit_csv_cannot_inject_formulas(env: Any) -> None:
    client, keys, _ = env
    client.post(
        "/api/v1/users",
        json={"name": '=HYPERLINK("http://x")', "role": "reader"},
        headers=auth(keys.admin),
    )
    text = client.get("/api/v1/audit?format=csv&action=user_create", headers=auth(keys.admin)).text
    targets = [r["target"] for r in csv.DictReader(io.StringIO(text))]
    assert '\'=HYPERLINK("http://x")' in targets
    assert not any(t.startswith("=") for t in targets)


def test_metrics_endpoint(env: Any) -> None:
    client, keys, _ = env
    client.post("/api/v1/kbs/hr/ask", json={"question": "特休"}, headers=auth(keys.hr_reader))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(keys.hr_reader)).status_code == 403
    for h in (auth(keys.admin), auth("scrape-token")):
        text = client.get("/metrics", headers=h).text
        assert "# TYPE zhiku_http_requests_total counter" in text
        ask = 'route="/api/v1/kbs/{kb}/ask"'
        assert f'zhiku_http_requests_total{{method="POST",{ask},status="200"}}' in text
        assert f'zhiku_http_request_duration_seconds_bucket{{{ask},le="+Inf"}}' in text
        assert 'zhiku_ingest_jobs{status="queued"}' in text
        assert "zhiku_ingest_files_pending " in text
        assert 'zhiku_answers_total{refused="false",via="ask"}' in text


def test_one_json_log_line_per_request(env: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, keys, _ = env
    with caplog.at_level(logging.INFO, logger="zhiku.server.access"):
        r = client.post(
            "/api/v1/kbs/hr/search",
            json={"query": "病假"},
            headers={**auth(keys.hr_reader), "X-Request-ID": "req-42"},
        )
    assert r.headers["x-request-id"] == "req-42"
    recs = [x for x in caplog.records if x.name == "zhiku.server.access"]
    line = json.loads(JsonFormatter().format(recs[-1]))
    assert line["msg"] == "request" and line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == (
        "POST",
        "/api/v1/kbs/{kb}/search",
        200,
    )
    assert line["user"] == "alice" and isinstance(line["ms"], float)
    assert "病假" not in json.dumps(line, ensure_ascii=False)  # no query text in logs


def test_output_masking_covers_passages(env: Any) -> None:
    """A KB that stores raw text and masks on output: the passage endpoint masks too."""
    client, keys, _ = env
    h = auth(keys.admin)
    client.post("/api/v1/kbs", json={"name": "support"}, headers=h)
    client.put("/api/v1/kbs/support/policy", json={"mode": "output"}, headers=h)
    text = "客訴紀錄：客戶反映退貨太慢，聯絡手機 0912-345-678，已轉交物流組處理。"
    job = _upload(client, keys.admin, "support", ("客訴紀錄.txt", text.encode()))
    assert job["files"][0]["status"] == "added"
    r = client.post(
        "/api/v1/kbs/support/ask",
        json={"question": "客戶反映退貨太慢怎麼處理？", "stream": True},
        headers=h,
    )
    done = _sse(r.text)[-1]
    assert "0912-345-678" not in r.text
    pid = done["sources"][0]["passage_id"]
    assert pid  # found by place although the cited text is masked
    p = client.get(f"/api/v1/passages/{pid}", headers=h).json()
    assert "退貨" in p["text"] and "0912-345-678" not in p["text"]
    client.delete("/api/v1/kbs/support", headers=h)
