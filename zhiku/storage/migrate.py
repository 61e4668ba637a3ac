"""Schema migrations, grouped by component.

Every module of :mod:`zhiku.storage.migrations` is a component named after the module,
with ``MIGRATIONS: dict[int, str]`` (numbered scripts, see :func:`zhiku.storage.db.ddl`)
and optionally ``AFTER: tuple[str, ...]``, the components whose tables it references
(default: ``("core",)``). Components are applied in that order, each missing version in
turn (numbers may land out of order), all in one transaction; on PostgreSQL under an
advisory lock, so several nodes starting at once migrate once.

Applied versions are recorded in ``schema_migrations(component, version)``. Databases
made before components existed have a ``migrations(version)`` table: its rows become
component ``core``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from zhiku.errors import StoreError
from zhiku.storage import migrations as _package
from zhiku.storage.db import Database, ddl, now_iso

#: An arbitrary constant: the advisory lock key of zhiku's schema migrations.
_PG_LOCK = 0x7A68696B75


@dataclass(frozen=True)
class Component:
    name: str
    migrations: dict[int, str]
    after: tuple[str, ...]

    @property
    def version(self) -> int:
        return max(self.migrations, default=0)


@cache
def components() -> tuple[Component, ...]:
    """Every component, in an order where each comes after those it references."""
    found: dict[str, Component] = {}
    for info in pkgutil.iter_modules(_package.__path__):
        mod = importlib.import_module(f"{_package.__name__}.{info.name}")
        after = tuple(getattr(mod, "AFTER", () if info.name == "core" else ("core",)))
        found[info.name] = Component(info.name, dict(mod.MIGRATIONS), after)
    ordered: list[Component] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(c.name == name for c in ordered):
            return
        if name in visiting:
            raise RuntimeError(f"migration components reference each other: {name}")
        if name not in found:
            raise RuntimeError(f"migration component {name!r} is not defined")
        visiting.add(name)
        for dep in found[name].after:
            visit(dep)
        visiting.discard(name)
        ordered.append(found[name])

    for name in sorted(found):
        visit(name)
    return tuple(ordered)


def component(name: str) -> Component:
    for c in components():
        if c.name == name:
            return c
    raise KeyError(name)


def _has_table(db: Database, name: str) -> bool:
    if db.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    else:
        sql = (
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema=current_schema() AND table_name=?"
        )
    return db.execute(sql, (name,)).fetchone() is not None


def applied_versions(db: Database) -> dict[str, set[int]]:
    """What the database has, per component ({} for an empty database)."""
    out: dict[str, set[int]] = {}
    if _has_table(db, "schema_migrations"):
        for row in db.execute("SELECT component, version FROM schema_migrations"):
            out.setdefault(row[0], set()).add(int(row[1]))
    elif _has_table(db, "migrations"):
        out["core"] = {int(r[0]) for r in db.execute("SELECT version FROM migrations")}
    return out


def schema_version(db: Database, name: str = "core") -> int:
    return max(applied_versions(db).get(name, set()), default=0)


def is_current(db: Database) -> bool:
    """Whether every known component is fully applied (the readiness check)."""
    have = applied_versions(db)
    return all(set(c.migrations) <= have.get(c.name, set()) for c in components())


def apply(db: Database) -> list[tuple[str, int]]:
    """Bring the schema up to date; returns what was applied."""
    done: list[tuple[str, int]] = []
    with db.tx(immediate=True):
        if db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK,))
        if not _has_table(db, "schema_migrations"):
            db.execute(
                "CREATE TABLE schema_migrations(component TEXT NOT NULL, "
                "version INTEGER NOT NULL, applied_at TEXT NOT NULL, "
                "PRIMARY KEY(component, version))"
            )
            if _has_table(db, "migrations"):
                db.execute(
                    "INSERT INTO schema_migrations(component, version, applied_at) "
                    "SELECT 'core', version, COALESCE(applied_at, ?) FROM migrations",
                    (now_iso(),),
                )
                db.execute("DROP TABLE migrations")
        have = applied_versions(db)
        known = {c.name: c for c in components()}
        for name, versions in have.items():
            comp = known.get(name)
            if comp is None or max(versions) > comp.version:
                raise StoreError(
                    f"資料庫 {db.location} 由較新版本的 zhiku 建立（{name} schema "
                    f"{max(versions)}），請升級 zhiku"
                )
        for comp in components():
            for version in sorted(set(comp.migrations) - have.get(comp.name, set())):
                for stmt in ddl(comp.migrations[version], db.dialect):
                    db.execute(stmt)
                db.execute(
                    "INSERT INTO schema_migrations(component, version, applied_at) "
                    "VALUES (?, ?, ?)",
                    (comp.name, version, now_iso()),
                )
                done.append((comp.name, version))
    return done
