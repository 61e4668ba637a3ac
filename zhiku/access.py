"""Document access labels and the caller's access scope.

A document's labels live in its ``meta`` (so they arrive with every way metadata
arrives: ``--meta`` at ingest, an upload's ``meta`` field, a source's settings, an
editor's PATCH) under two keys, normalised by :func:`zhiku.filters.normalize_meta`:

- ``access_groups`` — the groups/departments that may see it (a list; absent or empty:
  everyone who may read the knowledge base);
- ``access_level`` — its confidentiality as a rank on the scale, ``0`` 公開, ``1`` 內部,
  ``2`` 機密, ``3`` 密 by default (absent: 0). Another scale can be configured with
  ``ZHIKU_ACCESS_LEVELS`` (comma-separated names, lowest first).

A caller has groups and a clearance (a rank on the same scale): an :class:`AccessScope`.
:meth:`AccessScope.restrict` turns it into two conditions of a
:class:`~zhiku.filters.Filter` — ``access_group`` and ``access_level`` — and from there
it is applied where every filter is applied, *inside* the queries: the lexical index
excludes the chunks whose facet terms do not match (:func:`zhiku.lexical.filter_clauses`),
the vector search ranks only the chunk ids that one SQL query allows
(:meth:`zhiku.store.Store.filtered_chunk_ids`), and document lists, counts and
passages add the same SQL condition (:meth:`zhiku.filters.Filter.sql`). Nothing is
removed from a top-k after ranking, so a caller gets as many hits as asked from what
they may see, and the answer does not depend on what they may not see: a scoped lexical
search is scored with the statistics of the visible documents only (see
:mod:`zhiku.lexical`; docs/admins/access.md).

Re-labelling is a metadata change: the SQL side sees it at once, the lexical index at
its next sync (queued in ``index_log``; every search applies the queue); no re-embedding.

:func:`caller_groups` is the one place a user's groups come from: the one membership
table of :mod:`zhiku.storage.groups`, written by the administrators (``zhiku access user
--groups``, the admin API, the web admin page: source ``local``) and by LDAP / OpenID
Connect sign-in (replacing that provider's memberships at each sign-in).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zhiku.errors import ZhikuError
from zhiku.storage.access import AccessRepository
from zhiku.storage.db import Database
from zhiku.storage.groups import LOCAL, GroupRepository

if TYPE_CHECKING:  # zhiku.filters imports this module
    from zhiku.filters import Condition, Filter

DEFAULT_SCALE: tuple[str, ...] = ("公開", "內部", "機密", "密")
_LEVEL_ALIASES = {"public": 0, "internal": 1, "confidential": 2, "secret": 3, "一般": 0, "限閱": 1}
GROUPS_KEY = "access_groups"
LEVEL_KEY = "access_level"
# Condition keys of the scope (not accepted in a user's --where: the scope is imposed).
GROUP_COND = "access_group"
LEVEL_COND = "access_level"
# The group of a label that could not be read (fail closed: no user is in it).
UNREADABLE_GROUP = "!unreadable"
# Highest rank the lexical index excludes explicitly (a scale has at most this many).
MAX_LEVELS = 16


_MESSAGES = {
    "access_withheld": (
        "此回答引用的文件您已無權檢視，內容不予顯示。",
        "This answer cites a document you may no longer see; it is withheld.",
    ),
    "access_redacted": ("（無權限檢視的文件）", "(a document you may not see)"),
}


def message(key: str) -> str:
    """A user-facing message of this feature, zh-TW unless ``ZHIKU_LANG=en``."""
    from zhiku.config import lang

    zh, en = _MESSAGES[key]
    return en if lang() == "en" else zh


class AccessError(ZhikuError):
    """An access label, a level or a group that cannot be understood."""

    exit_code = 2


def scale() -> tuple[str, ...]:
    """The confidentiality scale, lowest first."""
    raw = os.environ.get("ZHIKU_ACCESS_LEVELS", "")
    names = tuple(n.strip() for n in re.split(r"[,，]", raw) if n.strip())
    return names[:MAX_LEVELS] if len(names) >= 2 else DEFAULT_SCALE


def _fold(value: str) -> str:
    from zhiku.filters import fold

    return fold(value)


def parse_level(value: Any) -> int:
    """A level name (公開, 內部, 機密, 密, or its English name), or its rank."""
    levels = scale()
    if isinstance(value, bool):
        raise AccessError(f"機密等級「{value}」無法辨識（可用：{'、'.join(levels)}）")
    if isinstance(value, int):
        n = value
    else:
        text = _fold(str(value))
        folded = [_fold(x) for x in levels]
        if text in folded:
            return folded.index(text)
        if text.isdigit():
            n = int(text)
        elif levels == DEFAULT_SCALE and text in _LEVEL_ALIASES:
            return _LEVEL_ALIASES[text]
        else:
            raise AccessError(f"機密等級「{value}」無法辨識（可用：{'、'.join(levels)}）")
    if not 0 <= n < len(levels):
        raise AccessError(
            f"機密等級「{value}」超出範圍（0–{len(levels) - 1}：{'、'.join(levels)}）"
        )
    return n


def level_name(rank: int) -> str:
    levels = scale()
    return levels[rank] if 0 <= rank < len(levels) else str(rank)


def parse_groups(value: Any) -> list[str]:
    """``"hr,finance"`` or ``["hr", "finance"]`` → folded, de-duplicated group names."""
    items = (
        value
        if isinstance(value, list | tuple | set | frozenset)
        else re.split(r"[,，;；|]", str(value))
    )
    out = []
    for item in items:
        g = _fold(str(item))
        if not g:
            continue
        if g == "*" or any(c in g for c in "=\n\t"):
            raise AccessError(f"群組名稱「{item}」不合法")
        out.append(g)
    return list(dict.fromkeys(out))


def doc_labels(meta: Mapping[str, Any]) -> tuple[list[str], int]:
    """(groups, level) of a document from its normalised meta."""
    groups = meta.get(GROUPS_KEY) or []
    if isinstance(groups, str):  # not normalised: still a restriction (as SQL reads it)
        groups = [groups]
    level = meta.get(LEVEL_KEY, 0)
    if not isinstance(level, int) or isinstance(level, bool):
        level = len(scale()) - 1  # unreadable: fail closed
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [], level


def label_terms(meta: Mapping[str, Any]) -> list[str]:
    """The lexical index's facet terms of a document's labels."""
    groups, level = doc_labels(meta)
    terms = [f"{GROUP_COND}={g}" for g in groups]
    if groups:
        terms.append(f"{GROUP_COND}:restricted")
    terms.append(f"{LEVEL_COND}={level}")
    return terms


def label_class(meta: Mapping[str, Any]) -> tuple[str, list[str], int]:
    """The access class of a document: (a short stable id, groups, level). Documents with
    the same labels share a class; the lexical index keeps each class's terms apart so a
    restricted search never reads the postings of a class it may not see."""
    groups, level = doc_labels(meta)
    names = sorted(set(groups))
    key = json.dumps([names, level], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:12], names, level


def guard_allows(guard: Filter, groups: Iterable[str], level: int) -> bool:
    """Whether documents labelled ``groups`` at ``level`` pass every access condition of
    ``guard`` (:func:`access_guard`): the same test as the index's exclusion clauses."""
    labels = set(groups)
    for c in guard.conditions:
        if c.key == GROUP_COND and labels and not labels & set(c.values):
            return False
        if c.key == LEVEL_COND and level > int(c.values[0]):
            return False
    return True


