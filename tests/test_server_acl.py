"""Access control under attack: a reader (and an editor) of ``hr`` tries every endpoint
to get anything out of ``finance`` — a chunk, a citation, a title, a count, or just
confirmation that it exists — and a reader with no grants tries too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server_util import auth, build_home, wait_job
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings
from zhiku.services.retrieval import RetrievalService
from zhiku.store import Store

# Strings that only exist in the finance KB: none may appear in any answer to an hr user.
FINANCE_ONLY = (
    "finance",
    "財務",
    "報銷",
    "FIN-SECRET",
    "4729",
    "研發預算",
    "八億",
    "住宿費",
    "差旅",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("acl") / "home"
    keys = build_home(home)
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        adm = auth(keys.admin)
        fin = {
            "doc": client.get("/api/v1/kbs/finance/documents", headers=adm).json()["documents"][0][
                "id"
            ],
            "passage": client.post(
                "/api/v1/kbs/finance/search", json={"query": "研發預算"}, headers=adm
            ).json()["hits"][0]["passage_id"],
        }
        r = client.post(
            "/api/v1/kbs/finance/documents",
            headers=adm,
            files=[("files", ("附件.txt", "財務附件內容".encode()))],
        )
        fin["job"] = wait_job(client, r.json()["id"], keys.admin)["id"]
        r = client.post(
            "/api/v1/kbs/finance/ask",
            json={"question": "年度研發預算是多少？"},
            headers=auth(keys.fin_reader),
        )
        fin["conversation"] = r.headers["x-conversation-id"]
        fin["answer"] = r.headers["x-answer-id"]
        assert "八億" in r.json()["answer"]  # the secret is really there, for the right user
        yield client, keys, fin, home


def _kb_calls(kb: str, fin: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every endpoint that takes a KB name, with a plausible body."""
    return [
        ("GET", f"/api/v1/kbs/{kb}", {}),
        ("GET", f"/api/v1/kbs/{kb}/documents", {}),
        (
            "POST",
            f"/api/v1/kbs/{kb}/documents",
            {"files": [("files", ("x.txt", "新文件".encode()))]},
        ),
        ("GET", f"/api/v1/kbs/{kb}/jobs", {}),
        ("GET", f"/api/v1/kbs/{kb}/policy", {}),
        ("POST", f"/api/v1/kbs/{kb}/search", {"json": {"query": "研發預算"}}),
        ("POST", f"/api/v1/kbs/{kb}/ask", {"json": {"question": "年度研發預算是多少？"}}),
        ("POST", f"/api/v1/kbs/{kb}/ask", {"json": {"question": "研發預算", "stream": True}}),
        ("DELETE", f"/api/v1/kbs/{kb}/documents/{fin['doc']}", {}),
        ("POST", f"/api/v1/kbs/{kb}/documents/{fin['doc']}/reingest", {}),
        ("GET", f"/api/v1/conversations?kb={kb}", {}),
        ("POST", "/api/v1/conversations", {"json": {"kb": kb}}),
        ("POST", "/api/v1/search", {"json": {"query": "研發預算", "kbs": [kb]}}),
        ("POST", "/api/v1/search", {"json": {"query": "研發預算", "kbs": ["hr", kb]}}),
        (
            "POST",
            "/v1/chat/completions",
            {"json": {"model": kb, "messages": [{"role": "user", "content": "研發預算？"}]}},
        ),
        (
            "POST",
            "/v1/chat/completions",
            {
                "json": {
                    "model": kb,
                    "stream": True,
                    "messages": [{"role": "user", "content": "研發預算？"}],
                }
            },
        ),
        ("DELETE", f"/api/v1/kbs/{kb}", {}),
        ("PUT", f"/api/v1/kbs/{kb}/policy", {"json": {"mode": "off"}}),
    ]


def _shape(r: Any, kb: str) -> tuple[int, str, str]:
    """Status, error code and message with the KB name blanked: what a prober can compare."""
    err = r.json()["error"]
    return r.status_code, err["code"], err["message"].replace(kb, "<kb>")


