"""The website widget in headless Chromium, on pages served from other local origins:
an allowed site asks and sees a cited answer; a site not allowed gets nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_util import build_home, running_server
from tests.test_web_e2e import CHROMIUM, _require_browser
from zhiku.channels import registry
from zhiku.store import Store

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>門市</title></head>
<body><h1>歡迎光臨</h1>
<script src="{base}/widget.js" data-key="{key}" {lang}></script></body></html>"""
FRAMED = """<!doctype html><html><body>
<iframe id="direct" src="{base}/widget/frame?key={key}"></iframe></body></html>"""


class Site:
    def __init__(self, root: Path) -> None:
        handler = partial(SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a: None  # type: ignore[method-assign]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    sync_playwright = _require_browser()
    home = tmp_path_factory.mktemp("widget") / "home"
    build_home(home)
    good_root, bad_root = tmp_path_factory.mktemp("good"), tmp_path_factory.mktemp("bad")
    good, bad = Site(good_root), Site(bad_root)
    store = Store(home / "zhiku.db")
    w = registry.add_widget_key(store, "shop", ["hr"], [good.origin], 600, 50)
    store.close()
    with running_server(home) as (base, _proc):
        for root in (good_root, bad_root):
            (root / "index.html").write_text(
                PAGE.format(base=base, key=w.public_key, lang=""), "utf-8"
            )
            (root / "en.html").write_text(
                PAGE.format(base=base, key=w.public_key, lang='data-lang="en"'), "utf-8"
            )
            (root / "framed.html").write_text(FRAMED.format(base=base, key=w.public_key), "utf-8")
        yield {
            "pw": sync_playwright,
            "base": base,
            "home": home,
            "key": w.public_key,
            "good": good,
            "bad": bad,
        }
    good.server.shutdown()
    bad.server.shutdown()


def test_allowed_site_asks_and_sees_a_cited_answer(env: dict[str, Any]) -> None:
    with env["pw"]() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(env["good"].origin + "/index.html")
        page.click("#zhiku-widget-button")
        frame = page.frame_locator("#zhiku-widget-frame")
        frame.locator("#q").fill("到職滿一年的特別休假有幾天？")
        frame.locator("#send").click()
        answer = frame.locator(".msg.bot").nth(1)
        answer.locator(".sources li").first.wait_for(timeout=30000)
        assert "七日" in answer.inner_text()
        assert "請假辦法" in answer.locator(".sources").inner_text()
        assert frame.locator("#send").inner_text() == "送出"  # zh-TW by default
        # a follow-up continues the visitor's conversation
        frame.locator("#q").fill("那病假呢？")
        frame.locator("#send").click()
        frame.locator(".msg.bot").nth(2).locator(".sources li").first.wait_for(timeout=30000)
        assert "三十日" in frame.locator(".msg.bot").nth(2).inner_text()
        en = browser.new_page()
        en.goto(env["good"].origin + "/en.html")
        en.click("#zhiku-widget-button")
        assert en.frame_locator("#zhiku-widget-frame").locator("#send").inner_text() == "Send"
        browser.close()


def test_disallowed_site_is_refused(env: dict[str, Any]) -> None:
    with env["pw"]() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text))
        page.goto(env["bad"].origin + "/index.html")
        page.wait_for_timeout(1500)
        assert page.locator("#zhiku-widget-button").count() == 0
        assert any("may not use" in w for w in warnings)
        # fetching the ask endpoint from that page fails (no CORS for its origin)
        outcome = page.evaluate(
            """async ([base, key]) => {
            try {
              const r = await fetch(base + '/widget/v1/ask', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({key, question: '特別休假', session: 'abcdefgh12'})});
              return 'read ' + r.status;
            } catch (e) { return 'blocked'; }
        }""",
            [env["base"], env["key"]],
        )
        assert outcome == "blocked"
        # embedding the frame directly is refused by its frame-ancestors
        page.goto(env["bad"].origin + "/framed.html")
        page.wait_for_timeout(1500)
        child = next(f for f in page.frames if f != page.main_frame)
        assert child.locator("#q").count() == 0
        good = browser.new_page()
        good.goto(env["good"].origin + "/framed.html")
        good.frame_locator("#direct").locator("#q").wait_for(timeout=10000)
        browser.close()


