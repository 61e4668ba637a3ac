"""The zhiku command line: JSON shapes, exit codes, bad files, a crash mid-ingest."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.corpus import build_office_folder
from tests.filegen import make_docx, make_pdf
from zhiku.cli import app

runner = CliRunner()
CITATION_KEYS = {"doc", "path", "section", "page", "text", "score"}


@pytest.fixture
def office(tmp_path: Path) -> Path:
    return build_office_folder(tmp_path / "docs")


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_ingest_then_ask_json_shape(office: Path) -> None:
    code, _, _ = run("ingest", str(office), "--kb", "hr", "-q")
    assert code == 0
    code, out, _ = run("ask", "婚假有幾天？", "--kb", "hr", "--json")
    assert code == 0
    obj = json.loads(out)
    assert set(obj) == {"answer", "refused", "citations"}
    assert obj["refused"] is False
    assert obj["citations"] and set(obj["citations"][0]) == CITATION_KEYS
    assert obj["citations"][0]["doc"] == "員工請假辦法"
    assert "婚假八日" in obj["answer"]


def test_search_json_and_k(office: Path) -> None:
    run("ingest", str(office), "--kb", "ops", "-q")
    code, out, _ = run("search", "出貨異常 通報", "--kb", "ops", "-k", "2", "--json")
    assert code == 0
    hits = json.loads(out)["hits"]
    assert len(hits) == 2 and all(set(h) == CITATION_KEYS for h in hits)
    assert hits[0]["score"] >= hits[1]["score"]


def test_refusal_exit_code_and_json(office: Path) -> None:
    run("ingest", str(office), "--kb", "ops", "-q")
    code, out, _ = run("ask", "今年尾牙抽獎的頭獎是什麼？", "--kb", "ops", "--json")
    assert code == 1
    assert json.loads(out) == {
        "answer": "知識庫中找不到相關資料。",
        "refused": True,
        "citations": [],
    }


def test_bad_files_are_named_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    make_docx(folder / "good.docx", [("heading", 1, "規則"), ("para", "加班須事前申請。")])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not a pdf")
    (folder / "broken.docx").write_bytes(os.urandom(512))
    (folder / "empty.txt").write_bytes(b"")
    make_pdf(folder / "locked.pdf", [["機密"]], user_password="secret")
    code, out, _ = run("ingest", str(folder), "--kb", "x", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["added"] == 1
    reasons = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert reasons == {
        "broken.pdf": "corrupt",
        "broken.docx": "corrupt",
        "empty.txt": "empty",
        "locked.pdf": "encrypted",
    }
    assert all(f["message"] for f in report["failed"])
    code, out, _ = run("ask", "加班要申請嗎", "--kb", "x", "--json")
    assert code == 0 and "加班須事前申請" in json.loads(out)["answer"]


def test_missing_path_and_missing_kb_exit_codes(tmp_path: Path) -> None:
    code, _, err = run("ingest", str(tmp_path / "nope"), "--kb", "x", "-q")
    assert code == 1 and "找不到" in err
    code, _, err = run("ask", "問題", "--kb", "不存在")
    assert code == 3 and "不存在" in err


def test_docs_rm_stats_kb_show(office: Path) -> None:
    run("ingest", str(office), "--kb", "ops", "-q")
    code, out, _ = run("docs", "--kb", "ops", "--json")
    docs = json.loads(out)["documents"]
    assert len(docs) == 5
    faq = next(d["path"] for d in docs if d["path"].endswith("FAQ.xlsx"))
    assert run("rm", faq, "--kb", "ops")[0] == 0
    assert run("rm", faq, "--kb", "ops")[0] == 3
    code, out, _ = run("stats", "--json")
    st = json.loads(out)
    assert st["kbs"][0]["name"] == "ops" and st["kbs"][0]["documents"] == 4
    code, out, _ = run("kb", "show", "ops", "--json")
    assert json.loads(out)["documents"] == 4
    code, out, _ = run("search", "客服專線", "--kb", "ops", "--json")
    assert all("FAQ" not in h["path"] for h in json.loads(out)["hits"])


def test_backup_is_a_usable_database(office: Path, tmp_path: Path) -> None:
    run("ingest", str(office), "--kb", "ops", "-q")
    dest = tmp_path / "backup.db"
    assert run("backup", str(dest))[0] == 0
    con = sqlite3.connect(dest)
    assert con.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 5
    assert run("backup", str(dest))[0] == 2  # never overwrites


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_killed_mid_ingest_then_rerun_is_consistent(tmp_path: Path, zhiku_home: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1000):
        (folder / f"規章{i:03d}.md").write_text(
            f"# 規章 {i}\n\n## 第 {i} 條\n\n第 {i} 號規定：倉庫 {i} 號門於 {i % 24} 時關閉。\n"
            + "說明文字。" * 40
            + "\n",
            "utf-8",
        )
    db = zhiku_home / "zhiku.db"
    cmd = [sys.executable, "-m", "zhiku", "ingest", str(folder), "--kb", "big", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(db, "SELECT COUNT(*) FROM documents") >= 50:
            break
        time.sleep(0.02)  # polling the database, not waiting for a guess
    assert proc.poll() is None, "ingest finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(db, "SELECT COUNT(*) FROM documents")
    assert 50 <= partial < 1000
    # The database is consistent at the kill: every document has its chunks.
    assert (
        _count(
            db,
            "SELECT COUNT(*) FROM documents d WHERE NOT EXISTS "
            "(SELECT 1 FROM chunks c WHERE c.doc_id=d.id)",
        )
        == 0
    )
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _count(db, "SELECT COUNT(*) FROM documents") == 1000
    assert (
        _count(
            db,
            "SELECT COUNT(*) FROM (SELECT doc_id, ord FROM chunks "
            "GROUP BY doc_id, ord HAVING COUNT(*) > 1)",
        )
        == 0
    )
    from zhiku.engine import Zhiku

    with Zhiku(zhiku_home) as zk:
        n_chunks = _count(db, "SELECT COUNT(*) FROM chunks")
        assert zk.index("big").num_docs() == n_chunks
        hits = zk.search("倉庫 137 號門幾點關閉", "big", k=3)
        assert hits[0].doc_title == "規章 137"


def test_terminal_output_shows_markup_like_text_literally(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "[red]標記[bold].md").write_text(
        "# 規則 [/b]\n\n報銷單據須於 [bold]30 日[/] 內送交財務部。\n", "utf-8"
    )
    code, _, err = run("ingest", str(folder), "--kb", "m")
    assert code == 0, err
    code, out, err = run("search", "報銷單據", "--kb", "m")
    assert code == 0, err
    assert "[bold]30 日[/]" in out
    code, out, _ = run("docs", "--kb", "m")
    assert code == 0 and "規則 [/b]" in out
    code, out, _ = run("ask", "報銷單據要幾日內送交？", "--kb", "m")
    assert code == 0 and "[bold]30 日[/]" in out
