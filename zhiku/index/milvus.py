"""The Milvus index backend: BM25 and dense vectors of a KB in Milvus, through pymilvus.

The same code talks to Milvus Lite (a local ``.db`` file, no server: the ``milvus-lite``
package) and to a Milvus server or cluster (``http://host:19530``). Each KB gets two
collections named after the database's id and the KB's id (so several zhiku
installations can share one Milvus): ``zhiku_<db>_kb<id>_lex`` and ``…_vec``, plus one
``zhiku_meta`` collection holding each index's sync state.

Lexical: zhiku tokenises (:func:`zhiku.text.tokenize`: folding, CJK unigrams and
bigrams, Latin words, exactly the tokens of the tantivy index), and Milvus' BM25
Function finds the candidates. Each token is written as one ASCII "word"
(:func:`encode_token`: every code point as five letters a–z) into a VARCHAR field
analysed by the ``standard`` tokenizer, which keeps such a word whole on both Milvus
Lite and a server. (Milvus Lite 3.2 has no ``whitespace`` tokenizer, and a server's
``standard`` tokenizer would cut a bigram into unigrams; the encoding is a bijection,
so BM25 sees zhiku's tokens and no others.) ``bm25_k1``/``bm25_b`` are tantivy's 1.2/0.75.

Term statistics live in the database, not in Milvus (:mod:`zhiku.storage.termstats`):
the sync adds and subtracts each chunk's token document frequencies, per *label scope*
(the access labels of its document, :func:`scope_key`; the ``scope`` field of each row
says which), with each scope's chunk count and total length. Milvus' BM25 finds the
candidates (``k`` + 20), and they are re-scored with those statistics and tantivy's
length quantisation (:func:`zhiku.lexical.field_norm`): the same scores as the embedded
index on the same chunks, whatever Milvus' segments hold (Milvus Lite keeps BM25
statistics per segment). A caller with an access scope is scored over the scopes it
lets through only (document frequencies, count and average length of the visible
chunks), in the same number of reads as anyone else. ``term_stats`` is one indexed read
of the database, whatever the number of tokens: no count in Milvus on the query path.
The statistics have a *generation* recorded both in the database and in the index's
sync state, cleared while a sync writes; a mismatch, or chunk counts that disagree with
the collection's, rebuilds them from the store's chunks.

Access classes: as in the embedded index (:mod:`zhiku.lexical`), a chunk's tokens are
written a second time into ``scoped_tokens`` (a second BM25 Function, ``scoped_sparse``),
each word prefixed by the letters of its document's access class
(:func:`zhiku.access.label_class`, :func:`class_prefix`); every row also carries its
class id in ``access_class``. A caller with an access scope sends Milvus only the
prefixed words of the classes its scope lets through (the visible label scopes of the
database's statistics), with no list of chunk ids and no expression over the labels:
Milvus never reads a posting of a hidden document, so a question whose words occur only
in hidden documents costs what one whose words occur nowhere costs
(tests/test_access_timing_milvus.py). Its vector search adds ``access_class in [...]``,
a scalar test of every row whose cost does not depend on what hidden rows hold. A
label change re-indexes the document (the store queues it), moving its rows to the new
class.

Dense: one FLOAT_VECTOR per chunk, L2-normalised by the embedder, metric IP (= cosine),
synced by difference of chunk ids like :mod:`zhiku.vectors`, the vectors themselves
from the same embedding cache in the store.

Filters (:class:`zhiku.filters.Filter`), allowed and excluded chunk ids become one
Milvus boolean expression of the search (:func:`filter_expr`) over fields carried by
every row: ``facet`` (an ARRAY of ``key=value`` terms, as in the tantivy index),
``effective`` and ``amended`` (nullable INT64, ``YYYYMMDD``), ``chunk_id``,
``access_class``. An exclusion no chunk the caller may see carries
(``status!=repealed`` in a KB without repealed law) is left out of both searches, judged
by the facet counts of the term statistics (:func:`without_unmatched_counted`); the
dense search trusts them only while the lexical sync that keeps them is up to date.

Sync state: like the tantivy marker, each index records the database id, tokenizer (or
model) and the store's change counter it has applied; on a mismatch, or a database that
went back in time (a restored backup), the collection is dropped and rebuilt from the
store. Known limit of Milvus Lite (3.2): one process at a time may open a Lite file
(``python -m milvus_lite server`` serves one to several processes); a server has no
such limit.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zhiku import filters as zfilters
from zhiku import text as ztext
from zhiku.access import (
    GROUP_COND,
    GROUPS_KEY,
    LEVEL_COND,
    LEVEL_KEY,
    access_guard,
    doc_labels,
    label_class,
)
from zhiku.errors import ZhikuError
from zhiku.filters import Filter
from zhiku.index.config import IndexConfig
from zhiku.lexical import (
    BM25_B,
    BM25_K1,
    PRUNE_MIN_DOCS,
    PRUNE_UNIGRAM_DF,
    RESCORE_EXTRA,
    _idf,
    field_norm,
    index_text,
    queue_all,
)
from zhiku.storage.termstats import ScopeTotals, SqlTermStats, TermStatsRepository, facet_token
from zhiku.store import KnowledgeBase, Store
from zhiku.vectors import (
    EmbeddingCache,
    SyncReport,
    embed_text,
    embed_with_cache,
    store_chunks,
    text_hash,
)

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from zhiku.backends.base import Embedder

log = logging.getLogger(__name__)

# 2: a label scope per row, statistics in the database; 3: access-class scoped BM25, facet
# counts in the statistics
LEX_FORMAT = 3
VEC_FORMAT = 2  # 2: the access class of each row
META_COLLECTION = "zhiku_meta"
BATCH = 1000
MAX_TOKENS_BYTES = 65_535
MAX_FACETS = 64
FACET_LEN = 512
# An access class id (zhiku.access.label_class: 12 hex digits), and as the letters that
# prefix each token of the scoped field.
CLASS_LEN = 12
# What a search fetches at most; Milvus caps topk (16384 on a server).
MAX_K = 16_384

ProgressFn = Callable[[int], None]
# Statistics differences written to the database once this many (scope, token) pairs
# gathered (a large sync writes in several transactions, marked out of date meanwhile).
DELTA_FLUSH = 300_000


class MilvusUnavailable(ZhikuError):
    """pymilvus / milvus-lite is not installed, or the Milvus URI cannot be opened."""

    exit_code = 3


# --- connection -------------------------------------------------------------------

_CLIENTS: dict[tuple[str, str | None, str | None], MilvusClient] = {}
_CLIENTS_LOCK = threading.Lock()


def connect(cfg: IndexConfig, home: Path) -> MilvusClient:
    """One client per URI per process (a Milvus Lite file is opened once)."""
    uri = cfg.milvus_uri(home)
    key = (uri, cfg.token, cfg.db_name)
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is not None:
            return found
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise MilvusUnavailable(
                "未安裝 Milvus 支援：請執行 pip install 'zhiku[milvus]'"
            ) from exc
        kwargs: dict[str, Any] = {"uri": uri}
        if cfg.token:
            kwargs["token"] = cfg.token
        if cfg.db_name:
            kwargs["db_name"] = cfg.db_name
        try:
            client = MilvusClient(**kwargs)
        except Exception as exc:  # pymilvus raises several types for a bad URI
            raise MilvusUnavailable(f"無法連線 Milvus（{uri}）：{exc}") from exc
        _skip_row_string_check()
        _CLIENTS[key] = client
        return client


def _skip_row_string_check() -> None:
    """pymilvus (3.0) "checks" each VARCHAR value of a row-based insert by iterating it
    as if it were a list of strings: one ``isinstance`` and ``len`` per *character*,
    which never fails (a character is never longer than the field) and was a fifth of
    a Lite build's time. zhiku bounds its strings itself (``MAX_TOKENS_BYTES``,
    ``FACET_LEN``) and Milvus checks lengths on the server, so the check is turned off
    (column-based inserts, which it was written for, are not used here)."""
    try:
        from pymilvus.client import entity_helper
    except ImportError:  # another layout: nothing to turn off
        return
    if getattr(entity_helper, "CHECK_STR_ARRAY", None) is True:
        entity_helper.CHECK_STR_ARRAY = False


_SYNC_LOCKS: dict[tuple[str, str], threading.RLock] = {}


def sync_lock(uri: str, collection: str) -> threading.RLock:
    """One lock per collection in this process: the engines of a server node each hold
    their own index object, and two syncs of one collection at once would apply the
    same change to its term statistics twice."""
    with _CLIENTS_LOCK:
        return _SYNC_LOCKS.setdefault((uri, collection), threading.RLock())


def close_all() -> None:
    """Close every client this process opened (tests, shutdown)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("closing a Milvus client failed", exc_info=True)
        _CLIENTS.clear()


