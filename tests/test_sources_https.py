"""The crawler over HTTPS, against real local TLS servers whose certificates come from a
private CA the test makes (tests/tlsgen.py): trusted through ``ca_file`` / ``--ca-file`` or
``SSL_CERT_FILE``; untrusted, mismatched and expired certificates fail with a message
naming the URL; the SSRF guard still applies on every hop; http → https redirects."""

from __future__ import annotations

import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.tlsgen import CertificateAuthority, Issued
from zhiku.engine import Zhiku
from zhiku.sources import registry
from zhiku.sources.web import Crawler, CrawlError, CrawlSettings

PAGES = {
    "/": (
        "<html><head><meta charset='utf-8'><title>資訊室公告</title></head><body><main>"
        "<h1>資訊室公告</h1><p>內部網站一律使用機關憑證。</p>"
        "<a href='/rules.html'>規定</a> <a href='/old-rules'>舊網址</a>"
        " <a href='/to-metadata'>中繼資料</a></main></body></html>"
    ),
    "/rules.html": (
        "<html><head><meta charset='utf-8'><title>密碼規定</title></head><body>"
        "<main><h1>密碼規定</h1><p>密碼每九十日更換一次，長度至少十二字元。</p>"
        "</main></body></html>"
    ),
}
REDIRECTS = {
    "/old-rules": "/rules.html",
    "/to-metadata": "https://169.254.169.254/latest/meta-data/",
}


