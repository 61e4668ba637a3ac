"""What the engine's services share: one data directory, its store and settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.backends import ModelSettings
from zhiku.store import Store

log = logging.getLogger("zhiku")

# (kb name, chunks to embed) -> a context manager yielding a step(n) callback.
EmbedProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
# At query time at most this many chunks are embedded to catch the vectors up; a bigger
# backlog is left to ingest / ``zhiku models embed`` and the search runs on what exists.
QUERY_EMBED_LIMIT = 256


@dataclass(eq=False)
class EngineContext:
    """The state every service of one engine reads: nothing here does work itself."""

    home: Path
    store: Store
    settings: ModelSettings
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Front-end hooks: a progress display for embedding, and where warnings that have no
    # Answer to travel in (embedding failures during ingest) are shown.
    embed_progress: EmbedProgressFactory | None = None
    on_warning: Callable[[str], None] | None = None
    query_embed_limit: int = QUERY_EMBED_LIMIT

    def warn(self, message: str) -> None:
        log.warning(message)
        if self.on_warning is not None:
            self.on_warning(message)
