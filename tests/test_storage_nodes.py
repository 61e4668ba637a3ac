"""State shared by server nodes (zhiku.storage.nodes), on SQLite and a real PostgreSQL:
token buckets spent atomically by concurrent connections, and metric snapshots that
add up across processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.test_storage_db import target  # noqa: F401 - the sqlite/postgresql fixture
from zhiku.server.observability import Metrics
from zhiku.server.ratelimit import SharedRateLimiter
from zhiku.storage import migrate
from zhiku.storage.db import Database, connect
from zhiku.storage.nodes import NodeMetrics, RateBuckets, SqlNodeMetrics, SqlRateBuckets


@pytest.fixture
def db(target: str) -> Iterator[Database]:  # noqa: F811
    database = connect(target)
    migrate.apply(database)
    yield database
    database.close()


def test_a_bucket_spends_refills_and_caps_at_its_burst(db: Database) -> None:
    b = SqlRateBuckets(db)
    assert isinstance(b, RateBuckets)
    t = 1_800_000_000.0
    assert [b.take("k", 1, 1.0, 3, t) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("k", 1, 1.0, 3, t) == pytest.approx(1.0)
    assert b.take("k", 1, 1.0, 3, t + 0.25) == pytest.approx(0.75)
    assert b.take("k", 1, 1.0, 3, t + 1.0) == 0.0
    # another key has its own bucket
    assert b.take("other", 1, 1.0, 3, t + 1.0) == 0.0
    # an hour idle refills to the burst, not beyond
    assert [b.take("k", 1, 1.0, 3, t + 3600) for _ in range(3)] == [0.0] * 3
    assert b.take("k", 1, 1.0, 3, t + 3600) > 0
    # a cost larger than the burst is never granted
    assert b.take("big", 5, 1.0, 3, t) == pytest.approx(2.0)


def test_a_clock_that_went_backwards_refills_nothing(db: Database) -> None:
    b = SqlRateBuckets(db)
    t = 1_800_000_000.0
    assert b.take("k", 2, 1.0, 2, t) == 0.0
    assert b.take("k", 1, 1.0, 2, t - 50) == pytest.approx(1.0)  # node B's clock is behind
    assert b.take("k", 1, 1.0, 2, t + 1) == 0.0


def test_concurrent_connections_never_spend_more_than_the_burst(target: str) -> None:  # noqa: F811
    setup = connect(target)
    migrate.apply(setup)
    setup.close()
    granted: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)
    t = 1_800_000_000.0

    def node() -> None:
        database = connect(target)
        try:
            b = SqlRateBuckets(database)
            start.wait()
            ok = sum(1 for _ in range(15) if b.take("shared", 1, 0.001, 40, t) == 0.0)
            granted.append(ok)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=node) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sum(granted) == 40  # 90 tries, 40 tokens


def test_idle_buckets_are_pruned(db: Database) -> None:
    b = SqlRateBuckets(db)
    b.take("old", 1, 1.0, 3, 1000.0)
    b.take("new", 1, 1.0, 3, 5000.0)
    assert b.prune(4000.0) == 1
    assert db.execute("SELECT bucket FROM node_rate_buckets").fetchall()[0][0] == "new"


def test_limiters_of_two_nodes_enforce_one_limit(target: str) -> None:  # noqa: F811
    a, b = connect(target), connect(target)
    migrate.apply(a)
    try:
        node_a = SharedRateLimiter(60.0, 3, lambda: a, "key")
        node_b = SharedRateLimiter(60.0, 3, lambda: b, "key")
        other_scope = SharedRateLimiter(60.0, 3, lambda: b, "widget:1")
        assert [node_a.hit("zk_1") for _ in range(3)] == [0.0] * 3
        wait = node_b.hit("zk_1")
        assert 0.5 < wait <= 1.0  # one token a second
        assert node_b.hit("zk_2") == 0.0
        assert other_scope.hit("zk_1") == 0.0
    finally:
        a.close()
        b.close()


def test_snapshots_are_published_read_and_aged_out(db: Database) -> None:
    m = SqlNodeMetrics(db)
    assert isinstance(m, NodeMetrics)
    m.publish("a:1", {"counters": [["x", [], 1.0]], "histograms": []}, 100.0)
    m.publish("b:2", {"counters": [["x", [], 2.0]], "histograms": []}, 100.0)
    m.publish("a:1", {"counters": [["x", [], 5.0]], "histograms": []}, 110.0)
    assert [n for n, _ in m.snapshots(90.0)] == ["a:1", "b:2"]
    assert m.snapshots(105.0) == [("a:1", {"counters": [["x", [], 5.0]], "histograms": []})]
    assert [n for n, _ in m.snapshots(0.0, exclude="a:1")] == ["b:2"]
    assert m.prune(105.0) == 1
    m.remove("a:1")
    assert m.snapshots(0.0) == []


def test_metrics_of_two_nodes_add_up_on_either(target: str) -> None:  # noqa: F811
    a, b = connect(target), connect(target)
    migrate.apply(a)
    try:
        node_a, node_b = Metrics(shared=lambda: a), Metrics(shared=lambda: b)
        node_b.node = "other-host:4242"
        node_a.inc("zhiku_http_requests_total", {"route": "/ask"}, 3)
        node_b.inc("zhiku_http_requests_total", {"route": "/ask"}, 4)
        node_b.observe("zhiku_http_request_duration_seconds", 0.2, {"route": "/ask"})
        node_a.flush()
        node_b.flush()
        for text in (node_a.render(), node_b.render()):
            assert 'zhiku_http_requests_total{route="/ask"} 7' in text
            assert 'zhiku_http_request_duration_seconds_count{route="/ask"} 1' in text
            assert "zhiku_server_processes 2" in text
            assert 'zhiku_server_process{node="other-host:4242"} 1' in text
        node_b.stop()  # a node that stops takes its figures out
        assert 'zhiku_http_requests_total{route="/ask"} 3' in node_a.render()
    finally:
        a.close()
        b.close()
