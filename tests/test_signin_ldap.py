"""LDAP sign-in against a real OpenLDAP slapd (tests/slapd.py starts it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.server.signin import SignIn
from zhiku.server.signin.config import AuthSettings
from zhiku.server.signin.ldap import LdapAuthenticator, LdapDisabled, LdapUnavailable

from .server_util import auth, build_home, free_port
from .slapd import BASE, PEOPLE, SERVICE_DN, SERVICE_PW, Slapd


@pytest.fixture(scope="module")
def slapd() -> Iterator[Slapd]:
    server = Slapd()
    yield server
    server.stop()


def search_bind(url: str, **kw: Any) -> AuthSettings:
    return AuthSettings(
        cookie_secure=False,
        ldap_url=url,
        ldap_bind_dn=SERVICE_DN,
        ldap_bind_password=SERVICE_PW,
        ldap_user_base=f"ou=people,{BASE}",
        ldap_disabled_filter="(employeeType=disabled)",
        ldap_timeout_s=3,
        **kw,
    )


@pytest.mark.parametrize("mode", ["group_search", "member_of", "dn_template"])
def test_bind_as_the_user_and_read_groups(slapd: Slapd, mode: str) -> None:
    if mode == "group_search":
        s = search_bind(slapd.url, ldap_group_base=f"ou=groups,{BASE}")
    elif mode == "member_of":
        s = search_bind(slapd.url)
    else:
        s = AuthSettings(
            ldap_url=slapd.url, ldap_user_dn_template="uid={username},ou=people," + BASE
        )
    a = LdapAuthenticator(s)
    user = a.authenticate("chen", PEOPLE["chen"][0])
    assert user is not None
    assert user.dn == f"uid=chen,ou=people,{BASE}"
    assert user.groups == ("finance", "kb-editors")
    assert a.authenticate("chen", "wrong-password") is None
    assert a.authenticate("chen", "") is None  # not an anonymous bind
    assert a.authenticate("nobody", "whatever") is None
    assert a.authenticate("*", PEOPLE["chen"][0]) is None  # no wildcard through the filter


def test_disabled_and_unreachable(slapd: Slapd) -> None:
    a = LdapAuthenticator(search_bind(slapd.url))
    with pytest.raises(LdapDisabled):
        a.authenticate("lin", PEOPLE["lin"][0])
    assert a.authenticate("lin", "wrong") is None  # disabled is only told to the owner
    bad_service = LdapAuthenticator(search_bind(slapd.url).with_(ldap_bind_password="nope"))
    with pytest.raises(LdapUnavailable, match="service account"):
        bad_service.authenticate("mei", PEOPLE["mei"][0])
    down = LdapAuthenticator(search_bind(f"ldap://127.0.0.1:{free_port()}"))
    with pytest.raises(LdapUnavailable, match="127.0.0.1"):
        down.authenticate("mei", PEOPLE["mei"][0])


@pytest.fixture(scope="module")
def app(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("ldap") / "home"
    keys = build_home(home)
    app = create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))
    with TestClient(app) as client:
        adm = TestClient(app, headers=auth(keys.admin))
        adm.put("/api/v1/groups/hr-staff", json={"role": "reader", "kbs": ["hr"]})
        adm.put("/api/v1/groups/kb-editors", json={"role": "editor", "kbs": []})
        adm.put("/api/v1/groups/finance", json={"kbs": ["finance"]})
        root = next(
            u["id"] for u in adm.get("/api/v1/users").json()["users"] if u["name"] == "root"
        )
        assert (
            adm.put(
                f"/api/v1/users/{root}/password", json={"password": "root-local-password"}
            ).status_code
            == 200
        )
        app.state.signin = SignIn(search_bind(slapd.url, ldap_group_base=f"ou=groups,{BASE}"))
        yield app, client, adm


def login(c: TestClient, name: str, password: str, lang: str = "zh") -> Any:
    return c.post(
        "/api/v1/auth/login",
        json={"username": name, "password": password},
        headers={"Accept-Language": lang},
    )


def test_directory_users_sign_in_with_mapped_roles_and_grants(app: Any) -> None:
    the_app, _client, adm = app
    c = TestClient(the_app)
    r = login(c, "mei", PEOPLE["mei"][0])
    assert r.status_code == 200, r.text
    assert (r.json()["method"], r.json()["role"], r.json()["kbs"]) == ("ldap", "reader", ["hr"])
    assert c.get("/api/v1/auth/me").json()["groups"] == ["hr-staff"]
    assert c.get("/api/v1/kbs/finance/documents").status_code == 404
    c2 = TestClient(the_app)
    r = login(c2, "chen", PEOPLE["chen"][0])
    assert (r.json()["role"], r.json()["kbs"]) == ("editor", ["finance"])
    assert c2.get("/api/v1/kbs/finance/documents").status_code == 200
    users = {u["name"] for u in adm.get("/api/v1/users").json()["users"]}
    assert {"mei", "chen"} <= users  # provisioned on first sign-in
    # the mapping changes: the next sign-in and the open session follow it
    adm.put("/api/v1/groups/kb-editors", json={"role": None, "kbs": []})
    assert c2.get("/api/v1/auth/me").json()["role"] == "reader"


def test_wrong_unknown_disabled_unmapped_conflict(app: Any) -> None:
    the_app, _client, adm = app
    c = TestClient(the_app)
    assert login(c, "mei", "wrong").json()["error"]["code"] == "invalid_credentials"
    assert login(c, "ghost", "whatever").json()["error"]["code"] == "invalid_credentials"
    r = login(c, "lin", PEOPLE["lin"][0])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "account_disabled")
    # frank exists locally (a key user): the directory's frank may not take the account
    r = login(c, "frank", PEOPLE["frank"][0])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "sso_account_conflict")
    # no group of the user maps to a role: refused, with a message saying why
    adm.put("/api/v1/groups/hr-staff", json={"role": None, "kbs": ["hr"]})
    r = login(c, "mei", PEOPLE["mei"][0], "en")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "no_mapped_group")
    assert "maps to a role" in r.json()["error"]["message"]
    adm.put("/api/v1/groups/hr-staff", json={"role": "reader", "kbs": ["hr"]})


def test_directory_down_is_a_clear_503(app: Any) -> None:
    the_app = app[0]
    the_app.state.signin = SignIn(search_bind(f"ldap://127.0.0.1:{free_port()}"))
    try:
        r = login(TestClient(the_app), "mei", PEOPLE["mei"][0], "en")
        assert r.status_code == 503
        err = r.json()["error"]
        assert err["code"] == "ldap_unavailable"
        assert "LDAP directory cannot be reached" in err["message"]
        assert "127.0.0.1" in err["message"]
        # a local password still works while the directory is down
        r = login(TestClient(the_app), "root", "root-local-password")
        assert (r.status_code, r.json()["method"]) == (200, "password")
    finally:
        the_app.state.signin = SignIn(search_bind(app[0].state.signin.settings.ldap_url))
