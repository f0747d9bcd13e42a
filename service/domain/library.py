"""The playbook library's rules over plain values: how versions are told apart, what a
city is told about a newer version of the playbook it adopted, how a diff reads."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum


class Lineage(StrEnum):
    """How a city's playbook came to be what it is."""

    PUBLISHED = "published"  # the city published it (its own text)
    ADOPTED = "adopted"  # taken from another city's version, following its newer ones
    FORKED = "forked"  # taken from another city's version, then the city's own


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A published version as lineage and notices speak of it."""

    version_id: int
    city_id: int
    city_name: str
    incident_type: str
    version: int

    def label(self) -> str:
        return f"{self.city_name}, {self.incident_type} v{self.version}"


def lineage_label(lineage: Lineage | None, based_on: VersionRef | None) -> str:
    """One line saying where a city's playbook comes from ("adopted from Munich, flood v3")."""
    if lineage is None or based_on is None:
        return "the city's own, never published"
    if lineage is Lineage.PUBLISHED:
        return f"published as {based_on.label()}"
    return f"{lineage.value} from {based_on.label()}"


def newer_version(
    lineage: Lineage | None,
    based_on: VersionRef | None,
    source_versions: list[VersionRef],
    ignored_version: int | None,
) -> VersionRef | None:
    """The version a city that adopted `based_on` is told about: the newest of the source
    city's versions of that type above the adopted one, unless the city ignored it (or a
    newer one). Forks and the city's own playbooks follow nothing."""
    if lineage is not Lineage.ADOPTED or based_on is None:
        return None
    candidates = [
        v
        for v in source_versions
        if v.city_id == based_on.city_id
        and v.incident_type == based_on.incident_type
        and v.version > based_on.version
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda v: v.version)
    if ignored_version is not None and newest.version <= ignored_version:
        return None
    return newest


def next_version_number(published: list[int]) -> int:
    return max(published, default=0) + 1


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified text diff of two playbooks' YAML, empty when they are the same."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_name,
            tofile=new_name,
        )
    )
