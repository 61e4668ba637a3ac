"""The access component's repositories behave the same on SQLite and on a real
PostgreSQL: groups (zhiku.storage.groups) and clearance, the access log, requests,
erasure records, retention periods, runs and purges (on rows of the core tables),
subject data reads and rewrites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.access import caller_groups, caller_scope, set_user_access
from zhiku.retention import run_retention, set_period
from zhiku.storage import migrate
from zhiku.storage.access import AccessRepository, RetentionData, SubjectData
from zhiku.storage.db import Database, connect


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    target = (
        str(tmp_path / "zhiku.db")
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    database = connect(target)
    migrate.apply(database)
    yield database
    database.close()


def _kb(db: Database, name: str) -> int:
    with db.tx():
        return int(
            db.execute(
                "INSERT INTO kbs(name, created_at, settings, secret) VALUES (?,?,?,?) RETURNING id",
                (name, "2026-01-01T00:00:00+00:00", "{}", b"k" * 32),
            ).fetchone()[0]
        )


def test_groups_and_clearance(db: Database) -> None:
    with db.tx():
        db.execute(
            "INSERT INTO users(name, role, created_at) VALUES ('hana', 'reader', ?)",
            ("2026-01-01T00:00:00+00:00",),
        )
    assert caller_scope(db, "hana").to_dict()["clearance"] == 0  # nothing set: public only
    set_user_access(db, "hana", ["HR", "hr", "Finance"], "機密")
    assert caller_groups(db, "hana") == frozenset({"hr", "finance"})
    assert caller_scope(db, "hana").clearance == 2
    set_user_access(db, "hana", [], None)
    assert caller_groups(db, "hana") == frozenset() and caller_scope(db, "hana").clearance == 2
    AccessRepository(db).forget_user("hana")
    assert caller_scope(db, "hana").clearance == 0


def test_access_log_requests_and_erasures(db: Database) -> None:
    repo = AccessRepository(db)
    repo.log_access(
        [
            {
                "user": "ivy",
                "kb": "hr",
                "chunk_id": 7,
                "document": "名冊",
                "kinds": ["mobile"],
                "masked": ["0912-***-678"],
                "via": "search",
                "at": "2026-01-02T00:00:00+00:00",
            },
            {
                "user": "sam",
                "kb": "hr",
                "chunk_id": 8,
                "document": "名冊",
                "kinds": ["tw_id"],
                "masked": ["A1******89"],
                "via": "ask",
                "at": "2026-03-01T00:00:00+00:00",
            },
        ]
    )
    assert [e.user for e in repo.access_log()] == ["ivy", "sam"]
    assert [e.user for e in repo.access_log(since="2026-02-01")] == ["sam"]
    assert [e.masked for e in repo.access_log(user="ivy")] == ["0912-***-678"]
    assert repo.purge_access_log("2026-02-01") == 1
    rid = repo.open_request("erase", "id:A1******89", "2026-01-01", "2026-01-31")
    assert [r.status for r in repo.requests(open_only=True)] == ["open"]
    repo.close_request(rid, "done", {"erased": {"chunk": 2}})
    assert repo.requests(open_only=True) == [] and repo.requests()[0].result["erased"] == {
        "chunk": 2
    }
    eid = repo.record_erasure(rid, "root", {"chunk": 2})
    assert repo.erasures() == [
        {
            "id": eid,
            "request_id": rid,
            "at": repo.erasures()[0]["at"],
            "actor": "root",
            "counts": {"chunk": 2},
        }
    ]


def test_retention_purges_only_what_is_past_its_period(db: Database, tmp_path: Path) -> None:
    hr, fin = _kb(db, "hr"), _kb(db, "finance")
    with db.tx():
        uid = db.execute(
            "INSERT INTO users(name, role, created_at) VALUES ('u','reader','x') RETURNING id"
        ).fetchone()[0]
        for cid, kb, ts in (
            ("old-hr", hr, "2020-01-01"),
            ("new-hr", hr, "2099-01-01"),
            ("old-fin", fin, "2020-01-01"),
        ):
            db.execute(
                "INSERT INTO conversations(id, user_id, kb_id, title, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?)",
                (cid, uid, kb, "t", ts, ts),
            )
            db.execute(
                "INSERT INTO messages(id, conversation_id, seq, question, answer, "
                "created_at) VALUES (?,?,1,'q','{}',?)",
                (f"m-{cid}", cid, ts),
            )
            db.execute(
                "INSERT INTO feedback(answer_id, user_id, rating, comment, created_at) "
                "VALUES (?,?,1,'',?)",
                (f"m-{cid}", uid, ts),
            )
        for kb, ts in (("hr", "2020-01-01"), (None, "2020-01-01"), ("hr", "2099-01-01")):
            db.execute(
                "INSERT INTO audit(ts, action, kb, detail) VALUES (?,?,?,'{}')", (ts, "ask", kb)
            )
    set_period(db, "conversations", 30, kb="hr")  # finance has no period: kept
    set_period(db, "audit", 365)
    result = run_retention(db, None, "test")
    assert result["purged"]["conversations"] == 1 and result["purged"]["audit"] == 2
    left = {r[0] for r in db.execute("SELECT id FROM conversations")}
    assert left == {"new-hr", "old-fin"}
    assert {r[0] for r in db.execute("SELECT answer_id FROM feedback")} == {"m-new-hr", "m-old-fin"}
    assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 1
    runs = AccessRepository(db).retention_runs()
    assert runs[0]["counts"]["purged"]["conversations"] == 1 and runs[0]["actor"] == "test"
    assert RetentionData(db).purge_feedback("2030-01-01") == 1  # old-fin's


def test_subject_data_rewrites_queue_reindexing(db: Database) -> None:
    kb = _kb(db, "hr")
    with db.tx():
        did = db.execute(
            "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, meta, added_at,"
            " updated_at) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
            (kb, "/a.md", "王小明", "md", "h", 1, "{}", "x", "x"),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO chunks(doc_id, ord, text, char_start, char_end) "
            "VALUES (?,0,'王小明 A123456789',0,1)",
            (did,),
        )
    data = SubjectData(db)
    ((cid, doc, kbname, path, text),) = list(data.chunks())
    assert (doc, kbname, path) == (did, "hr", "/a.md") and "A123456789" in text
    moved = data.set_chunk_texts({cid: "王小明 〔身分證字號〕"})
    data.set_document_fields({did: ("〔姓名〕", "{}")})
    # A new id: the vectors, keyed by chunk id, drop the old embedding and embed the new.
    assert list(moved) == [cid] and moved[cid] != cid
    assert [(r[0], r[4]) for r in data.chunks()] == [(moved[cid], "王小明 〔身分證字號〕")]
    assert data.documents()[0][3] == "〔姓名〕"
    queued = {int(r[0]) for r in db.execute("SELECT doc_id FROM index_log")}
    assert did in queued


def test_subject_data_reads_and_rewrites_hand_off_cases(db: Database) -> None:
    from zhiku.storage.loop import SqlLoopRepository

    kb = _kb(db, "hr")
    ts = "2026-01-01T00:00:00+00:00"
    with db.tx():
        uid = db.execute(
            "INSERT INTO users(name, role, created_at) VALUES ('agnes', 'reader', ?) RETURNING id",
            (ts,),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO conversations(id, user_id, kb_id, title, created_at, updated_at)"
            " VALUES ('c1', ?, ?, '', ?, ?)",
            (uid, kb, ts, ts),
        )
    loop = SqlLoopRepository(db)
    case, _ = loop.open_case("c1", kb, None, "asked", "王小明 0912345678 的分機？")
    note = loop.add_entry(case, uid, "agnes", "note", "來電者 0912345678")
    data = SubjectData(db)
    assert data.cases() == [(case, "hr", "王小明 0912345678 的分機？")]
    assert (note["id"], "hr", "來電者 0912345678") in data.case_entries()
    data.set_case_questions({case: "王小明 〔手機號碼〕 的分機？"})
    data.set_case_entries({note["id"]: "來電者 〔手機號碼〕"})
    assert data.cases()[0][2] == "王小明 〔手機號碼〕 的分機？"
    assert [b for i, _, b in data.case_entries() if i == note["id"]] == ["來電者 〔手機號碼〕"]
    assert data.curated() == [] and data.webhook_payloads() == []
