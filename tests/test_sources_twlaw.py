"""Taiwan law import: the 全國法規資料庫 bulk JSON (API keys) and the split one-law-per-file
JSON (older Chinese keys), as one document per law with headings, article labels,
dates and the repealed status; bad files reported by name, the rest imported."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.sources.twlaw import import_laws

runner = CliRunner()


def _api_law(
    name: str,
    pcode: str,
    articles: list[tuple[str, str, str]],
    *,
    modified: str = "20240731",
    abandon: str = "",
    category: str = "行政＞勞動部＞勞動條件及就業平等目",
) -> dict[str, object]:
    return {
        "LawLevel": "法律",
        "LawName": name,
        "LawURL": f"https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode={pcode}",
        "LawCategory": category,
        "LawModifiedDate": modified,
        "LawEffectiveDate": "",
        "LawEffectiveNote": "",
        "LawAbandonNote": abandon,
        "LawHasEngVersion": "N",
        "EngLawName": "",
        "LawAttachements": [],
        "LawHistories": "",
        "LawForeword": "",
        "LawArticles": [
            {"ArticleType": t, "ArticleNo": no, "ArticleContent": text} for t, no, text in articles
        ],
    }


LABOR = _api_law(
    "勞動基準法",
    "N0030001",
    [
        ("C", "", "第 一 章 總則"),
        ("A", "第 1 條", "為規定勞動條件最低標準，保障勞工權益，特制定本法。"),
        ("C", "", "第 三 章 工資"),
        ("A", "第 21 條", "工資由勞雇雙方議定之。但不得低於基本工資。"),
        ("C", "", "第 四 章 工作時間、休息、休假"),
        ("A", "第 30 條", "勞工正常工作時間，每日不得超過八小時，每週不得超過四十小時。"),
        (
            "A",
            "第 30-1 條",
            "中央主管機關指定之行業，雇主經工會同意，\r\n其工作時間得依下列原則變更。",
        ),
        ("A", "第 31 條", "（刪除）"),
    ],
)
OLD = _api_law(
    "工廠法",
    "N0000001",
    [
        ("A", "第 8 條", "童工每日之工作時間，不得超過八小時。"),
    ],
    modified="19751219",
    abandon="廢",
    category="廢止法規＞行政＞勞動部",
)


def _files(tmp: Path) -> Path:
    folder = tmp / "laws"
    folder.mkdir()
    # The bulk download: UTF-8 with a BOM, {"UpdateDate", "Laws": [...]}.
    (folder / "ChLaw.json").write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(
            {
                "UpdateDate": "2024/10/11",
                "Laws": [
                    LABOR,
                    OLD,
                    {"LawName": ""},
                    _api_law("某條例", "X0000001", [("A", "第 1 條", "（刪除）")]),
                ],
            },
            ensure_ascii=False,
        ).encode("utf-8")
    )
    # A split file with the older Chinese keys.
    (folder / "A0030133.json").write_text(
        json.dumps(
            {
                "法規性質": "法律",
                "法規名稱": "中央法規標準法",
                "法規網址": "http://law.moj.gov.tw/LawClass/LawContent.aspx?PCODE=A0030133",
                "法規類別": "行政＞院本部＞通用目",
                "最新異動日期": "20040519",
                "法規內容": [
                    {"編章節": "第 一 章 總則"},
                    {
                        "條號": "第 1 條",
                        "條文內容": "中央法規之制定、施行、適用、修正及廢止，除憲法規定外，"
                        "依本法之規定。",
                    },
                    {"編章節": "第 一 節 通則"},
                    {"條號": "第 2 條", "條文內容": "法律得定名為法、律、條例或通則。"},
                    {"編章節": "第 二 章 法規之制定"},
                    {"條號": "第 4 條", "條文內容": "法律應經立法院通過，總統公布。"},
                ],
            },
            ensure_ascii=False,
        ),
        "utf-8",
    )
    (folder / "broken.json").write_text('{"LawName": "半個', "utf-8")
    (folder / "other.json").write_text('{"hello": "world"}', "utf-8")
    return folder


def test_import_structure_and_metadata(engine: Zhiku, tmp_path: Path) -> None:
    report = import_laws(engine, [_files(tmp_path)], "law")
    assert report.count("added") == 3
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert failed == {"broken.json": "corrupt", "other.json": "format", "ChLaw.json#3": "format"}
    assert [(Path(f.path).name, f.reason) for f in report.files if f.status == "skipped"] == [
        ("ChLaw.json#4", "empty")
    ]
    docs = {d.path: d for d in engine.store.list_documents("law")}
    labor = docs["twlaw://N0030001"]
    assert labor.title == "勞動基準法" and labor.kind == "law"
    assert labor.meta["amended"] == "2024-07-31" and labor.meta["dept"] == "勞動部"
    assert labor.meta["tags"] == ["法律"] and "status" not in labor.meta
    old = docs["twlaw://N0000001"]
    assert old.title == "工廠法（已廢止）" and old.meta["status"] == "repealed"
    rows = engine.store.db.execute(
        "SELECT c.label, c.section, c.text FROM chunks c JOIN documents d ON d.id=c.doc_id "
        "WHERE d.path='twlaw://N0030001' ORDER BY c.ord"
    ).fetchall()
    labels = [r["label"] for r in rows]
    assert labels == ["第 1 條", "第 21 條", "第 30 條", "第 30-1 條"]  # 第 31 條 deleted
    assert rows[3]["section"] == "第 四 章 工作時間、休息、休假 > 第 30-1 條"
    assert "\r" not in rows[3]["text"]
    nested = engine.store.db.execute(
        "SELECT c.section FROM chunks c JOIN documents d ON d.id=c.doc_id "
        "WHERE d.path='twlaw://A0030133' ORDER BY c.ord"
    ).fetchall()
    assert [r[0] for r in nested] == [
        "第 一 章 總則 > 第 1 條",
        "第 一 章 總則 > 第 一 節 通則 > 第 2 條",
        "第 二 章 法規之制定 > 第 4 條",
    ]


def test_zip_bulk_download(engine: Zhiku, tmp_path: Path) -> None:
    zpath = tmp_path / "ChLaw.json.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ChLaw.json", json.dumps({"Laws": [LABOR, OLD]}, ensure_ascii=False))
        zf.writestr("readme.txt", "not a law")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 truncated")
    report = import_laws(engine, [zpath, tmp_path / "bad.zip"], "law")
    assert report.count("added") == 2
    assert [(Path(f.path).name, f.reason) for f in report.failed] == [("bad.zip", "corrupt")]
    assert {d.path for d in engine.store.list_documents("law")} == {
        "twlaw://N0030001",
        "twlaw://N0000001",
    }


def test_repealed_law_not_mixed_in(engine: Zhiku, tmp_path: Path) -> None:
    import_laws(engine, [_files(tmp_path)], "law")
    q = "童工每日工作時間不得超過幾小時"
    hits = engine.search(q, "law", k=5)
    assert hits and all(h.path != "twlaw://N0000001" for h in hits)
    hits = engine.search(q, "law", k=1, where=Filter.parse(["status=repealed"]))
    assert hits[0].path == "twlaw://N0000001" and "已廢止" in hits[0].doc_title
    ans = engine.ask("勞工正常工作時間每日不得超過幾小時", "law")
    assert not ans.refused and ans.citations[0].hit.section.endswith("第 30 條")
    assert engine.search(q, "law", where=Filter.parse(["amended<1980-01-01"])) == []


def test_reimport_is_incremental(engine: Zhiku, tmp_path: Path) -> None:
    folder = _files(tmp_path)
    import_laws(engine, [folder], "law")
    again = import_laws(engine, [folder], "law")
    assert again.count("unchanged") == 3 and again.count("added") == 0
    LABOR["LawModifiedDate"] = "20250101"
    try:
        (folder / "ChLaw.json").write_text(
            json.dumps({"Laws": [LABOR, OLD]}, ensure_ascii=False), "utf-8"
        )
        third = import_laws(engine, [folder / "ChLaw.json"], "law")
    finally:
        LABOR["LawModifiedDate"] = "20240731"
    assert third.count("updated") == 1 and third.count("unchanged") == 1
    doc = engine.store.get_document("law", "twlaw://N0030001")
    assert doc is not None and doc.meta["amended"] == "2025-01-01"


def test_cli_law_import(tmp_path: Path) -> None:
    folder = _files(tmp_path)
    r = runner.invoke(app, ["law", "import", str(folder), "--kb", "law", "--json"])
    assert r.exit_code == 1  # some files failed; the others were imported
    out = json.loads(r.stdout)
    assert out["added"] == 3 and len(out["failed"]) == 3
    r = runner.invoke(
        app, ["search", "童工", "--kb", "law", "--json", "--where", "status=repealed"]
    )
    assert json.loads(r.stdout)["hits"][0]["doc"] == "工廠法（已廢止）"
