"""Department-level access in one mixed knowledge base: every user × every endpoint,
with a canary string in each document's title and body; a caller must get every
document their groups and clearance allow, and not one byte of any other — not a
title, not a count, not a passage by id, not a different error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import auth
from zhiku.access import set_user_access
from zhiku.engine import Zhiku
from zhiku.filters import parse_meta_args
from zhiku.ingest import ingest_paths
from zhiku.server import accounts
from zhiku.server.app import create_app
from zhiku.server.ids import IdCodec
from zhiku.server.settings import ServerSettings
from zhiku.store import Store

# name: (title canary, body canary, labels)
DOCS: dict[str, tuple[str, str, list[str]]] = {
    "pub": ("公開餐廳公告", "PUBCANARY1111", []),
    "int": ("內部分機名冊", "INTCANARY2222", ["access_level=內部"]),
    "hrc": ("人事考核辦法", "HRCANARY3333", ["access_groups=hr", "access_level=機密"]),
    "fin": ("財務簽核流程", "FINCANARY4444", ["access_groups=finance", "access_level=internal"]),
    "sec": ("併購專案密件", "SECCANARY5555", ["access_groups=hr,finance", "access_level=密"]),
}
# user: (groups, clearance, the documents they may see)
USERS: dict[str, tuple[list[str], str, set[str]]] = {
    "pat": ([], "公開", {"pub"}),
    "ivy": ([], "內部", {"pub", "int"}),
    "hana": (["hr"], "機密", {"pub", "int", "hrc"}),
    "hank": (["hr"], "內部", {"pub", "int"}),
    "finn": (["finance"], "內部", {"pub", "int", "fin"}),
    "sam": (["hr", "finance"], "密", set(DOCS)),
    "olga": (["legal"], "密", {"pub", "int"}),
}
QUERY = "年度計畫預算審查"


def _body(name: str) -> str:
    title, canary, _ = DOCS[name]
    return (
        f"# {title}\n\n## 說明\n\n本文件說明年度計畫預算審查的程序，識別碼 {canary}。"
        f"年度計畫預算審查由各單位於每年十月提出。\n"
    )


@pytest.fixture(scope="module", params=["embedded", "milvus"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The mixed KB on each index deployment: the embedded index, and Milvus (Milvus
    Lite, the API a Milvus cluster speaks) beside the same store."""
    root = tmp_path_factory.mktemp("access")
    home, src = root / "home", root / "src"
    src.mkdir()
    keys: dict[str, str] = {}
    with Zhiku(home) as zk:
        if request.param == "milvus":
            zk.kb("mixed", create=True)
            zk.store.update_kb_settings(
                "mixed", {"index": {"backend": "milvus", "uri": str(root / "milvus.db")}}
            )
        for name, (_, _, labels) in DOCS.items():
            path = src / f"{name}.md"
            path.write_text(_body(name), "utf-8")
            ingest_paths(zk, [path], "mixed", meta=parse_meta_args(labels))
        s = zk.store
        accounts.create_user(s, "root", "admin")
        keys["root"] = accounts.create_key(s, "root")[0]
        for user, (groups, level, _) in USERS.items():
            accounts.create_user(s, user, "reader", ["mixed"])
            set_user_access(s.database, user, groups, level)
            keys[user] = accounts.create_key(s, user)[0]
        accounts.create_user(s, "eddie", "editor", ["mixed"])
        set_user_access(s.database, "eddie", ["hr"], "機密")
        keys["eddie"] = accounts.create_key(s, "eddie")[0]
        set_user_access(s.database, "root", ["hr", "finance"], "密")
        chunks = {
            name: [
                r[0]
                for r in s.db.execute(
                    "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id "
                    "WHERE d.path LIKE ?",
                    (f"%{name}.md",),
                )
            ]
            for name in DOCS
        }
        doc_ids = {
            name: s.db.execute(
                "SELECT id FROM documents WHERE path LIKE ?", (f"%{name}.md",)
            ).fetchone()[0]
            for name in DOCS
        }
        codec = IdCodec.for_store(s)
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        yield {
            "client": client,
            "keys": keys,
            "home": home,
            "codec": codec,
            "chunks": chunks,
            "doc_ids": doc_ids,
            "backend": request.param,
        }