# --- encoding ---------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class _CodeWords(dict[int, str]):
    """Code point → its five letters, computed once per code point (a
    :meth:`str.translate` table: encoding a chunk's tokens is then one C loop each)."""

    def __missing__(self, cp: int) -> str:
        word = []
        rest = cp
        for _ in range(5):
            rest, r = divmod(rest, 26)
            word.append(_LETTERS[r])
        self[cp] = out = "".join(reversed(word))
        return out


_CODE_WORDS = _CodeWords()


def encode_token(token: str) -> str:
    """One zhiku token as one lowercase ASCII word: each code point as five base-26
    letters (26**5 > 0x10FFFF), so distinct tokens stay distinct and none is split."""
    return token.translate(_CODE_WORDS)


def decode_token(word: str) -> str:
    """The token of one :func:`encode_token` word."""
    out = []
    for i in range(0, len(word) - 4, 5):
        cp = 0
        for ch in word[i : i + 5]:
            cp = cp * 26 + (ord(ch) - 97)
        out.append(chr(cp))
    return "".join(out)


def _encode_kept(tokens: Iterable[str], limit: int, extra: int = 0) -> tuple[str, int]:
    """Encoded tokens that fit in ``limit`` bytes when each takes ``extra`` more."""
    parts = [t.translate(_CODE_WORDS) for t in tokens]
    if sum(map(len, parts)) + (extra + 1) * len(parts) > limit:  # each word and a separator
        log.warning("milvus: a chunk's tokens exceed %d bytes; the rest is not indexed", limit)
        n = size = 0
        for w in parts:
            if size + len(w) + extra + 1 > limit:
                break
            size += len(w) + extra + 1
            n += 1
        del parts[n:]
    return " ".join(parts), len(parts)


def encode_tokens(tokens: Iterable[str], limit: int = MAX_TOKENS_BYTES) -> str:
    """Space-joined encoded tokens, cut (at a token boundary) to ``limit`` bytes."""
    return _encode_kept(tokens, limit)[0]


def indexed_tokens(row: Any) -> tuple[str, list[str]]:
    """A chunk's ``tokens`` field and the tokens it holds: those that fit, with their
    class prefix, in the ``scoped_tokens`` field too (both fields hold the same)."""
    tokens = ztext.tokenize(index_text(row))
    words, n = _encode_kept(tokens, MAX_TOKENS_BYTES, CLASS_LEN)
    return words, tokens[:n]


