"""Exclusions on Milvus: the term statistics count the chunks carrying each filter term
(facet counts, zhiku.storage.termstats), and a search, lexical or dense, drops an
exclusion no chunk the caller may see matches (``status!=repealed`` in a KB without
repealed law), as the embedded index does; one that matches stays and still excludes.
Dense vectors come from the deterministic fake embedding server of the contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.models_util import make_engine
from tests.test_access_ranking import SECRET, _doc
from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.index.milvus import (
    MilvusLexicalIndex,
    MilvusVectorIndex,
    close_all,
    exclusion_terms,
    without_unmatched,
)
from zhiku.storage.termstats import SqlTermStats, facet_token

REPEALED = facet_token("status=repealed")
LAWS = [
    ("law://a", "勞動基準法", "勞工每七日中應有二日之休息，其中一日為例假，一日為休息日。"),
    ("law://b", "工廠法", "工廠對於童工及女工應給予休息，每日工作時間不得超過八小時。"),
    ("law://c", "職業安全衛生法", "雇主對於勞工應妥為規劃及採取必要之安全衛生措施。"),
]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_all()


def _milvus(home: Path, z: Zhiku, kb: str = "k") -> MilvusLexicalIndex:
    z.kb(kb, create=True)
    z.store.update_kb_settings(kb, {"index": {"backend": "milvus", "uri": str(home / "m.db")}})
    for path, title, text in LAWS:
        z.add_loaded(kb, path, _doc(text, title))
    z.sync_index(kb)
    idx = z.index(kb)
    assert isinstance(idx, MilvusLexicalIndex)
    return idx


def _repealed(z: Zhiku, kb: str = "k", scopes: list[str] | None = None) -> int:
    stats = SqlTermStats(z.store.database)
    return stats.doc_freqs(z.kb(kb).id, [REPEALED], scopes)[REPEALED]


def _filters_sent(
    idx: MilvusLexicalIndex | MilvusVectorIndex, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The filter expressions the index sends to Milvus (the real search runs)."""
    sent: list[str] = []
    real = idx.client.search

    def search(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(kwargs.get("filter", "")))
        return real(*args, **kwargs)

    monkeypatch.setattr(idx.client, "search", search)
    return sent


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI()
    yield s
    s.close()


# The engine sends a dense search the caller's filter (with the default
# status!=repealed); without one, it excludes repealed chunks by id instead.
TXT = Filter.parse(["kind=txt"])


def _dense(z: Zhiku, where: Filter = TXT) -> set[str]:
    hits = z.search("休息", "k", k=10, mode="dense", rerank=False, where=where)
    return {h.path for h in hits}


def _vectors(home: Path, z: Zhiku) -> MilvusVectorIndex:
    _milvus(home, z)
    vi = z.vectors("k")
    assert isinstance(vi, MilvusVectorIndex) and vi.live_rows() == len(LAWS)
    return vi


def _add_hidden_repealed(z: Zhiku) -> None:
    """A repealed document only a caller of group secret at level 3 may see."""
    z.add_loaded(
        "k",
        "law://x",
        _doc("秘密條例：休息時間另定之。", "機密條例"),
        meta={**SECRET, "status": "廢止"},
    )
    z.sync_index("k")


def test_facet_counts_follow_the_collection(zhiku_home: Path) -> None:
    with Zhiku(zhiku_home) as z:
        idx = _milvus(zhiku_home, z)
        assert _repealed(z) == 0
        path, title, text = LAWS[1]
        z.add_loaded("k", path, _doc(text, title), meta={"status": "廢止"})
        z.sync_index("k")
        assert _repealed(z) == 1
        z.add_loaded("k", path, _doc(text + "（修正）", title), meta={"status": "current"})
        z.sync_index("k")
        assert _repealed(z) == 0
        z.add_loaded("k", path, _doc(text, title), meta={"status": "repealed"})
        z.sync_index("k")
        assert _repealed(z) == 1
        idx.rebuild()  # counted again from the chunks: the same
        assert _repealed(z) == 1
        # facet counts leave the scopes' chunk counts (BM25's N) alone
        kb_id = z.kb("k").id
        assert sum(n for n, _ in SqlTermStats(z.store.database).scopes(kb_id).values()) == 3
        z.remove("k", path)
        z.sync_index("k")
        assert _repealed(z) == 0


