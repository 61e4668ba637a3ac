"""Channels around the answering engine: LINE (:mod:`zhiku.channels.line`), outbound
webhooks (:mod:`zhiku.channels.webhooks`) and their registration
(:mod:`zhiku.channels.registry`). State lives in the ``channels`` storage component
(:mod:`zhiku.storage.channels`)."""

#: Outbound webhook events (zhiku.channels.webhooks).
EVENTS = (
    "question.answered",
    "question.refused",
    "feedback.negative",
    "handoff.requested",
    "handoff.resolved",
    "document.ingested",
)
#: The values of ``conversations.channel``.
CHANNELS = ("web", "api", "openai", "line", "widget")
