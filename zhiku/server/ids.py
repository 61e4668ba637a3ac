"""Opaque public ids for database rows.

Documents and passages have sequential integer ids shared by every knowledge base, so
showing them would tell a reader of one KB how many documents the others hold. The
API shows them through a keyed permutation instead (a 4-round Feistel network over 64
bits with HMAC-SHA256 as the round function, keyed by a secret kept in the database):
ids stay short, reversible for the server and meaningless to anyone else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from zhiku.store import Store

_MASK32 = 0xFFFFFFFF
_ROUNDS = 4


class IdCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_store(cls, store: Store) -> IdCodec:
        """The codec of this database (its secret is created on first use)."""
        value = store.get_meta("server_id_secret")
        if value is None:
            with store.tx(immediate=True):
                value = store.get_meta("server_id_secret")
                if value is None:
                    value = secrets.token_hex(32)
                    store.set_meta("server_id_secret", value)
        return cls(bytes.fromhex(value))

    def _f(self, kind: str, rnd: int, half: int) -> int:
        msg = f"{kind}:{rnd}:{half}".encode()
        return int.from_bytes(hmac.new(self._secret, msg, hashlib.sha256).digest()[:4], "big")

    def encode(self, kind: str, n: int) -> str:
        """``n`` (0 ≤ n < 2**64) as 16 hex characters; ``kind`` separates id spaces."""
        left, right = (n >> 32) & _MASK32, n & _MASK32
        for r in range(_ROUNDS):
            left, right = right, left ^ self._f(kind, r, right)
        return f"{(left << 32) | right:016x}"

    def decode(self, kind: str, token: str) -> int | None:
        """The inverse of :meth:`encode`, or ``None`` for anything that is not one."""
        if len(token) != 16 or any(c not in "0123456789abcdef" for c in token):
            return None
        value = int(token, 16)
        left, right = value >> 32, value & _MASK32
        for r in reversed(range(_ROUNDS)):
            left, right = right ^ self._f(kind, r, left), left
        n = (left << 32) | right
        return n if n < 2**63 else None  # SQLite integers are signed 64-bit


def new_token(nbytes: int = 12) -> str:
    """A random URL-safe id for jobs, conversations and answers."""
    return secrets.token_urlsafe(nbytes)
