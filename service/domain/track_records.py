"""Track records: how the requests a playbook version raised went, from the times their
events carry. Pure: the command that reads the events hands plain timelines in."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


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
