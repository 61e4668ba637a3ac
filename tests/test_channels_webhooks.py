"""Outbound webhooks against a local receiver: signed events, retries, the delivery log,
redelivery, the address guard, and a queue that survives a restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import Keys, auth, build_home
from zhiku.channels import registry, webhooks
from zhiku.channels.webhooks import TargetPolicy, WebhookError, sign, verify
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.store import Store


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    fail = outer.fail_next > 0
                    outer.fail_next -= 1 if fail else 0
                    outer.got.append({"headers": dict(self.headers), "body": body, "failed": fail})
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                json.loads(g["body"])
                for g in self.got
                if not g["failed"] and g["headers"]["X-Zhiku-Event"] == name
            ]

    def wait(self, name: str, n: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events(name)) < n:
            assert time.monotonic() < deadline, f"no {name} event arrived"
            time.sleep(0.05)
        return self.events(name)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Receiver, Keys, Path, str]]:
    home = tmp_path_factory.mktemp("hooks") / "home"
    keys = build_home(home)
    rec = Receiver()
    mp = pytest.MonkeyPatch()
    mp.setenv("ZHIKU_WEBHOOK_ALLOW_IPS", "127.0.0.1")
    mp.setenv("ZHIKU_WEBHOOK_RETRY_S", "0.2")
    # an event queued while no server runs is delivered once one starts
    store = Store(home / "zhiku.db")
    _t, secret = registry.add_webhook(
        store, "erp", rec.url, [], policy=TargetPolicy(allow_ips=["127.0.0.1"])
    )
    webhooks.emit(store.database, "handoff.requested", {"kb": "hr", "case": "c1"})
    store.close()
    settings = ServerSettings.from_env({}, home=str(home), ingest_worker=False)
    with TestClient(create_app(settings)) as client:
        yield client, rec, keys, home, secret
    mp.undo()
    rec.server.shutdown()


def test_signature_roundtrip_and_tampering() -> None:
    body = b'{"a":1}'
    header = sign("s3", body)
    assert verify("s3", body, header)
    assert not verify("s3", body + b" ", header)
    assert not verify("other", body, header)
    old = sign("s3", body, int(time.time()) - 3600)
    assert not verify("s3", body, old)  # replayed an hour later


def test_targets_are_checked() -> None:
    open_policy = TargetPolicy()
    for url, why in (
        ("http://169.254.169.254/latest", "中繼資料"),
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://metadata.google.internal/", "中繼資料"),
        ("ftp://example.com/x", r"http\(s\)"),
    ):
        with pytest.raises(WebhookError, match=why):
            open_policy.resolve(url)
    listed = TargetPolicy(hosts=["*.example.com"])
    with pytest.raises(WebhookError, match="允許清單"):
        listed.check_url("https://evil.test/hook")
    assert listed.check_url("https://n8n.example.com/hook").host == "n8n.example.com"
    assert TargetPolicy(allow_ips=["127.0.0.1"]).resolve("http://127.0.0.1:9/x")[1] == "127.0.0.1"


def test_queued_event_survives_restart(env: Any) -> None:
    _client, rec, _keys, _home, secret = env
    got = rec.wait("handoff.requested")
    assert got[0]["data"] == {"kb": "hr", "case": "c1"}
    raw = next(g for g in rec.got if g["headers"]["X-Zhiku-Event"] == "handoff.requested")
    assert verify(secret, raw["body"], raw["headers"]["X-Zhiku-Signature"])


def test_answers_refusals_and_negative_feedback_are_emitted(env: Any) -> None:
    client, rec, keys, _home, secret = env
    r = client.post(
        "/api/v1/kbs/hr/ask",
        headers=auth(keys.hr_reader),
        json={"question": "身分證 A123456789 的員工特別休假幾天？"},
    )
    assert r.status_code == 200
    ev = rec.wait("question.answered")[-1]
    assert ev["data"]["kb"] == "hr" and ev["data"]["channel"] == "api"
    assert "A123456789" not in json.dumps(ev, ensure_ascii=False)
    assert "七日" in ev["data"]["answer"] and ev["data"]["citations"][0]["doc"]
    raw = [g for g in rec.got if g["headers"]["X-Zhiku-Event"] == "question.answered"][-1]
    assert verify(secret, raw["body"], raw["headers"]["X-Zhiku-Signature"])
    client.post(
        "/api/v1/kbs/hr/ask",
        headers=auth(keys.hr_reader),
        json={"question": "公司的股票代號是多少？"},
    )
    assert rec.wait("question.refused")[-1]["data"]["refused"] is True
    fb = client.post(
        f"/api/v1/answers/{r.headers['X-Answer-Id']}/feedback",
        headers=auth(keys.hr_reader),
        json={"rating": "down", "comment": "不對"},
    )
    assert fb.status_code == 200
    neg = rec.wait("feedback.negative")[-1]["data"]
    assert neg["answer_id"] == r.headers["X-Answer-Id"] and neg["comment"] == "不對"


def test_retry_then_delivery_log_and_redelivery(env: Any) -> None:
    client, rec, keys, _home, _secret = env
    rec.fail_next = 2
    n = len(rec.events("question.answered"))
    client.post(
        "/api/v1/kbs/hr/ask",
        headers=auth(keys.hr_reader),
        json={"question": "病假全年合計不得超過幾日？"},
    )
    rec.wait("question.answered", n + 1)
    log = client.get("/api/v1/webhooks/deliveries", headers=auth(keys.admin)).json()
    latest = next(d for d in log["deliveries"] if d["event"] == "question.answered")
    assert latest["status"] == "delivered" and latest["attempts"] == 3
    assert (
        client.get("/api/v1/webhooks/deliveries", headers=auth(keys.hr_reader)).status_code == 403
    )
    r = client.post(
        f"/api/v1/webhooks/deliveries/{latest['id']}/redeliver", headers=auth(keys.admin)
    )
    assert r.status_code == 200
    got = rec.wait("question.answered", n + 2)
    assert got[-1]["id"] == got[-2]["id"]  # the same event, sent again
    assert (
        client.post(
            "/api/v1/webhooks/deliveries/999999/redeliver", headers=auth(keys.admin)
        ).status_code
        == 404
    )


def test_admin_only_configuration(env: Any) -> None:
    client, rec, keys, _home, _secret = env
    body = {"name": "n8n", "url": rec.url, "events": ["question.answered"]}
    assert (
        client.post("/api/v1/webhooks", headers=auth(keys.hr_editor), json=body).status_code == 403
    )
    r = client.post("/api/v1/webhooks", headers=auth(keys.admin), json=body)
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    bad = client.post(
        "/api/v1/webhooks",
        headers=auth(keys.admin),
        json={"name": "meta", "url": "http://169.254.169.254/x"},
    )
    assert bad.status_code == 400 and "中繼資料" in bad.json()["error"]["message"]
    unknown = client.post(
        "/api/v1/webhooks",
        headers=auth(keys.admin),
        json={"name": "x", "url": rec.url, "events": ["nope"]},
    )
    assert unknown.status_code == 400
    names = [
        t["name"]
        for t in client.get("/api/v1/webhooks", headers=auth(keys.admin)).json()["webhooks"]
    ]
    assert names == ["erp", "n8n"]
    assert "secret" not in str(client.get("/api/v1/webhooks", headers=auth(keys.admin)).json())
    assert client.delete("/api/v1/webhooks/n8n", headers=auth(keys.admin)).status_code == 200
