"""Per-knowledge-base PII policy and redaction.

Privacy by default (:meth:`PiiPolicy.default`): a new knowledge base masks, *before
anything is stored*, the types that identify a person — national ID, resident
certificate, passport, NHI card, credit card, bank account, mobile number, personal
e-mail, date of birth, name and home address. Business identifiers stay so the
knowledge base can still answer 「客服專線是多少？」: the 統一編號, landlines and 0800
numbers, and — with ``keep_business`` — role mailboxes (service@, 客服@…) and
addresses written as a company's, a shop's or an office's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from zhiku.errors import ZhikuError
from zhiku.pii.i18n import msg, resolve_lang, type_label
from zhiku.pii.mask import mask_value, pseudonym, tag
from zhiku.pii.pii_types import TYPES

if TYPE_CHECKING:  # the detectors are imported when text is scanned
    from zhiku.pii.detect import Finding

MODES: tuple[str, ...] = ("ingest", "output", "off")
STRATEGIES: tuple[str, ...] = ("mask", "tag", "pseudonym")

PERSONAL_TYPES: frozenset[str] = frozenset(
    {"tw_id", "arc", "passport", "nhi_card", "credit_card", "bank_account", "mobile",
     "email", "birthday", "name", "address"}
)  # fmt: skip
BUSINESS_TYPES: frozenset[str] = frozenset(set(TYPES) - PERSONAL_TYPES)  # ubn, landline


class PiiError(ZhikuError):
    """A PII policy or request that cannot be applied (bad type, missing secret…)."""

    exit_code = 2


def parse_types(spec: str | Iterable[str], base: Iterable[str] | None = None) -> set[str]:
    """Types from ``"tw_id,mobile"``, ``"all"``, ``"default"`` or edits ``"+landline,-name"``.

    Edits (``+x`` / ``-x``) apply to ``base`` (the default types when ``None``).
    """
    items = (
        [p.strip() for p in spec.replace("，", ",").split(",")]
        if isinstance(spec, str)
        else [str(p).strip() for p in spec]
    )
    items = [p for p in items if p]
    edits = bool(items) and all(p[0] in "+-" for p in items)
    result: set[str] = set(base if base is not None else PERSONAL_TYPES) if edits else set()
    for p in items:
        op, name = (p[0], p[1:].strip()) if p[0] in "+-" else ("+", p)
        if name == "all":
            names = set(TYPES)
        elif name == "default":
            names = set(PERSONAL_TYPES)
        elif name in TYPES:
            names = {name}
        else:
            raise PiiError(msg("unknown_type", types=name, valid=", ".join(TYPES)))
        if op == "+":
            result |= names
        else:
            result -= names
    return result


@dataclass(slots=True)
class PiiPolicy:
    """What a knowledge base masks, when, and how.

    ``mode``: ``ingest`` masks before storing (the raw value never reaches the store,
    the index, logs or answers), ``output`` stores raw text and masks answers, search
    results and logs, ``off`` does nothing. ``keep_business`` keeps findings marked as
    an organisation's (role mailbox, toll-free / service line, business address) even
    when their type is masked.
    """

    mode: str = "ingest"
    types: set[str] = field(default_factory=lambda: set(PERSONAL_TYPES))
    strategy: str = "mask"
    min_confidence: float = 0.5
    keep_business: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PiiError(msg("bad_mode", value=self.mode))
        if self.strategy not in STRATEGIES:
            raise PiiError(msg("bad_strategy", value=self.strategy))
        self.types = set(self.types)
        unknown = self.types - set(TYPES)
        if unknown:
            raise PiiError(
                msg("unknown_type", types=", ".join(sorted(unknown)), valid=", ".join(TYPES))
            )
        if not 0.0 <= float(self.min_confidence) <= 1.0:
            raise PiiError(msg("bad_confidence", value=self.min_confidence))
        self.min_confidence = float(self.min_confidence)

    @classmethod
    def default(cls) -> PiiPolicy:
        """Privacy by default: mask person-identifying types at ingestion."""
        return cls()

    @classmethod
    def off(cls) -> PiiPolicy:
        return cls(mode="off")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "types": [t for t in TYPES if t in self.types],
            "strategy": self.strategy,
            "min_confidence": self.min_confidence,
            "keep_business": self.keep_business,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PiiPolicy:
        """The inverse of :meth:`to_dict`; missing keys take the default values."""
        if not data:
            return cls.default()
        d = cls.default()
        return cls(
            mode=str(data.get("mode", d.mode)),
            types=parse_types(data["types"]) if "types" in data else d.types,
            strategy=str(data.get("strategy", d.strategy)),
            min_confidence=float(data.get("min_confidence", d.min_confidence)),
            keep_business=bool(data.get("keep_business", d.keep_business)),
        )

    def updated(self, **changes: Any) -> PiiPolicy:
        """A copy with changes; ``types`` may be a spec string (``"+landline,-name"``)."""
        if isinstance(changes.get("types"), str):
            changes["types"] = parse_types(changes["types"], self.types)
        return replace(self, **changes)

    @property
    def masks_at_ingest(self) -> bool:
        return self.mode == "ingest" and bool(self.types)

    @property
    def masks_on_output(self) -> bool:
        return self.mode != "off" and bool(self.types)

    def should_mask(self, f: Finding) -> bool:
        return (
            f.type in self.types
            and f.confidence >= self.min_confidence
            and not (self.keep_business and f.business)
        )

    def describe(self, lang: str = "zh-TW") -> list[tuple[str, str]]:
        """Rows for ``zhiku kb show``."""
        lang = resolve_lang(lang)
        zh = lang == "zh-TW"
        sep = "、" if zh else ", "
        masked = [type_label(t, lang) for t in TYPES if t in self.types]
        kept = [type_label(t, lang) for t in TYPES if t not in self.types]
        modes = {
            "ingest": (
                "匯入時遮蔽（原始個資不寫入資料庫、索引、紀錄與回答）",
                "mask at ingestion (raw values never reach the store, index, logs or answers)",
            ),
            "output": (
                "輸出時遮蔽（保存原文；回答、搜尋結果與紀錄顯示前遮蔽）",
                "mask on output (raw text stored; answers, results and logs masked)",
            ),
            "off": ("關閉（不偵測、不遮蔽）", "off (no detection, no masking)"),
        }
        strategies = {
            "mask": ("部分遮蔽（如 A1*****789、王○明）", "partial mask (A1*****789)"),
            "tag": ("類型標籤（如 〔身分證字號〕）", "type tag (〔身分證字號〕)"),
            "pseudonym": (
                "一致化假名（如 〔身分證字號#3fa9c1d2〕，以知識庫金鑰 HMAC 產生）",
                "keyed pseudonym (〔身分證字號#3fa9c1d2〕, HMAC with the KB secret)",
            ),
        }
        i = 0 if zh else 1
        none = "（無）" if zh else "(none)"
        if self.keep_business:
            business = (
                "保留（服務信箱、客服專線與 0800、營業地址）"
                if zh
                else "kept (service mailboxes, service lines and 0800, business addresses)"
            )
        else:
            business = "一併遮蔽" if zh else "masked as well"
        return [
            ("個資保護" if zh else "PII protection", modes[self.mode][i]),
            ("遮蔽類型" if zh else "Masked types", sep.join(masked) or none),
            ("不遮蔽" if zh else "Not masked", sep.join(kept) or none),
            ("機構聯絡資訊" if zh else "Business contacts", business),
            ("遮蔽方式" if zh else "Strategy", strategies[self.strategy][i]),
            ("信心門檻" if zh else "Min. confidence", f"{self.min_confidence:.2f}"),
        ]


def replacement(f: Finding, policy: PiiPolicy, secret: bytes | None = None) -> str:
    """The text that replaces one finding under ``policy``'s strategy."""
    return _replacement(f, policy.strategy, secret)


