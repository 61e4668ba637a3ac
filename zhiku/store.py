"""The embedded store: one SQLite database (WAL) as the source of truth.

Documents, chunks, knowledge bases and the queue of pending index work live here. The
lexical index (:mod:`zhiku.lexical`) beside the database is derived data: every change
to a document appends a row to ``index_log`` *in the same transaction*, and the index
applies and then clears those rows. A crash anywhere leaves either the old or the new
document in the database, and at worst some ``index_log`` rows that are replayed (the
replay is idempotent) on the next open.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from zhiku.errors import InvalidInput, KnowledgeBaseNotFound
from zhiku.filters import Filter
from zhiku.models import Chunk, Document, Hit
from zhiku.storage import migrate
from zhiku.storage.db import SQLiteDatabase
from zhiku.text import bad_name_chars, visible

SCHEMA_VERSION = migrate.component("core").version



def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


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


class Store:
    """SQLite-backed store. Safe to open from several processes (WAL, busy timeout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A shared lock for as long as the store is open: ``zhiku restore`` takes it
        # exclusively, so it never replaces a database some process still has open.
        self._open_lock = open_lock(path)
        self.database = SQLiteDatabase.open(path)
        # The raw connection, for the statements not yet moved into repositories.
        self.db = self.database.conn
        self._migrate()
        self.db_id = self._ensure_db_id()

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
        row = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name='index_log'"
        ).fetchone()
        return int(row[0]) if row else 0

    # --- schema -----------------------------------------------------------------

    def _migrate(self) -> None:
        migrate.apply(self.database)

    @contextmanager
    def tx(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction; ``immediate`` takes the write lock up front (one writer)."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
        self._open_lock.close()

    # --- meta -------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # --- knowledge bases ----------------------------------------------------------

    def _kb_from_row(self, row: sqlite3.Row) -> KnowledgeBase:
        return KnowledgeBase(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            settings=json.loads(row["settings"]),
            secret=bytes(row["secret"]),
        )

    def get_kb(self, name: str) -> KnowledgeBase:
        row = self.db.execute("SELECT * FROM kbs WHERE name=?", (name,)).fetchone()
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
            if not name or len(name) > 64 or any(c in name for c in "/\\") or \
                    bad_name_chars(name):
                raise InvalidInput(f"知識庫名稱不合法：「{visible(name)}」"
                                 "（1–64 字，不可含 / \\ 或控制字元）")
            self.db.execute(
                "INSERT INTO kbs(name, created_at, settings, secret) VALUES (?, ?, ?, ?)",
                (name, now_iso(), json.dumps(settings or {}, ensure_ascii=False),
                 secrets.token_bytes(32)),
            )
        return self.get_kb(name)

    def list_kbs(self) -> list[KnowledgeBase]:
        rows = self.db.execute("SELECT * FROM kbs ORDER BY name").fetchall()
        return [self._kb_from_row(r) for r in rows]

    def update_kb_settings(self, name: str, settings: dict[str, Any]) -> KnowledgeBase:
        with self.tx(immediate=True):
            kb = self.get_kb(name)
            merged = {**kb.settings, **settings}
            self.db.execute(
                "UPDATE kbs SET settings=? WHERE id=?",
                (json.dumps(merged, ensure_ascii=False), kb.id),
            )
        return self.get_kb(name)

    def delete_kb(self, name: str) -> list[int]:
        """Delete a KB and everything in it; returns the ids of the documents removed."""
        with self.tx(immediate=True):
            kb = self.get_kb(name)
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM documents WHERE kb_id=?", (kb.id,))]
            self.db.execute("DELETE FROM kbs WHERE id=?", (kb.id,))
            self.db.execute("DELETE FROM index_log WHERE kb_id=?", (kb.id,))
        return ids

    # --- documents --------------------------------------------------------------

    def _doc_from_row(self, row: sqlite3.Row) -> Document:
        return Document(
            id=row["id"], kb=row["kb"], path=row["path"], title=row["title"],
            kind=row["kind"], content_hash=row["content_hash"], size=row["size"],
            chunks=row["n_chunks"], added_at=row["added_at"], updated_at=row["updated_at"],
            meta=json.loads(row["meta"]),
        )

    _DOC_SELECT = (
        "SELECT d.*, k.name AS kb, "
        "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id) AS n_chunks "
        "FROM documents d JOIN kbs k ON k.id=d.kb_id "
    )

    def list_documents(self, kb: str, where: Filter | None = None) -> list[Document]:
        kbo = self.get_kb(kb)
        clause, args = where.sql("d") if where else ("1", [])
        rows = self.db.execute(
            self._DOC_SELECT + f"WHERE d.kb_id=? AND {clause} ORDER BY d.path", (kbo.id, *args)
        ).fetchall()
        return [self._doc_from_row(r) for r in rows]

    def document_counts(self, kb_id: int, where: Filter | None = None) -> tuple[int, int]:
        """(documents, chunks) of a KB that pass ``where`` (a caller's access scope)."""
        clause, args = where.sql("d") if where else ("1", [])
        row = self.db.execute(
            "SELECT COUNT(DISTINCT d.id), COUNT(c.id) FROM documents d "
            f"LEFT JOIN chunks c ON c.doc_id=d.id WHERE d.kb_id=? AND {clause}",
            (kb_id, *args)).fetchone()
        return int(row[0]), int(row[1])

    def get_document(self, kb: str, path: str) -> Document | None:
        kbo = self.get_kb(kb)
        row = self.db.execute(
            self._DOC_SELECT + "WHERE d.kb_id=? AND d.path=?", (kbo.id, path)
        ).fetchone()
        return self._doc_from_row(row) if row else None

    def document_hashes(self, kb: str) -> dict[str, tuple[str, int, float | None]]:
        """path → (content hash, size, mtime) for every document of a KB."""
        kbo = self.get_kb(kb)
        return {
            r[0]: (r[1], r[2], r[3])
            for r in self.db.execute(
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
            row = self.db.execute(
                "SELECT id FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, mtime,"
                    " pages, meta, added_at, updated_at, parent_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (kbo.id, path, title, kind, content_hash, size, mtime, pages, meta_json,
                     ts, ts, parent_id),
                )
                doc_id = int(cur.lastrowid or 0)
            else:
                doc_id = int(row[0])
                self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                self.db.execute(
                    "UPDATE documents SET title=?, kind=?, content_hash=?, size=?, mtime=?,"
                    " pages=?, meta=?, updated_at=?, parent_id=? WHERE id=?",
                    (title, kind, content_hash, size, mtime, pages, meta_json, ts, parent_id,
                     doc_id),
                )
            self.db.executemany(
                "INSERT INTO chunks(doc_id, ord, text, section, label, page_start, page_end,"
                " char_start, char_end) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (doc_id, c.ord, c.text, c.section, c.label, c.page_start, c.page_end,
                     c.char_start, c.char_end)
                    for c in chunks
                ],
            )
            self.db.execute(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", (kbo.id, doc_id)
            )
        return doc_id

    def set_document_meta(self, kb: str, path: str, changes: dict[str, Any]) -> bool:
        """Merge ``changes`` into a document's metadata (a ``None`` value removes the key)
        and queue its re-indexing, in one transaction; False when there is no such
        document. Filters read the new values as soon as the index applies the queue."""
        kbo = self.get_kb(kb)
        with self.tx(immediate=True):
            row = self.db.execute(
                "SELECT id, meta FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                return False
            meta = {**json.loads(row["meta"]), **changes}
            meta = {k: v for k, v in meta.items() if v is not None}
            self.db.execute("UPDATE documents SET meta=?, updated_at=? WHERE id=?",
                            (json.dumps(meta, ensure_ascii=False), now_iso(), row["id"]))
            self.db.execute(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", (kbo.id, row["id"]))
        return True

    def filtered_chunk_ids(self, kb_ids: Sequence[int], where: Filter) -> set[int]:
        """Ids of the chunks of ``kb_ids`` whose documents pass ``where`` (one SQL query;
        the vector search ranks only these)."""
        clause, args = where.sql("d")
        kmarks = ",".join("?" * len(kb_ids))
        return {r[0] for r in self.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id "
            f"WHERE d.kb_id IN ({kmarks}) AND {clause}", [*kb_ids, *args])}

    def touch_document(self, kb: str, path: str, mtime: float | None) -> None:
        kbo = self.get_kb(kb)
        self.db.execute(
            "UPDATE documents SET mtime=? WHERE kb_id=? AND path=?", (mtime, kbo.id, path)
        )

    def delete_document(self, kb: str, path: str) -> bool:
        kbo = self.get_kb(kb)
        with self.tx(immediate=True):
            row = self.db.execute(
                "SELECT id FROM documents WHERE kb_id=? AND path=?", (kbo.id, path)
            ).fetchone()
            if row is None:
                return False
            # The document and, through parent_id's ON DELETE CASCADE, its attachments.
            ids = [r[0] for r in self.db.execute(
                "WITH RECURSIVE t(id) AS (SELECT ? UNION ALL "
                "SELECT d.id FROM documents d JOIN t ON d.parent_id=t.id) SELECT id FROM t",
                (row[0],))]
            self.db.execute("DELETE FROM documents WHERE id=?", (row[0],))
            self.db.executemany(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)", [(kbo.id, i) for i in ids]
            )
        return True

    def child_paths(self, kb: str, parent_path: str | None = None) -> set[str]:
        """Paths of documents that live inside another one (of ``parent_path`` only, when
        given: its direct children)."""
        kbo = self.get_kb(kb)
        if parent_path is None:
            rows = self.db.execute(
                "SELECT path FROM documents WHERE kb_id=? AND parent_id IS NOT NULL", (kbo.id,))
        else:
            rows = self.db.execute(
                "SELECT c.path FROM documents c JOIN documents p ON p.id=c.parent_id "
                "WHERE p.kb_id=? AND p.path=?", (kbo.id, parent_path))
        return {r[0] for r in rows}

    # --- chunks -------------------------------------------------------------------

    def chunks_of(self, doc_ids: Iterable[int]) -> Iterator[sqlite3.Row]:
        """Chunks joined with their document's title and section, for indexing."""
        ids = list(doc_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            yield from self.db.execute(
                "SELECT c.id, c.doc_id, c.text, c.section, d.title, d.meta, d.kind FROM chunks c "
                f"JOIN documents d ON d.id=c.doc_id WHERE c.doc_id IN ({marks})",
                part,
            )

    def chunk_docs(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """chunk id → (document id, document title)."""
        out: dict[int, tuple[int, str]] = {}
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                    f"SELECT c.id, c.doc_id, d.title FROM chunks c JOIN documents d "
                    f"ON d.id=c.doc_id WHERE c.id IN ({marks})", part):
                out[int(r[0])] = (int(r[1]), str(r[2]))
        return out

    def chunk_count(self, kb_id: int) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=?",
            (kb_id,)).fetchone()
        return int(row[0])

    def sample_chunk_texts(self, kb_id: int, n: int, seed: int = 7) -> list[str]:
        """Up to ``n`` chunk texts of a KB, spread evenly over it (deterministic)."""
        ids = [r[0] for r in self.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=? "
            "ORDER BY c.id", (kb_id,))]
        if len(ids) > n:
            import random

            ids = sorted(random.Random(seed).sample(ids, n))
        out: list[str] = []
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            out.extend(r[0] for r in self.db.execute(
                f"SELECT text FROM chunks WHERE id IN ({marks}) ORDER BY id", part))
        return out

    def kb_doc_ids(self, kb_id: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM documents WHERE kb_id=?", (kb_id,))]

    def hits_for(self, scored: Sequence[tuple[int, float]], kb_ids: Sequence[int],
                 where: Filter | None = None) -> list[Hit]:
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
        clause, wargs = where.sql("d") if where else ("1", [])
        rows = {
            r["id"]: r
            for r in self.db.execute(
                # CROSS JOIN fixes the loop order: chunks by primary key first.
                "SELECT c.*, d.title, d.path, k.name AS kb FROM chunks c "
                "CROSS JOIN documents d ON d.id=c.doc_id CROSS JOIN kbs k ON k.id=d.kb_id "
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
                    chunk_id=cid, doc_id=r["doc_id"], kb=r["kb"], doc_title=r["title"],
                    path=r["path"], text=r["text"], section=r["section"], label=r["label"],
                    page_start=r["page_start"], page_end=r["page_end"], score=score,
                    ord=r["ord"],
                )
            )
        return hits

    # --- index log ------------------------------------------------------------------

    def pending_index_work(self, kb_id: int) -> tuple[int, list[int]]:
        """(highest seq, distinct doc ids) of the index work not yet applied."""
        rows = self.db.execute(
            "SELECT seq, doc_id FROM index_log WHERE kb_id=? ORDER BY seq", (kb_id,)
        ).fetchall()
        if not rows:
            return 0, []
        return rows[-1][0], list(dict.fromkeys(r[1] for r in rows))

    def clear_index_work(self, kb_id: int, upto_seq: int) -> None:
        self.db.execute("DELETE FROM index_log WHERE kb_id=? AND seq<=?", (kb_id, upto_seq))

    def has_pending_index_work(self, kb_id: int) -> bool:
        return self.db.execute(
            "SELECT 1 FROM index_log WHERE kb_id=? LIMIT 1", (kb_id,)
        ).fetchone() is not None

    # --- stats ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"database": str(self.path), "kbs": []}
        for kb in self.list_kbs():
            docs, chunks, chars = self.db.execute(
                "SELECT COUNT(DISTINCT d.id), COUNT(c.id), COALESCE(SUM(LENGTH(c.text)),0) "
                "FROM documents d LEFT JOIN chunks c ON c.doc_id=d.id WHERE d.kb_id=?",
                (kb.id,),
            ).fetchone()
            out["kbs"].append({"name": kb.name, "documents": docs, "chunks": chunks,
                               "characters": chars})
        try:
            out["database_bytes"] = os.path.getsize(self.path)
        except OSError:
            out["database_bytes"] = 0
        return out

