"""The engine end to end on real files: ingest, search, answers, incremental updates."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.corpus import build_office_folder
from zhiku.engine import Zhiku
from zhiku.errors import KnowledgeBaseNotFound, StoreError
from zhiku.ingest import ingest_paths, sync_kb
from zhiku.models import Block, LoadedDocument


@pytest.fixture
def office(tmp_path: Path) -> Path:
    return build_office_folder(tmp_path / "公司文件")


def test_ingest_folder_reports_each_file(engine: Zhiku, office: Path) -> None:
    report = ingest_paths(engine, [office], "ops")
    assert report.count("added") == 5
    assert [Path(f.path).name for f in report.files if f.status == "skipped"] == ["宣導影片.mp4"]
    assert not report.failed
    titles = {d.title for d in engine.store.list_documents("ops")}
    assert {"出貨異常處理SOP", "員工請假辦法"} <= titles


def test_answer_cites_document_clause_and_page(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    ans = engine.ask("出貨異常要多久內通報？", "ops")
    assert not ans.refused
    assert ans.text.startswith("根據《出貨異常處理SOP》4.3")
    assert "24 小時內通報物流部門" in ans.text
    top = ans.citations[0].to_dict()
    assert top["doc"] == "出貨異常處理SOP" and top["section"] == "4 作業程序 > 4.3"
    leave = engine.ask("特別休假沒休完可以遞延嗎", "ops")
    assert not leave.refused
    cite = leave.citations[0].to_dict()
    assert cite["page"] == 2 and cite["section"].endswith("第三條")


def test_simplified_query_finds_traditional_text_and_quotes_original(
    engine: Zhiku, office: Path
) -> None:
    ingest_paths(engine, [office], "ops")
    hits = engine.search("出货异常要多久内通报", "ops", k=3)
    assert "4.3" in [h.label for h in hits]
    ans = engine.ask("出货异常要多久内通报", "ops")
    assert "通報" in ans.text and "通报" not in ans.text  # citations quote the original


def test_refuses_when_nothing_relevant(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    ans = engine.ask("公司的股票代號與董事長薪酬是多少？", "ops")
    assert ans.refused and ans.citations == []
    assert ans.text == "知識庫中找不到相關資料。"


def test_reingest_skips_unchanged_and_replaces_changed(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    again = ingest_paths(engine, [office], "ops")
    assert again.count("unchanged") == 5 and again.count("added") == 0
    md = office / "notes" / "IT.md"
    md.write_text("# IT 帳號\n\n## 密碼規則\n\n密碼每 90 天須變更一次。\n", "utf-8")
    third = ingest_paths(engine, [office], "ops")
    assert third.count("updated") == 1
    hits = engine.search("密碼多久變更", "ops", k=5)
    texts = " ".join(h.text for h in hits)
    assert "90 天" in texts and "180 天" not in texts
    n_chunks = engine.store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    assert engine.index("ops").num_docs() == n_chunks


def test_sync_removes_documents_whose_files_are_gone(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    (office / "FAQ.xlsx").unlink()
    report = sync_kb(engine, "ops")
    assert report.count("removed") == 1
    assert not engine.search("客服專線", "ops", k=5) or all(
        "FAQ" not in h.path for h in engine.search("客服專線", "ops", k=5)
    )
    assert len(engine.store.list_documents("ops")) == 4


def test_knowledge_bases_are_isolated(engine: Zhiku, office: Path, tmp_path: Path) -> None:
    ingest_paths(engine, [office], "ops")
    secret = tmp_path / "fin"
    secret.mkdir()
    (secret / "薪資.md").write_text("# 薪資\n\n總經理年薪為新臺幣九百萬元。\n", "utf-8")
    ingest_paths(engine, [secret], "finance")
    assert all(h.kb == "ops" for h in engine.search("總經理年薪", "ops", k=10))
    assert not any("薪資" in h.doc_title for h in engine.search("總經理年薪", "ops", k=10))
    assert engine.search("總經理年薪", "finance", k=1)[0].doc_title == "薪資"
    with pytest.raises(KnowledgeBaseNotFound):
        engine.search("年薪", "nope")


def test_index_is_rebuilt_from_the_database_when_lost(zhiku_home: Path, office: Path) -> None:
    with Zhiku(zhiku_home) as zk:
        ingest_paths(zk, [office], "ops")
    shutil.rmtree(zhiku_home / "index")
    with Zhiku(zhiku_home) as zk:
        assert zk.search("婚假", "ops", k=1)[0].doc_title == "員工請假辦法"


def test_pending_index_work_is_replayed_after_a_crash(zhiku_home: Path) -> None:
    # The database commit happened, the index write did not (a crash between the two).
    with Zhiku(zhiku_home) as zk:
        zk.kb("ops", create=True)
        doc = LoadedDocument("倉儲守則", "txt", [Block("棧板堆疊不得超過三層。")])
        zk.add_loaded("ops", "mem://a", doc)
        assert zk.store.has_pending_index_work(zk.kb("ops").id)
    with Zhiku(zhiku_home) as zk:
        hits = zk.search("棧板可以堆幾層", "ops", k=1)
        assert hits and hits[0].doc_title == "倉儲守則"
        assert not zk.store.has_pending_index_work(zk.kb("ops").id)


def test_store_written_by_a_newer_zhiku_is_refused(zhiku_home: Path) -> None:
    with Zhiku(zhiku_home) as zk:
        zk.store.db.execute(
            "INSERT INTO schema_migrations(component, version, applied_at) "
            "VALUES ('core', 999, 'x')"
        )
    with pytest.raises(StoreError, match="較新版本"):
        Zhiku(zhiku_home)


def test_delete_kb_removes_documents_and_index(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    kb_id = engine.kb("ops").id
    engine.delete_kb("ops")
    assert not (engine.home / "index" / f"kb-{kb_id}").exists()
    assert engine.store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0


def test_follow_up_without_a_model(engine: Zhiku, office: Path) -> None:
    ingest_paths(engine, [office], "ops")
    history = [
        {"role": "user", "content": "婚假有幾天？"},
        {"role": "assistant", "content": "根據《員工請假辦法》第四條：婚假八日，工資照給。"},
    ]
    # A new topic is answered on its own, not pulled back to the previous question.
    events = list(engine.ask_stream("密碼多久要變更一次？", "ops", history=history))
    done = events[-1]["answer"]
    assert "180 天" in done["answer"] and done["citations"][0]["doc"] == "IT 帳號"
    # An elliptical follow-up that cannot stand alone borrows the previous question.
    assert engine.ask("那有幾天？", "ops").refused
    events = list(engine.ask_stream("那有幾天？", "ops", history=history))
    assert not events[-1]["answer"]["refused"]
    assert events[-1]["answer"]["citations"][0]["doc"] == "員工請假辦法"


def test_restored_backup_never_trusts_a_newer_index(zhiku_home: Path, tmp_path: Path) -> None:
    def doc(title: str, text: str) -> LoadedDocument:
        return LoadedDocument(title, "txt", [Block(text)])

    backup = tmp_path / "backup.db"
    with Zhiku(zhiku_home) as zk:
        zk.kb("ops", create=True)
        zk.add_loaded("ops", "mem://a", doc("門禁規定", "訪客須於警衛室換證。"))
        zk.sync_index("ops")
        target = sqlite3.connect(backup)
        zk.store.db.backup(target)
        target.close()
        zk.add_loaded("ops", "mem://b", doc("冷鏈規定", "冷凍品須維持攝氏零下十八度。"))
        zk.sync_index("ops")
    # Restore the older database beside the newer index, then change a document: its
    # new chunk reuses the id that the stale index maps to 冷鏈規定's text.
    for suffix in ("", "-wal", "-shm"):
        (zhiku_home / f"zhiku.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, zhiku_home / "zhiku.db")
    with Zhiku(zhiku_home) as zk:
        zk.add_loaded("ops", "mem://a", doc("門禁規定", "訪客一律於大廳登記。"))
        hits = zk.search("冷凍品維持攝氏零下十八度", "ops", k=3)
        assert all("大廳" not in h.text for h in hits)
        n_chunks = zk.store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert zk.index("ops").num_docs() == n_chunks == 1
