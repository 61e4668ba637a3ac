"""``zhiku --home DIR <command>``: every command of the tree runs on DIR.

``ZHIKU_HOME`` points at a decoy directory that must never be created; each command is
run with the root ``--home`` only. The table below names every leaf command, and a test
fails when a command is added without an entry.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tests.server_util import free_port
from zhiku.cli import app
from zhiku.cli_help import walk

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DOCX = str(SAMPLES / "出貨異常處理SOP.docx")
LAW = {
    "Laws": [
        {
            "LawLevel": "法律",
            "LawName": "勞動基準法",
            "LawModifiedDate": "20240731",
            "LawURL": "https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode=N0030001",
            "LawCategory": "行政",
            "LawAbandonNote": "",
            "LawArticles": [
                {
                    "ArticleType": "A",
                    "ArticleNo": "第 30 條",
                    "ArticleContent": "勞工正常工作時間，每日不得超過八小時。",
                }
            ],
        }
    ]
}

# Commands run in-process, in this order: (command, arguments after it, accepted exit codes).
# {tmp} is the test's directory; {key} the prefix of the key `keys create` made.
IN_PROCESS: list[tuple[str, list[str], set[int]]] = [
    ("ingest", [str(SAMPLES), "-q"], {0}),
    ("docs", [], {0}),
    ("meta", [DOCX, "dept=ops"], {0}),
    ("search", ["出貨異常 通報"], {0}),
    ("ask", ["出貨異常要多久內通報？"], {0}),
    ("stats", [], {0}),
    ("reindex", [], {0}),
    ("sync", [], {0}),
    ("backup", ["{tmp}/backup.db"], {0}),
    ("kb create", ["extra"], {0}),
    ("kb list", [], {0}),
    ("kb show", [], {0}),
    ("kb calibrate", [], {0, 1}),
    ("kb set", ["extra", "--pii-mode", "output"], {0}),
    ("kb delete", ["extra", "--yes"], {0}),
    ("pii find", ["電話 0912-345-678"], {0, 1}),
    ("pii scan", [str(SAMPLES / "客服常見問題.xlsx")], {0, 1}),
    ("pii redact", [str(SAMPLES / "客服常見問題.xlsx"), "{tmp}/redacted.xlsx"], {0}),
    ("law import", ["{tmp}/ChLaw.json", "--kb", "law"], {0}),
    ("source add", ["notes", str(SAMPLES), "--every", "manual", "--kb", "src"], {0}),
    ("source list", [], {0}),
    ("source run", ["notes", "--kb", "src"], {0, 1}),
    ("source rm", ["notes", "--kb", "src"], {0}),
    ("users create", ["alice", "--role", "editor"], {0}),
    ("users list", [], {0}),
    ("users grant", ["alice", "--kb", "default"], {0}),
    ("users revoke", ["alice", "--kb", "default"], {0}),
    ("users set-role", ["alice", "reader"], {0}),
    ("users disable", ["alice"], {0}),
    ("users enable", ["alice"], {0}),
    ("keys create", ["--user", "alice"], {0}),
    ("keys list", [], {0}),
    ("keys revoke", ["{key}"], {0}),
    ("access user", ["alice", "--groups", "hr", "--level", "內部"], {0}),
    ("access label", [DOCX, "--groups", "hr", "--level", "內部"], {0}),
    ("access levels", [], {0}),
    ("users delete", ["alice", "--yes"], {0}),
    ("audit", [], {0}),
    ("pii subject request", ["access", "phone", "0912345678"], {0}),
    ("pii subject requests", [], {0}),
    ("pii subject find", ["phone", "0912345678", "--request", "1"], {0}),
    ("pii subject export", ["phone", "0912345678", "-o", "{tmp}/subject.json"], {0}),
    ("pii subject erase", ["phone", "0912345678", "--yes"], {0}),
    ("retention set", ["conversations", "30"], {0}),
    ("retention show", [], {0}),
    ("retention run", [], {0}),
    ("line add", ["shop", "--secret", "s3cret", "--token", "t0ken", "--kb", "default"], {0}),
    ("line list", [], {0}),
    ("line remove", ["shop"], {0}),
    ("widget add", ["site", "--kb", "default", "--origin", "https://www.example.com"], {0}),
    ("widget list", [], {0}),
    ("widget remove", ["site"], {0}),
    ("webhooks add", ["crm", "https://203.0.113.10/hook"], {0}),
    ("webhooks list", [], {0}),
    ("webhooks deliveries", [], {0}),
    ("webhooks redeliver", ["1"], {3}),  # no delivery to send again yet
    ("webhooks remove", ["crm"], {0}),
    ("report", ["--since", "7d"], {0}),
    ("export sft", ["--kb", "default", "-o", "{tmp}/sft.jsonl"], {0}),
    ("migrate", ["--to", "postgresql://zhiku@127.0.0.1:1/none"], {4}),
    ("models check", [], {0, 1}),
    ("models show", [], {0}),
    ("models embed", [], {0, 1, 2}),
    ("models calibrate", [], {0, 1, 2}),
    ("chat", [], {0}),
    ("rm", [DOCX], {0}),
    ("restore", ["{tmp}/backup.db"], {0}),
]
SUBPROCESS = {"serve", "watch", "crawl"}


def _leaf_commands() -> set[str]:
    root = typer.main.get_command(app)
    return {
        path.removeprefix("zhiku ")
        for path, cmd in walk(root)
        if not getattr(cmd, "commands", None)
    }


def test_the_table_names_every_command() -> None:
    assert {c for c, _, _ in IN_PROCESS} | SUBPROCESS == _leaf_commands()


@pytest.fixture
def decoy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "decoy-home"
    monkeypatch.setenv("ZHIKU_HOME", str(path))
    yield path
    assert not path.exists(), "a command used ZHIKU_HOME instead of --home"


def test_every_command_in_process_uses_the_root_home(tmp_path: Path, decoy: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "ChLaw.json").write_text(json.dumps(LAW, ensure_ascii=False), "utf-8")
    runner = CliRunner()
    key = ""
    for command, args, codes in IN_PROCESS:
        argv = [a.format(tmp=tmp_path, key=key) for a in args]
        res = runner.invoke(app, ["--home", str(home), *command.split(), *argv], input="/exit\n")
        assert res.exit_code in codes, (command, res.exit_code, res.output)
        assert os.environ["ZHIKU_HOME"] == str(decoy), f"{command} left ZHIKU_HOME changed"
        if command == "keys create":
            key = re.search(r"金鑰 (\S+) 屬於", res.stderr).group(1)  # type: ignore[union-attr]
        if command == "docs":
            assert DOCX in res.stdout
        if command == "ask":
            assert "24 小時" in res.stdout
        if command == "stats":
            assert "default" in res.stdout
    assert (home / "zhiku.db").is_file()
    assert (tmp_path / "redacted.xlsx").is_file()


def _zhiku(home: Path, *args: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "zhiku", "--home", str(home), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **kw,
    )  # type: ignore[call-overload]


def _documents(home: Path, kb: str) -> list[str]:
    res = CliRunner().invoke(app, ["--home", str(home), "docs", "--kb", kb, "--json"])
    return [d["path"] for d in json.loads(res.stdout)["documents"]] if res.exit_code == 0 else []


def _until(check: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_watch_and_crawl_use_the_root_home(tmp_path: Path, decoy: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # watch: the folder's file reaches the knowledge base of --home
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "規定.md").write_text("# 規定\n\n報銷單據須於 30 日內送交財務部。\n", "utf-8")
    proc = _zhiku(home, "watch", str(folder), "--kb", "w", "--debounce", "0.2", env=env)
    try:
        _until(lambda: any(p.endswith("規定.md") for p in _documents(home, "w")))
    finally:
        _stop(proc)
    # crawl: a page served on loopback
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<html><head><title>公告</title></head><body><p>門市週一公休，請改日來訪。</p>"
        "</body></html>",
        "utf-8",
    )
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        crawl = _zhiku(
            home,
            "crawl",
            url,
            "--allow-ip",
            "127.0.0.1",
            "--kb",
            "web",
            "-q",
            "--no-sitemap",
            env=env,
        )
        assert crawl.wait(120) == 0
    finally:
        httpd.shutdown()
    assert _documents(home, "web")
    # serve: answers from the knowledge bases of --home
    port = free_port()
    proc = _zhiku(home, "serve", "--host", "127.0.0.1", "--port", str(port), env=env)
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, "server exited"
                return False

        _until(ready)
    finally:
        _stop(proc)
    assert (home / "zhiku.db").is_file()
