"""``zhiku migrate --to postgresql://…``: move an embedded installation to PostgreSQL.

The SQLite database of a home is copied into an empty PostgreSQL database
(:func:`zhiku.storage.copy.copy_database`: every table, ids kept, sequences advanced,
row counts compared), then the copy is checked the way users see it: sample questions
of every KB (sentences of its own chunks) are searched before and after, through the
engine, and must give the same passages in the same order. The lexical index beside the
database is kept: the copy carries the database id and the change counter the index
recorded, so the engine on PostgreSQL trusts it and nothing is re-indexed.

The source is left as it is. To switch, set ``database = "postgresql://…"`` in
zhiku.toml (or ``ZHIKU_DATABASE_URL``); see docs/operators/postgresql.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zhiku.engine import Zhiku
from zhiku.errors import StoreError
from zhiku.storage.copy import copy_database
from zhiku.storage.db import PostgresDatabase, is_postgres_url, redact_url

#: What a sample search records: (chunk id, document path) of each passage, in order.
Result = list[tuple[int, str]]


@dataclass(slots=True)
class MigrateReport:
    target: str
    tables: dict[str, int] = field(default_factory=dict)
    mismatched_tables: dict[str, tuple[int, int]] = field(default_factory=dict)
    questions: int = 0
    #: The sample questions whose results differ: (KB, question as the KB's PII
    #: policy shows it).
    mismatched_searches: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched_tables and not self.mismatched_searches


def _searches(zk: Zhiku, questions: dict[str, list[str]], k: int) -> dict[tuple[str, str], Result]:
    return {
        (kb, q): [(h.chunk_id, h.path) for h in zk.search(q, kb, k=k)]
        for kb, qs in questions.items()
        for q in qs
    }


def migrate_to(home: str | Path | None, url: str, *, sample: int = 20, k: int = 5) -> MigrateReport:
    """Copy ``home``'s embedded database into the empty PostgreSQL database ``url``."""
    if not is_postgres_url(url):
        raise StoreError(f"目標必須是 postgresql:// 網址：「{redact_url(url)}」")
    with Zhiku(home) as zk:
        if zk.store.database.dialect != "sqlite":
            raise StoreError(f"此資料目錄已使用 {zk.store.database.location}，不是內建的 SQLite")
        questions = {
            kb.name: [q for q, _ in zk.sample_questions(kb.name, n=sample)]
            for kb in zk.store.list_kbs()
        }
        # Questions are sentences of the documents: shown only through the KB's policy.
        shown = {
            (kb.name, q): Zhiku.redact_output(kb, q)
            for kb in zk.store.list_kbs()
            for q in questions[kb.name]
        }
        before = _searches(zk, questions, k)
        target = PostgresDatabase(url)
        try:
            copied = copy_database(zk.store.database, target)
        finally:
            target.close()
        home_path = zk.home
    report = MigrateReport(
        target=redact_url(url),
        tables=copied.tables,
        mismatched_tables=copied.mismatched,
        questions=len(before),
    )
    with Zhiku(home_path, database=url) as zk:
        after = _searches(zk, questions, k)
    report.mismatched_searches = [
        (key[0], shown[key]) for key, res in before.items() if after.get(key) != res
    ]
    return report
