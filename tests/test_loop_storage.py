"""The service loop's repositories (loop, pins): the same behaviour on SQLite and a real
PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zhiku.access import AccessScope
from zhiku.loop.report import local_day_hour, rollup_split
from zhiku.storage import migrate
from zhiku.storage.db import Database, connect
from zhiku.storage.loop import Citation, Split, SqlLoopRepository
from zhiku.storage.pins import SqlPins


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
    kb = database.execute(
        "INSERT INTO kbs(name, created_at, secret) VALUES ('hr', ?, ?) RETURNING id", (ts, b"k")
    ).fetchone()[0]
    for name in ("amy", "bob"):
        database.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, 'reader', ?)", (name, ts)
        )
    for d in (1, 2):
        database.execute(
            "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, added_at, "
            "updated_at) VALUES (?, ?, ?, 'txt', 'h', 1, ?, ?)",
            (kb, f"d{d}.txt", f"文件{d}", ts, ts),
        )
    database.execute(
        "INSERT INTO conversations(id, user_id, kb_id, title, created_at, "
        "updated_at) VALUES ('c1', 1, ?, 't', ?, ?)",
        (kb, ts, ts),
    )
    for i in range(1, 6):
        database.execute(
            "INSERT INTO messages(id, conversation_id, seq, question, answer, "
            "created_at) VALUES (?, 'c1', ?, 'q', '{}', ?)",
            (f"m{i}", i, ts),
        )
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
        "售後服務": ["bob"],
        "門市": [],
    }
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


def _record(
    r: SqlLoopRepository,
    i: int,
    outcome: str,
    at: str,
    hour: int,
    ms: int,
    cites: list[Citation],
    key: str = "k",
) -> None:
    r.record_answer(
        f"m{i}", "c1", 1, "web", outcome, f"問題{i}", key, ms, at[:10], hour, cites, created_at=at
    )


def test_aggregates(db: Database) -> None:
    r = SqlLoopRepository(db)
    _record(r, 1, "answered", "2026-11-28T01:00:00+00:00", 9, 100, [Citation(1, 11)])
    _record(
        r, 2, "answered", "2026-11-28T02:00:00+00:00", 9, 300, [Citation(1, 12), Citation(None, 99)]
    )
    _record(r, 3, "refused", "2026-11-29T03:00:00+00:00", 11, 200, [])
    _record(r, 4, "handoff", "2026-11-29T04:00:00+00:00", 12, 0, [])
    _record(r, 5, "answered", "2026-10-01T04:00:00+00:00", 12, 0, [Citation(2, 21)])  # too old
    db.execute(
        "INSERT INTO feedback(answer_id, user_id, rating, created_at) "
        "VALUES ('m2', 1, -1, 'x'), ('m1', 1, 1, 'x')"
    )
    since = "2026-11-27T00:00:00+00:00"
    t = r.totals([1], since)
    assert (t["questions"], t["answered"], t["refused"], t["handoff"]) == (4, 2, 1, 1)
    assert (t["thumbs_up"], t["thumbs_down"], t["conversations"]) == (1, 1, 1)
    assert t["answer_ms_avg"] == 150.0 and t["answer_ms_max"] == 300
    assert [(d["day"], d["questions"]) for d in r.per_day([1], since)] == [
        ("2026-11-28", 2),
        ("2026-11-29", 2),
    ]
    assert r.busiest_hours([1], since) == [
        {"hour": 9, "questions": 2},
        {"hour": 11, "questions": 1},
        {"hour": 12, "questions": 1},
    ]
    assert [(d["title"], d["citations"]) for d in r.most_cited([1], since)] == [("文件1", 2)]
    n, never = r.never_cited([1], since)
    assert n == 1 and never[0]["title"] == "文件2"  # cited only before the period
    gaps = r.gap_questions([1], since)
    assert sorted(g["message_id"] for g in gaps) == ["m2", "m3", "m4"]  # 👎, refused, hand-off
    assert r.totals([], since)["questions"] == 0


def test_handoff_times_and_refusal_split(db: Database) -> None:
    r = SqlLoopRepository(db)
    case, _ = r.open_case("c1", 1, None, "refused", "q")
    db.execute(
        "UPDATE handoff_cases SET created_at=?, first_reply_at=?, resolved_at=? WHERE id=?",
        (
            "2026-11-28T01:00:00+00:00",
            "2026-11-28T01:02:00+00:00",
            "2026-11-28T02:00:00+00:00",
            case,
        ),
    )
    h = r.handoff_times([1], "2026-11-27T00:00:00+00:00")
    assert h["cases"] == 1 and h["first_reply_s_avg"] == pytest.approx(120.0)
    assert h["resolution_s_avg"] == pytest.approx(3600.0)
    _record(r, 1, "refused", "2026-11-20T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 2, "refused", "2026-11-21T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 3, "answered", "2026-11-25T01:00:00+00:00", 9, 1, [], key="退貨")
    _record(r, 4, "refused", "2026-11-25T01:00:00+00:00", 9, 1, [], key="別的")
    split = r.refusal_split(1, ["退貨"], "2026-11-22T00:00:00+00:00")
    assert split == {
        "before": {"asked": 2, "unanswered": 2},
        "after": {"asked": 1, "unanswered": 0},
    }


def test_curated_entries(db: Database) -> None:
    r = SqlLoopRepository(db)
    e = r.add_curated(
        1, 1, "curated/a.faq", "退貨期限？", "七天內", ["退貨期限？", "可以退貨嗎"], ["m1"], "erin"
    )
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
    db.execute(
        "INSERT INTO feedback(answer_id, user_id, rating, created_at) VALUES ('m3', 1, 1, 'x')"
    )
    turns = r.conversation_turns("c1")
    assert [t["answer_id"] for t in turns] == ["m1", "m2", "m3", "m4", "m5"]
    assert [t["rating"] for t in turns][2] == 1 and turns[0]["stored"] == {}
    assert r.approved_turns(1)[0]["message_id"] == "m3"


def _month(db: Database, r: SqlLoopRepository, now: datetime) -> None:
    """Ten days of answers on two channels in two conversations, rated and citing."""
    rnd = random.Random(5)
    db.execute(
        "INSERT INTO conversations(id, user_id, kb_id, title, created_at, "
        "updated_at) VALUES ('c2', 2, 1, 't', ?, ?)",
        (now.isoformat(),) * 2,
    )
    for i in range(120):
        at = now - timedelta(hours=rnd.uniform(0, 10 * 24))
        conv = rnd.choice(("c1", "c2"))
        mid = f"x{i}"
        db.execute(
            "INSERT INTO messages(id, conversation_id, seq, question, answer, "
            "created_at) VALUES (?, ?, ?, 'q', '{}', ?)",
            (mid, conv, 100 + i, at.isoformat()),
        )
        outcome = rnd.choice(("answered", "answered", "refused", "handoff"))
        cites = (
            [Citation(rnd.choice((1, 2, None)), i) for _ in range(rnd.randint(0, 3))]
            if outcome == "answered"
            else []
        )
        day, hour = local_day_hour(at)
        r.record_answer(
            mid,
            conv,
            1,
            rnd.choice(("web", "line")),
            outcome,
            f"問題{i % 7}",
            f"k{i % 7}",
            rnd.choice((None, rnd.randint(10, 900))),
            day,
            hour,
            cites,
            created_at=at.isoformat(timespec="microseconds"),
        )
        if rnd.random() < 0.3:
            db.execute(
                "INSERT INTO feedback(answer_id, user_id, rating, created_at) VALUES (?, 1, ?, ?)",
                (mid, rnd.choice((1, -1)), at.isoformat()),
            )


def _figures(r: SqlLoopRepository, since: str, split: Split | None) -> dict[str, object]:
    return {
        "totals": r.totals([1], since, split),
        "per_day": r.per_day([1], since, split),
        "hours": r.busiest_hours([1], since, split),
        "cited": r.most_cited([1], since, 10, split),
    }


def test_rollup_gives_the_direct_figures_and_follows_deletions(db: Database) -> None:
    r = SqlLoopRepository(db)
    now = datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
    _month(db, r, now)
    since_dt = now - timedelta(days=7)
    since = since_dt.isoformat(timespec="seconds")
    split = rollup_split(since_dt, now)
    assert split is not None and split.days == ("2026-11-23", "2026-11-30")
    assert r.refresh_rollup([1], split) == 6  # the closed days 24–29 (Taipei)
    assert r.refresh_rollup([1], split) == 0  # nothing changed: nothing rebuilt
    direct = _figures(r, since, None)
    assert direct["totals"]["questions"] > 50 and direct["cited"]
    assert _figures(r, since, split) == direct
    # A purge of one closed day's conversation turns (cascading to the answer rows)
    # and a late rating: the next refresh rebuilds that day only, figures still equal.
    gone = [
        row[0]
        for row in db.execute(
            "SELECT message_id FROM answer_stats WHERE day='2026-11-26' AND conversation_id='c1'"
        )
    ]
    assert gone
    db.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(gone))})", gone)
    db.execute(
        "INSERT INTO feedback(answer_id, user_id, rating, created_at) "
        "SELECT message_id, 2, -1, 'late' FROM answer_stats WHERE day='2026-11-27' "
        "AND message_id NOT IN (SELECT answer_id FROM feedback)"
    )
    assert r.refresh_rollup([1], split) == 1
    after = _figures(r, since, split)
    assert after == _figures(r, since, None)
    assert after["totals"]["questions"] == direct["totals"]["questions"] - len(gone)
    assert rollup_split(now - timedelta(hours=30), now) is None  # no closed day between


def test_analytics_leave_out_documents_the_viewer_may_not_see(db: Database) -> None:
    r = SqlLoopRepository(db)
    db.execute(
        "UPDATE documents SET meta=? WHERE id=2", ('{"access_groups": ["hr"], "access_level": 0}',)
    )
    at = "2026-11-28T01:00:00+00:00"
    _record(r, 1, "answered", at, 9, 100, [Citation(2, 21)])
    _record(r, 2, "answered", at, 9, 100, [Citation(2, 21), Citation(1, 11)])
    _record(r, 3, "refused", at, 9, 100, [])
    db.execute(
        "INSERT INTO feedback(answer_id, user_id, rating, created_at) "
        "VALUES ('m1', 1, -1, 'x'), ('m2', 1, -1, 'x')"
    )
    since = "2026-11-27T00:00:00+00:00"
    outsider = AccessScope("amy", frozenset(), 0).restrict()
    insider = AccessScope("bob", frozenset({"hr"}), 0).restrict()
    assert [d["title"] for d in r.most_cited([1], since)] == ["文件2", "文件1"]
    assert [d["title"] for d in r.most_cited([1], since, where=insider)] == ["文件2", "文件1"]
    assert [d["title"] for d in r.most_cited([1], since, where=outsider)] == ["文件1"]
    db.execute("DELETE FROM answer_citations WHERE doc_id=1")
    assert r.never_cited([1], since) == (
        1,
        [{"kb": "hr", "doc_id": 1, "title": "文件1", "path": "d1.txt"}],
    )
    assert r.never_cited([1], since, where=outsider)[0] == 1
    db.execute("DELETE FROM answer_citations")
    assert r.never_cited([1], since, where=outsider)[0] == 1  # 文件2 is not even counted
    assert r.never_cited([1], since, where=insider)[0] == 2
    _record(r, 4, "answered", "2026-11-28T02:00:00+00:00", 9, 1, [Citation(2, 21)])
    db.execute(
        "INSERT INTO feedback(answer_id, user_id, rating, created_at) VALUES ('m4', 1, -1, 'x')"
    )
    # a 👎 on an answer citing the hidden document is not shown to the outsider
    assert sorted(g["message_id"] for g in r.gap_questions([1], since, where=outsider)) == [
        "m1",
        "m2",
        "m3",
    ]
    assert sorted(g["message_id"] for g in r.gap_questions([1], since, where=insider)) == [
        "m1",
        "m2",
        "m3",
        "m4",
    ]
    assert r.visible_documents([1, 2, 99], outsider) == {1}
    assert r.visible_documents([1, 2], insider) == {1, 2}


def test_pins(db: Database) -> None:
    pins = SqlPins(db)
    chunk = db.execute(
        "INSERT INTO chunks(doc_id, ord, text, char_start, char_end) "
        "VALUES (1, 0, '退貨七天內', 0, 5) RETURNING id"
    ).fetchone()[0]
    other = db.execute(
        "INSERT INTO chunks(doc_id, ord, text, char_start, char_end) "
        "VALUES (2, 0, '退貨十天內', 0, 5) RETURNING id"
    ).fetchone()[0]
    first = pins.add(1, chunk, "退貨期限？", ["退貨期限", "可以退貨嗎"], ["m1"], "erin")
    got = pins.get(first)
    assert got is not None and (got.kb, got.doc_id, got.author) == ("hr", 1, "erin")
    assert got.qkeys == ("退貨期限", "可以退貨嗎") and got.source_messages == ("m1",)
    assert pins.chunk_in_kb(chunk, 1) == 1 and pins.chunk_in_kb(chunk, 99) is None
    with pytest.raises(KeyError):
        pins.add(99, chunk, "q", ["q"], [], "erin")  # not a passage of that KB
    second = pins.add(1, other, "可以退貨嗎", ["可以退貨嗎"], [], "erin")  # the same question
    assert [p.id for p in pins.of_kbs([1])] == [second] and pins.get(first) is None
    db.execute("DELETE FROM chunks WHERE id=?", (other,))  # re-ingested: the pin ends
    assert pins.of_kbs([1]) == [] and not pins.remove(second)
    third = pins.add(1, chunk, "q", ["q"], [], "erin")
    assert pins.remove(third) and pins.of_kbs([1, 2]) == [] and pins.of_kbs([]) == []
