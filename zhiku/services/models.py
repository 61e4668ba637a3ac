"""Model backends: the process-wide cache of local models and a KB's model settings.

HTTP clients belong to one engine; local models (weights in memory) are shared by every
engine of the process, so a server's engine pool loads each once.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from dataclasses import replace
from typing import Any

from zhiku.backends import (
    BackendConfig,
    ChatModel,
    Embedder,
    KbModelConfig,
    ModelError,
    Reranker,
    build,
)
from zhiku.services.context import EngineContext

_SHARED_MODELS: dict[BackendConfig, Any] = {}
_SHARED_LOCK = threading.Lock()


@atexit.register
def _close_shared_models() -> None:
    """Free local models before interpreter teardown (llama.cpp needs its library then)."""
    with _SHARED_LOCK:
        for model in _SHARED_MODELS.values():
            with contextlib.suppress(Exception):
                model.close()
        _SHARED_MODELS.clear()


class ModelService:
    """The chat, embedding and reranking backends of each KB."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._models: dict[BackendConfig, Any] = {}

    def close(self) -> None:
        with self.ctx.lock:
            for model in self._models.values():
                with contextlib.suppress(Exception):
                    model.close()
            self._models.clear()

    def model_config(self, kb: str) -> KbModelConfig:
        """The KB's backends and answer settings, with its calibrated fusion weights.

        Fusion settings: those named for this KB in ``zhiku.toml`` win, then the ones
        ``zhiku models calibrate`` stored for the KB's current embedder, then the global
        ``[hybrid]`` section, then the defaults.
        """
        cfg = self.ctx.settings.for_kb(kb)
        kbo = self.ctx.store.find_kb(kb)
        cal = kbo.settings.get("hybrid_calibration") if kbo is not None else None
        if cal and cfg.embed is not None:
            try:
                embedder = self.embedder(kb)
            except ModelError:
                embedder = None
            if embedder is not None and cal.get("model") == embedder.model_id:
                values: dict[str, Any] = {
                    k: float(cal[k])
                    for k in ("rrf_k", "dense_weight")
                    if k in cal and k not in cfg.hybrid_explicit
                }
                cfg = replace(cfg, hybrid=replace(cfg.hybrid, **values))
        return cfg

    def backend(self, cfg: BackendConfig) -> Any:
        """The (cached) client or model object for one backend configuration."""
        if cfg.kind != "http":
            with _SHARED_LOCK:
                obj = _SHARED_MODELS.get(cfg)
                if obj is None:
                    obj = _SHARED_MODELS[cfg] = build(cfg)
                return obj
        with self.ctx.lock:
            obj = self._models.get(cfg)
            if obj is None:
                obj = build(cfg)
                self._models[cfg] = obj
            return obj

    def chat_model(self, kb: str) -> ChatModel | None:
        cfg = self.ctx.settings.for_kb(kb).chat
        return None if cfg is None else self.backend(cfg)

    def embedder(self, kb: str) -> Embedder | None:
        cfg = self.ctx.settings.for_kb(kb).embed
        return None if cfg is None else self.backend(cfg)

    def reranker(self, kb: str) -> Reranker | None:
        cfg = self.ctx.settings.for_kb(kb).rerank
        return None if cfg is None else self.backend(cfg)
