"""Access labels as metadata: names, ranks and scales, and labels that cannot be read
failing closed (in the lexical terms and in SQL alike)."""

from __future__ import annotations

import pytest

from zhiku.access import AccessError, AccessScope, doc_labels, label_terms, parse_level, scale
from zhiku.filters import normalize_meta, parse_meta_args


def test_levels_by_name_english_name_or_rank() -> None:
    assert [parse_level(v) for v in ("公開", "內部", "機密", "密")] == [0, 1, 2, 3]
    assert [parse_level(v) for v in ("Public", "internal", "CONFIDENTIAL", "secret", "2")] == [
        0,
        1,
        2,
        3,
        2,
    ]
    for bad in ("絕密", "9", -1, True):
        with pytest.raises(AccessError):
            parse_level(bad)


def test_a_configured_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_ACCESS_LEVELS", "一般,限閱,機密,極機密,絕對機密")
    assert scale()[-1] == "絕對機密" and parse_level("絕對機密") == 4
    with pytest.raises(AccessError):
        parse_level("公開")  # not on this scale


def test_labels_normalise_and_fail_closed() -> None:
    meta = parse_meta_args(["access_groups=HR,Finance，hr", "機密等級=機密", "dept=hr"])
    assert meta == {"access_groups": ["hr", "finance"], "access_level": 2, "dept": "hr"}
    with pytest.raises(AccessError):
        parse_meta_args(["access_level=絕密"])  # typed by a person: refused, clearly
    # Read from a file's metadata: the strictest reading, never "public".
    loose = normalize_meta({"access_level": "絕密", "access_groups": ["*"]})
    assert loose["access_level"] == len(scale()) - 1
    assert doc_labels(loose)[0] == ["!unreadable"]
    assert not AccessScope("sam", frozenset({"hr"}), 3).allows(loose)
    assert doc_labels({"access_groups": "hr", "access_level": "x"}) == (["hr"], 3)
    assert label_terms({}) == ["access_level=0"]
    assert label_terms(meta) == [
        "access_group=hr",
        "access_group=finance",
        "access_group:restricted",
        "access_level=2",
    ]


def test_scope_allows_matches_the_rule() -> None:
    hr = AccessScope("hana", frozenset({"hr"}), 2)
    assert hr.allows({}) and hr.allows({"access_groups": ["hr", "x"], "access_level": 2})
    assert not hr.allows({"access_groups": ["finance"]})
    assert not hr.allows({"access_level": 3})