def test_widget_endpoints_enforce_key_origin_and_headers(env: dict[str, Any]) -> None:
    base, key, good, bad = env["base"], env["key"], env["good"].origin, env["bad"].origin
    body = {"key": key, "question": "病假", "session": "abcdefgh12"}
    r = httpx.post(base + "/widget/v1/ask", json=body, headers={"Origin": bad}, timeout=30)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = httpx.post(
        base + "/widget/v1/ask",
        json={**body, "key": "zkw_nope"},
        headers={"Origin": good},
        timeout=30,
    )
    assert r.status_code == 403
    r = httpx.post(base + "/widget/v1/ask", json=body, headers={"Origin": good}, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == good
    assert "三十日" in r.json()["answer"]["answer"]
    pre = httpx.options(
        base + "/widget/v1/ask", headers={"Origin": good, "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == good
    assert httpx.options(base + "/widget/v1/ask", headers={"Origin": bad}).status_code == 403
    frame = httpx.get(base + f"/widget/frame?key={key}")
    assert f"frame-ancestors {good}" in frame.headers["content-security-policy"]
    assert "x-frame-options" not in frame.headers
    assert httpx.get(base + "/").headers["x-frame-options"] == "DENY"  # the rest unchanged
    # its own rate limit
    store = Store(env["home"] / "zhiku.db")
    tight = registry.add_widget_key(store, "tight", ["hr"], [good], 1, 2)
    store.close()
    codes = [
        httpx.post(
            base + "/widget/v1/ask",
            json={**body, "key": tight.public_key},
            headers={"Origin": good},
            timeout=30,
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    db = sqlite3.connect(env["home"] / "zhiku.db")
    channels = {
        r[0]
        for r in db.execute("SELECT channel FROM conversations WHERE channel_ref LIKE 'widget:%'")
    }
    db.close()
    assert channels == {"widget"}
    # the key reaches nothing else: not the API, not other KBs
    assert (
        httpx.get(base + "/api/v1/kbs", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )


def test_a_widget_answers_from_every_one_of_its_kbs(env: dict[str, Any]) -> None:
    base, good = env["base"], env["good"].origin
    store = Store(env["home"] / "zhiku.db")
    both = registry.add_widget_key(store, "stores", ["hr", "finance"], [good], 600, 50)
    store.close()

    def ask(key: str, question: str, session: str) -> dict[str, Any]:
        r = httpx.post(
            base + "/widget/v1/ask",
            headers={"Origin": good},
            timeout=30,
            json={"key": key, "question": question, "session": session},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    # The second KB answers (finance), and so does the first (hr), in one conversation.
    fin = ask(both.public_key, "出差住宿費每晚上限多少？", "multi-kb-1")
    assert not fin["answer"]["refused"]
    assert fin["answer"]["citations"][0]["doc"] == "財務報銷規定"
    hr = httpx.post(
        base + "/widget/v1/ask",
        headers={"Origin": good},
        timeout=30,
        json={
            "key": both.public_key,
            "question": "病假全年上限幾天？",
            "session": "multi-kb-1",
            "conversation_id": fin["conversation_id"],
        },
    ).json()
    assert hr["conversation_id"] == fin["conversation_id"]
    assert hr["answer"]["citations"][0]["doc"] == "員工請假辦法"
    # A key scoped to hr alone never cites finance.
    only_hr = ask(env["key"], "出差住宿費每晚上限多少？", "multi-kb-2")
    assert all(c["doc"] != "財務報銷規定" for c in only_hr["answer"]["citations"])
    # The finance citation is recorded with its document (analytics count it).
    db = sqlite3.connect(env["home"] / "zhiku.db")
    cited = {
        r[0]
        for r in db.execute(
            "SELECT d.title FROM answer_citations c JOIN documents d ON d.id=c.doc_id "
            "WHERE c.message_id IN (SELECT id FROM messages WHERE conversation_id=?)",
            (fin["conversation_id"],),
        )
    }
    db.close()
    assert cited == {"財務報銷規定", "員工請假辦法"}
