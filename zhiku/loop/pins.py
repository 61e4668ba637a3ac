"""Pinned passages: an editor's better passage for a question.

From a knowledge gap (refused, 👎-rated or handed-off questions) an editor searches the
KB and pins the passage that answers it. From then on a question with the same
exact-match key (:func:`zhiku.loop.gaps.question_key`, the normalisation gap clustering
uses) or a near-identical one (n-gram Jaccard ≥ :data:`PIN_SIMILARITY` with the pinned
question) is answered from that passage, cited first, whatever the refusal threshold
says: the editor vouched for it. The pin is applied inside the answering service
(:meth:`zhiku.services.answering.AnsweringService.iter_answer`), so every channel (web,
API, OpenAI, LINE, widget, CLI) honours it; a caller who may not see the passage
(access labels, :mod:`zhiku.access`) gets the ordinary answer, as if there were no pin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from zhiku.loop.gaps import jaccard, ngrams, question_key
from zhiku.models import Hit
from zhiku.services.privacy import redact_hits
from zhiku.storage.pins import Pin, SqlPins

if TYPE_CHECKING:
    from zhiku.filters import Filter
    from zhiku.store import Store

#: A question at least this similar to a pinned one (n-gram Jaccard) is near-identical.
PIN_SIMILARITY = 0.6


def match(pins: Sequence[Pin], question: str) -> Pin | None:
    """The pin for ``question``: the newest with its exact key, else the most similar
    pinned question at or above :data:`PIN_SIMILARITY`."""
    key = question_key(question)
    for pin in reversed(pins):
        if key in pin.qkeys:
            return pin
    grams = ngrams(question)
    best, best_sim = None, PIN_SIMILARITY
    for pin in reversed(pins):
        sim = jaccard(grams, ngrams(pin.question))
        if sim >= best_sim:
            best, best_sim = pin, sim
    return best


def pinned_hit(
    store: Store, question: str, names: Sequence[str], where: Filter | None
) -> tuple[Pin, Hit] | None:
    """The pinned passage for ``question`` in these KBs as a hit the caller may see
    (masked by its KB's output policy), or None."""
    kbs = {n: store.get_kb(n) for n in names}
    pin = match(SqlPins(store.database).of_kbs([kb.id for kb in kbs.values()]), question)
    if pin is None:
        return None
    hits = store.hits_for([(pin.chunk_id, 1.0)], [pin.kb_id], where)
    if not hits:  # labelled out of the caller's reach
        return None
    hit = redact_hits(hits, kbs)[0]
    hit.scores["pinned"] = 1.0
    return pin, hit
