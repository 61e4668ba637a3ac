"""Hand-off to people (轉真人): detection, the outbound hooks and the delivery hook.

A question that asks for a person is never answered from the KB: the server opens a case
instead. Detection runs on :func:`zhiku.text.fold`\\ ed text (NFKC, lower case,
Traditional→Simplified), so 「轉真人」, 「转真人」 and full-width forms are one pattern.

Two small registries connect the loop to the channels (LINE push, the widget, webhooks)
without importing them:

- :func:`on` / :func:`emit` — ``handoff.requested`` and ``handoff.resolved`` events
  (``zhiku.server.events`` replaces this list when it exists);
- :func:`set_deliverer` / :func:`deliver` — an agent's reply is stored (the web UI reads
  it from the conversation) and then handed to every registered deliverer as
  ``deliver(conversation_id, text)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from zhiku.text import fold

log = logging.getLogger("zhiku.loop.handoff")

# Simplified forms: the text is folded before matching.
_ASK_PERSON = re.compile(
    r"转(接)?(真人|人工|专人|客服)|找(真人|客服|专人|人工)|(真人|人工)(客服|服务)"
    r"|客服人员|\b(talk|speak) to (a |an )?(human|person|agent)\b|\b(human|live) agent\b"
)

EVENTS = ("handoff.requested", "handoff.resolved")

Hook = Callable[[str, dict[str, Any]], None]
Deliverer = Callable[[str, str], object]

_hooks: list[Hook] = []
_deliverers: list[Deliverer] = []


def asks_for_person(question: str) -> bool:
    """Whether the question asks to talk to a person (「轉真人」「找客服」「真人客服」…)."""
    return _ASK_PERSON.search(fold(question)) is not None


def on(hook: Hook) -> None:
    """Call ``hook(event, payload)`` on every hand-off event."""
    _hooks.append(hook)


def emit(event: str, payload: dict[str, Any]) -> None:
    """Tell every hook; a failing hook is logged and never fails the request."""
    try:
        from zhiku.server import events  # type: ignore[attr-defined]
    except ImportError:
        events = None
    if events is not None and hasattr(events, "emit"):
        events.emit(event, payload)
    for hook in list(_hooks):
        try:
            hook(event, payload)
        except Exception:  # noqa: BLE001 - an outbound hook must not break the inbox
            log.exception("hand-off hook failed", extra={"event": event})


def set_deliverer(fn: Deliverer) -> None:
    """Register a channel's delivery: ``fn(conversation_id, text)``."""
    _deliverers.append(fn)


def deliver(conversation_id: str, text: str) -> int:
    """Hand an agent's reply (already stored) to the channels; returns how many took it."""
    n = 0
    for fn in list(_deliverers):
        try:
            # A deliverer answers False when the conversation is not on its channel.
            if fn(conversation_id, text) is not False:
                n += 1
        except Exception:  # noqa: BLE001 - the reply is stored; the web UI still shows it
            log.exception("reply delivery failed", extra={"conversation_id": conversation_id})
    return n


def clear() -> None:
    """Forget every hook and deliverer (tests, and a server shutting down)."""
    _hooks.clear()
    _deliverers.clear()
