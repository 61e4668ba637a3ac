"""The three model interfaces and the errors they raise.

Each interface has one abstract method; conveniences derive from it. Implementations:
:mod:`zhiku.backends.openai` (any OpenAI-compatible HTTP server: Ollama, vLLM,
llama.cpp's server, LM Studio, TGI…), :mod:`zhiku.backends.local` (sentence-transformers
and cross-encoder directories) and :mod:`zhiku.backends.gguf` (llama-cpp-python).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypedDict

from zhiku.errors import ZhikuError

if TYPE_CHECKING:  # numpy is imported where vectors are made (start-up: bench/startup.py)
    import numpy as np


class Message(TypedDict):
    role: str  # system | user | assistant
    content: str


class ModelError(ZhikuError):
    """A model backend failed. ``backend`` names it for the message."""

    exit_code = 5

    def __init__(self, message: str, backend: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.status = status  # the HTTP status, when a server answered with an error


class ModelUnavailable(ModelError):
    """The server cannot be reached, timed out, or kept answering 5xx after retries."""


class ModelBadResponse(ModelError):
    """The server answered, but not with what the protocol promises (garbage, 4xx)."""


class ModelNotInstalled(ModelError):
    """An optional dependency for a local model is missing (with an install hint)."""


_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for budgets when the model's tokenizer is unknown.

    Chinese characters are counted as one token each (Qwen and Llama-3 tokenizers
    average 0.6–1.1 per character), other text as one token per 3.5 characters.
    """
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) * 2 // 7 + 1


class ChatModel(ABC):
    """A chat model: messages in, text out (streamed)."""

    name: str = "chat"
    context_tokens: int = 4096
    max_tokens: int = 768
    temperature: float = 0.1

    @abstractmethod
    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Yield the reply's text pieces as they are generated."""

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature))

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Embedder(ABC):
    """Texts to L2-normalised float32 vectors.

    ``model_id`` is recorded beside the vectors and in the embedding cache: a different
    id means different vectors, so changing the model (or its prefixes) triggers a
    re-embed. Queries and passages go through :meth:`embed_queries` and
    :meth:`embed_documents`, which apply the model's prefixes (never twice); a backend
    that marks them another way (an ``input_type`` field, a native call) overrides them.
    """

    model_id: str = "embed"
    batch_size: int = 32
    query_prefix: str = ""
    document_prefix: str = ""
    # The cosine similarity above which a query's best match is trusted on its own (when
    # the query shares no words with it); measured per model, None when not measured.
    answer_min_similarity: float | None = None
    # Above this the match is trusted even when the passage shares no word with the query
    # (``answer_min_similarity`` then needs a shared name or term); None: the same value.
    answer_sure_similarity: float | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, shape ``(len(texts), dim)``, float32, unit length."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        from zhiku.backends.prefixes import with_prefix

        return self.embed([with_prefix(self.document_prefix, t) for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        from zhiku.backends.prefixes import with_prefix

        return self.embed([with_prefix(self.query_prefix, t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Reranker(ABC):
    """Scores (query, passage) pairs; higher is more relevant."""

    name: str = "rerank"

    @abstractmethod
    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage, in the passages' order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def normalise_rows(matrix: np.ndarray, backend: str = "") -> np.ndarray:
    """float32 rows scaled to unit length; rejects NaN/inf and empty rows."""
    import numpy as np

    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ModelBadResponse(f"嵌入向量的形狀不正確：{m.shape}", backend)
    if not np.isfinite(m).all():
        raise ModelBadResponse("嵌入向量含有 NaN 或無限大", backend)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(m / norms, dtype=np.float32)
