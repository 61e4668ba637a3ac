"""Taiwan law import: the 全國法規資料庫 (law.moj.gov.tw) bulk JSON, one document per law.

Accepted input, all UTF-8 (with or without a BOM):

- the bulk download (``ChLaw.json`` / ``FalV.json`` …): ``{"UpdateDate": …, "Laws": [law…]}``
  with the API's keys ``LawName``, ``LawURL``, ``LawLevel``, ``LawCategory``,
  ``LawModifiedDate``, ``LawEffectiveDate``, ``LawAbandonNote``, ``LawForeword`` and
  ``LawArticles`` (``ArticleType`` ``C`` for a heading, ``A`` for an article);
- one law per file, as split by kong0107/mojLawSplitJSON (the source of
  ``shared/data/twlaw``), with the same keys or the older Chinese ones (``法規名稱``,
  ``法規網址``, ``法規性質``, ``法規類別``, ``最新異動日期``, ``廢止註記``, ``法規內容`` with
  ``編章節`` / ``條號`` + ``條文內容``);
- a folder of such files (recursively), and ``.zip`` files of them (``ChLaw.json.zip``).
  Each file or member is read up to 512 MB, counted while reading.

Each law becomes the document ``twlaw://<PCODE>``: one labelled block per article
(label ``第 30-1 條``), under its heading path (編 > 章 > 節 > 款 > 目), so a citation
reads 《勞動基準法》第 三 章 工資 第 24 條. Deleted articles (``（刪除）``) are left out.
Metadata: ``amended`` (最新異動日期), ``effective`` when given, ``dept`` (the competent
authority from the category, e.g. 勞動部), ``tags`` (法律 / 命令 level), ``pcode``, ``url``,
``category`` and, for a repealed law, ``status: repealed``.

Repealed law is **marked, never mixed in silently**: its title carries 「（已廢止）」, so
every citation of it says so, and search / ask leave it out unless the filter asks for it
(``--where status=repealed`` or ``status=any``; :mod:`zhiku.filters`).

A law whose content did not change since the last import (same SHA-256 of its JSON) is
left as it is; a changed one is replaced atomically, like any document.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from zhiku.engine import Zhiku
from zhiku.filters import parse_date
from zhiku.ingest import FileResult, IngestReport
from zhiku.models import Block, LoadedDocument

PREFIX = "twlaw://"
REPEALED_MARK = "（已廢止）"
MAX_FILE_BYTES = 512 * 1024 * 1024  # the whole bulk file is ~250 MB
_HEADING = re.compile(r"^\s*第\s*[\S]+?\s*([編章節款目])")
_LEVEL = {"編": 0, "章": 1, "節": 2, "款": 3, "目": 4}
_DELETED = re.compile(r"^[（(]\s*刪除\s*[)）]$")
_PCODE = re.compile(r"pcode=([A-Za-z0-9]+)", re.I)


class LawFormatError(ValueError):
    """A JSON file that is not in a known 全國法規資料庫 layout."""


class EmptyLaw(LawFormatError):
    """A law without any article text (every article deleted): nothing to import."""


@dataclass(slots=True)
class Law:
    pcode: str
    name: str
    loaded: LoadedDocument
    digest: str


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = obj.get(k)
        if v not in (None, ""):
            return v
    return None


def _items(law: dict[str, Any]) -> Iterator[tuple[str, str | None, str]]:
    """(kind ``heading`` | ``article``, article number, text) in document order."""
    if isinstance(law.get("LawArticles"), list):
        for a in law["LawArticles"]:
            if not isinstance(a, dict):
                continue
            text = str(a.get("ArticleContent") or "")
            if str(a.get("ArticleType", "A")).upper() == "C":
                yield "heading", None, text
            else:
                yield "article", str(a.get("ArticleNo") or "").strip() or None, text
    elif isinstance(law.get("法規內容"), list):
        for a in law["法規內容"]:
            if not isinstance(a, dict):
                continue
            if "編章節" in a:
                yield "heading", None, str(a["編章節"] or "")
            else:
                yield (
                    "article",
                    str(a.get("條號") or "").strip() or None,
                    str(a.get("條文內容") or ""),
                )
    else:
        raise LawFormatError("找不到條文（LawArticles 或 法規內容）")


def _clean(text: str) -> str:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(ln for ln in lines if ln.strip()).strip()


def _label(number: str | None) -> str | None:
    return re.sub(r"\s+", " ", number).strip() if number else None


def _dept(category: str | None) -> str | None:
    """The competent authority in a category such as 「行政＞勞動部＞勞動條件及就業平等目」."""
    if not category:
        return None
    parts = [p.strip() for p in re.split(r"[＞>]", category) if p.strip()]
    parts = [p for p in parts if "廢止法規" not in p]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else None


def law_document(law: dict[str, Any]) -> Law:
    """One law object of either layout → the document to store."""
    name = _first(law, "LawName", "法規名稱", "中文法規名稱")
    if not isinstance(name, str) or not name.strip():
        raise LawFormatError("缺少法規名稱（LawName／法規名稱）")
    name = name.strip()
    url = _first(law, "LawURL", "法規網址") or ""
    m = _PCODE.search(str(url))
    pcode = str(_first(law, "pcode", "PCode", "PCODE") or (m.group(1) if m else "")).strip()
    if not pcode:
        pcode = "name-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    abandon = str(_first(law, "LawAbandonNote", "廢止註記") or "").strip()
    category = _first(law, "LawCategory", "法規類別")
    repealed = abandon in ("廢", "廢止", "Y", "y") or bool(
        isinstance(category, str) and "廢止法規" in category
    )
    level = _first(law, "LawLevel", "法規性質")
    meta: dict[str, Any] = {"pcode": pcode, "url": url, "category": category, "law_level": level}
    if amended := parse_date(str(_first(law, "LawModifiedDate", "最新異動日期") or "")):
        meta["amended"] = amended
    if effective := parse_date(str(_first(law, "LawEffectiveDate", "生效日期") or "")):
        meta["effective"] = effective
    if note := _first(law, "LawEffectiveNote", "生效內容"):
        meta["effective_note"] = str(note)
    if dept := _dept(category if isinstance(category, str) else None):
        meta["dept"] = dept
    if level:
        meta["tags"] = [str(level)]
    if repealed:
        meta["status"] = "repealed"
    title = name + (REPEALED_MARK if repealed else "")
    blocks: list[Block] = []
    foreword = _clean(str(_first(law, "LawForeword", "前言") or ""))
    if foreword:
        blocks.append(Block(foreword, heading_path=("前言",)))
    heads: list[tuple[int, str]] = []
    for kind, number, text in _items(law):
        text = _clean(text)
        if kind == "heading":
            if not text:
                continue
            hm = _HEADING.match(text)
            lvl = _LEVEL[hm.group(1)] if hm else 1
            heads = [h for h in heads if h[0] < lvl] + [(lvl, re.sub(r"\s+", " ", text))]
            continue
        if not text or _DELETED.match(text):
            continue
        blocks.append(Block(text, heading_path=tuple(h for _, h in heads), label=_label(number)))
    if not blocks:
        raise EmptyLaw(f"「{name}」沒有條文內容（條文皆已刪除），未匯入")
    digest = hashlib.sha256(
        json.dumps(law, ensure_ascii=False, sort_keys=True).encode("utf-8")
    ).hexdigest()
    return Law(
        pcode, name, LoadedDocument(title=title, kind="law", blocks=blocks, meta=meta), digest
    )


def _laws_in(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("Laws"), list):
        return [x for x in data["Laws"] if isinstance(x, dict)]
    if isinstance(data, list):
        return [x for x in data if isinstance(x, dict)]
    if isinstance(data, dict):
        return [data]
    raise LawFormatError("不是法規 JSON（應為一部法規、法規清單或含 Laws 的物件）")


class _TooLarge(Exception):
    pass


def _read_limited(fh: IO[bytes]) -> bytes:
    """At most :data:`MAX_FILE_BYTES`, counted while reading (sizes in headers lie)."""
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _TooLarge
    return data


def _inputs(paths: Iterable[Path]) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name, reader) of every JSON file: plain files, folders (recursively), and the
    ``.json`` members of a ``.zip`` (the form law.moj.gov.tw distributes)."""
    for p in paths:
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.suffix.lower() in (".json", ".zip") and not q.name.startswith("."):
                    yield from _inputs([q])
        elif p.suffix.lower() == ".zip":
            try:
                zf = zipfile.ZipFile(p)
            except (OSError, zipfile.BadZipFile) as exc:
                msg = str(exc)

                def bad(msg: str = msg) -> bytes:
                    raise zipfile.BadZipFile(msg)

                yield str(p), bad
                continue
            with zf:
                for info in zf.infolist():
                    if info.is_dir() or not info.filename.lower().endswith(".json"):
                        continue

                    def member(info: zipfile.ZipInfo = info, zf: zipfile.ZipFile = zf) -> bytes:
                        with zf.open(info) as fh:
                            return _read_limited(fh)

                    yield f"{p}!{info.filename}", member
        else:

            def plain(p: Path = p) -> bytes:
                with p.open("rb") as fh:
                    return _read_limited(fh)

            yield str(p), plain


