"""The checks ``zhiku restore`` makes on a SQLite backup file and on the restored store.

A backup made by ``zhiku backup`` is a SQLite file, so these checks are inherently
SQLite's (``PRAGMA integrity_check``, ``sqlite_master``); a PostgreSQL deployment is
backed up with its own tools (``pg_dump``). :class:`BackupCheck` is what
:mod:`zhiku.restore` needs; :class:`SQLiteBackup` opens the file read-only, so checking
never changes it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from zhiku.storage import migrate
from zhiku.storage.db import Database, SQLiteDatabase

#: Tables every zhiku database has (and one of the migration tables).
ZHIKU_TABLES = frozenset({"kbs", "documents", "chunks"})
MIGRATION_TABLES = frozenset({"migrations", "schema_migrations"})


class BackupCheck(Protocol):
    def integrity(self) -> list[str]:
        """``["ok"]``, or the problems the engine found."""
        ...

    def tables(self) -> set[str]: ...

    def is_zhiku(self) -> bool:
        """Whether the tables are those of a zhiku database."""
        ...

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


class SQLiteBackup:
    """A SQLite backup file, opened read-only. Raises ``sqlite3.Error`` (a
    ``DatabaseError`` for a damaged file) as the engine reports it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def integrity(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check").fetchall()]

    def tables(self) -> set[str]:
        return {
            str(r[0])
            for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }

    def is_zhiku(self) -> bool:
        names = self.tables()
        return names >= ZHIKU_TABLES and bool(MIGRATION_TABLES & names)

    def schema_version(self) -> int:
        return int(migrate.schema_version(SQLiteDatabase(self.conn, str(self.path))))

    def close(self) -> None:
        self.conn.close()


def integrity(db: Database) -> str:
    """The first line of ``PRAGMA integrity_check`` of an open SQLite database (``ok``)."""
    if db.dialect != "sqlite":
        raise ValueError("integrity_check is a SQLite check")
    return str(db.execute("PRAGMA integrity_check").fetchone()[0])
