"""The engine's services, each with one job; :class:`zhiku.engine.Zhiku` is their façade.

Built in this order, each on the ones before it (no cycles):

- :mod:`.context` — what they share: the data directory, the store, the model
  settings, one lock and the front end's hooks;
- :mod:`.models` — the model backends (a process-wide cache of local models) and a KB's
  model configuration with its calibrated fusion weights;
- :mod:`.indexes` — the per-KB derived indexes (lexical BM25, vectors) and their sync;
- :mod:`.privacy` — the KB's PII policy applied to everything that leaves the engine;
- :mod:`.retrieval` — plan → lexical → dense → fuse → rerank, and the KB's vocabulary;
- :mod:`.answering` — extractive and generated answers as typed events;
- :mod:`.kbs` — KB administration and calibration (refusal threshold, fusion weights);
- :mod:`.ingestion` — loaded document → mask → chunk → store → index.
"""
