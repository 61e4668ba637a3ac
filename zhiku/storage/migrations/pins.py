"""Component ``pins``: passages an editor pinned for a question (issue 12, "an editor
can also pin a better passage for a question").

A pin belongs to a KB and names one passage (``chunk_id``, with its document); it holds
the question it was made for and the exact-match keys (:func:`zhiku.loop.gaps.question_key`)
of every question it answers, so a later ask with one of those keys (or a near-identical
one) cites the passage first. Provenance: who pinned it, when, and from which recorded
answer (a 👎 or a gap cluster's example). A pin ends with its passage: re-ingesting the
document replaces its passages and the pin cascades away with the old one.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE pinned_passages(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
        doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        question TEXT NOT NULL,
        qkeys TEXT NOT NULL DEFAULT '[]',
        source_messages TEXT NOT NULL DEFAULT '[]',
        author TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX pinned_passages_kb ON pinned_passages(kb_id, id);
    CREATE INDEX pinned_passages_chunk ON pinned_passages(chunk_id);
    """,
}
