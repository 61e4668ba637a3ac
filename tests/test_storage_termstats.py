"""The term statistics repository (zhiku.storage.termstats) on SQLite and a real
PostgreSQL: differences add up, rows that reach zero go, sums follow the scopes asked
for, facet counts are kept apart from the tokens, and a KB's statistics leave with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_storage_db import target  # noqa: F401 - the sqlite/postgresql fixture
from zhiku.storage.documents import Store
from zhiku.storage.termstats import SqlTermStats, TermStatsRepository, facet_token

OPEN, HR = "[[],0]", '[["hr"],2]'


@pytest.fixture
def store(target: str) -> Iterator[Store]:  # noqa: F811
    s = Store(target)
    yield s
    s.close()


def test_differences_add_up_per_scope(store: Store) -> None:
    kb = store.ensure_kb("k").id
    repo = SqlTermStats(store.database)
    assert isinstance(repo, TermStatsRepository)
    assert repo.generation(kb) is None and repo.scopes(kb) == {}
    repo.apply(
        kb,
        {(OPEN, "勞工"): 3, (OPEN, "工資"): 1, (HR, "勞工"): 2, (HR, "裁員"): 1},
        {OPEN: (3, 120.0), HR: (2, 400.0)},
        generation="g1",
    )
    assert repo.generation(kb) == "g1"
    assert repo.doc_freqs(kb, ["勞工", "裁員", "無"]) == {"勞工": 5, "裁員": 1, "無": 0}
    assert repo.doc_freqs(kb, ["勞工", "裁員"], scopes=[OPEN]) == {"勞工": 3, "裁員": 0}
    assert repo.doc_freqs(kb, ["勞工"], scopes=[]) == {"勞工": 0}
    assert repo.scopes(kb) == {OPEN: (3, 120.0), HR: (2, 400.0)}
    # A removal without a generation leaves the recorded one (a sync still under way).
    repo.apply(kb, {(HR, "裁員"): -1, (HR, "勞工"): -2, (OPEN, "勞工"): 1}, {HR: (-2, -400.0)})
    assert repo.generation(kb) == "g1"
    assert repo.doc_freqs(kb, ["勞工", "裁員"]) == {"勞工": 4, "裁員": 0}
    assert repo.scopes(kb) == {OPEN: (3, 120.0)}  # a scope with no chunk left is gone
    n = store.database.execute("SELECT COUNT(*) FROM term_df WHERE kb_id=?", (kb,)).fetchone()[0]
    assert n == 2  # rows that reached zero were removed


def test_many_tokens_in_one_read_and_kbs_kept_apart(store: Store) -> None:
    a, b = store.ensure_kb("a").id, store.ensure_kb("b").id
    repo = SqlTermStats(store.database)
    tokens = [f"t{i}" for i in range(1200)]  # more than one IN list
    repo.apply(a, {(OPEN, t): i + 1 for i, t in enumerate(tokens)}, {OPEN: (1200, 1.0)}, "x")
    repo.apply(b, {(OPEN, "t5"): 7}, {OPEN: (7, 7.0)}, "y")
    got = repo.doc_freqs(a, tokens)
    assert got == {t: i + 1 for i, t in enumerate(tokens)}
    assert repo.doc_freqs(b, ["t5", "t6"]) == {"t5": 7, "t6": 0}
    repo.clear(a)
    assert repo.doc_freqs(a, ["t5"]) == {"t5": 0} and repo.generation(a) is None
    assert repo.generation(b) == "y" and repo.scopes(b) == {OPEN: (7, 7.0)}
    store.delete_kb("b")
    assert repo.scopes(b) == {} and repo.generation(b) is None


def test_a_failed_transaction_applies_nothing(store: Store) -> None:
    kb = store.ensure_kb("k").id
    repo = SqlTermStats(store.database)
    repo.apply(kb, {(OPEN, "a"): 1}, {OPEN: (1, 1.0)}, "g1")
    with pytest.raises(RuntimeError), store.database.tx(immediate=True):
        repo.apply(kb, {(OPEN, "a"): 5}, {OPEN: (5, 5.0)}, "g2")
        raise RuntimeError("crash before the index work is cleared")
    assert repo.doc_freqs(kb, ["a"]) == {"a": 1} and repo.generation(kb) == "g1"


def test_facet_counts_are_rows_of_their_own(store: Store) -> None:
    kb = store.ensure_kb("k").id
    repo = SqlTermStats(store.database)
    repealed = facet_token("status=repealed")
    assert repealed != "status=repealed" and repealed.startswith("\x1f")
    repo.apply(
        kb,
        {(OPEN, repealed): 2, (HR, repealed): 1, (OPEN, "status=repealed"): 4},
        {OPEN: (4, 40.0), HR: (1, 10.0)},
        "g1",
    )
    assert repo.doc_freqs(kb, [repealed, "status=repealed"]) == {repealed: 3, "status=repealed": 4}
    assert repo.doc_freqs(kb, [repealed], scopes=[OPEN]) == {repealed: 2}
    repo.apply(kb, {(OPEN, repealed): -2, (HR, repealed): -1}, {})
    assert repo.doc_freqs(kb, [repealed]) == {repealed: 0}
    assert repo.scopes(kb) == {OPEN: (4, 40.0), HR: (1, 10.0)}  # facets do not count as chunks
