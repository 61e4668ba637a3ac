"""Vector index, embedding cache, hybrid fusion and calibration (embeddings over HTTP)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from tests.models_util import DOCS, add, embedded_texts, fill, make_engine
from zhiku import vectors as zvectors
from zhiku.engine import Zhiku
from zhiku.hybrid import calibrate, rrf
from zhiku.store import Store


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI()
    yield s
    s.close()


def live_chunk_ids(zk: Zhiku, kb: str = "default") -> set[int]:
    kbo = zk.store.get_kb(kb)
    return {
        r[0]
        for r in zk.store.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE d.kb_id=?", (kbo.id,)
        )
    }


def test_ingest_embeds_every_chunk_once(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    vi = zk.vectors("default")
    assert vi.live_rows() == len(live_chunk_ids(zk)) >= 3
    assert vi.model() == "openai:emb-a"
    first = embedded_texts(server)
    assert first == len(live_chunk_ids(zk))
    # Nothing changed: no model call, and the index knows it is current.
    zk.sync_index("default")
    assert embedded_texts(server) == first
    zk.search("請假", "default")
    assert embedded_texts(server) == first + 1  # the query only
    assert vi.is_current(zk.embedder("default"))  # type: ignore[arg-type]
    zk.close()


def test_only_changed_chunks_are_embedded(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    before = embedded_texts(server)
    old_ids = live_chunk_ids(zk)
    # Change one paragraph of one document: only the new text reaches the model.
    add(
        zk,
        "default",
        "mem://leave",
        "員工請假管理辦法",
        ["特別休假應於休假二日前提出申請。", "病假一年內合計不得超過三十日，須附證明。"],
    )
    zk.sync_index("default")
    assert embedded_texts(server) - before == 1
    vi = zk.vectors("default")
    assert vi.live_rows() == len(live_chunk_ids(zk))
    # The same text under another path comes from the cache.
    add(zk, "default", "mem://copy", "IT帳號申請", DOCS["mem://it"][1])
    zk.sync_index("default")
    assert embedded_texts(server) - before == 1
    # Deleted chunks never come back from the dense list.
    zk.remove("default", "mem://ship")
    zk.sync_index("default")
    hits = zk.search("貨品破損通報物流", "default", k=10, mode="dense")
    assert all(h.path != "mem://ship" for h in hits)
    assert {h.chunk_id for h in hits} <= live_chunk_ids(zk)
    assert not (old_ids - live_chunk_ids(zk)) & {h.chunk_id for h in hits}
    zk.close()


def test_model_change_triggers_reembed(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server, model="emb-a")
    fill(zk)
    n = embedded_texts(server)
    zk.close()
    zk = make_engine(zhiku_home, server, model="emb-b")
    zk.sync_index("default")
    assert zk.vectors("default").model() == "openai:emb-b"
    assert embedded_texts(server) == 2 * n
    zk.close()
    # Back to the first model: every vector is still in the cache.
    zk = make_engine(zhiku_home, server, model="emb-a")
    report = zk.sync_vectors("default")
    assert report is not None and report.rebuilt and report.embedded == 0
    assert embedded_texts(server) == 2 * n
    zk.close()


def test_torn_append_is_truncated(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    vi = zk.vectors("default")
    meta = vi.meta()
    assert meta is not None
    vpath, ipath = vi._files(int(meta["epoch"]))
    with open(vpath, "ab") as fh:  # a crashed writer's half-written row
        fh.write(b"\x01" * 50)
    with open(ipath, "ab") as fh:
        fh.write(b"\x02" * 9)
    add(zk, "default", "mem://new", "年終尾牙公告", ["尾牙訂於十二月二十日舉行。"])
    zk.sync_index("default")
    meta = vi.meta()
    assert meta is not None
    assert vpath.stat().st_size == meta["rows"] * meta["dim"] * 4
    assert ipath.stat().st_size == meta["rows"] * 16
    hits = zk.search("尾牙十二月二十日", "default", k=1, mode="dense")
    assert hits and hits[0].path == "mem://new"
    zk.close()


def test_compaction(zhiku_home: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zvectors, "COMPACT_MIN_DEAD", 1)
    zk = make_engine(zhiku_home, server)
    fill(zk)
    vi = zk.vectors("default")
    epoch = vi.meta()["epoch"]  # type: ignore[index]
    zk.remove("default", "mem://leave")
    zk.remove("default", "mem://ship")
    zk.sync_index("default")
    meta = vi.meta()
    assert meta is not None and meta["epoch"] == epoch + 1 and meta["dead"] == 0
    assert meta["rows"] == len(live_chunk_ids(zk))
    files = sorted(p.name for p in vi.dir.glob("*-*.*"))
    assert files == [f"ids-{epoch + 1}.i64", f"vectors-{epoch + 1}.f32"]
    hits = zk.search("密碼長度", "default", k=3, mode="dense")
    assert hits and hits[0].path == "mem://it"
    zk.close()


def test_second_engine_sees_new_vectors(zhiku_home: Path, server: FakeOpenAI) -> None:
    a = make_engine(zhiku_home, server)
    b = make_engine(zhiku_home, server)
    fill(a)
    assert b.search("密碼長度", "default", k=1, mode="dense")[0].path == "mem://it"
    add(a, "default", "mem://new", "年終尾牙公告", ["尾牙訂於十二月二十日舉行。"])
    a.sync_index("default")
    calls = embedded_texts(server)
    assert b.search("尾牙十二月二十日", "default", k=1, mode="dense")[0].path == "mem://new"
    assert embedded_texts(server) == calls + 1  # b embedded the query only
    a.close()
    b.close()


def test_knowledge_bases_never_mix(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk, "a")
    add(zk, "b", "mem://b", "年終尾牙公告", ["尾牙訂於十二月二十日舉行。"])
    zk.sync_index("b")
    for mode in ("dense", "hybrid"):
        hits = zk.search("密碼長度至少十二個字元", "b", k=10, mode=mode)
        assert {h.kb for h in hits} == {"b"}
    zk.delete_kb("a")
    assert not (zhiku_home / "vectors" / "kb-1").exists()
    zk.close()


def test_hybrid_scores_and_modes(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    r = zk.retrieve("特別休假要提前幾天申請", "default", k=3)
    assert r.mode == "hybrid" and not r.warnings
    top = r.hits[0]
    assert top.path == "mem://leave"
    assert set(top.scores) >= {"bm25", "dense", "rrf"}
    assert top.score == pytest.approx(top.scores["rrf"])
    assert zk.retrieve("特別休假", "default", mode="lexical").mode == "lexical"
    assert zk.retrieve("特別休假", "default", mode="dense").mode == "dense"
    zk.close()


def test_embed_server_down_falls_back_to_lexical(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    seen: list[str] = []
    zk.on_warning = seen.append
    server.fail["embeddings"] = "500"
    fill(zk)  # ingest itself must succeed
    assert seen and seen[0].startswith("vectors_pending")
    r = zk.retrieve("特別休假", "default", k=3)
    assert r.mode == "lexical" and r.hits and r.hits[0].path == "mem://leave"
    assert any(w.startswith("embed_failed") for w in r.warnings)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert not ans.refused and any(w.startswith("embed_failed") for w in ans.warnings)
    # Server back: the next search catches the vectors up.
    del server.fail["embeddings"]
    r = zk.retrieve("特別休假", "default", k=3)
    assert r.mode == "hybrid" and not r.warnings
    assert zk.vectors("default").live_rows() == len(live_chunk_ids(zk))
    zk.close()


def test_query_time_backlog_is_bounded(zhiku_home: Path, server: FakeOpenAI) -> None:
    plain = make_engine(zhiku_home, None)  # no embedder: ingest builds no vectors
    fill(plain)
    plain.close()
    zk = make_engine(zhiku_home, server)
    zk.query_embed_limit = 2
    r = zk.retrieve("特別休假", "default")
    assert r.mode == "lexical" and any(w.startswith("vectors_stale") for w in r.warnings)
    assert embedded_texts(server) == 0  # nothing embedded before the limit check
    report = zk.sync_vectors("default")
    assert report is not None and report.added == len(live_chunk_ids(zk))
    assert zk.retrieve("特別休假", "default").mode == "hybrid"
    zk.close()


def test_migration_2_applies_after_3(tmp_path: Path) -> None:
    db = tmp_path / "zhiku.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE embeddings")
    con.execute("DELETE FROM schema_migrations WHERE component='core' AND version=2")
    con.commit()
    con.close()
    st = Store(db)
    assert st.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    versions = [
        r[0]
        for r in st.db.execute(
            "SELECT version FROM schema_migrations WHERE component='core' ORDER BY version"
        )
    ]
    assert 2 in versions and 3 in versions
    st.close()


def test_rrf_weights_and_ties() -> None:
    lex = [(1, 9.0), (2, 8.0), (3, 7.0)]
    dense = [(3, 0.9), (4, 0.8)]
    fused = rrf([(lex, 1.0), (dense, 0.1)], 5)
    assert [c for c, _ in fused][:3] == [1, 2, 3]  # dense cannot overturn BM25's top
    assert fused[0][1] == pytest.approx(1 / 6)
    fused = rrf([(lex, 1.0), (dense, 1.0)], 60)
    assert fused[0][0] == 3  # equal weights: in both lists wins
    # Weight 0 keeps the dense-only ids, after everything with a score, in dense order.
    fused = rrf([(lex, 1.0), (dense, 0.0)], 5)
    assert [c for c, _ in fused] == [1, 2, 3, 4]


def test_calibrate_picks_dense_weight_by_evidence() -> None:
    rng = np.random.default_rng(0)
    n = 60
    gold = [{i} for i in range(n)]
    # BM25 finds gold at rank 2 for half the questions; the dense list always at rank 1.
    lexical = [
        [(1000 + i, 2.0), (i, 1.0)] if i % 2 else [(i, 2.0), (1000 + i, 1.0)] for i in range(n)
    ]
    good = [[(i, 0.9), (2000 + i, 0.1)] for i in range(n)]
    res = calibrate(lexical, good, gold)
    assert res.lexical_r_at_1 == 0.5 and res.dense_r_at_1 == 1.0
    assert res.r_at_1 == 1.0 and res.dense_weight >= 0.3
    strong = res.dense_weight
    # A misleading embedder: a random chunk first, then BM25's wrong candidate. It must
    # not lower R@1, and it gets less say than the useful one.
    bad = [[(int(x), 0.5), (1000 + i, 0.4)] for i, x in enumerate(rng.integers(5000, 6000, n))]
    res = calibrate(lexical, bad, gold)
    assert res.dense_r_at_1 == 0.0
    assert res.r_at_1 == 0.5 and res.dense_weight < strong


def test_calibrate_fusion_stores_per_model(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    qs = zk.sample_questions("default", 10)
    assert qs and all(path in DOCS for _, path in qs)
    res = zk.calibrate_fusion("default", [*qs, ("尾牙", "不存在的文件")])
    assert res.questions == len(qs)  # unknown documents are skipped
    saved = zk.store.get_kb("default").settings["hybrid_calibration"]
    assert saved["model"] == "openai:emb-a" and saved["dense_weight"] == res.dense_weight
    cfg = zk.model_config("default")
    assert (cfg.hybrid.rrf_k, cfg.hybrid.dense_weight) == (res.rrf_k, res.dense_weight)
    zk.close()
    # A different embedder ignores the stored calibration.
    other = make_engine(zhiku_home, server, model="emb-b")
    assert other.model_config("default").hybrid.dense_weight == 0.1
    other.close()


def test_meta_file_is_json_with_model_and_dim(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    fill(zk)
    meta = json.loads((zk.vectors("default").dir / "meta.json").read_text())
    assert meta["model"] == "openai:emb-a" and meta["dim"] == 32 and meta["format"] == 1
    zk.close()


def test_http_reranker_reorders_and_degrades(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server, roles=("embed", "rerank"))
    fill(zk)
    r = zk.retrieve("貨品破損通報物流", "default", k=3)
    assert r.mode == "hybrid+rerank" and not r.warnings
    scores = [h.scores["rerank"] for h in r.hits]
    assert scores == sorted(scores, reverse=True) and r.hits[0].path == "mem://ship"
    assert r.hits[0].score == scores[0]
    _, body = [x for x in server.requests if x[0] == "rerank"][-1]
    assert body["query"] == "貨品破損通報物流" and len(body["documents"]) == 3
    server.fail["rerank"] = "500"
    r = zk.retrieve("貨品破損通報物流", "default", k=3)
    assert r.mode == "hybrid" and r.hits
    assert any(w.startswith("rerank_failed") for w in r.warnings)
    assert zk.retrieve("貨品破損", "default", rerank=False).mode == "hybrid"
    zk.close()


def test_empty_kb_then_first_document(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    zk.kb("default", create=True)
    zk.sync_index("default")  # nothing to embed yet: no dimension known
    add(zk, "default", "mem://new", "年終尾牙公告", ["尾牙訂於十二月二十日舉行。"])
    zk.sync_index("default")
    assert zk.vectors("default").live_rows() == 1
    assert zk.search("尾牙", "default", mode="dense")[0].path == "mem://new"
    zk.close()
