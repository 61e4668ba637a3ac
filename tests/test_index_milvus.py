"""What is particular to the Milvus backend (on Milvus Lite files): token encoding,
filter expressions, the same ranking as tantivy on the same tokens, configuration,
sync state, and dropping a KB's collections."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku import text as ztext
from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.index import IndexConfig
from zhiku.index.config import IndexConfigError
from zhiku.index.milvus import (
    MilvusLexicalIndex,
    close_all,
    collection_base,
    connect,
    encode_token,
    encode_tokens,
    filter_expr,
)
from zhiku.lexical import index_text
from zhiku.models import Block, LoadedDocument

PARAS = [
    ("mem://a", "勞動基準法", "勞工每七日中應有二日之休息，其中一日為例假，一日為休息日。"),
    ("mem://b", "勞動基準法施行細則", "例假日出勤應加倍發給工資，並給予補休。"),
    (
        "mem://c",
        "性別平等工作法",
        "受僱者於其家庭成員預防接種、發生嚴重之疾病需親自照顧時，得請家庭照顧假。",
    ),
    ("mem://d", "職業安全衛生法", "雇主對於勞工應妥為規劃及採取必要之安全衛生措施。"),
    ("mem://e", "Leave rules", "Annual leave requests must be filed two days ahead."),
]
QUERIES = ["例假日出勤工資", "家庭照顧假", "安全衛生措施", "annual leave", "休息日幾天", "勞工"]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_all()


def fill(zk: Zhiku, kb: str) -> None:
    zk.kb(kb, create=True)
    for path, title, text in PARAS:
        zk.add_loaded(kb, path, LoadedDocument(title, "txt", [Block(text)]))
    zk.sync_index(kb)


def test_encoding_is_one_ascii_word_per_token_and_injective() -> None:
    tokens = ztext.tokenize("臺北市 Annual leave 2024 𠀀𪚥 ｱ")
    words = [encode_token(t) for t in tokens]
    assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
    assert len(set(words)) == len(set(tokens))
    assert encode_token("台") != encode_token("臺") or ztext.fold("臺") == "台"
    assert encode_token("ab") != encode_token("ba")
    assert encode_tokens(["台北"] * 100, limit=50).split() == [encode_token("台北")] * 4


def test_filter_expression() -> None:
    expr = filter_expr(
        Filter.parse(["dept=hr,it", 'tag!=a"b', "amended>=2020-01-01"]),
        allowed={3, 1},
        excluded={9},
    )
    assert expr == (
        '(ARRAY_CONTAINS_ANY(facet, ["dept=hr", "dept=it"])) and '
        '(not ARRAY_CONTAINS_ANY(facet, ["tag=a\\"b"])) and (amended >= 20200101) '
        "and (chunk_id in [1,3]) and (not (chunk_id in [9]))"
    )
    assert filter_expr() == ""


def test_same_ranking_as_tantivy_on_the_same_tokens(zhiku_home: Path) -> None:
    zk = Zhiku(zhiku_home)
    fill(zk, "emb")
    zk.kb("mil", create=True)
    zk.store.update_kb_settings(
        "mil", {"index": {"backend": "milvus", "uri": str(zhiku_home / "m.db")}}
    )
    fill(zk, "mil")
    for q in QUERIES:
        a = [h.path for h in zk.search(q, "emb", k=5, mode="lexical")]
        b = [h.path for h in zk.search(q, "mil", k=5, mode="lexical")]
        assert a and a == b, q
        sa = dict(zk.index("emb").search(ztext.query_tokens(q), k=5))
        sb = dict(zk.index("mil").search(ztext.query_tokens(q), k=5))
        # Re-scored with the database's statistics and tantivy's quantised lengths.
        assert sorted(sa.values(), reverse=True) == pytest.approx(
            sorted(sb.values(), reverse=True), rel=1e-5
        ), q
    zk.close()


def test_settings_are_checked() -> None:
    assert IndexConfig.from_settings(None).backend == "embedded"
    cfg = IndexConfig.from_settings({"backend": "milvus", "uri": "http://m:19530"})
    assert cfg.milvus_uri(Path("/x")) == "http://m:19530"
    assert IndexConfig.from_settings({"backend": "milvus"}).milvus_uri(Path("/x")) == "/x/milvus.db"
    with pytest.raises(IndexConfigError, match="elastic"):
        IndexConfig.from_settings({"backend": "elastic"})


def test_cli_creates_a_milvus_kb_and_search_uses_it(zhiku_home: Path) -> None:
    r = CliRunner().invoke(app, ["kb", "create", "m", "--index", "milvus"])
    assert r.exit_code == 0, r.output
    zk = Zhiku(zhiku_home)
    kbo = zk.store.get_kb("m")
    assert kbo.settings["index"] == {"backend": "milvus"}
    fill(zk, "m")
    assert isinstance(zk.index("m"), MilvusLexicalIndex)
    assert (zhiku_home / "milvus.db").exists() and not (
        zhiku_home / "index" / f"kb-{kbo.id}"
    ).exists()
    assert zk.search("家庭照顧假", "m", k=1)[0].path == "mem://c"
    zk.close()
    r = CliRunner().invoke(app, ["kb", "create", "m", "--index", "nope"])
    assert r.exit_code == 2


def test_switching_backend_rebuilds_from_the_database(zhiku_home: Path) -> None:
    zk = Zhiku(zhiku_home)
    fill(zk, "k")
    zk.store.update_kb_settings("k", {"index": {"backend": "milvus"}})
    zk.close()
    zk = Zhiku(zhiku_home)
    zk.remove("k", "mem://a")  # while Milvus is the index
    assert zk.index("k").num_docs() == len(PARAS) - 1
    zk.close()
    r = CliRunner().invoke(app, ["kb", "create", "k", "--index", "embedded"])
    assert r.exit_code == 0, r.output
    zk = Zhiku(zhiku_home)
    assert zk.index("k").num_docs() == len(PARAS) - 1  # tantivy caught up, not stale
    assert "mem://a" not in {h.path for h in zk.search("休息日", "k", k=5)}
    zk.close()


def test_a_restored_database_rebuilds_the_collection(zhiku_home: Path, tmp_path: Path) -> None:
    zk = Zhiku(zhiku_home)
    zk.kb("k", create=True)
    zk.store.update_kb_settings(
        "k", {"index": {"backend": "milvus", "uri": str(tmp_path / "m.db")}}
    )
    fill(zk, "k")
    zk.close()
    shutil.copy(zhiku_home / "zhiku.db", tmp_path / "backup.db")
    zk = Zhiku(zhiku_home)
    zk.add_loaded("k", "mem://late", LoadedDocument("後加", "txt", [Block("颱風假停止上班。")]))
    zk.sync_index("k")
    assert zk.index("k").num_docs() == len(PARAS) + 1
    zk.close()
    close_all()
    shutil.copy(tmp_path / "backup.db", zhiku_home / "zhiku.db")  # restore the backup
    zk = Zhiku(zhiku_home)
    idx = zk.index("k")
    assert idx.num_docs() == len(PARAS)
    assert "mem://late" not in {h.path for h in zk.search("颱風假", "k", k=5)}
    zk.close()


def test_delete_kb_drops_its_collections(zhiku_home: Path) -> None:
    zk = Zhiku(zhiku_home)
    zk.kb("k", create=True)
    zk.store.update_kb_settings("k", {"index": {"backend": "milvus"}})
    fill(zk, "k")
    kbo = zk.store.get_kb("k")
    client = connect(IndexConfig.of(kbo), zhiku_home)
    name = f"{collection_base(zk.store, kbo)}_lex"
    assert client.has_collection(name)
    state = client.query("zhiku_meta", filter=f'key == "{name}"', output_fields=["value"])
    assert json.loads(state[0]["value"])["db_id"] == zk.store.db_id
    zk.delete_kb("k")
    assert not client.has_collection(name)
    assert client.query("zhiku_meta", filter=f'key == "{name}"', output_fields=["value"]) == []
    zk.close()


def same_stats(a: dict[str, tuple[int, float]], b: dict[str, tuple[int, float]]) -> bool:
    return {t: v[0] for t, v in a.items()} == {t: v[0] for t, v in b.items()} and all(
        a[t][1] == pytest.approx(b[t][1]) for t in a
    )


def chunk_dfs(zk: Zhiku, kb: str, tokens: list[str]) -> dict[str, int]:
    """Document frequencies counted from the store's chunks."""
    kbo = zk.store.get_kb(kb)
    rows = zk.store.chunks_of(zk.store.kb_doc_ids(kbo.id))
    sets = [set(ztext.tokenize(index_text(r))) for r in rows]
    return {t: sum(t in c for c in sets) for t in tokens}


