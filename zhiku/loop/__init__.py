"""The service loop (issue 12): hand-off to people, analytics, and gaps turned into
curated knowledge.

- :mod:`zhiku.loop.handoff` — 「轉真人」 detection, the event hooks and the delivery hook;
- :mod:`zhiku.loop.gaps` — question keys and the clustering of knowledge gaps;
- :mod:`zhiku.loop.report` — the analytics report (``zhiku report``, the analytics page);
- :mod:`zhiku.loop.curate` — curated FAQ entries and the ``export sft`` dataset.

State lives in :mod:`zhiku.storage.loop` (component ``loop``).
"""
