"""The one citation formatter: how a cited passage is named wherever a person reads it.

``zhiku ask`` (the CLI's 出處 list), ``zhiku search``, and the server's chat answers (the
「出處：」 block the OpenAI-compatible endpoint appends to a message) all name a source
the same way: 「《title》section，第 3 頁」 (English: ``《title》 section, p. 3``).
Input is the stable JSON citation shape (:meth:`zhiku.models.Hit.citation`). The prompt
a chat model sees numbers its sources itself (:class:`zhiku.generate.Source`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zhiku.messages import resolve

HEADINGS = {"zh-TW": "出處：", "en": "Sources:"}


def _lang(lang: str | None) -> str:
    return resolve("zh-TW" if lang == "zh" else lang)


def where(cite: Mapping[str, Any], lang: str | None = None) -> str:
    """「《title》section，第 3 頁」: the document, its section, its page."""
    out = f"《{cite.get('doc') or ''}》"
    if cite.get("section"):
        # No space after 》 in Chinese; English text sets the section off with one.
        out += f" {cite['section']}" if _lang(lang) == "en" else str(cite["section"])
    if cite.get("page"):
        out += f", p. {cite['page']}" if _lang(lang) == "en" else f"，第 {cite['page']} 頁"
    return out


def numbered(cites: Sequence[Mapping[str, Any]], lang: str | None = None) -> list[str]:
    """``[1] 《…》 …`` for each citation, in order."""
    return [f"[{i}] {where(c, lang)}" for i, c in enumerate(cites, 1)]


def heading(lang: str | None = None) -> str:
    return HEADINGS[_lang(lang)]


def sources_block(answer: Mapping[str, Any], lang: str | None = None) -> str:
    """The citations as text appended to a chat message: 「\\n\\n出處：\\n[1] 《…》…」
    (empty when the answer cites nothing). ``lang``: ``zh``/``zh-TW`` or ``en``."""
    cites = answer.get("citations") or []
    if not cites:
        return ""
    return "\n\n" + "\n".join([heading(lang), *numbered(cites, lang)])


def strip_sources(text: str) -> str:
    """A chat message without the sources block :func:`sources_block` appended to it."""
    for head in HEADINGS.values():
        marker = "\n\n" + head + "\n"
        if marker in text:
            text = text.split(marker, 1)[0]
    return text
