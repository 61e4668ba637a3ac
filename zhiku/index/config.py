"""Which index implementation a knowledge base uses: its ``index`` setting.

``{"backend": "embedded"}`` (the default: tantivy and a numpy matrix beside the SQLite
database) or ``{"backend": "milvus", "uri": URI}``, where ``URI`` is a Milvus Lite file
(``/srv/zhiku/milvus.db``, a path ending in ``.db``) or a Milvus server
(``http://host:19530``; ``token`` and ``db_name`` keys are passed on). Without a ``uri``
a Milvus KB uses ``milvus.db`` in the data directory. Set it when the KB is created
(``zhiku kb create NAME --index milvus --milvus-uri URI``); see docs/operators/scale.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhiku.errors import ZhikuError
from zhiku.store import KnowledgeBase, Store

BACKENDS = ("embedded", "milvus")


class IndexConfigError(ZhikuError):
    """A KB's ``index`` setting that cannot be used."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class IndexConfig:
    backend: str = "embedded"
    uri: str | None = None
    token: str | None = None
    db_name: str | None = None

    @classmethod
    def from_settings(cls, value: Any) -> IndexConfig:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise IndexConfigError(f"知識庫的 index 設定必須是物件，而不是 {value!r}")
        backend = str(value.get("backend", "embedded"))
        if backend not in BACKENDS:
            raise IndexConfigError(f"不支援的索引後端「{backend}」（可用：{'、'.join(BACKENDS)}）")
        uri = value.get("uri")
        if uri is not None and not isinstance(uri, str):
            raise IndexConfigError("index.uri 必須是字串")
        return cls(
            backend=backend,
            uri=uri or None,
            token=value.get("token") or None,
            db_name=value.get("db_name") or None,
        )

    @classmethod
    def of(cls, kb: KnowledgeBase) -> IndexConfig:
        return cls.from_settings(kb.settings.get("index"))

    def to_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.backend}
        for key in ("uri", "token", "db_name"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def milvus_uri(self, home: Path) -> str:
        return self.uri or str(home / "milvus.db")


def open_lexical(root: Path, store: Store, kb: KnowledgeBase) -> Any:
    """The KB's lexical index; ``root`` is the embedded indexes' folder (``home/index``)."""
    cfg = IndexConfig.of(kb)
    if cfg.backend == "milvus":
        from zhiku.index.milvus import MilvusLexicalIndex

        return MilvusLexicalIndex(cfg, root.parent, store, kb)
    from zhiku.lexical import LexicalIndex

    return LexicalIndex(root, store, kb)


def open_vectors(root: Path, store: Store, kb: KnowledgeBase) -> Any:
    """The KB's vector index; ``root`` is the embedded matrices' folder (``home/vectors``)."""
    cfg = IndexConfig.of(kb)
    if cfg.backend == "milvus":
        from zhiku.index.milvus import MilvusVectorIndex

        return MilvusVectorIndex(cfg, root.parent, store, kb)
    from zhiku.vectors import VectorIndex

    return VectorIndex(root, store, kb)
