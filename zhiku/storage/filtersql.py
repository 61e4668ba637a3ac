"""The metadata and access filters of :mod:`zhiku.filters` as SQL over ``documents``,
for SQLite (JSON1 functions) and PostgreSQL (jsonb operators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhiku import access as zaccess

if TYPE_CHECKING:
    from zhiku.filters import Filter


def where_sql(flt: Filter, alias: str = "d", dialect: str = "sqlite") -> tuple[str, list[Any]]:
    """A ``WHERE`` fragment over ``documents`` (as ``alias``) and its arguments."""
    from zhiku.filters import DATE_KEYS

    parts: list[str] = []
    args: list[Any] = []
    pg = dialect == "postgresql"
    for c in flt.conditions:
        marks = ",".join("?" * len(c.values))
        if c.key == zaccess.GROUP_COND:  # a caller's scope: open, or one of its groups
            if pg:  # a label that is not a list counts as one group (fails closed)
                g = f"(({alias}.meta)::jsonb -> 'access_groups')"
                each = (
                    "SELECT 1 FROM jsonb_array_elements_text(CASE WHEN "
                    f"{g} IS NULL OR {g} = 'null'::jsonb THEN '[]'::jsonb "
                    f"WHEN jsonb_typeof({g}) = 'array' THEN {g} "
                    f"ELSE jsonb_build_array({g}) END) AS t(value)"
                )
            else:
                each = f"SELECT 1 FROM json_each({alias}.meta, '$.access_groups')"
            expr = f"NOT EXISTS ({each})"
            if c.values:
                expr = f"({expr} OR EXISTS ({each} WHERE value IN ({marks})))"
                args.extend(c.values)
            parts.append(expr)
            continue
        if c.key == zaccess.LEVEL_COND:  # a caller's clearance
            if pg:  # a level that is not a number is above every clearance
                lv = f"(({alias}.meta)::jsonb -> 'access_level')"
                parts.append(
                    f"(CASE WHEN {lv} IS NULL OR {lv} = 'null'::jsonb THEN 0 "
                    f"WHEN jsonb_typeof({lv}) = 'number' THEN ({lv})::text::numeric "
                    "ELSE 1e9 END) <= ?"
                )
            else:
                parts.append(f"COALESCE(json_extract({alias}.meta, '$.access_level'), 0) <= ?")
            args.append(int(c.values[0]))
            continue
        field = (
            f"(({alias}.meta)::jsonb ->> '{c.key}')"
            if pg
            else f"json_extract({alias}.meta, '$.{c.key}')"
        )
        if c.key == "tag":
            each = (
                f"jsonb_array_elements_text(CASE WHEN jsonb_typeof(({alias}.meta)::jsonb"
                f" -> 'tags') = 'array' THEN ({alias}.meta)::jsonb -> 'tags' "
                "ELSE '[]'::jsonb END) AS t(value)"
                if pg
                else f"json_each({alias}.meta, '$.tags')"
            )
            expr = f"EXISTS (SELECT 1 FROM {each} WHERE value IN ({marks}))"
        elif c.key == "kind":
            expr = f"lower({alias}.kind) IN ({marks})"
        elif c.key in DATE_KEYS:
            parts.append(f"({field} IS NOT NULL AND {field} {c.op} ?)")
            args.append(c.values[0])
            continue
        else:
            expr = f"COALESCE({field}, '') IN ({marks})"
        parts.append(f"NOT {expr}" if c.op == "!=" else expr)
        args.extend(c.values)
    return (" AND ".join(parts) or "1=1"), args
