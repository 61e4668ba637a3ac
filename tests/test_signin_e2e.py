"""The sign-in page and the groups admin in headless Chromium, against a real ``zhiku
serve`` and a real OpenID Connect provider: password sign-in (wrong, right), groups and
mappings managed in the admin page, sign-out, "使用 SSO 登入" end to end; desktop and
390 px wide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oidc_util import Provider
from tests.server_util import HR_DOC, free_port, running_server
from tests.test_web_e2e import CHROMIUM, SHOTS, _require_browser
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.server import accounts
from zhiku.server.signin.config import AuthSettings
from zhiku.server.signin.core import set_password
from zhiku.storage.groups import GroupRepository

ADMIN_PW = "admin-e2e-password"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_playwright = _require_browser()
    home = tmp_path_factory.mktemp("signin-e2e-home")
    src = tmp_path_factory.mktemp("signin-e2e-src")
    (src / "請假辦法.md").write_text(HR_DOC, "utf-8")
    with Zhiku(home) as zk:
        ingest_paths(zk, [src], "hr")
        accounts.create_user(zk.store, "林淑芬", "admin")
        set_password(zk.store, "林淑芬", ADMIN_PW, AuthSettings())
        accounts.create_user(zk.store, "張志明", "reader")
        GroupRepository(zk.store.database).save_group("hr-staff", "reader", ["hr"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = Provider(
        clients=[
            {
                "client_id": "zhiku",
                "client_secret": "e2e-secret",
                "redirect_uris": [base + "/api/v1/auth/oidc/callback"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
        accounts={"u-7": {"preferred_username": "wang", "groups": ["hr-staff"]}},
    )
    env = {
        "ZHIKU_AUTH_COOKIE_SECURE": "0",
        "ZHIKU_OIDC_ISSUER": provider.issuer,
        "ZHIKU_OIDC_CLIENT_ID": "zhiku",
        "ZHIKU_OIDC_CLIENT_SECRET": "e2e-secret",
        "ZHIKU_OIDC_REDIRECT_URI": base + "/api/v1/auth/oidc/callback",
        "ZHIKU_OIDC_SCOPES": "openid profile groups",
    }
    log = tmp_path_factory.mktemp("signin-e2e-log") / "server.log"
    try:
        with running_server(home, env=env, log=log, port=port) as (url, _proc):
            yield sync_playwright, url
    finally:
        provider.stop()


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


@pytest.mark.parametrize("width", [1400, 390])
def test_sign_in_page_groups_admin_and_sso(site: Any, width: int) -> None:
    sync_playwright, base = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 860}, locale="zh-TW")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(base + "/")
        page.get_by_test_id("login-user").wait_for()
        assert page.get_by_test_id("sso").inner_text() == "使用 SSO 登入"
        _no_sideways_scroll(page)
        page.screenshot(path=str(SHOTS / f"signin-{width}.png"))
        page.get_by_test_id("login-user").fill("林淑芬")
        page.get_by_test_id("login-password").fill("wrong-password!")
        page.get_by_test_id("signin-submit").click()
        page.get_by_role("alert").wait_for()
        assert "帳號或密碼錯誤" in page.get_by_role("alert").inner_text()
        page.get_by_test_id("login-user").fill("林淑芬")
        page.get_by_test_id("login-password").fill(ADMIN_PW)
        page.get_by_test_id("signin-submit").click()
        page.get_by_test_id("tab-admin").wait_for()
        assert page.locator("#user-name").inner_text() == "林淑芬"
        # the session cookie is HttpOnly: the page cannot read it
        assert "zhiku_session" not in page.evaluate("document.cookie")

        # admin: a group mapped to a role and a KB; a local user put in it
        page.get_by_test_id("tab-admin").click()
        group = f"人資-{width}"
        page.get_by_test_id("group-name").fill(group)
        page.get_by_test_id("group-role").select_option("reader")
        page.locator("form:has([data-testid=group-name]) label.check", has_text="hr").click()
        page.get_by_test_id("create-group").click()
        row = page.locator(f"[data-testid=groups] tr[data-group='{group}']")
        row.wait_for()
        assert "hr" in row.inner_text()
        user_groups = page.locator("tr[data-user='張志明'] [data-testid=user-groups]")
        user_groups.fill(group)
        user_groups.press("Enter")
        user_groups.blur()
        page.locator(f"[data-testid=groups] tr[data-group='{group}']", has_text="張志明").wait_for()
        if width > 400:  # at phone width the admin tables scroll inside their cards
            _no_sideways_scroll(page)
        page.screenshot(path=str(SHOTS / f"admin-groups-{width}.png"), full_page=True)

        # sign out: back to the sign-in page, the session is gone on the server too
        page.locator("#logout").click()
        page.get_by_test_id("login-user").wait_for()
        assert page.request.get(base + "/api/v1/auth/me").status == 401

        # single sign-on: the provider's own login and consent pages, then back signed in
        page.get_by_test_id("sso").click()
        page.locator("input[name=login]").fill("u-7")
        page.locator("input[name=password]").fill("anything")
        page.locator("button[type=submit]").click()
        page.locator("button[type=submit]", has_text="Continue").click()
        page.get_by_test_id("tab-chat").wait_for()
        assert page.locator("#user-name").inner_text() == "wang"
        me = page.request.get(base + "/api/v1/auth/me").json()
        assert me["groups"] == ["hr-staff"] and me["via"] == "session"
        page.locator("#logout").click()
        page.get_by_test_id("login-user").wait_for()
        assert not errors, errors
        browser.close()


def test_sign_in_page_in_english(site: Any) -> None:
    sync_playwright, base = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 800}, locale="en")
        page.goto(base + "/")
        page.get_by_test_id("login-user").wait_for()
        page.get_by_role("button", name="English").click()
        page.get_by_test_id("sso").wait_for()
        assert page.get_by_test_id("sso").inner_text() == "Sign in with SSO"
        page.get_by_test_id("login-user").fill("nobody")
        page.get_by_test_id("login-password").fill("nothing-at-all")
        page.get_by_test_id("signin-submit").click()
        page.get_by_role("alert").wait_for()
        assert page.get_by_role("alert").inner_text() == "Wrong username or password"
        browser.close()
