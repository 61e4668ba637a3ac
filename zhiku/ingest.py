"""Ingest folders of office files into a knowledge base, incrementally and safely.

Each file is hashed; an unchanged file is skipped, a changed one is replaced, and the
document with all its chunks is written in one SQLite transaction. The lexical index
is brought up to date in batches from the store's ``index_log``: killing the process
at any moment loses nothing, and a re-run finishes the job.

Files are read through :func:`zhiku.limits.load_isolated` (a worker process with time
and memory budgets). Two ingest or sync runs on one data directory take turns on
``run/ingest.lock``: the second waits (``on_wait`` tells the user) instead of racing
the first for the index writer and the database; an index writer held by another
process (a server) leaves the index work queued instead of failing the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku import limits, loaders
from zhiku.engine import Zhiku, file_hash
from zhiku.errors import LoadError
from zhiku.lexical import IndexBusy

log = logging.getLogger("zhiku.ingest")

# Documents that are not files on this machine (``sync`` never removes them as missing):
# benchmark corpora, server uploads, crawled web pages (zhiku.sources.web).
VIRTUAL_PREFIXES = ("drcd://", "twlaw://", "upload://", "mem://", "http://", "https://")


@dataclass(slots=True)
class FileResult:
    path: str
    status: str  # added | updated | unchanged | skipped | failed | removed
    reason: str | None = None
    message: str | None = None
    chunks: int = 0
    pages: int = 0
    masked: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    masked: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.count("added"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "removed": self.count("removed"),
            "skipped": [f.path for f in self.files if f.status == "skipped"],
            "failed": [
                {"path": f.path, "reason": f.reason, "message": f.message} for f in self.failed
            ],
            "chunks": self.chunks,
            "pages": self.pages,
            "bytes": self.bytes,
            "masked": {k: v for k, v in sorted(self.masked.items()) if v},
            "seconds": round(self.seconds, 3),
        }


def _hidden(name: str) -> bool:
    return name.startswith((".", "~$"))


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under ``paths`` (recursively, sorted, hidden and Office lock files skipped)."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not _hidden(d))
                for name in sorted(files):
                    if not _hidden(name):
                        yield Path(root) / name
        else:
            yield p


OnFile = Callable[[FileResult], None]


@contextlib.contextmanager
def ingest_lock(home: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """One ingest/sync run at a time per data directory; waits for the one running."""
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "ingest.lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sync_quietly(zk: Zhiku, kb: str, keep_writer: bool = False) -> None:
    """Apply queued index work; when another process holds the index writer the work
    stays queued in ``index_log`` and that process (or the next search) applies it."""
    try:
        zk.sync_index(kb, keep_writer=keep_writer)
    except IndexBusy:
        log.info("index writer busy in another process; index work left queued")


def ingest_file(
    zk: Zhiku,
    kb: str,
    path: Path,
    known: dict[str, tuple[str, int, float | None]] | None = None,
    *,
    doc_path: str | None = None,
    meta: dict[str, Any] | None = None,
) -> FileResult:
    """Ingest one file; never raises for a bad file, returns its result instead.

    ``doc_path`` stores the document under another path than the file's own, such as
    the server's ``upload://<kb>/<name>`` for a file kept in its upload area.
    ``meta`` (normalised by :func:`zhiku.filters.normalize_meta`) is merged over the
    loader's metadata; for an unchanged file it is applied to the stored document.
    """
    spath = doc_path or str(path.resolve())
    if loaders.loader_for(path) is None:
        return FileResult(spath, "skipped", "unsupported", "不支援的檔案格式")
    try:
        st = path.stat()
        digest = file_hash(path)
    except OSError as exc:
        return FileResult(spath, "failed", "unreadable", f"無法讀取檔案：{exc.strerror or exc}")
    if known is not None:
        prev = known.get(spath)
    else:
        doc = zk.store.get_document(kb, spath)
        prev = (doc.content_hash, doc.size, None) if doc else None
    if prev is not None and prev[0] == digest:
        if meta:
            doc = zk.store.get_document(kb, spath)
            if doc is not None and any(doc.meta.get(k) != v for k, v in meta.items()):
                zk.store.set_document_meta(kb, spath, meta)
        return FileResult(spath, "unchanged")
    try:
        loaded = limits.load_isolated(path)
    except LoadError as exc:
        return FileResult(spath, "failed", exc.reason, exc.message)
    except Exception as exc:  # noqa: BLE001 - a parser library choking must not stop the batch
        msg = f"無法解析檔案（{type(exc).__name__}: {exc}）"
        return FileResult(spath, "failed", "corrupt", msg)
    _, n_chunks, masked = zk.add_loaded(
        kb, spath, loaded, content_hash=digest, size=st.st_size, mtime=st.st_mtime, meta=meta
    )
    return FileResult(spath, "updated" if prev is not None else "added", chunks=n_chunks,
                      pages=loaded.pages or 0, masked=masked)


def ingest_paths(
    zk: Zhiku,
    paths: Iterable[Path],
    kb: str,
    on_file: OnFile | None = None,
    sync_every: float = 5.0,
    meta: dict[str, Any] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> IngestReport:
    """Ingest files and folders into ``kb`` (created if missing), each with ``meta``."""
    with ingest_lock(zk.home, on_wait):
        return _ingest_paths(zk, paths, kb, on_file, sync_every, meta)


def _ingest_paths(zk: Zhiku, paths: Iterable[Path], kb: str, on_file: OnFile | None,
                  sync_every: float, meta: dict[str, Any] | None) -> IngestReport:
    zk.kb(kb, create=True)
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)
    last_sync = time.monotonic()
    try:
        for path in walk(paths):
            if not path.exists():
                res = FileResult(str(path), "failed", "missing", "找不到檔案或資料夾")
            else:
                res = ingest_file(zk, kb, path, known, meta=meta)
                report.masked.update(res.masked)
                if res.status in ("added", "updated"):
                    report.bytes += path.stat().st_size
            report.files.append(res)
            if on_file is not None:
                on_file(res)
            if time.monotonic() - last_sync > sync_every:
                _sync_quietly(zk, kb, keep_writer=True)
                last_sync = time.monotonic()
    finally:
        _sync_quietly(zk, kb)
    report.seconds = time.perf_counter() - t0
    return report


def sync_kb(zk: Zhiku, kb: str, on_file: OnFile | None = None,
            on_wait: Callable[[], None] | None = None) -> IngestReport:
    """Re-check every stored document: re-ingest changed files, remove vanished ones."""
    with ingest_lock(zk.home, on_wait):
        return _sync_kb(zk, kb, on_file)


def _sync_kb(zk: Zhiku, kb: str, on_file: OnFile | None) -> IngestReport:
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)
    try:
        for spath in sorted(known):
            if spath.startswith(VIRTUAL_PREFIXES):
                continue
            p = Path(spath)
            if not p.exists():
                zk.remove(kb, spath)
                res = FileResult(spath, "removed")
            else:
                res = ingest_file(zk, kb, p, known)
            report.files.append(res)
            if on_file is not None:
                on_file(res)
    finally:
        _sync_quietly(zk, kb)
    report.seconds = time.perf_counter() - t0
    return report
