"""Personal data (個資) detection, masking and per-knowledge-base policy.

>>> from zhiku.pii import detect, redact, PiiPolicy
>>> [f.type for f in detect("身分證字號 A123456789，手機 0912-345-678")]
['tw_id', 'mobile']
>>> redact("手機 0912-345-678", PiiPolicy.default())[0]
'手機 0912-***-678'
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from zhiku.pii.i18n import TYPE_LABELS, type_label
from zhiku.pii.mask import canonical, mask_value, new_secret, pseudonym, tag
from zhiku.pii.pii_types import BUSINESS_SUBTYPES, TYPES
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

if TYPE_CHECKING:
    from zhiku.pii.detect import Finding, detect, detect_field

# The detectors are imported on first use: compiling their regexes costs more than a
# whole `zhiku ask` should (bench/startup.py).
_LAZY = ("Finding", "detect", "detect_field")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module("zhiku.pii.detect")
        g = globals()
        for n in _LAZY:
            g[n] = getattr(mod, n)
        return g[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule zhiku.pii.detect binds it as this package's
        # ``detect``; the package's ``detect`` is, and stays, the function.
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
