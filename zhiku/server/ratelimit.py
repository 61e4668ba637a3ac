"""Per-key rate limiting: a token bucket per API key, in each server process.

With ``--workers N`` every process keeps its own buckets, so a key can reach up to N
times the configured rate in total; connections from one client usually stay on one
worker. The limit protects the server from a runaway script, not from an attacker who
holds many keys.
"""

from __future__ import annotations

import threading
import time


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