@dataclass(frozen=True, slots=True)
class AccessScope:
    """What one caller may see: documents open to everyone or to one of ``groups``, at
    a level no higher than ``clearance``."""

    user: str
    groups: frozenset[str]
    clearance: int

    def conditions(self) -> tuple[Condition, ...]:
        from zhiku.filters import Condition

        return (
            Condition(GROUP_COND, "=", tuple(sorted(self.groups))),
            Condition(LEVEL_COND, "<=", (str(self.clearance),)),
        )

    def restrict(self, where: Filter | None = None) -> Filter:
        """``where`` (a Filter or None) with this scope's conditions added."""
        from zhiku.filters import Filter

        base = where if where is not None else Filter()
        return Filter((*base.conditions, *self.conditions()))

    def allows(self, meta: Mapping[str, Any]) -> bool:
        groups, level = doc_labels(meta)
        return level <= self.clearance and (not groups or bool(self.groups & set(groups)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "groups": sorted(self.groups),
            "clearance": self.clearance,
            "clearance_name": level_name(self.clearance),
        }


def caller_groups(db: Database, user: str, groups: Iterable[str] | None = None) -> frozenset[str]:
    """The groups of ``user``, folded: read from the membership table, or ``groups`` when
    the caller already read them from it (sign-in's :func:`zhiku.server.signin.core.effective`)."""
    names = GroupRepository(db).names_of(user) if groups is None else groups
    return frozenset(_fold(g) for g in names)


def caller_scope(db: Database, user: str, groups: Iterable[str] | None = None) -> AccessScope:
    """The scope of ``user``: their groups and clearance (公開 when none was set)."""
    level = AccessRepository(db).clearance_of(user)
    return AccessScope(user, caller_groups(db, user, groups), 0 if level is None else level)


def set_local_groups(db: Database, user: str, groups: Iterable[str]) -> None:
    """Replace the memberships an administrator set for ``user`` (source ``local``) by
    ``groups`` (folded; a name that folds to an existing group's joins that group);
    memberships from LDAP / OpenID Connect stay."""
    from zhiku.storage.accounts import SqlAccounts

    found = SqlAccounts(db).user(user)
    if found is None:
        raise AccessError(f"使用者「{user}」不存在")
    repo = GroupRepository(db)
    names = repo.group_names()
    existing = {_fold(n): n for n in names}
    existing.update({n: n for n in names if _fold(n) == n})
    repo.sync(found.id, [existing.get(g, g) for g in parse_groups(list(groups))], LOCAL)


def set_user_access(
    db: Database, user: str, groups: Iterable[str] | None = None, clearance: Any = None
) -> AccessScope:
    """Set ``user``'s manual groups (see :func:`set_local_groups`) and/or clearance."""
    if groups is not None:
        set_local_groups(db, user, groups)
    if clearance is not None:
        AccessRepository(db).set_clearance(user, parse_level(clearance))
    return caller_scope(db, user)


def access_guard(where: Filter | None) -> Filter | None:
    """Only the access-scope conditions of a Filter (None when it has none)."""
    from zhiku.filters import Filter

    if where is None:
        return None
    conds = tuple(c for c in where.conditions if c.key in (GROUP_COND, LEVEL_COND))
    return Filter(conds) if conds else None
