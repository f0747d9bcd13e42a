"""The library's rules over plain values: which newer version a city hears of, lineage
labels, version numbers and diffs."""

from __future__ import annotations

from service.domain.library import (
    Lineage,
    VersionRef,
    lineage_label,
    newer_version,
    next_version_number,
    unified_diff,
)


def _v(version: int, city_id: int = 5, incident_type: str = "flood") -> VersionRef:
    return VersionRef(version * 10 + city_id, city_id, "Munich", incident_type, version)


def test_an_adopter_hears_of_the_newest_later_version_of_the_same_city_and_type() -> None:
    others = [_v(2), _v(4), _v(3), _v(9, city_id=6), _v(7, incident_type="wildfire")]
    assert newer_version(Lineage.ADOPTED, _v(1), others, None) == _v(4)


def test_nothing_is_announced_to_forks_own_playbooks_or_when_ignored() -> None:
    later = [_v(2), _v(3)]
    assert newer_version(Lineage.FORKED, _v(1), later, None) is None
    assert newer_version(Lineage.PUBLISHED, _v(1), later, None) is None
    assert newer_version(None, None, later, None) is None
    assert newer_version(Lineage.ADOPTED, _v(3), later, None) is None
    assert newer_version(Lineage.ADOPTED, _v(1), later, ignored_version=3) is None
    assert newer_version(Lineage.ADOPTED, _v(1), [*later, _v(4)], ignored_version=3) == _v(4)


def test_lineage_labels_name_the_city_type_and_version() -> None:
    assert lineage_label(Lineage.ADOPTED, _v(3)) == "adopted from Munich, flood v3"
    assert lineage_label(Lineage.FORKED, _v(3)) == "forked from Munich, flood v3"
    assert lineage_label(Lineage.PUBLISHED, _v(2)) == "published as Munich, flood v2"
    assert lineage_label(None, None) == "the city's own, never published"


def test_versions_count_from_one_and_diffs_are_empty_for_the_same_text() -> None:
    assert next_version_number([]) == 1
    assert next_version_number([1, 3, 2]) == 4
    assert unified_diff("a\n", "a\n", "x", "y") == ""
    assert unified_diff("a\n", "b\n", "x", "y") == "--- x\n+++ y\n@@ -1 +1 @@\n-a\n+b\n"
