"""Document metadata for filters, and the filters ``search`` / ``ask`` accept.

A document's filterable metadata lives in its ``meta`` JSON under fixed keys:

- ``dept`` — the department that owns it (one value);
- ``tags`` — a list of tags;
- ``effective`` / ``amended`` — dates, ISO ``YYYY-MM-DD``;
- ``status`` — ``repealed`` for a law no longer in force (absent means current);
- ``source`` — the name of the server source that brought it in.

They come from the loader (Markdown front matter, the Taiwan law importer), from a
source's settings, or from the uploader (``--meta dept=hr``); :func:`normalize_meta`
folds aliases (``department``, ``tag``…) and values (NFKC, case-folded) so that a
filter matches however the value was typed.

A :class:`Filter` is applied *inside* the queries, never after retrieval: the lexical
index carries the same values as terms of a ``facet`` field and as integer date fields
(:mod:`zhiku.lexical`), the vector search gets the set of allowed chunk ids from one SQL
query (:meth:`Filter.sql`) before it ranks. A filter therefore never returns fewer hits
than asked because the best ones were filtered out.

Repealed law is excluded by default: unless a filter names ``status``, every search
carries ``status!=repealed`` (:meth:`Filter.effective`). ``status=repealed`` searches
only repealed law, ``status=any`` everything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from zhiku import access as zaccess
from zhiku.errors import ZhikuError

FACET_KEYS = ("dept", "tag", "kind", "status", "source")
DATE_KEYS = ("effective", "amended")
KEYS = FACET_KEYS + DATE_KEYS
# The metadata keys filters read (as stored in a document's meta).
FILTER_META = (
    "dept",
    "tags",
    "effective",
    "amended",
    "status",
    "source",
    "access_groups",
    "access_level",
)
STATUS_VALUES = ("current", "repealed", "any")
_ALIASES = {
    "department": "dept",
    "部門": "dept",
    "單位": "dept",
    "tags": "tag",
    "標籤": "tag",
    "keywords": "tag",
    "effective_date": "effective",
    "施行日期": "effective",
    "amended_date": "amended",
    "updated": "amended",
    "modified": "amended",
    "修正日期": "amended",
    "異動日期": "amended",
    # Access labels (zhiku.access): who may see a document, and how confidential it is.
    "access_groups": "access_groups",
    "access_group": "access_groups",
    "可閱群組": "access_groups",
    "access_level": "access_level",
    "confidentiality": "access_level",
    "機密等級": "access_level",
    "密等": "access_level",
}
_EXPR = re.compile(r"^\s*([^\s=!<>]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
_DATE = re.compile(r"^(\d{4})(?:[-/.]?(\d{1,2})(?:[-/.]?(\d{1,2}))?)?$")


class FilterError(ZhikuError):
    """A filter expression or a metadata value that cannot be understood."""

    exit_code = 2


def fold(value: str) -> str:
    """The form a facet value is stored and compared in."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip().casefold()


def parse_date(value: str) -> str | None:
    """``YYYY-MM-DD`` for ``2024-07-31``, ``20240731``, ``2024/7/31``, ``2024-07``
    (first day) or ``2024``; ``None`` when it is not a date."""
    m = _DATE.match(value.strip())
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return None


def date_int(iso: str) -> int:
    return int(iso.replace("-", ""))


def canonical_key(key: str) -> str:
    """``department`` → ``dept``, ``tags`` → ``tag``… (the filter's name of a key)."""
    k = fold(key)
    return _ALIASES.get(k, k)


def meta_key(key: str) -> str:
    """The key a filterable value is stored under in a document's meta."""
    k = canonical_key(key)
    return "tags" if k == "tag" else k


