"""Contract suites of the two index Protocols (:mod:`zhiku.index.base`).

The pattern of haystack's ``DocumentStoreBaseTests``: a base class holds the tests, one
subclass per implementation provides the ``index_settings`` fixture (the KB's ``index``
setting). Every test runs the real engine on a real SQLite file, with the embedded
indexes (tantivy, numpy matrix) or Milvus Lite on a local ``.db`` file; embeddings come
over HTTP from the deterministic fake OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from tests.models_util import embedded_texts, make_engine
from zhiku import text as ztext
from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.index import LexicalBackend, VectorBackend
from zhiku.models import Block, LoadedDocument

KB = "kb"
DOCS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "mem://leave": (
        "員工請假管理辦法",
        ["特別休假應於休假二日前提出申請。", "病假一年內合計不得超過三十日。"],
        {"dept": "hr", "amended": "2024-03-01"},
    ),
    "mem://ship": (
        "出貨異常處理SOP",
        ["貨品破損時應於二十四小時內通報物流窗口，並申請補貨。"],
        {"dept": "logistics", "amended": "2019-05-01"},
    ),
    "mem://it": (
        "IT帳號申請",
        ["帳號申請應填寫申請單，密碼長度至少十二個字元。"],
        {"dept": "it", "tags": ["帳號"]},
    ),
    "mem://quote": (
        '引號"部門',
        ["部門名稱含有引號與反斜線的文件，申請時照常辦理。"],
        {"dept": 'r&d "lab" \\ 2'},
    ),
}


def add(zk: Zhiku, path: str, title: str, paras: list[str], meta: dict[str, Any]) -> None:
    zk.add_loaded(KB, path, LoadedDocument(title, "txt", [Block(p) for p in paras]), meta=meta)


def chunk_ids(zk: Zhiku, path: str | None = None) -> set[int]:
    kbo = zk.store.get_kb(KB)
    sql = "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=?" + (
        " AND d.path=?" if path else ""
    )
    return {r[0] for r in zk.store.db.execute(sql, (kbo.id, path) if path else (kbo.id,))}


def toks(q: str) -> list[str]:
    return ztext.query_tokens(q)


# A caller without groups at 公開, and one of logistics cleared for 機密.
PAT = AccessScope("pat", frozenset(), 0).restrict()
LOGI = AccessScope("lo", frozenset({"logistics"}), 2).restrict()
SHIP_SECRET = {"access_groups": ["logistics"], "access_level": 2}
SHIP_OPEN: dict[str, Any] = {"access_groups": None, "access_level": None}


class IndexFixtures:
    @pytest.fixture
    def index_settings(self, tmp_path: Path) -> dict[str, Any]:
        raise NotImplementedError

    @pytest.fixture
    def server(self) -> Iterator[FakeOpenAI]:
        s = FakeOpenAI()
        yield s
        s.close()

    @pytest.fixture
    def zk(
        self, zhiku_home: Path, server: FakeOpenAI, index_settings: dict[str, Any]
    ) -> Iterator[Zhiku]:
        zk = make_engine(zhiku_home, server)
        zk.kb(KB, create=True)
        zk.store.update_kb_settings(KB, {"index": index_settings})
        for path, (title, paras, meta) in DOCS.items():
            add(zk, path, title, paras, meta)
        zk.sync_index(KB)
        yield zk
        zk.close()
        from zhiku.index.milvus import close_all

        close_all()


class LexicalContract(IndexFixtures):
    def test_implements_the_protocol(self, zk: Zhiku) -> None:
        assert isinstance(zk.index(KB), LexicalBackend)

    def test_sync_indexes_every_chunk(self, zk: Zhiku) -> None:
        idx = zk.index(KB)
        assert idx.num_docs() == len(chunk_ids(zk)) >= len(DOCS)
        assert idx.sync() == 0  # nothing queued: idempotent

    def test_search_ranks_by_bm25(self, zk: Zhiku) -> None:
        hits = zk.index(KB).search(toks("病假合計不得超過幾日"), k=3)
        assert hits and hits[0][0] in chunk_ids(zk, "mem://leave")
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert hits[0][1] > 0

    def test_replace_document_chunks(self, zk: Zhiku) -> None:
        old = chunk_ids(zk, "mem://ship")
        add(zk, "mem://ship", "出貨異常處理SOP", ["冷凍品退貨須拍照存證。"], {"dept": "logistics"})
        zk.sync_index(KB)
        idx = zk.index(KB)
        assert not {c for c, _ in idx.search(toks("貨品破損通報物流"), k=10)} & old
        top = idx.search(toks("冷凍品退貨"), k=1)
        assert top and top[0][0] in chunk_ids(zk, "mem://ship")
        assert idx.num_docs() == len(chunk_ids(zk))

    def test_delete_document(self, zk: Zhiku) -> None:
        gone = chunk_ids(zk, "mem://it")
        zk.remove(KB, "mem://it")
        zk.sync_index(KB)
        idx = zk.index(KB)
        assert not {c for c, _ in idx.search(toks("密碼長度帳號"), k=10)} & gone
        assert idx.num_docs() == len(chunk_ids(zk))

    def test_changes_by_another_engine_are_seen(self, zk: Zhiku, zhiku_home: Path) -> None:
        other = Zhiku(zhiku_home)
        add(other, "mem://new", "門禁卡遺失", ["門禁卡遺失應立即向總務處掛失。"], {})
        other.close()
        top = zk.index(KB).search(toks("門禁卡掛失"), k=1)
        assert top and top[0][0] in chunk_ids(zk, "mem://new")

    def test_where_applies_inside_the_query(self, zk: Zhiku) -> None:
        idx = zk.index(KB)
        q = toks("申請")
        best = idx.search(q, k=1)
        assert best and best[0][0] not in chunk_ids(zk, "mem://leave")
        # k=1 with a filter still returns the best *passing* chunk.
        only = idx.search(q, k=1, where=Filter.parse(["dept=hr"]))
        assert only and only[0][0] in chunk_ids(zk, "mem://leave")
        full = idx.search(q, k=20)  # ... the first of the unfiltered ranking that passes
        assert only[0][0] == next(c for c, _ in full if c in chunk_ids(zk, "mem://leave"))
        # Alternatives, exclusion, tags, dates, quotes in values.
        ids = {c for c, _ in idx.search(q, k=20, where=Filter.parse(["dept=hr,it"]))}
        assert ids and ids <= chunk_ids(zk, "mem://leave") | chunk_ids(zk, "mem://it")
        ids = {c for c, _ in idx.search(q, k=20, where=Filter.parse(["dept!=hr"]))}
        assert ids and not ids & chunk_ids(zk, "mem://leave")
        ids = {c for c, _ in idx.search(q, k=20, where=Filter.parse(["tag=帳號"]))}
        assert ids == chunk_ids(zk, "mem://it")
        ids = {c for c, _ in idx.search(q, k=20, where=Filter.parse(["amended>=2020-01-01"]))}
        assert ids and ids <= chunk_ids(zk, "mem://leave")
        ids = {c for c, _ in idx.search(q, k=20, where=Filter.parse(['dept=r&d "lab" \\ 2']))}
        assert ids == chunk_ids(zk, "mem://quote")

    def test_metadata_change_reaches_filters(self, zk: Zhiku) -> None:
        assert zk.store.set_document_meta(KB, "mem://ship", {"dept": "hr"})
        ids = {
            c for c, _ in zk.index(KB).search(toks("申請"), k=20, where=Filter.parse(["dept=hr"]))
        }
        assert chunk_ids(zk, "mem://ship") <= ids

    def test_allowed_ids_apply_inside_the_query(self, zk: Zhiku) -> None:
        idx = zk.index(KB)
        q = toks("申請")
        allowed = chunk_ids(zk, "mem://quote")
        top = idx.search(q, k=1, allowed=allowed)
        assert top and top[0][0] in allowed
        assert idx.search(q, k=5, allowed=set()) == []
        assert idx.search(q, k=5, allowed=allowed, where=Filter.parse(["dept=hr"])) == []

    def test_term_stats_count_chunks(self, zk: Zhiku) -> None:
        # Tokens are folded (申請 → 申请): the stats speak of index tokens.
        common, rare, absent = (ztext.tokenize(w)[-1] for w in ("申請", "病假", "不存"))
        stats = zk.index(KB).term_stats([common, rare, absent])
        texts = [ztext.fold(r[0]) for r in zk.store.db.execute("SELECT text FROM chunks")]
        assert stats[rare][0] == sum(rare in t for t in texts) == 1
        assert stats[common][0] == sum(common in t for t in texts) >= 3
        assert stats[absent][0] == 0
        assert stats[rare][1] > stats[common][1] > 0

    def test_rebuild_gives_the_same_results(self, zk: Zhiku) -> None:
        idx = zk.index(KB)
        before = idx.search(toks("申請帳號"), k=5)
        assert idx.rebuild() == len(DOCS)
        after = idx.search(toks("申請帳號"), k=5)
        assert [c for c, _ in after] == [c for c, _ in before]

    def test_engine_search_and_delete_kb(self, zk: Zhiku) -> None:
        hits = zk.search("病假一年內合計", KB, k=2, mode="lexical")
        assert hits and hits[0].path == "mem://leave"
        hits = zk.search("申請", KB, k=1, mode="lexical", where=Filter.parse(["dept=it"]))
        assert [h.path for h in hits] == ["mem://it"]
        zk.delete_kb(KB)
        zk.kb(KB, create=True)
        assert zk.index(KB).num_docs() == 0

    def test_access_scope_applies_and_follows_relabelling(self, zk: Zhiku) -> None:
        """A caller's scope inside the index's query; an editor's label change moves the
        document's rows on the next sync, both ways."""
        ship, q = chunk_ids(zk, "mem://ship"), toks("貨品破損通報物流窗口補貨")
        idx = zk.index(KB)

        def found(where: Filter | None) -> set[int]:
            return {c for c, _ in idx.search(q, k=100, where=where)} & ship

        assert found(PAT) == ship
        assert zk.store.set_document_meta(KB, "mem://ship", SHIP_SECRET)
        zk.sync_index(KB)
        assert found(PAT) == set() and found(LOGI) == ship == found(None)
        assert idx.search(q, k=100, where=PAT) == []  # its words: no visible passage
        assert zk.store.set_document_meta(KB, "mem://ship", SHIP_OPEN)
        zk.sync_index(KB)
        assert found(PAT) == ship


