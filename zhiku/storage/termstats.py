"""BM25 term statistics of a KB kept in the database (component ``termstats``, see
:mod:`zhiku.storage.migrations.termstats`): the repository behind the Milvus index's
document frequencies (:mod:`zhiku.index.milvus`).

The index sync hands over *differences*: for each (label scope, token) how many chunks
were added (positive) or removed (negative), and for each scope the change of its chunk
count and total token length. They are added in one transaction, rows that reach zero
are removed, and the KB's *generation* (an opaque string the index also records) is set
when the sync that wrote them is complete. Reads sum over the scopes asked for (all of
them for an unrestricted caller).

*Facet counts* share the table: how many chunks carry each filter term (``key=value``,
:func:`zhiku.filters.facet_terms`) are rows whose token is :func:`facet_token` of the
term (a prefix no text token has), added and read like any token, so the index can
drop an exclusion no visible chunk matches (``status!=repealed`` in a KB without
repealed law) without asking the index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from zhiku.storage.db import Database, now_iso

#: (chunk count, total token length) of one label scope.
ScopeTotals = tuple[int, float]
#: (scope, token) → chunks added (negative: removed).
DfDelta = Mapping[tuple[str, str], int]
#: scope → (chunks, total length) added.
ScopeDelta = Mapping[str, ScopeTotals]

_PART = 500  # placeholders per IN (...) list

#: What a facet term's row in ``term_df`` starts with (a control character: no token of
#: :func:`zhiku.text.tokenize` has one).
FACET_PREFIX = "\x1f"


def facet_token(term: str) -> str:
    """The ``term_df`` token that counts the chunks carrying facet ``term``."""
    return FACET_PREFIX + term


@runtime_checkable
class TermStatsRepository(Protocol):
    """What an index kept outside the database needs to score BM25 from the database."""

    def apply(
        self, kb_id: int, df_delta: DfDelta, scope_delta: ScopeDelta, generation: str | None = None
    ) -> None:
        """Add ``df_delta`` ((scope, token) → chunks added, negative when removed) and
        ``scope_delta`` (scope → (chunks, length) added), in one transaction (joining
        the caller's); with ``generation``, record it as the KB's current one."""
        ...

    def doc_freqs(
        self, kb_id: int, tokens: Iterable[str], scopes: Collection[str] | None = None
    ) -> dict[str, int]:
        """Chunks containing each token (0 when none), summed over ``scopes`` (every
        scope when None)."""
        ...

    def scopes(self, kb_id: int) -> dict[str, ScopeTotals]:
        """Every label scope of the KB with its (chunk count, total length)."""
        ...

    def generation(self, kb_id: int) -> str | None:
        """The generation recorded by the last complete sync (None: none, or cleared)."""
        ...

    def clear(self, kb_id: int) -> None:
        """Forget the KB's statistics and generation (before a rebuild)."""
        ...


class SqlTermStats:
    """:class:`TermStatsRepository` on a :class:`~zhiku.storage.db.Database` (SQLite or
    PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def apply(
        self, kb_id: int, df_delta: DfDelta, scope_delta: ScopeDelta, generation: str | None = None
    ) -> None:
        df_rows = [(kb_id, t, s, d) for (s, t), d in df_delta.items() if d]
        gone = [(kb_id, t, s) for (s, t), d in df_delta.items() if d < 0]
        sc_rows = [(kb_id, s, n, float(ln)) for s, (n, ln) in scope_delta.items() if n or ln]
        with self.db.tx(immediate=True):
            if df_rows:
                self.db.executemany(
                    "INSERT INTO term_df(kb_id, token, scope, df) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(kb_id, token, scope) DO UPDATE SET df=term_df.df+excluded.df",
                    df_rows,
                )
            if gone:
                self.db.executemany(
                    "DELETE FROM term_df WHERE kb_id=? AND token=? AND scope=? AND df<=0", gone
                )
            if sc_rows:
                self.db.executemany(
                    "INSERT INTO term_scopes(kb_id, scope, docs, total_len) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(kb_id, scope) DO UPDATE SET docs=term_scopes.docs+excluded.docs, "
                    "total_len=term_scopes.total_len+excluded.total_len",
                    sc_rows,
                )
                self.db.execute("DELETE FROM term_scopes WHERE kb_id=? AND docs<=0", (kb_id,))
            if generation is not None:
                self.db.execute(
                    "INSERT INTO term_stats_state(kb_id, generation, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(kb_id) DO UPDATE SET generation=excluded.generation, "
                    "updated_at=excluded.updated_at",
                    (kb_id, generation, now_iso()),
                )

    def doc_freqs(
        self, kb_id: int, tokens: Iterable[str], scopes: Collection[str] | None = None
    ) -> dict[str, int]:
        wanted = list(dict.fromkeys(tokens))
        out = dict.fromkeys(wanted, 0)
        if scopes is not None and not scopes:
            return out
        scope_list: Sequence[str] = sorted(scopes) if scopes is not None else ()
        smarks = ",".join("?" * len(scope_list))
        scope_sql = f" AND scope IN ({smarks})" if scopes is not None else ""
        for i in range(0, len(wanted), _PART):
            part = wanted[i : i + _PART]
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                f"SELECT token, SUM(df) FROM term_df WHERE kb_id=? AND token IN ({marks})"
                f"{scope_sql} GROUP BY token",
                [kb_id, *part, *scope_list],
            ):
                out[str(r[0])] = int(r[1] or 0)
        return out

    def scopes(self, kb_id: int) -> dict[str, ScopeTotals]:
        return {
            str(r[0]): (int(r[1]), float(r[2]))
            for r in self.db.execute(
                "SELECT scope, docs, total_len FROM term_scopes WHERE kb_id=? ORDER BY scope",
                (kb_id,),
            )
        }

    def generation(self, kb_id: int) -> str | None:
        row = self.db.execute(
            "SELECT generation FROM term_stats_state WHERE kb_id=?", (kb_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def clear(self, kb_id: int) -> None:
        with self.db.tx(immediate=True):
            for table in ("term_df", "term_scopes", "term_stats_state"):
                self.db.execute(f"DELETE FROM {table} WHERE kb_id=?", (kb_id,))
