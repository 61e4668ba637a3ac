"""Shared state of the server nodes: rate-limit token buckets and metric snapshots.

Several ``zhiku serve`` processes (on one machine or many) sharing one database use
these tables instead of per-process memory:

- :class:`SqlRateBuckets`: one token bucket per key. Refilling and spending happen in
  one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement, atomic on both engines
  (SQLite's writer lock; PostgreSQL's row lock on the conflicting row), so two nodes
  never both spend the last token. Times are wall-clock seconds (``time.time()``) from
  the calling node; a clock that went backwards refills nothing rather than spending.
- :class:`SqlNodeMetrics`: every process publishes its counters as a JSON snapshot under
  its node name, with the time it was seen; readers skip snapshots older than a limit
  (a node that died) and :meth:`SqlNodeMetrics.prune` deletes them.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from zhiku.storage.db import Database


def _take_sql(dialect: str) -> str:
    """Refill and spend in one statement; the SET expressions all read the old row.

    The bucket's tokens after the refill are ``min(burst, tokens + elapsed × rate)``,
    with ``elapsed`` clamped at 0; the new rate, burst and cost come in as ``excluded``.
    """
    least, greatest = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
    b = "node_rate_buckets"
    refill = (
        f"{least}(excluded.burst, {b}.tokens + {greatest}(0, excluded.ts - {b}.ts) * excluded.rate)"
    )
    return (
        f"INSERT INTO {b}(bucket, tokens, ts, granted, rate, burst, cost) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(bucket) DO UPDATE SET "
        f"granted = CASE WHEN {refill} >= excluded.cost THEN 1 ELSE 0 END, "
        f"tokens = {refill} - CASE WHEN {refill} >= excluded.cost "
        "THEN excluded.cost ELSE 0 END, "
        f"ts = {greatest}({b}.ts, excluded.ts), "
        "rate = excluded.rate, burst = excluded.burst, cost = excluded.cost "
        "RETURNING tokens, granted"
    )


@runtime_checkable
class RateBuckets(Protocol):
    def take(self, key: str, cost: float, rate: float, burst: float, now: float) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket (``rate`` tokens a second, at most
        ``burst``): 0.0 when granted, else the seconds until it would be."""
        ...

    def prune(self, older_than: float) -> int:
        """Forget buckets untouched since ``older_than`` (full again by then)."""
        ...


class SqlRateBuckets:
    """:class:`RateBuckets` on ``node_rate_buckets``, in portable SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, key: str, cost: float, rate: float, burst: float, now: float) -> float:
        fits = burst >= cost
        row = self.db.execute(
            _take_sql(self.db.dialect),
            (key, burst - cost if fits else burst, now, int(fits), rate, burst, cost),
        ).fetchall()[0]  # fetchall: a SQLite statement left unfinished keeps its lock
        tokens, granted = float(row[0]), int(row[1])
        if granted:
            return 0.0
        return (cost - tokens) / rate if rate > 0 else float("inf")

    def prune(self, older_than: float) -> int:
        return int(
            self.db.execute("DELETE FROM node_rate_buckets WHERE ts < ?", (older_than,)).rowcount
            or 0
        )


@runtime_checkable
class NodeMetrics(Protocol):
    def publish(self, node: str, snapshot: dict[str, Any], now: float) -> None:
        """Record ``node``'s current snapshot (replacing its previous one)."""
        ...

    def snapshots(
        self, since: float, exclude: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """(node, snapshot) of every node seen at ``since`` or later, but ``exclude``."""
        ...

    def remove(self, node: str) -> None: ...

    def prune(self, older_than: float) -> int:
        """Delete the snapshots of nodes not seen since ``older_than``."""
        ...


class SqlNodeMetrics:
    """:class:`NodeMetrics` on ``node_metrics``, in portable SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def publish(self, node: str, snapshot: dict[str, Any], now: float) -> None:
        self.db.execute(
            "INSERT INTO node_metrics(node, snapshot, seen) VALUES (?, ?, ?) "
            "ON CONFLICT(node) DO UPDATE SET snapshot = excluded.snapshot, "
            "seen = excluded.seen",
            (node, json.dumps(snapshot), now),
        )

    def snapshots(
        self, since: float, exclude: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for row in self.db.execute(
            "SELECT node, snapshot FROM node_metrics WHERE seen >= ? ORDER BY node",
            (since,),
        ).fetchall():
            if row[0] == exclude:
                continue
            try:
                out.append((str(row[0]), json.loads(row[1])))
            except ValueError:
                continue
        return out

    def remove(self, node: str) -> None:
        self.db.execute("DELETE FROM node_metrics WHERE node = ?", (node,))

    def prune(self, older_than: float) -> int:
        return int(
            self.db.execute("DELETE FROM node_metrics WHERE seen < ?", (older_than,)).rowcount or 0
        )
