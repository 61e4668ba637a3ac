"""Chat with a GGUF model file in-process, through llama-cpp-python (optional extra).

``pip install 'zhiku[gguf]'`` compiles llama.cpp (about ten minutes on two cores).
The model's own chat template (``tokenizer.chat_template`` in the file) formats the
messages; generation is greedy-ish with the configured temperature and stops at the
model's end-of-sequence token or ``max_tokens``. One model object serves one
generation at a time (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zhiku.backends.base import ChatModel, Message, ModelBadResponse, ModelNotInstalled
from zhiku.backends.config import BackendConfig

INSTALL_HINT = "GGUF 模型需要選用套件，請執行：pip install 'zhiku[gguf]'（會編譯 llama.cpp）"


class LlamaCppChat(ChatModel):
    """A GGUF file loaded with llama-cpp-python."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.path = Path(str(cfg.path)).expanduser()
        if not self.path.is_file():
            raise ModelBadResponse(f"找不到 GGUF 模型檔：{self.path}", str(self.path))
        self.name = self.path.name
        self.context_tokens = cfg.context_tokens
        self.max_tokens = cfg.max_tokens
        self.temperature = cfg.temperature
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelNotInstalled(f"{INSTALL_HINT}（{exc}）", "gguf") from exc
            try:
                self._llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.context_tokens,
                    n_threads=max(1, (os.cpu_count() or 2) - 1),
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelBadResponse(
                    f"無法載入 GGUF 模型 {self.path}：{exc}", str(self.path)
                ) from exc
        return self._llm

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        with self._lock:
            llm = self._load()
            try:
                chunks = llm.create_chat_completion(
                    messages=[dict(m) for m in messages],
                    max_tokens=max_tokens or self.max_tokens,
                    temperature=self.temperature if temperature is None else temperature,
                    stream=True,
                )
                for chunk in chunks:
                    text = chunk["choices"][0].get("delta", {}).get("content")
                    if text:
                        yield text
            except (ValueError, RuntimeError, KeyError, IndexError) as exc:
                raise ModelBadResponse(
                    f"GGUF 模型 {self.name} 生成失敗：{exc}", str(self.path)
                ) from exc

    def count_tokens(self, text: str) -> int:
        with self._lock:
            llm = self._load()
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                if hasattr(self._llm, "close"):
                    self._llm.close()
                self._llm = None