def class_prefix(class_id: str) -> str:
    """An access class id (hex digits) as lowercase letters (0–9a–f → a–p): a token of
    the scoped field is these letters then the token's word, one word to the
    ``standard`` tokenizer, and the fixed length keeps the encoding a bijection."""
    return "".join(_LETTERS[int(c, 16)] for c in class_id[:CLASS_LEN])


def scoped_words(class_id: str, words: str) -> str:
    """The ``scoped_tokens`` field of a chunk of class ``class_id`` whose ``tokens``
    field is ``words``."""
    prefix = class_prefix(class_id)
    return " ".join(prefix + w for w in words.split())


# --- label scopes -----------------------------------------------------------------


def scope_key(meta: Mapping[str, Any]) -> str:
    """The label scope of a document (its access groups and level, :mod:`zhiku.access`)
    as the term statistics key it: ``[[groups…],level]``."""
    groups, level = doc_labels(meta)
    return json.dumps([sorted(set(groups)), level], ensure_ascii=False, separators=(",", ":"))


def scope_class(key: str) -> str | None:
    """The access class id (:func:`zhiku.access.label_class`) of a label scope's
    documents (None: unreadable)."""
    try:
        groups, level = json.loads(key)
        return label_class({GROUPS_KEY: list(groups), LEVEL_KEY: int(level)})[0]
    except (ValueError, TypeError):
        return None


def scope_classes(scopes: Iterable[str]) -> set[str]:
    """The access class ids of label ``scopes`` (those a caller may see:
    :func:`visible_scopes`)."""
    return {c for c in map(scope_class, scopes) if c is not None}


def scope_visible(key: str, guard: Filter) -> bool:
    """Whether a caller's access conditions let a label scope's documents through (as
    :meth:`zhiku.access.AccessScope.allows`; unreadable: not visible)."""
    try:
        groups, level = json.loads(key)
        level = int(level)
    except (ValueError, TypeError):
        return False
    for c in guard.conditions:
        if c.key == GROUP_COND and groups and not set(groups) & set(c.values):
            return False
        if c.key == LEVEL_COND and level > int(c.values[0]):
            return False
    return True


# --- rows and filters -------------------------------------------------------------


def _meta_of(row: Any) -> dict[str, Any]:
    raw = row["meta"]
    try:
        meta = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        meta = {}
    return meta if isinstance(meta, dict) else {}


def filter_fields(row: Any) -> dict[str, Any]:
    """The filter fields of a chunk's row (as :func:`zhiku.lexical._facet_fields`)."""
    return _filter_fields(_meta_of(row), row)


def _filter_fields(meta: Mapping[str, Any], row: Any) -> dict[str, Any]:
    terms = zfilters.facet_terms(meta, str(row["kind"] or ""))
    dates = zfilters.date_values(meta)
    return {
        "facet": [t[:FACET_LEN] for t in terms[:MAX_FACETS]],
        **{k: dates.get(k) for k in zfilters.DATE_KEYS},
        "access_class": label_class(meta)[0],
    }


def _str(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)


