"""The web UI end to end: a real ``zhiku serve`` on loopback, driven by headless Chromium.

Log in with an API key, create a KB, upload a DOCX by the file picker, watch ingestion,
ask, open a citation, give feedback; also switch to English and visit the admin page.
A document carrying HTML/script must show as text and never run.

Needs Debian's ``chromium`` (``apt-get install chromium fonts-noto-cjk``) and the
``playwright`` package (no ``playwright install``: the system browser is used). Skipped
locally without them; with ``CI=true`` a missing browser is a failure, not a skip.
Screenshots go to ``artifacts/screenshots/``; ``ZHIKU_UPDATE_SCREENSHOT=1`` also refreshes
``docs/screenshot-chat.png`` (README's).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.filegen import make_docx, make_pdf
from tests.server_util import auth, running_server
from zhiku.engine import Zhiku
from zhiku.server import accounts

CHROMIUM = os.environ.get("ZHIKU_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _require_browser() -> object:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install playwright)"
        sync_playwright = None  # type: ignore[assignment]
    if problem is None and not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} not found (apt-get install chromium)"
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"end-to-end test cannot run in CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    sync_playwright = _require_browser()
    home = tmp_path_factory.mktemp("e2e-home")
    with Zhiku(home) as zk:
        accounts.create_user(zk.store, "林淑芬", "admin")
        key = accounts.create_key(zk.store, "林淑芬", "e2e")[0]
    log = tmp_path_factory.mktemp("e2e-log") / "server.log"
    with running_server(home, log=log) as (base, _proc):
        yield sync_playwright, base, key, tmp_path_factory.mktemp("e2e-files")


def _docx(folder: Path) -> Path:
    return make_docx(
        folder / "員工請假辦法.docx",
        [
            ("title", "員工請假辦法"),
            ("heading", 1, "1 總則"),
            ("para", "本辦法依勞動基準法訂定，適用於本公司全體正式員工。"),
            ("heading", 1, "2 特別休假"),
            ("para", "員工到職滿一年者，每年給予特別休假七日；滿二年者，每年給予特別休假十日。"),
            ("heading", 1, "3 病假"),
            ("para", "病假全年合計不得超過三十日，超過部分以事假抵充，須檢附醫療證明。"),
            (
                "table",
                [["假別", "天數", "薪資"], ["婚假", "八日", "照給"], ["喪假", "三至八日", "照給"]],
            ),
        ],
        title="員工請假辦法",
    )


def test_login_upload_ask_cite_feedback(server) -> None:  # type: ignore[no-untyped-def]
    sync_playwright, base, key, files = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    docx = _docx(files)
    xss_doc = files / "系統公告.txt"
    xss_doc.write_text(f"系統公告：資訊安全宣導 {XSS} 請勿開啟來路不明的附件。", "utf-8")
    pdf = make_pdf(
        files / "福利手冊.pdf",
        [
            ["福利手冊", "第一章 總則", "本手冊說明員工福利。"],
            ["第二章 旅遊補助", "員工年度旅遊補助每人新臺幣五千元，須於當年度申請。"],
        ],
        title="福利手冊",
    )
    fake_pdf = files / "季報.pdf"
    fake_pdf.write_text("<html><body>not a pdf</body></html>", "utf-8")

    with sync_playwright() as pw:  # type: ignore[operator]
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 860}, locale="zh-TW")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # --- log in --------------------------------------------------------------------
        page.goto(base + "/")
        page.get_by_test_id("login-key").wait_for()
        page.screenshot(path=str(SHOTS / "login.png"))
        page.get_by_test_id("login-key").fill("zk_bad_key")
        page.get_by_test_id("login-submit").click()
        page.get_by_role("alert").wait_for()
        assert "金鑰無效" in page.get_by_role("alert").inner_text()
        page.get_by_test_id("login-key").fill(key)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("tab-chat").wait_for()
        assert page.locator("#user-name").inner_text() == "林淑芬"

        # --- knowledge: create a KB, upload by the file picker, watch ingestion -----------
        page.get_by_test_id("tab-kb").click()
        page.get_by_test_id("new-kb-name").fill("人資")
        page.get_by_test_id("create-kb").click()
        page.get_by_test_id("dropzone").wait_for()
        page.get_by_test_id("file-input").set_input_files(
            [str(docx), str(xss_doc), str(pdf), str(fake_pdf)]
        )
        job = page.get_by_test_id("job").first
        job.locator(".badge.done").first.wait_for(timeout=30_000)
        assert "4 / 4" in job.inner_text()
        # The per-file error: content checked, not the name.
        error = job.get_by_test_id("file-error").inner_text()
        assert "與副檔名 .pdf 不符" in error and "type_mismatch" in error
        page.get_by_test_id("document").nth(1).wait_for()
        titles = page.get_by_test_id("documents").inner_text()
        assert "員工請假辦法" in titles and "系統公告" in titles
        page.screenshot(path=str(SHOTS / "knowledge.png"), full_page=True)

        # --- chat: ask, streamed answer with citation chips ------------------------------
        page.get_by_test_id("tab-chat").click()
        page.get_by_test_id("question").fill("到職滿一年有幾天特休？")
        page.get_by_test_id("ask").click()
        chip = page.get_by_test_id("citation").first
        chip.wait_for(timeout=15_000)
        answer = page.get_by_test_id("answer").first.inner_text()
        assert "七日" in answer
        assert "員工請假辦法" in chip.inner_text()

        # --- open the citation: exact passage with title and section ------------------------
        chip.click()
        page.get_by_test_id("source-title").wait_for()
        assert page.get_by_test_id("source-title").inner_text() == "員工請假辦法"
        assert "特別休假七日" in page.get_by_test_id("source-text").inner_text()
        assert "2 特別休假" in page.get_by_test_id("source-panel").inner_text()
        assert page.locator("[data-testid=source-text] mark").count() == 1

        # --- feedback ---------------------------------------------------------------------------
        page.get_by_test_id("feedback-up").first.click()
        page.get_by_test_id("feedback-comment").first.fill("清楚，有附條文出處")
        page.get_by_test_id("feedback-send").first.click()
        page.get_by_test_id("feedback-status").first.filter(has_text="感謝").wait_for()
        page.screenshot(path=str(SHOTS / "chat.png"))

        # --- a document carrying markup is shown as text, never run ----------------------------
        page.get_by_test_id("question").fill("系統公告的資訊安全宣導說什麼？")
        page.get_by_test_id("ask").click()
        page.get_by_test_id("turn").nth(1).get_by_test_id("citation").first.wait_for()
        page.get_by_test_id("turn").nth(1).get_by_test_id("citation").first.click()
        page.get_by_test_id("source-title").filter(has_text="系統公告").wait_for()
        assert "<img src=x onerror=" in page.get_by_test_id("source-text").inner_text()
        assert "<script>" in page.get_by_test_id("answer").nth(1).inner_text()
        assert page.evaluate("window.__xss") is None
        injected = "[data-testid=source-panel] img, [data-testid=messages] script"
        assert page.locator(injected).count() == 0
        page.screenshot(path=str(SHOTS / "chat-escaped-markup.png"))

        # --- a new conversation; a PDF citation carries its page -------------------------------
        page.get_by_test_id("new-conversation").click()
        assert page.get_by_test_id("turn").count() == 0
        page.get_by_test_id("question").fill("年度旅遊補助每人多少錢？")
        page.get_by_test_id("ask").click()
        pdf_chip = page.get_by_test_id("turn").first.get_by_test_id("citation").first
        pdf_chip.wait_for()
        assert "第 2 頁" in pdf_chip.inner_text()
        pdf_chip.click()
        page.get_by_test_id("source-title").filter(has_text="福利手冊").wait_for()
        assert page.get_by_test_id("source-page").inner_text() == "2"
        assert "第二章 旅遊補助" in page.get_by_test_id("source-panel").inner_text()
        page.screenshot(path=str(SHOTS / "chat-pdf-page.png"))

        # --- history: both conversations are listed; the first reopens with its feedback ------
        history = page.get_by_test_id("history").locator("button.conv")  # not rename/delete
        history.nth(1).wait_for()
        assert history.count() == 2
        history.filter(has_text="到職滿一年有幾天特休").click()
        page.get_by_test_id("turn").nth(1).wait_for()
        assert page.get_by_test_id("turn").count() == 2
        assert page.get_by_test_id("feedback-up").first.get_attribute("aria-pressed") == "true"

        # --- admin page and the English switch ----------------------------------------------------
        page.get_by_test_id("tab-admin").click()
        page.get_by_test_id("users").wait_for()
        page.get_by_test_id("user-name").fill("王小明")
        page.get_by_test_id("create-user").click()
        page.get_by_test_id("users").filter(has_text="王小明").wait_for()
        assert "upload" in page.get_by_test_id("audit").inner_text()
        # A folder source: registered here, synced by the server's worker, shown as done.
        share = files / "nas"
        share.mkdir()
        (share / "加班規定.txt").write_text("延長工時每月不得超過四十六小時。", "utf-8")
        page.get_by_test_id("source-name").fill("nas")
        page.get_by_test_id("source-target").fill(str(share))
        page.get_by_test_id("create-source").click()
        page.get_by_test_id("sources").filter(has_text="nas").wait_for()
        for _ in range(60):  # the first run is due at once; re-render until it is done
            if "完成" in page.get_by_test_id("sources").inner_text():
                break
            page.get_by_test_id("tab-chat").click()
            page.get_by_test_id("tab-admin").click()
            page.get_by_test_id("sources").wait_for()
            time.sleep(0.5)
        assert "added 1" in page.get_by_test_id("sources").inner_text()
        page.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
        page.get_by_test_id("lang-toggle").click()
        page.get_by_test_id("tab-chat").filter(has_text="Chat").wait_for()
        page.get_by_test_id("tab-chat").click()
        page.get_by_test_id("new-conversation").filter(has_text="New conversation").wait_for()
        page.get_by_test_id("history").get_by_role("button").first.wait_for()
        page.screenshot(path=str(SHOTS / "chat-en.png"))
        assert page.evaluate("document.documentElement.lang") == "en"
        assert not errors, errors
        browser.close()

    # The feedback reached the server, attached to the answer it was given on.
    fb = httpx.get(base + "/api/v1/feedback", headers=auth(key)).json()["feedback"]
    assert [(f["rating"], f["comment"]) for f in fb] == [("up", "清楚，有附條文出處")]
    assert "七日" in fb[0]["answer"]["answer"]
    # README's screenshot: written when missing or asked for (ZHIKU_UPDATE_SCREENSHOT=1), so
    # an ordinary test run leaves the working tree clean.
    readme_shot = ROOT / "docs" / "screenshot-chat.png"
    if readme_shot.parent.is_dir() and (
        not readme_shot.exists() or os.environ.get("ZHIKU_UPDATE_SCREENSHOT") == "1"
    ):
        shutil.copyfile(SHOTS / "chat.png", readme_shot)
