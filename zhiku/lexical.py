"""Lexical index: one tantivy index per knowledge base, beside the SQLite database.

Chosen by measurement (bench/RESULTS.md): at 219k passages tantivy answers an OR query
of character unigrams and bigrams in ~2 ms, supports incremental deletes and adds, and
stays small in memory; SQLite FTS5 OR-queries took 40–200 ms and bm25s needs a full
rebuild per change and several GB of RAM.

Text is tokenised in Python by :mod:`zhiku.text` (so folding and tokenisation are the
same code for indexing and querying) and handed to tantivy as whitespace-separated
tokens. One index per KB means BM25 statistics never mix knowledge bases: scores of
one KB reveal nothing about another's contents.

Document metadata for filters (:mod:`zhiku.filters`) is indexed beside the text: a
``facet`` field of raw ``key=value`` terms and integer ``effective`` / ``amended`` date
fields (``YYYYMMDD``), so a filter is a clause of the same tantivy query; filter clauses
score zero and never change the BM25 ranking of what they let through.

The index is derived data. It records the tokenizer it was built with; a mismatch or a
missing directory triggers a rebuild from the database, and pending rows of the
store's ``index_log`` are replayed (idempotently) before every search.

A caller restricted by an access scope (:mod:`zhiku.access`) is answered from the
documents that scope lets through only, as if the index held nothing else — in what it
reads, not only in what it returns. Each passage's tokens are indexed a second time in
the ``scoped`` field, prefixed by its document's access class
(:func:`zhiku.access.label_class`: documents with the same labels share one), and the
KB's classes with their labels are recorded in the database at each sync. A scoped
search picks the classes its scope may see and queries, counts and re-scores only the
``class|token`` terms of those: the postings of a hidden document are never read, so a
query whose terms occur only in hidden documents costs what one whose terms occur
nowhere costs (tests/test_access_timing.py), and the statistics are those of the visible
set: document frequencies (one count per query term over the visible classes), document
count and average length (the ``body_len`` fast field, summed over the visible classes).
The query is boosted per term by visible/own idf to fetch candidates, and the candidates
are re-scored with BM25 over the visible statistics (term frequency and tantivy's field
norm read from :meth:`tantivy.Query.explain`). Every scoped call takes this path,
whether or not its scope hides anything here; unscoped calls (the operator) read the
plain ``body`` field and do not pay for it.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import math
import shutil
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

import tantivy

from zhiku import access as zaccess
from zhiku import filters as zfilters
from zhiku import text as ztext
from zhiku.filters import Filter
from zhiku.store import KnowledgeBase, Store

INDEX_FORMAT = 5
WRITER_HEAP = 256 * 1024 * 1024
# On large KBs, query unigrams found in more than this share of passages are dropped:
# they are this KB's stop characters (的, 之, 法…). At 219k passages this cut p50 from
# 2.1 to 1.1 ms for a 0.06-point loss of Recall@1 (bench/RESULTS.md).
PRUNE_UNIGRAM_DF = 0.2
PRUNE_MIN_DOCS = 10_000
# tantivy's BM25 parameters (tantivy/src/query/bm25.rs).
BM25_K1 = 1.2
BM25_B = 0.75
# A scoped search re-scores this many candidates beyond k (the visible set's average
# length changes scores slightly, so the visible top-k may sit a little deeper).
RESCORE_EXTRA = 20
# The facet term naming a passage's access class (zhiku.access.label_class).
CLASS_FACET = "access_class"

ProgressFn = Callable[[int], None]


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("chunk_id", stored=True, indexed=True, fast=True)
    sb.add_integer_field("doc_id", stored=False, indexed=True, fast=False)
    # Title and heading path are indexed with the text: at 219k passages this beat a
    # separate boosted field (R@1 .914 vs .903).
    sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
    # The body's tokens again, each prefixed by the access class of its document
    # ("3f2a…|token"): what a scoped search reads (see the module docstring).
    sb.add_text_field("scoped", stored=False, tokenizer_name="whitespace", index_option="freq")
    # The body's token count: the average length of the documents a scope lets through.
    sb.add_integer_field("body_len", stored=False, indexed=False, fast=True)
    # Filters (zhiku.filters): "dept=hr", "tag=…", "status=repealed"…; dates as YYYYMMDD.
    sb.add_text_field("facet", stored=False, tokenizer_name="raw", index_option="basic")
    for name in zfilters.DATE_KEYS:
        sb.add_integer_field(name, stored=False, indexed=True, fast=True)
    return sb.build()


def _facet_fields(row: sqlite3.Row) -> dict[str, object]:
    """The filter fields of a chunk's tantivy document, from its document's meta."""
    meta = _meta(row)
    out: dict[str, object] = {}
    terms = zfilters.facet_terms(meta, str(row["kind"] or ""))
    terms.append(f"{CLASS_FACET}={zaccess.label_class(meta)[0]}")
    out["facet"] = terms
    out.update(zfilters.date_values(meta))
    return out


def _meta(row: sqlite3.Row) -> dict[str, object]:
    raw = row["meta"]
    try:
        meta = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        meta = {}
    return meta if isinstance(meta, dict) else {}


Clause = tuple[tantivy.Occur, tantivy.Query]


def filter_clauses(schema: tantivy.Schema, flt: Filter) -> list[Clause]:
    """The boolean clauses of ``flt`` (constant score 0: they select, never rank)."""
    out: list[Clause] = []
    for c in flt.conditions:
        if c.key in (zaccess.GROUP_COND, zaccess.LEVEL_COND):
            out.extend(access_clauses(schema, c))
            continue
        if c.key in zfilters.DATE_KEYS:
            v = zfilters.date_int(c.values[0])
            lo = v if c.op in (">", ">=", "=") else None
            hi = v if c.op in ("<", "<=", "=") else None
            # The inverted index, not the fast field: 17 vs 22 ms p50 at 219k passages.
            q = tantivy.Query.range_query(
                schema,
                c.key,
                tantivy.FieldType.Integer,
                lo,
                hi,
                include_lower=c.op != ">" or lo is None,
                include_upper=c.op != "<" or hi is None,
                use_inverted_index=True,
            )
        else:
            terms = [tantivy.Query.term_query(schema, "facet", f"{c.key}={v}") for v in c.values]
            q = (
                terms[0]
                if len(terms) == 1
                else tantivy.Query.boolean_query([(tantivy.Occur.Should, t) for t in terms])
            )
        occur = tantivy.Occur.MustNot if c.op == "!=" else tantivy.Occur.Must
        out.append((occur, tantivy.Query.const_score_query(q, 0.0)))
    return out


def access_clauses(schema: tantivy.Schema, c: zfilters.Condition) -> list[Clause]:
    """A caller's access scope (:mod:`zhiku.access`) as exclusions: documents restricted
    to groups none of which is the caller's, and documents above the caller's clearance.
    (Exclusions, so that an index written before labels existed still matches: its
    documents carry no label terms and no labels.) The shape of these clauses depends
    on the caller's scope only, never on which labels the index holds: pruning absent
    label terms would make a KB without hidden documents answer measurably faster."""

    def term(value: str) -> tantivy.Query:
        return tantivy.Query.term_query(schema, "facet", value)

    if c.key == zaccess.GROUP_COND:
        foreign = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, term(f"{zaccess.GROUP_COND}:restricted")),
                *[(tantivy.Occur.MustNot, term(f"{zaccess.GROUP_COND}={g}")) for g in c.values],
            ]
        )
        return [(tantivy.Occur.MustNot, foreign)]
    above = range(int(c.values[0]) + 1, zaccess.MAX_LEVELS)
    if not above:
        return []
    return [
        (
            tantivy.Occur.MustNot,
            tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, term(f"{zaccess.LEVEL_COND}={n}")) for n in above]
            ),
        )
    ]


def index_text(row: Mapping[str, str | None] | sqlite3.Row) -> str:
    """What the index sees of a chunk: title, heading path, then the text."""
    return f"{row['title']}\n{row['section'] or ''}\n{row['text']}"


def queue_all(store: Store, kb_id: int) -> None:
    """Queue every document of the KB for (re)indexing, replacing the queue."""
    store.requeue_all(kb_id)


def _idf(df: int, n: int) -> float:
    """BM25's idf as tantivy computes it."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents match ``query`` (the stubs do not declare ``count``)."""
    found: int | None = getattr(searcher.search(query, limit=1, count=True), "count", None)
    return int(found or 0)


