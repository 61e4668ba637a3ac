"""Contract suite of the channels repository, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.storage import migrate
from zhiku.storage.channels import SqlChannels
from zhiku.storage.db import Database, connect, now_iso


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


def _user(db: Database, name: str) -> int:
    return int(
        db.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, 'reader', ?) RETURNING id",
            (name, now_iso()),
        ).fetchone()[0]
    )


def _kb(db: Database, name: str) -> int:
    return int(
        db.execute(
            "INSERT INTO kbs(name, created_at, secret) VALUES (?,?,?) RETURNING id",
            (name, now_iso(), b"k"),
        ).fetchone()[0]
    )


def test_line_channels_and_event_dedupe(db: Database) -> None:
    repo = SqlChannels(db)
    uid = _user(db, "line:shop")
    ch = repo.add_line_channel("shop", "s3cret-abcd", "tok-wxyz", ["hr", "門市"], uid)
    assert repo.line_channel("shop") == ch
    assert ch.kbs == ("hr", "門市")
    assert "s3cret" not in str(ch.to_dict()) and ch.to_dict()["secret_hint"] == "…abcd"
    assert repo.claim_line_event(ch.id, "01EV") is True
    assert repo.claim_line_event(ch.id, "01EV") is False  # replay
    assert repo.claim_line_event(ch.id, "01EW") is True
    repo.finish_line_event(ch.id, "01EV", "done", "reply")
    repo.finish_line_event(ch.id, "01EW", "done", "push")
    assert repo.line_event_counts(ch.id) == {"reply": 1, "push": 1}
    assert [c.name for c in repo.line_channels()] == ["shop"]
    assert repo.delete_line_channel("shop") == ch
    assert repo.line_channel("shop") is None
    assert repo.delete_line_channel("shop") is None


def test_widget_keys(db: Database) -> None:
    repo = SqlChannels(db)
    uid = _user(db, "widget:site")
    w = repo.add_widget_key("site", "zkw_abc", ["hr"], ["http://a.example:8080"], 30.0, 5, uid)
    assert repo.widget_key("zkw_abc") == w
    assert repo.widget_key("zkw_nope") is None
    assert w.origins == ("http://a.example:8080",) and w.rate_burst == 5
    assert [x.name for x in repo.widget_keys()] == ["site"]
    assert repo.delete_widget_key("site") == w and repo.widget_keys() == []


def test_conversation_lookup_by_channel_ref(db: Database) -> None:
    repo = SqlChannels(db)
    uid, kb = _user(db, "line:shop"), _kb(db, "hr")
    for cid, ts in (("c1", "2026-01-01T00:00:00+00:00"), ("c2", "2026-01-02T00:00:00+00:00")):
        db.execute(
            "INSERT INTO conversations(id, user_id, kb_id, title, created_at, updated_at,"
            " channel, channel_ref) VALUES (?,?,?,?,?,?,'line','line:1:U1')",
            (cid, uid, kb, "t", ts, ts),
        )
    assert repo.latest_conversation("line:1:U1") == ("c2", kb, "2026-01-02T00:00:00+00:00")
    assert repo.latest_conversation("line:1:U2") is None
    assert repo.conversation_in("c1", "line:1:U1") == kb
    assert repo.conversation_in("c1", "line:1:U2") is None
    row = db.execute("SELECT channel FROM conversations WHERE id='c1'").fetchone()
    assert row[0] == "line"


def test_delivery_queue_claims_retries_and_redelivers(db: Database) -> None:
    repo = SqlChannels(db)
    a = repo.add_target("erp", "https://erp.example/hook", "sec", ["question.answered"])
    b = repo.add_target("all", "https://n8n.example/hook", "sec2", [])
    assert repo.enqueue("document.ingested", "e1", '{"x":1}', 100.0) != []
    ids = repo.enqueue("question.answered", "e2", '{"y":2}', 100.0)
    assert len(ids) == 2  # erp subscribes to it, "all" takes every event
    assert repo.claim_due(99.0, 30, 10) == []  # not due yet
    got = repo.claim_due(100.0, 30, 10)
    assert len(got) == 3 and all(d.attempts == 1 for d in got)
    assert repo.claim_due(101.0, 30, 10) == []  # leased
    first = next(d for d in got if d.target_id == a.id)
    repo.delivered(first.id, 204)
    other = next(d for d in got if d.target_id == b.id and d.event_id == "e2")
    repo.retry_later(other.id, 200.0, 500, "HTTP 500", final=False)
    assert [d.id for d in repo.claim_due(120.0, 30, 10)] == []
    # the lease of the third lapsed at 130 (its sender died) and the second is due at 200
    again = repo.claim_due(200.0, 30, 10)
    assert sorted(d.id for d in again) == sorted(d.id for d in got if d.id != first.id)
    assert all(d.attempts == 2 for d in again)
    for d in again:
        repo.retry_later(d.id, 0.0, None, "connection refused", final=True)
    assert {d.id for d in repo.deliveries("failed")} == {d.id for d in again}
    assert repo.delivery(first.id).status == "delivered"  # type: ignore[union-attr]
    assert repo.redeliver(again[0].id, 300.0) is True
    d0 = repo.delivery(again[0].id)
    assert d0 is not None and d0.status == "pending" and d0.attempts == 0
    assert [d.id for d in repo.claim_due(300.0, 30, 10)] == [again[0].id]
    assert repo.redeliver(again[0].id, 300.0) is False  # being sent
    assert repo.delete_target("erp") == a
    assert all(d.target_id != a.id for d in repo.deliveries())
