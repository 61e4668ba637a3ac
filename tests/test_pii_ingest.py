"""PII policy applied by the engine: masked before storing, or masked on output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths

runner = CliRunner()
LOG = (
    "客服紀錄\n\n"
    "2024/03/05 客戶王小明來電，身分證字號 A123456789，手機 0912-345-678，"
    "反映包裹破損，已依出貨異常處理流程通報物流部門。\n\n"
    "客服專線 0800-088-168，服務信箱 service@chenguang.com.tw。\n"
)


def _all_stored_text(home: Path) -> str:
    con = sqlite3.connect(home / "zhiku.db")
    try:
        rows = con.execute("SELECT text FROM chunks UNION ALL SELECT title FROM documents")
        return "\n".join(r[0] for r in rows)
    finally:
        con.close()


def test_default_policy_masks_before_storing(tmp_path: Path, zhiku_home: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG, "utf-8")
    with Zhiku(zhiku_home) as zk:
        report = ingest_paths(zk, [tmp_path / "log.txt"], "cs")
        assert report.masked["tw_id"] == 1 and report.masked["mobile"] == 1
        hits = zk.search("包裹破損 通報", "cs", k=3)
        assert "A123456789" not in hits[0].text and "破損" in hits[0].text
        # Business identifiers stay, so 「客服專線是多少？」 can still be answered.
        ans = zk.ask("客服專線是多少？", "cs")
        assert "0800-088-168" in ans.text
    stored = _all_stored_text(zhiku_home)
    assert "A123456789" not in stored and "0912-345-678" not in stored
    assert "service@chenguang.com.tw" in stored
    # Nor in the index files on disk.
    for f in (zhiku_home / "index").rglob("*"):
        if f.is_file():
            assert b"a123456789" not in f.read_bytes().lower()


def test_output_mode_stores_raw_and_masks_results(tmp_path: Path, zhiku_home: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG, "utf-8")
    assert runner.invoke(app, ["kb", "create", "cs"]).exit_code == 0
    res = runner.invoke(app, ["kb", "set", "cs", "--pii-mode", "output"])
    assert res.exit_code == 0, res.stderr
    with Zhiku(zhiku_home) as zk:
        ingest_paths(zk, [tmp_path / "log.txt"], "cs")
        hit = zk.search("包裹破損", "cs", k=1)[0]
        assert "A123456789" not in hit.text and "A1" in hit.text
    assert "A123456789" in _all_stored_text(zhiku_home)


def test_kb_show_lists_the_policy_and_ingest_reports_counts(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG, "utf-8")
    res = runner.invoke(app, ["ingest", str(tmp_path), "--kb", "cs", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["masked"] == {"mobile": 1, "name": 1, "tw_id": 1}
    show = runner.invoke(app, ["kb", "show", "cs"])
    assert "身分證字號" in show.stdout and "匯入時" in show.stdout
    res = runner.invoke(app, ["kb", "set", "cs", "--pii-types", "-name", "--pii-strategy", "tag"])
    assert res.exit_code == 0
    policy = json.loads(runner.invoke(app, ["kb", "show", "cs", "--json"]).stdout)
    assert "name" not in policy["settings"]["pii"]["types"]
    assert policy["settings"]["pii"]["strategy"] == "tag"
    res = runner.invoke(
        app, ["kb", "set", "cs", "--pii-mask-business", "--pii-min-confidence", "0.8"]
    )
    assert res.exit_code == 0
    pii = json.loads(runner.invoke(app, ["kb", "show", "cs", "--json"]).stdout)["settings"]["pii"]
    assert pii["keep_business"] is False and pii["min_confidence"] == 0.8
    bad = runner.invoke(app, ["kb", "set", "cs", "--pii-mode", "sometimes"])
    assert bad.exit_code != 0


def test_metadata_is_masked_too(tmp_path: Path, zhiku_home: Path) -> None:
    (tmp_path / "note.md").write_text(
        "---\nauthor: 王小明\nphone: 0912-345-678\n---\n# 出差規定\n\n出差須事前申請。\n", "utf-8"
    )
    with Zhiku(zhiku_home) as zk:
        ingest_paths(zk, [tmp_path / "note.md"], "hr")
    con = sqlite3.connect(zhiku_home / "zhiku.db")
    meta = con.execute("SELECT meta FROM documents").fetchone()[0]
    con.close()
    assert "0912-345-678" not in meta and "0912" in meta


def test_output_mode_with_pseudonyms(tmp_path: Path, zhiku_home: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG, "utf-8")
    runner.invoke(app, ["kb", "create", "cs"])
    res = runner.invoke(
        app, ["kb", "set", "cs", "--pii-mode", "output", "--pii-strategy", "pseudonym"]
    )
    assert res.exit_code == 0, res.stderr
    with Zhiku(zhiku_home) as zk:
        ingest_paths(zk, [tmp_path / "log.txt"], "cs")
        first = zk.search("包裹破損", "cs", k=1)[0].text
        again = zk.search("包裹破損 通報", "cs", k=1)[0].text
    assert "A123456789" not in first and "〔身分證字號#" in first
    assert first == again  # the same value gets the same token within the KB
    res = runner.invoke(app, ["search", "包裹破損", "--kb", "cs", "--json"])
    assert res.exit_code == 0 and "A123456789" not in res.stdout
