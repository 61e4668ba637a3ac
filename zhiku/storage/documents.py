"""Documents, chunks, knowledge bases and the index queue: the store's repository.

The database (SQLite by default, one file in WAL mode; or PostgreSQL, shared by several
server nodes) is the source of truth. The lexical index (:mod:`zhiku.lexical`) and the
vector matrix beside it are derived data: every change to a document appends a row to
``index_log`` *in the same transaction*, and the index applies and then clears those
rows. A crash anywhere leaves either the old or the new document in the database, and
at worst some ``index_log`` rows that are replayed (the replay is idempotent) on the
next open.

:class:`DocumentStore` names what the rest of zhiku uses; :class:`Store` is its one
implementation, written against :class:`~zhiku.storage.db.Database` in portable SQL.
What cannot be portable branches on ``database.dialect`` here: the ``index_log``
change counter (``sqlite_sequence`` / the identity sequence), the JSON operators of
filters (:meth:`zhiku.filters.Filter.sql`), the join order hint, sizes on disk, and the
file lock that keeps ``zhiku restore`` from replacing an open SQLite file.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from zhiku.errors import InvalidInput, KnowledgeBaseNotFound, StoreError
from zhiku.filters import Filter
from zhiku.models import Chunk, Document, Hit
from zhiku.storage import migrate
from zhiku.storage.db import (
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    is_postgres_url,
    now_iso,
)
from zhiku.text import bad_name_chars, visible

SCHEMA_VERSION = migrate.component("core").version

#: Environment variable naming the database (a ``postgresql://`` URL); overrides the
#: ``database`` setting of zhiku.toml.
DATABASE_ENV = "ZHIKU_DATABASE_URL"


def database_target(
    home: Path, configured: str | None = None, env: Mapping[str, str] | None = None
) -> str | Path:
    """Where a home's store lives: ``$ZHIKU_DATABASE_URL``, else zhiku.toml's
    ``database`` setting (``configured``), else ``<home>/zhiku.db``."""
    env = os.environ if env is None else env
    value = (env.get(DATABASE_ENV) or configured or "").strip()
    if not value:
        return home / "zhiku.db"
    if is_postgres_url(value):
        return value
    raise StoreError(
        f"資料庫設定不支援：「{visible(value)}」（請用 postgresql:// 網址，"
        "或不設定以使用內建的 SQLite）"
    )


@dataclass(slots=True)
class KnowledgeBase:
    id: int
    name: str
    created_at: str
    settings: dict[str, Any]
    secret: bytes


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def open_lock(db: Path) -> IO[bytes]:
    """Hold a shared ``flock`` on the database's lock file (released by closing it, or
    by the process's death)."""
    fh = lock_path(db).open("ab")
    fcntl.flock(fh, fcntl.LOCK_SH)
    return fh