def _replacement(f: Finding, strategy: str, secret: bytes | None) -> str:
    if strategy == "mask":
        return mask_value(f.value, f.type)
    if strategy == "tag":
        return tag(f.type)
    if secret is None:
        raise PiiError(msg("no_secret", env="ZHIKU_PII_SECRET"))
    return pseudonym(f.value, f.type, secret)


def apply_findings(
    text: str, findings: Iterable[Finding], policy: PiiPolicy, secret: bytes | None = None
) -> tuple[str, Counter[str]]:
    """Replace the findings the policy masks; the rest of ``text`` is untouched."""
    counts: Counter[str] = Counter()
    parts: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda x: x.start):
        if f.start < pos or not policy.should_mask(f):
            continue
        parts.append(text[pos : f.start])
        parts.append(_replacement(f, policy.strategy, secret))
        counts[f.type] += 1
        pos = f.end
    if not counts:
        return text, counts
    parts.append(text[pos:])
    return "".join(parts), counts


def redact(
    text: str, policy: PiiPolicy, *, secret: bytes | None = None
) -> tuple[str, Counter[str]]:
    """``text`` with the policy's types replaced, and how many of each were.

    The policy's ``mode`` says *when* the caller redacts (see :func:`redact_for_ingest`
    and :func:`redact_for_output`); this function always applies its types. Strategy
    ``pseudonym`` needs the knowledge base's ``secret`` (:func:`new_secret`).
    """
    if not text or not policy.types:
        return text, Counter()
    if policy.strategy == "pseudonym" and secret is None:
        raise PiiError(msg("no_secret", env="ZHIKU_PII_SECRET"))
    from zhiku.pii.detect import detect

    findings = detect(text, min_confidence=policy.min_confidence, types=policy.types)
    return apply_findings(text, findings, policy, secret)


