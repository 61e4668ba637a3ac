"""知庫 zhiku: an on-premise, Traditional-Chinese-first knowledge assistant."""

__version__ = "0.1.0"
