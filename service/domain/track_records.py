"""Track records: how the requests a playbook version raised went, from the times their
events carry. Pure: the command that reads the events hands plain timelines in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.events import EventType


@dataclass(frozen=True, slots=True)
class RequestTimeline:
    """One request, as its events tell it."""

    raised_at: datetime
    first_claim_at: datetime | None
    fulfilled_at: datetime | None
    expired: bool
    escalation_count: int


@dataclass(frozen=True, slots=True)
class TrackRecord:
    incident_count: int
    request_count: int
    first_claim_p50_s: float | None
    first_claim_p90_s: float | None
    fill_p50_s: float | None
    fill_p90_s: float | None
    fill_rate: float | None  # fulfilled requests / requests raised
    expired_unfilled_count: int
    escalation_count: int


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least `fraction` of the
    values at or below it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def track_record(incident_count: int, requests: Iterable[RequestTimeline]) -> TrackRecord:
    timelines = list(requests)
    to_claim = [
        (r.first_claim_at - r.raised_at).total_seconds()
        for r in timelines
        if r.first_claim_at is not None
    ]
    to_fill = [
        (r.fulfilled_at - r.raised_at).total_seconds()
        for r in timelines
        if r.fulfilled_at is not None
    ]
    return TrackRecord(
        incident_count=incident_count,
        request_count=len(timelines),
        first_claim_p50_s=percentile(to_claim, 0.5),
        first_claim_p90_s=percentile(to_claim, 0.9),
        fill_p50_s=percentile(to_fill, 0.5),
        fill_p90_s=percentile(to_fill, 0.9),
        fill_rate=round(len(to_fill) / len(timelines), 4) if timelines else None,
        expired_unfilled_count=sum(1 for r in timelines if r.expired and r.fulfilled_at is None),
        escalation_count=sum(r.escalation_count for r in timelines),
    )


# The event types a timeline reads.
TIMED_EVENT_TYPES: tuple[str, ...] = (
    EventType.REQUEST_RAISED,
    EventType.CLAIM_MADE,
    EventType.REQUEST_FULFILLED,
    EventType.REQUEST_EXPIRED,
    EventType.REQUEST_ESCALATED,
)


def request_timelines(
    events: Iterable[tuple[int, str, datetime, Mapping[str, Any]]],
) -> dict[tuple[int, int], RequestTimeline]:
    """Each request's timeline, keyed by (incident id, request id), from its incidents'
    events as (incident id, type, occurred at, data), in seq order."""
    raised: dict[tuple[int, int], datetime] = {}
    first_claim: dict[tuple[int, int], datetime] = {}
    fulfilled: dict[tuple[int, int], datetime] = {}
    expired: set[tuple[int, int]] = set()
    escalations: dict[tuple[int, int], int] = {}
    for incident_id, type_, at, data in events:
        request = data.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("id"), int):
            continue
        key = (incident_id, request["id"])
        if type_ == EventType.REQUEST_RAISED:
            raised[key] = at
        elif type_ == EventType.CLAIM_MADE:
            first_claim.setdefault(key, at)
        elif type_ == EventType.REQUEST_FULFILLED:
            fulfilled[key] = at
        elif type_ == EventType.REQUEST_EXPIRED:
            expired.add(key)
        elif type_ == EventType.REQUEST_ESCALATED:
            escalations[key] = escalations.get(key, 0) + 1
    return {
        key: RequestTimeline(
            raised_at=at,
            first_claim_at=first_claim.get(key),
            fulfilled_at=fulfilled.get(key),
            expired=key in expired,
            escalation_count=escalations.get(key, 0),
        )
        for key, at in raised.items()
    }
