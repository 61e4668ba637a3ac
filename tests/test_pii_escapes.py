"""Personal data must not escape a KB's policy through any field of any response.

Generated IDs and mobile numbers are put where earlier versions let them through: a FAQ
question (a passage *label*) in an ``output``-mode KB, the file name of an upload and of
a local file (both modes), and a question that ends up in the feedback list. Then every
response shape is fetched (REST JSON and SSE, both OpenAI endpoints, passages, documents,
jobs, conversations, feedback, audit in three formats, the CLI) and every string in it
is walked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.filegen import make_text, make_xlsx
from tests.pii_gen import PiiGen
from tests.server_util import auth, wait_job
from zhiku.cli import app as cli_app
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.pii import PiiPolicy, redact_path
from zhiku.server import accounts
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings


def strings(obj: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def sse_events(text: str) -> list[Any]:
    out = []
    for block in text.strip().split("\n\n"):
        data = [ln[5:].strip() for ln in block.splitlines() if ln.startswith("data:")]
        if data and data[0] != "[DONE]":
            out.append(json.loads("\n".join(data)))
    return out


class Secrets:
    def __init__(self, seed: int) -> None:
        g = PiiGen(seed=seed, full_width_rate=0.0)
        self.faq_id = g.tw_id()
        self.file_id = g.tw_id()
        self.file_mobile = "09" + g.digits(8)
        self.local_id = g.tw_id()
        self.question_id = g.tw_id()

    def all(self) -> list[str]:
        return [self.faq_id, self.file_id, self.file_mobile, self.local_id, self.question_id]

    def check(self, where: str, obj: Any) -> None:
        for s in strings(obj):
            for value in self.all():
                assert value not in s, f"{value} leaked in {where}: {s[:200]!r}"


@pytest.fixture(scope="module", params=["output", "ingest"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    mode = request.param
    root = tmp_path_factory.mktemp(f"pii-{mode}")
    home = root / "home"
    sec = Secrets(seed=11 if mode == "output" else 12)
    src = root / "src"
    src.mkdir()
    make_xlsx(
        src / "常見問題.xlsx",
        [
            ["問題", "答案"],
            [
                f"身分證 {sec.faq_id} 的會員如何辦理退貨？",
                "請攜帶發票至門市辦理退貨，七日內可全額退款。",
            ],
        ],
    )
    make_text(src / f"客戶_{sec.local_id}_紀錄.txt", "客戶紀錄：保固期間維修免費，需出示保固卡。")
    with Zhiku(home) as zk:
        kb = zk.kb("cs", create=True)
        zk.set_pii_policy("cs", PiiPolicy.from_dict({**zk.pii_policy(kb).to_dict(), "mode": mode}))
        ingest_paths(zk, [src], "cs")
        accounts.create_user(zk.store, "root", "admin")
        accounts.create_user(zk.store, "amy", "editor", ["cs"])
        admin = accounts.create_key(zk.store, "root")[0]
        key = accounts.create_key(zk.store, "amy")[0]
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        name = f"王小明_{sec.file_id}_{sec.file_mobile}.md"
        r = client.post(
            "/api/v1/kbs/cs/documents",
            headers=auth(key),
            files=[
                ("files", (name, "# 會員資料\n\n會員等級分為金卡與銀卡，金卡享免運費。".encode()))
            ],
        )
        assert r.status_code == 202, r.text
        sec.check("upload response", r.json())
        job = wait_job(client, r.json()["id"], key)
        assert job["files"][0]["status"] == "added", job
        yield client, key, admin, home, sec, mode


def test_rest_responses(env: Any) -> None:
    client, key, admin, home, sec, _ = env
    h = auth(key)
    seen: dict[str, Any] = {}
    seen["documents"] = client.get("/api/v1/kbs/cs/documents", headers=h).json()
    assert len(seen["documents"]["documents"]) == 3
    for q in ("會員如何辦理退貨？", "保固期間維修", "金卡享免運費"):
        seen[f"search {q}"] = s = client.post(
            "/api/v1/kbs/cs/search", json={"query": q}, headers=h
        ).json()
        assert s["hits"], q
        seen[f"search-many {q}"] = client.post(
            "/api/v1/search", json={"query": q}, headers=h
        ).json()
        r = client.post("/api/v1/kbs/cs/ask", json={"question": q}, headers=h)
        seen[f"ask {q}"] = r.json()
        seen[f"ask headers {q}"] = dict(r.headers)
        r = client.post("/api/v1/kbs/cs/ask", json={"question": q, "stream": True}, headers=h)
        events = sse_events(r.text)
        seen[f"ask stream {q}"] = events
        for src in events[-1]["sources"]:
            pid = src["passage_id"]
            seen[f"passage {pid}"] = client.get(f"/api/v1/passages/{pid}", headers=h).json()
        for stream in (False, True):
            r = client.post(
                "/v1/chat/completions",
                headers=h,
                json={
                    "model": "cs",
                    "stream": stream,
                    "messages": [{"role": "user", "content": q}],
                },
            )
            seen[f"openai {q} {stream}"] = sse_events(r.text) if stream else r.json()
    # The FAQ's answer was found (its question label holds the ID).
    assert "門市" in json.dumps(seen["ask 會員如何辦理退貨？"], ensure_ascii=False)
    convs = client.get("/api/v1/conversations", headers=h).json()
    seen["conversations"] = convs
    for c in convs["conversations"]:
        seen[f"conversation {c['id']}"] = client.get(
            f"/api/v1/conversations/{c['id']}", headers=h
        ).json()
    seen["jobs"] = client.get("/api/v1/kbs/cs/jobs", headers=h).json()
    for where, obj in seen.items():
        sec.check(where, obj)


def test_feedback_audit_and_files_on_disk(env: Any) -> None:
    client, key, admin, home, sec, _ = env
    h = auth(key)
    r = client.post(
        "/api/v1/kbs/cs/ask",
        json={"question": f"我的身分證 {sec.question_id}，金卡有什麼優惠？"},
        headers=h,
    )
    aid = r.headers["x-answer-id"]
    client.post(f"/api/v1/answers/{aid}/feedback", json={"rating": "down"}, headers=h)
    fb = client.get("/api/v1/feedback", headers=auth(admin)).json()
    assert fb["feedback"]
    sec.check("feedback", fb)
    # A document deleted and re-ingested: its path reaches the audit log as the target.
    docs = client.get("/api/v1/kbs/cs/documents", headers=h).json()["documents"]
    local = next(d for d in docs if not d["uploaded"] and d["path"].endswith(".txt"))
    client.post(f"/api/v1/kbs/cs/documents/{local['id']}/reingest", headers=h)
    for fmt in ("json", "jsonl", "csv"):
        r = client.get(f"/api/v1/audit?format={fmt}", headers=auth(admin))
        sec.check(f"audit {fmt}", r.text)
    on_disk = [str(p.relative_to(home)) for p in (home / "uploads").rglob("*")]
    sec.check("upload area", on_disk)


def test_cli_output(env: Any) -> None:
    _, _, _, home, sec, _ = env
    runner = CliRunner()
    for args in (
        ["docs", "--kb", "cs"],
        ["docs", "--kb", "cs", "--json"],
        ["search", "保固期間維修", "--kb", "cs"],
        ["search", "會員如何辦理退貨", "--kb", "cs", "--json"],
        ["ask", "會員如何辦理退貨？", "--kb", "cs"],
        ["ask", "會員如何辦理退貨？", "--kb", "cs", "--json"],
    ):
        r = runner.invoke(cli_app, [*args, "--home", str(home)])
        sec.check(" ".join(args), r.output)


def test_ingest_mode_never_stores_the_uploaded_name_raw(env: Any) -> None:
    _, _, _, home, sec, mode = env
    with Zhiku(home) as zk:
        rows = zk.store.db.execute("SELECT path, title FROM documents").fetchall()
        uploads = zk.store.db.execute("SELECT path, stored FROM uploads").fetchall()
        files = zk.store.db.execute("SELECT name, path FROM job_files").fetchall()
    stored = [str(v) for r in (*rows, *uploads, *files) for v in r]
    if mode == "ingest":
        assert not any(sec.file_id in s or sec.file_mobile in s for s in stored)
    else:  # output mode stores raw by design, and masks every way out (tests above)
        assert any(sec.file_id in s for s in stored)


def test_masked_names_stay_distinct() -> None:
    pol = PiiPolicy.default()
    g = PiiGen(seed=3, full_width_rate=0.0)
    a, b = g.tw_id(), g.tw_id()
    pa = redact_path(f"/data/客戶_{a}.md", pol, b"k" * 32)
    pb = redact_path(f"/data/客戶_{b}.md", pol, b"k" * 32)
    assert a not in pa and b not in pb and pa != pb
    assert pa.startswith("/data/客戶_") and pa.endswith(".md")
    assert redact_path("/data/出貨SOP_v2.docx", pol, b"k" * 32) == "/data/出貨SOP_v2.docx"
