"""Builders for the office formats of issue 11, each with the real library that writes it:
odfpy (ODT/ODS/ODP), python-pptx (PPTX), the standard library (EML, ZIP), msoffcrypto-tool
(password-protected OOXML) and LibreOffice headless (legacy .doc/.xls/.ppt converted from
files built here).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

# --- ODF -------------------------------------------------------------------------------


def _outline_style(doc: Any, formats: Sequence[tuple[str, str, str, int]]) -> None:
    """Outline numbering: per level (num-format, prefix, suffix, display-levels)."""
    from odf.style import ListLevelProperties
    from odf.text import OutlineLevelStyle, OutlineStyle

    outline = OutlineStyle(name="Outline")
    for level, (fmt, prefix, suffix, display) in enumerate(formats, start=1):
        lvl = OutlineLevelStyle(
            level=level, numformat=fmt, numprefix=prefix, numsuffix=suffix, displaylevels=display
        )
        lvl.addElement(ListLevelProperties())
        outline.addElement(lvl)
    doc.styles.addElement(outline)


def make_odt(
    path: Path,
    items: Sequence[tuple[Any, ...]],
    *,
    title: str | None = None,
    outline: Sequence[tuple[str, str, str, int]] | None = None,
) -> Path:
    """Items: ("heading", level, text), ("para", text), ("list", [texts], num_format)
    (numbered, ``"1"`` or ``"一, 二, 三, ..."``; suffix 「、」 for Chinese), ("table", rows)."""
    from odf.opendocument import OpenDocumentText
    from odf.style import ListLevelProperties
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, ListLevelStyleNumber, ListStyle, P

    doc = OpenDocumentText()
    if title:
        from odf.dc import Title

        doc.meta.addElement(Title(text=title))
    if outline:
        _outline_style(doc, outline)
    n_lists = 0
    for item in items:
        kind = item[0]
        if kind == "heading":
            doc.text.addElement(H(outlinelevel=item[1], text=item[2]))
        elif kind == "para":
            doc.text.addElement(P(text=item[1]))
        elif kind == "list":
            n_lists += 1
            fmt = item[2] if len(item) > 2 else "1"
            style = ListStyle(name=f"L{n_lists}")
            lvl = ListLevelStyleNumber(
                level=1, numformat=fmt, numsuffix="、" if fmt != "1" else "."
            )
            lvl.addElement(ListLevelProperties())
            style.addElement(lvl)
            doc.automaticstyles.addElement(style)
            lst = List(stylename=style)
            for text in item[1]:
                li = ListItem()
                li.addElement(P(text=text))
                lst.addElement(li)
            doc.text.addElement(lst)
        elif kind == "table":
            rows = item[1]
            table = Table(name=f"Table{len(doc.text.childNodes)}")
            table.addElement(TableColumn(numbercolumnsrepeated=max(len(r) for r in rows)))
            for r in rows:
                tr = TableRow()
                for value in r:
                    tc = TableCell(valuetype="string")
                    tc.addElement(P(text=str(value)))
                    tr.addElement(tc)
                table.addElement(tr)
            doc.text.addElement(table)
    doc.save(str(path))
    return path


def make_ods(
    path: Path, sheets: dict[str, Sequence[Sequence[Any]]], hidden: Sequence[str] = ()
) -> Path:
    """Sheets of rows; ints/floats are written as numbers, the rest as strings. A trailing
    row repeated 1,048,000 times (as spreadsheets pad) is added to every sheet."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TableProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    hide = Style(name="Hidden", family="table")
    hide.addElement(TableProperties(display="false"))
    doc.automaticstyles.addElement(hide)
    for name, rows in sheets.items():
        table = (
            Table(name=name, stylename=hide if name in hidden else None)
            if name in hidden
            else Table(name=name)
        )
        for r in rows:
            tr = TableRow()
            for value in r:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    tc = TableCell(valuetype="float", value=value)
                else:
                    tc = TableCell(valuetype="string")
                tc.addElement(P(text=str(value)))
                tr.addElement(tc)
            table.addElement(tr)
        pad = TableRow(numberrowsrepeated=1048000)
        pad.addElement(TableCell(numbercolumnsrepeated=1024))
        table.addElement(pad)
        doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def make_odp(path: Path, slides: Sequence[tuple[str, Sequence[str], str | None]]) -> Path:
    """Slides of (title, body paragraphs, speaker notes)."""
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout, PageLayoutProperties
    from odf.text import P

    def frame(cls: str, **kw: str) -> Any:
        f = Frame(**kw)
        f.setAttrNS(PRESENTATIONNS, "class", cls)
        return f

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="PL")
    layout.addElement(PageLayoutProperties(pagewidth="28cm", pageheight="21cm"))
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for i, (title, body, notes) in enumerate(slides, start=1):
        page = Page(name=f"page{i}", masterpagename=master)
        tf = frame("title", width="24cm", height="3cm", x="2cm", y="1cm")
        tb = TextBox()
        tb.addElement(P(text=title))
        tf.addElement(tb)
        page.addElement(tf)
        bf = frame("outline", width="24cm", height="14cm", x="2cm", y="5cm")
        bb = TextBox()
        for text in body:
            bb.addElement(P(text=text))
        bf.addElement(bb)
        page.addElement(bf)
        if notes:
            n = Notes()
            nf = frame("notes", width="20cm", height="10cm", x="1cm", y="12cm")
            nb = TextBox()
            nb.addElement(P(text=notes))
            nf.addElement(nb)
            n.addElement(nf)
            page.addElement(n)
        doc.presentation.addElement(page)
    doc.save(str(path))
    return path


