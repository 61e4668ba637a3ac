"""Groups and group membership: the one place a user's groups are stored.

A group (``auth_groups``) has a name and a mapping: the role it confers and the KBs it
grants (:mod:`zhiku.server.signin`); its members decide which labelled documents they
see (:mod:`zhiku.access`). Membership is one table, ``group_members`` (component
``groups``): a row per (user, group, source), ``source`` being ``local`` for what an
administrator set — ``zhiku access user --groups``, the admin API and the web admin page
all write it — or the identity provider whose sign-in reported it (``ldap``,
``oidc:…``), replaced at each of that provider's sign-ins (:meth:`GroupRepository.sync`).

Portable SQL only, so :class:`GroupRepository` runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso

#: The source of the memberships an administrator sets.
LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Group:
    """A group and its mapping: the role it confers (``None``: none) and the KBs it grants;
    ``members`` from every source, ``local_members`` those an administrator set."""

    id: int
    name: str
    role: str | None
    kbs: tuple[str, ...] = ()
    description: str = ""
    members: tuple[str, ...] = field(default=())
    local_members: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "kbs": list(self.kbs),
            "description": self.description,
            "members": list(self.members),
            "local_members": list(self.local_members),
        }


class GroupStore(Protocol):
    """What sign-in and document access need of groups and membership."""

    def list_groups(self) -> list[Group]: ...
    def group(self, name: str) -> Group | None: ...
    def group_names(self) -> list[str]: ...
    def save_group(
        self, name: str, role: str | None, kbs: Iterable[str], description: str = ""
    ) -> Group: ...
    def delete_group(self, name: str) -> bool: ...
    def user_groups(self, user_id: int) -> list[Group]: ...
    def names_of(self, user: str) -> list[str]: ...
    def add_member(self, name: str, user_id: int, source: str = LOCAL) -> None: ...
    def remove_member(self, name: str, user_id: int, source: str | None = None) -> None: ...
    def sync(self, user_id: int, names: Iterable[str], source: str) -> None: ...


def _group(row: Any, members: tuple[str, ...] = (), local: tuple[str, ...] = ()) -> Group:
    return Group(
        id=int(row["id"]),
        name=row["name"],
        role=row["role"],
        kbs=tuple(json.loads(row["kbs"])),
        description=row["description"],
        members=members,
        local_members=local,
    )


class GroupRepository:
    """:class:`GroupStore` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _with_members(self, row: Any) -> Group:
        rows = self.db.execute(
            "SELECT u.name, m.source FROM group_members m JOIN users u ON u.id=m.user_id "
            "WHERE m.group_id=? ORDER BY u.name",
            (row["id"],),
        ).fetchall()
        members = tuple(dict.fromkeys(r[0] for r in rows))
        local = tuple(dict.fromkeys(r[0] for r in rows if r[1] == LOCAL))
        return _group(row, members, local)

    def list_groups(self) -> list[Group]:
        rows = self.db.execute("SELECT * FROM auth_groups ORDER BY name").fetchall()
        return [self._with_members(r) for r in rows]

    def group(self, name: str) -> Group | None:
        row = self.db.execute("SELECT * FROM auth_groups WHERE name=?", (name,)).fetchone()
        return None if row is None else self._with_members(row)

    def group_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM auth_groups ORDER BY name")]

    def save_group(
        self, name: str, role: str | None, kbs: Iterable[str], description: str = ""
    ) -> Group:
        kb_json = json.dumps(sorted(set(kbs)), ensure_ascii=False)
        self.db.execute(
            "INSERT INTO auth_groups(name, role, kbs, description, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
            "kbs=excluded.kbs, description=excluded.description",
            (name, role, kb_json, description, now_iso()),
        )
        found = self.group(name)
        assert found is not None
        return found

    def _ensure_group(self, name: str) -> int:
        self.db.execute(
            "INSERT INTO auth_groups(name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (name, now_iso()),
        )
        return int(
            self.db.execute("SELECT id FROM auth_groups WHERE name=?", (name,)).fetchone()[0]
        )

    def delete_group(self, name: str) -> bool:
        """Delete a group (its memberships go with it)."""
        return self.db.execute("DELETE FROM auth_groups WHERE name=?", (name,)).rowcount > 0

    def user_groups(self, user_id: int) -> list[Group]:
        """The groups ``user_id`` belongs to, from any source, once each, by name."""
        rows = self.db.execute(
            "SELECT * FROM auth_groups WHERE id IN "
            "(SELECT group_id FROM group_members WHERE user_id=?) ORDER BY name",
            (user_id,),
        ).fetchall()
        return [_group(r) for r in rows]

    def names_of(self, user: str) -> list[str]:
        """The names of the groups of the user named ``user`` ([] for no such user)."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT g.name FROM auth_groups g WHERE g.id IN (SELECT m.group_id FROM "
                "group_members m JOIN users u ON u.id=m.user_id WHERE u.name=?) ORDER BY g.name",
                (user,),
            )
        ]

    def add_member(self, name: str, user_id: int, source: str = LOCAL) -> None:
        with self.db.tx():
            gid = self._ensure_group(name)
            self.db.execute(
                "INSERT INTO group_members(user_id, group_id, source) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (user_id, gid, source),
            )

    def remove_member(self, name: str, user_id: int, source: str | None = None) -> None:
        """End ``user_id``'s membership of ``name`` from ``source`` (``None``: from all)."""
        sql = (
            "DELETE FROM group_members WHERE user_id=? AND group_id IN "
            "(SELECT id FROM auth_groups WHERE name=?)"
        )
        args: list[Any] = [user_id, name]
        if source is not None:
            sql += " AND source=?"
            args.append(source)
        self.db.execute(sql, args)

    def sync(self, user_id: int, names: Iterable[str], source: str) -> None:
        """Make the memberships of ``user_id`` that came from ``source`` exactly ``names``
        (the groups a directory reported at sign-in, or those an administrator set with
        ``source`` :data:`LOCAL`); memberships from other sources stay."""
        wanted = sorted(set(names))
        with self.db.tx():
            self.db.execute(
                "DELETE FROM group_members WHERE user_id=? AND source=?", (user_id, source)
            )
            for name in wanted:
                self.db.execute(
                    "INSERT INTO group_members(user_id, group_id, source) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (user_id, self._ensure_group(name), source),
                )
