"""Document access in the server: stored answers that cite what a caller may no longer
see, and the passage access log.

Searches, answers, passages, document lists and counts apply the caller's scope inside
their queries (``Principal.where``, :mod:`zhiku.access`). A conversation is stored, so a
turn whose sources include a document the caller may not see *now* (re-labelled since)
is withheld: its answer is replaced, and it is left out of the history a follow-up
question is rewritten with. Where stored turns are shown to someone else (an agent's
hand-off case, the admin feedback list) the same rule applies with *their* scope:
:func:`redact_turns` withholds the answer and replaces each citation of a document
they may not see with a redacted one (「（無權限檢視的文件）」: no title, path, section,
passage or id), keeping the citations they may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zhiku.access import message
from zhiku.server.deps import Principal, ServerState
from zhiku.storage.access import AccessRepository
from zhiku.store import Store


def _hidden_sources(
    store: Store, p: Principal, answers: Sequence[dict[str, Any]]
) -> dict[int, set[int]]:
    """For each stored answer citing a document ``p`` may not see: the positions of
    those citations among its ``sources``."""
    from zhiku.server.ids import IdCodec

    codec = IdCodec.for_store(store)
    cited: dict[int, set[tuple[int, int]]] = {}
    for i, stored in enumerate(answers):
        for j, src in enumerate(stored.get("sources") or ()):
            token = src.get("document_id") if isinstance(src, dict) else None
            n = codec.decode("d", token) if isinstance(token, str) else None
            if n is not None:
                cited.setdefault(n, set()).add((i, j))
    if not cited:
        return {}
    out: dict[int, set[int]] = {}
    for d in AccessRepository(store.database).hidden_documents(list(cited), p.where()):
        for i, j in cited[d]:
            out.setdefault(i, set()).add(j)
    return out


def hidden_turns(store: Store, p: Principal, answers: Sequence[dict[str, Any]]) -> set[int]:
    """Indexes of the stored answers citing a document ``p`` may not see."""
    return set(_hidden_sources(store, p, answers))


def redacted_citation() -> dict[str, Any]:
    """What stands in for a citation of a document the viewer may not see."""
    return {
        "doc": message("access_redacted"),
        "path": "",
        "section": None,
        "page": None,
        "text": "",
        "score": 0.0,
        "redacted": True,
    }


def redact_turns(
    store: Store, p: Principal, answers: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The stored answers (``{"answer": {...}, "sources": [...]}``) as ``p`` may see
    them: one citing a document ``p`` may not see has its answer text withheld and
    those citations (and their sources) redacted; the others are returned as stored."""
    hidden = _hidden_sources(store, p, answers)
    out: list[dict[str, Any]] = []
    for i, stored in enumerate(answers):
        if i not in hidden:
            out.append(stored)
            continue
        raw = stored.get("answer")
        answer: dict[str, Any] = raw if isinstance(raw, dict) else {}
        cites = list(answer.get("citations") or [])
        sources = list(stored.get("sources") or [])
        for j in hidden[i]:
            if j < len(cites):
                cites[j] = redacted_citation()
            if j < len(sources):
                sources[j] = {
                    "kb": sources[j].get("kb"),
                    "passage_id": None,
                    "document_id": None,
                    "redacted": True,
                }
        out.append(
            {
                **stored,
                "answer": {
                    **answer,
                    "answer": message("access_withheld"),
                    "citations": cites,
                    "refused": True,
                },
                "sources": sources,
            }
        )
    return out


def withheld_answer() -> dict[str, Any]:
    """What a withheld turn shows instead of its stored answer."""
    return {
        "answer": {"answer": message("access_withheld"), "citations": [], "refused": True},
        "sources": [],
    }


def log_viewed(state: ServerState, p: Principal, hits: Sequence[Any], via: str) -> None:
    """Record which passages with personal data ``p`` was shown (masked values only)."""
    from zhiku.pii.subject import access_entries

    entries = access_entries(state.store.database, p.user, hits, via)
    if entries:
        with state.write() as store:
            AccessRepository(store.database).log_access(entries)