def _ints(ids: Iterable[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


_OPS = {"=": "==", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def class_expr(classes: Collection[str]) -> str:
    """The Milvus expression letting through the rows of ``classes`` (access class ids)."""
    return f"access_class in [{', '.join(_str(c) for c in sorted(classes))}]"


def filter_expr(
    where: Filter | None = None,
    allowed: Collection[int] | None = None,
    excluded: Collection[int] | None = None,
) -> str:
    """The Milvus boolean expression of a restriction ("" for none). A caller's access
    scope is not expressed here: the lexical index reads its classes' scoped terms,
    the vector index adds :func:`class_expr`."""
    parts: list[str] = []
    for c in where.conditions if where else ():
        if c.key in (GROUP_COND, LEVEL_COND):
            continue
        if c.key in zfilters.DATE_KEYS:
            v = zfilters.date_int(c.values[0])
            if c.op == "!=":
                parts.append(f"not ({c.key} == {v})")
            else:
                parts.append(f"{c.key} {_OPS[c.op]} {v}")
            continue
        terms = ", ".join(_str(f"{c.key}={v}") for v in c.values)
        expr = f"ARRAY_CONTAINS_ANY(facet, [{terms}])"
        parts.append(f"not {expr}" if c.op == "!=" else expr)
    if allowed is not None:
        parts.append(f"chunk_id in {_ints(sorted(allowed))}")
    if excluded:
        parts.append(f"not (chunk_id in {_ints(sorted(excluded))})")
    return " and ".join(f"({p})" for p in parts)


def exclusion_terms(where: Filter | None) -> list[str]:
    """The facet terms of ``where``'s exclusions (``status!=repealed``: ``status=repealed``)."""
    return [
        f"{c.key}={v}"
        for c in (where.conditions if where else ())
        if c.op == "!=" and c.key not in zfilters.DATE_KEYS
        for v in c.values
    ]


def without_unmatched(where: Filter | None, present: Collection[str]) -> Filter | None:
    """``where`` without the exclusions none of whose terms is in ``present``: as the
    embedded index drops an exclusion no document of the KB has (``status!=repealed``
    in a KB without repealed law), since it cannot exclude anything and Milvus Lite
    evaluates every clause row by row in Python. ``present`` is counted over the label
    scopes the caller may see only: a restricted caller's clause is dropped exactly when
    no visible chunk has the value, which returns the same passages (the hidden ones
    are left out anyway) and says nothing of the hidden ones, in the results or in the
    time the search takes."""
    if where is None:
        return None
    return Filter(
        tuple(
            c
            for c in where.conditions
            if c.op != "!="
            or c.key in zfilters.DATE_KEYS
            or any(f"{c.key}={v}" in present for v in c.values)
        )
    )


def visible_scopes(
    stats: TermStatsRepository, kb_id: int, where: Filter | None
) -> tuple[dict[str, ScopeTotals], list[str] | None]:
    """(every label scope of the KB with its totals, the scopes ``where``'s access scope
    lets through: None for an unrestricted caller). Every caller reads the same rows."""
    guard = access_guard(where)
    scopes = stats.scopes(kb_id)
    return scopes, None if guard is None else [s for s in scopes if scope_visible(s, guard)]


def exclusion_tokens(where: Filter | None) -> list[str]:
    """The ``term_df`` tokens counting the chunks each of ``where``'s exclusions would
    remove (:func:`exclusion_terms` as :func:`~zhiku.storage.termstats.facet_token`)."""
    return [facet_token(t) for t in exclusion_terms(where)]


def without_unmatched_counted(where: Filter | None, dfs: Mapping[str, int]) -> Filter | None:
    """:func:`without_unmatched` judged by facet counts ``dfs`` (a
    :meth:`~zhiku.storage.termstats.TermStatsRepository.doc_freqs` answer holding
    :func:`exclusion_tokens` of ``where``, read over the scopes the caller may see)."""
    present = {t for t in exclusion_terms(where) if dfs.get(facet_token(t))}
    return without_unmatched(where, present)


def collection_base(store: Store, kb: KnowledgeBase) -> str:
    return f"zhiku_{store.db_id[:16]}_kb{kb.id}"


def _add_filter_fields(schema: Any, data_type: Any) -> None:
    schema.add_field("doc_id", data_type.INT64)
    schema.add_field(
        "facet",
        data_type.ARRAY,
        element_type=data_type.VARCHAR,
        max_capacity=MAX_FACETS,
        max_length=FACET_LEN,
    )
    for name in zfilters.DATE_KEYS:
        schema.add_field(name, data_type.INT64, nullable=True)
    schema.add_field("access_class", data_type.VARCHAR, max_length=CLASS_LEN)


class _MilvusIndex:
    """What both Milvus indexes share: the client, the sync-state record, deletes."""

    kind = ""

    def __init__(self, cfg: IndexConfig, home: Path, store: Store, kb: KnowledgeBase) -> None:
        self.cfg = cfg
        self.store = store
        self.kb = kb
        self.client = connect(cfg, home)
        self.name = f"{collection_base(store, kb)}_{self.kind}"
        self._lock = threading.RLock()
        self._ensure_meta_collection()

    # --- sync state ---------------------------------------------------------------

    def _ensure_meta_collection(self) -> None:
        if self.client.has_collection(META_COLLECTION):
            return
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("value", DataType.VARCHAR, max_length=4096)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector
        ip = self.client.prepare_index_params()
        ip.add_index("v", index_type="AUTOINDEX", metric_type="L2")
        self.client.create_collection(META_COLLECTION, schema=schema, index_params=ip)

    def state(self) -> dict[str, Any] | None:
        """This index's recorded sync state, None when never built."""
        rows = self.client.query(
            META_COLLECTION, filter=f"key == {_str(self.name)}", output_fields=["value"]
        )
        if not rows:
            return None
        try:
            value = json.loads(rows[0]["value"])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _set_state(self, value: dict[str, Any]) -> None:
        self.client.upsert(
            META_COLLECTION, [{"key": self.name, "value": json.dumps(value), "v": [0.0, 0.0]}]
        )

    def _drop(self) -> None:
        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)
        self.client.delete(META_COLLECTION, filter=f"key == {_str(self.name)}")

    def destroy(self) -> None:
        with self._lock:
            self._drop()

    def _count(self, expr: str = "") -> int:
        if not self.client.has_collection(self.name):
            return 0
        # Strong: the count is compared with the term statistics, and a server's default
        # (bounded staleness) could miss another node's rows written a moment ago.
        rows = self.client.query(
            self.name, filter=expr, output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def _delete_docs(self, doc_ids: Sequence[int]) -> None:
        for i in range(0, len(doc_ids), BATCH):
            self.client.delete(self.name, filter=f"doc_id in {_ints(doc_ids[i : i + BATCH])}")

    def _delete_chunks(self, chunk_ids: Sequence[int]) -> None:
        for i in range(0, len(chunk_ids), BATCH):
            self.client.delete(self.name, filter=f"chunk_id in {_ints(chunk_ids[i : i + BATCH])}")

    def _search(
        self,
        data: list[Any],
        field: str,
        metric: str,
        k: int,
        expr: str,
        params: dict[str, Any] | None = None,
    ) -> list[tuple[int, float]]:
        if k <= 0 or not self.client.has_collection(self.name):
            return []
        res = self.client.search(
            self.name,
            data=data,
            anns_field=field,
            limit=min(k, MAX_K),
            filter=expr,
            output_fields=["chunk_id"],
            search_params={"metric_type": metric, **(params or {})},
        )
        return [(int(h["chunk_id"]), float(h["distance"])) for h in res[0]] if res else []


class _Writer:
    """Upserts a sync's batches from a thread of its own, one batch in flight: Milvus
    (the BM25 function, a Lite server's own process) works on one batch while the sync
    tokenises the next. Leaving the block waits for the last one (and raises its
    error)."""

    def __init__(self, client: MilvusClient, name: str, progress: ProgressFn | None) -> None:
        self.client, self.name, self.progress = client, name, progress
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhiku-milvus")
        self._pending: tuple[Future[Any], int] | None = None

    def put(self, rows: list[dict[str, Any]]) -> None:
        self.wait()
        self._pending = (self._pool.submit(self.client.upsert, self.name, rows), len(rows))

    def wait(self) -> None:
        if self._pending is not None:
            future, n = self._pending
            self._pending = None
            future.result()
            if self.progress is not None:
                self.progress(n)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)


class _Delta:
    """Differences of a KB's term statistics (see :mod:`zhiku.storage.termstats`),
    gathered while the collection changes and written in batches."""

    def __init__(self) -> None:
        self.df: dict[tuple[str, str], int] = {}
        self.scopes: dict[str, tuple[int, float]] = {}

    def add(
        self, scope: str, tokens: Sequence[str], sign: int = 1, facets: Iterable[str] = ()
    ) -> None:
        """One chunk of ``scope`` with ``tokens`` and filter terms ``facets`` added
        (``sign`` -1: removed); facet counts do not change the scope's totals."""
        df = self.df
        for t in {*tokens, *map(facet_token, facets)}:
            key = (scope, t)
            df[key] = df.get(key, 0) + sign
        n, length = self.scopes.get(scope, (0, 0.0))
        self.scopes[scope] = (n + sign, length + sign * len(tokens))

    def __len__(self) -> int:
        return len(self.df)


class MilvusLexicalIndex(_MilvusIndex):
    """The BM25 index of one KB in Milvus (see the module docstring)."""

    kind = "lex"

    def __init__(self, cfg: IndexConfig, home: Path, store: Store, kb: KnowledgeBase) -> None:
        super().__init__(cfg, home, store, kb)
        self.stats: TermStatsRepository = SqlTermStats(store.database)
        self._sync_lock = sync_lock(cfg.milvus_uri(home), self.name)
        self._open()
        if not self.store.has_pending_index_work(kb.id) and not self._stats_ok(self.state()):
            self.sync()  # repairs the statistics (a sync cut short, another node's crash)

    def _identity(self) -> dict[str, Any]:
        return {"format": LEX_FORMAT, "tokenizer": ztext.TOKENIZER_NAME, "db_id": self.store.db_id}

    def _state_ok(self) -> bool:
        st = self.state()
        if st is None or not self.client.has_collection(self.name):
            return False
        applied = int(st.pop("applied_seq", 0))
        st.pop("stats", None)
        return st == self._identity() and applied <= self.store.index_log_seq()

    def _stats_ok(self, st: dict[str, Any] | None) -> bool:
        """The database's statistics are those of the collection: the generation the
        collection's state names is the database's, and the chunk counts agree."""
        gen = (st or {}).get("stats")
        if not gen or gen != self.stats.generation(self.kb.id):
            return False
        return sum(n for n, _ in self.stats.scopes(self.kb.id).values()) == self._count()

    def _open(self, force: bool = False) -> None:
        with self._lock:
            if not force and self._state_ok():
                return
            self._drop()
            self._create()
            queue_all(self.store, self.kb.id)
            self._set_state({**self._identity(), "applied_seq": 0, "stats": None})

    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("chunk_id", DataType.INT64, is_primary=True)
        _add_filter_fields(schema, DataType)
        schema.add_field("scope", DataType.VARCHAR, max_length=MAX_TOKENS_BYTES)
        schema.add_field(
            "tokens",
            DataType.VARCHAR,
            max_length=MAX_TOKENS_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        # The same tokens, each prefixed by its document's access class: what a caller
        # with an access scope searches (see the module docstring).
        schema.add_field(
            "scoped_tokens",
            DataType.VARCHAR,
            max_length=MAX_TOKENS_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        ip = self.client.prepare_index_params()
        for text, sparse in (("tokens", "sparse"), ("scoped_tokens", "scoped_sparse")):
            schema.add_field(sparse, DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name=f"bm25_{text}",
                    function_type=FunctionType.BM25,
                    input_field_names=[text],
                    output_field_names=[sparse],
                )
            )
            ip.add_index(
                sparse,
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
            )
        self.client.create_collection(self.name, schema=schema, index_params=ip)

    def rebuild(self, progress: ProgressFn | None = None) -> int:
        with self._lock:
            self._open(force=True)
            return self.sync(progress)

    def close(self) -> None:
        """Nothing to release: the client is shared (:func:`close_all`)."""

    def _flush(self, delta: _Delta, generation: str | None = None) -> _Delta:
        self.stats.apply(self.kb.id, delta.df, delta.scopes, generation)
        return _Delta()

    def _old_rows(self, doc_ids: Sequence[int], delta: _Delta) -> None:
        """Subtract what the collection holds for ``doc_ids`` (before they are replaced).
        A query returns at most ``MAX_K`` rows: a full batch is asked again in halves,
        and one document with more chunks than that is read with an iterator."""
        for i in range(0, len(doc_ids), BATCH):
            self._old_rows_of(list(doc_ids[i : i + BATCH]), delta)

    def _old_rows_of(self, ids: list[int], delta: _Delta) -> None:
        expr = f"doc_id in {_ints(ids)}"
        fields = ["scope", "tokens", "facet"]
        rows = self.client.query(
            self.name, filter=expr, output_fields=fields, limit=MAX_K, consistency_level="Strong"
        )
        if len(rows) >= MAX_K:
            if len(ids) > 1:
                half = len(ids) // 2
                self._old_rows_of(ids[:half], delta)
                self._old_rows_of(ids[half:], delta)
                return
            it = self.client.query_iterator(
                self.name, batch_size=BATCH, filter=expr, output_fields=fields
            )
            rows = []
            try:
                while part := it.next():
                    rows.extend(part)
            finally:
                it.close()
        for r in rows:
            words = str(r["tokens"] or "").split()
            facets = [str(f) for f in r.get("facet") or ()]
            delta.add(str(r["scope"]), [decode_token(w) for w in words], -1, facets)

    def sync(self, progress: ProgressFn | None = None, keep_writer: bool = False) -> int:
        """Apply the store's queued document changes (``keep_writer`` is for the
        embedded index's batches and means nothing here), and the differences of the
        term statistics with them; statistics found inconsistent are rebuilt from the
        chunks."""
        with self._lock, self._sync_lock:  # always in this order
            if not self._state_ok():
                self._open(force=True)
            st = self.state() or {}
            rows_before = self._count()
            track = self._stats_ok(st)
            if not track and rows_before == 0:
                self.stats.clear(self.kb.id)  # an empty collection: empty statistics
                track = True
            upto, doc_ids = self.store.pending_index_work(self.kb.id)
            if not doc_ids:
                if not track:
                    self._set_state({**st, "stats": self._rebuild_stats()})
                return 0
            # Marked out of date while the collection changes: a crash before the end
            # leaves the statistics to be rebuilt, never silently wrong.
            self._set_state({**st, "stats": None})
            delta = _Delta()
            if track and rows_before:
                self._old_rows(doc_ids, delta)
            self._delete_docs(doc_ids)
            batch: list[dict[str, Any]] = []
            meta_of: dict[int, dict[str, Any]] = {}
            with _Writer(self.client, self.name, progress) as writer:
                for row in self.store.chunks_of(doc_ids):
                    meta = _meta_of(row)
                    fields = _filter_fields(meta, row)
                    meta_of[int(row["doc_id"])] = fields
                    scope = scope_key(meta)
                    words, kept = indexed_tokens(row)  # the one tokenisation of the chunk
                    if track:
                        delta.add(scope, kept, facets=fields["facet"])
                        if len(delta) >= DELTA_FLUSH:
                            delta = self._flush(delta)
                    batch.append(
                        {
                            "chunk_id": int(row["id"]),
                            "doc_id": int(row["doc_id"]),
                            "scope": scope,
                            "tokens": words,
                            "scoped_tokens": scoped_words(fields["access_class"], words),
                            **fields,
                        }
                    )
                    if len(batch) >= BATCH:
                        writer.put(batch)
                        batch = []
                if batch:
                    writer.put(batch)
            self.client.flush(self.name)
            _refresh_vector_filters(
                self.client,
                f"{collection_base(self.store, self.kb)}_{MilvusVectorIndex.kind}",
                meta_of,
            )
            gen: str | None = uuid.uuid4().hex
            with self.store.tx(immediate=True):
                if track:
                    self._flush(delta, gen)
                self.store.clear_index_work(self.kb.id, upto)
            if not track:
                gen = self._rebuild_stats()
            self._set_state({**self._identity(), "applied_seq": upto, "stats": gen})
            return len(doc_ids)

    def _rebuild_stats(self) -> str:
        """Count the statistics again from the store's chunks (which the collection
        holds once the queue is applied); returns the new generation."""
        log.warning("milvus: term statistics of KB %s rebuilt from its chunks", self.kb.name)
        self.stats.clear(self.kb.id)
        delta = _Delta()
        for row in self.store.chunks_of(self.store.kb_doc_ids(self.kb.id)):
            facets = filter_fields(row)["facet"]
            delta.add(scope_key(_meta_of(row)), indexed_tokens(row)[1], facets=facets)
            if len(delta) >= DELTA_FLUSH:
                delta = self._flush(delta)
        gen = uuid.uuid4().hex
        self._flush(delta, gen)
        return gen

    def _fresh(self) -> None:
        if self.store.has_pending_index_work(self.kb.id):
            self.sync()

    def _visible(self, where: Filter | None) -> tuple[list[str] | None, int, float]:
        """(the label scopes ``where``'s access scope lets through, None for all; their
        chunk count; their total length). Every caller reads the same rows."""
        scopes, vis = visible_scopes(self.stats, self.kb.id, where)
        totals = [scopes[s] for s in (scopes if vis is None else vis)]
        return vis, sum(n for n, _ in totals), sum(ln for _, ln in totals)

    def search(
        self,
        tokens: Sequence[str],
        k: int = 10,
        where: Filter | None = None,
        allowed: Collection[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Candidates from Milvus' BM25, re-scored with the statistics of the database
        (those of the visible documents for a caller with an access scope): the same
        scores as tantivy's on the same chunks, whatever Milvus' segments hold.

        A caller with an access scope searches ``scoped_sparse`` with the tokens of
        the classes its scope may see only ("class|token" words): Milvus never reads
        a posting of a hidden class, and no expression over hidden rows is evaluated."""
        if not tokens or k <= 0 or (allowed is not None and not allowed):
            return []
        with self._lock:
            self._fresh()
            vis, docs, length = self._visible(where)
            dfs = self.stats.doc_freqs(self.kb.id, [*tokens, *exclusion_tokens(where)], vis)
            where = without_unmatched_counted(where, dfs)
            terms = [t for t in tokens if dfs.get(t)]
            if docs >= PRUNE_MIN_DOCS:
                limit = PRUNE_UNIGRAM_DF * docs
                terms = [t for t in terms if len(t) > 1 or t.isascii() or dfs[t] <= limit] or terms
            if not terms:
                return []
            words = [encode_token(t) for t in dict.fromkeys(terms)]
            classes: set[str] | None = None
            if vis is None:
                field, text = "sparse", " ".join(words)
            else:
                classes = scope_classes(vis)
                prefixes = [class_prefix(c) for c in sorted(classes)]
                field, text = "scoped_sparse", " ".join(p + w for w in words for p in prefixes)
            depth = min(k + RESCORE_EXTRA, MAX_K)
            res = self.client.search(
                self.name,
                data=[text],
                anns_field=field,
                limit=depth,
                filter=filter_expr(where, allowed),
                output_fields=["chunk_id", "tokens", "access_class"],
                search_params={"metric_type": "BM25"},
            )
        n = max(docs, 1)
        avgdl = length / docs if docs else 1.0
        weights = [(encode_token(t), (1 + BM25_K1) * _idf(dfs[t], n)) for t in terms]
        out = []
        for h in res[0] if res else []:
            ent = h.get("entity") or h
            if classes is not None and ent.get("access_class") not in classes:
                # Only a hash collision of two words in Milvus' sparse vectors brings
                # a row of another class: never returned.
                continue
            counts = Counter(str(ent["tokens"] or "").split())
            norm = BM25_K1 * (1 - BM25_B + BM25_B * field_norm(sum(counts.values())) / avgdl)
            score = 0.0
            for word, w in weights:
                tf = counts.get(word, 0)
                if tf:
                    score += w * tf / (tf + norm)
            out.append((int(ent["chunk_id"]), score))
        out.sort(key=lambda x: (-x[1], x[0]))
        return out[:k]

    def term_stats(
        self, tokens: Sequence[str], where: Filter | None = None
    ) -> dict[str, tuple[int, float]]:
        """(df, idf) per token from the database's statistics (one query, whatever the
        number of tokens); with an access scope in ``where``, over the documents it
        lets through."""
        with self._lock:
            self._fresh()
            vis, docs, _ = self._visible(where)
            dfs = self.stats.doc_freqs(self.kb.id, tokens, vis)
        n = max(docs, 1)
        return {t: (df, _idf(df, n)) for t, df in dfs.items()}

    def num_docs(self) -> int:
        with self._lock:
            self._fresh()
            return self._count()


def _refresh_vector_filters(
    client: MilvusClient, vec: str, fields_of: Mapping[int, dict[str, Any]]
) -> None:
    """A document's metadata changed without new chunks: its vector rows keep their ids
    (the vector sync adds no row), so their filter fields are rewritten here, by
    whichever of the two indexes sees the queued change first."""
    if not fields_of or not client.has_collection(vec):
        return
    ids = sorted(fields_of)
    for i in range(0, len(ids), BATCH):
        rows = client.query(
            vec,
            filter=f"doc_id in {_ints(ids[i : i + BATCH])}",
            output_fields=[
                "chunk_id",
                "doc_id",
                "vector",
                "facet",
                *zfilters.DATE_KEYS,
                "access_class",
            ],
        )
        changed = []
        for r in rows:
            new = fields_of[int(r["doc_id"])]
            if any(
                list(r.get(k) or []) != list(new.get(k) or [])
                if k == "facet"
                else r.get(k) != new.get(k)
                for k in new
            ):
                changed.append(
                    {
                        "chunk_id": int(r["chunk_id"]),
                        "doc_id": int(r["doc_id"]),
                        "vector": [float(x) for x in r["vector"]],
                        **new,
                    }
                )
        if changed:
            client.upsert(vec, changed)


class MilvusVectorIndex(_MilvusIndex):
    """The dense index of one KB in Milvus (see the module docstring)."""

    kind = "vec"

    def __init__(self, cfg: IndexConfig, home: Path, store: Store, kb: KnowledgeBase) -> None:
        super().__init__(cfg, home, store, kb)
        self.cache = EmbeddingCache(store)

    def _create(self, dim: int) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("chunk_id", DataType.INT64, is_primary=True)
        _add_filter_fields(schema, DataType)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip = self.client.prepare_index_params()
        # FLAT: an exact scan, as the embedded matrix (AUTOINDEX would be approximate HNSW).
        ip.add_index("vector", index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.name, schema=schema, index_params=ip)

    def _valid_state(self) -> dict[str, Any] | None:
        st = self.state()
        if (
            st is None
            or st.get("format") != VEC_FORMAT
            or st.get("db_id") != self.store.db_id
            or int(st.get("seq", 0)) > self.store.index_log_seq()
            or not self.client.has_collection(self.name)
        ):
            return None
        return st

    def model(self) -> str | None:
        st = self._valid_state()
        return None if st is None else str(st["model"])

    def is_current(self, embedder: Embedder) -> bool:
        st = self._valid_state()
        return (
            st is not None
            and st["model"] == embedder.model_id
            and int(st["seq"]) == self.store.index_log_seq()
        )

    def live_rows(self) -> int:
        return self._count()

    def meta(self) -> dict[str, Any] | None:
        """What ``zhiku models status`` shows, in the embedded matrix's terms."""
        st = self._valid_state()
        if st is None:
            return None
        return {"model": st["model"], "dim": st["dim"], "rows": self._count(), "dead": 0}

    def _indexed_ids(self, upto: int) -> np.ndarray:
        """The chunk ids the collection holds, read in windows of ids (a query returns
        at most ``MAX_K`` rows; ids are unique, so a window of that width fits)."""
        ids: list[int] = []
        lo = 0
        while True:
            hi = lo + MAX_K
            expr = f"chunk_id >= {lo}" + (f" and chunk_id < {hi}" if lo <= upto else "")
            rows = self.client.query(
                self.name, filter=expr, output_fields=["chunk_id"], limit=MAX_K
            )
            ids.extend(int(r["chunk_id"]) for r in rows)
            if lo > upto:
                if len(rows) < MAX_K:
                    break
                lo = max(int(r["chunk_id"]) for r in rows) + 1
                continue
            lo = hi
        return np.array(sorted(set(ids)), dtype=np.int64)

    def sync(
        self,
        embedder: Embedder,
        progress: ProgressFn | None = None,
        *,
        wait: bool = True,
        max_embed: int | None = None,
        rebuild: bool = False,
        on_total: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """As :meth:`zhiku.vectors.VectorIndex.sync` (``wait`` means nothing here:
        Milvus takes concurrent writes)."""
        with self._lock:
            report = SyncReport()
            seq = self.store.index_log_seq()
            st = self._valid_state()
            if rebuild or st is None or st["model"] != embedder.model_id:
                st = None
                report.rebuilt = True
            elif int(st["seq"]) == seq:
                return report
            live = store_chunks(self.store, self.kb.id)
            top = int(live[:, 0].max()) if live.size else 0
            have = np.zeros(0, dtype=np.int64) if st is None else self._indexed_ids(top)
            add_ids = np.setdiff1d(live[:, 0], have, assume_unique=True)
            del_ids = np.setdiff1d(have, live[:, 0], assume_unique=True)
            want = set(add_ids.tolist())
            doc_ids = sorted({int(d) for c, d in live.tolist() if c in want})
            rows = [r for r in self.store.chunks_of(doc_ids) if int(r["id"]) in want]
            texts = [embed_text(r) for r in rows]
            if on_total is not None:
                hashes = [text_hash(embedder.document_prefix + t) for t in texts]
                cached = self.cache.get_many(embedder.model_id, hashes)
                on_total(len({h for h in hashes if h not in cached}))
            vecs, computed = embed_with_cache(embedder, self.cache, texts, progress, max_embed)
            report.embedded, report.added, report.deleted = computed, len(rows), int(del_ids.size)
            dim = int(vecs.shape[1]) if vecs.size else int(st["dim"]) if st else 0
            if st is None:
                self._drop()
                if dim:
                    self._create(dim)
            elif dim != int(st["dim"]):
                from zhiku.backends.base import ModelBadResponse

                raise ModelBadResponse("嵌入向量維度與既有索引不同", embedder.model_id)
            if del_ids.size:
                self._delete_chunks(del_ids.tolist())
            if st is not None:
                _, pending = self.store.pending_index_work(self.kb.id)
                _refresh_vector_filters(
                    self.client,
                    self.name,
                    {int(r["doc_id"]): filter_fields(r) for r in self.store.chunks_of(pending)},
                )
            for i in range(0, len(rows), BATCH):
                self.client.upsert(
                    self.name,
                    [
                        {
                            "chunk_id": int(r["id"]),
                            "doc_id": int(r["doc_id"]),
                            "vector": v.tolist(),
                            **filter_fields(r),
                        }
                        for r, v in zip(rows[i : i + BATCH], vecs[i : i + BATCH], strict=True)
                    ],
                )
            if dim:
                self.client.flush(self.name)
                self._set_state(
                    {
                        "format": VEC_FORMAT,
                        "model": embedder.model_id,
                        "dim": dim,
                        "seq": seq,
                        "db_id": self.store.db_id,
                    }
                )
            return report

    def _facets_current(self, stats: TermStatsRepository) -> bool:
        """Whether the facet counts of the term statistics describe what the collection
        may return: the lexical sync that keeps them (and the rows' filter fields) has
        applied every queued change, and no rebuild of them is under way. Otherwise
        every exclusion is sent, as before."""
        return (
            not self.store.has_pending_index_work(self.kb.id)
            and stats.generation(self.kb.id) is not None
        )

    def search(
        self,
        query_vec: np.ndarray,
        k: int = 10,
        *,
        allowed: Collection[int] | None = None,
        excluded: Collection[int] | None = None,
        where: Filter | None = None,
    ) -> list[tuple[int, float]]:
        if allowed is not None and not allowed:
            return []
        st = self._valid_state()
        if st is None:
            return []
        q = np.asarray(query_vec, dtype=np.float32).reshape(-1)
        if q.shape[0] != int(st["dim"]):
            from zhiku.backends.base import ModelBadResponse

            raise ModelBadResponse(f"查詢向量維度 {q.shape[0]} 與索引 {st['dim']} 不同", "embed")
        stats = SqlTermStats(self.store.database)
        vis = None if access_guard(where) is None else visible_scopes(stats, self.kb.id, where)[1]
        if exclusion_terms(where) and self._facets_current(stats):
            # As the lexical search: an exclusion no chunk the caller may see matches
            # cannot exclude anything, and Milvus Lite tests every row against it.
            where = without_unmatched_counted(
                where, stats.doc_freqs(self.kb.id, exclusion_tokens(where), vis)
            )
        expr = filter_expr(where, allowed, excluded)
        if vis is not None:
            # The rows of the classes the scope may see (the database's record of the
            # KB's label scopes): a scalar test of every row, whatever it holds.
            classes = scope_classes(vis)
            if not classes:
                return []
            expr = f"({expr}) and ({class_expr(classes)})" if expr else class_expr(classes)
        with self._lock:
            return self._search([q.tolist()], "vector", "IP", k, expr)


def drop_kb(cfg: IndexConfig, home: Path, store: Store, kb: KnowledgeBase) -> None:
    """Drop both collections of a KB being deleted, and their sync state."""
    client = connect(cfg, home)
    base = collection_base(store, kb)
    for kind in (MilvusLexicalIndex.kind, MilvusVectorIndex.kind):
        name = f"{base}_{kind}"
        if client.has_collection(name):
            client.drop_collection(name)
        if client.has_collection(META_COLLECTION):
            client.delete(META_COLLECTION, filter=f"key == {_str(name)}")
