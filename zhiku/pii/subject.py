"""個資法 data-subject rights: find, export and erase one person's data everywhere
zhiku keeps it, and the requests with their §13 deadlines.

A subject is named by a national ID, a resident certificate (ARC), a phone number, an
e-mail address or a name. Matching uses detection's own folding and validators
(:func:`zhiku.pii.detect.detect`, :func:`zhiku.pii.mask.canonical`): ``Ａ１２３…`` in
full-width, ``0912-345-678`` and ``+886 912 345 678`` are the same person. Where a
knowledge base stored the value as a pseudonym (``〔身分證字號#3fa9c1d2〕``), the
pseudonym is recomputed with that KB's key and found too. Values masked irreversibly
at ingest (``A1******89``) cannot be attributed to anyone and are not reported.

Places searched: passages (chunks), document titles and metadata, conversation
titles, questions and stored answers (every channel's: web, API, LINE, widget),
feedback comments, hand-off cases (the question a case was opened with, its notes,
agent replies and events), the service report's copy of each question, curated FAQ
entries, queued webhook payloads, audit entries, and the uploads kept for re-ingest
(of the documents found).

Erasure replaces every occurrence with the type's tag (``〔身分證字號〕``, irreversible),
queues the documents for re-indexing, drops the kept uploads of the documents found
(the original file still holds the data), and writes an erasure record with counts
only. §13: a request to see or copy one's data is answered within 15 days, one to
correct, stop or delete within 30 (each extendable once, by as much, with notice).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from zhiku.pii.fold import fold_width
from zhiku.pii.mask import canonical, mask_value, pseudonym, tag
from zhiku.pii.policy import PiiError
from zhiku.pii.validators import arc_valid, tw_id_valid
from zhiku.storage.access import AccessRepository, SubjectData
from zhiku.storage.db import Database

KINDS: dict[str, tuple[str, ...]] = {
    "id": ("tw_id",),
    "arc": ("arc",),
    "phone": ("mobile", "landline"),
    "email": ("email",),
    "name": ("name",),
}
REQUEST_KINDS = {"access": 15, "copy": 15, "correct": 30, "stop": 30, "erase": 30}
_SEPS = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> Subject:
        """A subject, validated like detection validates (check digits, shapes)."""
        k = kind.strip().lower()
        if k not in KINDS:
            raise PiiError(f"個資主體種類「{kind}」不支援（可用：{', '.join(KINDS)}）")
        v = unicodedata.normalize("NFKC", fold_width(value)).strip()
        ok = {
            "id": lambda: tw_id_valid(_SEPS.sub("", v).upper()),
            "arc": lambda: arc_valid(_SEPS.sub("", v).upper()),
            "phone": lambda: 9 <= len(canonical(v, "mobile").split("#")[0]) <= 10,
            "email": lambda: re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v) is not None,
            "name": lambda: 2 <= len(v) <= 30,
        }[k]()
        if not ok:
            raise PiiError(f"「{mask_value(v, KINDS[k][0])}」不是有效的{_KIND_NAMES[k]}")
        return cls(k, v)

    @property
    def types(self) -> tuple[str, ...]:
        return KINDS[self.kind]

    @property
    def masked(self) -> str:
        """How requests and logs name the subject: masked, never the value."""
        return f"{self.kind}:{mask_value(self.value, self.types[0])}"

    def _canon(self) -> str:
        return canonical(self.value, self.types[0])

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, type) of every occurrence of the subject's value in ``text``."""
        if not text:
            return []
        folded = fold_width(text)
        canon = self._canon()
        if self.kind in ("id", "arc"):
            hit = canon in _SEPS.sub("", folded).upper()
        elif self.kind == "phone":
            hit = re.sub(r"\D", "", canon.split("#")[0])[-8:] in re.sub(r"\D", "", folded)
        elif self.kind == "email":
            hit = canon in folded.lower()
        else:
            hit = canon in folded
        if not hit:
            return []
        from zhiku.pii.detect import detect

        out = [
            (f.start, f.end, f.type)
            for f in detect(text, types=self.types, min_confidence=0)
            if canonical(f.value, f.type) == canonical(self.value, f.type)
        ]
        if self.kind == "name":  # a name without the context detection needs is still it
            covered = {(s, e) for s, e, _ in out}
            out += [
                (m.start(), m.end(), "name")
                for m in re.finditer(re.escape(canon), folded)
                if (m.start(), m.end()) not in covered
            ]
        return sorted(out)

    def pseudonyms(self, secret: bytes) -> list[tuple[str, str]]:
        """(token, type) of the subject's pseudonyms under a KB's key, in both languages."""
        return [
            (pseudonym(self.value, t, secret, lang=lang), t)
            for t in self.types
            for lang in ("zh-TW", "en")
        ]


_KIND_NAMES = {
    "id": "身分證字號",
    "arc": "居留證號",
    "phone": "電話號碼",
    "email": "電子郵件",
    "name": "姓名",
}


