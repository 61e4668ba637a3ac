"""Resource limits (zhiku.limits): measured container scans, counters while reading,
passage limits, and the worker process with its time and memory budgets."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import hostile_gen as hg
from tests.filegen import make_pdf, make_text, wrap_cjk
from zhiku import limits, loaders
from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.errors import LoadError
from zhiku.ingest import ingest_file, ingest_paths
from zhiku.server import uploads


def _err(fn: object, *args: object, **kw: object) -> LoadError:
    with pytest.raises(LoadError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value


def test_docx_style_lookups_do_not_grow_with_paragraphs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docx.oxml.styles import CT_Styles

    calls = {"n": 0}
    for name in ("get_by_id", "default_for"):
        orig = getattr(CT_Styles, name)

        def counted(self: object, *a: object, _orig: object = orig) -> object:
            calls["n"] += 1
            return _orig(self, *a)  # type: ignore[operator]

        monkeypatch.setattr(CT_Styles, name, counted)
    p = hg.docx_styles(tmp_path / "styles.docx", styles=300, paragraphs=2000)
    doc = loaders.load(p)
    texts = [b.text for b in doc.blocks]
    assert "第 1999 段內容，說明出貨流程。" in texts and len(texts) == 2001
    # Each python-docx lookup scans every style: the loader must not do one per paragraph.
    assert calls["n"] < 50, calls["n"]


def test_docx_styles_limit(tmp_path: Path) -> None:
    p = hg.docx_styles(tmp_path / "styles.docx", styles=500, paragraphs=10)
    err = _err(loaders.load, p, limits=limits.Limits(max_styles=100))
    assert err.reason == "too_complex" and "樣式" in err.message


def test_zip_expansion_is_measured_not_read_from_headers(tmp_path: Path) -> None:
    p = hg.docx_expanding(tmp_path / "under.docx", 30, understate=True)
    with zipfile.ZipFile(p) as zf:
        assert zf.getinfo("word/document.xml").file_size == 1024  # what the headers claim
        assert sum(i.file_size for i in zf.infolist()) < 2 * 1024 * 1024
    err = _err(loaders.load, p, limits=limits.Limits(max_expanded_mb=10))
    assert err.reason == "bomb"
    # The server's upload check measures too (it used to add up the headers).
    with pytest.raises(uploads.Rejected) as info:
        uploads.check_type(p, "報告.docx", 10 * 1024 * 1024)
    assert info.value.reason == "bomb"


def test_honest_big_docx_is_refused_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hg.docx_expanding(src / "炸彈.docx", 40)
    make_text(src / "正常.txt", "出貨異常應於二十四小時內通報物流部門。")
    monkeypatch.setenv("ZHIKU_LIMIT_MAX_EXPANDED_MB", "16")
    r = CliRunner().invoke(app, ["ingest", str(src), "--home", str(tmp_path / "h"), "--json"])
    out = json.loads(r.stdout)
    assert out["added"] == 1
    assert [f["reason"] for f in out["failed"]] == ["bomb"]
    assert "炸彈.docx" in out["failed"][0]["path"]
    assert r.exit_code != 0  # a failed file is reported in the exit code


def test_xml_element_limit(tmp_path: Path) -> None:
    p = hg.docx_elements(tmp_path / "el.docx", 100_000)
    err = _err(loaders.load, p, limits=limits.Limits(max_xml_elements=20_000))
    assert err.reason == "too_complex" and "XML" in err.message


def test_rows_limit_counts_while_reading(tmp_path: Path) -> None:
    p = hg.xlsx_rows(tmp_path / "rows.xlsx", 3000)
    assert len(loaders.load(p).blocks) == 3000  # within the default limits
    err = _err(loaders.load, p, limits=limits.Limits(max_rows=1000))
    assert err.reason == "too_large" and "1,000" in err.message


def test_pages_limit(tmp_path: Path) -> None:
    p = make_pdf(tmp_path / "p.pdf", [[f"第 {i} 頁內容。"] for i in range(12)])
    err = _err(loaders.load, p, limits=limits.Limits(max_pages=10))
    assert err.reason == "too_large" and "頁" in err.message


def test_passage_limits(tmp_path: Path) -> None:
    md = make_text(tmp_path / "many.md", "\n\n".join(f"第 {i} 段。" for i in range(300)))
    assert _err(loaders.load, md, limits=limits.Limits(max_passages=100)).reason == "too_large"
    long = make_text(tmp_path / "long.txt", "很長的一段文字" * 2000)
    err = _err(loaders.load, long, limits=limits.Limits(max_passage_chars=5000))
    assert err.reason == "too_large" and "5,000" in err.message


def test_limits_from_env_and_validation() -> None:
    lim = limits.Limits.from_env({"ZHIKU_LIMIT_MAX_ROWS": "7", "ZHIKU_LIMIT_ISOLATE": "off"})
    assert lim.max_rows == 7 and lim.isolate is False
    with pytest.raises(limits.LimitsError):
        limits.Limits.from_env({"ZHIKU_LIMIT_FILE_SECONDS": "abc"})
    with pytest.raises(limits.LimitsError):
        limits.Limits.from_env({"ZHIKU_LIMIT_MAX_PAGES": "0"})
    assert limits.Limits.from_env(lim.to_env()) == lim


def test_memory_budget_kills_the_worker_and_the_next_file_loads(tmp_path: Path) -> None:
    bomb = hg.pdf_flate_bomb(tmp_path / "bomb.pdf", 500)
    assert bomb.stat().st_size < 1_000_000
    lim = limits.Limits(file_memory_mb=250)
    err = _err(limits.load_isolated, bomb, lim)
    assert err.reason == "bomb" and "250 MB" in err.message
    ok = make_text(tmp_path / "ok.txt", "炸彈之後的小檔案仍可讀取。")
    assert limits.load_isolated(ok, lim).blocks[0].text == "炸彈之後的小檔案仍可讀取。"


def test_time_budget(tmp_path: Path) -> None:
    text = "員工因普通傷害、疾病或生理原因必須治療或休養者，得請普通傷病假。" * 10
    pages = [wrap_cjk(f"第 {i} 條 " + text, 76)[:36] for i in range(200)]
    pdf = make_pdf(tmp_path / "slow.pdf", pages)
    lim = limits.Limits(file_seconds=0.2, seconds_per_mb=0.0)
    err = _err(limits.load_isolated, pdf, lim)
    assert err.reason == "too_complex" and "秒" in err.message
    assert limits.worker().proc is None  # killed, not left running


def test_big_worker_is_retired_so_memory_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = limits.LoadWorker()
    monkeypatch.setattr(limits.LoadWorker, "RETIRE_RSS", 1)  # any worker counts as big
    ok = make_text(tmp_path / "ok.txt", "內容。")
    assert w.load(ok, limits.Limits()).blocks
    assert w.proc is None and w.peak_rss > 0


def test_ingest_reports_the_limit_and_keeps_going(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hg.xlsx_rows(src / "列.xlsx", 2000)
    make_text(src / "好.txt", "退貨須於七日內申請。")
    with limits.using(limits.Limits(max_rows=500)), Zhiku(tmp_path / "h") as zk:
        rep = ingest_paths(zk, [src], "default")
        assert rep.count("added") == 1
        assert [(Path(f.path).name, f.reason) for f in rep.failed] == [("列.xlsx", "too_large")]
        assert zk.search("退貨")  # the good file is stored and searchable
        res = ingest_file(zk, "default", src / "列.xlsx")
        assert res.status == "failed" and res.reason == "too_large"