def _norm_table() -> list[int]:
    """tantivy's field-norm code table (tantivy/src/fieldnorm/code.rs): lengths 0–40
    exactly, then eight steps per doubling of the step."""
    table, step = list(range(41)), 2
    while len(table) < 256:
        for _ in range(8):
            if len(table) < 256:
                table.append(table[-1] + step)
        step *= 2
    return table


_NORMS = _norm_table()


def field_norm(length: int) -> int:
    """The length tantivy's BM25 uses for a field of ``length`` tokens (stored in one
    byte: the largest code not above it)."""
    return _NORMS[bisect.bisect_right(_NORMS, length) - 1]


def _tf_norm(length: float, avgdl: float) -> float:
    return BM25_K1 * (1 - BM25_B + BM25_B * length / avgdl)


class _VisibleSet:
    """The documents one access scope lets through, in one searcher generation: the
    access classes they belong to, their count and total length, and the BM25
    statistics of a query over them alone. Reads only the terms of those classes."""

    def __init__(
        self, schema: tantivy.Schema, classes: Sequence[str], docs: int, length: float
    ) -> None:
        self.schema, self.classes, self.docs = schema, tuple(classes), docs
        self.avgdl = length / docs if docs else 1.0

    def terms(self, searcher: tantivy.Searcher, token: str) -> list[str]:
        """The ``class|token`` terms of the visible classes that some passage has."""
        out = []
        for c in self.classes:
            term = f"{c}|{token}"
            if searcher.doc_freq("scoped", term):
                out.append(term)
        return out

    def query(self, terms: Sequence[str]) -> tantivy.Query:
        should = tantivy.Occur.Should
        return tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self.schema, "scoped", t)) for t in terms]
        )

    def term_stats(
        self, searcher: tantivy.Searcher, tokens: Sequence[str]
    ) -> dict[str, tuple[int, float]]:
        """(visible document frequency, idf over the visible documents) of each token:
        live passages counted over the visible classes' terms only."""
        out: dict[str, tuple[int, float]] = {}
        n = max(self.docs, 1)
        for t in tokens:
            if t in out:
                continue
            terms = self.terms(searcher, t)
            df = _count(searcher, self.query(terms)) if terms else 0
            out[t] = (df, _idf(df, n))
        return out

    def rescore(
        self,
        searcher: tantivy.Searcher,
        base: tuple[int, float],
        hits: Sequence[tuple[float, tantivy.DocAddress]],
        ids: Sequence[int],
        stats: Mapping[str, tuple[int, float]],
    ) -> list[tuple[int, float]]:
        """BM25 of each hit over the visible statistics, best first (ties: lower id).

        Each ``class|term``'s own tantivy score of each hit (one query per term, over the
        hits only) gives its term frequency back, given tantivy's document count and
        average length (``base``) and the hit's field norm (from ``body_len``); a hit
        belongs to one class, so each of its terms is counted once."""
        total, avgdl_all = base
        k1 = BM25_K1
        addrs = [a for _, a in hits]
        norms = [field_norm(int(x or 0)) for x in searcher.fast_field_values("body_len", addrs)]
        slot = {(a.segment_ord, a.doc): i for i, a in enumerate(addrs)}
        c_all = [_tf_norm(x, avgdl_all) for x in norms]
        c_vis = [_tf_norm(x, self.avgdl) for x in norms]
        scores = [0.0] * len(addrs)
        # A disjunction of term queries: 5x faster than a term_set_query on 25 ids.
        among = tantivy.Query.const_score_query(
            tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "chunk_id", c))
                    for c in sorted(set(ids))
                ]
            ),
            0.0,
        )
        must = tantivy.Occur.Must
        for t, (df, idf) in stats.items():
            if not df:
                continue
            weight = (1 + k1) * idf
            for term in self.terms(searcher, t):
                weight_all = (1 + k1) * _idf(searcher.doc_freq("scoped", term), total)
                q = tantivy.Query.boolean_query(
                    [(must, tantivy.Query.term_query(self.schema, "scoped", term)), (must, among)]
                )
                for score, addr in searcher.search(q, limit=len(addrs), count=False).hits:
                    i = slot.get((addr.segment_ord, addr.doc))
                    if i is None:
                        continue
                    r = min(score / weight_all, 1 - 1e-9)
                    tf = max(1, round(r * c_all[i] / (1 - r)))
                    scores[i] += weight * tf / (tf + c_vis[i])
        out = [(int(cid), sc) for cid, sc in zip(ids, scores, strict=True)]
        out.sort(key=lambda x: (-x[1], x[0]))
        return out


