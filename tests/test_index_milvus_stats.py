"""Milvus ranks from term statistics kept in the database (zhiku.storage.termstats):
a restricted caller is scored over the visible documents only, as on the embedded
index (tests/test_access_ranking.py), and statistics left inconsistent by a sync cut
short are rebuilt from the chunks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.test_access_ranking import HIDDEN, QUERIES, SECRET, VISIBLE, _doc
from tests.test_index_milvus import chunk_dfs
from zhiku import text as ztext
from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.index.milvus import (
    MilvusLexicalIndex,
    class_prefix,
    close_all,
    scope_class,
    scope_key,
    scope_visible,
)
from zhiku.storage.termstats import SqlTermStats


@pytest.fixture(scope="module")
def zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhiku]:
    home = tmp_path_factory.mktemp("milvus-ranking")
    with Zhiku(home) as z:
        for kb in ("mixed", "visible", "embedded"):
            z.kb(kb, create=True)
            if kb != "embedded":
                z.store.update_kb_settings(
                    kb, {"index": {"backend": "milvus", "uri": str(home / "m.db")}}
                )
        for i, text in enumerate(VISIBLE):
            for kb in ("mixed", "visible", "embedded"):
                z.add_loaded(kb, f"v://{i}", _doc(text, f"規章{i}"))
            if i % 3 == 0 and i // 3 < len(HIDDEN):
                j = i // 3
                z.add_loaded("mixed", f"h://{j}", _doc(HIDDEN[j], f"機密{j}"), meta=SECRET)
        for kb in ("mixed", "visible", "embedded"):
            z.sync_index(kb)
        assert isinstance(z.index("mixed"), MilvusLexicalIndex)
        yield z
    close_all()


def _ranked(z: Zhiku, kb: str, q: str, where: Filter | None) -> list[tuple[str, float]]:
    hits = z.search(q, kb, k=5, mode="lexical", rerank=False, where=where)
    return [(h.path, h.score) for h in hits]


def _same(a: list[tuple[str, float]], b: list[tuple[str, float]], q: str) -> None:
    assert a, q
    assert [p for p, _ in a] == [p for p, _ in b], q
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-5), q


def test_a_restricted_callers_ranking_is_that_of_the_visible_only_kb(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    differs = False
    for q in QUERIES:
        mixed = _ranked(zk, "mixed", q, pat)
        _same(mixed, _ranked(zk, "visible", q, None), q)
        _same(mixed, _ranked(zk, "embedded", q, None), q)  # and the embedded index's
        everyone = dict(_ranked(zk, "mixed", q, None))
        differs |= any(abs(everyone[p] - s) > 1e-3 for p, s in mixed if p in everyone)
    assert differs  # the operator's statistics differ: the test above could fail


def test_term_statistics_are_those_of_the_visible_documents(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    tokens = ztext.tokenize("請假 加班 裁員 餐廳")
    layoff = ztext.tokenize("裁員")[-1]
    mixed = zk.index("mixed").term_stats(tokens, where=pat)
    alone = zk.index("visible").term_stats(tokens)
    assert {t: v[0] for t, v in mixed.items()} == {t: v[0] for t, v in alone.items()}
    assert all(mixed[t][1] == pytest.approx(alone[t][1]) for t in tokens)
    assert mixed[layoff][0] == 0 and zk.index("mixed").term_stats([layoff])[layoff][0] > 0


def test_a_caller_who_sees_everything_is_ranked_as_the_operator(zk: Zhiku) -> None:
    sam = AccessScope("sam", frozenset({"secret"}), 3).restrict()
    for q in QUERIES:
        _same(_ranked(zk, "mixed", q, sam), _ranked(zk, "mixed", q, None), q)


def test_relabelling_moves_the_statistics_to_the_new_scope(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    layoff = ztext.tokenize("裁員")[-1]
    idx = zk.index("mixed")
    assert idx.term_stats([layoff], where=pat)[layoff][0] == 0
    assert zk.store.set_document_meta(
        "mixed", "h://1", {"access_groups": None, "access_level": None}
    )
    try:
        assert idx.term_stats([layoff], where=pat)[layoff][0] == 1
    finally:
        zk.store.set_document_meta("mixed", "h://1", dict(SECRET))
    assert idx.term_stats([layoff], where=pat)[layoff][0] == 0
    assert idx.term_stats([layoff])[layoff][0] == 1


def test_scopes_are_matched_as_access_allows_them() -> None:
    hr2 = scope_key({"access_groups": ["hr", "fin"], "access_level": 2})
    assert hr2 == '[["fin","hr"],2]'
    open0 = scope_key({})
    for groups, clearance, sees_hr2 in (
        (set(), 3, False),
        ({"hr"}, 1, False),
        ({"hr"}, 2, True),
        ({"fin", "x"}, 3, True),
    ):
        guard = AccessScope("u", frozenset(groups), clearance).restrict()
        assert scope_visible(hr2, guard) is sees_hr2
        assert scope_visible(open0, guard)
    assert not scope_visible("not json", AccessScope("u", frozenset(), 3).restrict())


def _milvus_kb(home: Path, z: Zhiku) -> None:
    z.kb("k", create=True)
    z.store.update_kb_settings("k", {"index": {"backend": "milvus", "uri": str(home / "m.db")}})
    for i, text in enumerate(VISIBLE):
        z.add_loaded("k", f"v://{i}", _doc(text, f"規章{i}"))
    z.sync_index("k")


def test_a_sync_cut_short_is_repaired_from_the_chunks(
    zhiku_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = sorted({t for text in VISIBLE + HIDDEN for t in ztext.tokenize(text)})
    with Zhiku(zhiku_home) as z:
        _milvus_kb(zhiku_home, z)
        # The collection is written, then the process dies before the statistics are.
        apply = SqlTermStats.apply

        def crash(self: SqlTermStats, *args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(SqlTermStats, "apply", crash)
        z.add_loaded("k", "h://0", _doc(HIDDEN[0], "機密"))
        z.add_loaded("k", "v://1", _doc(VISIBLE[2], "改寫"))
        with pytest.raises(KeyboardInterrupt):
            z.sync_index("k")
        monkeypatch.setattr(SqlTermStats, "apply", apply)
    with Zhiku(zhiku_home) as z:  # the next process finds them out of date
        idx = z.index("k")
        got = {t: v[0] for t, v in idx.term_stats(every).items()}
        assert got == chunk_dfs(z, "k", every)
        assert idx.num_docs() == len(VISIBLE) + 1
        assert z.search("考核不佳", "k", k=1, mode="lexical")[0].path == "h://0"


def test_statistics_that_disagree_with_the_collection_are_rebuilt(zhiku_home: Path) -> None:
    every = sorted({t for text in VISIBLE for t in ztext.tokenize(text)})
    with Zhiku(zhiku_home) as z:
        _milvus_kb(zhiku_home, z)
        kb_id = z.store.get_kb("k").id
        want = chunk_dfs(z, "k", every)
        # Another writer's bug or a hand edit: counts off, the generation unchanged.
        SqlTermStats(z.store.database).apply(kb_id, {("[[],0]", every[0]): 5}, {"[[],0]": (2, 9)})
    with Zhiku(zhiku_home) as z:
        got = {t: v[0] for t, v in z.index("k").term_stats(every).items()}
        assert got == want


def test_two_engines_syncing_at_once_apply_a_change_once(
    zhiku_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, most = [0], [0]
    delete = MilvusLexicalIndex._delete_docs

    def slow_delete(self: MilvusLexicalIndex, doc_ids: Sequence[int]) -> None:
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.3)  # a window for the other engine's sync
        delete(self, doc_ids)
        inside[0] -= 1

    every = sorted({t for text in VISIBLE + HIDDEN for t in ztext.tokenize(text)})
    with Zhiku(zhiku_home) as a, Zhiku(zhiku_home) as b:
        _milvus_kb(zhiku_home, a)
        ia, ib = a.index("k"), b.index("k")
        assert ia is not ib
        for j, text in enumerate(HIDDEN):
            a.add_loaded("k", f"h://{j}", _doc(text, f"機密{j}"))
        a.add_loaded("k", "v://0", _doc(VISIBLE[5], "改寫"))
        errors: list[BaseException] = []
        monkeypatch.setattr(MilvusLexicalIndex, "_delete_docs", slow_delete)

        def run(idx: MilvusLexicalIndex) -> None:
            try:
                idx.sync()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in (ia, ib)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and most[0] == 1  # one sync at a time
        kb_id = a.store.get_kb("k").id
        scopes = SqlTermStats(a.store.database).scopes(kb_id)
        assert sum(n for n, _ in scopes.values()) == len(VISIBLE) + len(HIDDEN)
        got = {t: v[0] for t, v in ia.term_stats(every).items()}
        assert got == chunk_dfs(a, "k", every)


def test_a_restricted_search_reads_only_the_visible_classes_words(zk: Zhiku) -> None:
    """What the caller's search sends to Milvus: the class-prefixed words of the classes
    it may see, against the scoped field, with no list of chunk ids and no expression
    over the hidden rows; the operator's search is the plain one."""
    idx = zk.index("mixed")
    assert isinstance(idx, MilvusLexicalIndex)
    scopes = SqlTermStats(zk.store.database).scopes(zk.store.get_kb("mixed").id)
    pat = AccessScope("pat", frozenset(), 0).restrict()
    (open_scope,) = [s for s in scopes if scope_visible(s, pat)]
    hidden = [s for s in scopes if s != open_scope]
    assert hidden
    prefix = class_prefix(scope_class(open_scope) or "")
    calls: list[dict[str, Any]] = []
    search = idx.client.search

    def spying(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return search(*args, **kwargs)

    idx.client.search = spying  # type: ignore[method-assign]
    try:
        q = ztext.query_tokens(QUERIES[0])
        assert idx.search(q, k=5, where=pat)
        assert idx.search(q, k=5)
    finally:
        idx.client.search = search  # type: ignore[method-assign]
    scoped, plain = calls
    assert scoped["anns_field"] == "scoped_sparse" and scoped["filter"] == ""
    words = scoped["data"][0].split()
    assert words and all(w.startswith(prefix) for w in words)
    for s in hidden:
        assert not any(w.startswith(class_prefix(scope_class(s) or "")) for w in words)
    assert plain["anns_field"] == "sparse" and plain["filter"] == ""
