"""The service loop in the web UI, end to end: a real ``zhiku serve`` driven by headless
Chromium (Debian's, through playwright), at desktop size and at phone width (390 px).

A reader is refused, asks for a person, and sees the agent's reply; the agent works the
case in the inbox; the admin reads the analytics (uPlot charts), writes the answer of a
gap, pins a passage for another gap (searching the KB) and unpins it, and uploads a
folder of 25 files (two upload requests); the conversation is renamed and deleted. At
390 px the header (登出, the language switch), the tab labels and the admin table stay
usable. Screenshots: ``docs/screenshots/loop-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server_util import build_home, running_server
from tests.test_web_e2e import CHROMIUM, _require_browser
from zhiku.engine import Zhiku
from zhiku.server import accounts
from zhiku.storage.loop import SqlLoopRepository

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sync_playwright = _require_browser()
    home = tmp_path_factory.mktemp("loop-e2e") / "home"
    keys = build_home(home)
    with Zhiku(home) as zk:
        s = zk.store
        s.update_kb_settings("hr", {"handoff_department": "人資服務"})
        accounts.create_user(s, "王小明", "reader", ["hr"])  # the agent
        agent = accounts.create_key(s, "王小明")[0]
        repo = SqlLoopRepository(s.database)
        repo.add_member(repo.create_department("人資服務"), accounts.get_user(s, "王小明").id)
    log = tmp_path_factory.mktemp("loop-e2e-log") / "server.log"
    with running_server(home, log=log) as (base, _proc):
        yield sync_playwright, base, keys, agent, tmp_path_factory.mktemp("loop-e2e-files")


def _login(browser: Any, base: str, key: str, viewport: dict[str, int]) -> Any:
    page = browser.new_page(viewport=viewport, locale="zh-TW")
    page.on("pageerror", lambda e: pytest.fail(f"page error: {e}"))
    page.goto(base + "/")
    page.get_by_test_id("login-key").fill(key)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("tab-chat").wait_for()
    page.get_by_test_id("question").wait_for()  # the chat page has finished rendering
    page.wait_for_load_state("networkidle")
    return page


def _ask(page: Any, text: str) -> None:
    n = page.get_by_test_id("turn").count()
    page.get_by_test_id("question").fill(text)
    page.get_by_test_id("ask").click()
    page.get_by_test_id("turn").nth(n).locator(".feedback").wait_for(timeout=20_000)


def test_handoff_inbox_analytics_and_curation(server: Any) -> None:
    sync_playwright, base, keys, agent, files = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        user = _login(browser, base, keys.hr_reader, {"width": 1280, "height": 820})
        assert user.get_by_test_id("tab-inbox").count() == 0  # not an agent
        _ask(user, "特別休假有幾天？")
        _ask(user, "年假怎麼算？")  # refused: the KB says 特別休假
        _ask(user, "公司的寵物友善政策是什麼？")
        offer = user.get_by_test_id("handoff-offer").last
        assert "真人" in offer.inner_text()  # offered after the refusal
        offer.get_by_test_id("handoff").click()
        user.get_by_test_id("handoff-done").wait_for()

        desk = _login(browser, base, agent, {"width": 1280, "height": 820})
        desk.get_by_test_id("tab-inbox").click()
        desk.get_by_test_id("case").first.click()
        detail = desk.get_by_test_id("case-detail")
        detail.get_by_text("特別休假有幾天？").wait_for()
        assert "[1]《員工請假辦法》" in detail.inner_text()  # the citations of the conversation
        desk.get_by_test_id("note").fill("查一下總務處的規定")
        desk.get_by_test_id("add-note").click()
        desk.get_by_test_id("entries").get_by_text("查一下總務處的規定").wait_for()
        desk.get_by_test_id("reply").fill("您好，寵物政策請洽總務處分機 123。")
        desk.get_by_test_id("send-reply").click()
        desk.get_by_test_id("entries").get_by_text("分機 123").wait_for()
        desk.screenshot(path=str(SHOTS / "loop-inbox.png"))

        reply = user.get_by_test_id("agent-reply").first
        reply.wait_for(timeout=15_000)  # polled into the user's conversation
        assert "分機 123" in reply.inner_text() and "查一下" not in user.inner_text("body")
        user.screenshot(path=str(SHOTS / "loop-chat-handoff.png"))
        desk.get_by_test_id("resolve").click()
        desk.get_by_test_id("reopen").wait_for()

        admin = _login(browser, base, keys.admin, {"width": 1280, "height": 900})
        admin.get_by_test_id("tab-analytics").click()
        admin.get_by_test_id("stat-questions").wait_for()
        assert int(admin.get_by_test_id("stat-questions").locator(".stat-value").inner_text()) >= 2
        assert admin.locator("[data-testid=chart-days] canvas").count() == 1  # drawn by uPlot
        assert admin.locator("[data-testid=chart-hours] canvas").count() == 1
        gap = admin.get_by_test_id("gap").filter(has_text="寵物")
        gap.wait_for()
        admin.screenshot(path=str(SHOTS / "loop-analytics.png"), full_page=True)
        gap.get_by_test_id("gap-write").click()
        admin.get_by_test_id("curate-answer").fill(
            "本公司為寵物友善職場，可攜帶貓狗，需先向總務處登記。"
        )
        admin.get_by_test_id("curate-save").click()
        admin.get_by_test_id("curated").get_by_text("寵物").wait_for()

        # pin a passage for the 年假 gap: search the KB, pick the 特別休假 passage
        admin.get_by_test_id("gap").filter(has_text="年假").get_by_test_id("gap-pin").click()
        admin.get_by_test_id("pin-query").fill("特別休假")
        admin.get_by_test_id("pin-search").click()
        hit = admin.get_by_test_id("pin-hit").filter(has_text="特別休假七日")
        hit.wait_for()
        admin.screenshot(path=str(SHOTS / "loop-pin.png"))
        hit.get_by_test_id("pin-choose").click()
        admin.get_by_test_id("pin").filter(has_text="年假").wait_for()
        user.get_by_test_id("new-conversation").click()
        _ask(user, "年假怎麼算？")
        assert "特別休假七日" in user.get_by_test_id("answer").last.inner_text()
        admin.get_by_test_id("pin").filter(has_text="年假").get_by_test_id("pin-remove").click()
        admin.get_by_test_id("pin").filter(has_text="年假").wait_for(state="detached")

        # the same question is now answered from the curated entry
        user.get_by_test_id("new-conversation").click()
        _ask(user, "公司的寵物友善政策是什麼？")
        assert "寵物友善職場" in user.get_by_test_id("answer").last.inner_text()
        assert "精選問答" in user.get_by_test_id("citation").last.inner_text()

        # rename, then delete, a conversation from the history (its records go with it)
        user.once("dialog", lambda d: d.accept("寵物政策詢問"))
        user.get_by_test_id("conv-rename").first.click()
        user.get_by_test_id("history").get_by_text("寵物政策詢問").wait_for()
        user.get_by_test_id("conv-delete").first.click()
        user.get_by_test_id("confirm-ok").click()
        user.get_by_test_id("history").get_by_text("寵物政策詢問").wait_for(state="detached")

        # a folder of 25 files: more than one request takes (20), so two jobs
        folder = files / "規章"
        folder.mkdir()
        for i in range(25):
            text = f"第 {i} 號公告：辦公室第 {i} 區整修。"
            (folder / f"公告{i:02d}.txt").write_text(text, "utf-8")
        admin.get_by_test_id("tab-kb").click()
        admin.get_by_test_id("dropzone").wait_for()
        admin.get_by_test_id("folder-input").set_input_files(str(folder))
        for i in range(2):  # both jobs, in whichever order the workers finish them
            admin.get_by_test_id("job").nth(i).locator(".badge.done").first.wait_for(
                timeout=120_000
            )
        jobs = admin.get_by_test_id("jobs").inner_text()
        assert "20 / 20" in jobs and "5 / 5" in jobs
        browser.close()


def _inside(page: Any, element_id: str) -> None:
    box = page.locator(f"#{element_id}").bounding_box()
    testid = element_id
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (
        f"{testid} is off-screen: {box}"
    )


def test_phone_width_header_tabs_and_admin_table(server: Any) -> None:
    sync_playwright, base, keys, _, _ = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = _login(browser, base, keys.admin, PHONE)
        for tab in ("chat", "kb", "analytics", "inbox", "admin"):
            page.get_by_test_id(f"tab-{tab}").click()
            page.wait_for_load_state("networkidle")
            page.wait_for_selector(f"body[data-view='{tab}']")
            _inside(page, "logout")
            _inside(page, "lang-toggle")
            for el in page.locator(".tab").all():  # one line each, not a character per line
                box = el.bounding_box()
                assert box is not None and box["height"] < 40 and box["width"] > box["height"]
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= PHONE["width"], f"{tab}: the page scrolls sideways ({overflow})"
            page.screenshot(path=str(SHOTS / f"loop-phone-{tab}.png"), full_page=True)
        # The admin table scrolls inside its card: its last column can be reached.
        card = page.locator(".card").first
        assert (
            page.evaluate("(el) => getComputedStyle(el).overflowX", card.element_handle()) == "auto"
        )
        last = card.locator("table tr").first.locator("th, td").last
        last.scroll_into_view_if_needed()
        box = last.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"] + 1
        browser.close()