@pytest.mark.parametrize("who", ["hr_reader", "hr_editor", "nobody"])
def test_finance_answers_exactly_like_a_kb_that_does_not_exist(env: Any, who: str) -> None:
    client, keys, fin, _ = env
    key = getattr(keys, who)
    for (method, path, kw), (_, ghost_path, ghost_kw) in zip(
        _kb_calls("finance", fin), _kb_calls("no-such-kb", fin), strict=True
    ):
        r = client.request(method, path, headers=auth(key), **kw)
        ghost = client.request(method, ghost_path, headers=auth(key), **ghost_kw)
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
        assert _shape(r, "finance") == _shape(ghost, "no-such-kb"), (method, path)
        body = r.text.replace("finance", "")  # the name the caller sent is echoed, nothing else
        for secret in FINANCE_ONLY[1:]:
            assert secret not in body, (method, path, secret)


def test_objects_of_finance_by_id_are_not_found(env: Any) -> None:
    client, keys, fin, _ = env
    for key in (keys.hr_reader, keys.hr_editor):
        h = auth(key)
        calls = [
            ("GET", f"/api/v1/passages/{fin['passage']}", "/api/v1/passages/0123456789abcdef", {}),
            ("GET", f"/api/v1/jobs/{fin['job']}", "/api/v1/jobs/not-a-job", {}),
            (
                "GET",
                f"/api/v1/conversations/{fin['conversation']}",
                "/api/v1/conversations/nope",
                {},
            ),
            (
                "DELETE",
                f"/api/v1/conversations/{fin['conversation']}",
                "/api/v1/conversations/nope",
                {},
            ),
            (
                "POST",
                f"/api/v1/answers/{fin['answer']}/feedback",
                "/api/v1/answers/nope/feedback",
                {"json": {"rating": "down"}},
            ),
            (
                "POST",
                "/api/v1/kbs/hr/ask",
                "/api/v1/kbs/hr/ask",
                {"json": {"question": "研發預算", "conversation_id": fin["conversation"]}},
            ),
        ]
        for method, path, ghost_path, kw in calls:
            r = client.request(method, path, headers=h, **kw)
            ghost_kw = kw
            if "conversation_id" in kw.get("json", {}):
                ghost_kw = {"json": {**kw["json"], "conversation_id": "nope"}}
            ghost = client.request(method, ghost_path, headers=h, **ghost_kw)
            assert r.status_code == 404, (path, r.text)
            assert _shape(r, "") == _shape(ghost, ""), path
        # A finance document id through the hr path: not in hr, so not found.
        for method, path in (
            ("DELETE", f"/api/v1/kbs/hr/documents/{fin['doc']}"),
            ("POST", f"/api/v1/kbs/hr/documents/{fin['doc']}/reingest"),
        ):
            r = client.request(method, path, headers=h)
            if key == keys.hr_reader:
                assert r.status_code == 403  # readers cannot change hr documents at all
            else:
                assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    # The finance objects are untouched.
    fin_h = auth(keys.fin_reader)
    assert (
        client.get(f"/api/v1/conversations/{fin['conversation']}", headers=fin_h).status_code == 200
    )
    assert (
        client.get("/api/v1/kbs/finance/documents", headers=auth(keys.admin)).json()["documents"][
            0
        ]["id"]
        == fin["doc"]
    )


