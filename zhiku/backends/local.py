"""Local embedding and rerank models: sentence-transformers and cross-encoder directories.

torch and sentence-transformers are an optional extra (``pip install 'zhiku[local]'``);
they are imported only when a local model is first used, and a missing install raises
:class:`ModelNotInstalled` with the command to run. Models load from the given
directory only (``local_files_only``): nothing is fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.backends.base import (
    Embedder,
    ModelBadResponse,
    ModelNotInstalled,
    Reranker,
    normalise_rows,
)
from zhiku.backends.config import BackendConfig
from zhiku.backends.prefixes import resolve as resolve_prefixes

INSTALL_HINT = "本機模型需要選用套件，請執行：pip install 'zhiku[local]'"


def _sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:  # torch or sentence-transformers missing
        raise ModelNotInstalled(f"{INSTALL_HINT}（{exc}）", "local") from exc
    try:  # no "Loading weights" bars on the user's terminal
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    return sentence_transformers


def _model_dir(cfg: BackendConfig) -> Path:
    path = Path(str(cfg.path)).expanduser()
    if not path.is_dir():
        raise ModelBadResponse(f"找不到本機模型資料夾：{path}", str(path))
    return path.resolve()


def model_fingerprint(path: Path) -> str:
    """A stable id for a model directory: its name plus a hash of configs and weight sizes.

    Moving the directory keeps the id (no needless re-embed); replacing the weights or
    the configuration changes it.
    """
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if not f.is_file() or f.name.startswith("."):
            continue
        rel = f.relative_to(path).as_posix()
        h.update(rel.encode())
        if f.suffix in (".json", ".txt", ".model") and f.stat().st_size < 4 << 20:
            h.update(f.read_bytes())
        else:
            h.update(str(f.stat().st_size).encode())
    name = path.name if path.name not in ("model", "models") else path.parent.name
    return f"{name}:{h.hexdigest()[:12]}"


def _load_dir(kind: str, path: Path, cfg: BackendConfig, what: str) -> Any:
    """Load a sentence-transformers model class (``kind``) from a local directory only."""
    st = _sentence_transformers()
    try:
        return getattr(st, kind)(str(path), device=cfg.device, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelBadResponse(f"無法載入本機{what} {path}：{exc}", str(path)) from exc


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model directory (MiniLM, bge-m3, multilingual-e5…)."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.path = _model_dir(cfg)
        marks = resolve_prefixes(cfg)
        self.model_id = f"st:{model_fingerprint(self.path)}{marks.tag()}"
        self.batch_size = cfg.batch_size
        self.query_prefix = marks.query
        self.document_prefix = marks.passage
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load_dir("SentenceTransformer", self.path, self.cfg, "嵌入模型")
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vecs = model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return normalise_rows(vecs, str(self.path))


class CrossEncoderReranker(Reranker):
    """A cross-encoder directory (bge-reranker, ms-marco MiniLM…)."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.path = _model_dir(cfg)
        self.name = str(self.path)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load_dir("CrossEncoder", self.path, self.cfg, "重排序模型")
            return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        model = self._load()
        scores = model.predict(
            [(query, p) for p in passages],
            batch_size=self.cfg.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        arr = np.asarray(scores, dtype=np.float32)
        if arr.ndim == 2:  # several labels: the last one is "relevant"
            arr = arr[:, -1]
        return [float(x) for x in arr]
