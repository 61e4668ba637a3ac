"""OpenID Connect sign-in against a real provider (panva's oidc-provider, run by the test):
authorization code + PKCE through the real app, and the id_token checks with real tokens
(tampered, wrong audience, replayed nonce / callback, expired)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient

from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.server.signin import SignIn
from zhiku.server.signin.config import AuthSettings
from zhiku.server.signin.oidc import OidcClient, OidcError

from .oidc_util import Provider, sign_in_at_provider
from .server_util import auth, build_home, free_port

CALLBACK = "http://testserver/api/v1/auth/oidc/callback"
OTHER_CALLBACK = "http://other.test/cb"
ACCOUNTS = {
    "u-1001": {"preferred_username": "wang", "name": "王小明", "groups": ["hr-staff", "it"]},
    "u-1002": {"preferred_username": "nogroups", "groups": []},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    p = Provider(
        clients=[
            {
                "client_id": "zhiku",
                "client_secret": "zhiku-secret",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
            {
                "client_id": "other-app",
                "client_secret": "other-secret",
                "redirect_uris": [OTHER_CALLBACK],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
        ],
        accounts=ACCOUNTS,
    )
    yield p
    p.stop()


def settings(p: Provider, **kw: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "cookie_secure": False,
        "oidc_issuer": p.issuer,
        "oidc_client_id": "zhiku",
        "oidc_client_secret": "zhiku-secret",
        "oidc_redirect_uri": CALLBACK,
        "oidc_scopes": "openid profile groups",
        **kw,
    }
    return AuthSettings(**values)


@pytest.fixture(scope="module")
def app(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("oidc") / "home"
    keys = build_home(home)
    app = create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))
    with TestClient(app):
        TestClient(app, headers=auth(keys.admin)).put(
            "/api/v1/groups/hr-staff", json={"role": "reader", "kbs": ["hr"]}
        )
        app.state.signin = SignIn(settings(provider))
        yield app, keys, provider


def test_code_flow_with_pkce_signs_in_with_groups_from_the_claim(app: Any) -> None:
    the_app, keys, _p = app
    c = TestClient(the_app, follow_redirects=False)
    assert c.get("/api/v1/auth/config").json()["sso"] is True
    r = c.get("/api/v1/auth/oidc/start", params={"next": "/?kb=hr"})
    assert r.status_code == 302
    auth_url = r.headers["location"]
    q = parse_qs(urlsplit(auth_url).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["nonce"][0] and q["state"][0] and q["response_type"] == ["code"]
    back = sign_in_at_provider(auth_url, "u-1001", CALLBACK)
    r = c.get(back.removeprefix("http://testserver"))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/?kb=hr"
    me = c.get("/api/v1/auth/me").json()
    assert (me["user"], me["role"], me["kbs"], me["groups"], me["via"]) == (
        "wang",
        "reader",
        ["hr"],
        ["hr-staff", "it"],
        "session",
    )
    # the callback cannot be replayed: its state was used up (on any node)
    r = TestClient(the_app).get(back.removeprefix("http://testserver"))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "oidc_failed")
    assert "unknown_state" in r.json()["error"]["message"]
    # the same person signs in again: same account, no duplicate
    c2 = TestClient(the_app, follow_redirects=False)
    url = c2.get("/api/v1/auth/oidc/start").headers["location"]
    r = c2.get(sign_in_at_provider(url, "u-1001", CALLBACK).removeprefix("http://testserver"))
    assert r.headers["location"] == "/"
    names = [
        u["name"]
        for u in TestClient(the_app, headers=auth(keys.admin)).get("/api/v1/users").json()["users"]
    ]
    assert names.count("wang") == 1


def test_no_mapped_group_and_open_redirects_are_refused(app: Any) -> None:
    the_app = app[0]
    c = TestClient(the_app, follow_redirects=False)
    url = c.get("/api/v1/auth/oidc/start", params={"next": "//evil.example/x"}).headers["location"]
    r = c.get(sign_in_at_provider(url, "u-1002", CALLBACK).removeprefix("http://testserver"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "no_mapped_group")
    # a browser is sent to the sign-in page, which explains it
    url = c.get("/api/v1/auth/oidc/start").headers["location"]
    r = c.get(
        sign_in_at_provider(url, "u-1002", CALLBACK).removeprefix("http://testserver"),
        headers={"Accept": "text/html,application/xhtml+xml"},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/?signin_error=no_mapped_group")
    assert "zhiku_session" not in c.cookies
    the_app.state.signin = SignIn(settings(app[2], external_default_role="reader"))
    try:
        url = c.get("/api/v1/auth/oidc/start", params={"next": "//evil.example/x"}).headers[
            "location"
        ]
        r = c.get(sign_in_at_provider(url, "u-1002", CALLBACK).removeprefix("http://testserver"))
        assert r.status_code == 303 and r.headers["location"] == "/"
    finally:
        the_app.state.signin = SignIn(settings(app[2]))


def raw_token(
    p: Provider, client_id: str, secret: str, redirect: str, account: str = "u-1001"
) -> tuple[str, str]:
    """A real id_token from the provider for ``client_id``, and the nonce it carries."""
    meta = OidcClient(settings(p)).metadata()
    nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    with OAuth2Client(
        client_id=client_id,
        client_secret=secret,
        redirect_uri=redirect,
        scope="openid profile groups",
        code_challenge_method="S256",
    ) as c:
        url, state = c.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        back = sign_in_at_provider(url, account, redirect)
        code = parse_qs(urlsplit(back).query)["code"][0]
        token = c.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier)
    return token["id_token"], nonce


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_id_token_checks_with_real_tokens(provider: Provider) -> None:
    client = OidcClient(settings(provider))
    raw, nonce = raw_token(provider, "zhiku", "zhiku-secret", CALLBACK)
    claims = client.validate_id_token(raw, nonce)
    assert claims["sub"] == "u-1001" and claims["aud"] == "zhiku"
    assert claims["iss"] == provider.issuer

    # tampered: another subject in the payload, the provider's signature kept
    head, body, sig = raw.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["sub"] = "u-admin"
    with pytest.raises(OidcError) as e:
        client.validate_id_token(f"{head}.{_b64(json.dumps(payload).encode())}.{sig}", nonce)
    assert e.value.reason == "bad_signature"
    with pytest.raises(OidcError) as e:  # signature bytes changed
        client.validate_id_token(f"{head}.{body}.{sig[:-4]}AAAA", nonce)
    assert e.value.reason == "bad_signature"
    with pytest.raises(OidcError) as e:  # alg "none"
        none_head = _b64(json.dumps({"alg": "none"}).encode())
        client.validate_id_token(f"{none_head}.{body}.", nonce)
    assert e.value.reason == "bad_signature"

    # wrong audience: a real token the same provider issued to another application
    other, other_nonce = raw_token(provider, "other-app", "other-secret", OTHER_CALLBACK)
    with pytest.raises(OidcError) as e:
        client.validate_id_token(other, other_nonce)
    assert e.value.reason == "wrong_audience"

    # replayed nonce: a token from an earlier sign-in presented to a new one
    with pytest.raises(OidcError) as e:
        client.validate_id_token(raw, secrets.token_urlsafe(16))
    assert e.value.reason == "nonce_mismatch"

    # expired: the same token checked after its exp (plus the allowed clock skew)
    with pytest.raises(OidcError) as e:
        client.validate_id_token(raw, nonce, now=int(claims["exp"]) + 61)
    assert e.value.reason == "expired"
    assert client.validate_id_token(raw, nonce, now=int(claims["exp"]) + 59)["sub"] == "u-1001"


def test_provider_down_is_a_clear_error() -> None:
    dead = AuthSettings(
        oidc_issuer=f"http://127.0.0.1:{free_port()}",
        oidc_client_id="z",
        oidc_redirect_uri=CALLBACK,
        oidc_timeout_s=2,
    )
    with pytest.raises(OidcError) as e:
        OidcClient(dead).metadata()
    assert e.value.reason == "provider_unavailable" and "127.0.0.1" in str(e.value)