def test_hr_queries_for_finance_content_return_only_hr(env: Any) -> None:
    client, keys, _, _ = env
    h = auth(keys.hr_reader)
    # Listings first (before this test's own questions become conversation titles).
    listings = [
        client.get(p, headers=h).text
        for p in (
            "/api/v1/kbs",
            "/api/v1/me",
            "/v1/models",
            "/api/v1/conversations",
            "/api/v1/kbs/hr/documents",
            "/api/v1/kbs/hr/jobs",
        )
    ]
    for text in listings:
        for secret in FINANCE_ONLY:
            assert secret not in text, (secret, text[:300])
    for q in (
        "FIN-SECRET-4729",
        "年度研發預算是多少？",
        "出差住宿費每晚上限多少？",
        "財務報銷規定",
    ):
        for r in (
            client.post("/api/v1/kbs/hr/search", json={"query": q, "k": 50}, headers=h),
            client.post("/api/v1/search", json={"query": q, "k": 50}, headers=h),
            client.post("/api/v1/kbs/hr/ask", json={"question": q}, headers=h),
            client.post("/api/v1/kbs/hr/ask", json={"question": q, "stream": True}, headers=h),
            client.post(
                "/v1/chat/completions",
                headers=h,
                json={"model": "hr", "messages": [{"role": "user", "content": q}]},
            ),
            client.post(
                "/v1/chat/completions",
                headers=h,
                json={"model": "hr", "stream": True, "messages": [{"role": "user", "content": q}]},
            ),
        ):
            assert r.status_code == 200, r.text
            for secret in FINANCE_ONLY:
                assert secret not in r.text, (q, secret, r.text[:300])
        hits = client.post("/api/v1/search", json={"query": q, "k": 50}, headers=h).json()["hits"]
        assert all(x["kb"] == "hr" for x in hits)
    assert [m["id"] for m in client.get("/v1/models", headers=h).json()["data"]] == ["hr"]
    assert [k["name"] for k in client.get("/api/v1/kbs", headers=h).json()["kbs"]] == ["hr"]