class VectorContract(IndexFixtures):
    def qvec(self, zk: Zhiku, text: str) -> np.ndarray:
        emb = zk.embedder(KB)
        assert emb is not None
        return emb.embed_query(text)

    def text_of(self, zk: Zhiku, path: str) -> str:
        row = zk.store.db.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.path=? "
            "ORDER BY c.id LIMIT 1",
            (path,),
        ).fetchone()
        return str(row[0])

    def test_implements_the_protocol(self, zk: Zhiku) -> None:
        assert isinstance(zk.vectors(KB), VectorBackend)

    def test_sync_embeds_every_chunk_once(self, zk: Zhiku, server: FakeOpenAI) -> None:
        vi = zk.vectors(KB)
        emb = zk.embedder(KB)
        assert emb is not None
        assert vi.live_rows() == len(chunk_ids(zk))
        assert vi.model() == "openai:emb-a" and vi.is_current(emb)
        calls = embedded_texts(server)
        assert calls == len(chunk_ids(zk))
        assert vi.sync(emb).added == 0
        report = vi.sync(emb, rebuild=True)  # from the embedding cache, no model call
        assert report.rebuilt and report.added == len(chunk_ids(zk)) and report.embedded == 0
        assert embedded_texts(server) == calls

    def test_search_by_cosine(self, zk: Zhiku) -> None:
        vi = zk.vectors(KB)
        q = self.qvec(zk, self.text_of(zk, "mem://ship"))
        hits = vi.search(q, k=3)
        assert hits[0][0] in chunk_ids(zk, "mem://ship")
        assert hits[0][1] > hits[1][1] and -1.0 <= hits[-1][1] <= hits[0][1] <= 1.0 + 1e-5
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert len(vi.search(q, k=100)) == len(chunk_ids(zk))

    def test_replace_and_delete(self, zk: Zhiku) -> None:
        old = chunk_ids(zk, "mem://ship")
        add(zk, "mem://ship", "出貨異常處理SOP", ["冷凍品退貨須拍照存證。"], {"dept": "logistics"})
        zk.remove(KB, "mem://it")
        zk.sync_index(KB)
        vi = zk.vectors(KB)
        ids = {c for c, _ in vi.search(self.qvec(zk, "冷凍品退貨須拍照存證。"), k=100)}
        assert ids == chunk_ids(zk) and not ids & old
        assert vi.live_rows() == len(chunk_ids(zk))

    def test_restrictions_apply_inside_the_query(self, zk: Zhiku) -> None:
        vi = zk.vectors(KB)
        q = self.qvec(zk, self.text_of(zk, "mem://ship"))
        top = vi.search(q, k=1, where=Filter.parse(["dept=hr"]))
        assert top and top[0][0] in chunk_ids(zk, "mem://leave")
        ids = {c for c, _ in vi.search(q, k=100, where=Filter.parse(["amended<2020-01-01"]))}
        assert ids == chunk_ids(zk, "mem://ship")
        ids = {c for c, _ in vi.search(q, k=100, where=Filter.parse(["dept!=hr,it"]))}
        assert ids == chunk_ids(zk, "mem://ship") | chunk_ids(zk, "mem://quote")
        allowed = chunk_ids(zk, "mem://it")
        assert {c for c, _ in vi.search(q, k=100, allowed=allowed)} == allowed
        assert vi.search(q, k=100, allowed=allowed, where=Filter.parse(["dept=hr"])) == []
        excluded = chunk_ids(zk, "mem://ship")
        assert not {c for c, _ in vi.search(q, k=100, excluded=excluded)} & excluded

    def test_metadata_change_reaches_filters(self, zk: Zhiku) -> None:
        assert zk.store.set_document_meta(KB, "mem://ship", {"dept": "hr"})
        q = self.qvec(zk, self.text_of(zk, "mem://ship"))
        hits = zk.search("貨品破損", KB, k=10, mode="dense", where=Filter.parse(["dept=hr"]))
        assert {h.path for h in hits} == {"mem://ship", "mem://leave"}
        assert zk.vectors(KB).search(q, k=1, where=Filter.parse(["dept=hr"]))[0][0] in chunk_ids(
            zk, "mem://ship"
        )

    def test_access_scope_applies_and_follows_relabelling(self, zk: Zhiku) -> None:
        """As the lexical contract's: the vector search narrowed to what the caller's
        scope lets through, inside the query, and a label change moves the rows."""
        vi, emb = zk.vectors(KB), zk.embedder(KB)
        assert emb is not None
        q = self.qvec(zk, self.text_of(zk, "mem://ship"))
        ship, every = chunk_ids(zk, "mem://ship"), chunk_ids(zk)

        def found(where: Filter | None) -> set[int]:
            return {c for c, _ in vi.search(q, k=100, where=where)}

        assert found(PAT) == every
        assert zk.store.set_document_meta(KB, "mem://ship", SHIP_SECRET)
        zk.sync_index(KB)
        vi.sync(emb)
        assert found(PAT) == every - ship
        assert found(LOGI) == every == found(None)
        top = vi.search(q, k=1, where=PAT)
        assert top and top[0][0] not in ship
        assert zk.store.set_document_meta(KB, "mem://ship", SHIP_OPEN)
        zk.sync_index(KB)
        vi.sync(emb)
        assert found(PAT) == every

    def test_hybrid_search_through_the_engine(self, zk: Zhiku) -> None:
        ret = zk.retrieve("貨品破損時應於二十四小時內通報物流窗口", KB, k=3, mode="hybrid")
        assert ret.mode == "hybrid"
        assert ret.hits[0].path == "mem://ship"
        ret = zk.retrieve("申請", KB, k=2, mode="hybrid", where=Filter.parse(["dept=hr"]))
        assert {h.path for h in ret.hits} == {"mem://leave"}


class TestEmbeddedLexical(LexicalContract):
    @pytest.fixture
    def index_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "embedded"}


class TestMilvusLexical(LexicalContract):
    @pytest.fixture
    def index_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "milvus", "uri": str(tmp_path / "milvus.db")}


class TestEmbeddedVectors(VectorContract):
    @pytest.fixture
    def index_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "embedded"}


class TestMilvusVectors(VectorContract):
    @pytest.fixture
    def index_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "milvus", "uri": str(tmp_path / "milvus.db")}
