"""One text decoder (zhiku/textcodec.py): ``zhiku pii scan`` / ``redact`` read every
legacy or UTF-16 text file that ``zhiku ingest`` reads, and write it back as it was."""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_pii_cli import HEADER, ROWS
from zhiku import loaders
from zhiku.errors import LoadError
from zhiku.pii.cli import app as pii_app
from zhiku.textcodec import decode_bytes, encode_like

runner = CliRunner()

# Python codec used to write the file -> what the decoder must report.
ENCODINGS = {
    "gb18030": "gb18030",
    "utf-16": "utf-16-le",  # Python writes a little-endian BOM
    "utf-16-le": "utf-16-le",  # no BOM: told by its NUL bytes
    "utf-16-be": "utf-16-be",
    "cp950": "cp950",
    "utf-8-sig": "utf-8-sig",
    "utf-32": "utf-32-le",
}


def csv_text() -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *ROWS])
    return buf.getvalue()


@pytest.mark.parametrize("codec", sorted(ENCODINGS))
def test_ingest_and_pii_scan_read_the_same_files(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"customers-{codec}.csv"
    path.write_bytes(csv_text().encode(codec))
    text, enc = decode_bytes(path.read_bytes(), path)
    assert (text, enc) == (csv_text(), ENCODINGS[codec])

    doc = loaders.load(path)  # what zhiku ingest stores
    stored = "\n".join(b.text for b in doc.blocks)
    assert "王小明" in stored and "A123456789" in stored

    r = runner.invoke(pii_app, ["scan", str(path), "--json"])
    assert r.exit_code == 1, r.output  # personal data found
    (report,) = json.loads(r.stdout)["files"]
    assert report["counts"]["tw_id"] == 3 and report["counts"]["mobile"] == 3


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "gb18030", "utf-8-sig", "cp950"])
def test_redact_writes_the_encoding_and_bom_it_read(tmp_path: Path, codec: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(csv_text().encode(codec))
    dst = tmp_path / "out.csv"
    r = runner.invoke(pii_app, ["redact", str(src), str(dst)])
    assert r.exit_code == 0, r.output
    raw, before = dst.read_bytes(), src.read_bytes()
    boms = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    assert [raw.startswith(b) for b in boms] == [before.startswith(b) for b in boms]
    text, enc = decode_bytes(raw, dst)
    assert enc == ENCODINGS[codec]
    assert "A1*****789" in text and "A123456789" not in text


def test_encode_like_falls_back_to_utf8_for_characters_the_code_page_lacks() -> None:
    assert encode_like("表", "cp950", b"") == "表".encode("cp950")
    out = encode_like("😀 表", "cp950", b"")
    assert out.startswith(codecs.BOM_UTF8) and out.decode("utf-8-sig") == "😀 表"
    bom = codecs.BOM_UTF16_BE
    assert encode_like("表", "utf-16-be", bom + "x".encode("utf-16-be")) == bom + "表".encode(
        "utf-16-be"
    )


def test_undecodable_bytes_are_one_error_in_both(tmp_path: Path) -> None:
    path = tmp_path / "noise.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(LoadError) as exc:
        decode_bytes(path.read_bytes(), path)
    assert exc.value.reason == "encoding"
    r = runner.invoke(pii_app, ["scan", str(path)])
    assert r.exit_code == 2
    assert "無法辨識檔案的文字編碼" in r.stderr and str(path) in r.stderr
