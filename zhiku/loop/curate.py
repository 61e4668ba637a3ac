"""Gaps into knowledge: curated FAQ entries, and the fine-tuning dataset.

A curated entry is a document of the KB like any other (kind ``faq``, path
``curated/<n>.faq``), with one Q/A passage per phrasing of the question, so the
extractive answerer finds it for each phrasing and cites it. Its provenance (who, when,
from which questions and answers) is in the document's meta and in the
``curated_entries`` row that the analytics use for the before/after refusal rate.

``zhiku export sft`` writes chat-format JSONL for fine-tuning a local model, from
curated entries and 👍-rated answers, with the cited passages as context in the system
message; every string passes the KB's output policy and the log mask.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.ingest import ingest_lock
from zhiku.lexical import IndexBusy
from zhiku.loaders._common import qa_text
from zhiku.loop.report import record_masked_question
from zhiku.models import Block, LoadedDocument
from zhiku.storage.db import now_iso
from zhiku.storage.loop import SqlLoopRepository

MAX_ANSWER_CHARS = 4000
MAX_QUESTIONS = 50

SYSTEM_PROMPT = (
    "你是知庫的客服助理。只根據下列資料以繁體中文回答，並註明出處；資料沒有的內容請說不知道。"
)


class CurationError(ZhikuError):
    exit_code = 2


def curate(
    zk: Zhiku,
    kb: str,
    question: str,
    answer: str,
    *,
    author: str,
    questions: Sequence[str] = (),
    source_messages: Sequence[str] = (),
) -> dict[str, Any]:
    """Store and index an editor's answer as a curated FAQ document of ``kb``."""
    question, answer = question.strip(), answer.strip()
    if not question or not answer:
        raise CurationError("精選問答需要問題與答案")
    if len(answer) > MAX_ANSWER_CHARS:
        raise CurationError(f"答案太長（上限 {MAX_ANSWER_CHARS} 字）")
    variants = list(dict.fromkeys(q.strip() for q in [question, *questions] if q.strip()))
    variants = variants[:MAX_QUESTIONS]
    kbo = zk.kb(kb)
    repo = SqlLoopRepository(zk.store.database)
    path = f"curated/{now_iso()[:10]}-{secrets.token_hex(4)}.faq"
    blocks = [Block(qa_text(q, answer), ("精選問答",), q, kind="qa") for q in variants]
    loaded = LoadedDocument(title=f"精選問答：{question[:60]}", kind="faq", blocks=blocks)
    meta = {
        "curated": {
            "author": author,
            "at": now_iso(),
            "questions": [record_masked_question(q, kbo) for q in variants],
            "messages": list(source_messages)[:MAX_QUESTIONS],
        }
    }
    with ingest_lock(zk.home):
        doc_id, chunks, _ = zk.add_loaded(kb, path, loaded, meta=meta)
        with zk.store.database.tx(immediate=True):
            entry = repo.add_curated(
                kbo.id, doc_id, path, question, answer, variants, source_messages, author
            )
        try:
            zk.sync_index(kb)
        except IndexBusy:  # the index work stays queued; the next search applies it
            pass
    return {
        "id": entry,
        "kb": kb,
        "path": path,
        "doc_id": doc_id,
        "chunks": chunks,
        "questions": variants,
        "author": author,
    }


def _context(kb: Any, citations: Sequence[dict[str, Any]]) -> str:
    lines = []
    for i, c in enumerate(citations, 1):
        where = f"《{c.get('doc') or ''}》" + (f" {c['section']}" if c.get("section") else "")
        lines.append(f"[{i}] {where}\n{c.get('text') or ''}")
    return Zhiku.redact_output(kb, "\n\n".join(lines))


def sft_records(zk: Zhiku, kb: str) -> Iterator[dict[str, Any]]:
    """Chat-format training records: curated entries, then 👍-rated answers."""
    kbo = zk.kb(kb)
    repo = SqlLoopRepository(zk.store.database)

    def record(question: str, answer: str, context: str, source: str) -> dict[str, Any]:
        system = SYSTEM_PROMPT + ("\n\n資料：\n" + context if context else "")
        return {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": record_masked_question(question, kbo)},
                {
                    "role": "assistant",
                    "content": record_masked_question(Zhiku.redact_output(kbo, answer), kbo),
                },
            ],
            "meta": {"kb": kb, "source": source},
        }

    for e in repo.list_curated([kbo.id]):
        ctx = _context(kbo, [{"doc": "精選問答", "text": qa_text(e["question"], e["answer"])}])
        for q in [e["question"], *[x for x in e["questions"] if x != e["question"]]]:
            yield record(q, e["answer"], ctx, f"curated:{e['id']}")
    for t in repo.approved_turns(kbo.id):
        ans = t["answer"].get("answer", {})
        cites = ans.get("citations") or []
        yield record(
            t["question"],
            ans.get("answer", ""),
            _context(kbo, cites),
            f"thumbs_up:{t['message_id']}",
        )


def write_sft(zk: Zhiku, kb: str, out: Any) -> int:
    n = 0
    for rec in sft_records(zk, kb):
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n += 1
    return n
