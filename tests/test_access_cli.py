"""Access from the command line: labels at ingest and by an editor, ``--as USER`` on
search / ask / docs, the passage access log (server and ``zhiku audit access``), and
the server's scheduled retention job."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.server_util import auth
from zhiku.access import caller_scope
from zhiku.cli import app as cli
from zhiku.engine import Zhiku
from zhiku.pii import PiiPolicy
from zhiku.server import accounts
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.storage.access import AccessRepository
from zhiku.store import Store

runner = CliRunner()


def _run(home: Path, *args: str, code: int = 0) -> Any:
    r = runner.invoke(cli, [*args, "--home", str(home)])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture
def home(tmp_path: Path, zhiku_home: Path) -> Path:
    (tmp_path / "pub.md").write_text("# 餐廳公告\n\n員工餐廳營業時間 PUBCANARY。\n", "utf-8")
    (tmp_path / "hr.md").write_text("# 薪資調整\n\n員工餐廳津貼調整 HRCANARY。\n", "utf-8")
    _run(zhiku_home, "ingest", str(tmp_path / "pub.md"))
    _run(
        zhiku_home,
        "ingest",
        str(tmp_path / "hr.md"),
        "--meta",
        "access_groups=hr",
        "--meta",
        "access_level=機密",
    )
    with Zhiku(zhiku_home) as zk:
        accounts.create_user(zk.store, "hana", "reader", ["default"])
        accounts.create_user(zk.store, "pat", "reader", ["default"])
    _run(zhiku_home, "access", "user", "hana", "--groups", "hr", "--level", "機密")
    return zhiku_home


def test_as_user_sees_what_the_server_would_show_them(home: Path, tmp_path: Path) -> None:
    def titles(*who: str) -> set[str]:
        r = _run(home, "search", "員工餐廳", "--json", *who)
        return {h["doc"] for h in json.loads(r.stdout)["hits"]}

    assert titles() == {"餐廳公告", "薪資調整"}  # the operator reads the files themselves
    assert titles("--as", "hana") == {"餐廳公告", "薪資調整"}
    assert titles("--as", "pat") == {"餐廳公告"}
    docs = json.loads(_run(home, "docs", "--json", "--as", "pat").stdout)["documents"]
    assert [d["title"] for d in docs] == ["餐廳公告"]

    def ask(who: str) -> str:
        r = runner.invoke(cli, ["ask", "津貼調整", "--json", "--as", who, "--home", str(home)])
        assert r.exit_code in (0, 1), r.output
        return str(r.stdout)

    assert "HRCANARY" in ask("hana") and "HRCANARY" not in ask("pat")
    bad = _run(home, "search", "x", "--as", "nobody-here", code=3)  # not found
    assert "nobody-here" in bad.output
    # An editor re-labels: the next query sees it, no re-embedding needed.
    path = str(tmp_path / "hr.md")
    _run(home, "access", "label", path, "--groups", "", "--level", "公開")
    assert titles("--as", "pat") == {"餐廳公告", "薪資調整"}
    bad = _run(home, "access", "label", path, "--level", "絕密", code=2)
    assert "絕密" in bad.output


def test_passage_views_with_personal_data_are_logged_masked(home: Path, tmp_path: Path) -> None:
    (tmp_path / "roster.md").write_text(
        "# 聯絡名冊\n\n值班人員王小明，手機 0912-345-678，員工餐廳負責人。\n", "utf-8"
    )
    with Zhiku(home) as zk:
        zk.kb("roster", create=True)
        zk.set_pii_policy("roster", PiiPolicy(mode="output"))
    _run(home, "ingest", str(tmp_path / "roster.md"), "--kb", "roster")
    with Zhiku(home) as zk:
        accounts.grant(zk.store, "hana", ["roster"])
        key = accounts.create_key(zk.store, "hana")[0]
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/v1/kbs/roster/search", json={"query": "值班人員手機"}, headers=auth(key)
        )
        assert r.status_code == 200 and "0912-345-678" not in r.text
        passage = r.json()["hits"][0]["passage_id"]
        assert client.get(f"/api/v1/passages/{passage}", headers=auth(key)).status_code == 200
        r = client.post("/api/v1/kbs/default/search", json={"query": "員工餐廳"}, headers=auth(key))
        assert r.status_code == 200  # no personal data there: nothing logged
    out = _run(home, "audit", "access", "--since", "2000-01-01").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["user"], r["kb"], r["via"]) for r in rows] == [
        ("hana", "roster", "search"),
        ("hana", "roster", "passage"),
    ]
    assert "mobile" in rows[0]["kinds"] and "0912-***-678" in rows[0]["masked"]
    assert "0912-345-678" not in out and "345" not in rows[0]["masked"]


def test_the_server_runs_retention_on_a_schedule(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Zhiku(home) as zk:
        accounts.create_user(zk.store, "root", "admin")
        key = accounts.create_key(zk.store, "root")[0]
    monkeypatch.setenv("ZHIKU_RETENTION_INTERVAL_S", "0.2")
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/v1/kbs/default/ask", json={"question": "員工餐廳營業時間？"}, headers=auth(key)
        )
        conv = r.headers["x-conversation-id"]
        store = Store(home / "zhiku.db")
        try:
            with store.tx(immediate=True):  # the conversation is two years old
                store.db.execute(
                    "UPDATE conversations SET updated_at='2024-01-01' WHERE id=?", (conv,)
                )
        finally:
            store.close()
        r = client.put(
            "/api/v1/admin/retention",
            headers=auth(key),
            json={"what": "conversations", "days": 365},
        )
        assert r.status_code == 200 and r.json()["periods"] == {"*": {"conversations": 365}}
        deadline = time.monotonic() + 20
        while client.get(f"/api/v1/conversations/{conv}", headers=auth(key)).status_code == 200:
            assert time.monotonic() < deadline, "the scheduled retention never ran"
            time.sleep(0.1)
        runs = client.get("/api/v1/admin/retention", headers=auth(key)).json()["runs"]
    assert any(
        r["counts"]["purged"]["conversations"] == 1 and r["actor"] == "scheduler" for r in runs
    )
    store = Store(home / "zhiku.db")
    try:
        assert AccessRepository(store.database).retention_runs()[0]["actor"] == "scheduler"
    finally:
        store.close()


def test_a_new_account_of_a_deleted_name_does_not_inherit_clearance_or_groups(home: Path) -> None:
    with Zhiku(home) as zk:
        assert AccessRepository(zk.store.database).clearance_of("hana") == 2
        accounts.delete_user(zk.store, "hana")
        accounts.create_user(zk.store, "hana", "reader", ["default"])
        scope = caller_scope(zk.store.database, "hana")
    assert scope.clearance == 0 and scope.groups == frozenset()
    out = _run(home, "ask", "員工餐廳", "--as", "hana")
    assert "HRCANARY" not in out.output
