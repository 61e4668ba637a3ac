"""``zhiku line`` and ``zhiku webhooks``: registration, listing, exit codes, redelivery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.server_util import build_home
from zhiku.channels import webhooks
from zhiku.cli import app
from zhiku.storage.channels import SqlChannels
from zhiku.store import Store


def run(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def test_line_channels_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    r = run(
        home, "line", "add", "store1", "--secret", "sec-1234", "--token", "tok-5678", "--kb", "hr"
    )
    assert r.exit_code == 0, r.output
    assert "/line/store1/webhook" in r.output
    assert (
        run(home, "line", "add", "store1", "--secret", "s", "--token", "t", "--kb", "hr").exit_code
        == 2
    )  # exists
    assert (
        run(home, "line", "add", "x", "--secret", "s", "--token", "t", "--kb", "nope").exit_code
        == 3
    )  # no such KB
    assert (
        run(
            home, "line", "add", "bad name", "--secret", "s", "--token", "t", "--kb", "hr"
        ).exit_code
        == 2
    )
    listed = json.loads(run(home, "line", "list", "--json").stdout)["channels"]
    assert [c["name"] for c in listed] == ["store1"] and "sec-1234" not in str(listed)
    users = json.loads(run(home, "users", "list", "--json").stdout)["users"]
    service = next(u for u in users if u["name"] == "line:store1")
    assert service["role"] == "reader" and service["kbs"] == ["hr"]
    assert run(home, "line", "remove", "store1").exit_code == 0
    assert run(home, "line", "remove", "store1").exit_code == 3
    users = json.loads(run(home, "users", "list", "--json").stdout)["users"]
    assert all(u["name"] != "line:store1" for u in users)


def test_webhooks_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    r = run(home, "webhooks", "add", "meta", "http://169.254.169.254/latest")
    assert r.exit_code == 2 and "中繼資料" in r.output
    assert (
        run(home, "webhooks", "add", "x", "https://93.184.215.14/h", "--event", "nope").exit_code
        == 2
    )
    r = run(
        home, "webhooks", "add", "erp", "https://93.184.215.14/hook", "--event", "question.answered"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().startswith("whsec_")
    store = Store(home / "zhiku.db")
    webhooks.emit(store.database, "question.answered", {"kb": "hr"})
    repo = SqlChannels(store.database)
    (d,) = repo.deliveries()
    repo.retry_later(d.id, 0, 500, "HTTP 500", final=True)
    store.close()
    failed = json.loads(run(home, "webhooks", "deliveries", "--status", "failed", "--json").stdout)[
        "deliveries"
    ]
    assert [x["id"] for x in failed] == [d.id] and failed[0]["last_error"] == "HTTP 500"
    assert run(home, "webhooks", "redeliver", str(d.id)).exit_code == 0
    assert run(home, "webhooks", "redeliver", "9999").exit_code == 3
    pending = json.loads(run(home, "webhooks", "deliveries", "--json").stdout)["deliveries"]
    assert pending[0]["status"] == "pending" and pending[0]["attempts"] == 0
    assert [
        t["name"] for t in json.loads(run(home, "webhooks", "list", "--json").stdout)["webhooks"]
    ] == ["erp"]
    assert run(home, "webhooks", "remove", "erp").exit_code == 0
    assert run(home, "webhooks", "remove", "erp").exit_code == 3