def normalize_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` with the filterable keys in their canonical form.

    Unknown keys are kept as they are; a filterable key whose value cannot be used
    (a date that is not one) is left out of the canonical keys but kept verbatim.
    """
    out: dict[str, Any] = {}
    tags: list[str] = []
    for raw_key, value in meta.items():
        key = canonical_key(str(raw_key))
        if key == "tag":
            items = value if isinstance(value, list | tuple) else re.split(r"[,，;；]", str(value))
            tags.extend(fold(str(t)) for t in items if str(t).strip())
        elif key == "access_groups":
            # A label that cannot be read fails closed: a group no one is in.
            try:
                out[key] = zaccess.parse_groups(value)
            except zaccess.AccessError:
                out[key] = [zaccess.UNREADABLE_GROUP]
        elif key == "access_level":
            try:  # fails closed too: the highest level of the scale
                out[key] = zaccess.parse_level(value)
            except zaccess.AccessError:
                out[key] = len(zaccess.scale()) - 1
        elif key in ("dept", "source") and isinstance(value, str) and value.strip():
            out[key] = fold(value)
        elif key == "status" and isinstance(value, str):
            out[key] = "repealed" if fold(value) in ("repealed", "廢", "廢止") else "current"
        elif key in DATE_KEYS and isinstance(value, str | int):
            iso = parse_date(str(value))
            if iso is not None:
                out[key] = iso
            else:
                out.setdefault(str(raw_key), value)
        else:
            out.setdefault(str(raw_key), value)
    if tags:
        out["tags"] = list(dict.fromkeys(tags))
    if out.get("status") == "current":
        del out["status"]
    if out.get("access_groups") == []:
        del out["access_groups"]
    return out


def parse_meta_args(items: Sequence[str]) -> dict[str, Any]:
    """``["dept=hr", "tag=a,b", "amended=2024-07-31"]`` → normalised metadata."""
    raw: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FilterError(f"中繼資料「{item}」格式應為 鍵=值（如 dept=hr、tag=規章）")
        k = canonical_key(key)
        if k == "access_groups":
            raw.setdefault("access_groups", []).extend(zaccess.parse_groups(value))
            continue
        if k == "access_level":
            zaccess.parse_level(value)  # a clear error for the uploader, not a silent 密
        if k in DATE_KEYS and parse_date(value) is None:
            raise FilterError(f"中繼資料「{item}」的日期無法辨識（請用 YYYY-MM-DD）")
        if k == "tag":
            raw.setdefault("tags", []).extend(v for v in re.split(r"[,，]", value) if v.strip())
        else:
            raw[key.strip()] = value
    return normalize_meta(raw)


def facet_terms(meta: Mapping[str, Any], kind: str | None = None) -> list[str]:
    """The ``key=value`` terms the lexical index stores for a document."""
    terms = [f"tag={t}" for t in meta.get("tags") or () if isinstance(t, str)]
    for key in ("dept", "source", "status"):
        v = meta.get(key)
        if isinstance(v, str) and v:
            terms.append(f"{key}={v}")
    if kind:
        terms.append(f"kind={fold(kind)}")
    return terms + zaccess.label_terms(meta)


def date_values(meta: Mapping[str, Any]) -> dict[str, int]:
    """``{"effective": 20240731, …}`` for the date fields of the lexical index."""
    out = {}
    for key in DATE_KEYS:
        v = meta.get(key)
        if isinstance(v, str) and (iso := parse_date(v)) is not None:
            out[key] = date_int(iso)
    return out


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``key op values`` test; several values of ``=`` are alternatives."""

    key: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    """Conditions that must all hold (AND); ``dept=hr,legal`` is an OR within a key."""

    conditions: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, exprs: Iterable[str] | None) -> Filter:
        """From CLI / API expressions: ``dept=hr``, ``tag=a,b``, ``amended>=2020-01-01``,
        ``dept!=sales``, ``status=repealed``."""
        conds = []
        for expr in exprs or ():
            m = _EXPR.match(expr)
            if not m or not m.group(3):
                raise FilterError(
                    f"篩選條件「{expr}」無法辨識（例：dept=hr、tag=規章、amended>=2020-01-01）"
                )
            conds.append(_condition(canonical_key(m.group(1)), m.group(2), m.group(3), expr))
        return cls(tuple(conds))

    @classmethod
    def from_api(cls, where: Sequence[str] | Mapping[str, Any] | None) -> Filter:
        """The API's ``where``: a list of expressions, or ``{"dept": "hr", "tag": ["a"],
        "amended": ">=2020-01-01"}`` (a value may start with an operator)."""
        if where is None:
            return cls()
        if isinstance(where, Mapping):
            exprs = []
            for key, value in where.items():
                values = value if isinstance(value, list | tuple) else [value]
                for v in values:
                    sv = str(v).strip()
                    exprs.append(f"{key}{sv}" if sv[:1] in "<>!=" else f"{key}={sv}")
            return cls.parse(exprs)
        return cls.parse(where)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def mentions(self, key: str) -> bool:
        return any(c.key == key for c in self.conditions)

    def effective(self) -> Filter:
        """This filter with the default ``status!=repealed`` when it says nothing of
        status; ``status=current`` / ``status=any`` become their plain conditions."""
        out = []
        for c in self.conditions:
            vals = set(c.values)
            if c.key != "status" or c.op == "!=":
                out.append(c)
            elif "any" in vals or {"current", "repealed"} <= vals:
                continue
            elif vals == {"current"}:
                out.append(Condition("status", "!=", ("repealed",)))
            else:
                out.append(c)
        if not self.mentions("status"):
            out.append(Condition("status", "!=", ("repealed",)))
        return Filter(tuple(out))

    def describe(self) -> list[str]:
        return [f"{c.key}{c.op}{','.join(c.values)}" for c in self.conditions]

    def sql(self, alias: str = "d", dialect: str = "sqlite") -> tuple[str, list[Any]]:
        """A ``WHERE`` fragment over ``documents`` (as ``alias``) and its arguments, for
        ``dialect`` (:func:`zhiku.storage.filtersql.where_sql`: SQL lives in storage)."""
        from zhiku.storage.filtersql import where_sql

        return where_sql(self, alias, dialect)


def _condition(key: str, op: str, value: str, expr: str) -> Condition:
    if key not in KEYS:
        raise FilterError(f"篩選條件「{expr}」的欄位「{key}」不支援（可用：{', '.join(KEYS)}）")
    if key in DATE_KEYS:
        iso = parse_date(value)
        if iso is None:
            raise FilterError(f"篩選條件「{expr}」的日期無法辨識（請用 YYYY-MM-DD）")
        if op == "!=":
            raise FilterError(f"篩選條件「{expr}」：日期欄位請用 =、>、>=、<、<=")
        return Condition(key, op, (iso,))
    if op not in ("=", "!="):
        raise FilterError(f"篩選條件「{expr}」：欄位「{key}」只能用 = 或 !=")
    values = tuple(dict.fromkeys(fold(v) for v in re.split(r"[,，|]", value) if v.strip()))
    if key == "status":
        bad = [v for v in values if v not in STATUS_VALUES]
        if bad:
            raise FilterError(f"篩選條件「{expr}」：status 只能是 current、repealed 或 any")
        if op == "!=" and "repealed" not in values:
            raise FilterError(f"篩選條件「{expr}」：請用 status=repealed、current 或 any")
    return Condition(key, op, values)
