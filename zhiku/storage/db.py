"""The database seam: one small interface over SQLite and PostgreSQL.

A :class:`Database` runs statements written with ``?`` placeholders and returns rows
that can be read by position and by column name, on either engine. Transactions nest:
inside an open transaction ``tx()`` joins it, so a repository method may be called on
its own or as part of a caller's larger transaction.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from zhiku.errors import StoreError

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | Mapping[str, Any]


def now_iso() -> str:
    """The time format every table stores: UTC, ISO 8601, seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Cursor(Protocol):
    """What ``execute`` returns: the DB-API subset both drivers share."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class Database(Protocol):
    """A connection to the store's database, whichever engine holds it."""

    dialect: Dialect
    #: Where it is, for messages (a file path, or a PostgreSQL URL without password).
    location: str

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor: ...

    def tx(self, immediate: bool = False) -> Any:
        """A context manager: a transaction, or the one already open (joined)."""
        ...

    @property
    def in_transaction(self) -> bool: ...

    def new_connection(self) -> Database:
        """Another connection to the same database, for a thread of its own (a job's
        heartbeat): a new ``sqlite3`` connection to the file, or a new psycopg one."""
        ...

    def close(self) -> None: ...


# --- SQLite -----------------------------------------------------------------------


class SQLiteDatabase:
    """A :class:`Database` over one ``sqlite3`` connection in autocommit mode.

    ``immediate`` transactions take the write lock at ``BEGIN``, so writers queue on the
    busy timeout instead of failing on lock upgrade.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, location: str = "") -> None:
        self.conn = conn
        self.location = location

    @classmethod
    def open(cls, path: Path, timeout: float = 30.0) -> SQLiteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"無法開啟資料庫 {path}：{exc}") from exc
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        conn.row_factory = sqlite3.Row
        return cls(conn, str(path))

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        return self.conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @contextmanager
    def tx(self, immediate: bool = False) -> Iterator[SQLiteDatabase]:
        if self.conn.in_transaction:
            yield self
            return
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def new_connection(self) -> SQLiteDatabase:
        if not self.location or self.location == ":memory:":
            raise StoreError("記憶體中的資料庫無法再開一個連線")
        return SQLiteDatabase.open(Path(self.location))

    def close(self) -> None:
        self.conn.close()


# --- PostgreSQL -------------------------------------------------------------------


class Row(tuple[Any, ...]):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names[key])
            except KeyError:
                raise IndexError(f"No item with that key: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


@lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (and a literal ``%`` → ``%%``), outside
    quoted strings and identifiers."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def redact_url(url: str) -> str:
    """A PostgreSQL URL fit for messages and logs: the password removed."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresDatabase:
    """A :class:`Database` over one psycopg 3 connection in autocommit mode.

    A connection serves one thread at a time (the lock below), as a ``sqlite3`` one
    does; each server engine in the pool holds its own.
    """

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        import psycopg

        self.location = redact_url(url)
        self._url = url
        self._connect_timeout = connect_timeout
        try:
            self.conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
                row_factory=_row_factory,
            )
        except psycopg.Error as exc:
            raise StoreError(f"無法連線到資料庫 {self.location}：{exc}") from exc
        self._lock = threading.RLock()

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        with self._lock:
            # Without parameters psycopg sends the text as it is: no ``%`` escaping.
            if not params:
                return self.conn.execute(sql)
            return self.conn.execute(pg_sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        with self._lock:
            cur = self.conn.cursor()
            cur.executemany(pg_sql(sql), list(rows))
            return cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    @contextmanager
    def tx(self, immediate: bool = False) -> Iterator[PostgresDatabase]:
        # ``immediate`` has no PostgreSQL counterpart: row locks (SELECT … FOR UPDATE)
        # and unique constraints do what SQLite's one writer lock does.
        with self._lock:
            if self.in_transaction:
                yield self
                return
            with self.conn.transaction():
                yield self

    def new_connection(self) -> PostgresDatabase:
        return PostgresDatabase(self._url, self._connect_timeout)

    def close(self) -> None:
        self.conn.close()


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def connect(target: str | Path) -> Database:
    """A database for a SQLite file path or a ``postgresql://`` URL."""
    if isinstance(target, str) and is_postgres_url(target):
        return PostgresDatabase(target)
    return SQLiteDatabase.open(Path(target))


# --- DDL ----------------------------------------------------------------------------

_PG_DDL = [
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", re.I),
        "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\)\s*WITHOUT ROWID\b", re.I), ")"),
]


def ddl(script: str, dialect: Dialect) -> list[str]:
    """A migration script split into statements, translated for ``dialect``.

    Scripts are written in SQLite's syntax restricted to INTEGER, TEXT, REAL, BLOB and
    ``INTEGER PRIMARY KEY AUTOINCREMENT``; PostgreSQL gets identity columns, BYTEA and
    DOUBLE PRECISION (its REAL is 4 bytes, too few for timestamps)."""
    statements = [s.strip() for s in script.split(";") if s.strip()]
    if dialect == "postgresql":
        for pattern, repl in _PG_DDL:
            statements = [pattern.sub(repl, s) for s in statements]
    return statements