class IndexBusy(Exception):
    """Another process holds this index's writer lock; the work stays queued."""


class LexicalIndex:
    """The BM25 index of one knowledge base."""

    def __init__(self, root: Path, store: Store, kb: KnowledgeBase) -> None:
        self.dir = root / f"kb-{kb.id}"
        self.store = store
        self.kb = kb
        self._lock = threading.RLock()
        self._writer: tantivy.IndexWriter | None = None
        self._gen_seen: str | None = None
        self._visible_cache: dict[tuple[str | None, tuple[object, ...]], _VisibleSet] = {}
        self._global_cache: tuple[str | None, int, float] | None = None
        # Access class id → (groups, level) of every class this KB's index has held.
        self._classes: dict[str, tuple[tuple[str, ...], int]] = {}
        self._classes_gen: str | None = None
        self.schema = _schema()
        self._open()

    # --- lifecycle ------------------------------------------------------------------

    @property
    def _marker(self) -> Path:
        return self.dir / "zhiku-index.json"

    def _identity(self) -> dict[str, object]:
        return {
            "format": INDEX_FORMAT,
            "tokenizer": ztext.TOKENIZER_NAME,
            "db_id": self.store.db_id,
        }

    def _marker_ok(self) -> bool:
        """The index on disk was built by this code from this database, and the database
        has not gone back in time since (a restored backup reuses chunk ids)."""
        try:
            info = json.loads(self._marker.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(info, dict):
            return False
        applied = info.pop("applied_seq", 0)
        return info == self._identity() and int(applied) <= self.store.index_log_seq()

    @classmethod
    def discard_if_stale(cls, root: Path, store: Store, kb: KnowledgeBase) -> bool:
        """Delete this KB's index if it does not belong to the database as it is now.

        Called when the engine opens, before anything writes: once a restored database
        has written again, its change counter may have caught up with the stale index.
        """
        probe = cls.__new__(cls)
        probe.dir, probe.store, probe.kb = root / f"kb-{kb.id}", store, kb
        if not probe.dir.exists():
            return False
        with probe._dir_lock():
            if probe.dir.exists() and not probe._marker_ok():
                shutil.rmtree(probe.dir)
                return True
        return False

    def _write_marker(self, applied_seq: int) -> None:
        tmp = self._marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self._identity(), "applied_seq": applied_seq}), "utf-8")
        tmp.replace(self._marker)

    @contextlib.contextmanager
    def _dir_lock(self) -> Iterator[None]:
        """Serialises creating, deleting and rebuilding this index across processes."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dir.parent / f"kb-{self.kb.id}.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _open(self, force: bool = False) -> None:
        with self._dir_lock():
            # Checked under the lock: another process may have just rebuilt it.
            fresh = force or not self._marker_ok()
            if fresh and self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(self.dir), reuse=True)
            if fresh:
                # Everything in the database must be (re)indexed.
                self._queue_all()
                self._write_marker(0)

    def _queue_all(self) -> None:
        queue_all(self.store, self.kb.id)

    def rebuild(self, progress: ProgressFn | None = None) -> int:
        """Drop the index and rebuild it from the database."""
        with self._lock:
            self.close()
            self._open(force=True)
            return self.sync(progress)

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.rollback()
                self._writer.wait_merging_threads()
                self._writer = None

    # --- writing --------------------------------------------------------------------

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
            except ValueError as exc:  # LockBusy from another process
                raise IndexBusy(str(exc)) from exc
        return self._writer

    def sync(self, progress: ProgressFn | None = None, keep_writer: bool = False) -> int:
        """Apply queued document changes; returns how many documents were re-indexed."""
        with self._lock:
            upto, doc_ids = self.store.pending_index_work(self.kb.id)
            if not doc_ids:
                return 0
            writer = self._get_writer()
            for doc_id in doc_ids:
                writer.delete_documents_by_term("doc_id", doc_id)
            done = 0
            classes: dict[str, list[object]] = {}
            for row in self.store.chunks_of(doc_ids):
                tokens = ztext.tokenize(index_text(row))
                cls, groups, level = zaccess.label_class(_meta(row))
                classes[cls] = [groups, level]
                writer.add_document(
                    tantivy.Document(
                        chunk_id=int(row["id"]),
                        doc_id=int(row["doc_id"]),
                        body=" ".join(tokens),
                        scoped=" ".join(f"{cls}|{t}" for t in tokens),
                        body_len=len(tokens),
                        **_facet_fields(row),
                    )
                )
                done += 1
                if progress is not None and done % 1000 == 0:
                    progress(1000)
            writer.commit()
            self._write_marker(upto)
            with self.store.tx(immediate=True):
                self.store.clear_index_work(self.kb.id, upto)
                known = self._read_classes()
                if any(c not in known for c in classes):
                    merged = {c: [list(g), lv] for c, (g, lv) in known.items()} | classes
                    self.store.set_meta(self._classes_key, json.dumps(merged, ensure_ascii=False))
                gen = int(self.store.get_meta(self._gen_key, "0") or 0) + 1
                self.store.set_meta(self._gen_key, str(gen))
            if not keep_writer:
                writer.wait_merging_threads()
                self._writer = None
            self.index.reload()
            self._gen_seen = str(gen)
            if progress is not None:
                progress(done % 1000)
            return len(doc_ids)

    @property
    def _gen_key(self) -> str:
        return f"index_gen:{self.kb.id}"

    @property
    def _classes_key(self) -> str:
        return f"index_classes:{self.kb.id}"

    def _read_classes(self) -> dict[str, tuple[tuple[str, ...], int]]:
        """The access classes recorded for this KB (only ever added to: a class no
        passage has any more costs a few missed term lookups)."""
        try:
            raw = json.loads(self.store.get_meta(self._classes_key, "{}") or "{}")
        except ValueError:
            raw = {}
        out: dict[str, tuple[tuple[str, ...], int]] = {}
        for cid, value in raw.items() if isinstance(raw, dict) else ():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                out[str(cid)] = (tuple(str(g) for g in value[0] or ()), int(value[1]))
        return out

    def _visible_classes(self, guard: Filter) -> list[str]:
        """The access classes ``guard``'s scope may see (fail closed: a class not
        recorded is never read)."""
        if self._classes_gen != self._gen_seen:
            self._classes = self._read_classes()
            self._classes_gen = self._gen_seen
        return sorted(
            c
            for c, (groups, level) in self._classes.items()
            if zaccess.guard_allows(guard, groups, level)
        )

    # --- reading --------------------------------------------------------------------

    def _fresh_searcher(self) -> tantivy.Searcher:
        if self.store.has_pending_index_work(self.kb.id):
            try:
                self.sync()
            except IndexBusy:
                pass  # another process is writing; it will apply the queue
        gen = self.store.get_meta(self._gen_key, "0")
        if gen != self._gen_seen:
            self.index.reload()
            self._gen_seen = gen
        return self.index.searcher()

    def search(
        self,
        tokens: Sequence[str],
        k: int = 10,
        where: Filter | None = None,
        allowed: Collection[int] | None = None,
    ) -> list[tuple[int, float]]:
        """BM25 OR-query of the tokens, restricted by ``where`` and to the chunk ids in
        ``allowed`` inside the same query; returns (chunk id, score), best first. With an
        access scope in ``where``, scored over the documents it lets through (see the
        module docstring)."""
        if not tokens or k <= 0 or (allowed is not None and not allowed):
            return []
        schema = self.schema
        should = tantivy.Occur.Should
        with self._lock:
            searcher = self._fresh_searcher()
            visible = self._visible(searcher, where)
            n = visible.docs if visible else searcher.num_docs
            stats = visible.term_stats(searcher, tokens) if visible else None
            if n >= PRUNE_MIN_DOCS:
                limit = PRUNE_UNIGRAM_DF * n

                def df(t: str) -> int:
                    return stats[t][0] if stats is not None else searcher.doc_freq("body", t)

                kept = [t for t in tokens if len(t) > 1 or t.isascii() or df(t) <= limit]
                tokens = kept or list(tokens)
            if visible is not None and stats is not None:
                # Candidates among the visible classes' terms only, by the visible idf
                # (tantivy weighs each term by its own).
                total = max(searcher.num_docs, 1)
                boosted, plain = [], []
                for t in tokens:
                    dfv, idfv = stats[t]
                    if not dfv:
                        continue
                    for term in visible.terms(searcher, t):
                        q = tantivy.Query.term_query(schema, "scoped", term)
                        plain.append((should, q))
                        own = _idf(searcher.doc_freq("scoped", term), total)
                        boosted.append((should, tantivy.Query.boost_query(q, idfv / own)))
                if not boosted:
                    return []
                text_query = tantivy.Query.boolean_query(plain)
                query = tantivy.Query.boolean_query(boosted)
                # The classes are the scope: its exclusion clauses would only read the
                # label postings of the hidden documents.
                if where:
                    where = Filter(
                        tuple(
                            c
                            for c in where.conditions
                            if c.key not in (zaccess.GROUP_COND, zaccess.LEVEL_COND)
                        )
                    )
            else:
                terms = [tantivy.Query.term_query(schema, "body", t) for t in tokens]
                text_query = tantivy.Query.boolean_query([(should, q) for q in terms])
                query = text_query
            if where and visible is None:
                # An exclusion no document of this KB has (status!=repealed in a KB
                # without repealed law) is dropped: it could only cost time. Not for a
                # scoped caller: whether hidden documents have the value would show.
                where = Filter(
                    tuple(
                        c
                        for c in where.conditions
                        if c.op != "!="
                        or c.key in zfilters.DATE_KEYS
                        or any(searcher.doc_freq("facet", f"{c.key}={v}") for v in c.values)
                    )
                )
            clauses = filter_clauses(schema, where) if where else []
            if allowed is not None:
                clauses.append(
                    (
                        tantivy.Occur.Must,
                        tantivy.Query.const_score_query(
                            tantivy.Query.term_set_query(schema, "chunk_id", sorted(allowed)), 0.0
                        ),
                    )
                )
            if clauses:
                query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), *clauses])
            depth = k + RESCORE_EXTRA if visible is not None else k
            res = searcher.search(query, limit=depth, count=False)
            if not res.hits:
                return []
            # chunk_id is a fast field every document has, so no value is None
            ids = cast(
                "list[int]", searcher.fast_field_values("chunk_id", [a for _, a in res.hits])
            )
            if visible is not None and stats is not None:
                base = self._global_bm25(searcher, text_query, res.hits[0][1])
                return visible.rescore(searcher, base, res.hits, ids, stats)[:k]
        return [(int(cid), float(score)) for (score, _), cid in zip(res.hits, ids, strict=True)]

    def _visible(self, searcher: tantivy.Searcher, where: Filter | None) -> _VisibleSet | None:
        """The statistics of what ``where``'s access scope lets through (None: no scope)."""
        guard = zaccess.access_guard(where)
        if guard is None:
            return None
        key = (self._gen_seen, guard.conditions)
        found = self._visible_cache.get(key)
        if found is None:
            classes = self._visible_classes(guard)
            docs, length = 0, 0.0
            if classes:
                scope = tantivy.Query.boolean_query(
                    [
                        (
                            tantivy.Occur.Should,
                            tantivy.Query.term_query(self.schema, "facet", f"{CLASS_FACET}={c}"),
                        )
                        for c in classes
                    ]
                )
                docs = _count(searcher, scope)
                agg = searcher.aggregate(scope, {"len": {"sum": {"field": "body_len"}}})
                length = float((agg.get("len") or {}).get("value") or 0.0)
            found = _VisibleSet(self.schema, classes, int(docs), length)
            if len(self._visible_cache) > 64 or any(
                g != self._gen_seen for g, _ in self._visible_cache
            ):
                self._visible_cache.clear()
            self._visible_cache[key] = found
        return found

    def _global_bm25(
        self, searcher: tantivy.Searcher, query: tantivy.Query, addr: tantivy.DocAddress
    ) -> tuple[int, float]:
        """tantivy's own document count and average body length in this generation
        (deleted documents count until merged), read once from one explanation."""
        if self._global_cache is None or self._global_cache[0] != self._gen_seen:
            info = json.loads(query.explain(searcher, addr).to_json())
            found: dict[str, float] = {}
            stack = [info]
            while stack and len(found) < 2:
                node = stack.pop()
                desc = str(node.get("description", ""))
                if desc.startswith(("N,", "avgdl,")):
                    found[desc.split(",")[0]] = float(node["value"])
                stack.extend(node.get("details") or [])
            self._global_cache = (
                self._gen_seen,
                int(found.get("N", searcher.num_docs)),
                found.get("avgdl", 1.0),
            )
        return self._global_cache[1], self._global_cache[2]

    def term_stats(
        self, tokens: Sequence[str], where: Filter | None = None
    ) -> dict[str, tuple[int, float]]:
        """(document frequency, BM25 idf) of each token in this KB; counted over what
        ``where``'s access scope lets through when it has one."""
        with self._lock:
            searcher = self._fresh_searcher()
            visible = self._visible(searcher, where)
            if visible is not None:
                return visible.term_stats(searcher, tokens)
            n = max(searcher.num_docs, 1)
            out = {}
            for t in tokens:
                df = searcher.doc_freq("body", t)
                out[t] = (df, _idf(df, n))
            return out

    def num_docs(self) -> int:
        with self._lock:
            return self._fresh_searcher().num_docs

    def destroy(self) -> None:
        """Close and delete this KB's index directory."""
        with self._lock:
            self.close()
            with self._dir_lock():
                shutil.rmtree(self.dir, ignore_errors=True)
