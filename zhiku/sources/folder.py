"""One folder brought in line with a knowledge base: new and changed files ingested,
vanished ones removed. ``zhiku watch`` runs it at start (so a restart after a crash or a
stretch offline catches up), and folder sources run it on their schedule.

A file whose size and modification time match the stored document is not even read
(a NAS share of thousands of files is re-checked in seconds); any other file is hashed
and re-ingested only when its content changed.

Safety: a folder that is missing, or that suddenly lists no files at all while the KB
holds documents from it, is almost always an unmounted share, not a deliberate mass
deletion; the sync then stops with :class:`FolderUnavailable` and removes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.ingest import FileResult, IngestReport, ingest_file, walk


class FolderUnavailable(ZhikuError):
    """The folder is missing or looks unmounted; nothing was removed."""

    exit_code = 4


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def sync_folder(
    zk: Zhiku,
    kb: str,
    root: Path,
    *,
    meta: dict[str, Any] | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    allow_empty: bool = False,
) -> IngestReport:
    """Make ``kb``'s documents under ``root`` match the files there now."""
    zk.kb(kb, create=True)
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise FolderUnavailable(
            f"資料夾 {root} 不存在或無法存取（網路磁碟未掛載？），未移除任何文件"
        )
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)
    mine = {p for p in known if under(p, str(root))}
    seen: set[str] = set()
    last_sync = time.monotonic()

    def record(res: FileResult) -> None:
        report.files.append(res)
        if on_file is not None:
            on_file(res)

    try:
        for path in walk([root]):
            if should_stop is not None and should_stop():
                return report  # nothing removed on an interrupted pass
            spath = str(path.resolve())
            seen.add(spath)
            prev = known.get(spath)
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat: the removal pass sees it
            if prev is not None and prev[1] == st.st_size and prev[2] == st.st_mtime:
                record(FileResult(spath, "unchanged"))
                continue
            res = ingest_file(zk, kb, path, known, meta=meta)
            report.masked.update(res.masked)
            if res.status in ("added", "updated"):
                report.bytes += st.st_size
            elif res.status == "unchanged" and prev is not None:
                zk.store.touch_document(kb, spath, st.st_mtime)
            record(res)
            if time.monotonic() - last_sync > 5.0:
                zk.sync_index(kb, keep_writer=True)
                last_sync = time.monotonic()
        gone = sorted(mine - seen)
        if gone and not seen and not allow_empty:
            raise FolderUnavailable(
                f"資料夾 {root} 目前沒有任何檔案，但知識庫中有 {len(gone)} 份來自此處的文件；"
                "疑似網路磁碟未掛載，未移除任何文件"
            )
        for spath in gone:
            if zk.remove(kb, spath):
                record(FileResult(spath, "removed"))
    finally:
        zk.sync_index(kb)
        report.seconds = time.perf_counter() - t0
    return report