def test_an_exclusion_no_chunk_matches_is_dropped_and_one_that_matches_kept(
    zhiku_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Zhiku(zhiku_home) as z:
        idx = _milvus(zhiku_home, z)
        sent = _filters_sent(idx, monkeypatch)
        hits = z.search("休息", "k", k=5, mode="lexical", rerank=False)
        assert {h.path for h in hits} == {"law://a", "law://b"}
        assert sent and "status=repealed" not in sent[-1]
        path, title, text = LAWS[1]
        z.add_loaded("k", path, _doc(text, title), meta={"status": "repealed"})
        z.sync_index("k")
        hits = z.search("休息", "k", k=5, mode="lexical", rerank=False)
        assert [h.path for h in hits] == ["law://a"]  # still excluded
        assert "status=repealed" in sent[-1]
        hits = z.search(
            "休息", "k", k=5, mode="lexical", rerank=False, where=Filter.parse(["status=any"])
        )
        assert {h.path for h in hits} == {"law://a", "law://b"}


def test_a_restricted_caller_is_judged_by_the_chunks_it_may_see(
    zhiku_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Zhiku(zhiku_home) as z:
        idx = _milvus(zhiku_home, z)
        _add_hidden_repealed(z)
        sent = _filters_sent(idx, monkeypatch)
        pat = AccessScope("pat", frozenset(), 0).restrict()
        seen = z.search("休息", "k", k=5, mode="lexical", rerank=False, where=pat)
        assert {h.path for h in seen} == {"law://a", "law://b"}
        # no chunk pat may see is repealed: the clause goes, as for a KB without the
        # hidden document, so neither the results nor the time tell it is there
        assert "status=repealed" not in sent[-1]
        z.search("休息", "k", k=5, mode="lexical", rerank=False)
        assert "status=repealed" in sent[-1]  # the operator's search keeps it
        boss = AccessScope("boss", frozenset({"secret"}), 3).restrict()
        z.search("休息", "k", k=5, mode="lexical", rerank=False, where=boss)
        assert "status=repealed" in sent[-1]  # a caller who sees it keeps it too


def test_which_conditions_are_dropped() -> None:
    where = Filter.parse(["status!=repealed", "dept!=hr,legal", "dept=fin", "amended>=2020-01-01"])
    assert exclusion_terms(where) == ["status=repealed", "dept=hr", "dept=legal"]
    kept = without_unmatched(where, {"dept=legal"})
    assert kept is not None
    assert kept.describe() == ["dept!=hr,legal", "dept=fin", "amended>=2020-01-01"]
    assert without_unmatched(None, set()) is None


def test_dense_search_drops_an_unmatched_exclusion_and_keeps_a_matched_one(
    zhiku_home: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_engine(zhiku_home, server) as z:
        sent = _filters_sent(_vectors(zhiku_home, z), monkeypatch)
        assert _dense(z) == {"law://a", "law://b", "law://c"}
        assert sent and "status=repealed" not in sent[-1]
        path, title, text = LAWS[1]
        z.add_loaded("k", path, _doc(text, title), meta={"status": "repealed"})
        z.sync_index("k")
        assert _dense(z) == {"law://a", "law://c"}  # still excluded
        assert "status=repealed" in sent[-1]
        assert _dense(z, where=Filter.parse(["status=any"])) == {"law://a", "law://b", "law://c"}
        assert "status=repealed" not in sent[-1]


def test_dense_search_judges_a_restricted_caller_by_the_chunks_it_may_see(
    zhiku_home: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_engine(zhiku_home, server) as z:
        vi = _vectors(zhiku_home, z)
        _add_hidden_repealed(z)
        assert vi.live_rows() == len(LAWS) + 1
        sent = _filters_sent(vi, monkeypatch)
        pat = AccessScope("pat", frozenset(), 0).restrict()
        assert _dense(z, where=pat) == {"law://a", "law://b", "law://c"}
        assert "status=repealed" not in sent[-1]  # nothing pat may see is repealed
        assert _dense(z) == {"law://a", "law://b", "law://c"}
        assert "status=repealed" in sent[-1]  # the operator's search keeps it
        boss = AccessScope("boss", frozenset({"secret"}), 3).restrict()
        assert _dense(z, where=boss) == {"law://a", "law://b", "law://c"}
        assert "status=repealed" in sent[-1]  # and so does a caller who sees it
        assert "law://x" in _dense(z, where=Filter.parse(["status=any"]))


def test_dense_search_keeps_exclusions_while_the_statistics_lag(
    zhiku_home: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vectors synced before the lexical index (a dense search syncs its own): the facet
    counts do not know the repealed chunk yet, so the clause is sent and excludes it."""
    with make_engine(zhiku_home, server) as z:
        sent = _filters_sent(_vectors(zhiku_home, z), monkeypatch)
        z.add_loaded("k", "law://x", _doc("舊法：休息日另定之。", "舊法"), meta={"status": "廢止"})
        assert _repealed(z) == 0 and z.store.has_pending_index_work(z.kb("k").id)
        assert _dense(z) == {"law://a", "law://b", "law://c"}
        assert z.vectors("k").live_rows() == len(LAWS) + 1  # the repealed chunk is there
        assert "status=repealed" in sent[-1]
