"""Copy an embedded (SQLite) installation into an empty PostgreSQL database.

``zhiku migrate --to postgresql://…`` calls :func:`copy_database`: the target gets the
same schema (the migrations), then every table in dependency order (a table after the
tables its foreign keys reference), ids preserved, in one transaction on the target, so
a failure leaves it as empty as it was. Self-references (a document's ``parent_id``)
are written after the rows. Identity sequences are advanced to SQLite's
``sqlite_sequence`` (not merely to the largest id: ``index_log`` is emptied as the
index applies it, and its counter must keep counting). The source is read in one
transaction, a consistent snapshot even while a server writes to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zhiku.errors import StoreError
from zhiku.storage import migrate
from zhiku.storage.db import Database

BATCH = 1000


@dataclass(slots=True)
class CopyReport:
    #: table → rows copied, in the order the tables were written.
    tables: dict[str, int] = field(default_factory=dict)
    #: table → (rows in the source, rows in the target) where they differ.
    mismatched: dict[str, tuple[int, int]] = field(default_factory=dict)


def user_tables(db: Database) -> list[str]:
    """The tables of a database, its bookkeeping excluded."""
    if db.dialect == "sqlite":
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    else:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema=current_schema() ORDER BY table_name"
        )
    return [str(r[0]) for r in rows]


def _references(db: Database, table: str) -> list[tuple[str, str]]:
    """(referenced table, local column) of ``table``'s foreign keys (SQLite)."""
    return [
        (str(r["table"]), str(r["from"])) for r in db.execute(f'PRAGMA foreign_key_list("{table}")')
    ]


def dependency_order(db: Database, tables: list[str]) -> list[str]:
    """``tables`` ordered so that each comes after the ones it references."""
    refs = {t: {r for r, _ in _references(db, t) if r != t and r in tables} for t in tables}
    ordered: list[str] = []
    while refs:
        ready = sorted(t for t, deps in refs.items() if deps <= set(ordered))
        if not ready:
            raise StoreError(f"資料表的外鍵互相參照，無法排序：{', '.join(sorted(refs))}")
        ordered.extend(ready)
        for t in ready:
            del refs[t]
    return ordered


def _columns(db: Database, table: str) -> list[str]:
    return [str(r["name"]) for r in db.execute(f'PRAGMA table_info("{table}")')]


def _autoincrement(db: Database) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in db.execute("SELECT name, seq FROM sqlite_sequence")}


def _identity_column(db: Database, table: str) -> str | None:
    pks = [str(r["name"]) for r in db.execute(f'PRAGMA table_info("{table}")') if r["pk"]]
    return pks[0] if len(pks) == 1 else None


def count_rows(db: Database, table: str) -> int:
    return int(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def copy_database(
    source: Database, target: Database, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy every table of ``source`` (SQLite, schema current) into ``target``
    (PostgreSQL, empty), then compare the row counts."""
    if source.dialect != "sqlite" or target.dialect != "postgresql":
        raise StoreError("只能由內建的 SQLite 資料庫複製到 PostgreSQL")
    if not migrate.is_current(source):
        raise StoreError(
            f"來源資料庫 {source.location} 的 schema 不是最新版，請先以本版 zhiku 開啟一次"
        )
    existing = user_tables(target)
    if existing:
        raise StoreError(
            f"目標資料庫 {target.location} 不是空的（已有資料表："
            f"{', '.join(existing[:5])}{'…' if len(existing) > 5 else ''}），"
            "不覆寫"
        )
    report = CopyReport()
    with source.tx(), target.tx():
        migrate.apply(target)
        tables = dependency_order(
            source, [t for t in user_tables(source) if t != "schema_migrations"]
        )
        sequences = _autoincrement(source)
        for table in tables:
            cols = _columns(source, table)
            selfref = [c for r, c in _references(source, table) if r == table]
            quoted = ", ".join(f'"{c}"' for c in cols)
            marks = ", ".join("?" for _ in cols)
            insert = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'
            ident = _identity_column(source, table)
            if selfref and ident is None:
                raise StoreError(f"資料表 {table} 參照自己卻沒有單一主鍵，無法複製")
            pending: dict[str, list[tuple[object, object]]] = {c: [] for c in selfref}
            order = f' ORDER BY "{ident}"' if ident else ""
            rows = source.execute(f'SELECT {quoted} FROM "{table}"{order}')
            n = 0
            while True:
                batch = _fetch(rows)
                if not batch:
                    break
                values = []
                for row in batch:
                    vals = list(row)
                    for col in selfref:
                        i = cols.index(col)
                        if vals[i] is not None:
                            pending[col].append((vals[i], vals[cols.index(str(ident))]))
                            vals[i] = None
                    values.append(vals)
                target.executemany(insert, values)
                n += len(values)
                if progress:
                    progress(table, n)
            for col, updates in pending.items():
                if updates:
                    target.executemany(f'UPDATE "{table}" SET "{col}"=? WHERE "{ident}"=?', updates)
            if table in sequences and ident:
                top = max(
                    sequences[table],
                    int(
                        source.execute(
                            f'SELECT COALESCE(MAX("{ident}"), 0) FROM "{table}"'
                        ).fetchone()[0]
                    ),
                )
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{ident}'), ?, ?)",
                    (max(top, 1), top > 0),
                )
            report.tables[table] = n
        for table, n in report.tables.items():
            have = count_rows(target, table)
            if have != count_rows(source, table) or have != n:
                report.mismatched[table] = (count_rows(source, table), have)
    return report


def _fetch(rows: Any) -> list[Any]:
    """The next batch of a cursor (sqlite3's has ``fetchmany``)."""
    return list(rows.fetchmany(BATCH))
