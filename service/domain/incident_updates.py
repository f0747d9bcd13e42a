"""What a manager may change in an incident after declaring it, and what a change is.

Severity, title, description and location (latitude and longitude together) follow the
situation as it develops; the exercise
flag does not: a drill turned real (or the other way round) would rewrite what every
city, export and feed already said about it, so it is a new incident instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.domain.errors import CoordinatesPair, Invalid
from service.domain.lifecycles import IncidentStatus, ensure_incident_active

EDITABLE_FIELDS = ("severity", "title", "description", "lat", "lon")
"""The fields an update may change, in the order its event lists them."""

FIXED_FIELDS = ("exercise",)
"""Fields an update may repeat as they are, but never change."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    old: object
    new: object

    def as_json(self) -> dict[str, object]:
        return {"old": self.old, "new": self.new}


def incident_changes(
    status: IncidentStatus, current: Mapping[str, object], asked: Mapping[str, object]
) -> dict[str, FieldChange]:
    """The fields `asked` changes in an incident now `current`, old and new; empty when
    it changes nothing.

    A closed incident refuses any update (IllegalTransition); changing a fixed field,
    naming a field no update has, or giving one of latitude and longitude without the
    other, is Invalid.
    """
    ensure_incident_active(status, "update", "a closed incident's record is final")
    unknown = sorted(set(asked) - {*EDITABLE_FIELDS, *FIXED_FIELDS})
    if unknown:
        raise Invalid(f"an update cannot change {', '.join(unknown)}")
    if ("lat" in asked) != ("lon" in asked):
        raise CoordinatesPair("give both lat and lon to move the incident, or neither")
    for name in FIXED_FIELDS:
        if name in asked and asked[name] != current[name]:
            raise Invalid(
                f"{name} cannot change after declaring: an exercise stays an exercise and a "
                "real incident stays real; close this one and declare another instead"
            )
    return {
        name: FieldChange(current[name], asked[name])
        for name in EDITABLE_FIELDS
        if name in asked and asked[name] != current[name]
    }
