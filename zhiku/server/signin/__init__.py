"""Sign-in for people: passwords, sessions with CSRF protection, lockout, groups,
LDAP / Active Directory and OpenID Connect (docs/admins/signin.md).

:func:`caller_groups` is the one place the caller's groups are read from (document
access filters by them).
"""

from zhiku.server.signin.core import SignIn, caller_groups

__all__ = ["SignIn", "caller_groups"]
