"""LDAP / Active Directory sign-in with ``ldap3``: bind as the user, read the groups.

Two ways to find the user's DN: a *DN template* (``uid={username},ou=people,…``: bind
directly) or *search-then-bind* (bind as a service account, search ``user_filter`` under
``user_base``, then bind as the DN found with the user's password). Groups come from a
group search (``(member={dn})`` under ``group_base``) or from the user's ``memberOf``.
Every value put into a filter or a DN is escaped, so a username cannot widen a search.
"""

from __future__ import annotations

from dataclasses import dataclass

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from zhiku.server.signin.config import AuthSettings


class LdapUnavailable(Exception):
    """The directory cannot be reached or refused the service account (not the user's fault)."""


class LdapDisabled(Exception):
    """The password was right but the directory marks the account disabled."""


@dataclass(frozen=True, slots=True)
class LdapUser:
    username: str
    dn: str
    groups: tuple[str, ...]


def _first_rdn_value(dn: str, attr: str) -> str:
    try:
        parts = parse_dn(dn)
    except lexc.LDAPInvalidDnError:
        return dn
    for name, value, _sep in parts:
        if name.lower() == attr.lower():
            return value
    return parts[0][1] if parts else dn


class LdapAuthenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.s = settings
        # ldap3 packs the timeouts into socket options: whole seconds only
        self.timeout = max(1, round(settings.ldap_timeout_s))
        self.server = ldap3.Server(
            settings.ldap_url, connect_timeout=self.timeout, get_info=ldap3.NONE
        )

    def _connect(self, user: str | None, password: str | None) -> ldap3.Connection:
        conn = ldap3.Connection(
            self.server,
            user=user,
            password=password,
            receive_timeout=self.timeout,
            raise_exceptions=False,
            read_only=True,
            auto_referrals=False,
        )
        try:
            conn.open()
            if self.s.ldap_starttls:
                conn.start_tls()
        except lexc.LDAPException as exc:
            raise LdapUnavailable(f"{self.s.ldap_url}: {exc}") from exc
        return conn

    def _find_dn(self, username: str) -> str | None:
        if self.s.ldap_user_dn_template and not self.s.ldap_user_base:
            return self.s.ldap_user_dn_template.format(username=escape_rdn(username))
        conn = self._connect(self.s.ldap_bind_dn or None, self.s.ldap_bind_password or None)
        try:
            if (self.s.ldap_bind_dn or self.s.ldap_bind_password) and not conn.bind():
                raise LdapUnavailable(
                    f"{self.s.ldap_url}: service account bind refused "
                    f"({conn.result.get('description')})"
                )
            flt = self.s.ldap_user_filter.format(username=escape_filter_chars(username))
            conn.search(
                self.s.ldap_user_base, flt, search_scope=ldap3.SUBTREE, attributes=[], size_limit=2
            )
            entries = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
            return str(entries[0]["dn"]) if len(entries) == 1 else None
        finally:
            conn.unbind()

    def authenticate(self, username: str, password: str) -> LdapUser | None:
        """The user and their group names, or ``None`` (unknown user, wrong password).

        Raises :class:`LdapUnavailable` when the directory cannot answer and
        :class:`LdapDisabled` for a disabled account with the right password."""
        if not password:  # an empty password is an anonymous bind: it "succeeds"
            return None
        try:
            dn = self._find_dn(username)
            if dn is None:
                return None
            conn = self._connect(dn, password)
            try:
                if not conn.bind():
                    if conn.result.get("result") == 49:  # invalidCredentials
                        return None
                    raise LdapUnavailable(
                        f"{self.s.ldap_url}: bind failed ({conn.result.get('description')})"
                    )
                if self.s.ldap_disabled_filter:
                    conn.search(
                        dn, self.s.ldap_disabled_filter, search_scope=ldap3.BASE, attributes=[]
                    )
                    if any(e.get("type") == "searchResEntry" for e in conn.response or ()):
                        raise LdapDisabled(username)
                return LdapUser(username, dn, tuple(sorted(self._groups(conn, dn))))
            finally:
                conn.unbind()
        except lexc.LDAPException as exc:
            raise LdapUnavailable(f"{self.s.ldap_url}: {exc}") from exc

    def _groups(self, conn: ldap3.Connection, dn: str) -> set[str]:
        attr = self.s.ldap_group_name_attr
        if self.s.ldap_group_base:
            flt = self.s.ldap_group_filter.format(dn=escape_filter_chars(dn))
            conn.search(self.s.ldap_group_base, flt, search_scope=ldap3.SUBTREE, attributes=[attr])
            out = set()
            for e in conn.response or ():
                if e.get("type") != "searchResEntry":
                    continue
                values = e["attributes"].get(attr) or [_first_rdn_value(e["dn"], attr)]
                out.add(str(values[0] if isinstance(values, list) else values))
            return out
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
        for e in conn.response or ():
            if e.get("type") == "searchResEntry":
                return {
                    _first_rdn_value(str(g), attr) for g in e["attributes"].get("memberOf") or ()
                }
        return set()
