"""The web crawler against a real local HTTP server serving a small site: links, a
redirect, a redirect loop, a link loop, a 404, a huge page, robots.txt, sitemap.xml,
ETag and Last-Modified (each on its own), and the SSRF guard (loopback, link-local,
metadata, other hosts). HTTPS: tests/test_sources_https.py."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from zhiku.engine import Zhiku
from zhiku.sources.web import AddressPolicy, Crawler, CrawlError, CrawlSettings, Refused


def page(title: str, body: str, links: list[str] = ()) -> str:  # type: ignore[assignment]
    nav = "".join(f'<li><a href="{h}">{h}</a></li>' for h in links)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><ul>{nav}</ul></nav><main><h1>{title}</h1><p>{body}</p></main>"
        "</body></html>"
    )


class Site:
    """The pages of the test site; tests may change them between crawls."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {
            "/": page(
                "首頁",
                "歡迎來到人資入口網站，這裡有各項規章。",
                [
                    "/leave.html",
                    "/old-leave",
                    "/loop-a",
                    "/missing.html",
                    "/huge.html",
                    "/private/salary.html",
                    "http://169.254.169.254/latest/meta-data/",
                    "http://other.example/outside.html",
                    "/about.html#team",
                ],
            ),
            "/leave.html": page(
                "請假辦法", "特別休假每年七日，病假全年不得超過三十日。", ["/", "/about.html"]
            ),
            "/about.html": page(
                "關於我們", "人資處負責招募與員工福利，分機一二三。", ["/leave.html"]
            ),
            "/huge.html": page("超大頁面", "大" * 3_000_000),
            "/private/salary.html": page("薪資表", "不該被抓取的內容：薪資機密。"),
            "/orphan.html": page("加班規定", "延長工時每月不得超過四十六小時。"),
        }
        self.redirects = {
            "/old-leave": "/leave.html",
            "/loop-a": "/loop-b",
            "/loop-b": "/loop-a",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
        }
        self.robots = "User-agent: *\nDisallow: /private/\n"
        self.sitemap = (
            "<?xml version='1.0' encoding='UTF-8'?>"
            "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            "<url><loc>{base}/orphan.html</loc></url></urlset>"
        )
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        # Pages served with Last-Modified instead of an ETag (path -> HTTP date).
        self.last_modified: dict[str, str] = {}


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str]) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except ConnectionError:
                pass  # the crawler stops reading a page over its size limit

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            site.requests[path] += 1
            base = f"http://{self.headers['Host']}"
            if path == "/robots.txt":
                return self._send(200, site.robots.encode(), "text/plain", {})
            if path == "/sitemap.xml":
                return self._send(
                    200, site.sitemap.format(base=base).encode(), "application/xml", {}
                )
            if path in site.redirects:
                self.send_response(302)
                self.send_header("Location", site.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path not in site.pages:
                return self._send(404, b"not found", "text/plain", {})
            body = site.pages[path].encode("utf-8")
            if path in site.last_modified:
                stamp = site.last_modified[path]
                if self.headers.get("If-Modified-Since") == stamp:
                    site.not_modified[path] += 1
                    self.send_response(304)
                    self.end_headers()
                    return None
                return self._send(200, body, "text/html; charset=utf-8", {"Last-Modified": stamp})
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                site.not_modified[path] += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return None
            return self._send(200, body, "text/html; charset=utf-8", {"ETag": etag})

    return H


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield s, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _settings(**kw: object) -> CrawlSettings:
    base: dict[str, object] = {"allow_ips": ("127.0.0.1",), "max_page_bytes": 1_000_000}
    base.update(kw)
    return CrawlSettings(**base)  # type: ignore[arg-type]


def _by_status(report: object) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for f in report.files:  # type: ignore[attr-defined]
        out.setdefault(f.status, {})[f.path.split("/", 3)[-1]] = f.reason
    return out


def test_crawl_small_site(engine: Zhiku, site: tuple[Site, str]) -> None:
    s, base = site
    report = Crawler(engine, "web", base, _settings()).run()
    st = _by_status(report)
    # Pages linked, redirected to, and found only in the sitemap are stored.
    assert set(st["added"]) == {"", "leave.html", "about.html", "orphan.html"}
    docs = {d.path: d for d in engine.store.list_documents("web")}
    assert base + "leave.html" in docs and docs[base + "leave.html"].title == "請假辦法"
    assert docs[base + "leave.html"].meta["url"] == base + "leave.html"
    # Failures name the page and the reason; the crawl went on.
    assert st["failed"]["missing.html"] == "not_found"
    assert st["failed"]["huge.html"] == "too_large"
    assert st["failed"]["loop-a"] == "redirect_loop"
    assert st["skipped"]["private/salary.html"] == "robots"
    # robots.txt kept the crawler out; other hosts and the metadata service were never asked.
    assert s.requests["/private/salary.html"] == 0
    assert not any("meta-data" in p or "outside" in p for p in s.requests)
    # The link loop (leave ↔ about ↔ home) fetched each page once.
    assert s.requests["/leave.html"] == 1 and s.requests["/about.html"] == 1
    # Main text, not the navigation, is what gets indexed and cited.
    hits = engine.search("病假全年不得超過幾日", "web", k=3)
    assert hits and hits[0].path == base + "leave.html"
    assert "/about.html" not in hits[0].text


def test_recrawl_is_incremental_and_follows_unchanged_pages(
    engine: Zhiku, site: tuple[Site, str]
) -> None:
    s, base = site
    Crawler(engine, "web", base, _settings()).run()
    # A new page reachable only through an unchanged one (about.html) is still found.
    s.pages["/about.html"] = s.pages["/about.html"]  # unchanged
    s.pages["/leave.html"] = page(
        "請假辦法", "特別休假每年十日，病假全年不得超過三十日。", ["/", "/about.html", "/new.html"]
    )
    s.pages["/new.html"] = page("育嬰留停", "育嬰留職停薪期間至多二年。")
    report = Crawler(engine, "web", base, _settings()).run()
    st = _by_status(report)
    assert s.not_modified["/about.html"] == 1 and s.not_modified[""] == 0
    assert "about.html" in st["unchanged"]
    assert "leave.html" in st["updated"] and "new.html" in st["added"]
    assert engine.search("育嬰留職停薪", "web", k=1)[0].path == base + "new.html"


def test_recrawl_with_last_modified_only(engine: Zhiku, site: tuple[Site, str]) -> None:
    s, base = site
    s.last_modified["/about.html"] = "Tue, 01 Dec 2026 09:00:00 GMT"
    Crawler(engine, "web", base, _settings()).run()
    report = Crawler(engine, "web", base, _settings()).run()
    assert s.not_modified["/about.html"] == 1 and "about.html" in _by_status(report)["unchanged"]
    # A newer Last-Modified: fetched again, and the changed page re-indexed.
    s.last_modified["/about.html"] = "Wed, 02 Dec 2026 09:00:00 GMT"
    s.pages["/about.html"] = page("關於我們", "人資處分機改為四五六。", ["/leave.html"])
    report = Crawler(engine, "web", base, _settings()).run()
    assert s.not_modified["/about.html"] == 1 and "about.html" in _by_status(report)["updated"]
    assert engine.search("人資處分機", "web", k=1)[0].path == base + "about.html"


def test_page_gone_or_unlinked_is_removed(engine: Zhiku, site: tuple[Site, str]) -> None:
    s, base = site
    Crawler(engine, "web", base, _settings()).run()
    del s.pages["/about.html"]  # now a 404
    s.sitemap = "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'></urlset>"
    report = Crawler(engine, "web", base, _settings()).run()
    st = _by_status(report)
    assert "about.html" in st["removed"] and "orphan.html" in st["removed"]
    paths = {d.path for d in engine.store.list_documents("web")}
    assert paths == {base, base + "leave.html"}


def test_limits_stop_without_deleting(engine: Zhiku, site: tuple[Site, str]) -> None:
    s, base = site
    Crawler(engine, "web", base, _settings()).run()
    before = {d.path for d in engine.store.list_documents("web")}
    report = Crawler(engine, "web", base, _settings(max_pages=2, use_sitemap=False)).run()
    assert sum(1 for f in report.files if f.status != "skipped") <= 2
    assert not [f for f in report.files if f.status == "removed"]
    assert {d.path for d in engine.store.list_documents("web")} == before
    shallow = Crawler(engine, "w2", base, _settings(max_depth=0, use_sitemap=False)).run()
    assert [f.path for f in shallow.files] == [base]


def test_ssrf_guard_refuses_loopback_link_local_and_metadata(
    engine: Zhiku, site: tuple[Site, str]
) -> None:
    s, base = site
    # Loopback is refused unless allowed explicitly: nothing is requested at all.
    with pytest.raises(CrawlError, match="loopback"):
        Crawler(engine, "web", base, CrawlSettings()).run()
    assert sum(s.requests.values()) == 0
    # A name that resolves to loopback is checked after DNS.
    with pytest.raises(CrawlError):
        Crawler(engine, "web", base.replace("127.0.0.1", "localhost"), CrawlSettings()).run()
    pol = AddressPolicy()
    for ip in (
        "169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "fd00:ec2::254",
    ):
        assert pol.check_ip(ipaddress.ip_address(ip)), ip
    for ip in ("10.1.2.3", "192.168.1.10", "172.16.0.5", "8.8.8.8"):
        assert pol.check_ip(ipaddress.ip_address(ip)) is None, ip
    with pytest.raises(Refused, match="中繼資料"):
        pol.resolve("metadata.google.internal", 80)
    # An allowed 127.0.0.1 does not open the metadata address behind a redirect.
    s.pages["/"] = page("首頁", "轉址測試", ["/to-metadata"])
    report = Crawler(engine, "web", base, _settings(use_sitemap=False)).run()
    st = _by_status(report)
    assert st["failed"]["to-metadata"] in ("other_host", "blocked_address")
    # Even when the admin allows the host name, the address check still refuses it.
    report = Crawler(
        engine, "web", base, _settings(use_sitemap=False, allow_hosts=("169.254.169.254",))
    ).run()
    assert _by_status(report)["failed"]["to-metadata"] == "blocked_address"


def test_bad_start_url(engine: Zhiku, tmp_path: Path) -> None:
    with pytest.raises(CrawlError):
        Crawler(engine, "web", "file:///etc/passwd")
    with pytest.raises(CrawlError):
        Crawler(engine, "web", "ftp://example.com/")
