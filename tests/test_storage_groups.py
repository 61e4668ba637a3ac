"""Contract of the one group-membership table (component ``groups``), on SQLite and on a
real PostgreSQL: mappings, memberships by source, and the migration that moved the two
old tables (access's ``user_groups``, sign-in's ``auth_user_groups``) into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.access import AccessError, caller_groups, caller_scope, set_user_access
from zhiku.storage import migrate
from zhiku.storage.db import Database, connect, now_iso
from zhiku.storage.groups import LOCAL, GroupRepository


def _target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "zhiku.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = connect(_target(request, tmp_path))
    migrate.apply(database)
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """A database as the release before component ``groups`` left it."""
    database = connect(_target(request, tmp_path))
    every = migrate.components()
    with monkeypatch.context() as m:
        m.setattr(migrate, "components", lambda: tuple(c for c in every if c.name != "groups"))
        migrate.apply(database)
    assert "groups" not in migrate.applied_versions(database)
    yield database
    database.close()


def _user(db: Database, name: str, created_at: str | None = None) -> int:
    with db.tx():
        return int(
            db.execute(
                "INSERT INTO users(name, role, created_at) VALUES (?, 'reader', ?) RETURNING id",
                (name, created_at or now_iso()),
            ).fetchone()[0]
        )


def _rows(db: Database) -> set[tuple[str, str, str]]:
    return {
        (r[0], r[1], r[2])
        for r in db.execute(
            "SELECT u.name, g.name, m.source FROM group_members m "
            "JOIN users u ON u.id=m.user_id JOIN auth_groups g ON g.id=m.group_id"
        )
    }


def _has_table(db: Database, name: str) -> bool:
    try:
        with db.tx():
            db.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchall()
    except Exception:  # noqa: BLE001 - either backend's "no such table"
        return False
    return True


def test_the_migration_moves_both_tables_with_nothing_lost(old_db: Database) -> None:
    db = old_db
    chen, mei = _user(db, "chen", "2026-01-02T00:00:00+00:00"), _user(db, "mei")
    with db.tx():
        for name, role in (("kb-editors", "editor"), ("handpicked", None)):
            db.execute(
                "INSERT INTO auth_groups(name, role, created_at) VALUES (?, ?, ?)",
                (name, role, now_iso()),
            )
        gid = {r[0]: int(r[1]) for r in db.execute("SELECT name, id FROM auth_groups")}
        db.executemany(
            "INSERT INTO auth_user_groups(user_id, group_id, source) VALUES (?, ?, ?)",
            [(chen, gid["kb-editors"], "ldap"), (mei, gid["handpicked"], "local")],
        )
        db.executemany(
            "INSERT INTO user_groups(user_name, grp) VALUES (?, ?)",
            [
                ("chen", "hr"),  # a group sign-in never saw
                ("chen", "kb-editors"),  # also a directory membership: both kept
                ("mei", "handpicked"),  # the same membership in both tables: one row
                ("mei", "財務處"),
                ("gone", "hr"),  # an account deleted since
            ],
        )
    assert migrate.apply(db) == [("groups", 1)]
    assert _rows(db) == {
        ("chen", "kb-editors", "ldap"),
        ("chen", "kb-editors", LOCAL),
        ("chen", "hr", LOCAL),
        ("mei", "handpicked", LOCAL),
        ("mei", "財務處", LOCAL),
    }
    assert not _has_table(db, "user_groups") and not _has_table(db, "auth_user_groups")
    repo = GroupRepository(db)
    hr = repo.group("hr")
    assert hr is not None and (hr.role, hr.kbs, hr.members) == (None, (), ("chen",))
    assert repo.group("kb-editors").role == "editor"  # type: ignore[union-attr]
    assert caller_groups(db, "chen") == {"hr", "kb-editors"}
    assert caller_groups(db, "mei") == {"handpicked", "財務處"}
    # The deleted account's groups are not handed to a new account of that name.
    _user(db, "gone")
    assert caller_groups(db, "gone") == frozenset()
    assert migrate.apply(db) == [] and migrate.is_current(db)


def test_memberships_by_source(db: Database) -> None:
    r = GroupRepository(db)
    uid = _user(db, "chen")
    g = r.save_group("finance", "editor", ["fin", "fin", "all"], "財務處")
    assert (g.role, g.kbs, g.description) == ("editor", ("all", "fin"), "財務處")
    assert r.save_group("finance", None, []).role is None  # changed, same id
    assert r.group("finance").id == g.id  # type: ignore[union-attr]
    r.add_member("handpicked", uid)
    r.sync(uid, ["finance", "kb-editors"], "ldap")
    assert [x.name for x in r.user_groups(uid)] == ["finance", "handpicked", "kb-editors"]
    # An administrator also adds finance by hand: a second row, the group listed once.
    r.sync(uid, ["finance", "handpicked"], LOCAL)
    assert [x.name for x in r.user_groups(uid)] == ["finance", "handpicked", "kb-editors"]
    r.sync(uid, ["kb-editors"], "ldap")  # the directory dropped finance: the local row stays
    assert [x.name for x in r.user_groups(uid)] == ["finance", "handpicked", "kb-editors"]
    r.sync(uid, [], "ldap")
    assert r.names_of("chen") == ["finance", "handpicked"]
    fin = r.group("finance")
    assert fin is not None and fin.members == ("chen",) and fin.local_members == ("chen",)
    r.sync(uid, ["kb-editors"], "ldap")
    kbe = r.group("kb-editors")
    assert kbe is not None and kbe.members == ("chen",) and kbe.local_members == ()
    r.remove_member("handpicked", uid)
    r.remove_member("finance", uid, "ldap")  # no such row: nothing changes
    assert r.names_of("chen") == ["finance", "kb-editors"]
    assert r.delete_group("kb-editors") and not r.delete_group("kb-editors")
    assert r.names_of("chen") == ["finance"]
    assert r.group_names() == ["finance", "handpicked"]
    with db.tx():
        db.execute("DELETE FROM users WHERE id=?", (uid,))
    assert r.names_of("chen") == [] and r.group("finance").members == ()  # type: ignore[union-attr]


def test_access_admin_writes_the_same_table(db: Database) -> None:
    """``zhiku access user --groups`` (and its API) replaces the user's manual groups,
    folded onto the groups that exist; a directory's memberships stay."""
    r = GroupRepository(db)
    uid = _user(db, "hana")
    r.save_group("HR", "editor", [])
    r.sync(uid, ["Finance"], "oidc:corp")
    scope = set_user_access(db, "hana", ["hr", "法務"], "機密")
    assert r.names_of("hana") == ["Finance", "HR", "法務"]  # "hr" joined the group "HR"
    assert (scope.groups, scope.clearance) == (frozenset({"finance", "hr", "法務"}), 2)
    assert [x.name for x in r.user_groups(uid) if x.role] == ["HR"]
    set_user_access(db, "hana", [])
    assert caller_scope(db, "hana").groups == frozenset({"finance"})
    with pytest.raises(AccessError, match="nobody"):
        set_user_access(db, "nobody", ["hr"])
