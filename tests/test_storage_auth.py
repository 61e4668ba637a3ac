"""Contract of the sign-in repository, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.storage import migrate
from zhiku.storage.auth import Pending, SqlAuthRepository
from zhiku.storage.db import Database, connect, now_iso


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    target = (
        str(tmp_path / "zhiku.db")
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    database = connect(target)
    migrate.apply(database)
    if database.dialect == "sqlite":
        database.execute("PRAGMA foreign_keys=ON")
    yield database
    database.close()


def _user(db: Database, name: str) -> int:
    return int(
        db.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, 'reader', ?) RETURNING id",
            (name, now_iso()),
        ).fetchone()[0]
    )


def test_passwords_are_upserted_and_go_with_the_user(db: Database) -> None:
    r = SqlAuthRepository(db)
    uid = _user(db, "mei")
    assert r.password_hash(uid) is None
    r.set_password_hash(uid, "$argon2id$one")
    r.set_password_hash(uid, "$argon2id$two")
    assert r.password_hash(uid) == "$argon2id$two"
    db.execute("DELETE FROM users WHERE id=?", (uid,))
    assert r.password_hash(uid) is None


def test_sessions_touch_expire_and_end_per_user(db: Database) -> None:
    r = SqlAuthRepository(db)
    a, b = _user(db, "a"), _user(db, "b")
    s1 = r.create_session("h1", "c1", a, "password", "10.0.0.1", 1000.0)
    r.create_session("h2", "c2", a, "ldap", None, 1000.0)
    s3 = r.create_session("h3", "c3", b, "oidc", None, 5000.0)
    rec = r.session("h1")
    assert rec is not None and (rec.id, rec.user_id, rec.csrf, rec.ip) == (s1, a, "c1", "10.0.0.1")
    r.touch_session(s1, 2000.0)
    r.touch_session(s1, 1500.0)  # never moves back
    assert r.session("h1").seen_ts == 2000.0  # type: ignore[union-attr]
    assert r.session("nope") is None
    # purge: h2 was last seen at 1000 (idle), h3 is recent
    assert r.purge_sessions(created_before=0.0, seen_before=1800.0) == 1
    assert [s.id for s in r.user_sessions(a)] == [s1]
    assert r.delete_user_sessions(a) == 1
    assert r.session("h1") is None and r.session("h3") is not None
    r.delete_session(s3)
    assert r.session("h3") is None


def test_identities_failures_and_pending_are_used_once(db: Database) -> None:
    r = SqlAuthRepository(db)
    uid = _user(db, "mei")
    r.link_identity("ldap", "uid=mei,dc=x", uid)
    r.link_identity("ldap", "uid=mei,dc=x", uid)
    assert r.identity_user("ldap", "uid=mei,dc=x") == uid
    assert r.identity_user("oidc:x", "uid=mei,dc=x") is None
    assert r.user_providers(uid) == ["ldap"]
    r.add_failure(["user:mei", "ip:1.2.3.4"], 100.0)
    r.add_failure(["user:mei"], 200.0)
    assert r.failures_since("user:mei", 50.0) == (2, 100.0)
    assert r.failures_since("user:mei", 150.0) == (1, 200.0)
    assert r.failures_since("ip:9.9.9.9", 0.0) == (0, None)
    r.clear_failures("user:mei")
    assert r.failures_since("user:mei", 0.0)[0] == 0
    assert r.purge_failures(150.0) == 1
    r.add_pending(Pending("st", "no", "ver", "/x", 10.0))
    got = r.take_pending("st")
    assert got == Pending("st", "no", "ver", "/x", 10.0)
    assert r.take_pending("st") is None  # a replay finds nothing
    r.add_pending(Pending("old", "n", "v", "/", 1.0))
    assert r.purge_pending(5.0) == 1