def test_term_stats_come_from_the_database_and_follow_changes(zhiku_home: Path) -> None:
    zk = Zhiku(zhiku_home)
    zk.kb("mil", create=True)
    zk.store.update_kb_settings(
        "mil", {"index": {"backend": "milvus", "uri": str(zhiku_home / "m.db")}}
    )
    fill(zk, "mil")
    fill(zk, "emb")
    idx = zk.index("mil")
    assert isinstance(idx, MilvusLexicalIndex)
    tokens = ztext.query_tokens("勞工例假日出勤工資")
    calls: list[str] = []
    query = idx.client.query

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(kwargs.get("filter")))
        return query(*args, **kwargs)

    idx.client.query = counting  # type: ignore[method-assign]
    try:
        first = idx.term_stats(tokens)
        assert calls == []  # no count in Milvus: one read of the database
        # The same counts as the embedded index holding the same passages.
        assert same_stats(first, zk.index("emb").term_stats(tokens))
    finally:
        idx.client.query = query  # type: ignore[method-assign]
    for kb in ("mil", "emb"):  # a new passage with one of the tokens; one replaced
        zk.add_loaded(
            kb, "mem://f", LoadedDocument("勞工請假規則", "txt", [Block("勞工請假應事先申請。")])
        )
        zk.add_loaded(kb, "mem://b", LoadedDocument("細則", "txt", [Block("休息日出勤另計。")]))
        zk.sync_index(kb)
    after = idx.term_stats(tokens)
    (labour,) = ztext.query_tokens("勞工")[-1:]  # the bigram, in the index's own form
    (wages,) = ztext.query_tokens("工資")[-1:]
    assert after[labour][0] == first[labour][0] + 1
    assert after[wages][0] == first[wages][0] - 1  # mem://b no longer says 工資
    every = sorted({t for _, title, text in PARAS for t in ztext.tokenize(title + text)})
    # (tantivy counts replaced documents until it merges: the chunks are the reference)
    assert {t: v[0] for t, v in idx.term_stats(every).items()} == chunk_dfs(zk, "mil", every)
    zk.remove("mil", "mem://f")
    assert {t: v[0] for t, v in idx.term_stats(every).items()} == chunk_dfs(zk, "mil", every)
    assert idx.term_stats([labour])[labour][0] == first[labour][0]
    zk.close()
