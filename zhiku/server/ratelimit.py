"""Per-key rate limiting: a token bucket per API key (or session, or client address).

Two implementations of one ``hit`` method:

- :class:`RateLimiter` keeps the buckets in the process's memory: the embedded default
  (one SQLite file, one machine). With ``--workers N`` every process keeps its own
  buckets, so a key can reach up to N times the configured rate in total; connections
  from one client usually stay on one worker.
- :class:`SharedRateLimiter` keeps them in the database (:mod:`zhiku.storage.nodes`),
  refilled and spent in one atomic statement: every process of every node behind a load
  balancer enforces one limit. The server uses it when its database is PostgreSQL.

The limit protects the server from a runaway script, not from an attacker who holds
many keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from zhiku.storage.db import Database
from zhiku.storage.nodes import SqlRateBuckets


class RateLimiter:
    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def hit(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # bound memory against a flood of distinct keys
                self._buckets.clear()
            return (cost - tokens) / self.rate


class SharedRateLimiter(RateLimiter):
    """The same limit, counted in the database shared by every node.

    ``database`` gives the calling thread's connection. ``scope`` prefixes the bucket
    names so that two limiters (requests, sign-in failures) never share a bucket.
    Buckets idle long enough to be full again are deleted now and then.
    """

    def __init__(
        self, per_minute: float, burst: int, database: Callable[[], Database], scope: str
    ) -> None:
        super().__init__(per_minute, burst)
        self._database = database
        self.scope = scope
        self._next_prune = 0.0

    def hit(self, key: str, cost: float = 1.0) -> float:
        if not self.enabled:
            return 0.0
        now = time.time()
        buckets = SqlRateBuckets(self._database())
        wait = buckets.take(f"{self.scope}:{key}", cost, self.rate, self.burst, now)
        if now >= self._next_prune:
            self._next_prune = now + 300
            buckets.prune(now - self.burst / self.rate - 60)
        return wait


def make_limiter(
    per_minute: float, burst: int, shared: Callable[[], Database] | None, scope: str
) -> RateLimiter:
    """A :class:`SharedRateLimiter` when the server's database is ``shared`` (the
    thread's connection to it), else a per-process :class:`RateLimiter`."""
    if shared is None:
        return RateLimiter(per_minute, burst)
    return SharedRateLimiter(per_minute, burst, shared, scope)