OnLaw = Callable[[FileResult], None]


def import_laws(
    zk: Zhiku, paths: Iterable[Path], kb: str, on_law: OnLaw | None = None
) -> IngestReport:
    """Import every law found in ``paths`` into ``kb`` (created if missing).

    A bad file, or a bad law inside a bulk file, is reported with its name and reason;
    the others go on. Unchanged laws are skipped.
    """
    zk.kb(kb, create=True)
    report = IngestReport()
    t0 = time.perf_counter()
    known = zk.store.document_hashes(kb)

    def record(res: FileResult) -> None:
        report.files.append(res)
        if on_law is not None:
            on_law(res)

    try:
        for path, read in _inputs(paths):
            try:
                laws = _laws_in(json.loads(read().decode("utf-8-sig")))
            except _TooLarge:
                record(
                    FileResult(
                        path, "failed", "too_large", f"檔案超過 {MAX_FILE_BYTES / 1e6:.0f} MB 上限"
                    )
                )
                continue
            except zipfile.BadZipFile as exc:
                record(FileResult(path, "failed", "corrupt", f"ZIP 檔損毀：{exc}"))
                continue
            except OSError as exc:
                record(
                    FileResult(path, "failed", "unreadable", f"無法讀取檔案：{exc.strerror or exc}")
                )
                continue
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                record(FileResult(path, "failed", "corrupt", f"不是有效的 JSON：{exc}"))
                continue
            except LawFormatError as exc:
                record(FileResult(path, "failed", "format", str(exc)))
                continue
            for i, raw in enumerate(laws):
                try:
                    law = law_document(raw)
                except EmptyLaw as exc:
                    record(FileResult(f"{path}#{i + 1}", "skipped", "empty", str(exc)))
                    continue
                except LawFormatError as exc:
                    where = f"{path}#{i + 1}" if len(laws) > 1 else path
                    record(FileResult(where, "failed", "format", str(exc)))
                    continue
                doc_path = PREFIX + law.pcode
                prev = known.get(doc_path)
                if prev is not None and prev[0] == law.digest:
                    record(FileResult(doc_path, "unchanged"))
                    continue
                _, n, masked = zk.add_loaded(kb, doc_path, law.loaded, content_hash=law.digest)
                known[doc_path] = (law.digest, 0, None)
                report.masked.update(masked)
                record(
                    FileResult(
                        doc_path, "updated" if prev else "added", chunks=n, masked=dict(masked)
                    )
                )
    finally:
        zk.sync_index(kb)
    report.seconds = time.perf_counter() - t0
    return report