def _handler(
    requests: Counter[str], redirect_base: str | None = None
) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            requests[self.path] += 1
            target = (
                redirect_base + self.path if redirect_base is not None else REDIRECTS.get(self.path)
            )
            if target is not None:
                self.send_response(301)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = PAGES.get(self.path, "").encode("utf-8")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return H


Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(cert=Issued | None, redirect_base=None) -> base URL``: a local server,
    HTTPS when given a certificate; ``redirect_base`` makes it redirect every path there."""
    servers: list[ThreadingHTTPServer] = []

    def start(
        cert: Issued | None = None,
        redirect_base: str | None = None,
        requests: Counter[str] | None = None,
    ) -> str:
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0),
            _handler(requests if requests is not None else Counter(), redirect_base),
        )
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert.cert, cert.key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "https" if cert is not None else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path)


def _settings(**kw: object) -> CrawlSettings:
    base: dict[str, object] = {"allow_ips": ("127.0.0.1",), "use_sitemap": False}
    base.update(kw)
    return CrawlSettings(**base)  # type: ignore[arg-type]


def _outcome(report: object) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        f.path: (f.status, f.reason, f.message)  # type: ignore[attr-defined]
        for f in report.files
    }  # type: ignore[attr-defined]


def test_https_crawl_trusts_the_internal_ca_file(
    engine: Zhiku, ca: CertificateAuthority, serve: Serve
) -> None:
    requests: Counter[str] = Counter()
    base = serve(ca.issue("server"), requests=requests)
    report = Crawler(engine, "web", base, _settings(ca_file=str(ca.pem))).run()
    got = _outcome(report)
    assert got[base][0] == "added" and got[base + "rules.html"][0] == "added"
    hit = engine.search("密碼多久更換", "web", k=1)[0]
    assert hit.path == base + "rules.html" and hit.doc_title == "密碼規定"
    # The SSRF guard applies on each hop of an HTTPS crawl too: the redirect to the
    # metadata address is refused before any connection to it.
    assert got[base + "to-metadata"][:2] == ("failed", "other_host")
    report = Crawler(
        engine, "web", base, _settings(ca_file=str(ca.pem), allow_hosts=("169.254.169.254",))
    ).run()
    status, reason, message = _outcome(report)[base + "to-metadata"]
    assert (status, reason) == ("failed", "blocked_address") and "169.254.169.254" in message
    assert requests["/old-rules"] == 2  # the redirect was followed to rules.html, twice


def test_untrusted_certificate_fails_naming_the_url(
    engine: Zhiku,
    ca: CertificateAuthority,
    serve: Serve,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = serve(ca.issue("server"))
    # The system's trust store does not know the intranet CA.
    report = Crawler(engine, "web", base, _settings()).run()
    status, reason, message = _outcome(report)[base]
    assert (status, reason) == ("failed", "tls")
    assert base in message and "無法驗證" in message and "受信任的憑證機構" in message
    assert "--ca-file" in message
    assert engine.store.list_documents("web") == []
    # Another CA's bundle does not help; the message is in English with ZHIKU_LANG=en.
    other = CertificateAuthority(tmp_path, "Other Root CA")
    monkeypatch.setenv("ZHIKU_LANG", "en")
    report = Crawler(engine, "web", base, _settings(ca_file=str(other.pem))).run()
    status, reason, message = _outcome(report)[base]
    assert reason == "tls" and "Cannot verify the TLS certificate of " + base in message


def test_wrong_name_and_expired_certificates_fail(
    engine: Zhiku, ca: CertificateAuthority, serve: Serve
) -> None:
    # Signed by the trusted CA, but for another name: the connection goes to the checked
    # address, the certificate is still verified for the URL's host.
    wrong = serve(ca.issue("wrong", dns=("intranet.example",), ips=()))
    report = Crawler(engine, "web", wrong, _settings(ca_file=str(ca.pem))).run()
    status, reason, message = _outcome(report)[wrong]
    assert reason == "tls" and "名稱與主機 127.0.0.1 不符" in message and wrong in message
    expired = serve(ca.issue("expired", days=-1))
    report = Crawler(engine, "web", expired, _settings(ca_file=str(ca.pem))).run()
    status, reason, message = _outcome(report)[expired]
    assert reason == "tls" and "已過期" in message


def test_ssl_cert_file_is_honoured(
    engine: Zhiku, ca: CertificateAuthority, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = serve(ca.issue("server"))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.pem))  # OpenSSL's standard variable
    report = Crawler(engine, "web", base, _settings()).run()
    assert _outcome(report)[base][0] == "added"


def test_http_to_https_redirect(engine: Zhiku, ca: CertificateAuthority, serve: Serve) -> None:
    secure = serve(ca.issue("server"))
    plain_requests: Counter[str] = Counter()
    plain = serve(None, redirect_base=secure.rstrip("/"), requests=plain_requests)
    report = Crawler(engine, "web", plain, _settings(ca_file=str(ca.pem))).run()
    got = _outcome(report)
    # Same host, other scheme and port: followed; documents are stored under https URLs.
    assert got[secure][0] == "added" and got[secure + "rules.html"][0] == "added"
    assert {d.path for d in engine.store.list_documents("web")} == {secure, secure + "rules.html"}
    assert plain_requests["/"] == 1


def test_bad_ca_file_is_refused_before_crawling(engine: Zhiku, tmp_path: Path) -> None:
    with pytest.raises(CrawlError, match="不存在"):
        Crawler(engine, "web", "https://127.0.0.1/", _settings(ca_file=str(tmp_path / "x")))
    junk = tmp_path / "ca.pem"
    junk.write_text("這不是憑證", "utf-8")
    with pytest.raises(CrawlError, match="PEM"):
        Crawler(engine, "web", "https://127.0.0.1/", _settings(ca_file=str(junk)))
    with pytest.raises(CrawlError, match="ca.pem"):
        registry.add_source(
            engine,
            "web",
            "portal",
            "https://127.0.0.1/",
            settings={"allow_ips": ["127.0.0.1"], "ca_file": str(junk)},
        )


def test_cli_crawl_and_source_with_ca_file(
    tmp_path: Path, ca: CertificateAuthority, serve: Serve
) -> None:
    from zhiku.cli import app

    runner = CliRunner()
    base = serve(ca.issue("server"))
    r = runner.invoke(
        app, ["crawl", base, "--kb", "web", "--allow-ip", "127.0.0.1", "--no-sitemap", "--json"]
    )
    assert r.exit_code == 1  # a page failed: the certificate is not trusted
    failed = json.loads(r.stdout)["failed"]
    assert failed[0]["path"] == base and failed[0]["reason"] == "tls"
    r = runner.invoke(
        app,
        [
            "crawl",
            base,
            "--kb",
            "web",
            "--allow-ip",
            "127.0.0.1",
            "--no-sitemap",
            "--ca-file",
            str(ca.pem),
            "--json",
        ],
    )
    out = json.loads(r.stdout)
    assert out["added"] == 2  # only the redirect to the metadata address failed
    assert [f["reason"] for f in out["failed"]] == ["other_host"] and r.exit_code == 1
    # A scheduled source keeps the CA file (as an absolute path) and its runs use it.
    r = runner.invoke(
        app,
        [
            "source",
            "add",
            "portal",
            base,
            "--kb",
            "web2",
            "--allow-ip",
            "127.0.0.1",
            "--ca-file",
            str(ca.pem),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["settings"]["ca_file"] == str(ca.pem.resolve())
    r = runner.invoke(app, ["source", "run", "portal", "--kb", "web2", "--json"])
    run = json.loads(r.stdout)
    assert run["last_counts"]["added"] == 2
    assert [e["reason"] for e in run["last_errors"]] == ["other_host"]
