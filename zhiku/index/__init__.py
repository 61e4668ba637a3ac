"""The derived indexes of a knowledge base behind two Protocols (:mod:`zhiku.index.base`),
and the choice of implementation per KB (:mod:`zhiku.index.config`).

Two implementations exist: the embedded one (tantivy in :mod:`zhiku.lexical`, a numpy
matrix in :mod:`zhiku.vectors`, files beside the SQLite database) and Milvus
(:mod:`zhiku.index.milvus`: Milvus Lite on a local ``.db`` file, or a cluster URI).
"""

from zhiku.index.base import LexicalBackend, VectorBackend
from zhiku.index.config import IndexConfig, open_lexical, open_vectors

__all__ = ["IndexConfig", "LexicalBackend", "VectorBackend", "open_lexical", "open_vectors"]
