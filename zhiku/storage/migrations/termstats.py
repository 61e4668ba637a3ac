"""Component ``termstats``: the BM25 statistics of a KB whose index lives outside the
database (Milvus, :mod:`zhiku.index.milvus`), kept here by the index sync so a query
reads document frequencies with one indexed lookup instead of counting in the index.

``term_df`` holds how many chunks of a KB contain each token, per *label scope*: the
access labels the chunks' documents carry (:func:`zhiku.storage.termstats.scope_key`;
one scope for a KB without labels). A caller's statistics are the sums over the scopes
their access lets through, so a restricted caller is scored over the visible chunks
only. ``term_scopes`` holds each scope's chunk count and total token length (REAL: a
sum that may pass 2**31 on PostgreSQL's 4-byte INTEGER). ``term_stats_state`` records
the generation of a KB's statistics, which the index records beside its own sync state:
when the two disagree (a crash between the index write and this one) the statistics are
rebuilt from the chunks.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE term_df(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        token TEXT NOT NULL,
        scope TEXT NOT NULL,
        df INTEGER NOT NULL,
        PRIMARY KEY (kb_id, token, scope)
    ) WITHOUT ROWID;
    CREATE TABLE term_scopes(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        docs INTEGER NOT NULL,
        total_len REAL NOT NULL,
        PRIMARY KEY (kb_id, scope)
    );
    CREATE TABLE term_stats_state(
        kb_id INTEGER PRIMARY KEY REFERENCES kbs(id) ON DELETE CASCADE,
        generation TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
}
