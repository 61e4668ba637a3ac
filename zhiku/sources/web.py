"""Web site crawler: a site (an intranet portal, a regulations site) as documents of a KB.

- **Same host by default**: links to other hosts are not followed unless the admin lists
  them (``allow_hosts``). Only ``http`` and ``https``.
- **SSRF guard** (:class:`AddressPolicy`): before every connection — the first request
  and every redirect hop — the host name is resolved and *each* address checked; the
  connection then goes to the checked address (the name is not resolved again, so DNS
  rebinding cannot swap it), with the original ``Host`` header and TLS server name.
  Refused unless allowed explicitly (``allow_ips``): loopback, link-local (which holds
  the cloud metadata service 169.254.169.254), multicast, unspecified and reserved
  addresses, and the metadata names. Private (RFC 1918) addresses are allowed: the
  server lives on an intranet.
- **robots.txt** is honoured (``urllib.robotparser``, user agent ``zhiku``; a robots.txt
  that answers 401/403/5xx disallows the site, a 404 allows it), including Crawl-delay
  (capped). **sitemap.xml** (and the sitemaps robots.txt names) seeds the queue.
- **HTTPS**: certificates are verified against the system's trust store (OpenSSL's
  default paths, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are honoured) plus the admin's
  CA bundle (``ca_file``: an intranet's internal certificate authority), always for the
  host name of the URL even though the connection goes to the checked address. An
  untrusted, mismatched or expired certificate fails the page with a message naming the
  URL (reason ``tls``); there is no switch that turns verification off.
- **Limits**: pages, depth (link hops from the start page), bytes per page (enforced
  while reading, never trusted from Content-Length), redirect hops, timeouts.
- **Incremental**: ETag / Last-Modified of every page are kept (``crawl_pages``), and a
  re-crawl sends If-None-Match / If-Modified-Since; a 304 keeps the document and the
  links stored for it, so pages behind an unchanged page are still visited. A page
  whose body did not change (same SHA-256) is not re-indexed either.
- **Main text** through the HTML loader (:mod:`zhiku.loaders.html`); linked files of a
  supported format (PDF, DOCX…) through their loaders. A document's path is its URL.
- **Deletions**: a page that answers 404/410 is removed; when a crawl finishes without
  hitting a limit, pages of this crawl that are no longer linked from anywhere are
  removed too. A page that fails otherwise (timeout, 5xx) keeps its stored version.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import mimetypes
import socket
import ssl
import tempfile
import time
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from selectolax.lexbor import LexborHTMLParser

from zhiku import loaders
from zhiku.engine import Zhiku
from zhiku.errors import LoadError, ZhikuError
from zhiku.ingest import FileResult, IngestReport
from zhiku.messages import t
from zhiku.storage.sources import SqlSources

USER_AGENT = "zhiku-crawler/0.1 (+https://github.com/zhiku)"
ROBOTS_AGENT = "zhiku"
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
_METADATA_IPS = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_CRAWL_DELAY_S = 10.0


class CrawlError(ZhikuError):
    """The crawl cannot start (bad start URL, start host refused)."""

    exit_code = 2


class Refused(Exception):
    """A request the policy does not allow; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class AddressPolicy:
    """Which addresses a request may connect to (checked after DNS, on every hop)."""

    allow_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_strings(cls, items: Iterable[str]) -> AddressPolicy:
        nets = []
        for item in items:
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise CrawlError(
                    f"允許的位址「{item}」不是 IP 或網段（如 127.0.0.1、10.0.0.0/8）"
                ) from exc
        return cls(tuple(nets))

    def explicitly_allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.allow_ips)

    def check_ip(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why ``ip`` is refused, or None when it may be used."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.explicitly_allowed(ip):
            return None
        if ip in _METADATA_IPS:
            return "雲端中繼資料服務位址"
        if ip.is_link_local:
            return "link-local 位址"
        if ip.is_loopback:
            return "本機（loopback）位址"
        if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return "保留或群播位址"
        return None

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; raises :class:`Refused` when any of
        its addresses is not allowed (a name must not mix public and internal ones)."""
        if host.lower().rstrip(".") in METADATA_HOSTS:
            raise Refused("blocked_address", f"拒絕連線至 {host}（雲端中繼資料服務）")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused("dns", f"無法解析主機 {host}：{exc}") from exc
        addrs = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not addrs:
            raise Refused("dns", f"無法解析主機 {host}")
        for a in addrs:
            why = self.check_ip(ipaddress.ip_address(a))
            if why:
                raise Refused("blocked_address", f"拒絕連線至 {host}（{a}：{why}）")
        return addrs[0]


@dataclass(slots=True)
class CrawlSettings:
    max_pages: int = 200
    max_depth: int = 5
    max_page_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    timeout_s: float = 15.0
    delay_s: float = 0.0
    allow_hosts: tuple[str, ...] = ()
    allow_ips: tuple[str, ...] = ()
    use_sitemap: bool = True
    ca_file: str | None = None  # PEM CA bundle trusted besides the system's
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrawlSettings:
        known = {k: d[k] for k in cls.__slots__ if k in d}
        for k in ("allow_hosts", "allow_ips"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


@dataclass(slots=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes


def normalize_url(url: str) -> str:
    """Without the fragment, with a path (``http://h`` → ``http://h/``)."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    if not parts.path:
        url = parts._replace(path="/").geturl()
    return url


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate verification for HTTPS: the system's trust store (honours
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) plus ``ca_file`` when given."""
    ctx = ssl.create_default_context()
    if ca_file:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise CrawlError(t("crawl.bad_ca_file", path=ca_file, reason=t("crawl.ca_missing")))
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise CrawlError(
                t("crawl.bad_ca_file", path=ca_file, reason=t("crawl.ca_not_pem", detail=exc))
            ) from exc
    return ctx


def _tls_refusal(exc: BaseException, url: str, host: str) -> Refused | None:
    """A :class:`Refused` for a TLS failure inside ``exc`` (an httpx error), or None."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    if isinstance(cause, ssl.SSLCertVerificationError):
        code = cause.verify_code
        why = (
            t("crawl.tls_why_hostname", host=host)
            if code in (62, 64)
            else t("crawl.tls_why_expired")
            if code in (9, 10)
            else t("crawl.tls_why_issuer")
            if code in (2, 18, 19, 20, 21)
            else cause.verify_message or str(cause)
        )
        return Refused("tls", t("crawl.tls_untrusted", url=url, why=why))
    return Refused("tls", t("crawl.tls_failed", url=url, detail=cause.reason or str(cause)))


class GuardedClient:
    """HTTP GETs that pass the :class:`AddressPolicy` on every hop and read at most
    ``max_bytes`` of a body."""

    def __init__(
        self,
        policy: AddressPolicy,
        settings: CrawlSettings,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.client = httpx.Client(
            timeout=settings.timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            trust_env=False,
            verify=tls_context(settings.ca_file),
        )

    def close(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def _stream(
        self, target: httpx.URL, headers: dict[str, str], ext: dict[str, Any], url: str, host: str
    ) -> Iterator[httpx.Response]:
        try:
            with self.client.stream("GET", target, headers=headers, extensions=ext) as resp:
                yield resp
        except httpx.ConnectError as exc:
            refusal = _tls_refusal(exc, url, host) if ext else None
            if refusal is not None:
                raise refusal from exc
            raise

    def get(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        allowed_host: Callable[[str], bool] | None = None,
        max_bytes: int | None = None,
        already: Callable[[str], bool] | None = None,
    ) -> Fetched:
        """GET ``url``, following redirects by hand; a redirect to a URL for which
        ``already`` is true ends with status 0 and no body (it was fetched before)."""
        limit = self.settings.max_page_bytes if max_bytes is None else max_bytes
        seen: list[str] = []
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            parts = httpx.URL(current)
            if parts.scheme not in ("http", "https"):
                raise Refused("scheme", f"不支援的網址協定：{current}")
            host = parts.host
            if allowed_host is not None and not allowed_host(host):
                raise Refused("other_host", f"重新導向至未允許的主機 {host}：{current}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            ip = self.policy.resolve(host, port)
            target = parts.copy_with(host=ip)
            hdrs = {"Host": parts.netloc.decode("ascii"), **(headers or {})}
            ext = {"sni_hostname": host} if parts.scheme == "https" else {}
            seen.append(current)
            with self._stream(target, hdrs, ext, current, host) as resp:
                if resp.status_code in (301, 302, 303, 307, 308) and "location" in resp.headers:
                    nxt = normalize_url(urljoin(current, resp.headers["location"]))
                    if nxt in seen:
                        raise Refused("redirect_loop", f"重新導向形成迴圈：{' → '.join(seen)}")
                    current = nxt
                    if already is not None and already(nxt):
                        return Fetched(nxt, 0, resp.headers, b"")
                    continue
                body = bytearray()
                for piece in resp.iter_bytes():
                    body.extend(piece)
                    if len(body) > limit:
                        raise Refused(
                            "too_large", f"頁面超過 {limit / 1e6:.1f} MB 上限，未匯入：{current}"
                        )
                return Fetched(current, resp.status_code, resp.headers, bytes(body))
        raise Refused("too_many_redirects", f"重新導向超過 {self.settings.max_redirects} 次：{url}")


def _links(html: bytes, base: str) -> tuple[list[str], bool, bool]:
    """(links, noindex, nofollow) of a page; nav links are links too."""
    tree = LexborHTMLParser(html.decode("utf-8", "replace"))
    robots = " ".join(
        (n.attributes.get("content") or "").lower() for n in tree.css('meta[name="robots"]')
    )
    base_node = tree.css_first("base[href]")
    if base_node is not None and base_node.attributes.get("href"):
        base = urljoin(base, base_node.attributes["href"] or "")
    out = []
    for a in tree.css("a[href]"):
        href = (a.attributes.get("href") or "").strip()
        rel = (a.attributes.get("rel") or "").lower()
        if (
            not href
            or href.startswith(("mailto:", "tel:", "javascript:", "#"))
            or "nofollow" in rel
        ):
            continue
        out.append(normalize_url(urljoin(base, href)))
    return list(dict.fromkeys(out)), "noindex" in robots, "nofollow" in robots


def _sitemap_urls(xml: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return [], []
    pages: list[str] = []
    maps: list[str] = []
    for loc in root.iter():
        if loc.tag.rsplit("}", 1)[-1] != "loc" or not (loc.text or "").strip():
            continue
        (maps if root.tag.rsplit("}", 1)[-1] == "sitemapindex" else pages).append(
            normalize_url((loc.text or "").strip())
        )
    return pages, maps


def _suffix(url: str, content_type: str) -> str:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in _HTML_TYPES:
        return ".html"
    path_suffix = Path(urlsplit(url).path).suffix.lower()
    if path_suffix and loaders.loader_for(Path("x" + path_suffix)) is not None:
        return path_suffix
    return mimetypes.guess_extension(ctype) or path_suffix or ""


class Crawler:
    """One crawl of a site into a KB; :meth:`run` returns the report."""

    def __init__(
        self,
        zk: Zhiku,
        kb: str,
        start_url: str,
        settings: CrawlSettings | None = None,
        *,
        origin: str | None = None,
        on_page: Callable[[FileResult], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.zk = zk
        self.kb = kb
        self.start = normalize_url(start_url)
        parts = urlsplit(self.start)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CrawlError(f"起始網址「{start_url}」無效（需為 http:// 或 https:// 網址）")
        self.settings = settings or CrawlSettings()
        self.origin = origin or self.start
        self.hosts = {parts.hostname.lower(), *(h.lower() for h in self.settings.allow_hosts)}
        self.policy = AddressPolicy.from_strings(self.settings.allow_ips)
        self.client = GuardedClient(self.policy, self.settings, transport)
        self.on_page = on_page
        self.should_stop = should_stop
        self.report = IngestReport()
        self.robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.delay = self.settings.delay_s
        self.reached: set[str] = set()  # every URL fetched, redirect targets included

    # --- helpers ---------------------------------------------------------------------

    def allowed_host(self, host: str) -> bool:
        return host.lower() in self.hosts

    def _record(self, res: FileResult) -> None:
        self.report.files.append(res)
        if self.on_page is not None:
            self.on_page(res)

    def _robots(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        rp = self.robots.get(key)
        if rp is not None:
            return rp
        rp = urllib.robotparser.RobotFileParser(key + "/robots.txt")
        try:
            f = self.client.get(
                key + "/robots.txt", allowed_host=self.allowed_host, max_bytes=512 * 1024
            )
            if f.status in (401, 403) or f.status >= 500:
                rp.parse(["User-agent: *", "Disallow: /"])
            elif f.status >= 400:
                rp.parse([])  # no robots.txt: everything allowed
            else:
                rp.parse(f.body.decode("utf-8", "replace").splitlines())
        except (Refused, httpx.HTTPError):
            rp.parse([])  # no robots.txt reachable: treated as absent
        delay = rp.crawl_delay(ROBOTS_AGENT)
        if delay:
            self.delay = max(self.delay, min(float(delay), MAX_CRAWL_DELAY_S))
        self.robots[key] = rp
        return rp

    def _sitemaps(self) -> list[str]:
        rp = self._robots(self.start)
        parts = urlsplit(self.start)
        queue = list(rp.site_maps() or []) or [f"{parts.scheme}://{parts.netloc}/sitemap.xml"]
        pages: list[str] = []
        done: set[str] = set()
        while queue and len(done) < 20:
            sm = queue.pop(0)
            if sm in done or not self.allowed_host(urlsplit(sm).hostname or ""):
                continue
            done.add(sm)
            try:
                f = self.client.get(sm, allowed_host=self.allowed_host)
            except (Refused, httpx.HTTPError):
                continue
            if f.status != 200:
                continue
            p, m = _sitemap_urls(f.body)
            pages.extend(p)
            queue.extend(m)
        return pages

    def _state(self, url: str) -> Any:
        kbo = self.zk.store.get_kb(self.kb)
        return SqlSources(self.zk.store.database).page_state(kbo.id, self.origin, url)

    def _save_state(self, url: str, f: Fetched | None, links: list[str], status: int) -> None:
        kbo = self.zk.store.get_kb(self.kb)
        etag = f.headers.get("etag") if f else None
        lm = f.headers.get("last-modified") if f else None
        SqlSources(self.zk.store.database).save_page_state(
            kbo.id, self.origin, url, etag, lm, links, status
        )

    # --- one page ----------------------------------------------------------------------

    def _visit(self, url: str, known: dict[str, tuple[str, int, float | None]]) -> list[str]:
        """Fetch and store one page; returns the links to follow from it."""
        state = self._state(url)
        headers: dict[str, str] = {}
        if state is not None and url in known:
            if state["etag"]:
                headers["If-None-Match"] = state["etag"]
            if state["last_modified"]:
                headers["If-Modified-Since"] = state["last_modified"]
        try:
            f = self.client.get(
                url,
                headers=headers,
                allowed_host=self.allowed_host,
                already=self.reached.__contains__,
            )
        except Refused as r:
            self._record(FileResult(url, "failed", r.reason, r.message))
            return []
        except httpx.HTTPError as exc:
            self._record(FileResult(url, "failed", "network", f"無法取得網頁：{exc}"))
            return []
        self.reached.update((url, f.url))
        if f.status == 0:
            self._record(FileResult(url, "skipped", "duplicate", f"轉址至已抓取的頁面 {f.url}"))
            return []
        if f.status == 304 and state is not None:
            self._record(FileResult(url, "unchanged"))
            self._save_state(url, None, json.loads(state["links"]), 304)
            return list(json.loads(state["links"]))
        if f.status in (404, 410):
            for u in dict.fromkeys((url, f.url)):
                if self.zk.remove(self.kb, u):
                    self._record(FileResult(u, "removed"))
            self._record(FileResult(url, "failed", "not_found", f"網頁不存在（HTTP {f.status}）"))
            return []
        if f.status != 200:
            self._record(FileResult(url, "failed", "http", f"HTTP {f.status}，保留原有內容"))
            return []
        ctype = f.headers.get("content-type", "")
        is_html = ctype.split(";")[0].strip().lower() in _HTML_TYPES
        links, noindex, nofollow = _links(f.body, f.url) if is_html else ([], False, True)
        links = [] if nofollow else links
        self._save_state(f.url, f, links, 200)
        if f.url != url:
            self._save_state(url, None, links, 200)
        if noindex:
            self._record(FileResult(f.url, "skipped", "noindex", "頁面標示 noindex，未匯入"))
            return links
        self._store(f, known)
        return links

    def _store(self, f: Fetched, known: dict[str, tuple[str, int, float | None]]) -> None:
        digest = hashlib.sha256(f.body).hexdigest()
        prev = known.get(f.url)
        if prev is not None and prev[0] == digest:
            self._record(FileResult(f.url, "unchanged"))
            return
        suffix = _suffix(f.url, f.headers.get("content-type", ""))
        if not suffix or loaders.loader_for(Path("x" + suffix)) is None:
            self._record(FileResult(f.url, "skipped", "unsupported", "不支援的內容類型"))
            return
        with tempfile.TemporaryDirectory(prefix="zhiku-crawl-") as tmp:
            path = Path(tmp) / ("page" + suffix)
            path.write_bytes(f.body)
            try:
                loaded = loaders.load(path, max_bytes=self.settings.max_page_bytes)
            except LoadError as exc:
                self._record(FileResult(f.url, "failed", exc.reason, exc.message))
                return
            except Exception as exc:  # noqa: BLE001 - a parser choking must not stop the crawl
                self._record(
                    FileResult(
                        f.url, "failed", "corrupt", f"無法解析（{type(exc).__name__}: {exc}）"
                    )
                )
                return
        loaded.meta.pop("encoding", None)
        meta = {**self.settings.meta, "url": f.url}
        _, n, masked = self.zk.add_loaded(
            self.kb, f.url, loaded, content_hash=digest, size=len(f.body), meta=meta
        )
        known[f.url] = (digest, len(f.body), None)
        self.report.masked.update(masked)
        self.report.bytes += len(f.body)
        self._record(
            FileResult(f.url, "updated" if prev else "added", chunks=n, masked=dict(masked))
        )

    # --- the crawl ---------------------------------------------------------------------

    def run(self) -> IngestReport:
        self.zk.kb(self.kb, create=True)
        t0 = time.perf_counter()
        s = self.settings
        try:
            # The start host itself must pass the address policy.
            p = httpx.URL(self.start)
            try:
                self.policy.resolve(p.host, p.port or (443 if p.scheme == "https" else 80))
            except Refused as r:
                raise CrawlError(r.message) from r
            known = self.zk.store.document_hashes(self.kb)
            queue: deque[tuple[str, int]] = deque([(self.start, 0)])
            seen = {self.start}
            if s.use_sitemap:
                for u in self._sitemaps():
                    if u not in seen and self.allowed_host(urlsplit(u).hostname or ""):
                        seen.add(u)
                        queue.append((u, 0))
            visited: set[str] = set()
            truncated = False
            last_sync = time.monotonic()
            while queue:
                if self.should_stop is not None and self.should_stop():
                    truncated = True
                    break
                if len(visited) >= s.max_pages:
                    truncated = True
                    break
                url, depth = queue.popleft()
                if url in self.reached:  # a redirect already brought us here
                    continue
                if not self._robots(url).can_fetch(ROBOTS_AGENT, url):
                    self._record(FileResult(url, "skipped", "robots", "robots.txt 不允許"))
                    continue
                if visited and self.delay:
                    time.sleep(self.delay)
                visited.add(url)
                for link in self._visit(url, known):
                    host = urlsplit(link).hostname or ""
                    if link in seen or not self.allowed_host(host):
                        continue
                    if depth + 1 > s.max_depth:
                        truncated = True
                        continue
                    seen.add(link)
                    queue.append((link, depth + 1))
                if time.monotonic() - last_sync > 5.0:
                    self.zk.sync_index(self.kb, keep_writer=True)
                    last_sync = time.monotonic()
            if not truncated:
                self._prune(self.reached | seen)
        finally:
            self.client.close()
            with contextlib.suppress(ZhikuError):
                self.zk.sync_index(self.kb)
            self.report.seconds = time.perf_counter() - t0
        return self.report

    def _prune(self, reached: set[str]) -> None:
        """Remove this crawl's pages that nothing links to any more."""
        kbo = self.zk.store.get_kb(self.kb)
        repo = SqlSources(self.zk.store.database)
        gone = [u for u in repo.page_urls(kbo.id, self.origin) if u not in reached]
        for url in gone:
            if self.zk.remove(self.kb, url):
                self._record(FileResult(url, "removed"))
        if gone:
            repo.delete_pages(kbo.id, self.origin, gone)
