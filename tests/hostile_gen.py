"""Generators of hostile files (resource exhaustion), shared by the tests and
``bench/hostile.py``. Each starts from a real file written by the format's library
(python-docx, openpyxl, reportlab) and then rewrites the parts an attacker would."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.filegen import make_docx, make_xlsx

W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A ZIP (deflated) holding ``entries`` (name → bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _rewrite_zip(
    path: Path, replace: dict[str, Callable[[bytes], bytes | Iterator[bytes]]], level: int = 9
) -> Path:
    """Rewrite entries of a ZIP (others kept); a replacement may stream its data."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zout:
        for info, data in entries:
            fn = replace.get(info.filename)
            if fn is None:
                zout.writestr(info.filename, data)
                continue
            out = fn(data)
            if isinstance(out, bytes):
                zout.writestr(info.filename, out)
            else:
                with zout.open(info.filename, "w", force_zip64=True) as fh:
                    for piece in out:
                        fh.write(piece)
    tmp.replace(path)
    return path


def docx_styles(path: Path, styles: int = 3000, paragraphs: int = 10000) -> Path:
    """A DOCX with thousands of styles and paragraphs that name them (and styles that do
    not exist, which send python-docx looking for the default style every time)."""
    make_docx(path, [("para", "樣式炸彈測試文件。")])

    def add_styles(data: bytes) -> bytes:
        defs = "".join(
            f'<w:style w:type="paragraph" w:customStyle="1" w:styleId="S{i}">'
            f'<w:name w:val="Custom {i}"/><w:basedOn w:val="{f"S{i - 1}" if i else "Normal"}"/>'
            "</w:style>"
            for i in range(styles)
        )
        return data.replace(b"</w:styles>", defs.encode() + b"</w:styles>")

    def add_paras(data: bytes) -> bytes:
        body = "".join(
            f'<w:p><w:pPr><w:pStyle w:val="{f"S{i % styles}" if i % 2 else f"Missing{i}"}"/>'
            f"</w:pPr><w:r><w:t>第 {i} 段內容，說明出貨流程。</w:t></w:r></w:p>"
            for i in range(paragraphs)
        )
        return data.replace(b"<w:sectPr", body.encode() + b"<w:sectPr", 1)

    return _rewrite_zip(path, {"word/styles.xml": add_styles, "word/document.xml": add_paras})


def docx_expanding(path: Path, expanded_mb: int, *, understate: bool = False) -> Path:
    """A DOCX whose document.xml holds ``expanded_mb`` MB of XML whitespace (deflate turns
    it into ~1/1000 of that). With ``understate`` the ZIP headers claim 1 kB."""
    make_docx(path, [("para", "壓縮炸彈測試文件。")])

    def pad(data: bytes) -> Iterator[bytes]:
        head, sep, tail = data.partition(b"<w:body>")
        yield head + sep
        block = b" " * (1 << 20)
        for _ in range(expanded_mb):
            yield block
        yield tail

    _rewrite_zip(path, {"word/document.xml": pad})
    if understate:
        understate_sizes(path, "word/document.xml", 1024)
    return path


def understate_sizes(path: Path, name: str, claimed: int) -> None:
    """Overwrite an entry's uncompressed size in its local and central headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    off = info.header_offset
    assert data[off : off + 4] == b"PK\x03\x04"
    n_len, x_len = struct.unpack("<HH", data[off + 26 : off + 30])
    extra_at = off + 30 + n_len
    _patch_sizes(data, off + 22, extra_at, x_len, claimed, local=True)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        c_name_len, c_x_len = struct.unpack("<HH", data[pos + 28 : pos + 32])
        c_name = bytes(data[pos + 46 : pos + 46 + c_name_len]).decode()
        if c_name == name:
            _patch_sizes(data, pos + 24, pos + 46 + c_name_len, c_x_len, claimed, local=False)
            break
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


def _patch_sizes(
    data: bytearray, size_at: int, extra_at: int, extra_len: int, claimed: int, *, local: bool
) -> None:
    cur = struct.unpack("<I", data[size_at : size_at + 4])[0]
    if cur != 0xFFFFFFFF:
        struct.pack_into("<I", data, size_at, claimed)
        return
    # ZIP64: the sizes live in the extra field (uncompressed size first).
    i = extra_at
    while i < extra_at + extra_len:
        tag, ln = struct.unpack("<HH", data[i : i + 4])
        if tag == 1:
            struct.pack_into("<Q", data, i + 4, claimed)
            return
        i += 4 + ln


def docx_elements(path: Path, elements: int) -> Path:
    """A small DOCX whose body holds ``elements`` empty runs (a deep-ish XML flood)."""
    make_docx(path, [("para", "元素炸彈測試文件。")])

    def flood(data: bytes) -> Iterator[bytes]:
        head, sep, tail = data.partition(b"<w:body>")
        yield head + sep + b"<w:p>"
        run = b"<w:r/>" * 10_000
        for _ in range(max(1, elements // 10_000)):
            yield run
        yield b"</w:p>" + tail

    return _rewrite_zip(path, {"word/document.xml": flood})


def xlsx_rows(path: Path, rows: int) -> Path:
    """An XLSX written by openpyxl whose sheet is then given ``rows`` one-cell rows."""
    make_xlsx(path, [["項目", "說明"], ["一", "第一列"]])

    def many(data: bytes) -> Iterator[bytes]:
        head, sep, tail = data.partition(b"<sheetData>")
        yield head + sep
        buf: list[bytes] = []
        # Rows without their optional ``r`` attribute are identical bytes, so deflate
        # packs millions of them into a few hundred kB.
        row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
        for _ in range(rows):
            buf.append(row)
            if len(buf) >= 10_000:
                yield b"".join(buf)
                buf.clear()
        yield b"".join(buf)
        _, _, rest = tail.partition(b"</sheetData>")
        yield b"</sheetData>" + rest

    return _rewrite_zip(path, {"xl/worksheets/sheet1.xml": many})


def pdf_flate_bomb(path: Path, expanded_mb: int) -> Path:
    """A one-page PDF whose content stream inflates to ``expanded_mb`` MB (a few hundred
    kB on disk): text, then a long run of whitespace. Written object by object with a
    correct cross-reference table."""
    comp = zlib.compressobj(9)
    parts = [comp.compress(b"BT /F1 12 Tf 72 720 Td (Flate bomb test) Tj ET\n")]
    block = b" " * (1 << 20)
    for _ in range(expanded_mb):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    stream = b"".join(parts)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path
