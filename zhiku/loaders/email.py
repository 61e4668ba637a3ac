"""E-mail: ``.eml`` (standard library ``email``, RFC 5322/MIME) and Outlook ``.msg``
(``extract-msg``).

Subject, sender, recipients and date (of an ``.msg``: the submit time, else the
delivery time) go into the document's metadata, where the KB's
PII policy masks them like any other text; the subject is the title. The body is the
plain-text part (or the HTML part's main text when there is no plain part). Every
attachment becomes a :class:`~zhiku.models.ChildFile` that :mod:`zhiku.ingest` stores as
``message.eml#attachment-name`` citing its message; a forwarded message is an ``.eml``
child. Inline images with a Content-ID (signature logos) are not attachments. An
attachment larger than ``ZHIKU_MAX_ATTACHMENT_MB`` (default 50) is reported on its own
and skipped; the message and its other attachments are kept.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import clean_text, squash_spaces, stem_title
from zhiku.loaders._segment import segment
from zhiku.models import Block, ChildFile, LoadedDocument
from zhiku.settings import core

DEFAULT_MAX_ATTACHMENT_MB = 50


def max_attachment_bytes() -> int:
    return int(core().max_attachment_mb * 1024 * 1024)


def _too_large(name: str, size: int) -> ChildFile:
    limit = max_attachment_bytes()
    return ChildFile(
        name,
        error=(
            "too_large",
            f"附件「{name}」過大（約 {size / 1e6:.1f} MB，上限 {limit / 1e6:.0f} MB），未匯入",
        ),
    )


def _body_blocks(plain: str | None, html: str | None) -> list[Block]:
    from zhiku.loaders.html import html_blocks
    from zhiku.loaders.txt import text_lines

    if plain and plain.strip():
        return segment(text_lines(clean_text(plain)), wrapped=False)
    if html and html.strip():
        return html_blocks(html)
    return []


def _header_block(meta: dict[str, Any]) -> Block:
    names = {"from": "寄件者", "to": "收件者", "cc": "副本", "date": "日期", "subject": "主旨"}
    lines = [f"{names[k]}：{meta[k]}" for k in names if meta.get(k)]
    return Block("\n".join(lines), (), None, kind="para")


def _document(
    path: Path, kind: str, meta: dict[str, Any], blocks: list[Block], children: list[ChildFile]
) -> LoadedDocument:
    meta = {k: v for k, v in meta.items() if v}
    title = meta.get("subject") or stem_title(path)
    if children:
        meta["attachments"] = [c.name for c in children]
    head = _header_block(meta)
    body = [head, *blocks] if head.text else blocks
    return LoadedDocument(title=str(title), kind=kind, blocks=body, meta=meta, children=children)


def _unique(name: str, seen: set[str]) -> str:
    base, n = name, 1
    while name in seen:
        n += 1
        stem, dot, ext = base.rpartition(".")
        name = f"{stem}-{n}.{ext}" if dot else f"{base}-{n}"
    seen.add(name)
    return name


# --- .eml ------------------------------------------------------------------------------


def _is_attachment(part: Message) -> bool:
    if part.get_content_maintype() == "multipart":
        return False
    disp = part.get_content_disposition()
    if disp == "attachment":
        return True
    if part.get_content_type() == "message/rfc822":
        return True
    if part.get("Content-ID") and part.get_content_maintype() == "image":
        return False  # an inline image of the HTML body (a logo, a signature)
    if not part.get_filename():
        return False
    # A named part is an attachment unless it is inline text (part of the body).
    return disp != "inline" or part.get_content_maintype() != "text"


def _eml_children(msg: EmailMessage) -> list[ChildFile]:
    children: list[ChildFile] = []
    seen: set[str] = set()
    limit = max_attachment_bytes()
    for i, part in enumerate(msg.walk()):
        if part is msg or not _is_attachment(part):
            continue
        if part.get_content_type() == "message/rfc822":
            inner: Any = part.get_payload()
            inner_msg: Any = inner[0] if isinstance(inner, list) and inner else inner
            if not isinstance(inner_msg, Message):
                continue
            subject = str(inner_msg.get("Subject", "") or "")
            name = _unique(f"{squash_spaces(subject)[:60] or f'message-{i}'}.eml", seen)
            data = inner_msg.as_bytes()
            children.append(
                _too_large(name, len(data)) if len(data) > limit else ChildFile(name, data)
            )
            continue
        name = _unique(part.get_filename() or f"attachment-{i}", seen)
        raw = part.get_payload(decode=False)
        encoded = len(raw) if isinstance(raw, str) else 0
        if encoded * 3 // 4 > limit:  # checked before decoding: base64 is 4/3 the size
            children.append(_too_large(name, encoded * 3 // 4))
            continue
        payload: Any = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if len(data) > limit:
            children.append(_too_large(name, len(data)))
            continue
        children.append(ChildFile(name, data))
    return children


def _eml_body(msg: EmailMessage) -> tuple[str | None, str | None]:
    plain = html = None
    for pref in ("plain", "html"):
        part = msg.get_body(preferencelist=(pref,))
        if part is None or _is_attachment(part):
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError, AssertionError):
            payload: Any = part.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if pref == "plain":
            plain = str(content)
        else:
            html = str(content)
    return plain, html


@register(".eml")
def load_eml(path: Path) -> LoadedDocument:
    with path.open("rb") as fh:
        try:
            msg = email.message_from_binary_file(fh, policy=email.policy.default)
        except Exception as exc:  # noqa: BLE001 - the parser is lenient; this is rare
            raise LoadError(str(path), "corrupt", f"郵件檔格式錯誤（{exc}）") from exc
    if not isinstance(msg, EmailMessage) or not (msg.keys() or msg.get_payload()):
        raise LoadError(str(path), "corrupt", "不是有效的郵件檔（.eml）")
    if not any(msg.get(h) for h in ("From", "Subject", "Date", "To", "Message-ID")):
        raise LoadError(str(path), "corrupt", "不是有效的郵件檔（.eml）：沒有郵件標頭")
    meta: dict[str, Any] = {}
    for key in ("subject", "from", "to", "cc"):
        try:
            value = msg.get(key)
        except (ValueError, IndexError):  # a malformed address header
            value = None
        if value:
            meta[key] = squash_spaces(clean_text(str(value)).replace("\n", " "))
    date = msg.get("date")
    if date:
        try:
            meta["date"] = parsedate_to_datetime(str(date)).isoformat()
        except (TypeError, ValueError, IndexError):
            meta["date"] = str(date)
    plain, html = _eml_body(msg)
    return _document(path, "eml", meta, _body_blocks(plain, html), _eml_children(msg))


# --- .msg ------------------------------------------------------------------------------


@register(".msg")
def load_msg(path: Path) -> LoadedDocument:
    try:
        import extract_msg
    except ImportError as exc:
        raise LoadError(
            str(path),
            "missing_tool",
            "讀取 .msg 需要 extract-msg，但尚未安裝（pip install extract-msg）",
        ) from exc
    try:
        msg = extract_msg.openMsg(str(path))
    except Exception as exc:  # noqa: BLE001 - olefile / extract_msg raise many kinds
        text = str(exc).lower()
        if "encrypt" in text:
            raise LoadError(str(path), "encrypted", "Outlook 郵件已加密，無法讀取") from exc
        raise LoadError(str(path), "corrupt", "Outlook 郵件檔（.msg）已損毀或格式不正確") from exc
    try:
        meta: dict[str, Any] = {}
        for key, attr in (("subject", "subject"), ("from", "sender"), ("to", "to"), ("cc", "cc")):
            value = getattr(msg, attr, None)
            if value:
                meta[key] = squash_spaces(clean_text(str(value)).replace("\n", " "))
        date = getattr(msg, "date", None)  # PidTagClientSubmitTime (when it was sent)
        if date is None:  # a message as received: PidTagMessageDeliveryTime
            with contextlib.suppress(Exception):
                date = msg.getPropertyVal("0E060040")
        if date is not None:
            meta["date"] = date.isoformat() if hasattr(date, "isoformat") else str(date)
        plain = getattr(msg, "body", None)
        html_raw = None if plain else getattr(msg, "htmlBody", None)
        html = html_raw.decode("utf-8", "replace") if isinstance(html_raw, bytes) else html_raw
        children: list[ChildFile] = []
        seen: set[str] = set()
        limit = max_attachment_bytes()
        for i, att in enumerate(getattr(msg, "attachments", []) or []):
            if getattr(att, "hidden", False):
                continue
            data = getattr(att, "data", None)
            name = (
                getattr(att, "longFilename", None)
                or getattr(att, "shortFilename", None)
                or f"attachment-{i}"
            )
            if data is not None and not isinstance(data, bytes):  # an embedded message
                subject = getattr(data, "subject", "") or f"message-{i}"
                name = f"{squash_spaces(str(subject))[:60]}.msg"
                try:
                    data = data.exportBytes()
                except Exception:  # noqa: BLE001 - older extract-msg without export
                    data = None
            name = _unique(str(name), seen)
            if not isinstance(data, bytes):
                children.append(ChildFile(name, error=("unsupported", "無法取出此附件")))
            elif len(data) > limit:
                children.append(_too_large(name, len(data)))
            else:
                children.append(ChildFile(name, data))
    finally:
        msg.close()
    return _document(path, "msg", meta, _body_blocks(plain, html), children)
