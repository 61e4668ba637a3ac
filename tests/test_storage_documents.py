"""The document store's contract, run on SQLite and on a real PostgreSQL.

One base class of tests (haystack's DocumentStoreBaseTests pattern); each backend is a
subclass whose ``target`` fixture says where the store lives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.errors import InvalidInput, KnowledgeBaseNotFound, StoreError
from zhiku.filters import Filter
from zhiku.ingest import ingest_paths
from zhiku.models import Chunk
from zhiku.storage.documents import DocumentStore, Store, database_target


def chunks(*texts: str) -> list[Chunk]:
    out, pos = [], 0
    for i, t in enumerate(texts):
        out.append(
            Chunk(text=t, section=f"第{i + 1}條", ord=i, char_start=pos, char_end=pos + len(t))
        )
        pos += len(t)
    return out


class DocumentStoreContract:
    """What every DocumentStore must do; subclasses provide ``target``."""

    @pytest.fixture
    def store(self, target: str) -> Iterator[Store]:
        s = Store(target)
        yield s
        s.close()

    def test_is_a_document_store_and_reopens_with_the_same_id(self, target: str) -> None:
        s = Store(target)
        assert isinstance(s, DocumentStore)
        first = s.db_id
        s.ensure_kb("法規")
        s.close()
        again = Store(target)
        assert again.db_id == first and [k.name for k in again.list_kbs()] == ["法規"]
        again.close()

    def test_kbs_are_created_once_and_settings_merge(self, store: Store) -> None:
        a = store.ensure_kb("人資", {"lang": "zh"})
        assert store.ensure_kb("人資").id == a.id
        assert len(a.secret) == 32
        kb = store.update_kb_settings("人資", {"embed": "x"})
        assert kb.settings == {"lang": "zh", "embed": "x"}
        assert store.find_kb("無") is None
        b = store.ensure_kb("財務")
        assert store.kb_ids(["財務", "無", "人資"]) == [a.id, b.id] and store.kb_ids([]) == []
        with pytest.raises(KnowledgeBaseNotFound):
            store.get_kb("無")
        with pytest.raises(InvalidInput, match="不合法"):
            store.ensure_kb("a/b")

    def test_put_replace_and_read_documents(self, store: Store) -> None:
        store.ensure_kb("kb")
        seq0 = store.index_log_seq()
        doc = store.put_document(
            "kb",
            path="a.txt",
            title="甲",
            kind="txt",
            content_hash="h1",
            size=10,
            mtime=1.5,
            chunks=chunks("請假規定", "加班費"),
            meta={"dept": "hr", "tags": ["休假"]},
        )
        assert store.index_log_seq() > seq0
        got = store.get_document("kb", "a.txt")
        assert got is not None and got.id == doc and got.chunks == 2
        assert got.meta == {"dept": "hr", "tags": ["休假"]}
        # Replacing keeps the id and swaps the chunks.
        again = store.put_document(
            "kb",
            path="a.txt",
            title="甲2",
            kind="txt",
            content_hash="h2",
            size=11,
            chunks=chunks("只剩一段"),
        )
        assert again == doc
        assert store.document_hashes("kb") == {"a.txt": ("h2", 11, None)}
        rows = list(store.chunks_of([doc]))
        assert [r["text"] for r in rows] == ["只剩一段"] and rows[0]["title"] == "甲2"
        store.touch_document("kb", "a.txt", 9.0)
        assert store.document_hashes("kb")["a.txt"][2] == 9.0
        assert store.chunk_count(store.get_kb("kb").id) == 1

    def test_hits_keep_order_and_enforce_kbs(self, store: Store) -> None:
        a, b = store.ensure_kb("a"), store.ensure_kb("b")
        da = store.put_document(
            "a",
            path="x",
            title="X",
            kind="txt",
            content_hash="1",
            size=1,
            chunks=chunks("一", "二"),
        )
        store.put_document(
            "b", path="y", title="Y", kind="txt", content_hash="2", size=1, chunks=chunks("三")
        )
        ids_a = [int(r["id"]) for r in store.chunks_of([da])]
        ids_b = [cid for cid, _ in store.chunk_doc_pairs(b.id)]
        scored = [(ids_a[1], 2.0), (ids_b[0], 1.5), (ids_a[0], 1.0)]
        hits = store.hits_for(scored, [a.id])
        assert [(h.chunk_id, h.kb, h.text) for h in hits] == [
            (ids_a[1], "a", "二"),
            (ids_a[0], "a", "一"),
        ]
        assert store.existing_chunk_ids([*ids_a, 10**9]) == set(ids_a)
        assert store.chunk_docs(ids_b) == {ids_b[0]: (store.kb_doc_ids(b.id)[0], "Y")}
        assert sorted(store.sample_chunk_texts(a.id, 5)) == ["一", "二"]
        assert store.sample_chunks(a.id, 5) == [(da, "一"), (da, "二")]
        assert len(store.sample_chunks(a.id, 1)) == 1
        assert store.chunk_texts_with_paths(a.id, min_chars=1) == [("一", "x"), ("二", "x")]

    def test_filters_run_in_the_database(self, store: Store) -> None:
        kb = store.ensure_kb("kb")
        store.put_document(
            "kb",
            path="hr.txt",
            title="H",
            kind="txt",
            content_hash="1",
            size=1,
            chunks=chunks("甲"),
            meta={"dept": "hr", "tags": ["休假", "薪資"], "effective": "2024-01-01"},
        )
        store.put_document(
            "kb",
            path="it.pdf",
            title="I",
            kind="PDF",
            content_hash="2",
            size=1,
            chunks=chunks("乙"),
            meta={"dept": "it", "tags": "not-a-list", "status": "repealed"},
        )
        store.put_document(
            "kb",
            path="none.txt",
            title="N",
            kind="txt",
            content_hash="3",
            size=1,
            chunks=chunks("丙"),
        )

        def paths(expr: str) -> list[str]:
            return [d.path for d in store.list_documents("kb", Filter.parse([expr]))]

        assert paths("dept=hr") == ["hr.txt"]
        assert paths("dept!=hr") == ["it.pdf", "none.txt"]
        assert paths("tag=薪資") == ["hr.txt"]
        assert paths("kind=pdf") == ["it.pdf"]
        assert paths("effective>=2023-06-01") == ["hr.txt"]
        assert paths("effective<2023-06-01") == []
        where = Filter.parse(["tag=休假"])
        ids = store.filtered_chunk_ids([kb.id], where)
        assert len(ids) == 1
        assert [d.path for d in store.list_documents("kb")] == ["hr.txt", "it.pdf", "none.txt"]

    def test_metadata_changes_queue_reindexing(self, store: Store) -> None:
        kb = store.ensure_kb("kb")
        doc = store.put_document(
            "kb",
            path="a",
            title="A",
            kind="txt",
            content_hash="1",
            size=1,
            chunks=chunks("x"),
            meta={"dept": "hr"},
        )
        seq, docs = store.pending_index_work(kb.id)
        assert docs == [doc]
        store.clear_index_work(kb.id, seq)
        assert not store.has_pending_index_work(kb.id)
        assert store.set_document_meta("kb", "a", {"dept": None, "status": "repealed"})
        assert store.get_document("kb", "a").meta == {"status": "repealed"}  # type: ignore[union-attr]
        assert store.pending_index_work(kb.id)[1] == [doc]
        assert not store.set_document_meta("kb", "missing", {"x": 1})
        store.requeue_all(kb.id)
        assert store.pending_index_work(kb.id)[1] == [doc]

    def test_deleting_a_parent_deletes_its_attachments(self, store: Store) -> None:
        kb = store.ensure_kb("kb")
        mail = store.put_document(
            "kb", path="m.eml", title="M", kind="eml", content_hash="1", size=1, chunks=chunks("信")
        )
        att = store.put_document(
            "kb",
            path="m.eml#a.pdf",
            title="A",
            kind="pdf",
            content_hash="2",
            size=1,
            chunks=chunks("附件"),
            parent_id=mail,
        )
        store.put_document(
            "kb",
            path="m.eml#a.pdf#z",
            title="Z",
            kind="txt",
            content_hash="3",
            size=1,
            chunks=chunks("深"),
            parent_id=att,
        )
        assert store.child_paths("kb") == {"m.eml#a.pdf", "m.eml#a.pdf#z"}
        assert store.child_paths("kb", "m.eml") == {"m.eml#a.pdf"}
        store.clear_index_work(kb.id, store.pending_index_work(kb.id)[0])
        assert store.delete_document("kb", "m.eml")
        assert not store.delete_document("kb", "m.eml")
        assert store.list_documents("kb") == []
        assert sorted(store.pending_index_work(kb.id)[1]) == sorted([mail, att, att + 1])

    def test_deleting_a_kb_removes_everything_in_it(self, store: Store) -> None:
        kb = store.ensure_kb("kb")
        store.ensure_kb("keep")
        doc = store.put_document(
            "kb", path="a", title="A", kind="txt", content_hash="1", size=1, chunks=chunks("x", "y")
        )
        assert store.delete_kb("kb") == [doc]
        assert [k.name for k in store.list_kbs()] == ["keep"]
        assert store.chunk_count(kb.id) == 0 and not store.has_pending_index_work(kb.id)
        # A KB made again under the same name is a new one.
        assert store.ensure_kb("kb").id != kb.id

    def test_embedding_cache_upserts(self, store: Store) -> None:
        store.embeddings_put("m1", [(b"\x01" * 32, b"abcd"), (b"\x02" * 32, b"efgh")])
        store.embeddings_put("m1", [(b"\x01" * 32, b"ABCD")])
        store.embeddings_put("m2", [(b"\x01" * 32, b"zzzz")])
        assert store.embeddings_get("m1", [b"\x01" * 32, b"\x03" * 32]) == {b"\x01" * 32: b"ABCD"}
        assert store.embeddings_count() == 3 and store.embeddings_count("m1") == 2

    def test_meta_and_stats(self, store: Store) -> None:
        assert store.get_meta("k", "d") == "d"
        store.set_meta("k", "1")
        store.set_meta("k", "2")
        assert store.get_meta("k") == "2"
        store.ensure_kb("kb")
        store.put_document(
            "kb",
            path="a",
            title="A",
            kind="txt",
            content_hash="1",
            size=1,
            chunks=chunks("四個字元"),
        )
        stats = store.stats()
        assert stats["kbs"] == [{"name": "kb", "documents": 1, "chunks": 1, "characters": 4}]
        assert stats["database_bytes"] > 0
        assert store.kb_counts(store.get_kb("kb").id) == (1, 1, 4)
        assert stats["database"] == store.database.location


class TestSQLite(DocumentStoreContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        return str(tmp_path / "zhiku.db")


class TestPostgreSQL(DocumentStoreContract):
    @pytest.fixture
    def target(self, pg_url: str) -> str:
        return pg_url


def test_the_database_setting_and_its_environment_override(tmp_path: Path) -> None:
    assert database_target(tmp_path, None, env={}) == tmp_path / "zhiku.db"
    url = "postgresql://u:pw@db.example/zhiku"
    assert database_target(tmp_path, url, env={}) == url
    assert database_target(tmp_path, None, env={"ZHIKU_DATABASE_URL": url}) == url
    with pytest.raises(StoreError, match="不支援"):
        database_target(tmp_path, "mysql://x", env={})


def test_the_engine_runs_on_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhiku.engine import Zhiku  # noqa: PLC0415

    monkeypatch.setenv("ZHIKU_DATABASE_URL", pg_url)
    (tmp_path / "a.txt").write_text("員工請假應於三日前提出申請，並經主管核准。\n", "utf-8")
    with Zhiku(tmp_path / "home") as zk:
        assert zk.store.database.dialect == "postgresql"
        assert not (tmp_path / "home" / "zhiku.db").exists()
        ingest_paths(zk, [tmp_path / "a.txt"], "kb")
        hits = zk.search("請假", "kb", k=1)
        assert hits and "請假" in hits[0].text
    # Reopened: the documents are in PostgreSQL, the index beside it is reused.
    with Zhiku(tmp_path / "home") as zk:
        assert zk.search("主管核准", "kb", k=1)[0].path.endswith("a.txt")
