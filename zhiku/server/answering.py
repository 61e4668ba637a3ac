"""Asking through the server: conversations, citation sources, records and audit.

Both the zhiku API and the OpenAI-compatible endpoint go through :func:`answer_events`,
which wraps :meth:`zhiku.engine.Zhiku.iter_answer` (so a model backend that streams
tokens streams through every endpoint unchanged) and, once the answer is complete,
links each citation to the stored passage it was taken from (the citation's own hit, by
chunk id), records the turn and writes the audit entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from zhiku.channels import webhooks
from zhiku.citations import sources_block, strip_sources
from zhiku.filters import Filter
from zhiku.models import Answer
from zhiku.server import audit, loop
from zhiku.server.access import hidden_turns, log_viewed
from zhiku.server.deps import Principal, ServerState
from zhiku.server.errors import ApiError
from zhiku.server.ids import new_token
from zhiku.storage.conversations import SqlConversations
from zhiku.storage.library import SqlLibrary
from zhiku.store import KnowledgeBase, Store, now_iso

log = logging.getLogger("zhiku.server.ask")

__all__ = ["answer_events", "sources_block", "strip_sources"]

HISTORY_TURNS = 10


@dataclass(slots=True)
class Conversation:
    id: str | None  # None: a new conversation is created when the answer is recorded
    history: list[dict[str, str]] = field(default_factory=list)


def open_conversation(
    store: Store, p: Principal, kb: KnowledgeBase, conversation_id: str | None
) -> Conversation:
    """The caller's conversation ``conversation_id`` in ``kb`` with its history.

    Only conversations in KBs the caller can read *now* exist for it: one in a KB whose
    grant was revoked is the same 404 as an unknown id, so that the answer reveals
    nothing about that KB (not even that it still exists). A conversation of another
    readable KB is a 409.
    """
    if conversation_id is None:
        return Conversation(None)
    conversations = SqlConversations(store.database)
    found = conversations.readable(conversation_id, p.user_id, p.kbs)
    if found is None:
        raise ApiError(404, "conversation_not_found")
    if found.kb_id != kb.id:
        raise ApiError(409, "conversation_kb_mismatch")
    turns = conversations.recent_turns(conversation_id, HISTORY_TURNS)
    history: list[dict[str, str]] = []
    hidden = hidden_turns(store, p, [t.stored for t in turns])
    for i, t in reversed(list(enumerate(turns))):
        if i in hidden:  # cites a document the caller may no longer see
            continue
        history.append({"role": "user", "content": t.question})
        history.append({"role": "assistant", "content": t.stored["answer"]["answer"]})
    return Conversation(conversation_id, history)


def resolve_sources(
    state: ServerState, store: Store, kb: KnowledgeBase, chunk_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """For each citation's chunk, the opaque ids of that passage and its document.

    ``chunk_ids`` are the citations' own hits (``Answer.citations[i].hit.chunk_id``), so
    a sentence found in several passages links to the one actually cited. A chunk that
    is not (or no longer: deleted meanwhile) in ``kb`` gets ``None`` ids.
    """
    found = SqlLibrary(store.database).cited_chunks(kb.id, chunk_ids) if chunk_ids else {}
    return [
        {
            "kb": kb.name,
            "passage_id": state.ids.encode("p", n) if n in found else None,
            "document_id": state.ids.encode("d", found[n]) if n in found else None,
        }
        for n in chunk_ids
    ]


def cited_documents(answer: dict[str, Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for c in answer.get("citations", []):
        seen.setdefault(c.get("path") or "", {"doc": c.get("doc"), "path": c.get("path")})
    return list(seen.values())


def _record(
    state: ServerState,
    p: Principal,
    kb: KnowledgeBase,
    question: str,
    answer: dict[str, Any],
    sources: list[dict[str, Any]],
    conversation: Conversation | None,
    action: str,
    mode: str | None = None,
    channel: str = "api",
    channel_ref: str | None = None,
    cites: Sequence[tuple[int, int]] = (),
    answer_ms: int | None = None,
    outcome: str | None = None,
) -> tuple[str | None, str | None]:
    """Store the turn (when ``conversation`` is given), the audit entry and the outbound
    webhook event, atomically. Turns of outside channels (``channel_ref`` set: LINE users,
    widget visitors) are stored with the question masked by the KB's policy."""
    answer_id = conv_id = None
    masked = audit.mask_question(question, kb)
    detail = {
        "question": masked,
        "refused": bool(answer.get("refused")),
        "cited": cited_documents(answer),
        "channel": channel,
    }
    if mode:
        detail["mode"] = mode
    if channel_ref is not None:
        question = masked
    with state.write() as store:
        if conversation is not None:
            conv_id = conversation.id
            ts = now_iso()
            conversations = SqlConversations(store.database)
            if conv_id is None:
                conv_id = new_token()
                conversations.create(
                    conv_id,
                    p.user_id,
                    kb.id,
                    question.strip().replace("\n", " ")[:80],
                    ts,
                    channel,
                    channel_ref,
                )
            answer_id = new_token()
            conversations.add_turn(
                conv_id,
                answer_id,
                question,
                {"answer": answer, "sources": sources},
                bool(answer.get("refused")),
                ts,
            )
            loop.record_turn(
                store,
                kb,
                answer_id,
                conv_id,
                question,
                answer,
                sources,
                cites,
                answer_ms,
                outcome,
                channel,
            )
            detail.update(answer_id=answer_id, conversation_id=conv_id)
        audit.record(store, p.actor, action, kb=kb.name, detail=detail)
        webhooks.emit_answer(store.database, kb.name, channel, masked, answer, answer_id, conv_id)
    return answer_id, conv_id


