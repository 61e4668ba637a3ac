"""Component ``nodes``: state the server nodes share through the database.

Token buckets of the rate limits (one row per key, refilled and spent in one atomic
statement, so every node enforces the same limit) and each live server process's metric
snapshot (so ``/metrics`` on any node reports the whole cluster).
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE node_rate_buckets(
        bucket TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        ts REAL NOT NULL,
        granted INTEGER NOT NULL,
        rate REAL NOT NULL,
        burst REAL NOT NULL,
        cost REAL NOT NULL
    );
    CREATE INDEX node_rate_buckets_ts ON node_rate_buckets(ts);
    CREATE TABLE node_metrics(
        node TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        seen REAL NOT NULL
    );
    """,
}
