"""Server glue of the service loop: each recorded turn's analytics row, and the
hand-off turn that opens a case instead of answering from the KB.

Called inside the write transaction that stores the turn (:func:`zhiku.server.
answering._record`), so a turn and its analytics row are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from zhiku.loop import handoff
from zhiku.loop.gaps import question_key
from zhiku.loop.report import local_day_hour, record_masked_question
from zhiku.server.deps import Principal, ServerState
from zhiku.storage.loop import Citation, SqlLoopRepository
from zhiku.store import KnowledgeBase, Store

HANDOFF_TEXT = {
    "zh": "已為您轉接真人客服，請稍候；客服人員的回覆會顯示在這段對話中。",
    "en": "You are being handed over to a person; their reply will appear in this conversation.",
}


def repo(store: Store) -> SqlLoopRepository:
    return SqlLoopRepository(store.database)


def record_turn(
    store: Store,
    kb: KnowledgeBase,
    answer_id: str,
    conv_id: str,
    question: str,
    answer: dict[str, Any],
    sources: Sequence[dict[str, Any]],
    cites: Sequence[tuple[int, int]],
    answer_ms: int | None,
    outcome: str | None = None,
    channel: str = "web",
) -> None:
    """The analytics row of a stored turn, with the passages it cited."""
    masked = record_masked_question(question, kb)
    now = datetime.now(UTC)
    day, hour = local_day_hour(now)
    citations = [
        Citation(doc_id if (i < len(sources) and sources[i].get("document_id")) else None, chunk_id)
        for i, (doc_id, chunk_id) in enumerate(cites)
    ]
    outcome = outcome or ("refused" if answer.get("refused") else "answered")
    repo(store).record_answer(
        answer_id,
        conv_id,
        kb.id,
        channel,
        outcome,
        masked,
        question_key(masked),
        answer_ms,
        day,
        hour,
        citations,
        created_at=now.isoformat(timespec="microseconds"),
    )


def open_case(
    state: ServerState,
    p: Principal,
    kb: KnowledgeBase,
    conv_id: str,
    reason: str,
    question: str,
    department: int | None = None,
    channel: str = "web",
) -> dict[str, Any]:
    """Open (or find) the conversation's case; tell the hooks when it is new."""
    if department is None:
        name = kb.settings.get("handoff_department")
        department = repo(state.store).department_id(name) if isinstance(name, str) else None
    with state.write() as store:
        case_id, created = repo(store).open_case(
            conv_id, kb.id, department, reason, record_masked_question(question, kb), channel
        )
    case = repo(state.store).get_case(case_id)
    assert case is not None
    if created:
        state.record(
            p.actor,
            "handoff.request",
            kb=kb.name,
            target=str(case_id),
            detail={"reason": reason, "conversation_id": conv_id},
        )
        handoff.emit(
            "handoff.requested",
            {
                "case_id": case_id,
                "kb": kb.name,
                "conversation_id": conv_id,
                "reason": reason,
                "department": case["department"],
            },
        )
    return case


def handoff_events(
    state: ServerState,
    p: Principal,
    kb: KnowledgeBase,
    question: str,
    conversation: Any,
    lang: str = "zh",
    channel: str = "api",
    channel_ref: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The turn of a question that asks for a person: no KB answer, a case instead.
    The same event shape as :func:`zhiku.server.answering.answer_events`."""
    from zhiku.server.answering import _record

    answer = {
        "answer": HANDOFF_TEXT.get(lang, HANDOFF_TEXT["zh"]),
        "refused": False,
        "citations": [],
    }
    answer_id, conv_id = _record(
        state,
        p,
        kb,
        question,
        answer,
        [],
        conversation,
        "ask",
        "handoff",
        channel,
        channel_ref,
        outcome="handoff",
        answer_ms=0,
    )
    assert conv_id is not None
    case = open_case(state, p, kb, conv_id, "asked", question, channel=channel)
    yield {
        "type": "done",
        "answer": answer,
        "answer_id": answer_id,
        "conversation_id": conv_id,
        "sources": [],
        "mode": "handoff",
        "warnings": [],
        "handoff": {"case_id": case["id"], "status": case["status"]},
    }