@runtime_checkable
class DocumentStore(Protocol):
    """What zhiku needs of the store of documents, chunks, KBs and the index queue."""

    database: Database
    db_id: str

    def tx(self, immediate: bool = False) -> Any: ...
    def close(self) -> None: ...
    def index_log_seq(self) -> int: ...
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def get_kb(self, name: str) -> KnowledgeBase: ...
    def find_kb(self, name: str) -> KnowledgeBase | None: ...
    def ensure_kb(self, name: str, settings: dict[str, Any] | None = None) -> KnowledgeBase: ...
    def kb_ids(self, names: Sequence[str]) -> list[int]: ...
    def list_kbs(self) -> list[KnowledgeBase]: ...
    def update_kb_settings(self, name: str, settings: dict[str, Any]) -> KnowledgeBase: ...
    def delete_kb(self, name: str) -> list[int]: ...
    def list_documents(self, kb: str, where: Filter | None = None) -> list[Document]: ...
    def get_document(self, kb: str, path: str) -> Document | None: ...
    def document_hashes(self, kb: str) -> dict[str, tuple[str, int, float | None]]: ...
    def put_document(
        self,
        kb: str,
        *,
        path: str,
        title: str,
        kind: str,
        content_hash: str,
        size: int,
        chunks: Sequence[Chunk],
        mtime: float | None = None,
        pages: int | None = None,
        meta: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> int: ...
    def set_document_meta(self, kb: str, path: str, changes: dict[str, Any]) -> bool: ...
    def filtered_chunk_ids(self, kb_ids: Sequence[int], where: Filter) -> set[int]: ...
    def touch_document(self, kb: str, path: str, mtime: float | None) -> None: ...
    def delete_document(self, kb: str, path: str) -> bool: ...
    def child_paths(self, kb: str, parent_path: str | None = None) -> set[str]: ...
    def chunks_of(self, doc_ids: Iterable[int]) -> Iterator[Any]: ...
    def chunk_docs(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str]]: ...
    def chunk_count(self, kb_id: int) -> int: ...
    def existing_chunk_ids(self, chunk_ids: Sequence[int]) -> set[int]: ...
    def chunk_doc_pairs(self, kb_id: int) -> list[tuple[int, int]]: ...
    def chunk_embed_rows(self, chunk_ids: Sequence[int]) -> Iterator[Any]: ...
    def chunk_texts_with_paths(self, kb_id: int, min_chars: int = 0) -> list[tuple[str, str]]: ...
    def chunk_paths_titles(self, kb_id: int) -> list[tuple[int, str, str]]: ...
    def sample_chunk_texts(
        self, kb_id: int, n: int, seed: int = 7, where: Filter | None = None
    ) -> list[str]: ...
    def sample_chunks(
        self, kb_id: int, n: int, seed: int = 7, where: Filter | None = None
    ) -> list[tuple[int, str]]: ...
    def kb_doc_ids(self, kb_id: int) -> list[int]: ...
    def hits_for(
        self,
        scored: Sequence[tuple[int, float]],
        kb_ids: Sequence[int],
        where: Filter | None = None,
    ) -> list[Hit]: ...
    def document_counts(self, kb_id: int, where: Filter | None = None) -> tuple[int, int]: ...
    def pending_index_work(self, kb_id: int) -> tuple[int, list[int]]: ...
    def clear_index_work(self, kb_id: int, upto_seq: int) -> None: ...
    def has_pending_index_work(self, kb_id: int) -> bool: ...
    def requeue_all(self, kb_id: int) -> None: ...
    def embeddings_get(self, model: str, hashes: Sequence[bytes]) -> dict[bytes, bytes]: ...
    def embeddings_put(self, model: str, items: Sequence[tuple[bytes, bytes]]) -> None: ...
    def embeddings_count(self, model: str | None = None) -> int: ...
    def kb_counts(self, kb_id: int) -> tuple[int, int, int]: ...
    def stats(self) -> dict[str, Any]: ...


