"""Personal data (個資) detection, masking and per-knowledge-base policy.

>>> from zhiku.pii import detect, redact, PiiPolicy
>>> [f.type for f in detect("身分證字號 A123456789，手機 0912-345-678")]
['tw_id', 'mobile']
>>> redact("手機 0912-345-678", PiiPolicy.default())[0]
'手機 0912-***-678'
"""

from __future__ import annotations

from zhiku.pii.detect import BUSINESS_SUBTYPES, TYPES, Finding, detect, detect_field
from zhiku.pii.i18n import TYPE_LABELS, type_label
from zhiku.pii.mask import canonical, mask_value, new_secret, pseudonym, tag
from zhiku.pii.policy import (
    BUSINESS_TYPES,
    MODES,
    PERSONAL_TYPES,
    STRATEGIES,
    PiiError,
    PiiPolicy,
    apply_findings,
    format_counts,
    mask_for_log,
    parse_types,
    redact,
    redact_field,
    redact_for_ingest,
    redact_for_output,
    redact_name,
    redact_path,
    replacement,
)

__all__ = [
    "BUSINESS_SUBTYPES",
    "BUSINESS_TYPES",
    "MODES",
    "PERSONAL_TYPES",
    "STRATEGIES",
    "TYPES",
    "TYPE_LABELS",
    "Finding",
    "PiiError",
    "PiiPolicy",
    "apply_findings",
    "canonical",
    "detect",
    "detect_field",
    "format_counts",
    "mask_for_log",
    "mask_value",
    "new_secret",
    "parse_types",
    "pseudonym",
    "redact",
    "redact_field",
    "redact_for_ingest",
    "redact_for_output",
    "redact_name",
    "redact_path",
    "replacement",
    "tag",
    "type_label",
]
