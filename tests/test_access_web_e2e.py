"""Access labels in the web UI, end to end: a real ``zhiku serve`` driven by headless
Chromium (Debian's, through playwright). An editor opens the document list, sees each
document's groups and level, restricts 員工請假辦法 to group ``hr`` at 機密 from the list,
and a reader outside that scope no longer finds it (API and the same page), until the
editor opens it to everyone again. A configured scale names the levels in the UI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server_util import auth, build_home, running_server
from tests.test_web_e2e import CHROMIUM, _require_browser
from zhiku.access import set_user_access
from zhiku.engine import Zhiku


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sync_playwright = _require_browser()
    home = tmp_path_factory.mktemp("access-e2e") / "home"
    keys = build_home(home)
    with Zhiku(home) as zk:
        # erin (editor of hr) may see what she labels: group hr, clearance 機密.
        set_user_access(zk.store.database, "erin", ["hr"], "機密")
    log = tmp_path_factory.mktemp("access-e2e-log") / "server.log"
    with running_server(home, log=log) as (base, _proc):
        yield sync_playwright, base, keys


def _login(browser: Any, base: str, key: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 820}, locale="zh-TW")
    page.on("pageerror", lambda e: pytest.fail(f"page error: {e}"))
    page.goto(base + "/")
    page.get_by_test_id("login-key").fill(key)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("tab-chat").wait_for()
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("tab-kb").click()
    return page


def _titles(base: str, key: str) -> list[str]:
    r = httpx.get(f"{base}/api/v1/kbs/hr/documents", headers=auth(key))
    assert r.status_code == 200, r.text
    return [d["title"] for d in r.json()["documents"]]


def test_an_editor_sets_and_changes_labels_from_the_document_list(server: Any) -> None:
    sync_playwright, base, keys = server
    assert _titles(base, keys.hr_reader) == ["員工請假辦法"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        editor = _login(browser, base, keys.hr_editor)
        row = editor.get_by_test_id("document").filter(has_text="請假辦法")
        row.wait_for()
        assert row.get_by_test_id("doc-access").inner_text() == "全體・公開"
        row.get_by_test_id("edit-access").click()
        form = editor.get_by_test_id("access-editor")
        assert form.get_by_test_id("access-level").locator("option").all_inner_texts() == [
            "公開",
            "內部",
            "機密",
            "密",
        ]
        form.get_by_test_id("access-groups").fill("HR")
        form.get_by_test_id("access-level").select_option(label="機密")
        form.get_by_test_id("access-save").click()
        editor.get_by_test_id("doc-access").filter(has_text="hr・機密").wait_for()
        meta = httpx.get(f"{base}/api/v1/kbs/hr/documents", headers=auth(keys.hr_editor)).json()[
            "documents"
        ][0]["meta"]
        assert meta["access_groups"] == ["hr"] and meta["access_level"] == 2

        # alice (hr reader, no groups, 公開) no longer sees it: not listed, not found.
        assert _titles(base, keys.hr_reader) == []
        hits = httpx.post(
            f"{base}/api/v1/kbs/hr/search", headers=auth(keys.hr_reader), json={"query": "特別休假"}
        ).json()["hits"]
        assert hits == []
        reader = _login(browser, base, keys.hr_reader)
        reader.get_by_text("這個知識庫還沒有文件。").wait_for()
        assert reader.get_by_test_id("edit-access").count() == 0  # readers cannot edit

        # Open to everyone again: empty groups, level 公開.
        row.get_by_test_id("edit-access").click()
        form = editor.get_by_test_id("access-editor")
        form.get_by_test_id("access-groups").fill("")
        form.get_by_test_id("access-level").select_option(label="公開")
        form.get_by_test_id("access-save").click()
        editor.get_by_test_id("doc-access").filter(has_text="全體・公開").wait_for()
        assert _titles(base, keys.hr_reader) == ["員工請假辦法"]
        browser.close()
