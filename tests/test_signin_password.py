"""Password sign-in through the real app: argon2id, cookies, CSRF, timeouts, lockout,
sign-out (everywhere), groups → roles and grants; API keys keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.server.signin import SignIn, caller_groups
from zhiku.server.signin.config import AuthSettings
from zhiku.storage.auth import SqlAuthRepository
from zhiku.store import Store

from .server_util import auth, build_home

PASSWORDS = {
    "alice": "alice-long-password",
    "frank": "frank-long-password",
    "root": "root-long-password",
    "erin": "erin-long-password",
}
_ips = count(1)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("signin") / "home"
    keys = build_home(home)
    app = create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))
    with TestClient(app) as client:
        users = {
            u["name"]: u["id"]
            for u in client.get("/api/v1/users", headers=auth(keys.admin)).json()["users"]
        }
        app.state.signin = SignIn(AuthSettings(cookie_secure=False))
        for name, pw in PASSWORDS.items():
            r = client.put(
                f"/api/v1/users/{users[name]}/password",
                json={"password": pw},
                headers=auth(keys.admin),
            )
            assert r.status_code == 200, r.text
        yield app, keys, users, home


def browser(app: Any, **settings: Any) -> TestClient:
    """A new browser (own cookie jar) from its own address."""
    app.state.signin = SignIn(AuthSettings(**{"cookie_secure": False, **settings}))
    return TestClient(app, client=(f"10.9.0.{next(_ips)}", 40000))


def sign_in(c: TestClient, name: str, password: str | None = None) -> Any:
    return c.post(
        "/api/v1/auth/login", json={"username": name, "password": password or PASSWORDS[name]}
    )


def test_a_password_signs_in_with_a_session_cookie_and_csrf(env: Any) -> None:
    app, _keys, _users, home = env
    c = browser(app)
    r = sign_in(c, "alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["user"], body["role"], body["kbs"], body["method"]) == (
        "alice",
        "reader",
        ["hr"],
        "password",
    )
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("zhiku_session="))
    csrf = next(h for h in cookies if h.startswith("zhiku_csrf="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower()
    assert "HttpOnly" not in csrf and body["csrf_token"] in csrf
    # the database keeps a digest, never the token, and an argon2id hash
    token = c.cookies["zhiku_session"]
    store = Store(home / "zhiku.db")
    try:
        repo = SqlAuthRepository(store.database)
        assert repo.session(token) is None
        assert repo.password_hash(_users["alice"]).startswith("$argon2id$")
    finally:
        store.close()
    me = c.get("/api/v1/auth/me").json()
    assert (me["user"], me["via"]) == ("alice", "session")
    # reads need no token; a change without the CSRF header is refused, with it allowed
    assert c.get("/api/v1/kbs/hr/documents").status_code == 200
    assert c.get("/api/v1/kbs/finance/documents").status_code == 404
    r = c.post("/api/v1/kbs/hr/search", json={"query": "特別休假"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "csrf_failed")
    r = c.post(
        "/api/v1/kbs/hr/search", json={"query": "特別休假"}, headers={"X-CSRF-Token": "wrong"}
    )
    assert r.status_code == 403
    r = c.post(
        "/api/v1/kbs/hr/search",
        json={"query": "特別休假"},
        headers={"X-CSRF-Token": body["csrf_token"]},
    )
    assert r.status_code == 200 and r.json()["hits"]


def test_wrong_and_unknown_give_the_same_answer(env: Any) -> None:
    app = env[0]
    c = browser(app)
    wrong = sign_in(c, "alice", "not-the-password")
    unknown = sign_in(c, "nobody-here", "whatever-password")
    no_pw = sign_in(c, "nobody", "a-password-never-set")  # a user without a password
    for r in (wrong, unknown, no_pw):
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_credentials")
    assert "zhiku_session" not in c.cookies
    en = c.post(
        "/api/v1/auth/login",
        json={"username": "x", "password": "y"},
        headers={"Accept-Language": "en"},
    )
    assert en.json()["error"]["message"] == "Wrong username or password"


def test_secure_cookies_use_the_host_prefix(env: Any) -> None:
    app = env[0]
    app.state.signin = SignIn(AuthSettings(cookie_secure=True, cookie_samesite="strict"))
    c = TestClient(app, base_url="https://testserver", client=("10.8.0.1", 1))
    r = sign_in(c, "frank")
    cookie = next(
        h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-zhiku_session=")
    )
    assert "Secure" in cookie and "Path=/" in cookie and "samesite=strict" in cookie.lower()
    assert c.get("/api/v1/auth/me").json()["user"] == "frank"


def test_idle_and_absolute_timeouts_end_sessions(env: Any, monkeypatch: Any) -> None:
    # The session clock is the test's: argon2id sign-in takes seconds on a loaded machine,
    # which must not decide whether a timeout has passed.
    from types import SimpleNamespace

    from zhiku.server.signin import core

    clock = [1_000_000.0]
    monkeypatch.setattr(core, "time", SimpleNamespace(time=lambda: clock[0]))
    app = env[0]
    c = browser(app, idle_timeout_s=600)
    assert sign_in(c, "alice").status_code == 200
    clock[0] += 599
    assert c.get("/api/v1/auth/me").status_code == 200  # used: the idle clock restarts
    clock[0] += 599
    assert c.get("/api/v1/auth/me").status_code == 200
    clock[0] += 601
    r = c.get("/api/v1/auth/me")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_expired")
    assert c.get("/api/v1/auth/me").json()["error"]["code"] == "unauthorized"  # deleted
    c = browser(app, idle_timeout_s=600, absolute_timeout_s=3600)
    assert sign_in(c, "alice").status_code == 200
    for _ in range(6):  # in use all the time, but not past the absolute limit
        assert c.get("/api/v1/auth/me").status_code == 200
        clock[0] += 500
    assert c.get("/api/v1/auth/me").status_code == 200  # 3000 s old
    clock[0] += 601
    assert c.get("/api/v1/auth/me").json()["error"]["code"] == "session_expired"


def test_lockout_per_account_refuses_even_the_right_password(env: Any) -> None:
    app = env[0]
    for _ in range(3):
        assert sign_in(browser(app, lockout_user=3), "erin", "guess-guess").status_code == 401
    c = browser(app, lockout_user=3)  # another address: the account itself is locked
    r = sign_in(c, "erin")
    assert (r.status_code, r.json()["error"]["code"]) == (429, "account_locked")
    assert 1 <= int(r.headers["retry-after"]) <= 900
    assert sign_in(c, "frank").status_code == 200  # other accounts are not
    # once the failures leave the window, the right password works again
    c = browser(app, lockout_user=3, lockout_window_s=0.01)
    assert sign_in(c, "erin").status_code == 200


def test_lockout_per_address_across_accounts(env: Any) -> None:
    app = env[0]
    c = browser(app, lockout_ip=4, lockout_user=100)
    for i in range(4):
        assert sign_in(c, f"spray{i}", "password123").status_code == 401
    r = sign_in(c, "frank")
    assert (r.status_code, r.json()["error"]["code"]) == (429, "too_many_auth_failures")
    assert sign_in(browser(app, lockout_ip=4), "frank").status_code == 200


def test_sign_out_and_sign_out_everywhere(env: Any) -> None:
    app, keys, users, _home = env
    a, b, c = browser(app), browser(app), browser(app)
    tokens = {}
    for x in (a, b, c):
        tokens[id(x)] = sign_in(x, "frank").json()["csrf_token"]
    r = a.post("/api/v1/auth/logout", headers={"X-CSRF-Token": tokens[id(a)]})
    assert r.status_code == 200 and "zhiku_session" not in a.cookies
    assert a.get("/api/v1/auth/me").status_code == 401
    assert b.get("/api/v1/auth/me").status_code == 200
    assert b.post("/api/v1/auth/logout-all").status_code == 403  # CSRF applies here too
    r = b.post("/api/v1/auth/logout-all", headers={"X-CSRF-Token": tokens[id(b)]})
    assert r.json()["sessions_ended"] >= 2  # b, c (and frank's earlier ones)
    assert c.get("/api/v1/auth/me").status_code == 401
    # an administrator can sign someone out everywhere; keys keep working meanwhile
    d = browser(app)
    sign_in(d, "frank")
    r = d.post(f"/api/v1/users/{users['frank']}/sessions/revoke", headers=auth(keys.admin))
    assert r.json()["sessions_ended"] == 1
    assert d.get("/api/v1/auth/me").status_code == 401
    assert d.get("/api/v1/auth/me", headers=auth(keys.fin_reader)).json()["via"] == "key"


def test_password_change_ends_other_sessions_and_disabled_users_are_out(env: Any) -> None:
    app, keys, users, _home = env
    a, b = browser(app), browser(app)
    csrf = sign_in(a, "erin").json()["csrf_token"]
    sign_in(b, "erin")
    r = a.put(
        "/api/v1/auth/password",
        json={"current": "wrong", "new": "x" * 12},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 401
    r = a.put(
        "/api/v1/auth/password",
        json={"current": PASSWORDS["erin"], "new": "short"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.json()["error"]["code"] == "password_too_short"
    r = a.put(
        "/api/v1/auth/password",
        json={"current": PASSWORDS["erin"], "new": "erin-new-password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200
    assert b.get("/api/v1/auth/me").status_code == 401
    assert sign_in(browser(app), "erin").status_code == 401
    assert sign_in(browser(app), "erin", "erin-new-password").status_code == 200
    # disabled: the right password is refused and open sessions stop working
    c = browser(app)
    sign_in(c, "erin", "erin-new-password")
    TestClient(app).patch(
        f"/api/v1/users/{users['erin']}", json={"disabled": True}, headers=auth(keys.admin)
    )
    assert c.get("/api/v1/auth/me").status_code == 401
    r = sign_in(browser(app), "erin", "erin-new-password")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "account_disabled")
    TestClient(app).patch(
        f"/api/v1/users/{users['erin']}", json={"disabled": False}, headers=auth(keys.admin)
    )


def test_groups_map_to_roles_and_grants_for_sessions_and_keys(env: Any) -> None:
    app, keys, users, _home = env
    admin = TestClient(app, headers=auth(keys.admin))
    r = admin.put(
        "/api/v1/groups/finance-editors",
        json={"role": "editor", "kbs": ["finance"], "description": "財務處"},
    )
    assert r.status_code == 200, r.text
    assert admin.put("/api/v1/groups/x", json={"kbs": ["no-such-kb"]}).status_code == 404
    assert admin.put("/api/v1/groups/x", json={"role": "god"}).status_code == 400
    r = admin.put(
        f"/api/v1/users/{users['alice']}/groups", json={"groups": ["finance-editors", "lunch-club"]}
    )
    assert r.json() == {
        "user": "alice",
        "groups": ["finance-editors", "lunch-club"],
        "role": "editor",
        "kbs": ["finance", "hr"],
    }
    c = browser(app)
    sign_in(c, "alice")
    me = c.get("/api/v1/auth/me").json()
    assert (me["role"], me["kbs"], me["groups"]) == (
        "editor",
        ["finance", "hr"],
        ["finance-editors", "lunch-club"],
    )
    assert c.get("/api/v1/kbs/finance/documents").status_code == 200
    # the key of the same user gets the same, from the same place
    me_key = c.get("/api/v1/auth/me", headers=auth(keys.hr_reader)).json()
    assert (me_key["role"], me_key["kbs"]) == ("editor", ["finance", "hr"])
    groups = admin.get("/api/v1/groups").json()["groups"]
    fe = next(g for g in groups if g["name"] == "finance-editors")
    assert (fe["members"], fe["kbs"], fe["role"]) == (["alice"], ["finance"], "editor")
    # removing the mapping takes effect at once
    assert admin.delete("/api/v1/groups/finance-editors").status_code == 200
    assert admin.delete("/api/v1/groups/finance-editors").status_code == 404
    assert c.get("/api/v1/kbs/finance/documents").status_code == 404
    assert c.get("/api/v1/auth/me").json()["groups"] == ["lunch-club"]
    # non-admins cannot manage groups
    assert c.get("/api/v1/groups", headers=auth(keys.hr_reader)).status_code == 403


def test_caller_groups_reads_the_principal() -> None:
    from zhiku.server.deps import Principal

    p = Principal(1, "a", "reader", 0, "password", (), None, frozenset({"hr", "it"}), 3)
    assert caller_groups(p) == {"hr", "it"}


def test_cli_creates_a_user_with_a_password_that_signs_in(tmp_path: Any) -> None:
    home = tmp_path / "home"
    run = [sys.executable, "-m", "zhiku", "users", "create"]
    env = {**os.environ, "ZHIKU_HOME": str(home)}
    short = subprocess.run(
        [*run, "阿美", "--password-stdin"], env=env, input="short\n", capture_output=True, text=True
    )
    assert short.returncode == 2 and "至少需要 10 個字元" in short.stderr
    ok = subprocess.run(
        [*run, "阿美", "--role", "reader", "--password-stdin"],
        env=env,
        input="long-enough-password\n",
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr  # the refused one above created nobody
    app = create_app(ServerSettings.from_env({}, home=str(home)))
    app.state.signin = SignIn(AuthSettings(cookie_secure=False))
    c = TestClient(app)
    r = c.post("/api/v1/auth/login", json={"username": "阿美", "password": "long-enough-password"})
    assert r.json()["user"] == "阿美"
