"""Server sources: an admin registers a folder and a web site on a KB; the server's job
worker syncs them (first run at once, then on schedule or on demand) and reports the last
run, its counts and errors; ``where`` filters in the search / ask API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import auth, build_home
from tests.test_sources_web import Site, _handler
from zhiku.engine import Zhiku
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.sources import registry


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Any, Path]]:
    home = tmp_path / "home"
    keys = build_home(home)
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        yield client, keys, home


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield s, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _wait_run(
    client: TestClient, key: str, kb: str, name: str, after: str | None = None, timeout: float = 60
) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        src = client.get(f"/api/v1/kbs/{kb}/sources/{name}", headers=auth(key)).json()
        if (
            src["last_status"] not in (None, "running")
            and src["last_finished_at"]
            and src["last_job"] != after
        ):
            return src
        time.sleep(0.1)
    raise AssertionError(f"source {name} did not run: {src}")


def test_folder_source_synced_by_the_worker(
    env: tuple[TestClient, Any, Path], tmp_path: Path
) -> None:
    client, keys, home = env
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.md").write_text("# 加班\n\n延長工時每月不得超過四十六小時。\n", "utf-8")
    (share / "b.txt").write_text("出差住宿費每晚上限二千六百元。", "utf-8")
    body = {"name": "nas", "target": str(share), "every": "6h", "meta": {"dept": "HR"}}
    assert (
        client.post("/api/v1/kbs/hr/sources", json=body, headers=auth(keys.hr_editor)).status_code
        == 403
    )
    r = client.post("/api/v1/kbs/hr/sources", json=body, headers=auth(keys.admin))
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "folder" and r.json()["every"] == "6h"
    src = _wait_run(client, keys.admin, "hr", "nas")
    assert src["last_status"] == "ok" and src["last_counts"]["added"] == 2
    assert src["next_run_at"] is not None
    # Documents carry the source's metadata and its name; filters see them.
    r = client.post(
        "/api/v1/kbs/hr/search",
        headers=auth(keys.admin),
        json={"query": "出差住宿", "where": {"source": "nas", "dept": "hr"}},
    )
    assert [h["path"] for h in r.json()["hits"]] == [str((share / "b.txt").resolve())]
    r = client.post(
        "/api/v1/kbs/hr/search",
        headers=auth(keys.admin),
        json={"query": "請假", "where": ["source=nas"]},
    )
    assert all("share" in h["path"] for h in r.json()["hits"])
    assert (
        client.post(
            "/api/v1/kbs/hr/search",
            headers=auth(keys.admin),
            json={"query": "請假", "where": ["color=red"]},
        ).status_code
        == 400
    )
    r = client.post(
        "/api/v1/kbs/hr/ask",
        headers=auth(keys.admin),
        json={"question": "延長工時每月上限幾小時？", "where": {"source": "nas"}},
    )
    assert r.status_code == 200 and r.json()["citations"][0]["path"].endswith("a.md")
    # Changes in the folder; a run on demand.
    (share / "b.txt").unlink()
    (share / "c.txt").write_text("資安：密碼至少十二字元。", "utf-8")
    (share / "bad.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    r = client.post("/api/v1/kbs/hr/sources/nas/run", headers=auth(keys.admin))
    assert r.status_code == 202
    src = _wait_run(client, keys.admin, "hr", "nas", after=src["last_job"])
    c = src["last_counts"]
    assert (c["added"], c["removed"], c["unchanged"], c["failed"]) == (1, 1, 1, 1)
    assert src["last_status"] == "errors"
    assert [e["path"].rsplit("/", 1)[-1] for e in src["last_errors"]] == ["bad.pdf"]
    listing = client.get("/api/v1/sources", headers=auth(keys.admin)).json()["sources"]
    assert [s["name"] for s in listing] == ["nas"]
    assert client.delete("/api/v1/kbs/hr/sources/nas", headers=auth(keys.admin)).json() == {
        "deleted": "nas"
    }
    assert client.get("/api/v1/kbs/hr/sources/nas", headers=auth(keys.admin)).status_code == 404


def test_web_source(env: tuple[TestClient, Any, Path], site: tuple[Site, str]) -> None:
    client, keys, _ = env
    s, base = site
    body = {"name": "portal", "target": base, "every": "manual"}
    r = client.post("/api/v1/kbs/hr/sources", json=body, headers=auth(keys.admin))
    assert r.status_code == 400 and "loopback" in r.json()["error"]["message"]
    body["crawl"] = {"allow_ips": ["127.0.0.1"], "max_page_bytes": 1_000_000}
    r = client.post("/api/v1/kbs/hr/sources", json=body, headers=auth(keys.admin))
    assert r.status_code == 201, r.text
    time.sleep(1.0)
    assert (
        client.get("/api/v1/kbs/hr/sources/portal", headers=auth(keys.admin)).json()["last_status"]
        is None
    )  # manual
    client.post("/api/v1/kbs/hr/sources/portal/run", headers=auth(keys.admin))
    src = _wait_run(client, keys.admin, "hr", "portal")
    assert src["last_counts"]["added"] == 4 and src["last_status"] == "errors"
    reasons = {e["path"].rsplit("/", 1)[-1]: e["reason"] for e in src["last_errors"]}
    assert reasons["missing.html"] == "not_found" and reasons["huge.html"] == "too_large"
    r = client.post(
        "/api/v1/kbs/hr/search",
        headers=auth(keys.admin),
        json={"query": "病假全年不得超過", "where": {"source": "portal"}},
    )
    assert r.json()["hits"][0]["path"] == base + "leave.html"
    for bad in (
        {"name": "x", "target": "http://169.254.169.254/", "every": "1d"},
        {"name": "x", "target": "relative/path", "every": "1d"},
        {"name": "x", "target": base, "every": "5s"},
    ):
        assert (
            client.post("/api/v1/kbs/hr/sources", json=bad, headers=auth(keys.admin)).status_code
            == 400
        ), bad


def test_schedule_queues_each_run_once(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    with Zhiku(tmp_path / "home") as zk:
        src = registry.add_source(zk, "k", "s", str(share), every="1h")
        first = registry.enqueue_due(zk.store)
        assert len(first) == 1
        assert registry.enqueue_due(zk.store) == []  # next run is an hour away
        # Due again while the first run is still queued: skipped, no second job.
        assert registry.enqueue_due(zk.store, now=time.time() + 7200) == []
        job, created = registry.queue_run(zk.store, src["id"])
        assert (job, created) == (first[0], False)
        zk.store.db.execute("UPDATE jobs SET status='done' WHERE id=?", (first[0],))
        assert registry.enqueue_due(zk.store, now=time.time() + 7200) == []
        assert len(registry.enqueue_due(zk.store, now=time.time() + 4 * 3600)) == 1
        with pytest.raises(registry.SourceError):
            registry.parse_every("every day")
        assert registry.parse_every("manual") is None and registry.parse_every("1d") == 86400


def test_uploader_sets_metadata(env: tuple[TestClient, Any, Path]) -> None:
    client, keys, _ = env
    files = [("files", ("加班.txt", "延長工時每月不得超過四十六小時。".encode(), "text/plain"))]
    r = client.post(
        "/api/v1/kbs/hr/documents",
        headers=auth(keys.hr_editor),
        files=files,
        data={"meta": '{"dept": "HR", "tags": ["規章", "工時"], "effective": "2024/1/1"}'},
    )
    assert r.status_code == 202, r.text
    end = time.monotonic() + 30
    while (
        client.get(f"/api/v1/jobs/{r.json()['id']}", headers=auth(keys.hr_editor)).json()["status"]
        != "done"
    ):
        assert time.monotonic() < end
        time.sleep(0.05)
    docs = client.get("/api/v1/kbs/hr/documents", headers=auth(keys.hr_reader)).json()
    doc = next(d for d in docs["documents"] if d["path"].endswith("加班.txt"))
    assert doc["meta"] == {"dept": "hr", "tags": ["規章", "工時"], "effective": "2024-01-01"}
    hits = client.post(
        "/api/v1/kbs/hr/search",
        headers=auth(keys.hr_reader),
        json={"query": "延長工時", "where": ["tag=工時", "effective>=2024-01-01"]},
    ).json()["hits"]
    assert [h["doc"] for h in hits] == ["加班"]
    # An editor changes it later; a reader may not.
    url = f"/api/v1/kbs/hr/documents/{doc['id']}"
    assert (
        client.patch(
            url, headers=auth(keys.hr_reader), json={"meta": {"dept": "legal"}}
        ).status_code
        == 403
    )
    r = client.patch(
        url, headers=auth(keys.hr_editor), json={"meta": {"dept": "legal", "effective": None}}
    )
    assert r.status_code == 200 and r.json()["meta"] == {"dept": "legal", "tags": ["規章", "工時"]}
    hits = client.post(
        "/api/v1/kbs/hr/search",
        headers=auth(keys.hr_reader),
        json={"query": "延長工時", "where": {"dept": "legal"}},
    ).json()["hits"]
    assert [h["doc"] for h in hits] == ["加班"]
    bad = client.post(
        "/api/v1/kbs/hr/documents",
        headers=auth(keys.hr_editor),
        files=files,
        data={"meta": "amended=someday"},
    )
    assert bad.status_code == 400


def test_cli_sources_and_crawl(tmp_path: Path, site: tuple[Site, str]) -> None:
    import json

    from typer.testing import CliRunner

    from zhiku.cli import app

    runner = CliRunner()
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.txt").write_text("採購：十萬元以上需三家報價。", "utf-8")
    r = runner.invoke(
        app,
        [
            "source",
            "add",
            "nas",
            str(share),
            "--kb",
            "k",
            "--every",
            "2h",
            "--meta",
            "dept=總務",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["every"] == "2h"
    assert runner.invoke(app, ["source", "add", "x", "rel/path", "--kb", "k"]).exit_code == 2
    r = runner.invoke(app, ["source", "run", "nas", "--kb", "k", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["last_counts"]["added"] == 1
    r = runner.invoke(app, ["source", "list", "--json"])
    assert [s["last_status"] for s in json.loads(r.stdout)["sources"]] == ["ok"]
    r = runner.invoke(app, ["search", "報價", "--kb", "k", "--json", "--where", "dept=總務"])
    assert len(json.loads(r.stdout)["hits"]) == 1
    assert runner.invoke(app, ["source", "rm", "nas", "--kb", "k"]).exit_code == 0
    assert runner.invoke(app, ["source", "run", "nas", "--kb", "k"]).exit_code == 3
    # zhiku crawl: refused without --allow-ip (exit 2), then a crawl with failures (exit 1).
    _, base = site
    r = runner.invoke(app, ["crawl", base, "--kb", "web", "-q"])
    assert r.exit_code == 2 and "loopback" in r.stderr
    r = runner.invoke(
        app, ["crawl", base, "--kb", "web", "--allow-ip", "127.0.0.1", "--max-mb", "1", "--json"]
    )
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["added"] == 4 and {f["reason"] for f in out["failed"]} >= {"not_found", "too_large"}