def redact_field(
    value: str, field_name: str | None, policy: PiiPolicy, *, secret: bytes | None = None
) -> tuple[str, Counter[str]]:
    """:func:`redact` for one table cell, with its column name as context."""
    if not value or not policy.types:
        return value, Counter()
    if policy.strategy == "pseudonym" and secret is None:
        raise PiiError(msg("no_secret", env="ZHIKU_PII_SECRET"))
    from zhiku.pii.detect import detect_field

    findings = detect_field(
        value, field_name, min_confidence=policy.min_confidence, types=policy.types
    )
    return apply_findings(value, findings, policy, secret)


def redact_for_ingest(
    text: str, policy: PiiPolicy, *, secret: bytes | None = None
) -> tuple[str, Counter[str]]:
    """What to store: masked when the policy's mode is ``ingest``, else unchanged."""
    if not policy.masks_at_ingest:
        return text, Counter()
    return redact(text, policy, secret=secret)


def redact_for_output(
    text: str, policy: PiiPolicy, *, secret: bytes | None = None
) -> tuple[str, Counter[str]]:
    """What to show (answers, search hits): masked unless the mode is ``off``.

    In ``ingest`` mode the stored text is already masked; masking again is harmless
    and covers text stored before the policy was tightened.
    """
    if not policy.masks_on_output:
        return text, Counter()
    return redact(text, policy, secret=secret)


_LOG_POLICY = PiiPolicy(strategy="tag", types=set(TYPES) - {"ubn", "landline"})


def mask_for_log(text: str, policy: PiiPolicy | None = None) -> str:
    """Query text safe to log: every personal type replaced by its tag.

    Uses the knowledge base's types when it masks anything, else the default types,
    so a query is masked before logging even in a knowledge base with ``mode="off"``.
    """
    pol = _LOG_POLICY
    if policy is not None and policy.mode != "off" and policy.types:
        pol = replace(_LOG_POLICY, types=set(policy.types) | PERSONAL_TYPES, keep_business=True)
    out, _ = redact(text, pol)
    return out


def format_counts(counts: Counter[str] | dict[str, int], lang: str | None = None) -> str:
    """「身分證字號 3、手機號碼 5」 for an ingestion report."""
    lang = resolve_lang(lang)
    sep = "、" if lang == "zh-TW" else ", "
    items = [(t, counts.get(t, 0)) for t in TYPES if counts.get(t, 0)]
    return sep.join(f"{type_label(t, lang)} {c}" for t, c in items)


_NAME_SEPARATORS = re.compile(r"[_\-.+~,;=()\[\]{}]")
_PATH_SPLIT = re.compile(r"([/\\])")


def redact_name(name: str, policy: PiiPolicy, secret: bytes | None = None) -> str:
    """One file or folder name with personal data masked (``王小明_A123456789.md``).

    Names glue words with ``_``, ``-`` and ``.``, which hide values from detection; they
    are read as spaces (same length, so the spans fit the original). A name that changed
    gets a short keyed digest of the original, so two files whose masked names would be
    the same stay two documents; without ``secret`` the digest is unkeyed.
    """
    if not name or not policy.types:
        return name
    from zhiku.pii.detect import detect

    probe = _NAME_SEPARATORS.sub(" ", name)
    findings = detect(probe, min_confidence=policy.min_confidence, types=policy.types)
    strategy = policy.strategy if secret is not None or policy.strategy != "pseudonym" else "mask"
    pol = replace(policy, strategy=strategy)
    out, counts = apply_findings(name, findings, pol, secret)
    if not counts:
        return name
    digest = hmac.new(secret or b"zhiku-name", name.encode("utf-8"), hashlib.sha256)
    stem, dot, suffix = out.rpartition(".")
    if not dot or "/" in suffix or len(suffix) > 16:
        stem, dot, suffix = out, "", ""
    return f"{stem}~{digest.hexdigest()[:6]}{dot}{suffix}"


_PII_HINT: re.Pattern[str] | None = None


def _may_hold_pii(text: str) -> bool:
    """Whether the detectors could find anything in ``text``: every detected type needs a
    digit, an ``@``, or (names) a label or honorific next to it. Checked before the
    detectors are imported, so listing paths costs nothing when they hold none."""
    global _PII_HINT
    if _PII_HINT is None:
        from zhiku.pii import _data

        words = sorted({*_data.HONORIFICS, *_data.NAME_LABELS}, key=len, reverse=True)
        _PII_HINT = re.compile("[0-9０-９@＠]|" + "|".join(map(re.escape, words)), re.I)
    return _PII_HINT.search(text) is not None


def redact_path(path: str, policy: PiiPolicy, secret: bytes | None = None) -> str:
    """A document path (``/data/王小明_A123….md``, ``upload://kb/…``) with every component
    masked by :func:`redact_name`; separators and the scheme are kept."""
    if not path or not policy.types or policy.mode == "off" or not _may_hold_pii(path):
        return path
    scheme, sep, rest = path.partition("://")
    if not sep:
        scheme, rest = "", path
    parts = _PATH_SPLIT.split(rest)
    masked = "".join(p if p in ("/", "\\") else redact_name(p, policy, secret) for p in parts)
    return f"{scheme}{sep}{masked}"
