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

Files inside files (e-mail attachments, ZIP members) are ingested as documents of their
own, stored under ``<parent path>#<name>`` with a link to their parent (deleted with it),
titled 「parent › name」 so that their citations name the message or archive they came
from; nesting is limited to :data:`MAX_NESTING` levels. OCR results are cached per page
under ``<ZHIKU_HOME>/ocr-cache`` (see :mod:`zhiku.ocr`), so an interrupted ingest of a
scan resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku import limits, loaders, ocr
from zhiku.engine import Zhiku, file_hash
from zhiku.errors import LoadError
from zhiku.lexical import IndexBusy
from zhiku.models import ChildFile

MAX_NESTING = 3  # an attachment of a message inside an archive inside an archive: refused

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
    children: list[FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def flat(self) -> Iterator[FileResult]:
        """This result and those of the files found inside it, depth first."""
        yield self
        for c in self.children:
            yield from c.flat()


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
            "warnings": [{"path": f.path, "message": w} for f in self.files for w in f.warnings],
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
_UNSAFE_NAME_RE = re.compile(r"[^\w.\-\u3000-\u9fff\uf900-\uffef]+")


def _ocr_warnings(meta: dict[str, object]) -> list[str]:
    info = meta.get("ocr")
    if not isinstance(info, dict) or not info.get("low_confidence_pages"):
        return []
    pages = "、".join(str(p) for p in info["low_confidence_pages"])
    return [f"OCR 辨識信心偏低的頁面：第 {pages} 頁（請人工確認）"]


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


def _load(
    zk: Zhiku, path: Path, on_page: ocr.PageProgress | None, should_stop: Callable[[], bool] | None
) -> Any:
    """Read a file in a worker process within the time and memory budgets
    (:func:`zhiku.limits.load_isolated`); a file with pages to OCR, once the worker has
    opened it safely, is read again here, where OCR has its page cache, progress and
    interruption (OCR is bounded by its own page and pixel limits)."""
    try:
        return limits.load_isolated(path)
    except LoadError as exc:
        if exc.reason != ocr.NEEDS_OCR:
            raise
    with ocr.ocr_session(zk.home / "ocr-cache", on_page, should_stop):
        return loaders.load(path)


def missing_file(path: Path) -> FileResult:
    """The result for a path given to ingest that does not exist."""
    return FileResult(str(path), "failed", "missing", "找不到檔案或資料夾")


def ingest_file(
    zk: Zhiku,
    kb: str,
    path: Path,
    known: dict[str, tuple[str, int, float | None]] | None = None,
    *,
    doc_path: str | None = None,
    meta: dict[str, Any] | None = None,
    on_page: ocr.PageProgress | None = None,
    parent: tuple[int, str] | None = None,
    depth: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> FileResult:
    """Ingest one file; never raises for a bad file, returns its result instead.

    ``doc_path`` stores the document under another path than the file's own, such as
    the server's ``upload://<kb>/<name>`` for a file kept in its upload area.
    ``meta`` (normalised by :func:`zhiku.filters.normalize_meta`) is merged over the
    loader's metadata; for an unchanged file it is applied to the stored document.
    ``on_page`` is told about every page OCR'd; ``should_stop`` ends a long OCR before
    its next page (:class:`zhiku.ocr.OcrInterrupted` propagates, nothing is stored).
    ``parent`` (doc id, title) and ``depth`` are set for files found inside another
    file; their results are in ``children``.
    """
    spath = doc_path or str(path.resolve())
    parent_id, parent_title = parent if parent is not None else (None, None)
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
        loaded = _load(zk, path, on_page, should_stop)
    except LoadError as exc:
        return FileResult(spath, "failed", exc.reason, exc.message)
    except Exception as exc:  # noqa: BLE001 - a parser library choking must not stop the batch
        msg = f"無法解析檔案（{type(exc).__name__}: {exc}）"
        return FileResult(spath, "failed", "corrupt", msg)
    if parent_title is not None:
        loaded.title = f"{parent_title} › {loaded.title}"
        loaded.meta["parent"] = spath.rsplit("#", 1)[0]
    doc_id, n_chunks, masked = zk.add_loaded(
        kb,
        spath,
        loaded,
        content_hash=digest,
        size=st.st_size,
        mtime=st.st_mtime,
        parent_id=parent_id,
        meta=meta,
    )
    res = FileResult(
        spath,
        "updated" if prev is not None else "added",
        chunks=n_chunks,
        pages=loaded.pages or 0,
        masked=masked,
        warnings=_ocr_warnings(loaded.meta),
    )
    if loaded.children or prev is not None:
        with ocr.ocr_session(should_stop=should_stop):  # inherited by the children
            res.children = _ingest_children(
                zk, kb, spath, doc_id, loaded.title, loaded.children, depth, on_page
            )
    return res


def _ingest_children(
    zk: Zhiku,
    kb: str,
    parent_path: str,
    parent_id: int,
    parent_title: str,
    children: list[ChildFile],
    depth: int,
    on_page: ocr.PageProgress | None,
) -> list[FileResult]:
    """Ingest the files found inside a stored document; drop those no longer inside it."""
    results: list[FileResult] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="zhiku-inner-") as tmp:
        for i, child in enumerate(children):
            cpath = f"{parent_path}#{child.name}"
            seen.add(cpath)
            if child.error is not None:
                results.append(FileResult(cpath, "failed", child.error[0], child.error[1]))
                continue
            if depth + 1 > MAX_NESTING:
                results.append(
                    FileResult(
                        cpath, "failed", "too_deep", f"檔案內嵌套層數超過 {MAX_NESTING} 層，未匯入"
                    )
                )
                continue
            base = _UNSAFE_NAME_RE.sub("_", child.name.replace("\\", "/").rsplit("/", 1)[-1])
            local = Path(tmp) / str(i) / (base[-120:] or "file")  # the name gives the title
            local.parent.mkdir()
            local.write_bytes(child.data)
            res = ingest_file(
                zk,
                kb,
                local,
                doc_path=cpath,
                on_page=on_page,
                parent=(parent_id, parent_title),
                depth=depth + 1,
            )
            local.unlink()
            results.append(res)
    for gone in sorted(zk.store.child_paths(kb, parent_path) - seen):
        zk.remove(kb, gone)
        results.append(FileResult(gone, "removed"))
    return results


def ingest_paths(
    zk: Zhiku,
    paths: Iterable[Path],
    kb: str,
    on_file: OnFile | None = None,
    sync_every: float = 5.0,
    meta: dict[str, Any] | None = None,
    on_wait: Callable[[], None] | None = None,
    on_page: ocr.PageProgress | None = None,
) -> IngestReport:
    """Ingest files and folders into ``kb`` (created if missing), each with ``meta``.

    ``on_file`` is called once per file given (its ``children`` hold the results of the
    files found inside it); ``report.files`` lists them all, children included."""
    with ingest_lock(zk.home, on_wait):
        return _ingest_paths(zk, paths, kb, on_file, sync_every, meta, on_page)


def _ingest_paths(
    zk: Zhiku,
    paths: Iterable[Path],
    kb: str,
    on_file: OnFile | None,
    sync_every: float,
    meta: dict[str, Any] | None,
    on_page: ocr.PageProgress | None,
) -> IngestReport:
    zk.kb(kb, create=True)
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)
    last_sync = time.monotonic()
    try:
        for path in walk(paths):
            if not path.exists():
                res = missing_file(path)
            else:
                res = ingest_file(zk, kb, path, known, meta=meta, on_page=on_page)
                for r in res.flat():
                    report.masked.update(r.masked)
                if res.status in ("added", "updated"):
                    report.bytes += path.stat().st_size
            report.files.extend(res.flat())
            if on_file is not None:
                on_file(res)
            if time.monotonic() - last_sync > sync_every:
                _sync_quietly(zk, kb, keep_writer=True)
                last_sync = time.monotonic()
    finally:
        _sync_quietly(zk, kb)
    report.seconds = time.perf_counter() - t0
    return report


def sync_kb(
    zk: Zhiku, kb: str, on_file: OnFile | None = None, on_wait: Callable[[], None] | None = None
) -> IngestReport:
    """Re-check every stored document: re-ingest changed files, remove vanished ones."""
    with ingest_lock(zk.home, on_wait):
        return _sync_kb(zk, kb, on_file)


def _sync_kb(zk: Zhiku, kb: str, on_file: OnFile | None) -> IngestReport:
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)
    inner = zk.store.child_paths(kb)  # re-checked through the file they are inside
    try:
        for spath in sorted(known):
            if spath.startswith(VIRTUAL_PREFIXES) or spath in inner:
                continue
            p = Path(spath)
            if not p.exists():
                zk.remove(kb, spath)
                res = FileResult(spath, "removed")
            else:
                res = ingest_file(zk, kb, p, known)
            report.files.extend(res.flat())
            if on_file is not None:
                on_file(res)
    finally:
        _sync_quietly(zk, kb)
    report.seconds = time.perf_counter() - t0
    return report