@dataclass(slots=True)
class Place:
    """One place the subject's data is: a row of a table, and how it was found."""

    where: str  # chunk, document, conversation, message, feedback, audit, upload
    id: str
    kb: str | None
    how: set[str] = field(default_factory=set)  # value, pseudonym
    count: int = 0
    text: str = ""  # the stored text (for export); never printed by find

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "where": self.where,
            "id": self.id,
            "kb": self.kb,
            "how": sorted(self.how),
            "occurrences": self.count,
        }
        if with_text:
            out["text"] = self.text
        return out


def _occurrences(
    subject: Subject, text: str, tokens: Sequence[tuple[str, str]]
) -> tuple[list[tuple[int, int, str]], set[str]]:
    spans = subject.spans(text)
    how = {"value"} if spans else set()
    for token, typ in tokens:
        for m in re.finditer(re.escape(token), text):
            spans.append((m.start(), m.end(), typ))
            how.add("pseudonym")
    return sorted(spans), how


def _replace(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for s, e, typ in sorted(spans):
        if s < pos:
            continue
        out.append(text[pos:s])
        out.append(tag(typ))
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _erase_json(raw: str, subject: Subject, tokens: Sequence[tuple[str, str]]) -> str:
    def walk(v: Any) -> Any:
        if isinstance(v, str):
            spans, _ = _occurrences(subject, v, tokens)
            return _replace(v, spans) if spans else v
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    try:
        return json.dumps(walk(json.loads(raw)), ensure_ascii=False)
    except ValueError:
        spans, _ = _occurrences(subject, raw, tokens)
        return _replace(raw, spans)


class SubjectSearch:
    """Find, export and erase one subject's data in one database."""

    def __init__(self, db: Database, subject: Subject) -> None:
        self.data = SubjectData(db)
        self.repo = AccessRepository(db)
        self.subject = subject
        self.secrets = self.data.kb_secrets()
        self.all_tokens = [t for s in self.secrets.values() for t in subject.pseudonyms(s)]

    def _tokens(self, kb: str | None) -> list[tuple[str, str]]:
        if kb is not None and kb in self.secrets:
            return self.subject.pseudonyms(self.secrets[kb])
        return self.all_tokens

    def _check(
        self, where: str, id_: Any, kb: str | None, texts: Iterable[str], out: list[Place]
    ) -> Place | None:
        place = Place(where, str(id_), kb)
        tokens = self._tokens(kb)
        for text in texts:
            if not text:
                continue
            spans, how = _occurrences(self.subject, text, tokens)
            if spans:
                place.count += len(spans)
                place.how |= how
                place.text = (place.text + "\n" + text).strip()
        if place.count:
            out.append(place)
            return place
        return None

    def find(self) -> list[Place]:
        out: list[Place] = []
        docs_found: set[tuple[str, str]] = set()
        for did, kb, path, title, meta in self.data.documents():
            if self._check("document", did, kb, [title, path, meta], out):
                docs_found.add((kb, path))
        for cid, _did, kb, path, text in self.data.chunks():
            if self._check("chunk", cid, kb, [text], out):
                docs_found.add((kb, path))
        for conv, kb, title in self.data.conversations():
            self._check("conversation", conv, kb, [title], out)
        for mid, _conv, kb, question, answer in self.data.messages():
            self._check("message", mid, kb, [question, answer], out)
        for aid, comment in self.data.feedback():
            self._check("feedback", aid, None, [comment], out)
        for case, kb, question in self.data.cases():
            self._check("case", case, kb, [question], out)
        for eid, kb, body in self.data.case_entries():
            self._check("case_entry", eid, kb, [body], out)
        for mid, kb, question in self.data.answer_stats():
            self._check("answer_stat", mid, kb, [question], out)
        for fid, kb, question, answer, questions in self.data.curated():
            self._check("curated", fid, kb, [question, answer, questions], out)
        for wid, payload in self.data.webhook_payloads():
            self._check("webhook", wid, None, [payload], out)
        for eid, akb, target, detail in self.data.audit():
            self._check("audit", eid, akb, [target or "", detail], out)
        for ukb, upath, stored in self.data.uploads():
            if (ukb, upath) in docs_found:
                out.append(Place("upload", stored, ukb, {"document"}, 1, upath))
        return out

    def export(self) -> dict[str, Any]:
        """What the organisation hands over: every place with the stored text."""
        places = self.find()
        return {
            "subject": self.subject.masked,
            "generated_at": _now(),
            "places": [p.to_dict(with_text=True) for p in places],
        }

    def erase(self, actor: str, request_id: int | None = None) -> tuple[dict[str, int], list[str]]:
        """Mask every occurrence irreversibly; (counts per place, stored upload files no
        longer referenced, for the caller to delete)."""
        places = self.find()
        counts: dict[str, int] = {}
        for p in places:
            counts[p.where] = counts.get(p.where, 0) + 1
        by = {w: {p.id for p in places if p.where == w} for w in counts}

        def fix(text: str, kb: str | None) -> str:
            spans, _ = _occurrences(self.subject, text, self._tokens(kb))
            return _replace(text, spans) if spans else text

        if by.get("chunk"):
            self.data.set_chunk_texts(
                {
                    cid: fix(text, kb)
                    for cid, _d, kb, _p, text in self.data.chunks()
                    if str(cid) in by["chunk"]
                }
            )
        if by.get("document"):
            self.data.set_document_fields(
                {
                    did: (fix(title, kb), _erase_json(meta, self.subject, self._tokens(kb)))
                    for did, kb, _path, title, meta in self.data.documents()
                    if str(did) in by["document"]
                }
            )
        if by.get("conversation"):
            self.data.set_conversation_titles(
                {
                    cid: fix(title, kb)
                    for cid, kb, title in self.data.conversations()
                    if cid in by["conversation"]
                }
            )
        if by.get("message"):
            self.data.set_messages(
                {
                    mid: (fix(q, kb), _erase_json(a, self.subject, self._tokens(kb)))
                    for mid, _c, kb, q, a in self.data.messages()
                    if mid in by["message"]
                }
            )
        if by.get("feedback"):
            self.data.set_feedback_comments(
                {aid: fix(c, None) for aid, c in self.data.feedback() if aid in by["feedback"]}
            )
        if by.get("case"):
            self.data.set_case_questions(
                {cid: fix(q, kb) for cid, kb, q in self.data.cases() if str(cid) in by["case"]}
            )
        if by.get("case_entry"):
            self.data.set_case_entries(
                {
                    eid: fix(b, kb)
                    for eid, kb, b in self.data.case_entries()
                    if str(eid) in by["case_entry"]
                }
            )
        if by.get("answer_stat"):
            self.data.set_answer_stat_questions(
                {
                    mid: fix(q, kb)
                    for mid, kb, q in self.data.answer_stats()
                    if mid in by["answer_stat"]
                }
            )
        if by.get("curated"):
            toks = self._tokens
            self.data.set_curated(
                {
                    fid: (fix(q, kb), fix(a, kb), _erase_json(qs, self.subject, toks(kb)))
                    for fid, kb, q, a, qs in self.data.curated()
                    if str(fid) in by["curated"]
                }
            )
        if by.get("webhook"):
            self.data.set_webhook_payloads(
                {
                    wid: _erase_json(p, self.subject, self.all_tokens)
                    for wid, p in self.data.webhook_payloads()
                    if str(wid) in by["webhook"]
                }
            )
        if by.get("audit"):
            self.data.set_audit(
                {
                    eid: (fix(t, kb) if t else t, _erase_json(d, self.subject, self._tokens(kb)))
                    for eid, kb, t, d in self.data.audit()
                    if str(eid) in by["audit"]
                }
            )
        files: list[str] = []
        ups = [(p.kb or "", p.text) for p in places if p.where == "upload"]
        if ups:
            files = self.data.forget_uploads(ups)
        self.repo.record_erasure(request_id, actor, counts)
        return counts, files


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def due_date(kind: str, received: date) -> date:
    """The §13 deadline of a request received on ``received``."""
    if kind not in REQUEST_KINDS:
        raise PiiError(f"請求種類「{kind}」不支援（可用：{', '.join(REQUEST_KINDS)}）")
    return received + timedelta(days=REQUEST_KINDS[kind])


def open_request(db: Database, kind: str, subject: Subject, received: date | None = None) -> int:
    day = received or datetime.now(UTC).date()
    return AccessRepository(db).open_request(
        kind, subject.masked, day.isoformat(), due_date(kind, day).isoformat()
    )


def request_rows(db: Database, today: date | None = None) -> list[dict[str, Any]]:
    """Every request, with ``overdue`` for open ones past their deadline."""
    day = (today or datetime.now(UTC).date()).isoformat()
    out = []
    for r in AccessRepository(db).requests():
        d = r.to_dict()
        d["overdue"] = r.status == "open" and r.due_at < day
        out.append(d)
    return out


def access_entries(db: Database, user: str, hits: Sequence[Any], via: str) -> list[dict[str, Any]]:
    """Access-log entries for the ``hits`` shown to ``user`` that hold personal data:
    the kinds and masked values found in the *stored* passage (what was shown may be
    masked already), never the values."""
    from zhiku.pii.detect import detect

    stored = AccessRepository(db).chunk_texts([h.chunk_id for h in hits])
    out = []
    for h in hits:
        raw = stored.get(h.chunk_id, h.text)
        found = [f for f in detect(raw) if not f.business]
        tokens = re.findall(r"〔[^〕#]+#[0-9a-f]+〕", raw)
        if not found and not tokens:
            continue
        masked = [mask_value(f.value, f.type) for f in found] + tokens
        kinds = {f.type for f in found} | ({"pseudonym"} if tokens else set())
        out.append(
            {
                "user": user,
                "kb": h.kb,
                "chunk_id": h.chunk_id,
                "document": h.doc_title,
                "kinds": sorted(kinds),
                "masked": list(dict.fromkeys(masked)),
                "via": via,
            }
        )
    return out
