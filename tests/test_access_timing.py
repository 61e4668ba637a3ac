"""The timing side channel of document access (issue 13: "a person who may not see a
document cannot learn that it exists: not … a timing difference large enough to measure
in a test").

A restricted caller asks, many times and interleaved, a question whose characters occur
only in ~1,500 hidden passages and one whose characters occur nowhere; both find nothing
they may see. The two latency samples must be indistinguishable to a two-sided
Mann–Whitney U test. Before the lexical index kept each access class's terms apart
(zhiku.lexical: the ``scoped`` field) the hidden question read the hidden postings and
took ~4x as long (p ≈ 1e-80 at this size); now both read the same empty term entries.

The threshold is deliberately strict about the *size* of an effect, not its mere
presence: on a loaded 2-core machine, run-to-run drift is absorbed by interleaving
(alternating which question goes first), and a p-value below 1e-4 together with medians
more than 15 % apart is what a real difference of work gives, which noise does not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import mannwhitneyu

from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter, parse_meta_args
from zhiku.ingest import ingest_paths

# Characters of the hidden passages, and characters no passage has (same count: the
# same number of query tokens).
HIDDEN = "鑫淼焱垚犇骉麤燚晶品森众磊"
ABSENT = "龘靐齉爩鱻籱灥厵飝飍羴麣龖"
HIDDEN_PARAGRAPHS = 1500
ROUNDS = 300
P_FLOOR = 1e-4
MEDIAN_GAP = 0.15


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhiku]:
    root = tmp_path_factory.mktemp("timing")
    src = root / "src"
    src.mkdir()
    paras = [
        f"第{i}段 {HIDDEN}，機密研究報告內容記載於此，編號{i}。" * 8
        for i in range(HIDDEN_PARAGRAPHS)
    ]
    (src / "secret.md").write_text("# 機密研究\n\n" + "\n\n".join(paras), "utf-8")
    (src / "open.md").write_text(
        "# 公告\n\n"
        + "\n\n".join(f"公司年度旅遊公告第{i}則，請同仁於月底前報名。" * 5 for i in range(50)),
        "utf-8",
    )
    with Zhiku(Path(root / "home")) as zk:
        labels = parse_meta_args(["access_groups=secret", "access_level=密"])
        ingest_paths(zk, [src / "secret.md"], "kb", meta=labels)
        ingest_paths(zk, [src / "open.md"], "kb")
        zk.sync_index("kb")
        yield zk


def _sample(call: Callable[[str], Any], rounds: int) -> tuple[list[float], list[float]]:
    for q in (HIDDEN, ABSENT) * 10:  # warm both
        call(q)
    lat: dict[str, list[float]] = {HIDDEN: [], ABSENT: []}
    for i in range(rounds):
        for q in (HIDDEN, ABSENT) if i % 2 else (ABSENT, HIDDEN):
            t = time.perf_counter()
            call(q)
            lat[q].append(time.perf_counter() - t)
    return lat[HIDDEN], lat[ABSENT]


def _assert_indistinguishable(hidden: list[float], absent: list[float]) -> None:
    p = float(mannwhitneyu(hidden, absent, alternative="two-sided").pvalue)
    mh, ma = statistics.median(hidden), statistics.median(absent)
    gap = abs(mh - ma) / min(mh, ma)
    assert p >= P_FLOOR or gap <= MEDIAN_GAP, (
        f"hidden documents show in the timing: medians {mh * 1e3:.3f} vs {ma * 1e3:.3f} ms "
        f"({gap:.0%} apart), Mann–Whitney p = {p:.2g}"
    )


def test_the_kb_holds_what_the_test_assumes(kb: Zhiku) -> None:
    """The hidden characters are indexed (an operator finds them), the caller finds
    neither question, and the absent characters are nowhere."""
    scope = AccessScope("pat", frozenset(), 0).restrict(Filter())
    assert kb.search(HIDDEN, "kb", k=5, mode="lexical")
    assert not kb.search(HIDDEN, "kb", k=5, mode="lexical", where=scope)
    assert not kb.search(ABSENT, "kb", k=5, mode="lexical")
    insider = AccessScope("sam", frozenset({"secret"}), 3).restrict(Filter())
    assert kb.search(HIDDEN, "kb", k=5, mode="lexical", where=insider)


def test_search_time_does_not_tell_hidden_documents_exist(kb: Zhiku) -> None:
    scope = AccessScope("pat", frozenset(), 0).restrict(Filter())
    hidden, absent = _sample(lambda q: kb.search(q, "kb", k=5, mode="lexical", where=scope), ROUNDS)
    _assert_indistinguishable(hidden, absent)


def test_ask_time_does_not_tell_hidden_documents_exist(kb: Zhiku) -> None:
    """The whole question path: retrieval, confidence statistics, refusal."""
    scope = AccessScope("pat", frozenset(), 0).restrict(Filter())
    answers = [kb.ask(q, "kb", where=scope) for q in (HIDDEN, ABSENT)]
    assert [a.refused for a in answers] == [True, True]
    hidden, absent = _sample(lambda q: kb.ask(q, "kb", where=scope), ROUNDS // 2)
    _assert_indistinguishable(hidden, absent)
