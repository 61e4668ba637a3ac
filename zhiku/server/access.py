"""Document access in the server: stored answers that cite what a caller may no longer
see, and the passage access log.

Searches, answers, passages, document lists and counts apply the caller's scope inside
their queries (``Principal.where``, :mod:`zhiku.access`). A conversation is stored, so a
turn whose sources include a document the caller may not see *now* (re-labelled since)
is withheld: its answer is replaced, and it is left out of the history a follow-up
question is rewritten with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zhiku.access import message
from zhiku.server.deps import Principal, ServerState
from zhiku.storage.access import AccessRepository
from zhiku.store import Store


def hidden_turns(store: Store, p: Principal, answers: Sequence[dict[str, Any]]) -> set[int]:
    """Indexes of the stored answers citing a document ``p`` may not see."""
    from zhiku.server.ids import IdCodec

    codec = IdCodec.for_store(store)
    cited: dict[int, set[int]] = {}
    for i, stored in enumerate(answers):
        for src in stored.get("sources") or ():
            token = src.get("document_id") if isinstance(src, dict) else None
            n = codec.decode("d", token) if isinstance(token, str) else None
            if n is not None:
                cited.setdefault(n, set()).add(i)
    if not cited:
        return set()
    hidden_docs = AccessRepository(store.database).hidden_documents(list(cited), p.where())
    return {i for d in hidden_docs for i in cited[d]}


def withheld_answer() -> dict[str, Any]:
    """What a withheld turn shows instead of its stored answer."""
    return {"answer": {"answer": message("access_withheld"), "citations": [],
                       "refused": True}, "sources": []}


def log_viewed(state: ServerState, p: Principal, hits: Sequence[Any], via: str) -> None:
    """Record which passages with personal data ``p`` was shown (masked values only)."""
    from zhiku.pii.subject import access_entries

    entries = access_entries(state.store.database, p.user, hits, via)
    if entries:
        with state.write() as store:
            AccessRepository(store.database).log_access(entries)
