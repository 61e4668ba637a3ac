"""Small SQL helpers shared by the server's modules (no imports of other server modules,
so that any of them can use these without an import cycle)."""

from __future__ import annotations

from collections.abc import Sequence


def placeholders(values: Sequence[object]) -> str:
    """The ``?,?,?`` of an SQL ``IN (…)`` list with one mark per value; ``NULL`` when
    there are none, so ``x IN (NULL)`` matches nothing (no grants: no rows)."""
    return ",".join("?" * len(values)) or "NULL"
