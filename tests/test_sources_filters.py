"""Document metadata and filters: parsed strictly, applied inside the lexical and the
vector query (so filtered results are the best *matching* passages, never a truncated
list), through the engine, the CLI and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fake_openai import FakeOpenAI
from tests.models_util import make_engine
from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.filters import Filter, FilterError, normalize_meta, parse_meta_args
from zhiku.ingest import ingest_paths
from zhiku.models import Block, LoadedDocument

runner = CliRunner()


def _add(zk: Zhiku, kb: str, path: str, title: str, text: str, **meta: object) -> None:
    zk.kb(kb, create=True)
    zk.add_loaded(kb, path, LoadedDocument(title, "txt", [Block(text)]), meta=dict(meta))


def _corpus(zk: Zhiku) -> None:
    # The finance memo matches the query best; the HR rule matches it less well.
    _add(
        zk,
        "kb",
        "mem://fin",
        "財務處加班費核銷",
        "加班費核銷：加班費申請加班費核銷，每月五日前送財務處。",
        dept="Finance",
        tags=["核銷"],
        amended="2023-03-01",
    )
    _add(
        zk,
        "kb",
        "mem://hr",
        "人資處加班規定",
        "延長工時每月不得超過四十六小時，加班應事先申請。",
        department="HR",
        tag="規章, 工時",
        effective="2020/1/1",
        amended="20240731",
    )
    _add(
        zk,
        "kb",
        "mem://old",
        "舊加班辦法",
        "加班費以時薪一倍計算。",
        dept="hr",
        tags=["規章"],
        amended="2001-05-01",
        status="repealed",
    )
    zk.sync_index("kb")


def test_parse_and_normalise() -> None:
    assert normalize_meta(
        {"Department": " ＨＲ ", "tags": "a, b", "updated": "20240731", "x": 1}
    ) == {"dept": "hr", "tags": ["a", "b"], "amended": "2024-07-31", "x": 1}
    assert parse_meta_args(["dept=HR", "tag=規章,工時", "effective=2024-01"]) == {
        "dept": "hr",
        "tags": ["規章", "工時"],
        "effective": "2024-01-01",
    }
    f = Filter.parse(["dept=hr,legal", "amended>=2020-01-01", "tag!=草稿"])
    assert f.describe() == ["dept=hr,legal", "amended>=2020-01-01", "tag!=草稿"]
    for bad in (
        "dept",
        "color=red",
        "amended>=yesterday",
        "dept>=hr",
        "status=gone",
        "amended!=2020-01-01",
    ):
        with pytest.raises(FilterError):
            Filter.parse([bad])
    with pytest.raises(FilterError):
        parse_meta_args(["amended=someday"])
    assert Filter.from_api(
        {"dept": "hr", "amended": ">=2020-01-01", "tag": ["a", "b"]}
    ).describe() == ["dept=hr", "amended>=2020-01-01", "tag=a", "tag=b"]


def test_filter_inside_the_lexical_query(engine: Zhiku) -> None:
    _corpus(engine)
    q = "加班費核銷申請"
    assert engine.search(q, "kb", k=1)[0].path == "mem://fin"
    # k=1 with a filter still finds the HR rule: the filter is part of the query.
    hits = engine.search(q, "kb", k=1, where=Filter.parse(["dept=hr"]))
    assert [h.path for h in hits] == ["mem://hr"]
    # BM25 scores are those of the unfiltered query (filter clauses score zero).
    all_scores = {h.path: h.score for h in engine.search(q, "kb", k=5)}
    assert hits[0].score == pytest.approx(all_scores["mem://hr"])
    assert {h.path for h in engine.search(q, "kb", where=Filter.parse(["tag=工時,核銷"]))} == {
        "mem://hr",
        "mem://fin",
    }
    assert [h.path for h in engine.search(q, "kb", where=Filter.parse(["dept!=finance"]))] == [
        "mem://hr"
    ]
    assert [
        h.path for h in engine.search(q, "kb", where=Filter.parse(["amended>=2024-01-01"]))
    ] == ["mem://hr"]
    assert [h.path for h in engine.search(q, "kb", where=Filter.parse(["amended<2024-07-31"]))] == [
        "mem://fin"
    ]
    assert [
        h.path for h in engine.search(q, "kb", where=Filter.parse(["effective=2020-01-01"]))
    ] == ["mem://hr"]
    assert engine.search(q, "kb", where=Filter.parse(["dept=legal"])) == []
    assert len(engine.search(q, "kb", where=Filter.parse(["kind=TXT"]))) == 2
    assert engine.search(q, "kb", where=Filter.parse(["kind=pdf"])) == []


def test_repealed_excluded_unless_asked(engine: Zhiku) -> None:
    _corpus(engine)
    q = "加班費時薪計算"
    assert "mem://old" not in {h.path for h in engine.search(q, "kb", k=5)}
    assert [h.path for h in engine.search(q, "kb", where=Filter.parse(["status=repealed"]))] == [
        "mem://old"
    ]
    assert "mem://old" in {
        h.path for h in engine.search(q, "kb", k=5, where=Filter.parse(["status=any"]))
    }
    ans = engine.ask(q, "kb", where=Filter.parse(["status=repealed"]))
    assert all(c.hit.path == "mem://old" for c in ans.citations)


def test_metadata_change_reaches_the_index(engine: Zhiku) -> None:
    _corpus(engine)
    where = Filter.parse(["dept=legal"])
    assert engine.search("加班", "kb", where=where) == []
    assert engine.store.set_document_meta("kb", "mem://fin", {"dept": "legal"})
    engine.sync_index("kb")
    assert [h.path for h in engine.search("加班", "kb", where=where)] == ["mem://fin"]
    assert [d.path for d in engine.store.list_documents("kb", where)] == ["mem://fin"]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI()
    yield s
    s.close()


def test_filter_inside_the_vector_query(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server)
    try:
        _corpus(zk)
        for mode in ("dense", "hybrid"):
            hits = zk.search(
                "加班費核銷申請", "kb", k=1, mode=mode, where=Filter.parse(["dept=hr"])
            )
            assert [h.path for h in hits] == ["mem://hr"], mode
            paths = {h.path for h in zk.search("加班費", "kb", k=5, mode=mode)}
            assert "mem://old" not in paths and paths, mode
    finally:
        zk.close()


def test_cli_meta_and_where(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "hr").mkdir(parents=True)
    (folder / "fin").mkdir()
    (folder / "hr" / "leave.md").write_text("# 請假\n\n病假全年不得超過三十日。\n", "utf-8")
    (folder / "fin" / "trip.md").write_text("# 差旅\n\n出差病假期間差旅費不予核銷。\n", "utf-8")
    r = runner.invoke(
        app,
        [
            "ingest",
            str(folder / "hr"),
            "--kb",
            "k",
            "-q",
            "--meta",
            "dept=hr",
            "--meta",
            "tag=規章",
        ],
    )
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(
        app, ["ingest", str(folder / "fin"), "--kb", "k", "-q", "--meta", "dept=finance"]
    )
    assert r.exit_code == 0
    r = runner.invoke(app, ["search", "病假", "--kb", "k", "--json", "--where", "dept=finance"])
    assert r.exit_code == 0
    assert [h["path"] for h in json.loads(r.stdout)["hits"]] == [
        str((folder / "fin" / "trip.md").resolve())
    ]
    r = runner.invoke(app, ["docs", "--kb", "k", "--json", "--where", "tag=規章"])
    docs = json.loads(r.stdout)["documents"]
    assert [d["meta"] for d in docs] == [{"dept": "hr", "tags": ["規章"]}]
    r = runner.invoke(
        app, ["meta", str(folder / "fin" / "trip.md"), "tag=規章", "dept=", "--kb", "k"]
    )
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["docs", "--kb", "k", "--json", "--where", "tag=規章"])
    assert len(json.loads(r.stdout)["documents"]) == 2
    r = runner.invoke(app, ["ask", "病假", "--kb", "k", "--where", "color=red"])
    assert r.exit_code == 2 and "color" in r.stderr
    # Re-ingesting unchanged files with new metadata applies it.
    r = runner.invoke(app, ["ingest", str(folder / "hr"), "--kb", "k", "-q", "--meta", "dept=ops"])
    r = runner.invoke(app, ["docs", "--kb", "k", "--json", "--where", "dept=ops"])
    assert len(json.loads(r.stdout)["documents"]) == 1


def test_ingest_paths_meta(engine: Zhiku, tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("---\ntags: [表單]\ndepartment: IT\n---\n# 帳號\n\n密碼至少十二字元。\n", "utf-8")
    ingest_paths(engine, [f], "kb", meta={"effective": "2024-02-01"})
    doc = engine.store.list_documents("kb")[0]
    assert doc.meta["effective"] == "2024-02-01"
    assert engine.search("密碼", "kb", where=Filter.parse(["effective>=2024-01-01"]))
