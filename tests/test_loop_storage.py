"""The service loop's repository: the same behaviour on SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.storage import migrate
from zhiku.storage.db import Database, connect
from zhiku.storage.loop import Citation, SqlLoopRepository


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "zhiku.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(target: str) -> Iterator[Database]:
    database = connect(target)
    migrate.apply(database)
    ts = "2026-11-20T00:00:00+00:00"
    kb = database.execute("INSERT INTO kbs(name, created_at, secret) VALUES ('hr', ?, ?) "
                          "RETURNING id", (ts, b"k")).fetchone()[0]
    for name in ("amy", "bob"):
        database.execute("INSERT INTO users(name, role, created_at) VALUES (?, 'reader', ?)",
                         (name, ts))
    for d in (1, 2):
        database.execute(
            "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, added_at, "
            "updated_at) VALUES (?, ?, ?, 'txt', 'h', 1, ?, ?)", (kb, f"d{d}.txt", f"文件{d}",
                                                                  ts, ts))
    database.execute("INSERT INTO conversations(id, user_id, kb_id, title, created_at, "
                     "updated_at) VALUES ('c1', 1, ?, 't', ?, ?)", (kb, ts, ts))
    for i in range(1, 6):
        database.execute("INSERT INTO messages(id, conversation_id, seq, question, answer, "
                         "created_at) VALUES (?, 'c1', ?, 'q', '{}', ?)", (f"m{i}", i, ts))
    yield database
    database.close()


def test_departments_and_membership(db: Database) -> None:
    r = SqlLoopRepository(db)
    after_sales = r.create_department("售後服務")
    assert r.create_department("售後服務") == after_sales  # idempotent
    store = r.create_department("門市")
    r.add_member(after_sales, 2)
    r.add_member(after_sales, 2)
    assert r.departments_of(2) == [after_sales]
    assert r.departments_of(1) == []
    assert {d["name"]: d["members"] for d in r.list_departments()} == {
        "售後服務": ["bob"], "門市": []}
    assert r.remove_member(after_sales, 2) and not r.remove_member(after_sales, 2)
    assert r.department_id("門市") == store and r.department_id("x") is None


def test_case_lifecycle_and_visibility_by_department(db: Database) -> None:
    r = SqlLoopRepository(db)
    a, b = r.create_department("A"), r.create_department("B")
    case, created = r.open_case("c1", 1, a, "asked", "我要轉真人")
    assert created
    assert r.open_case("c1", 1, b, "refused", "again") == (case, False)  # one open per conversation
    assert [c["id"] for c in r.list_cases([a])] == [case]
    assert r.list_cases([b]) == []
    assert [c["id"] for c in r.list_cases(None, "open")] == [case]
    r.add_entry(case, 2, "bob", "note", "內部備註")
    assert r.get_case(case)["first_reply_at"] is None  # a note is not a reply
    r.add_entry(case, 2, "bob", "reply", "您好，我來協助您")
    first = r.get_case(case)["first_reply_at"]
    assert first is not None
    r.add_entry(case, 2, "bob", "reply", "第二則")
    assert r.get_case(case)["first_reply_at"] == first
    assert [x["body"] for x in r.replies_of_conversation("c1")] == ["您好，我來協助您", "第二則"]
    assert [x["kind"] for x in r.entries(case)] == ["note", "reply", "reply"]
    r.assign(case, 2, b)  # handed to team B, to bob
    got = r.get_case(case)
    assert (got["assignee"], got["department"]) == ("bob", "B")
    r.set_status(case, "resolved")
    assert r.get_case(case)["resolved_at"] and r.open_case_of("c1") is None
    assert r.list_cases(None, "open") == []
    r.set_status(case, "open")
    assert r.get_case(case)["resolved_at"] is None and r.open_case_of("c1")["id"] == case
    with pytest.raises(ValueError):
        r.set_status(case, "closed")


def _record(r: SqlLoopRepository, i: int, outcome: str, at: str, hour: int, ms: int,
            cites: list[Citation], key: str = "k") -> None:
    r.record_answer(f"m{i}", "c1", 1, "web", outcome, f"問題{i}", key, ms, at[:10], hour,
                    cites, created_at=at)


def test_aggregates(db: Database) -> None:
    r = SqlLoopRepository(db)
    _record(r, 1, "answered", "2026-11-28T01:00:00+00:00", 9, 100, [Citation(1, 11)])
    _record(r, 2, "answered", "2026-11-28T02:00:00+00:00", 9, 300, [Citation(1, 12),
                                                                     Citation(None, 99)])
    _record(r, 3, "refused", "2026-11-29T03:00:00+00:00", 11, 200, [])
    _record(r, 4, "handoff", "2026-11-29T04:00:00+00:00", 12, 0, [])
    _record(r, 5, "answered", "2026-10-01T04:00:00+00:00", 12, 0, [Citation(2, 21)])  # too old
    db.execute("INSERT INTO feedback(answer_id, user_id, rating, created_at) "
               "VALUES ('m2', 1, -1, 'x'), ('m1', 1, 1, 'x')")
    since = "2026-11-27T00:00:00+00:00"
    t = r.totals([1], since)
    assert (t["questions"], t["answered"], t["refused"], t["handoff"]) == (4, 2, 1, 1)
    assert (t["thumbs_up"], t["thumbs_down"], t["conversations"]) == (1, 1, 1)
    assert t["answer_ms_avg"] == 150.0 and t["answer_ms_max"] == 300
    assert [(d["day"], d["questions"]) for d in r.per_day([1], since)] == [
        ("2026-11-28", 2), ("2026-11-29", 2)]
    assert r.busiest_hours([1], since) == [{"hour": 9, "questions": 2},
                                           {"hour": 11, "questions": 1},
                                           {"hour": 12, "questions": 1}]
    assert [(d["title"], d["citations"]) for d in r.most_cited([1], since)] == [("文件1", 2)]
    n, never = r.never_cited([1], since)
    assert n == 1 and never[0]["title"] == "文件2"  # cited only before the period
    gaps = r.gap_questions([1], since)
    assert sorted(g["message_id"] for g in gaps) == ["m2", "m3", "m4"]  # 👎, refused, hand-off
    assert r.totals([], since)["questions"] == 0


def test_handoff_times_and_refusal_split(db: Database) -> None:
    r = SqlLoopRepository(db)
    case, _ = r.open_case("c1", 1, None, "refused", "q")
    db.execute("UPDATE handoff_cases SET created_at=?, first_reply_at=?, resolved_at=? "
               "WHERE id=?", ("2026-11-28T01:00:00+00:00", "2026-11-28T01:02:00+00:00",
                              "2026-11-28T02:00:00+00:00", case))
    h = r.handoff_times([1], "2026-11-27T00:00:00+00:00")
    assert h["cases"] == 1 and h["first_reply_s_avg"] == pytest.approx(120.0)
    assert h["resolution_s_avg"] == pytest.approx(3600.0)
    _record(r, 1, "refused", "2026-11-20T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 2, "refused", "2026-11-21T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 3, "answered", "2026-11-25T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 4, "refused", "2026-11-25T01:00:00+00:00", 9, 1, [], key="別的")
    split = r.refusal_split(1, ["退貨"], "2026-11-22T00:00:00+00:00")
    assert split == {"before": {"asked": 2, "unanswered": 2},
                     "after": {"asked": 1, "unanswered": 0}}


def test_curated_entries(db: Database) -> None:
    r = SqlLoopRepository(db)
    e = r.add_curated(1, 1, "curated/a.faq", "退貨期限？", "七天內", ["退貨期限？", "可以退貨嗎"],
                      ["m1"], "erin")
    again = r.add_curated(1, 2, "curated/a.faq", "退貨期限？", "十天內", ["退貨期限？"], [], "erin")
    assert again == e
    [got] = r.list_curated([1])
    assert (got["answer"], got["doc_id"], got["questions"]) == ("十天內", 2, ["退貨期限？"])
    assert r.list_curated([]) == []


def test_conversation_reads_and_rename(db: Database) -> None:
    r = SqlLoopRepository(db)
    assert r.conversation_of("c1", 1) == {"id": "c1", "kb_id": 1, "kb": "hr", "title": "t"}
    assert r.conversation_of("c1", 2) is None  # another user's
    assert r.last_question("c1") == "q" and r.last_question("nope") is None
    assert r.rename_conversation("c1", 1, "新標題") and not r.rename_conversation("c1", 2, "x")
    assert r.conversation_of("c1", 1)["title"] == "新標題"
    db.execute("INSERT INTO feedback(answer_id, user_id, rating, created_at) "
               "VALUES ('m3', 1, 1, 'x')")
    turns = r.conversation_turns("c1")
    assert [t["answer_id"] for t in turns] == ["m1", "m2", "m3", "m4", "m5"]
    assert [t["rating"] for t in turns][2] == 1 and turns[0]["stored"] == {}
    assert r.approved_turns(1)[0]["message_id"] == "m3"