# --- PPTX -----------------------------------------------------------------------------


def make_pptx(path: Path, slides: Sequence[dict[str, Any]]) -> Path:
    """Slides: {"title", "body": [paragraphs], "notes", "table": rows, "hidden": bool}."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    for spec in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1 if spec.get("body") else 5])
        slide.shapes.title.text = spec["title"]
        if spec.get("body"):
            tf = slide.placeholders[1].text_frame
            tf.text = spec["body"][0]
            for text in spec["body"][1:]:
                tf.add_paragraph().text = text
        if spec.get("table"):
            rows = spec["table"]
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(1), Inches(4), Inches(8), Inches(2)
            )
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = str(value)
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = spec["notes"]
        if spec.get("hidden"):
            slide.element.set("show", "0")
    prs.save(str(path))
    return path


def encrypt_ooxml(src: Path, dst: Path, password: str = "secret") -> Path:
    """A password-protected copy of a DOCX/XLSX/PPTX (ECMA-376 agile encryption)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with src.open("rb") as fin, dst.open("wb") as fout:
        OOXMLFile(fin).encrypt(password, fout)
    return dst


# --- e-mail and ZIP ---------------------------------------------------------------------


def make_eml(
    path: Path,
    *,
    subject: str,
    sender: str,
    to: str,
    body: str,
    html: str | None = None,
    date: str = "Tue, 01 Dec 2026 09:30:00 +0800",
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> Path:
    """A MIME message; attachments are (file name, bytes, MIME type)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = date
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data, mime in attachments:
        if mime == "message/rfc822":
            from email import message_from_bytes
            from email.policy import default

            msg.add_attachment(message_from_bytes(data, policy=default))
            continue
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    path.write_bytes(msg.as_bytes())
    return path


class _Cp950Name(zipfile.ZipInfo):
    """A member name stored as CP950 bytes without the UTF-8 flag, as the ZIP tool built
    into Traditional Chinese Windows writes it."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - zipfile's hook
        return self.filename.encode("cp950"), self.flag_bits & ~0x800


def make_zip(path: Path, members: dict[str, bytes | Path], *, cp950: bool = False) -> Path:
    """A ZIP of members (bytes, or a file to copy); ``cp950`` writes Big5 member names."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            raw = data.read_bytes() if isinstance(data, Path) else data
            cls = _Cp950Name if cp950 else zipfile.ZipInfo
            info = cls(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, raw)
    return path


def make_zip_bomb(path: Path, expanded_mb: int = 300, name: str = "bomb.txt") -> Path:
    """One member of ``expanded_mb`` MB of zeros (compresses about 1000:1), streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as fh:
        block = b"\0" * (1 << 20)
        for _ in range(expanded_mb):
            fh.write(block)
    return path


# --- legacy Office through LibreOffice ---------------------------------------------------


def uno_python() -> str:
    """A Python interpreter that can ``import uno`` (Debian's python3-uno)."""
    import sys

    for exe in (sys.executable, "/usr/bin/python3"):
        if (
            Path(exe).exists()
            and subprocess.run([exe, "-c", "import uno"], capture_output=True).returncode == 0
        ):
            return exe
    raise RuntimeError("python3-uno missing: apt-get install python3-uno")


def encrypt_with_libreoffice(src: Path, dst: Path, password: str = "secret") -> Path:
    """A copy of ``src`` (ODT/ODS/ODP…) saved with a password by LibreOffice."""
    script = Path(__file__).with_name("lo_encrypt.py")
    subprocess.run(
        [uno_python(), str(script), str(src), str(dst), password],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return dst


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def soffice_convert(src: Path, fmt: str, outdir: Path) -> Path:
    """``src`` converted by LibreOffice headless (``doc``, ``xls``, ``ppt``…)."""
    return soffice_convert_many([src], fmt, outdir)[0]


def soffice_convert_many(srcs: Sequence[Path], fmt: str, outdir: Path) -> list[Path]:
    """Files converted by one LibreOffice run (it starts once: ~10 s)."""
    exe = soffice()
    if exe is None:
        raise RuntimeError(
            "LibreOffice missing: apt-get install libreoffice-writer-nogui "
            "libreoffice-calc-nogui libreoffice-impress-nogui"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / ".lo-profile"
    subprocess.run(
        [
            exe,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            fmt,
            "--outdir",
            str(outdir),
            *map(str, srcs),
        ],
        check=True,
        capture_output=True,
        timeout=180 + 5 * len(srcs),
    )
    outs = [outdir / f"{src.stem}.{fmt.split(':', 1)[0]}" for src in srcs]
    for out in outs:
        if not out.exists():
            raise RuntimeError(f"LibreOffice did not write {out}")
    return outs