class Store:
    """The :class:`DocumentStore` on a SQLite file (safe to open from several processes:
    WAL, busy timeout) or on a PostgreSQL database (``postgresql://`` URL)."""

    database: Database

    def __init__(self, target: str | Path) -> None:
        self._open_lock: IO[bytes] | None = None
        self.path: Path | None
        if isinstance(target, str) and is_postgres_url(target):
            self.path = None
            self.database = PostgresDatabase(target)
            # Code not yet moved into repositories reads ``store.db``; on PostgreSQL it
            # is the Database itself (``?`` placeholders, no SQLite-only statements).
            self.db: Any = self.database
        else:
            path = Path(target)
            self.path = path
            path.parent.mkdir(parents=True, exist_ok=True)
            # A shared lock for as long as the store is open: ``zhiku restore`` takes it
            # exclusively, so it never replaces a database some process still has open.
            self._open_lock = open_lock(path)
            sqlite = SQLiteDatabase.open(path)
            self.database = sqlite
            # The raw connection, kept only for code not yet moved into repositories.
            self.db = sqlite.conn
        self.location = self.database.location
        self._migrate()
        self.db_id = self._ensure_db_id()

    @property
    def dialect(self) -> str:
        return self.database.dialect

    def _ensure_db_id(self) -> str:
        """A random id of this database, recorded by the derived indexes beside it, so an
        index built from another database is never trusted."""
        with self.tx(immediate=True):
            value = self.get_meta("db_id")
            if value is None:
                value = secrets.token_hex(16)
                self.set_meta("db_id", value)
        return value

    def index_log_seq(self) -> int:
        """The monotonic change counter: bumped in the transaction of every document change."""
        if self.database.dialect == "postgresql":
            row = self.database.execute(
                "SELECT pg_sequence_last_value("
                "pg_get_serial_sequence('index_log', 'seq')::regclass)"
            ).fetchone()
        else:
            row = self.database.execute(
                "SELECT seq FROM sqlite_sequence WHERE name='index_log'"
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # --- schema -----------------------------------------------------------------

    def _migrate(self) -> None:
        migrate.apply(self.database)

    @contextmanager
    def tx(self, immediate: bool = False) -> Iterator[Any]:
        """A transaction (or the one already open); ``immediate`` takes SQLite's write
        lock up front (one writer). Yields ``store.db`` for code that still uses it."""
        with self.database.tx(immediate=immediate):
            yield self.db

    def close(self) -> None:
        self.database.close()
        if self._open_lock is not None:
            self._open_lock.close()

    # --- meta -------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.database.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.database.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # --- knowledge bases ----------------------------------------------------------

    def _kb_from_row(self, row: Any) -> KnowledgeBase:
        return KnowledgeBase(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            settings=json.loads(row["settings"]),
            secret=bytes(row["secret"]),
        )

    def get_kb(self, name: str) -> KnowledgeBase:
        row = self.database.execute("SELECT * FROM kbs WHERE name=?", (name,)).fetchone()
        if row is None:
            raise KnowledgeBaseNotFound(name)
        return self._kb_from_row(row)

    def find_kb(self, name: str) -> KnowledgeBase | None:
        try:
            return self.get_kb(name)
        except KnowledgeBaseNotFound:
            return None

    def ensure_kb(self, name: str, settings: dict[str, Any] | None = None) -> KnowledgeBase:
        name = name.strip()
        with self.tx(immediate=True):
            kb = self.find_kb(name)
            if kb is not None:
                return kb
            if not name or len(name) > 64 or any(c in name for c in "/\\") or bad_name_chars(name):
                raise InvalidInput(
                    f"知識庫名稱不合法：「{visible(name)}」（1–64 字，不可含 / \\ 或控制字元）"
                )
            self.database.execute(
                "INSERT INTO kbs(name, created_at, settings, secret) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO NOTHING",
                (
                    name,
                    now_iso(),
                    json.dumps(settings or {}, ensure_ascii=False),
                    secrets.token_bytes(32),
                ),
            )
        return self.get_kb(name)

    def kb_ids(self, names: Sequence[str]) -> list[int]:
        """The ids of the KBs named (those that exist), by id."""
        if not names:
            return []
        marks = ",".join("?" * len(names))
        return [
            int(r[0])
            for r in self.database.execute(
                f"SELECT id FROM kbs WHERE name IN ({marks}) ORDER BY id", list(names)
            )
        ]

    def list_kbs(self) -> list[KnowledgeBase]:
        rows = self.database.execute("SELECT * FROM kbs ORDER BY name").fetchall()
        return [self._kb_from_row(r) for r in rows]

    def update_kb_settings(self, name: str, settings: dict[str, Any]) -> KnowledgeBase:
        with self.tx(immediate=True):
            kb = self.get_kb(name)
            merged = {**kb.settings, **settings}
            self.database.execute(
                "UPDATE kbs SET settings=? WHERE id=?",
                (json.dumps(merged, ensure_ascii=False), kb.id),
            )
        return self.get_kb(name)

    def delete_kb(self, name: str) -> list[int]:
        """Delete a KB and everything in it; returns the ids of the documents removed."""
        with self.tx(immediate=True):
            kb = self.get_kb(name)
            ids = [
                r[0]
                for r in self.database.execute("SELECT id FROM documents WHERE kb_id=?", (kb.id,))
            ]
            self.database.execute("DELETE FROM kbs WHERE id=?", (kb.id,))
            self.database.execute("DELETE FROM index_log WHERE kb_id=?", (kb.id,))
        return ids

    # --- documents --------------------------------------------------------------

    def _doc_from_row(self, row: Any) -> Document:
        return Document(
            id=row["id"],
            kb=row["kb"],
            path=row["path"],
            title=row["title"],
            kind=row["kind"],
            content_hash=row["content_hash"],
            size=row["size"],
            chunks=row["n_chunks"],
            added_at=row["added_at"],
            updated_at=row["updated_at"],
            meta=json.loads(row["meta"]),
        )

    _DOC_SELECT = (
        "SELECT d.*, k.name AS kb, "
        "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id) AS n_chunks "
        "FROM documents d JOIN kbs k ON k.id=d.kb_id "
    )

    def list_documents(self, kb: str, where: Filter | None = None) -> list[Document]:
        kbo = self.get_kb(kb)
        clause, args = where.sql("d", self.database.dialect) if where else ("1=1", [])
        rows = self.database.execute(
            self._DOC_SELECT + f"WHERE d.kb_id=? AND {clause} ORDER BY d.path", (kbo.id, *args)
        ).fetchall()
        return [self._doc_from_row(r) for r in rows]

    def document_counts(self, kb_id: int, where: Filter | None = None) -> tuple[int, int]:
        """(documents, chunks) of a KB that pass ``where`` (a caller's access scope)."""
        clause, args = where.sql("d", self.database.dialect) if where else ("1=1", [])
        row = self.database.execute(
            "SELECT COUNT(DISTINCT d.id), COUNT(c.id) FROM documents d "
            f"LEFT JOIN chunks c ON c.doc_id=d.id WHERE d.kb_id=? AND {clause}",
            (kb_id, *args),
        ).fetchone()
        return int(row[0]), int(row[1])

    def get_document(self, kb: str, path: str) -> Document | None:
        kbo = self.get_kb(kb)
        row = self.database.execute(
            self._DOC_SELECT + "WHERE d.kb_id=? AND d.path=?", (kbo.id, path)
        ).fetchone()
        return self._doc_from_row(row) if row else None

    def document_hashes(self, kb: str) -> dict[str, tuple[str, int, float | None]]:
        """path → (content hash, size, mtime) for every document of a KB."""
        kbo = self.get_kb(kb)
        return {
            r[0]: (r[1], r[2], r[3])
            for r in self.database.execute(
                "SELECT path, content_hash, size, mtime FROM documents WHERE kb_id=?", (kbo.id,)
            )
        }

    def put_document(
        self,
        kb: str,
        *,
        path: str,
        title: str,
        kind: str,
        content_hash: str,
        size: int,
        chunks: Sequence[Chunk],
        mtime: float | None = None,
        pages: int | None = None,
        meta: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> int:
        """Add or replace a document and all its chunks in one transaction.

        ``parent_id`` links a document found inside another one (an attachment)."""
        kbo = self.get_kb(kb)
        ts = now_iso()
        meta_json = json.dumps(meta or {}, ensure_ascii=False)
        with self.tx(immediate=True):
            row = self.database.execute(
                "SELECT id FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                doc_id = int(
                    self.database.execute(
                        "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, mtime,"
                        " pages, meta, added_at, updated_at, parent_id)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                        (
                            kbo.id,
                            path,
                            title,
                            kind,
                            content_hash,
                            size,
                            mtime,
                            pages,
                            meta_json,
                            ts,
                            ts,
                            parent_id,
                        ),
                    ).fetchone()[0]
                )
            else:
                doc_id = int(row[0])
                self.database.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                self.database.execute(
                    "UPDATE documents SET title=?, kind=?, content_hash=?, size=?, mtime=?,"
                    " pages=?, meta=?, updated_at=?, parent_id=? WHERE id=?",
                    (
                        title,
                        kind,
                        content_hash,
                        size,
                        mtime,
                        pages,
                        meta_json,
                        ts,
                        parent_id,
                        doc_id,
                    ),
                )
            self.database.executemany(
                "INSERT INTO chunks(doc_id, ord, text, section, label, page_start, page_end,"
                " char_start, char_end) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        doc_id,
                        c.ord,
                        c.text,
                        c.section,
                        c.label,
                        c.page_start,
                        c.page_end,
                        c.char_start,
                        c.char_end,
                    )
                    for c in chunks
                ],
            )
            self.database.execute(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", (kbo.id, doc_id)
            )
        return doc_id

    def set_document_meta(self, kb: str, path: str, changes: dict[str, Any]) -> bool:
        """Merge ``changes`` into a document's metadata (a ``None`` value removes the key)
        and queue its re-indexing, in one transaction; False when there is no such
        document. Filters read the new values as soon as the index applies the queue."""
        kbo = self.get_kb(kb)
        with self.tx(immediate=True):
            row = self.database.execute(
                "SELECT id, meta FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                return False
            meta = {**json.loads(row["meta"]), **changes}
            meta = {k: v for k, v in meta.items() if v is not None}
            self.database.execute(
                "UPDATE documents SET meta=?, updated_at=? WHERE id=?",
                (json.dumps(meta, ensure_ascii=False), now_iso(), row["id"]),
            )
            self.database.execute(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", (kbo.id, row["id"])
            )
        return True

    def filtered_chunk_ids(self, kb_ids: Sequence[int], where: Filter) -> set[int]:
        """Ids of the chunks of ``kb_ids`` whose documents pass ``where`` (one SQL query;
        the vector search ranks only these)."""
        clause, args = where.sql("d", self.database.dialect)
        kmarks = ",".join("?" * len(kb_ids))
        return {
            r[0]
            for r in self.database.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id "
                f"WHERE d.kb_id IN ({kmarks}) AND {clause}",
                [*kb_ids, *args],
            )
        }

    def touch_document(self, kb: str, path: str, mtime: float | None) -> None:
        kbo = self.get_kb(kb)
        self.database.execute(
            "UPDATE documents SET mtime=? WHERE kb_id=? AND path=?", (mtime, kbo.id, path)
        )

    def delete_document(self, kb: str, path: str) -> bool:
        kbo = self.get_kb(kb)
        with self.tx(immediate=True):
            row = self.database.execute(
                "SELECT id FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                return False
            # The document and, through parent_id's ON DELETE CASCADE, its attachments.
            ids = [
                r[0]
                for r in self.database.execute(
                    "WITH RECURSIVE t(id) AS (SELECT CAST(? AS INTEGER) UNION ALL "
                    "SELECT d.id FROM documents d JOIN t ON d.parent_id=t.id) SELECT id FROM t",
                    (row[0],),
                )
            ]
            self.database.execute("DELETE FROM documents WHERE id=?", (row[0],))
            self.database.executemany(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", [(kbo.id, i) for i in ids]
            )
        return True

    def child_paths(self, kb: str, parent_path: str | None = None) -> set[str]:
        """Paths of documents that live inside another one (of ``parent_path`` only, when
        given: its direct children)."""
        kbo = self.get_kb(kb)
        if parent_path is None:
            rows = self.database.execute(
                "SELECT path FROM documents WHERE kb_id=? AND parent_id IS NOT NULL", (kbo.id,)
            )
        else:
            rows = self.database.execute(
                "SELECT c.path FROM documents c JOIN documents p ON p.id=c.parent_id "
                "WHERE p.kb_id=? AND p.path=?",
                (kbo.id, parent_path),
            )
        return {r[0] for r in rows}

    # --- chunks -------------------------------------------------------------------

    def chunks_of(self, doc_ids: Iterable[int]) -> Iterator[Any]:
        """Chunks joined with their document's title and section, for indexing."""
        ids = list(doc_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            yield from self.database.execute(
                "SELECT c.id, c.doc_id, c.text, c.section, d.title, d.meta, d.kind FROM chunks c "
                f"JOIN documents d ON d.id=c.doc_id WHERE c.doc_id IN ({marks})",
                part,
            )

    def chunk_docs(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """chunk id → (document id, document title)."""
        out: dict[int, tuple[int, str]] = {}
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for r in self.database.execute(
                f"SELECT c.id, c.doc_id, d.title FROM chunks c JOIN documents d "
                f"ON d.id=c.doc_id WHERE c.id IN ({marks})",
                part,
            ):
                out[int(r[0])] = (int(r[1]), str(r[2]))
        return out

    def chunk_count(self, kb_id: int) -> int:
        row = self.database.execute(
            "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=?",
            (kb_id,),
        ).fetchone()
        return int(row[0])

    def sample_chunk_texts(
        self, kb_id: int, n: int, seed: int = 7, where: Filter | None = None
    ) -> list[str]:
        """Up to ``n`` chunk texts of a KB (of its documents ``where`` lets through),
        spread evenly over it (deterministic)."""
        return [t for _, t in self.sample_chunks(kb_id, n, seed, where)]

    def sample_chunks(
        self, kb_id: int, n: int, seed: int = 7, where: Filter | None = None
    ) -> list[tuple[int, str]]:
        """(document id, text) of up to ``n`` chunks, as :meth:`sample_chunk_texts`."""
        clause, args = where.sql("d", self.database.dialect) if where else ("1=1", [])
        ids = [
            r[0]
            for r in self.database.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=? "
                f"AND {clause} ORDER BY c.id",
                (kb_id, *args),
            )
        ]
        if len(ids) > n:
            import random

            ids = sorted(random.Random(seed).sample(ids, n))
        out: list[tuple[int, str]] = []
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            out.extend(
                (int(r[0]), str(r[1]))
                for r in self.database.execute(
                    f"SELECT doc_id, text FROM chunks WHERE id IN ({marks}) ORDER BY id", part
                )
            )
        return out

    def kb_doc_ids(self, kb_id: int) -> list[int]:
        return [
            r[0] for r in self.database.execute("SELECT id FROM documents WHERE kb_id=?", (kb_id,))
        ]

    def hits_for(
        self,
        scored: Sequence[tuple[int, float]],
        kb_ids: Sequence[int],
        where: Filter | None = None,
    ) -> list[Hit]:
        """Join (chunk id, score) pairs with their rows, keeping order.

        ``kb_ids`` is enforced again here, so a stale index can never surface a chunk
        of a knowledge base the caller did not ask for; so is ``where`` (a caller's
        access scope), so a label changed since the index last synced cannot either.
        """
        if not scored:
            return []
        ids = [cid for cid, _ in scored]
        marks = ",".join("?" * len(ids))
        kmarks = ",".join("?" * len(kb_ids))
        # On SQLite, CROSS JOIN fixes the loop order: chunks by primary key first
        # (PostgreSQL's planner needs no hint, and its CROSS JOIN takes no ON).
        join = "CROSS JOIN" if self.database.dialect == "sqlite" else "JOIN"
        clause, wargs = where.sql("d", self.database.dialect) if where else ("1=1", [])
        rows = {
            r["id"]: r
            for r in self.database.execute(
                f"SELECT c.*, d.title, d.path, k.name AS kb FROM chunks c "
                f"{join} documents d ON d.id=c.doc_id {join} kbs k ON k.id=d.kb_id "
                f"WHERE c.id IN ({marks}) AND d.kb_id IN ({kmarks}) AND {clause}",
                [*ids, *kb_ids, *wargs],
            )
        }
        hits = []
        for cid, score in scored:
            r = rows.get(cid)
            if r is None:
                continue
            hits.append(
                Hit(
                    chunk_id=cid,
                    doc_id=r["doc_id"],
                    kb=r["kb"],
                    doc_title=r["title"],
                    path=r["path"],
                    text=r["text"],
                    section=r["section"],
                    label=r["label"],
                    page_start=r["page_start"],
                    page_end=r["page_end"],
                    score=score,
                    ord=r["ord"],
                )
            )
        return hits

    def existing_chunk_ids(self, chunk_ids: Sequence[int]) -> set[int]:
        """The ids of ``chunk_ids`` still in the database."""
        out: set[int] = set()
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            out.update(
                int(r[0])
                for r in self.database.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)
            )
        return out

    def chunk_doc_pairs(self, kb_id: int) -> list[tuple[int, int]]:
        """(chunk id, document id) of every chunk of a KB, by chunk id."""
        return [
            (int(r[0]), int(r[1]))
            for r in self.database.execute(
                "SELECT c.id, c.doc_id FROM chunks c JOIN documents d ON d.id=c.doc_id "
                "WHERE d.kb_id=? ORDER BY c.id",
                (kb_id,),
            )
        ]

    def chunk_embed_rows(self, chunk_ids: Sequence[int]) -> Iterator[Any]:
        """Rows (id, text, section, title) of ``chunk_ids``: what an embedder reads."""
        ids = [int(c) for c in chunk_ids]
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            yield from self.database.execute(
                "SELECT c.id, c.text, c.section, d.title FROM chunks c "
                f"JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({marks})",
                part,
            )

    def chunk_texts_with_paths(self, kb_id: int, min_chars: int = 0) -> list[tuple[str, str]]:
        """(chunk text, document path) of a KB's chunks of at least ``min_chars``."""
        return [
            (str(r[0]), str(r[1]))
            for r in self.database.execute(
                "SELECT c.text, d.path FROM chunks c JOIN documents d ON d.id=c.doc_id "
                "WHERE d.kb_id=? AND LENGTH(c.text) >= ? ORDER BY c.id",
                (kb_id, min_chars),
            )
        ]

    def chunk_paths_titles(self, kb_id: int) -> list[tuple[int, str, str]]:
        """(chunk id, document path, document title) of every chunk of a KB."""
        return [
            (int(r[0]), str(r[1]), str(r[2]))
            for r in self.database.execute(
                "SELECT c.id, d.path, d.title FROM chunks c JOIN documents d ON d.id=c.doc_id "
                "WHERE d.kb_id=? ORDER BY c.id",
                (kb_id,),
            )
        ]

    # --- embeddings cache (zhiku.vectors) ---------------------------------------------

    def embeddings_get(self, model: str, hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        """text hash → the stored vector bytes, for those of ``hashes`` cached."""
        out: dict[bytes, bytes] = {}
        uniq = list(dict.fromkeys(hashes))
        for i in range(0, len(uniq), 500):
            part = uniq[i : i + 500]
            marks = ",".join("?" * len(part))
            for h, blob in self.database.execute(
                f"SELECT text_hash, vector FROM embeddings WHERE model=? "
                f"AND text_hash IN ({marks})",
                [model, *part],
            ):
                out[bytes(h)] = bytes(blob)
        return out

    def embeddings_put(self, model: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self.database.tx(immediate=True):
            self.database.executemany(
                "INSERT INTO embeddings(model, text_hash, vector) VALUES (?, ?, ?) "
                "ON CONFLICT(model, text_hash) DO UPDATE SET vector=excluded.vector",
                [(model, h, v) for h, v in items],
            )

    def embeddings_count(self, model: str | None = None) -> int:
        if model is None:
            return int(self.database.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(
            self.database.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model=?", (model,)
            ).fetchone()[0]
        )

    # --- index log ------------------------------------------------------------------

    def pending_index_work(self, kb_id: int) -> tuple[int, list[int]]:
        """(highest seq, distinct doc ids) of the index work not yet applied."""
        rows = self.database.execute(
            "SELECT seq, doc_id FROM index_log WHERE kb_id=? ORDER BY seq", (kb_id,)
        ).fetchall()
        if not rows:
            return 0, []
        return rows[-1][0], list(dict.fromkeys(r[1] for r in rows))

    def clear_index_work(self, kb_id: int, upto_seq: int) -> None:
        self.database.execute("DELETE FROM index_log WHERE kb_id=? AND seq<=?", (kb_id, upto_seq))

    def requeue_all(self, kb_id: int) -> None:
        """Queue every document of a KB for (re)indexing, replacing its queue."""
        with self.database.tx(immediate=True):
            self.database.execute("DELETE FROM index_log WHERE kb_id=?", (kb_id,))
            self.database.executemany(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)",
                [(kb_id, d) for d in self.kb_doc_ids(kb_id)],
            )

    def has_pending_index_work(self, kb_id: int) -> bool:
        return (
            self.database.execute(
                "SELECT 1 FROM index_log WHERE kb_id=? LIMIT 1", (kb_id,)
            ).fetchone()
            is not None
        )

    # --- stats ----------------------------------------------------------------------

    def kb_counts(self, kb_id: int) -> tuple[int, int, int]:
        """(documents, chunks, characters of chunk text) of a KB."""
        docs, chunks, chars = self.database.execute(
            "SELECT COUNT(DISTINCT d.id), COUNT(c.id), COALESCE(SUM(LENGTH(c.text)),0) "
            "FROM documents d LEFT JOIN chunks c ON c.doc_id=d.id WHERE d.kb_id=?",
            (kb_id,),
        ).fetchone()
        return int(docs), int(chunks), int(chars)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"database": self.location, "kbs": []}
        for kb in self.list_kbs():
            docs, chunks, chars = self.kb_counts(kb.id)
            out["kbs"].append(
                {"name": kb.name, "documents": docs, "chunks": chunks, "characters": chars}
            )
        if self.path is None:
            out["database_bytes"] = int(
                self.database.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            )
            return out
        try:
            out["database_bytes"] = os.path.getsize(self.path)
        except OSError:
            out["database_bytes"] = 0
        return out
