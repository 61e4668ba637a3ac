"""A pool of engines, so concurrent requests never share one SQLite connection.

:class:`zhiku.engine.Zhiku` owns one SQLite connection and its index handles; a request
checks one out for as long as it needs it (a streamed answer keeps it until the last
event, whichever threads the stream's steps run on) and gives it back. Engines are
created on demand up to ``size`` and reused, most recently used first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zhiku.engine import Zhiku


class PoolTimeout(Exception):
    """No engine became free in time (the server is overloaded)."""


class EnginePool:
    def __init__(self, home: Path, size: int = 8, timeout: float = 30.0) -> None:
        self.home = home
        self.size = size
        self.timeout = timeout
        self._free: list[Zhiku] = []
        self._all: list[Zhiku] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    @contextmanager
    def engine(self) -> Iterator[Zhiku]:
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolTimeout
        try:
            with self._lock:
                zk = self._free.pop() if self._free else None
            if zk is None:
                zk = Zhiku(self.home)
                with self._lock:
                    self._all.append(zk)
            try:
                yield zk
            finally:
                with self._lock:
                    self._free.append(zk)
        finally:
            self._slots.release()

    @property
    def created(self) -> int:
        return len(self._all)

    def close(self) -> None:
        with self._lock:
            engines, self._all, self._free = self._all, [], []
        for zk in engines:
            zk.close()
