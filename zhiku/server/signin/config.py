"""Sign-in settings, read once from ``ZHIKU_AUTH_*``, ``ZHIKU_LDAP_*`` and ``ZHIKU_OIDC_*``.

Every field of :class:`AuthSettings` is set by the variable named after it with its
section prefix: ``cookie_secure`` ← ``ZHIKU_AUTH_COOKIE_SECURE``, ``ldap_url`` ←
``ZHIKU_LDAP_URL``, ``oidc_issuer`` ← ``ZHIKU_OIDC_ISSUER``. See docs/admins/signin.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pydantic import TypeAdapter, ValidationError

from zhiku.messages import t
from zhiku.server.settings import SettingsError

_TYPES: dict[str, type] = {"bool": bool, "str": str, "float": float, "int": int}


def _var(name: str) -> str:
    if name.startswith(("ldap_", "oidc_")):
        return f"ZHIKU_{name.upper()}"
    return f"ZHIKU_AUTH_{name.upper()}"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    # Cookies. ``cookie_secure=False`` only for plain-HTTP localhost: browsers then send
    # the session cookie over HTTP, where anyone on the path can read it.
    cookie_secure: bool = True
    cookie_samesite: str = "lax"  # lax | strict (lax lets the OIDC redirect land signed in)
    idle_timeout_s: float = 1800.0  # a session unused this long ends
    absolute_timeout_s: float = 43200.0  # and any session ends this long after sign-in
    # Lockout: this many failures in ``lockout_window_s`` lock the account / the address
    # until the oldest of them leaves the window.
    lockout_user: int = 5
    lockout_ip: int = 20
    lockout_window_s: float = 900.0
    password_min_length: int = 10
    # Users signing in through LDAP/OIDC get the highest role their groups map to; when
    # no group maps to a role, this one (empty: sign-in refused).
    external_default_role: str = ""
    # LDAP / Active Directory
    ldap_url: str = ""  # ldap://dc1.example.org:389 or ldaps://…
    ldap_starttls: bool = False
    ldap_timeout_s: float = 5.0
    ldap_user_dn_template: str = ""  # direct bind: uid={username},ou=people,dc=example,dc=org
    ldap_bind_dn: str = ""  # search-then-bind: the service account
    ldap_bind_password: str = ""
    ldap_user_base: str = ""
    ldap_user_filter: str = "(uid={username})"  # AD: (sAMAccountName={username})
    ldap_group_base: str = ""  # set: groups are searched (member={dn}); empty: memberOf
    ldap_group_filter: str = "(member={dn})"
    ldap_group_name_attr: str = "cn"
    # An LDAP filter that, matched on the user's entry, means "disabled".
    # AD: (userAccountControl:1.2.840.113556.1.4.803:=2)
    ldap_disabled_filter: str = ""
    # OpenID Connect
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_uri: str = ""  # https://zhiku.example.org/api/v1/auth/oidc/callback
    oidc_scopes: str = "openid profile email"
    oidc_groups_claim: str = "groups"
    oidc_username_claim: str = "preferred_username"
    oidc_leeway_s: int = 60
    oidc_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> AuthSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(_var(f.name))
            if raw:
                # Parsed by pydantic, as every other setting (zhiku.settings).
                try:
                    values[f.name] = TypeAdapter(_TYPES[str(f.type)]).validate_python(raw)
                except ValidationError as exc:
                    raise SettingsError(
                        t(
                            "settings.bad_env",
                            key=_var(f.name),
                            value=raw,
                            reason=exc.errors()[0].get("msg", ""),
                        )
                    ) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)
        s.validate()
        return s

    def with_(self, **changes: Any) -> AuthSettings:
        s = replace(self, **changes)
        s.validate()
        return s

    def validate(self) -> None:
        if self.cookie_samesite not in ("lax", "strict"):
            raise SettingsError(f"{_var('cookie_samesite')} 必須是 lax 或 strict")
        for name in (
            "idle_timeout_s",
            "absolute_timeout_s",
            "lockout_user",
            "lockout_ip",
            "lockout_window_s",
            "password_min_length",
            "ldap_timeout_s",
            "oidc_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"設定 {_var(name)} 必須大於 0")
        if self.ldap_url and not (self.ldap_user_dn_template or self.ldap_user_base):
            raise SettingsError(
                "設定了 ZHIKU_LDAP_URL 就必須設定 ZHIKU_LDAP_USER_DN_TEMPLATE "
                "或 ZHIKU_LDAP_USER_BASE"
            )
        oidc = (self.oidc_issuer, self.oidc_client_id, self.oidc_redirect_uri)
        if any(oidc) and not all(oidc):
            raise SettingsError(
                "OpenID Connect 需要 ZHIKU_OIDC_ISSUER、ZHIKU_OIDC_CLIENT_ID "
                "與 ZHIKU_OIDC_REDIRECT_URI"
            )

    @property
    def ldap_enabled(self) -> bool:
        return bool(self.ldap_url)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)