def _calls() -> list[tuple[str, str, dict[str, Any]]]:
    chat = {"model": "mixed", "messages": [{"role": "user", "content": QUERY}]}
    return [
        ("GET", "/api/v1/kbs", {}),
        ("GET", "/api/v1/kbs/mixed", {}),
        ("GET", "/api/v1/kbs/mixed/documents", {}),
        ("POST", "/api/v1/kbs/mixed/search", {"json": {"query": QUERY, "k": 20}}),
        ("POST", "/api/v1/search", {"json": {"query": QUERY, "k": 20}}),
        ("POST", "/api/v1/kbs/mixed/ask", {"json": {"question": QUERY + "的程序？"}}),
        ("POST", "/api/v1/kbs/mixed/ask", {"json": {"question": QUERY, "stream": True}}),
        ("POST", "/v1/chat/completions", {"json": chat}),
        ("POST", "/v1/chat/completions", {"json": {**chat, "stream": True}}),
        ("GET", "/api/v1/conversations", {}),
    ]


def _err(r: Any) -> tuple[int, dict[str, Any]]:
    """Status and error body without the request id: what a prober can compare."""
    err = dict(r.json()["error"])
    err.pop("request_id", None)
    return r.status_code, err


def _canaries(names: set[str]) -> list[str]:
    return [s for n in names for s in DOCS[n][:2]]


def test_every_user_on_every_endpoint_sees_exactly_what_they_may(env: Any) -> None:
    client = env["client"]
    leaks: list[str] = []
    for user, (_, _, visible) in USERS.items():
        h = auth(env["keys"][user])
        hidden = set(DOCS) - visible
        for method, url, kw in _calls():
            r = client.request(method, url, headers=h, **kw)
            assert r.status_code in (200, 201), (user, url, r.text)
            leaks += [f"{user} {method} {url}: {c}" for c in _canaries(hidden) if c in r.text]
        # What they may see is really there (the matrix can fail the other way too).
        r = client.post("/api/v1/kbs/mixed/search", json={"query": QUERY, "k": 20}, headers=h)
        assert {hit["doc"] for hit in r.json()["hits"]} == {DOCS[n][0] for n in visible}, user
        docs = client.get("/api/v1/kbs/mixed/documents", headers=h).json()["documents"]
        assert sorted(d["title"] for d in docs) == sorted(DOCS[n][0] for n in visible)
        info = client.get("/api/v1/kbs/mixed", headers=h).json()
        assert info["documents"] == len(visible)
        assert info["chunks"] == sum(len(env["chunks"][n]) for n in visible)
        listed = client.get("/api/v1/kbs", headers=h).json()["kbs"]
        assert [k["documents"] for k in listed] == [len(visible)]
    assert leaks == []


def test_a_hidden_passage_or_document_is_the_same_404_as_none(env: Any) -> None:
    client, codec = env["client"], env["codec"]
    missing = codec.encode("p", 10**9)
    for user, (_, _, visible) in USERS.items():
        h = auth(env["keys"][user])
        none = client.get(f"/api/v1/passages/{missing}", headers=h)
        assert none.status_code == 404
        for name in DOCS:
            for cid in env["chunks"][name]:
                r = client.get(f"/api/v1/passages/{codec.encode('p', cid)}", headers=h)
                if name in visible:
                    assert r.status_code == 200 and DOCS[name][1] in r.json()["text"]
                else:
                    assert _err(r) == _err(none), (user, name)
    # An editor cannot touch (or learn of) a document above their scope either.
    h = auth(env["keys"]["eddie"])
    ghost = codec.encode("d", 10**9)
    base = client.patch(
        f"/api/v1/kbs/mixed/documents/{ghost}", json={"meta": {"dept": "x"}}, headers=h
    )
    assert base.status_code == 404
    for name in ("fin", "sec"):
        doc = codec.encode("d", env["doc_ids"][name])
        for method, suffix, kw in (
            ("PATCH", "", {"json": {"meta": {"dept": "x"}}}),
            ("DELETE", "", {}),
            ("POST", "/reingest", {}),
        ):
            r = client.request(
                method, f"/api/v1/kbs/mixed/documents/{doc}{suffix}", headers=h, **kw
            )
            assert _err(r) == _err(base), (name, method)
    with _store(env) as s:  # nothing was deleted
        assert sum(d.path.endswith(("fin.md", "sec.md")) for d in s.list_documents("mixed")) == 2


def _store(env: Any) -> Any:
    from contextlib import closing

    return closing(Store(env["home"] / "zhiku.db"))


