"""OpenID Connect sign-in: authorization code flow with PKCE (``authlib``), the
``id_token`` validated with ``joserfc`` (signature with the provider's JWKS, issuer,
audience, nonce, expiry).

:meth:`OidcClient.begin` makes a ``state``, a ``nonce`` and a PKCE verifier, keeps them
in the database (any node may receive the callback) and returns the provider's
authorization URL. The callback takes them back once (``take_pending``: a replayed
callback finds nothing) and :meth:`OidcClient.finish` exchanges the code with the
verifier, validates the token and returns the claims, with the groups from
``oidc_groups_claim`` (read from the userinfo endpoint when the provider keeps them out
of the token).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from zhiku.server.signin.config import AuthSettings
from zhiku.storage.auth import AuthRepository, Pending

PENDING_TTL_S = 600.0


class OidcError(Exception):
    """The sign-in cannot be completed; ``reason`` is a short stable word for logs/tests."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    issuer: str
    subject: str
    username: str
    groups: tuple[str, ...]
    claims: dict[str, Any]
    next_url: str


def safe_next(url: str | None) -> str:
    """Only a path on this site: no scheme, no host, no ``//evil``, no backslash."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


class OidcClient:
    def __init__(self, settings: AuthSettings) -> None:
        self.s = settings
        self._meta: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=self.s.oidc_timeout_s)

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None:
                url = self.s.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    with self._http() as h:
                        r = h.get(url)
                        r.raise_for_status()
                        meta = r.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise OidcError("provider_unavailable", f"{url}: {exc}") from exc
                if meta.get("issuer") != self.s.oidc_issuer:
                    raise OidcError("issuer_mismatch", str(meta.get("issuer")))
                self._meta = meta
            return self._meta

    def jwks(self, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._jwks
        if cached is not None and not refresh:
            return cached
        uri = self.metadata()["jwks_uri"]
        try:
            with self._http() as h:
                r = h.get(uri)
                r.raise_for_status()
                keys = KeySet.import_key_set(r.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise OidcError("provider_unavailable", f"{uri}: {exc}") from exc
        with self._lock:
            self._jwks = keys
        return keys

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.s.oidc_client_id,
            client_secret=self.s.oidc_client_secret or None,
            redirect_uri=self.s.oidc_redirect_uri,
            scope=self.s.oidc_scopes,
            code_challenge_method="S256",
            timeout=self.s.oidc_timeout_s,
        )

    def begin(self, repo: AuthRepository, next_url: str | None = None) -> str:
        """The URL to send the browser to; the flow's secrets kept in ``repo``."""
        meta = self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43–128)
        now = time.time()
        repo.purge_pending(now - PENDING_TTL_S)
        repo.add_pending(Pending(state, nonce, verifier, safe_next(next_url), now))
        with self._client() as c:
            url, _ = c.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return str(url)

    def finish(self, pending: Pending | None, code: str) -> OidcIdentity:
        """Complete the flow ``pending`` (taken with ``repo.take_pending(state)``, ``None``
        when unknown) with the provider's ``code``: no database transaction is held
        while the provider answers."""
        if pending is None or time.time() - pending.created_ts > PENDING_TTL_S:
            raise OidcError("unknown_state")
        meta = self.metadata()
        try:
            with self._client() as c:
                token = c.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=pending.verifier
                )
        except Exception as exc:  # noqa: BLE001 - authlib raises several kinds
            raise OidcError("token_exchange_failed", str(exc)) from exc
        raw = token.get("id_token")
        if not raw:
            raise OidcError("no_id_token")
        claims = self.validate_id_token(raw, pending.nonce)
        claims = self._with_userinfo(claims, token.get("access_token"))
        username = str(claims.get(self.s.oidc_username_claim) or "").strip()
        if not username:
            raise OidcError("no_username", self.s.oidc_username_claim)
        groups = claims.get(self.s.oidc_groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return OidcIdentity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            username=username,
            groups=tuple(sorted({str(g) for g in groups})),
            claims=claims,
            next_url=pending.next_url,
        )

    def validate_id_token(self, raw: str, nonce: str, now: int | None = None) -> dict[str, Any]:
        """The claims of ``raw`` if it is signed by the provider for this client, with this
        nonce, and not expired; :class:`OidcError` otherwise."""
        algs = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        algs = [a for a in algs if a != "none"]
        try:
            try:
                tok = jwt.decode(raw, self.jwks(), algorithms=algs)
            except JoseError:  # the provider may have rotated its keys
                tok = jwt.decode(raw, self.jwks(refresh=True), algorithms=algs)
        except (JoseError, ValueError) as exc:
            raise OidcError("bad_signature", str(exc)) from exc
        claims = dict(tok.claims)
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.s.oidc_leeway_s,
            iss={"essential": True, "value": self.s.oidc_issuer},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            reason = "expired" if "expired" in str(exc).lower() else "invalid_claims"
            if "nonce" in str(exc).lower():
                reason = "nonce_mismatch"
            raise OidcError(reason, str(exc)) from exc
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if self.s.oidc_client_id not in auds:
            raise OidcError("wrong_audience", str(aud))
        if len(auds) > 1 and claims.get("azp") != self.s.oidc_client_id:
            raise OidcError("wrong_audience", f"azp={claims.get('azp')}")
        return claims

    def _with_userinfo(self, claims: dict[str, Any], access_token: str | None) -> dict[str, Any]:
        wanted = (self.s.oidc_groups_claim, self.s.oidc_username_claim)
        endpoint = self.metadata().get("userinfo_endpoint")
        if all(k in claims for k in wanted) or not endpoint or not access_token:
            return claims
        try:
            with self._http() as h:
                r = h.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
                r.raise_for_status()
                info = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("provider_unavailable", f"{endpoint}: {exc}") from exc
        if info.get("sub") != claims.get("sub"):  # OIDC Core 5.3.2
            raise OidcError("userinfo_subject_mismatch")
        return {**info, **claims}
