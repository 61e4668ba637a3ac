"""What the server reads of stored documents for its callers: cited passages, a
passage with its neighbours, a document the caller may see, and the stored upload a
document came from.

:class:`LibraryRepository` is what :mod:`zhiku.server.answering` and the routes of
:mod:`zhiku.server.routes.ask` and :mod:`zhiku.server.routes.documents` need;
:class:`SqlLibrary` implements it in the portable SQL of :mod:`zhiku.storage` over the
``chunks``, ``documents``, ``kbs`` and ``uploads`` tables of component ``core``. A
caller's access scope comes in as a :class:`~zhiku.filters.Filter` and is applied
inside each query, in the database's own dialect. Writing documents and chunks is
:mod:`zhiku.storage.documents`' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from zhiku.storage.db import Database

if TYPE_CHECKING:
    from zhiku.filters import Filter


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """A chunk with the document and KB it belongs to."""

    id: int
    doc_id: int
    ord: int
    text: str
    section: str | None
    label: str | None
    page_start: int | None
    page_end: int | None
    title: str
    path: str
    kb_id: int
    kb: str


@dataclass(frozen=True, slots=True)
class DocumentRef:
    id: int
    path: str
    title: str


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """Where an uploaded file is kept (relative to the server's home) and what it was."""

    stored: str
    sha256: str
    size: int


class LibraryRepository(Protocol):
    def cited_chunks(self, kb_id: int, chunk_ids: Sequence[int]) -> dict[int, int]: ...
    def passage(
        self, chunk_id: int, kbs: Sequence[str], where: Filter | None = None
    ) -> PassageRecord | None: ...
    def neighbours(self, doc_id: int, ord: int) -> dict[int, str]: ...
    def document(
        self, doc_id: int, kb_id: int, where: Filter | None = None
    ) -> DocumentRef | None: ...
    def upload(self, kb_id: int, path: str) -> UploadRecord | None: ...
    def delete_upload(self, kb_id: int, path: str) -> bool: ...
    def stored_in_use(self, stored: str) -> bool: ...


def _marks(values: Sequence[object]) -> str:
    # No values: ``IN (NULL)`` matches nothing on both engines.
    return ",".join("?" * len(values)) or "NULL"


class SqlLibrary:
    """:class:`LibraryRepository` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _scope(self, where: Filter | None) -> tuple[str, list[Any]]:
        return where.sql("d", self.db.dialect) if where is not None else ("1=1", [])

    def cited_chunks(self, kb_id: int, chunk_ids: Sequence[int]) -> dict[int, int]:
        """chunk id → document id, for those of ``chunk_ids`` still in KB ``kb_id``."""
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[int, int] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            out.update(
                {
                    int(r[0]): int(r[1])
                    for r in self.db.execute(
                        "SELECT c.id, c.doc_id FROM chunks c JOIN documents d ON d.id=c.doc_id "
                        f"WHERE d.kb_id=? AND c.id IN ({_marks(part)})",
                        (kb_id, *part),
                    )
                }
            )
        return out

    def passage(
        self, chunk_id: int, kbs: Sequence[str], where: Filter | None = None
    ) -> PassageRecord | None:
        """The chunk if it is in one of ``kbs`` and its document passes ``where``."""
        visible, args = self._scope(where)
        row = self.db.execute(
            "SELECT c.id, c.doc_id, c.ord, c.text, c.section, c.label, c.page_start, "
            "c.page_end, d.title, d.path, d.kb_id, k.name AS kb FROM chunks c "
            "JOIN documents d ON d.id=c.doc_id JOIN kbs k ON k.id=d.kb_id "
            f"WHERE c.id=? AND k.name IN ({_marks(kbs)}) AND {visible}",
            (chunk_id, *kbs, *args),
        ).fetchone()
        if row is None:
            return None
        return PassageRecord(
            id=int(row["id"]),
            doc_id=int(row["doc_id"]),
            ord=int(row["ord"]),
            text=row["text"],
            section=row["section"],
            label=row["label"],
            page_start=row["page_start"],
            page_end=row["page_end"],
            title=row["title"],
            path=row["path"],
            kb_id=int(row["kb_id"]),
            kb=row["kb"],
        )

    def neighbours(self, doc_id: int, ord: int) -> dict[int, str]:
        """ord → text of the chunks just before and after ``ord`` in the document."""
        return {
            int(r[0]): r[1]
            for r in self.db.execute(
                "SELECT ord, text FROM chunks WHERE doc_id=? AND ord IN (?, ?)",
                (doc_id, ord - 1, ord + 1),
            )
        }

    def document(self, doc_id: int, kb_id: int, where: Filter | None = None) -> DocumentRef | None:
        """The document if it is in KB ``kb_id`` and passes ``where``."""
        visible, args = self._scope(where)
        row = self.db.execute(
            f"SELECT id, path, title FROM documents d WHERE id=? AND kb_id=? AND {visible}",
            (doc_id, kb_id, *args),
        ).fetchone()
        return None if row is None else DocumentRef(int(row[0]), row[1], row[2])

    def upload(self, kb_id: int, path: str) -> UploadRecord | None:
        row = self.db.execute(
            "SELECT stored, sha256, size FROM uploads WHERE kb_id=? AND path=?", (kb_id, path)
        ).fetchone()
        return None if row is None else UploadRecord(row[0], row[1], int(row[2]))

    def delete_upload(self, kb_id: int, path: str) -> bool:
        return (
            self.db.execute("DELETE FROM uploads WHERE kb_id=? AND path=?", (kb_id, path)).rowcount
            > 0
        )

    def stored_in_use(self, stored: str) -> bool:
        """Whether any upload row still points at the stored file (shared by content);
        the uploads table is the jobs repository's, which answers this."""
        from zhiku.storage.jobs import SqlJobs

        return SqlJobs(self.db).stored_in_use(stored)