def test_relabelling_takes_effect_on_the_next_query_and_withholds_stored_answers(env: Any) -> None:
    client, codec = env["client"], env["codec"]
    h = auth(env["keys"]["hana"])
    r = client.post(
        "/api/v1/kbs/mixed/ask", json={"question": "人事考核辦法的年度計畫預算審查？"}, headers=h
    )
    conv = r.headers["x-conversation-id"]
    assert "HRCANARY3333" in r.text or any(
        s["document_id"] == codec.encode("d", env["doc_ids"]["hrc"]) for s in r.json()["sources"]
    )
    assert "HRCANARY3333" in client.get(f"/api/v1/conversations/{conv}", headers=h).text
    # An editor of finance-and-hr (root, admin) moves the document to finance only.
    doc = codec.encode("d", env["doc_ids"]["hrc"])
    r = client.patch(
        f"/api/v1/kbs/mixed/documents/{doc}",
        headers=auth(env["keys"]["root"]),
        json={"meta": {"access_groups": "finance"}},
    )
    assert r.status_code == 200 and r.json()["meta"]["access_groups"] == ["finance"]
    try:
        search = client.post(
            "/api/v1/kbs/mixed/search", json={"query": QUERY, "k": 20}, headers=h
        ).text
        assert "HRCANARY3333" not in search and "人事考核辦法" not in search
        detail = client.get(f"/api/v1/conversations/{conv}", headers=h)
        assert detail.status_code == 200
        assert "HRCANARY3333" not in detail.text and "人事考核" not in json.dumps(
            detail.json()["turns"][0]["answer"], ensure_ascii=False
        )
        assert all(
            s.get("redacted") and s["document_id"] is None
            for s in detail.json()["turns"][0]["sources"]
        )
        assert {c["doc"] for c in detail.json()["turns"][0]["answer"]["citations"]} == {
            "（無權限檢視的文件）"
        }
        # Finance at 機密 now sees it (sam sees everything anyway).
        assert (
            "HRCANARY3333"
            in client.post(
                "/api/v1/kbs/mixed/search",
                json={"query": QUERY, "k": 20},
                headers=auth(env["keys"]["sam"]),
            ).text
        )
    finally:
        client.patch(
            f"/api/v1/kbs/mixed/documents/{doc}",
            headers=auth(env["keys"]["root"]),
            json={"meta": {"access_groups": "hr"}},
        )


def test_the_lexical_and_vector_queries_themselves_exclude_what_is_hidden(env: Any) -> None:
    """Not a post-filter: the index query returns only allowed chunks, so k hits are k
    allowed hits even when hidden documents rank higher."""
    from zhiku.access import AccessScope
    from zhiku.filters import Filter

    with Zhiku(env["home"]) as zk:
        kb = zk.kb("mixed")
        on_milvus = type(zk.index(kb)).__name__ == "MilvusLexicalIndex"
        assert on_milvus == (env["backend"] == "milvus")
        tokens = zk.query_terms(QUERY + " SECCANARY5555", kb)
        scope = AccessScope("hank", frozenset({"hr"}), 1)
        found = zk.index(kb).search(tokens, k=1, where=scope.restrict(Filter()))
        everything = zk.index(kb).search(tokens, k=1)
        allowed = {c for n in ("pub", "int") for c in env["chunks"][n]}
        assert everything[0][0] in env["chunks"]["sec"]  # the hidden one ranks first…
        assert len(found) == 1 and found[0][0] in allowed  # …and is not even scored
        assert zk.store.filtered_chunk_ids([kb.id], scope.restrict(Filter())) == allowed


def test_labels_set_at_upload_and_by_a_source_rule(env: Any, tmp_path: Path) -> None:
    from tests.server_util import wait_job
    from zhiku.sources.registry import add_source, run_source

    client, keys = env["client"], env["keys"]
    body = "# 上傳機密\n\n年度計畫預算審查附件 UPLOADCANARY6666。\n".encode()
    r = client.post(
        "/api/v1/kbs/mixed/documents",
        headers=auth(keys["eddie"]),
        files=[("files", ("附件.md", body))],
        data={"meta": json.dumps({"access_groups": ["hr"], "access_level": "機密"})},
    )
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["id"], keys["eddie"])["status"] == "done"
    folder = tmp_path / "finance-share"
    folder.mkdir()
    (folder / "簽呈.md").write_text(
        "# 財務簽呈\n\n年度計畫預算審查簽呈 SOURCECANARY7777。\n", "utf-8"
    )
    with Zhiku(env["home"]) as zk:
        src = add_source(
            zk,
            "mixed",
            "finance-share",
            str(folder),
            settings={"meta": parse_meta_args(["access_groups=finance", "access_level=內部"])},
        )
        assert run_source(zk, src["id"])["last_status"] == "ok"
    seen = {}
    for user in ("hana", "finn", "pat", "sam"):
        seen[user] = client.post(
            "/api/v1/kbs/mixed/search", json={"query": QUERY, "k": 20}, headers=auth(keys[user])
        ).text
    assert "UPLOADCANARY6666" in seen["hana"] and "SOURCECANARY7777" not in seen["hana"]
    assert "SOURCECANARY7777" in seen["finn"] and "UPLOADCANARY6666" not in seen["finn"]
    assert "UPLOADCANARY" not in seen["pat"] and "SOURCECANARY" not in seen["pat"]
    assert "UPLOADCANARY6666" in seen["sam"] and "SOURCECANARY7777" in seen["sam"]


