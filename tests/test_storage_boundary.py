"""SQL lives in zhiku/storage/ only.

A module outside it may not hold an SQL statement (a string literal starting with
SELECT, INSERT INTO, UPDATE, DELETE FROM, CREATE, ALTER, DROP or PRAGMA, f-strings
included) nor call ``.execute``/``.executemany``/``.executescript``. Tests and bench are
not part of the package and are not checked.

``NOT_YET_MOVED`` is a ratchet, not an exception (empty now: every statement has moved):
modules whose statements have not been moved into repositories yet, with their counts.
A count may only go down (lower it when you move statements; remove the file at 0); a
new file, or a file with more than its count, fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "zhiku"
SQL = re.compile(r"\s*(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE|ALTER|DROP|PRAGMA)\s")
CALLS = {"execute", "executemany", "executescript"}

NOT_YET_MOVED: dict[str, int] = {}


def sql_sites(source: str) -> list[int]:
    """Line numbers of SQL statements and execute calls in a module's source."""

    def is_sql(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and SQL.match(node.value) is not None
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CALLS
        )

    return [n.lineno for n in ast.walk(ast.parse(source)) if is_sql(n)]  # type: ignore[attr-defined]


def test_the_detector_finds_statements_and_calls() -> None:
    src = '''
def f(db, ids):
    """Delete the stale rows (a docstring, not SQL)."""
    db.execute(f"SELECT id FROM t WHERE id IN ({ids})")
    q = "INSERT INTO t(a) VALUES (?)"
    return "Update later", q
'''
    assert sorted(sql_sites(src)) == [4, 4, 5]


def test_no_sql_outside_the_storage_package() -> None:
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("storage/"):
            continue
        sites = sql_sites(path.read_text("utf-8"))
        if sites:
            found[rel] = sites
    over = {f: lines for f, lines in found.items() if len(lines) > NOT_YET_MOVED.get(f, 0)}
    assert not over, "SQL outside zhiku/storage/ (move it into a repository there): " + "; ".join(
        f"{f} lines {sorted(set(v))}" for f, v in over.items()
    )
