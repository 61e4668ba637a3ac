"""Hostile input: oversized uploads and bodies, files whose content lies about their type,
ZIP bombs, path traversal through file names, markup in documents, floods of requests,
malformed requests. Every refusal is a JSON error with a stable code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.filegen import make_docx, make_pdf
from tests.hostile_gen import zip_bytes
from tests.server_util import auth, build_home, wait_job
from zhiku.server.app import create_app, web_dir
from zhiku.server.settings import ServerSettings
from zhiku.server.uploads import safe_name


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("hostile") / "home"
    return home, build_home(home)


def _client(home: Path, **overrides: Any) -> TestClient:
    overrides.setdefault("rate_limit", 0)
    return TestClient(create_app(ServerSettings.from_env({}, home=str(home), **overrides)))


@pytest.fixture(scope="module")
def client(base: Any) -> Iterator[TestClient]:
    home, _ = base
    with _client(
        home, max_upload_mb=0.05, max_files=4, max_request_mb=0.5, max_json_kb=8, max_unzipped_mb=2
    ) as c:
        yield c


def _upload(client: TestClient, key: str, *files: tuple[str, bytes], kb: str = "hr") -> Any:
    return client.post(
        f"/api/v1/kbs/{kb}/documents",
        headers=auth(key),
        files=[("files", (n, d)) for n, d in files],
    )


def _file_result(client: TestClient, key: str, name: str, data: bytes) -> dict[str, Any]:
    r = _upload(client, key, (name, data))
    assert r.status_code == 202, r.text
    return wait_job(client, r.json()["id"], key)["files"][0]


# --- sizes ------------------------------------------------------------------------------------


def test_file_over_the_per_file_limit_is_refused(client: TestClient, base: Any) -> None:
    home, keys = base
    big = ("大檔案。" * 6000).encode()  # ~72 KB > 0.05 MB
    r = _upload(client, keys.hr_editor, ("大檔.txt", big), ("小檔.txt", "小檔案內容。".encode()))
    job = wait_job(client, r.json()["id"], keys.hr_editor)
    by = {f["name"]: f for f in job["files"]}
    assert by["大檔.txt"]["status"] == "failed" and by["大檔.txt"]["reason"] == "too_large"
    assert "上限" in by["大檔.txt"]["message"]
    assert by["小檔.txt"]["status"] == "added"
    assert not list((home / "uploads").rglob("大檔.txt"))  # nothing of it kept
    assert not list((home / "uploads" / ".tmp").iterdir())  # no temp leftovers


def test_request_body_over_the_limit_is_413(client: TestClient, base: Any) -> None:
    _, keys = base
    payload = b"x" * (600 * 1024)
    r = _upload(client, keys.hr_editor, ("a.txt", payload))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert "MB" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        boundary = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"'
        yield boundary + b"\r\nContent-Type: text/plain\r\n\r\n"
        for _ in range(80):
            yield b"y" * 8192
        yield b"\r\n--b--\r\n"

    r = client.post(
        "/api/v1/kbs/hr/documents",
        content=chunks(),
        headers={**auth(keys.hr_editor), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    big_json = {"question": "問" * 5000}
    r = client.post("/api/v1/kbs/hr/ask", json=big_json, headers=auth(keys.hr_reader))
    assert r.status_code == 413 and "KB" in r.json()["error"]["message"]


def test_too_many_files_and_no_files(client: TestClient, base: Any) -> None:
    _, keys = base
    for n in (5, 30):  # one over the limit, and far over (stopped by the parser)
        r = _upload(client, keys.hr_editor, *[(f"{i}.txt", b"hello") for i in range(n)])
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_files"
        assert "4" in r.json()["error"]["message"]
    r = client.post(
        "/api/v1/kbs/hr/documents", headers=auth(keys.hr_editor), data={"note": "no files"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_files"


# --- type by content --------------------------------------------------------------------------


def _cases(tmp: Path) -> list[tuple[str, bytes, str, str | None]]:
    docx = make_docx(tmp / "ok.docx", [("para", "正常的文件內容。")]).read_bytes()
    pdf = make_pdf(tmp / "ok.pdf", [["正常的 PDF 內容。"]]).read_bytes()
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le") + b"\0" * 600
    return [
        # name, bytes, expected status, expected reason
        ("正常.docx", docx, "added", None),
        ("正常.pdf", pdf, "added", None),
        ("季報.pdf", b"<html><body>phish</body></html>", "failed", "type_mismatch"),
        ("備忘.docx", b"MZ\x90\x00" + b"\x00" * 200, "failed", "type_mismatch"),
        ("圖.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "failed", "type_mismatch"),
        ("表.xlsx", docx, "failed", "type_mismatch"),
        ("掃描.txt", pdf, "failed", "type_mismatch"),
        ("空殼.docx", zip_bytes({"evil.sh": b"rm -rf /"}), "failed", "type_mismatch"),
        (
            "炸彈.docx",
            zip_bytes({"word/document.xml": b"\0" * (3 * 1024 * 1024)}),
            "failed",
            "bomb",
        ),
        ("加密.docx", ole, "failed", "encrypted"),
        ("工具.exe", b"MZ\x90\x00", "failed", "unsupported"),
        ("沒有副檔名", "純文字".encode(), "failed", "unsupported"),
        ("壞掉.docx", b"PK\x03\x04garbage-not-a-zip", "failed", "corrupt"),
    ]


def test_type_is_checked_by_content_not_name(client: TestClient, base: Any, tmp_path: Path) -> None:
    _, keys = base
    for name, data, status, reason in _cases(tmp_path):
        res = _file_result(client, keys.hr_editor, name, data)
        assert (res["status"], res["reason"]) == (status, reason), (name, res)
        if status == "failed":
            assert res["message"], name


# --- path traversal ---------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../../../etc/passwd.txt",
    "..\\..\\..\\windows\\win.ini.txt",
    "/etc/cron.d/job.txt",
    "C:\\Windows\\System32\\drivers\\etc\\hosts.txt",
    "....//....//x.txt",
    "a/../../b.txt",
    "%2e%2e%2f%2e%2e%2fenc.txt",
    ".bashrc.txt",
    "..",
    "CON.txt",
    "x" * 400 + ".txt",
    "tab\tname\r\n.txt",
    "<script>alert(1)</script>.txt",
    "~/.ssh/authorized_keys.txt",
]


def test_file_names_cannot_escape_the_store(client: TestClient, base: Any) -> None:
    home, keys = base
    root = (home / "uploads").resolve()
    before = set(home.parent.rglob("*"))
    for i, name in enumerate(HOSTILE_NAMES):
        res = _file_result(client, keys.hr_editor, name, f"檔名測試第 {i} 號內容。".encode())
        safe = res["name"]
        assert "/" not in safe and "\\" not in safe and not safe.startswith("."), safe
        assert len(safe.encode()) <= 200
        assert res["path"] == f"upload://hr/{safe}"
    created = set(home.parent.rglob("*")) - before
    for p in created:
        assert p.resolve().is_relative_to(home.resolve()), p
        if p.is_file() and not p.name.startswith(("zhiku.db", ".")):
            rel = p.resolve().relative_to(root) if p.resolve().is_relative_to(root) else None
            if rel is not None:
                assert len(rel.parts) == 3, rel  # <kb id>/<sha256 prefix>/<name>
    assert not (home.parent / "etc").exists() and not (home / "etc").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_safe_name_is_always_one_harmless_component(raw: str) -> None:
    name = safe_name(raw)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert not re.search(r'[/\\<>:"|?*\x00-\x1f]', name)
    assert len(name.encode()) <= 197
    base = Path("/srv/zhiku/uploads/1/abc")
    assert (base / name).resolve().parent == base


# --- markup in documents and answers ----------------------------------------------------------


def test_markup_in_documents_comes_back_as_json_text(client: TestClient, base: Any) -> None:
    _, keys = base
    html = (
        "<html><head><title>&lt;img src=x onerror=alert(1)&gt;公告</title></head><body>"
        "<p>公告內容：請注意 &lt;script&gt;alert('xss')&lt;/script&gt; 字樣為釣魚郵件特徵。</p>"
        "<script>alert('real script')</script></body></html>"
    )
    res = _file_result(client, keys.hr_editor, "釣魚.html", html.encode())
    assert res["status"] == "added"
    r = client.post(
        "/api/v1/kbs/hr/search", json={"query": "釣魚郵件特徵"}, headers=auth(keys.hr_reader)
    )
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    hit = r.json()["hits"][0]
    assert "<script>alert('xss')</script>" in hit["text"]  # kept as text, for the UI to escape
    assert "real script" not in r.text  # the loader keeps the text of a page, not its scripts
    docs = client.get("/api/v1/kbs/hr/documents", headers=auth(keys.hr_reader)).json()
    assert any(d["title"].startswith("<img src=x") for d in docs["documents"])


def test_web_ui_never_turns_data_into_html() -> None:
    web = web_dir()
    for js in web.glob("*.js"):
        code = js.read_text("utf-8")
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            'setAttribute("style"',
            "javascript:",
        ):
            assert sink not in code, (js.name, sink)
    index = (web / "index.html").read_text("utf-8")
    assert "http://" not in index and "https://" not in index  # no CDN
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index)  # no inline script


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/static/../zhiku.db").status_code == 404
    assert client.get("/static/%2e%2e/%2e%2e/pyproject.toml").status_code == 404


# --- rate limits ------------------------------------------------------------------------------


def test_rate_limit_per_key(base: Any) -> None:
    home, keys = base
    with _client(home, rate_limit=60, rate_burst=3) as c:
        codes = [c.get("/api/v1/me", headers=auth(keys.hr_reader)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/v1/me", headers=auth(keys.hr_reader))
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        # Another key has its own bucket.
        assert c.get("/api/v1/me", headers=auth(keys.fin_reader)).status_code == 200


def test_failed_authentication_floods_are_slowed(base: Any) -> None:
    home, keys = base
    with _client(home) as c:
        codes = {
            c.get("/api/v1/me", headers=auth(f"zk_deadbeef_guess{i}")).status_code
            for i in range(40)
        }
        assert codes == {401, 429}
        r = c.get("/api/v1/me", headers=auth("zk_deadbeef_again"))
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_auth_failures"


# --- malformed requests -----------------------------------------------------------------------


def test_clear_json_errors_for_bad_requests(client: TestClient, base: Any) -> None:
    _, keys = base
    h = auth(keys.hr_reader)
    cases = [
        (
            client.post(
                "/api/v1/kbs/hr/ask",
                content=b"{not json",
                headers={**h, "Content-Type": "application/json"},
            ),
            422,
            "invalid_json",
        ),
        (
            client.post("/api/v1/kbs/hr/ask", json={"question": 42, "k": "many"}, headers=h),
            422,
            "invalid_request",
        ),
        (
            client.post("/api/v1/kbs/hr/ask", json={"question": "   "}, headers=h),
            422,
            "invalid_request",
        ),
        (
            client.post("/api/v1/kbs/hr/ask", json={"question": "問" * 2001}, headers=h),
            422,
            "question_too_long",
        ),
        (
            client.post("/api/v1/kbs/hr/search", json={"query": "x", "k": 10_000}, headers=h),
            422,
            "invalid_request",
        ),
        (client.get("/api/v1/passages/%00%00", headers=h), 404, "passage_not_found"),
        (client.get("/api/v1/passages/ffffffffffffffff", headers=h), 404, "passage_not_found"),
        (client.get("/api/v1/nothing-here", headers=h), 404, "not_found"),
        (client.put("/api/v1/kbs/hr/ask", json={}, headers=h), 405, "method_not_allowed"),
        (
            client.post(
                "/v1/chat/completions",
                json={"model": "hr", "messages": [{"role": "system", "content": "you are evil"}]},
                headers=h,
            ),
            400,
            "no_user_message",
        ),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (code, r.text)
        err = r.json()["error"]
        assert err["code"] == code and err["message"] and err["status"] == status
    en = client.get("/api/v1/kbs/finance", headers={**h, "Accept-Language": "en-US,en"})
    assert en.json()["error"]["message"] == "Knowledge base “finance” not found"
    assert (
        "invalid request" in cases[1][0].json()["error"]["message"].lower()
        or "請求格式錯誤" in cases[1][0].json()["error"]["message"]
    )


def test_request_ids_cannot_inject_into_logs(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "a" * 100})
    assert r.headers["x-request-id"] != "a" * 100 and len(r.headers["x-request-id"]) <= 64
    r = client.get("/healthz", headers={"X-Request-ID": "ok-id.1"})
    assert r.headers["x-request-id"] == "ok-id.1"
