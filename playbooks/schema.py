"""The playbook format and the resource catalogue as pydantic models.

These models check everything a single file can check on its own: shapes, types, ranges and
unknown keys. Checks that need both a playbook and the catalogue (does each requested resource
exist?) live in :mod:`playbooks.loader`, which also maps every error to a line of the YAML.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from playbooks.durations import (
    DURATION_PATTERN,
    MAX_DURATION,
    format_duration,
    parse_duration,
)

__all__ = [
    "SKIP_DUPLICATE_CHECK",
    "SLUG_PATTERN",
    "Catalogue",
    "Checklist",
    "Duration",
    "Escalation",
    "Playbook",
    "PlaybookRequest",
    "Priority",
    "Resource",
    "ResourceKind",
    "Severity",
]

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"

#: Validation context key: the loader reports duplicate ids itself, with their lines.
SKIP_DUPLICATE_CHECK = "skip_duplicate_check"

ResourceKind = Literal["personnel", "infrastructure", "information"]
Priority = Literal["low", "normal", "high", "critical"]
#: CAP 1.2 ``<severity>`` values (``Unknown`` is left out: a playbook always knows its default).
Severity = Literal["minor", "moderate", "severe", "extreme"]

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=64)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def _to_timedelta(value: object) -> timedelta:
    """Accept the playbook spelling (``"30m"``) or an already valid timedelta, nothing else.

    Numbers are refused on purpose: ``30`` could mean seconds or minutes, and YAML 1.1 reads
    ``1:30`` as the integer 90.
    """
    if isinstance(value, timedelta):
        return _check_timedelta(value)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration_type",
            "expected a duration string such as '30m' or '2h', got {type} {value}",
            {"type": type(value).__name__, "value": repr(value)},
        )
    try:
        return parse_duration(value)
    except ValueError as exc:
        # The reason goes in the context, not the template: user text may contain braces.
        raise PydanticCustomError("duration", "{reason}", {"reason": str(exc)}) from None


def _check_timedelta(td: timedelta) -> timedelta:
    if td <= timedelta(0) or td > MAX_DURATION or td.microseconds:
        raise PydanticCustomError(
            "duration",
            "duration must be a positive whole number of seconds, at most {limit}",
            {"limit": format_duration(MAX_DURATION)},
        )
    return td


#: A positive duration of at most 30 days, written ``<int><s|m|h|d>`` in YAML and in JSON.
Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30m", "2h"]}),
]


class _Model(BaseModel):
    # strict: YAML guesses types ("yes" is a bool, 1:30 an int); a playbook says what it means.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Resource(_Model):
    """One typed resource cities can ask for and offer, e.g. ``generator-100kw``."""

    id: Slug = Field(description="Stable lowercase slug, e.g. 'swift-water-rescue-team'.")
    kind: ResourceKind
    unit: Slug = Field(description="What one unit of quantity is: team, person, truck, pallet…")
    description: Text


class Catalogue(_Model):
    """The resource catalogue: every resource a playbook or a request may name."""

    resources: list[Resource] = Field(min_length=1)

    _by_id: dict[str, Resource] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _index_unique_ids(self, info: ValidationInfo) -> Catalogue:
        by_id: dict[str, Resource] = {}
        duplicates: list[str] = []
        for resource in self.resources:
            if resource.id in by_id:
                duplicates.append(resource.id)
            by_id.setdefault(resource.id, resource)
        skip = bool(info.context and info.context.get(SKIP_DUPLICATE_CHECK))
        if duplicates and not skip:
            raise ValueError(f"duplicate resource ids: {', '.join(sorted(set(duplicates)))}")
        self._by_id = by_id
        return self

    def get(self, resource_id: str) -> Resource | None:
        return self._by_id.get(resource_id)

    def __contains__(self, resource_id: object) -> bool:
        return resource_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        """Resource ids in catalogue order."""
        return list(self._by_id)

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Catalogued ids that look like ``name``, best first, for "did you mean" hints."""
        return difflib.get_close_matches(name, self.ids(), n=n)


class PlaybookRequest(_Model):
    """A request a playbook raises when an incident of its type is declared."""

    resource: Slug = Field(description="A resource id from the catalogue.")
    quantity: int = Field(ge=1, le=10_000, description="How many units of the resource.")
    priority: Priority
    needed_within: Duration = Field(
        description="How soon after declaration the resource is needed; sets needed_by."
    )
    notes: Notes | None = None


class Escalation(_Model):
    """How an unclaimed request widens its reach, ring by ring."""

    ring0_radius_km: float = Field(
        gt=0,
        le=20_000,
        description="Ring 0 is the cities of the requesting city's networks within this radius.",
    )
    ring_intervals: list[Duration] = Field(
        max_length=2,
        description=(
            "ring_intervals[i] is how long a request waits unclaimed in ring i before moving "
            "to ring i + 1; the ring after the last interval is final."
        ),
    )


class Checklist(_Model):
    """Information the manager should gather, e.g. gauge levels or shelter occupancy."""

    title: Title
    items: list[Text] = Field(min_length=1, max_length=50)


class Playbook(_Model):
    """Everything declared for one incident type: requests, escalation and claim timeouts."""

    incident_type: Slug
    title: Title
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
    ]
    default_severity: Severity
    escalation: Escalation
    claim_acceptance_timeout: Duration = Field(
        description="A claim the manager has not accepted within this expires."
    )
    requests: list[PlaybookRequest] = Field(min_length=1, max_length=20)
    checklists: list[Checklist] = Field(default_factory=list, max_length=20)