def test_retrieval_is_filtered_inside_the_store_query(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine is only ever asked about the caller's KBs, and the store's join is
    restricted to their ids: nothing from finance is fetched and then dropped.

    ``retrieve`` is where every path meets (search calls it, ask and chat call it through
    ``iter_answer``); each endpoint must reach it, with ``["hr"]`` only."""
    client, keys, _, home = env
    finance_id = Store(home / "zhiku.db").get_kb("finance").id
    calls: list[tuple[str, list[str]]] = []
    joined: list[list[int]] = []
    orig_retrieve, orig_search = RetrievalService.retrieve, RetrievalService.search
    orig_hits = Store.hits_for

    def names(kbs: Any) -> list[str]:
        return [kbs] if isinstance(kbs, str) else list(kbs)

    def retrieve(
        self: RetrievalService, query: str, kbs: Any = "default", *a: Any, **kw: Any
    ) -> Any:
        calls.append(("retrieve", names(kbs)))
        return orig_retrieve(self, query, kbs, *a, **kw)

    def search(self: RetrievalService, query: str, kbs: Any = "default", *a: Any, **kw: Any) -> Any:
        calls.append(("search", names(kbs)))
        return orig_search(self, query, kbs, *a, **kw)

    def hits_for(self: Store, scored: Any, kb_ids: Any, where: Any = None) -> Any:
        joined.append(list(kb_ids))
        return orig_hits(self, scored, kb_ids, where)

    monkeypatch.setattr(RetrievalService, "retrieve", retrieve)
    monkeypatch.setattr(RetrievalService, "search", search)
    monkeypatch.setattr(Store, "hits_for", hits_for)
    h = auth(keys.hr_reader)
    requests = {
        "search all": ("/api/v1/search", {"query": "研發預算"}),
        "search hr": ("/api/v1/kbs/hr/search", {"query": "研發預算"}),
        "ask": ("/api/v1/kbs/hr/ask", {"question": "研發預算"}),
        "ask stream": ("/api/v1/kbs/hr/ask", {"question": "研發預算", "stream": True}),
        "chat": (
            "/v1/chat/completions",
            {"model": "hr", "messages": [{"role": "user", "content": "研發預算"}]},
        ),
    }
    for what, (path, body) in requests.items():
        calls.clear()
        joined.clear()
        assert client.post(path, json=body, headers=h).status_code == 200, what
        assert any(fn == "retrieve" for fn, _ in calls), (what, calls)
        assert all(kbs == ["hr"] for _, kbs in calls), (what, calls)
        assert joined and all(finance_id not in ids for ids in joined), (what, joined)


def test_admin_only_endpoints_refuse_everyone_else(env: Any) -> None:
    client, keys, _, _ = env
    admin_only = [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/keys"),
        ("POST", "/api/v1/keys"),
        ("DELETE", "/api/v1/keys/1"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/feedback"),
        ("PUT", "/api/v1/users/1/grants"),
        ("PATCH", "/api/v1/users/1"),
        ("DELETE", "/api/v1/users/1"),
        ("POST", "/api/v1/kbs"),
    ]
    for key in (keys.hr_reader, keys.hr_editor, keys.nobody):
        for method, path in admin_only:
            r = client.request(method, path, headers=auth(key), json={})
            assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only", path
        # Metrics hold global counts (ingestion queue): admins and the scrape token only.
        assert client.get("/metrics", headers=auth(key)).status_code == 403


def test_no_key_or_a_bad_key_gets_nothing(env: Any) -> None:
    client, _, fin, _ = env
    paths = [
        ("GET", "/api/v1/kbs"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/kbs/hr/ask"),
        ("POST", "/api/v1/kbs/hr/search"),
        ("GET", f"/api/v1/passages/{fin['passage']}"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/v1/kbs/hr/documents"),
        ("GET", "/api/v1/audit"),
    ]
    for headers in (
        {},
        {"Authorization": "Bearer zk_00000000_forged"},
        {"Authorization": "Basic cm9vdDpyb290"},
        {"Authorization": "Bearer "},
    ):
        for method, path in paths:
            r = client.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (headers, path, r.status_code)
            assert r.json()["error"]["code"] == "unauthorized"
    # The web page and health checks need no key and hold no data.
    assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200


def test_revoked_grant_takes_effect_immediately(env: Any) -> None:
    client, keys, _, _ = env
    adm = auth(keys.admin)
    uid = client.post(
        "/api/v1/users", json={"name": "temp", "role": "reader", "kbs": ["finance"]}, headers=adm
    ).json()["id"]
    key = client.post("/api/v1/keys", json={"user": uid}, headers=adm).json()["key"]
    r = client.post(
        "/api/v1/kbs/finance/ask", json={"question": "年度研發預算是多少？"}, headers=auth(key)
    )
    assert "八億" in json.dumps(r.json(), ensure_ascii=False)
    conv = r.headers["x-conversation-id"]
    client.put(f"/api/v1/users/{uid}/grants", json={"kbs": []}, headers=adm)
    assert (
        client.post(
            "/api/v1/kbs/finance/ask", json={"question": "研發預算"}, headers=auth(key)
        ).status_code
        == 404
    )
    # Even the user's own finance conversation is out of reach once the grant is gone.
    assert client.get(f"/api/v1/conversations/{conv}", headers=auth(key)).status_code == 404
    assert client.get("/api/v1/conversations", headers=auth(key)).json()["conversations"] == []


def test_a_revoked_kbs_conversation_is_an_unknown_id(env: Any) -> None:
    """Continuing an old finance conversation on hr after losing finance answers exactly
    like an id that never existed: not "belongs to another KB", which would tell that
    finance (and the conversation) are still there."""
    client, keys, _, _ = env
    adm = auth(keys.admin)
    uid = client.post(
        "/api/v1/users",
        json={"name": "temp2", "role": "reader", "kbs": ["hr", "finance"]},
        headers=adm,
    ).json()["id"]
    key = client.post("/api/v1/keys", json={"user": uid}, headers=adm).json()["key"]
    r = client.post(
        "/api/v1/kbs/finance/ask", json={"question": "年度研發預算是多少？"}, headers=auth(key)
    )
    conv = r.headers["x-conversation-id"]
    # While both are readable, the mismatch is said as such.
    r = client.post(
        "/api/v1/kbs/hr/ask", json={"question": "特休", "conversation_id": conv}, headers=auth(key)
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conversation_kb_mismatch"
    client.put(f"/api/v1/users/{uid}/grants", json={"kbs": ["hr"]}, headers=adm)

    def ask_hr(conversation_id: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        r = client.post(
            "/api/v1/kbs/hr/ask",
            headers=auth(key),
            json={"question": "特休", "conversation_id": conversation_id, **extra},
        )
        body = r.json() if r.headers["content-type"].startswith("application/json") else {}
        body.get("error", {}).pop("request_id", None)
        return r.status_code, body

    status, body = ask_hr(conv)
    assert status == 404 and body["error"]["code"] == "conversation_not_found"
    assert (status, body) == ask_hr("no-such-conversation-id")
    assert ask_hr(conv, stream=True) == ask_hr("no-such-conversation-id", stream=True)
    for secret in FINANCE_ONLY:
        assert secret not in json.dumps(body, ensure_ascii=False)
