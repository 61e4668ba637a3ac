"""Contract of the accounts, conversations and library repositories, on SQLite and on a
real PostgreSQL (tests/pg.py): the rows behind users, keys, grants, conversations,
feedback, passages and uploads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from zhiku.filters import Filter
from zhiku.storage import migrate
from zhiku.storage.accounts import SqlAccounts
from zhiku.storage.conversations import SqlConversations
from zhiku.storage.db import Database, connect, now_iso
from zhiku.storage.library import SqlLibrary, UploadRecord

TS = "2026-11-20T00:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "zhiku.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(target: str) -> Iterator[Database]:
    database = connect(target)
    migrate.apply(database)
    yield database
    database.close()


def _kb(db: Database, name: str) -> int:
    return int(
        db.execute(
            "INSERT INTO kbs(name, created_at, secret) VALUES (?, ?, ?) RETURNING id",
            (name, TS, b"k"),
        ).fetchone()[0]
    )


def _doc(db: Database, kb: int, path: str, meta: str = "{}") -> int:
    return int(
        db.execute(
            "INSERT INTO documents(kb_id, path, title, kind, content_hash, size, meta, added_at, "
            "updated_at) VALUES (?, ?, ?, 'txt', 'h', 1, ?, ?, ?) RETURNING id",
            (kb, path, f"標題 {path}", meta, TS, TS),
        ).fetchone()[0]
    )


def _chunk(db: Database, doc: int, ord: int, text: str) -> int:
    return int(
        db.execute(
            "INSERT INTO chunks(doc_id, ord, text, section, char_start, char_end) "
            "VALUES (?, ?, ?, '第一章', 0, ?) RETURNING id",
            (doc, ord, text, len(text)),
        ).fetchone()[0]
    )


def _user(r: SqlAccounts, name: str, role: str = "reader") -> int:
    uid = r.insert_user(name, role, now_iso())
    assert uid is not None
    return uid


def _key(r: SqlAccounts, user_id: int, prefix: str, hashed: str, name: str, at: str) -> int:
    key_id = r.insert_key(user_id, prefix, hashed, name, at)
    assert key_id is not None
    return key_id


# --- accounts -----------------------------------------------------------------------------


def test_users_grants_and_the_admin_count(db: Database) -> None:
    r = SqlAccounts(db)
    hr, law = _kb(db, "hr"), _kb(db, "law")
    boss = _user(r, "老闆", "admin")
    mei = _user(r, "mei", "reader")
    assert boss != mei
    r.add_grants(mei, [law, hr])
    r.add_grants(mei, [hr])  # already granted: nothing happens, no error
    r.add_grants(mei, [])
    got = r.user("mei")
    assert got is not None and (got.id, got.role, got.disabled, got.kbs) == (
        mei,
        "reader",
        False,
        ["hr", "law"],
    )
    assert r.user(boss).kbs == ["hr", "law"]  # type: ignore[union-attr]  # admin: every KB
    assert r.user("nobody") is None and r.user(10_000) is None
    assert [u.name for u in r.users()] == ["mei", "老闆"]
    assert r.user_exists("mei") and not r.user_exists("MEI")
    r.remove_grants(mei, [law])
    assert r.granted_kbs(mei, "reader") == ["hr"]
    r.clear_grants(mei)
    assert r.granted_kbs(mei, "reader") == []
    assert r.count_admins() == 1
    r.set_role(mei, "admin")
    assert r.count_admins() == 2
    r.set_disabled(mei, True)
    assert r.count_admins() == 1 and r.user(mei).disabled  # type: ignore[union-attr]
    r.delete_user(mei)
    assert r.user(mei) is None


def test_a_taken_name_or_prefix_inserts_nothing_and_an_unknown_role_is_refused(
    db: Database,
) -> None:
    r = SqlAccounts(db)
    mei = _user(r, "mei", "reader")
    assert mei is not None
    assert r.insert_user("mei", "editor", now_iso()) is None
    assert r.user("mei").role == "reader"  # type: ignore[union-attr]
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.IntegrityError)), db.tx():
        r.insert_user("lin", "root", now_iso())
    assert [u.name for u in r.users()] == ["mei"]
    assert r.insert_key(mei, "aaaa0001", "hash-1", "", now_iso()) is not None
    assert r.insert_key(mei, "aaaa0001", "hash-2", "", now_iso()) is None
    assert [k.prefix for k in r.api_keys(mei)] == ["aaaa0001"]
    assert r.credentials("aaaa0001").hash == "hash-1"  # type: ignore[union-attr]


def test_keys_are_found_by_id_and_prefix_revoked_once_and_go_with_their_user(db: Database) -> None:
    r = SqlAccounts(db)
    mei = _user(r, "mei", "editor")
    lin = _user(r, "lin", "reader")
    k1 = _key(r, mei, "aaaa0001", "hash-1", "erp", "2026-11-20T01:00:00+00:00")
    k2 = _key(r, lin, "bbbb0002", "hash-2", "", "2026-11-20T00:30:00+00:00")
    k3 = _key(r, mei, "cccc0003", "hash-3", "n8n", "2026-11-20T02:00:00+00:00")
    key = r.key("aaaa0001")
    assert key is not None and (key.id, key.user_id, key.user, key.name) == (k1, mei, "mei", "erp")
    assert r.key(k1) == key and r.key("nope") is None
    assert [k.id for k in r.api_keys()] == [k2, k1, k3]  # by creation time
    assert [k.id for k in r.api_keys(mei)] == [k1, k3]
    cred = r.credentials("aaaa0001")
    assert cred is not None and (cred.hash, cred.role, cred.user_disabled) == (
        "hash-1",
        "editor",
        False,
    )
    assert r.credentials("ffffffff") is None
    r.set_disabled(mei, True)
    assert r.credentials("aaaa0001").user_disabled  # type: ignore[union-attr]
    r.touch_key(k1, "2026-11-21T00:00:00+00:00")
    r.revoke_key(k1, "2026-11-22T00:00:00+00:00")
    r.revoke_key(k1, "2026-11-23T00:00:00+00:00")  # the first revocation stays
    key = r.key(k1)
    assert key is not None and (key.last_used_at, key.revoked_at) == (
        "2026-11-21T00:00:00+00:00",
        "2026-11-22T00:00:00+00:00",
    )
    assert key.to_dict()["active"] is False
    r.delete_user(mei)
    assert [k.id for k in r.api_keys()] == [k2]


# --- conversations and feedback -----------------------------------------------------------


def test_turns_are_numbered_in_order_and_visible_only_to_their_owner_in_readable_kbs(
    db: Database,
) -> None:
    accounts, r = SqlAccounts(db), SqlConversations(db)
    hr, law = _kb(db, "hr"), _kb(db, "law")
    mei = _user(accounts, "mei", "reader")
    lin = _user(accounts, "lin", "reader")
    r.create("c1", mei, hr, "請假", "2026-11-20T00:00:00+00:00", "web")
    r.create("c2", mei, law, "", "2026-11-20T00:00:00+00:00")
    # Created later (with an id that sorts first), then c2 becomes active at the same time.
    r.create("a3", mei, hr, "", "2026-11-20T00:00:30+00:00", "line", "U123")
    r.add_turn("c2", "x1", "q", {"answer": {}, "sources": []}, False, "2026-11-20T00:00:30+00:00")
    for i in range(3):
        seq = r.add_turn(
            "c1",
            f"m{i}",
            f"問題{i}",
            {"answer": {"answer": f"答{i}", "refused": i == 2}, "sources": []},
            i == 2,
            f"2026-11-20T00:0{i + 1}:00+00:00",
        )
        assert seq == i + 1
    got = r.readable("c1", mei, ["hr"])
    assert got is not None and (got.kb_id, got.kb, got.title, got.channel, got.updated_at) == (
        hr,
        "hr",
        "請假",
        "web",
        "2026-11-20T00:03:00+00:00",
    )
    assert r.readable("c1", lin, ["hr"]) is None  # not hers
    assert r.readable("c1", mei, ["law"]) is None  # hr no longer readable
    assert r.readable("c1", mei, []) is None  # no KBs at all
    assert r.readable("c2", mei, ["hr", "law"]).channel == "api"  # type: ignore[union-attr]
    # Last active first; c2 and a3 tie on updated_at: the later created first.
    assert [c.id for c in r.of_user(mei, ["hr", "law"], 50)] == ["c1", "a3", "c2"]
    assert [c.id for c in r.of_user(mei, ["hr"], 1)] == ["c1"]
    assert r.of_user(mei, [], 50) == []
    recent = r.recent_turns("c1", 2)
    assert [(t.id, t.question) for t in recent] == [("m2", "問題2"), ("m1", "問題1")]
    assert recent[0].stored["answer"]["answer"] == "答2"
    assert [t.id for t in r.turns("c1")] == ["m0", "m1", "m2"]
    assert db.execute("SELECT refused FROM messages WHERE id='m2'").fetchone()[0] == 1


def test_turns_added_at_once_through_several_connections_get_distinct_numbers(
    db: Database, target: str
) -> None:
    """As two server nodes answering in the same conversation at the same time."""
    accounts, r = SqlAccounts(db), SqlConversations(db)
    hr = _kb(db, "hr")
    r.create("c1", _user(accounts, "mei"), hr, "", TS)
    others = [connect(target) for _ in range(3)]
    errors: list[BaseException] = []

    def ask(n: int, conn: Database) -> None:
        try:
            for i in range(8):
                SqlConversations(conn).add_turn(
                    "c1", f"m{n}-{i}", "q", {"answer": {}, "sources": []}, False, TS
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n, c)) for n, c in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in others:
        c.close()
    assert not errors
    seqs = [
        int(row[0])
        for row in db.execute("SELECT seq FROM messages WHERE conversation_id='c1' ORDER BY seq")
    ]
    assert seqs == list(range(1, 25))


def test_feedback_last_rating_wins_and_is_listed_newest_first(db: Database) -> None:
    accounts, r = SqlAccounts(db), SqlConversations(db)
    hr, law = _kb(db, "hr"), _kb(db, "law")
    mei = _user(accounts, "mei", "reader")
    lin = _user(accounts, "lin", "reader")
    r.create("c1", mei, hr, "", TS)
    r.create("c2", lin, law, "", TS)
    r.add_turn("c1", "a1", "請假幾天？", {"answer": {"answer": "七天"}, "sources": []}, False, TS)
    r.add_turn("c2", "a2", "罰則？", {"answer": {"answer": "罰鍰"}, "sources": []}, False, TS)
    assert r.own_answer("a1", mei, ["hr"]) == ("hr", "請假幾天？")
    assert r.own_answer("a1", lin, ["hr"]) is None
    assert r.own_answer("a1", mei, ["law"]) is None
    r.set_feedback("a1", mei, 1, "", "2026-11-20T01:00:00+00:00")
    r.set_feedback("a1", mei, -1, "不對", "2026-11-20T03:00:00+00:00")  # replaces the 👍
    r.set_feedback("a2", lin, 1, "", "2026-11-20T02:00:00+00:00")
    rows = r.feedback()
    assert [(f.answer_id, f.rating, f.user, f.kb) for f in rows] == [
        ("a1", -1, "mei", "hr"),
        ("a2", 1, "lin", "law"),
    ]
    assert rows[0].comment == "不對" and rows[0].stored["answer"]["answer"] == "七天"
    assert [f.answer_id for f in r.feedback(kb="law")] == ["a2"]
    assert [f.answer_id for f in r.feedback(rating=-1)] == ["a1"]
    assert [f.answer_id for f in r.feedback(limit=1)] == ["a1"]
    turns = r.turns("c1")
    assert (turns[0].rating, turns[0].comment) == (-1, "不對")
    accounts.delete_user(lin)  # her conversations, turns and ratings go with her
    assert r.feedback(kb="law") == []
    assert r.delete("c1", lin) is False
    assert r.delete("c1", mei) is True
    assert r.turns("c1") == [] and r.feedback() == []


# --- library: passages, documents, uploads ------------------------------------------------


def test_passages_documents_and_neighbours_respect_kb_and_access_scope(db: Database) -> None:
    r = SqlLibrary(db)
    hr, law = _kb(db, "hr"), _kb(db, "law")
    public = _doc(db, hr, "a.txt")
    secret = _doc(db, hr, "s.txt", '{"dept": "secret"}')
    other = _doc(db, law, "l.txt")
    c = [_chunk(db, public, i, f"第{i}段") for i in range(3)]
    s0 = _chunk(db, secret, 0, "機密")
    o0 = _chunk(db, other, 0, "法條")
    assert r.cited_chunks(hr, [c[1], s0, o0, c[1], 999_999]) == {c[1]: public, s0: secret}
    assert r.cited_chunks(hr, []) == {}
    got = r.passage(c[1], ["hr"])
    assert got is not None and (
        got.doc_id,
        got.ord,
        got.text,
        got.kb,
        got.kb_id,
        got.path,
        got.section,
    ) == (public, 1, "第1段", "hr", hr, "a.txt", "第一章")
    assert r.passage(c[1], ["law"]) is None and r.passage(c[1], []) is None
    assert r.neighbours(public, 1) == {0: "第0段", 2: "第2段"}
    assert r.neighbours(public, 0) == {1: "第1段"}
    hide = Filter.parse(["dept!=secret"])
    assert r.passage(s0, ["hr"], hide) is None
    assert r.passage(c[0], ["hr"], hide) is not None
    assert r.document(secret, hr) is not None
    assert r.document(secret, hr, hide) is None
    assert r.document(public, law) is None
    doc = r.document(public, hr, hide)
    assert doc is not None and (doc.id, doc.path, doc.title) == (public, "a.txt", "標題 a.txt")


def test_uploads_are_found_deleted_and_shared_stored_files_counted(db: Database) -> None:
    r = SqlLibrary(db)
    hr, law = _kb(db, "hr"), _kb(db, "law")
    for kb in (hr, law):  # the same file uploaded to two KBs shares one stored copy
        db.execute(
            "INSERT INTO uploads(kb_id, path, stored, sha256, size, uploaded_at) "
            "VALUES (?, 'a.pdf', 'uploads/ab/abcd', 'abcd', 42, ?)",
            (kb, TS),
        )
    assert r.upload(hr, "a.pdf") == UploadRecord("uploads/ab/abcd", "abcd", 42)
    assert r.upload(hr, "b.pdf") is None
    assert r.delete_upload(hr, "a.pdf") and not r.delete_upload(hr, "a.pdf")
    assert r.stored_in_use("uploads/ab/abcd")
    assert r.delete_upload(law, "a.pdf")
    assert not r.stored_in_use("uploads/ab/abcd")
