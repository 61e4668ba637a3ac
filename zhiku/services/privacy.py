"""A KB's PII policy applied to what leaves the engine: the one place output masking lives.

Functions of the knowledge base alone (its policy and secret), so the server, the audit
log and the jobs call them without an engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zhiku.models import Hit
from zhiku.pii import PiiPolicy, redact, redact_name
from zhiku.pii import redact_path as _redact_path
from zhiku.store import KnowledgeBase


def pii_policy(kb: KnowledgeBase) -> PiiPolicy:
    return PiiPolicy.from_dict(kb.settings.get("pii"))


def redact_output(kb: KnowledgeBase, text: str) -> str:
    """Text as a reader may see it under the KB's PII policy.

    In ``output`` mode personal data is masked here (pseudonyms keyed by the KB's secret);
    in ``ingest`` mode it was masked before storing, so nothing is done on the hot path;
    ``off`` shows text as stored.
    """
    pol = pii_policy(kb)
    if pol.mode != "output" or not pol.types:
        return text
    return redact(text, pol, secret=kb.secret)[0]


def redact_path(kb: KnowledgeBase, path: str) -> str:
    """A document path as a reader may see it: file and folder names masked in every
    mode that masks (a local file's path is its identity for ``zhiku sync`` and is stored
    as it is, so it is masked on the way out even in ``ingest`` mode)."""
    pol = pii_policy(kb)
    if pol.mode == "off" or not pol.types:
        return path
    return _redact_path(path, pol, kb.secret)


def redact_json(kb: KnowledgeBase, value: Any, key: str | None = None) -> Any:
    """A stored JSON value (an answer with its citations) as a reader may see it:
    ``path`` strings through :func:`redact_path`, every other string through
    :func:`redact_output`."""
    if isinstance(value, dict):
        return {k: redact_json(kb, v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(kb, v, key) for v in value]
    if isinstance(value, str):
        return redact_path(kb, value) if key == "path" else redact_output(kb, value)
    return value


def ingest_name(kb: KnowledgeBase, name: str) -> str:
    """An uploaded file's name as it is stored (on disk and as the document path):
    masked when the KB masks at ingest, so raw values never reach the store."""
    pol = pii_policy(kb)
    if not pol.masks_at_ingest or not pol.types:
        return name
    return redact_name(name, pol, kb.secret)


def redact_hit(kb: KnowledgeBase, h: Hit) -> Hit:
    """Every string of a hit as a reader may see it (text, title, section, label, path):
    the one place hits are masked on output."""
    if pii_policy(kb).mode == "output":
        h.text = redact_output(kb, h.text)
        h.doc_title = redact_output(kb, h.doc_title)
        if h.section:
            h.section = redact_output(kb, h.section)
        if h.label:
            h.label = redact_output(kb, h.label)
    h.path = redact_path(kb, h.path)
    return h


def redact_hits(
    hits: list[Hit],
    kbs: Mapping[str, KnowledgeBase] | Sequence[KnowledgeBase],
) -> list[Hit]:
    """``hits`` (in place) as a reader may see them, each under its own KB's policy."""
    by_name = dict(kbs) if isinstance(kbs, Mapping) else {kb.name: kb for kb in kbs}
    masking = {
        n: kb
        for n, kb in by_name.items()
        if kb.settings.get("pii", {}).get("mode", "ingest") != "off"
    }
    for h in hits:
        kb = masking.get(h.kb)
        if kb is not None:
            redact_hit(kb, h)
    return hits
