"""The timing side channel of document access on the Milvus backend (issue 13), in the
style of tests/test_access_timing.py.

On Milvus a question's words are sent to Milvus only when a passage the caller may see
holds them (the database's term statistics of the visible scopes), so the probe here is
a pair of questions that each find the *same* one visible passage: the words of one also
occur in ~1,500 hidden passages, the words of the other nowhere else. Before the
collection kept each access class's words apart (``scoped_tokens``, zhiku.index.milvus),
Milvus was sent a list of every visible chunk id and read the words' postings, hidden
rows included (measured at this size: 339 vs 305 ms, p = 0.16 over 60 rounds, the id
list dominating; now 32 vs 32 ms, p = 0.83). Now a restricted search reads only the
class-prefixed words of the classes it may see, and both questions read one posting
each. The old code did not fail this test at this size (its cost was the id list, the
same for both questions); tests/test_index_milvus_stats.py checks what is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_access_timing import ABSENT, HIDDEN, _assert_indistinguishable, _sample
from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter, parse_meta_args
from zhiku.index.milvus import MilvusLexicalIndex, close_all
from zhiku.ingest import ingest_paths

HIDDEN_PARAGRAPHS = 1500
VISIBLE_PARAGRAPHS = 300
ROUNDS = 300


def build(root: Path) -> Zhiku:
    """A Milvus KB: ``HIDDEN_PARAGRAPHS`` passages restricted to group ``secret`` at 密
    holding the HIDDEN characters, ``VISIBLE_PARAGRAPHS`` open ones holding neither
    string, and one open passage holding both (each question finds it, nothing else)."""
    src = root / "src"
    src.mkdir()
    paras = [
        f"第{i}段 {HIDDEN}，機密研究報告內容記載於此，編號{i}。" * 8
        for i in range(HIDDEN_PARAGRAPHS)
    ]
    (src / "secret.md").write_text("# 機密研究\n\n" + "\n\n".join(paras), "utf-8")
    notices = [
        f"公司年度旅遊公告第{i}則，請同仁於月底前報名。" * 8 for i in range(VISIBLE_PARAGRAPHS)
    ]
    notices[7] += f"附錄：{HIDDEN}；{ABSENT}。"
    (src / "open.md").write_text("# 公告\n\n" + "\n\n".join(notices), "utf-8")
    zk = Zhiku(Path(root / "home"))
    zk.kb("kb", create=True)
    zk.store.update_kb_settings("kb", {"index": {"backend": "milvus", "uri": str(root / "m.db")}})
    labels = parse_meta_args(["access_groups=secret", "access_level=密"])
    ingest_paths(zk, [src / "secret.md"], "kb", meta=labels)
    ingest_paths(zk, [src / "open.md"], "kb")
    zk.sync_index("kb")
    assert isinstance(zk.index("kb"), MilvusLexicalIndex)
    return zk


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhiku]:
    with build(tmp_path_factory.mktemp("timing-milvus")) as zk:
        yield zk
    close_all()


def _paths(zk: Zhiku, q: str, where: Filter | None) -> set[str]:
    return {h.path for h in zk.search(q, "kb", k=5, mode="lexical", where=where)}


def test_the_kb_holds_what_the_test_assumes(kb: Zhiku) -> None:
    """The operator finds hidden passages for one question only; the caller finds the
    same one visible passage for both."""
    pat = AccessScope("pat", frozenset(), 0).restrict(Filter())
    hits = kb.search(HIDDEN, "kb", k=5, mode="lexical")
    assert len(hits) == 5 and any("secret" in h.path for h in hits)
    assert {h.path for h in kb.search(ABSENT, "kb", k=5, mode="lexical")} == _paths(kb, ABSENT, pat)
    seen = [kb.search(q, "kb", k=5, mode="lexical", where=pat) for q in (HIDDEN, ABSENT)]
    assert [len(s) for s in seen] == [1, 1]
    assert seen[0][0].chunk_id == seen[1][0].chunk_id
    assert "open" in seen[0][0].path


def test_milvus_search_time_does_not_tell_hidden_documents_exist(kb: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict(Filter())
    hidden, absent = _sample(lambda q: kb.search(q, "kb", k=5, mode="lexical", where=pat), ROUNDS)
    _assert_indistinguishable(hidden, absent)
