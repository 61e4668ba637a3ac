"""One writer at a time, across the threads and worker processes of a server.

SQLite allows one write transaction at a time; a writer that finds the database locked
sleeps in SQLite's busy handler (1, 2, 5, 10… up to 100 ms between tries), which under
load turns into a long latency tail. The server's own writes (conversation turns, audit
rows, feedback, jobs) queue instead on a thread lock and an ``flock`` on a file beside the
database, and each is handed the lock the moment the previous writer releases it.

On PostgreSQL there is nothing to queue for: writers of different rows proceed side by
side and those of one row wait on its row lock, across every node. The server then uses
:class:`OpenGate`, which holds nothing (an advisory lock would only serialise the whole
cluster's writes behind one key).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from zhiku.storage.db import Dialect

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class OpenGate:
    """The write gate of a PostgreSQL-backed server: no queue (see the module doc)."""

    def __enter__(self) -> OpenGate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def close(self) -> None:
        return None


def gate_for(dialect: Dialect, path: Path) -> WriteGate | OpenGate:
    """The gate a server on a database of ``dialect`` needs (``path``: SQLite's lock file)."""
    return OpenGate() if dialect == "postgresql" else WriteGate(path)
