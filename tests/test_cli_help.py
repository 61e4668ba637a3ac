"""The CLI as a product: help in zh-TW (English with ZHIKU_LANG=en) with plain metavars,
``zhiku ask`` without a knowledge base, and ``zhiku docs`` paths that ``zhiku rm`` takes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.filegen import make_docx
from zhiku.cli import app
from zhiku.cli_help import EN, help_texts, localize, walk

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
TYPE_HINT = re.compile(r"<[a-z][a-z ]*(\[[a-zA-Z\[\], ]*\])?>")  # <list[str]>, <int range>
CJK = re.compile(r"[\u3400-\u9fff]")


def _tree(language: str) -> Any:
    return localize(typer.main.get_command(app), language)


def _help(cmd: Any, path: str) -> str:
    ctx = cmd.context_class(cmd, info_name=path)
    return str(cmd.get_help(ctx))


def test_every_command_and_parameter_has_zh_help() -> None:
    for path, cmd in walk(_tree("zh-TW")):
        assert (cmd.help or "").strip(), f"{path} has no help"
        for p in cmd.params:
            assert (getattr(p, "help", None) or "").strip(), f"{path} {p.name} has no help"


def test_zh_help_has_no_python_types_nor_english_headings() -> None:
    for path, cmd in walk(_tree("zh-TW")):
        text = _help(cmd, path)
        assert text.startswith("用法：" + path), text[:80]
        assert not TYPE_HINT.search(text), (path, TYPE_HINT.search(text))
        for english in (
            "Usage:",
            "Options:",
            "Arguments:",
            "Commands:",
            "[default:",
            "[required]",
            "[env var:",
            "Show this message",
        ):
            assert english not in text, (path, english)
        assert "選項：" in text


def test_every_help_text_has_english() -> None:
    missing = [(where, text) for where, text in help_texts(_tree("zh-TW")) if text not in EN]
    assert not missing, missing


def test_english_help_is_english() -> None:
    for path, cmd in walk(_tree("en")):
        text = _help(cmd, path)
        assert text.startswith("Usage: " + path)
        assert not TYPE_HINT.search(text), (path, TYPE_HINT.search(text))
        # Chinese only inside examples of values (tag=規章, 第 30-1 條), never a whole line
        for line in text.splitlines():
            words = re.findall(r"[A-Za-z]{3,}", line)
            assert not CJK.search(line) or words, (path, line)


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        (None, ["用法：zhiku ask", "回答問題並附上出處", "--kb KB", "--top N", "引數："], "Usage"),
        ("en", ["Usage: zhiku ask", "Answer a question with citations", "--kb KB"], "回答問題"),
    ],
)
def test_the_installed_command_speaks_the_language(
    lang: str | None, expected: list[str], absent: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ZHIKU_LANG"}
    if lang:
        env["ZHIKU_LANG"] = lang
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run(
        [sys.executable, "-m", "zhiku", "ask", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for fragment in expected:
        assert fragment in res.stdout
    assert absent not in res.stdout
    assert "<str>" not in res.stdout and "<list" not in res.stdout


def _ingest(home: Path, folder: Path, kb: str) -> None:
    res = runner.invoke(app, ["--home", str(home), "ingest", str(folder), "--kb", kb, "-q"])
    assert res.exit_code == 0, res.output


@pytest.fixture
def two_kbs(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for kb, text in (("hr", "特休未休完可遞延至次年度。"), ("ops", "出貨異常須於 24 小時內通報。")):
        folder = tmp_path / kb
        folder.mkdir()
        make_docx(folder / f"{kb}.docx", [("heading", 1, "規定"), ("para", text)])
        _ingest(home, folder, kb)
    return home


@pytest.mark.parametrize("command", [["ask", "特休可以遞延嗎？"], ["search", "特休"], ["chat"]])
def test_asking_without_a_kb_lists_them(two_kbs: Path, command: list[str]) -> None:
    res = runner.invoke(app, ["--home", str(two_kbs), *command], input="/exit\n")
    assert res.exit_code == 2
    assert "--kb" in res.stderr and "要問哪個知識庫" in res.stderr
    lines = [line.strip() for line in res.stderr.splitlines()]
    assert "hr" in lines and "ops" in lines
    assert res.stdout == ""
    en = runner.invoke(
        app, ["--home", str(two_kbs), *command], input="/exit\n", env={"ZHIKU_LANG": "en"}
    )
    assert en.exit_code == 2 and "Which knowledge base?" in en.stderr


def test_asking_an_empty_home_says_how_to_start(tmp_path: Path) -> None:
    res = runner.invoke(app, ["--home", str(tmp_path / "h"), "ask", "特休？"])
    assert res.exit_code == 2 and "zhiku ingest" in res.stderr


def test_the_default_kb_is_still_asked_without_kb(two_kbs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "default"
    folder.mkdir()
    make_docx(folder / "d.docx", [("heading", 1, "規定"), ("para", "婚假八日，工資照給。")])
    _ingest(two_kbs, folder, "default")
    res = runner.invoke(app, ["--home", str(two_kbs), "ask", "婚假幾天？"])
    assert res.exit_code == 0 and "八日" in res.stdout
    res = runner.invoke(
        app,
        ["--home", str(two_kbs), "ask", "特休可以遞延嗎？", "--kb", "hr", "--kb", "ops", "--json"],
    )
    assert res.exit_code == 0 and "遞延" in json.loads(res.stdout)["answer"]


def test_docs_shows_whole_paths_that_rm_takes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    deep = tmp_path / "公司文件" / "人資部" / "2024年度" / "規章制度與作業程序彙編"
    deep.mkdir(parents=True)
    long_name = deep / (
        "員工請假管理辦法暨特別休假與加班補休申請作業要點（修正草案第三版）_final_v3_reviewed.docx"
    )
    make_docx(long_name, [("heading", 1, "請假規定"), ("para", "特休未休完可遞延至次年度。")])
    make_docx(deep / "短.docx", [("heading", 1, "規定"), ("para", "婚假八日。")])
    _ingest(home, deep, "hr")
    assert len(str(long_name)) > 120
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    listing = subprocess.run(
        [sys.executable, "-m", "zhiku", "--home", str(home), "docs", "--kb", "hr"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    paths = [line.strip() for line in listing.splitlines() if line.strip().startswith("/")]
    assert str(long_name) in paths, listing
    assert "…" not in listing
    # copied from the listing into rm, the document goes
    res = runner.invoke(app, ["--home", str(home), "rm", str(long_name), "--kb", "hr"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--home", str(home), "docs", "--kb", "hr", "--json"])
    assert [Path(d["path"]).name for d in json.loads(res.stdout)["documents"]] == ["短.docx"]
