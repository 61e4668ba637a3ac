"""The personal-data types, without the detectors (their regexes are costly to compile,
so :mod:`zhiku.pii.detect` is imported only when text is scanned)."""

from __future__ import annotations

TYPES: tuple[str, ...] = (
    "tw_id", "arc", "ubn", "mobile", "landline", "email", "credit_card", "nhi_card",
    "passport", "bank_account", "birthday", "address", "name",
)  # fmt: skip

# Subtypes that mark a finding as an organisation's contact point rather than a
# person's: a role mailbox, a toll-free or service line, a business address.
BUSINESS_SUBTYPES: frozenset[str] = frozenset({"role", "tollfree", "service", "business"})
