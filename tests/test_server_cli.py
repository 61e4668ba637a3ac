"""``zhiku users``, ``zhiku keys`` and ``zhiku audit`` on a fresh data directory."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from zhiku.cli import app
from zhiku.server import accounts
from zhiku.store import Store

KEY_RE = re.compile(r"^zk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


def run(home: Path, *args: str) -> object:
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def store(home: Path) -> Store:
    return Store(home / "zhiku.db")


def test_first_admin_then_a_service_key_for_scripts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = run(home, "users", "create", "admin", "--role", "admin")
    assert res.exit_code == 0, res.output
    res = run(home, "keys", "create", "--user", "admin")
    assert res.exit_code == 0 and KEY_RE.match(res.stdout.strip())
    # The documented script form: the key alone on stdout, everything else on stderr.
    res = run(home, "keys", "create", "--role", "reader", "--kb", "hr", "--name", "erp")
    assert res.exit_code == 0, res.output
    assert KEY_RE.match(res.stdout.strip()) and res.stdout.count("\n") == 1
    assert "已建立知識庫「hr」" in res.stderr and "請立即保存" in res.stderr
    user, key = accounts.authenticate(store(home), res.stdout.strip())  # type: ignore[misc]
    assert user.role == "reader" and user.name.startswith("svc-erp-")
    assert accounts.granted_kbs(store(home), user.id, user.role) == ["hr"]
    assert key.name == "erp"
    # The KB it created has the default (privacy-first) PII policy.
    assert store(home).get_kb("hr").settings["pii"]["mode"] == "ingest"


def test_users_grants_roles_and_revocation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "kb", "create", "hr").exit_code == 0
    assert run(home, "kb", "create", "finance").exit_code == 0
    assert run(home, "users", "create", "amy", "--role", "editor", "--kb", "hr").exit_code == 0
    assert run(home, "users", "grant", "amy", "--kb", "finance").exit_code == 0
    listed = json.loads(run(home, "users", "list", "--json").stdout)["users"]
    assert listed == [{**listed[0], "name": "amy", "role": "editor", "kbs": ["finance", "hr"]}]
    assert run(home, "users", "revoke", "amy", "--kb", "hr").exit_code == 0
    assert accounts.get_user(store(home), "amy").kbs == ["finance"]
    assert run(home, "users", "set-role", "amy", "reader").exit_code == 0
    assert accounts.get_user(store(home), "amy").role == "reader"
    key = run(home, "keys", "create", "--user", "amy").stdout.strip()
    assert accounts.authenticate(store(home), key) is not None
    assert run(home, "users", "disable", "amy").exit_code == 0
    assert accounts.authenticate(store(home), key) is None
    assert run(home, "users", "enable", "amy").exit_code == 0
    assert accounts.authenticate(store(home), key) is not None
    keys = json.loads(run(home, "keys", "list", "--json").stdout)["keys"]
    assert len(keys) == 1 and key.split("_", 2)[2] not in json.dumps(keys)
    assert run(home, "keys", "revoke", keys[0]["prefix"]).exit_code == 0
    assert accounts.authenticate(store(home), key) is None
    assert run(home, "users", "delete", "amy", "--yes").exit_code == 0
    assert run(home, "users", "delete", "amy", "--yes").exit_code == 3


def test_bad_input_exit_codes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "users", "create", "bob", "--role", "wizard").exit_code == 2
    assert run(home, "keys", "create").exit_code == 2  # neither --user nor --role
    assert run(home, "users", "create", "bob", "--role", "reader").exit_code == 0
    res = run(home, "keys", "create", "--user", "bob", "--role", "admin")
    assert res.exit_code == 2 and res.stdout == ""  # an existing user keeps its role
    assert run(home, "users", "grant", "bob").exit_code == 2
    assert run(home, "keys", "revoke", "ffffffff").exit_code == 3
    assert run(home, "users", "create", "root", "--role", "admin").exit_code == 0
    res = run(home, "users", "set-role", "root", "reader")
    assert res.exit_code == 2 and "最後一位管理員" in res.stderr
    assert run(home, "audit", "--format", "xml").exit_code == 2


def test_audit_export_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "users", "create", "admin", "--role", "admin")
    run(home, "keys", "create", "--user", "admin", "--name", "ops")
    out = tmp_path / "audit.csv"
    res = run(home, "audit", "--format", "csv", "--output", str(out))
    assert res.exit_code == 0 and "已匯出 2 筆" in res.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["action"] for r in rows] == ["user_create", "key_create"]
    assert rows[0]["key"] == "cli" and json.loads(rows[1]["detail"])["name"] == "ops"
    res = run(home, "audit", "--action", "key_create")
    assert [json.loads(x)["action"] for x in res.stdout.splitlines()] == ["key_create"]
    assert run(home, "audit", "--since", "2999-01-01").stdout == ""