def _documents_text(value: Any) -> str:
    """A response without the fields a person typed (questions, conversation titles):
    what is left came from the documents (answers, citations, sources)."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("question", "title")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(value), ensure_ascii=False)


def test_cases_and_the_feedback_list_redact_what_the_viewer_may_not_see(env: Any) -> None:
    """sam (who sees everything) asks about every document, rates each answer and hands
    the conversation off; agents and an administrator with narrower scopes read the
    case and the feedback list: a citation of a document they may not see is redacted
    (no title, no passage), the answer built from it withheld, the rest intact."""
    client, keys = env["client"], env["keys"]
    with _store(env) as s:
        accounts.create_user(s, "ada", "admin")
        keys["ada"] = accounts.create_key(s, "ada")[0]
        set_user_access(s.database, "ada", [], "內部")
        accounts.create_user(s, "sid", "admin")  # no groups, 公開: sees only pub
        keys["sid"] = accounts.create_key(s, "sid")[0]
    scopes = {
        "ada": {"pub", "int"},
        "sid": {"pub"},
        "root": set(DOCS),
        "hana": USERS["hana"][2],
        "hank": USERS["hank"][2],
    }
    root, sam = auth(keys["root"]), auth(keys["sam"])
    r = client.post("/api/v1/departments", json={"name": "稽核"}, headers=root)
    assert r.status_code == 201
    for agent in ("hana", "hank"):
        assert (
            client.post(
                "/api/v1/departments/稽核/members", json={"user": agent}, headers=root
            ).status_code
            == 201
        )
    conv = None
    cited: dict[str, str] = {}
    for name, (title, _, _) in DOCS.items():
        body: dict[str, Any] = {"question": f"{title}的年度計畫預算審查？"}
        if conv:
            body["conversation_id"] = conv
        r = client.post("/api/v1/kbs/mixed/ask", json=body, headers=sam)
        assert r.status_code == 200, r.text
        conv = r.headers["x-conversation-id"]
        assert title in {c["doc"] for c in r.json()["citations"]}, name  # it cites its document
        cited[name] = r.headers["x-answer-id"]
        assert (
            client.post(
                f"/api/v1/answers/{cited[name]}/feedback",
                json={"rating": "down", "comment": "請補充"},
                headers=sam,
            ).status_code
            == 200
        )
    r = client.post(
        f"/api/v1/conversations/{conv}/handoff", json={"department": "稽核"}, headers=sam
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    redacted = "（無權限檢視的文件）"
    leaks: list[str] = []
    for viewer, visible in scopes.items():
        h = auth(keys[viewer])
        hidden = set(DOCS) - visible
        case = client.get(f"/api/v1/cases/{case_id}", headers=h)
        assert case.status_code == 200, (viewer, case.text)
        inbox = client.get("/api/v1/inbox", headers=h).json()["cases"]
        assert [c["id"] for c in inbox if c["id"] == case_id] == [case_id]
        texts = {"case": _documents_text(case.json()), "inbox": _documents_text(inbox)}
        if viewer in ("ada", "sid", "root"):
            fb = client.get("/api/v1/feedback?kb=mixed", headers=h)
            assert fb.status_code == 200, fb.text
            texts["feedback"] = _documents_text(fb.json())
        for where, text in texts.items():
            leaks += [f"{viewer} {where}: {c}" for c in _canaries(hidden) if c in text]
        # What they may see is there; what they may not is a redacted citation.
        turns = case.json()["turns"]
        for name, turn in zip(DOCS, turns, strict=False):
            cites = turn["answer"]["citations"]
            if name in visible:
                assert DOCS[name][0] in {c["doc"] for c in cites}, (viewer, name)
                assert not turn["answer"].get("refused"), (viewer, name)
            else:
                assert redacted in {c["doc"] for c in cites}, (viewer, name)
                assert all(
                    s.get("document_id") is None
                    for s, c in zip(turn["sources"], cites, strict=True)
                    if c.get("redacted")
                ), (viewer, name)
        if "feedback" in texts:
            rows = {
                f["answer_id"]: f
                for f in client.get("/api/v1/feedback?kb=mixed", headers=h).json()["feedback"]
            }
            for name, answer_id in cited.items():
                docs_shown = {c["doc"] for c in rows[answer_id]["answer"]["citations"]}
                assert (DOCS[name][0] in docs_shown) == (name in visible), (viewer, name)
                assert (redacted in docs_shown) == (name not in visible), (viewer, name)
    assert leaks == []
