"""One writer at a time, across the threads and worker processes of a server.

SQLite allows one write transaction at a time; a writer that finds the database locked
sleeps in SQLite's busy handler (1, 2, 5, 10… up to 100 ms between tries), which under
load turns into a long latency tail. The server's own writes (conversation turns, audit
rows, feedback, jobs) queue instead on a thread lock and an ``flock`` on a file beside the
database, and each is handed the lock the moment the previous writer releases it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: threads of one process only
    fcntl = None  # type: ignore[assignment]


class WriteGate:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        if fcntl is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> WriteGate:
        self._lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