def answer_events(
    state: ServerState,
    p: Principal,
    kb: KnowledgeBase,
    question: str,
    *,
    k: int = 5,
    conversation: Conversation | None = None,
    history: Sequence[dict[str, str]] | None = None,
    action: str = "ask",
    where: Filter | None = None,
    channel: str = "api",
    channel_ref: str | None = None,
    also: Sequence[KnowledgeBase] = (),
) -> Iterator[dict[str, Any]]:
    """``delta`` events, then one ``done`` event with the answer, its ids and sources.
    ``also``: more KBs answered from together with ``kb`` (a widget's KBs); the turn is
    recorded in ``kb``.

    ``conversation`` records the turn (the zhiku API); ``None`` only audits (the
    OpenAI-compatible endpoint, whose clients keep their own history). ``channel`` is
    where the question came from (web, api, openai, line, widget), ``channel_ref`` the
    outside party a LINE or widget conversation belongs to.
    """
    final: Answer | None = None
    finished = False
    t0 = time.perf_counter()
    hist = list(history if history is not None else (conversation.history if conversation else []))
    try:
        with state.pool.engine() as zk:
            # iter_answer rather than ask_stream: the final Answer object still has each
            # citation's hit, hence the chunk it was taken from.
            # Always the caller's access scope (zhiku.access), inside every query.
            names = list(dict.fromkeys([kb.name, *(x.name for x in also)]))
            for item in zk.iter_answer(question, names, k=k, history=hist, where=p.where(where)):
                if isinstance(item, Answer):
                    final = item
                elif item:
                    yield {"type": "delta", "text": item}
        if final is None:  # pragma: no cover - the engine always ends with the Answer
            raise RuntimeError("the engine's answer stream ended without an answer")
        # The same fields as ask_stream's done event.
        answer = final.to_dict()
        extra: dict[str, Any] = {"mode": final.mode, "warnings": list(final.warnings)}
        store = state.store
        chunks = [c.hit.chunk_id for c in final.citations]
        sources = resolve_sources(state, store, kb, chunks)
        for other in also:  # a citation from another of the KBs answered from
            sources = [
                x if x["passage_id"] else y
                for x, y in zip(sources, resolve_sources(state, store, other, chunks), strict=True)
            ]
        answer_id, conv_id = _record(
            state,
            p,
            kb,
            question,
            answer,
            sources,
            conversation,
            action,
            final.mode,
            channel,
            channel_ref,
            cites=[(c.hit.doc_id, c.hit.chunk_id) for c in final.citations],
            answer_ms=int((time.perf_counter() - t0) * 1000),
        )
        log_viewed(state, p, [c.hit for c in final.citations], action)
        state.metrics.inc(
            "zhiku_answers_total",
            {"refused": str(bool(answer.get("refused"))).lower(), "via": action},
        )
        finished = True
        yield {
            "type": "done",
            "answer": answer,
            "answer_id": answer_id,
            "conversation_id": conv_id,
            "sources": sources,
            **extra,
        }
    finally:
        if not finished:  # client gone or an error: the question is still audited
            try:
                state.record(
                    p.actor,
                    action,
                    kb=kb.name,
                    detail={"question": audit.mask_question(question, kb), "aborted": True},
                )
            except Exception:  # noqa: BLE001 - never mask the original error
                log.exception("audit of an aborted answer failed")
