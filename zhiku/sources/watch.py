"""``zhiku watch PATH --kb NAME``: keep a folder and a knowledge base in sync, continuously.

- **Resumable, crash-safe**: the watcher first reconciles the whole folder with the KB
  (:func:`zhiku.sources.folder.sync_folder`), so whatever happened while it was not
  running (a crash, ``kill -9``, a reboot) is caught up; every file is then stored in one
  SQLite transaction and the index catches up from the store's queue, so killing it at
  any moment loses nothing.
- **Events** come from watchdog (inotify, FSEvents, ReadDirectoryChangesW). Mounted
  SMB/NFS shares do not deliver change events for edits made by other machines: use
  ``--poll`` (watchdog's polling observer) there, and ``--rescan`` for a periodic full
  reconciliation as a safety net.
- **Debounced**: a path is processed once no event touched it for ``debounce_s``
  seconds, so a file being copied or saved in several writes is read once, complete.
- **Add, change, rename, delete**: a path is looked at as it is *now* when its turn comes:
  a file is ingested (unchanged content is skipped by hash), a folder is reconciled, a
  path that no longer exists is removed with everything under it. A rename is a delete
  of the old path and an add of the new one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.ingest import FileResult, IngestReport, ingest_file
from zhiku.sources.folder import FolderUnavailable, sync_folder, under

log = logging.getLogger("zhiku.watch")


def _hidden(path: str, root: str) -> bool:
    rel = os.path.relpath(path, root)
    return any(part.startswith((".", "~$")) for part in rel.split(os.sep) if part != ".")


class _Collector(FileSystemEventHandler):
    """Records the paths events touch, with the time of the latest event."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.pending: dict[str, float] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()

    def _touch(self, path: str | bytes) -> None:
        p = os.fsdecode(path)
        if not p or not under(p, self.root) or p == self.root or _hidden(p, self.root):
            return
        with self.lock:
            self.pending[p] = time.monotonic()
        self.wake.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self._touch(event.src_path)
        dest = getattr(event, "dest_path", "")
        if dest:
            self._touch(dest)

    def due(self, debounce_s: float) -> list[str]:
        now = time.monotonic()
        with self.lock:
            ready = sorted(p for p, t in self.pending.items() if now - t >= debounce_s)
            for p in ready:
                del self.pending[p]
        return ready


class Watcher:
    """Watches ``root`` and applies its changes to ``kb``; :meth:`run` blocks."""

    def __init__(
        self,
        zk: Zhiku,
        kb: str,
        root: Path,
        *,
        meta: dict[str, Any] | None = None,
        debounce_s: float = 2.0,
        poll: bool = False,
        poll_interval_s: float = 5.0,
        rescan_s: float | None = None,
        on_file: Callable[[FileResult], None] | None = None,
        on_reconciled: Callable[[IngestReport], None] | None = None,
    ) -> None:
        self.zk = zk
        self.kb = kb
        self.root = root.expanduser().resolve()
        self.meta = meta
        self.debounce_s = debounce_s
        self.poll = poll
        self.poll_interval_s = poll_interval_s
        self.rescan_s = rescan_s
        self.on_file = on_file
        self.on_reconciled = on_reconciled
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once the first reconciliation is done
        self.error: ZhikuError | None = None  # why run() gave up (the folder is unavailable)
        self.collector = _Collector(str(self.root))

    def stop(self) -> None:
        self.stop_event.set()
        self.collector.wake.set()

    def _emit(self, res: FileResult) -> None:
        if self.on_file is not None:
            self.on_file(res)

    def reconcile(self) -> IngestReport:
        report = sync_folder(
            self.zk,
            self.kb,
            self.root,
            meta=self.meta,
            on_file=self.on_file,
            should_stop=self.stop_event.is_set,
        )
        if self.on_reconciled is not None:
            self.on_reconciled(report)
        return report

    def apply(self, paths: list[str]) -> None:
        """Bring each path's documents in line with what is on disk now."""
        known = self.zk.store.document_hashes(self.kb)
        for p in paths:
            if self.stop_event.is_set():
                # Not lost: the next start reconciles the whole folder.
                return
            path = Path(p)
            if path.is_file():
                self._emit(ingest_file(self.zk, self.kb, path, known, meta=self.meta))
            elif path.is_dir():
                self._emit_all(
                    sync_folder(
                        self.zk,
                        self.kb,
                        path,
                        meta=self.meta,
                        should_stop=self.stop_event.is_set,
                        allow_empty=True,
                    )
                )
            elif not self._root_present():
                # An unmounted share looks like every file deleted: remove nothing.
                log.warning(
                    "watched folder unavailable; removals postponed", extra={"root": str(self.root)}
                )
                return
            else:
                for spath in sorted(s for s in known if under(s, p)):
                    if self.zk.remove(self.kb, spath):
                        self._emit(FileResult(spath, "removed"))
        self.zk.sync_index(self.kb)

    def _root_present(self) -> bool:
        try:
            return self.root.is_dir() and any(self.root.iterdir())
        except OSError:
            return False

    def _emit_all(self, report: IngestReport) -> None:
        for f in report.files:
            if f.status != "unchanged":
                self._emit(f)

    def run(self) -> None:
        observer = PollingObserver(timeout=self.poll_interval_s) if self.poll else Observer()
        # Events are collected from before the reconciliation, so nothing that changes
        # during it is missed (a path seen by both is simply looked at twice).
        observer.schedule(self.collector, str(self.root), recursive=True)
        observer.start()
        try:
            try:
                self.reconcile()
            except ZhikuError as exc:  # unavailable folder, unknown KB: nothing to watch
                self.error = exc
                return
            finally:
                self.ready.set()
            last_scan = time.monotonic()
            while not self.stop_event.is_set():
                self.collector.wake.wait(min(self.debounce_s / 2, 1.0))
                self.collector.wake.clear()
                due = self.collector.due(self.debounce_s)
                try:
                    if due:
                        self.apply(due)
                    if self.rescan_s and time.monotonic() - last_scan >= self.rescan_s:
                        last_scan = time.monotonic()
                        self.reconcile()
                except FolderUnavailable as exc:  # a share gone away: retried next rescan
                    log.warning("%s", exc)
                    self._emit(FileResult(str(self.root), "failed", "unavailable", str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad batch must not end the watch
                    log.exception("watch batch failed")
                    self._emit(
                        FileResult(
                            str(self.root), "failed", "error", f"{type(exc).__name__}: {exc}"
                        )
                    )
        finally:
            observer.stop()
            observer.join(5.0)
            self.zk.sync_index(self.kb)
