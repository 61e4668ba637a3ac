"""The audit log repository's contract, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_storage_db import target  # noqa: F401 - the sqlite/postgresql fixture
from zhiku.storage import migrate
from zhiku.storage.audit import AuditLog, SqlAuditLog
from zhiku.storage.db import connect


@pytest.fixture
def log(target: str) -> Iterator[SqlAuditLog]:  # noqa: F811
    db = connect(target)
    migrate.apply(db)
    yield SqlAuditLog(db)
    db.close()


def test_entries_come_back_filtered_and_in_order(log: SqlAuditLog) -> None:
    assert isinstance(log, AuditLog)
    a = log.append(
        user="王小明",
        key="zk_ab",
        action="upload",
        kb="人資",
        target="a.pdf",
        detail={"size": 3, "名稱": "請假"},
        ip="10.0.0.1",
    )
    b = log.append(
        user="admin", key=None, action="kb.delete", kb="財務", target=None, detail=None, ip=None
    )
    c = log.append(
        user="王小明", key="zk_ab", action="ask", kb="人資", target=None, detail={}, ip="10.0.0.1"
    )
    assert a < b < c
    rows = list(log.query())
    assert [r["id"] for r in rows] == [a, b, c]
    assert rows[0]["detail"] == {"size": 3, "名稱": "請假"} and rows[1]["detail"] == {}
    assert rows[0]["user"] == "王小明" and rows[0]["key"] == "zk_ab"
    assert [r["id"] for r in log.query(user="王小明", newest_first=True)] == [c, a]
    assert [r["action"] for r in log.query(kb="人資", action="ask")] == ["ask"]
    assert [r["id"] for r in log.query(limit=2)] == [a, b]
    ts = rows[0]["ts"]
    assert len(list(log.query(since=ts[:10]))) == 3
    assert list(log.query(until=ts[:10])) == []


def test_an_entry_rolls_back_with_the_callers_transaction(log: SqlAuditLog) -> None:
    with pytest.raises(RuntimeError), log.db.tx():
        log.append(user="u", key=None, action="x", kb=None, target=None, detail=None, ip=None)
        raise RuntimeError("the change it describes failed")
    assert list(log.query()) == []
