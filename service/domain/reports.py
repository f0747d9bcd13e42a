"""After-action reports and situation-report totals: what happened in an incident, folded
from its events alone. Pure: the command that reads the events hands plain values in, and
`now` is an argument wherever a clock is needed.

Clocks per request: raised, first claim, filled (every unit committed), all on site
(`request.fulfilled`). The raised, first-claim and on-site clocks are the track records'
(`request_timelines`), so a report and a track record never disagree.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from service.domain.events import EventType
from service.domain.track_records import TrackRecord, request_timelines, track_record


class RequestSnapshot(NamedTuple):
    """The fields of an event's `request` the report reads."""

    id: int
    resource: str
    kind: str
    quantity: int
    claimed_quantity: int
    delivered_quantity: int
    status: str
    ring: int


class ClaimSnapshot(NamedTuple):
    """The fields of an event's `claim` the report reads."""

    id: int
    request_id: int
    city_id: int
    quantity: int
    status: str


class ReportEvent(NamedTuple):
    """One event as the report reads it: only the fields it needs, so a store can hand
    them over without decoding whole event bodies (a large incident has tens of
    thousands of events). Tuples, for the same reason."""

    seq: int
    type: str
    occurred_at: datetime
    actor_city_id: int | None
    request: RequestSnapshot | None = None
    claim: ClaimSnapshot | None = None
    to_ring: int | None = None  # `request.escalated`

    @property
    def data(self) -> Mapping[str, Any]:
        """As much of the event's body as `request_timelines` reads."""
        return {"request": {"id": self.request.id}} if self.request is not None else {}


class RingEntry(NamedTuple):
    ring: int
    entered_at: datetime


class PassEntry(NamedTuple):
    """A targeted city passed on the request (its reason stays out of the report)."""

    city_id: int
    ring: int
    passed_at: datetime


@dataclass(slots=True)
class RequestClocks:
    request_id: int
    resource: str
    kind: str
    quantity: int
    status: str
    claimed_quantity: int
    delivered_quantity: int
    raised_at: datetime
    first_claim_at: datetime | None = None
    filled_at: datetime | None = None  # every unit committed
    all_on_site_at: datetime | None = None  # `request.fulfilled`
    ended_at: datetime | None = None  # cancelled or expired
    escalation_count: int = 0
    rings: list[RingEntry] = field(default_factory=list)
    passes: list[PassEntry] = field(default_factory=list)
    # (when, units committed) at each change of the committed units.
    fill_series: list[tuple[datetime, int]] = field(default_factory=list)
    helping_city_ids: list[int] = field(default_factory=list)

    def seconds_to(self, at: datetime | None) -> float | None:
        return None if at is None else (at - self.raised_at).total_seconds()


@dataclass(slots=True)
class ClaimHistory:
    claim_id: int
    request_id: int
    city_id: int
    quantity: int
    status: str
    made_at: datetime
    # The first time the claim reached each later status.
    status_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class CityContribution:
    city_id: int
    claim_count: int = 0
    units_claimed: int = 0
    units_on_site: int = 0
    declined_count: int = 0
    withdrawn_count: int = 0
    expired_count: int = 0
    pass_count: int = 0
    first_claim_at: datetime | None = None
    last_change_at: datetime | None = None
    # Units per resource, counted when the claim was made.
    resources: dict[str, int] = field(default_factory=dict)


class TimelineEntry(NamedTuple):
    seq: int
    at: datetime
    type: str
    city_id: int | None
    request_id: int | None
    claim_id: int | None
    status: str | None  # the claim's or request's status after the event


@dataclass(frozen=True, slots=True)
class ReportCounts:
    requests: int
    claims: int
    escalations: int
    passes: int
    declines: int
    withdrawals: int
    claim_expiries: int
    request_expiries: int
    cancellations: int
    fulfilled: int


@dataclass(frozen=True, slots=True)
class AfterActionReport:
    incident_id: int
    requesting_city_id: int
    generated_at: datetime
    requests: list[RequestClocks]
    claims: list[ClaimHistory]
    cities: list[CityContribution]
    timeline: list[TimelineEntry]
    counts: ReportCounts
    record: TrackRecord


_ENDS_OF_CLAIM = {"declined": "declined_count", "withdrawn": "withdrawn_count"}
# Plain strings: the fold compares every event's type with them.
_ESCALATED = EventType.REQUEST_ESCALATED.value
_PASSED = EventType.REQUEST_PASSED.value
_ENDS_OF_REQUEST = frozenset({EventType.REQUEST_CANCELLED.value, EventType.REQUEST_EXPIRED.value})


@dataclass
class _Fold:
    requests: dict[int, RequestClocks] = field(default_factory=dict)
    claims: dict[int, ClaimHistory] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)

    def request(self, snapshot: RequestSnapshot, at: datetime) -> RequestClocks:
        clocks = self.requests.get(snapshot.id)
        if clocks is None:
            clocks = RequestClocks(
                request_id=snapshot.id,
                resource=snapshot.resource,
                kind=snapshot.kind,
                quantity=snapshot.quantity,
                status=snapshot.status,
                claimed_quantity=0,
                delivered_quantity=0,
                raised_at=at,
                rings=[RingEntry(snapshot.ring, at)],
                fill_series=[(at, 0)],
            )
            self.requests[snapshot.id] = clocks
        clocks.quantity = snapshot.quantity
        clocks.status = snapshot.status
        claimed = snapshot.claimed_quantity
        if claimed != clocks.claimed_quantity:
            clocks.fill_series.append((at, claimed))
        clocks.claimed_quantity = claimed
        clocks.delivered_quantity = snapshot.delivered_quantity
        if clocks.filled_at is None and clocks.quantity and claimed >= clocks.quantity:
            clocks.filled_at = at
        return clocks

    def claim(self, snapshot: ClaimSnapshot, at: datetime) -> ClaimHistory:
        history = self.claims.get(snapshot.id)
        status = snapshot.status
        if history is None:
            history = ClaimHistory(
                claim_id=snapshot.id,
                request_id=snapshot.request_id,
                city_id=snapshot.city_id,
                quantity=snapshot.quantity,
                status=status,
                made_at=at,
            )
            self.claims[snapshot.id] = history
        elif status != history.status:
            history.status_at.setdefault(status, at)
        history.status = status
        return history

    def add(self, event: ReportEvent) -> None:
        at = event.occurred_at
        clocks = self.request(event.request, at) if event.request is not None else None
        history = self.claim(event.claim, at) if event.claim is not None else None
        if clocks is not None:
            if event.type == _ESCALATED:
                to_ring = event.to_ring
                clocks.rings.append(
                    RingEntry(clocks.rings[-1].ring + 1 if to_ring is None else to_ring, at)
                )
            elif event.type in _ENDS_OF_REQUEST:
                clocks.ended_at = event.occurred_at
            elif event.type == _PASSED and event.actor_city_id is not None:
                # The event's request is as the pass found it: its ring is the one passed on.
                ring = clocks.rings[-1].ring
                clocks.passes.append(PassEntry(event.actor_city_id, ring, at))
            if history is not None and history.city_id not in clocks.helping_city_ids:
                clocks.helping_city_ids.append(history.city_id)
        status = history.status if history is not None else (clocks.status if clocks else None)
        self.timeline.append(
            TimelineEntry(
                event.seq,
                at,
                event.type,
                event.actor_city_id,
                clocks.request_id if clocks else None,
                history.claim_id if history else None,
                status,
            )
        )


def fold_requests(events: Iterable[ReportEvent]) -> _Fold:
    fold = _Fold()
    for event in events:
        fold.add(event)
    return fold


def after_action_report(
    incident_id: int,
    requesting_city_id: int,
    events: Sequence[ReportEvent],
    now: datetime,
) -> AfterActionReport:
    """The report of one incident from its events, in seq order."""
    fold = fold_requests(events)
    timelines = request_timelines((incident_id, e.type, e.occurred_at, e.data) for e in events)
    for (_, request_id), timeline in timelines.items():
        clocks = fold.requests.get(request_id)
        if clocks is not None:
            clocks.raised_at = timeline.raised_at
            clocks.first_claim_at = timeline.first_claim_at
            clocks.all_on_site_at = timeline.fulfilled_at
            clocks.escalation_count = timeline.escalation_count
    requests = sorted(fold.requests.values(), key=lambda r: r.request_id)
    claims = sorted(fold.claims.values(), key=lambda c: c.claim_id)
    return AfterActionReport(
        incident_id=incident_id,
        requesting_city_id=requesting_city_id,
        generated_at=now,
        requests=requests,
        claims=claims,
        cities=contributions(claims, fold.requests),
        timeline=fold.timeline,
        counts=_counts(events, requests, claims),
        record=track_record(1, timelines.values()),
    )


def contributions(
    claims: Iterable[ClaimHistory], requests: Mapping[int, RequestClocks]
) -> list[CityContribution]:
    """Each helping city's part, most units on site first. A city that only passed is
    listed too, with its passes."""
    cities: dict[int, CityContribution] = {}
    for clocks in requests.values():
        for passed in clocks.passes:
            city = cities.setdefault(passed.city_id, CityContribution(passed.city_id))
            city.pass_count += 1
    for claim in claims:
        city = cities.setdefault(claim.city_id, CityContribution(claim.city_id))
        city.claim_count += 1
        city.units_claimed += claim.quantity
        if "on_site" in claim.status_at:
            city.units_on_site += claim.quantity
        attr = _ENDS_OF_CLAIM.get(claim.status)
        if attr is not None:
            setattr(city, attr, getattr(city, attr) + 1)
        if claim.status == "expired":
            city.expired_count += 1
        if city.first_claim_at is None or claim.made_at < city.first_claim_at:
            city.first_claim_at = claim.made_at
        last = max([claim.made_at, *claim.status_at.values()])
        if city.last_change_at is None or last > city.last_change_at:
            city.last_change_at = last
        request = requests.get(claim.request_id)
        resource = request.resource if request is not None else "?"
        city.resources[resource] = city.resources.get(resource, 0) + claim.quantity
    return sorted(cities.values(), key=lambda c: (-c.units_on_site, -c.units_claimed, c.city_id))


def _counts(
    events: Sequence[ReportEvent], requests: list[RequestClocks], claims: list[ClaimHistory]
) -> ReportCounts:
    types = Counter(e.type for e in events)
    ends = Counter(c.status for c in claims)
    return ReportCounts(
        requests=len(requests),
        claims=len(claims),
        escalations=types[EventType.REQUEST_ESCALATED.value],
        passes=types[_PASSED],
        declines=ends["declined"],
        withdrawals=ends["withdrawn"],
        claim_expiries=ends["expired"],
        request_expiries=types[EventType.REQUEST_EXPIRED.value],
        cancellations=types[EventType.REQUEST_CANCELLED.value],
        fulfilled=types[EventType.REQUEST_FULFILLED.value],
    )


# CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "request_id",
    "resource",
    "kind",
    "quantity",
    "status",
    "claimed_quantity",
    "delivered_quantity",
    "raised_at",
    "first_claim_at",
    "filled_at",
    "all_on_site_at",
    "ended_at",
    "seconds_to_first_claim",
    "seconds_to_fill",
    "seconds_to_all_on_site",
    "escalation_count",
    "rings",
    "passes",
    "helping_city_ids",
)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 with its offset (`+00:00`, never a bare time)."""
    return None if at is None else at.isoformat()


def request_row(r: RequestClocks) -> dict[str, Any]:
    """One request's clocks as the JSON report and the CSV both give them."""
    return {
        "request_id": r.request_id,
        "resource": r.resource,
        "kind": r.kind,
        "quantity": r.quantity,
        "status": r.status,
        "claimed_quantity": r.claimed_quantity,
        "delivered_quantity": r.delivered_quantity,
        "raised_at": iso(r.raised_at),
        "first_claim_at": iso(r.first_claim_at),
        "filled_at": iso(r.filled_at),
        "all_on_site_at": iso(r.all_on_site_at),
        "ended_at": iso(r.ended_at),
        "seconds_to_first_claim": r.seconds_to(r.first_claim_at),
        "seconds_to_fill": r.seconds_to(r.filled_at),
        "seconds_to_all_on_site": r.seconds_to(r.all_on_site_at),
        "escalation_count": r.escalation_count,
        "rings": [{"ring": e.ring, "entered_at": iso(e.entered_at)} for e in r.rings],
        "passes": [
            {"city_id": p.city_id, "ring": p.ring, "passed_at": iso(p.passed_at)} for p in r.passes
        ],
        "helping_city_ids": list(r.helping_city_ids),
    }


def report_csv(report: AfterActionReport) -> str:
    """One row per request; rings as `ring@time` and passes as `city@time`, each joined by
    `;`, cities by `;`, empty cells for clocks that never stopped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.requests:
        row = request_row(r)
        row["rings"] = ";".join(f"{e['ring']}@{e['entered_at']}" for e in row["rings"])
        row["passes"] = ";".join(f"{p['city_id']}@{p['passed_at']}" for p in row["passes"])
        row["helping_city_ids"] = ";".join(str(c) for c in row["helping_city_ids"])
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


# Situation reports ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceTotals:
    """EDXL-SitRep's response resource totals for one resource, at the end of a period."""

    resource: str
    kind: str
    requested: int  # units asked for by requests raised up to the end (cancelled ones apart)
    requested_in_period: int  # of which raised within the period
    committed: int  # units claimed and not given back
    on_site: int  # units delivered


def resource_totals(
    events: Iterable[ReportEvent], period_from: datetime, period_to: datetime
) -> list[ResourceTotals]:
    """The totals per resource as the events up to `period_to` leave them."""
    fold = fold_requests(e for e in events if e.occurred_at <= period_to)
    totals: dict[str, list[Any]] = {}
    for r in fold.requests.values():
        if r.status == "cancelled":
            continue
        t = totals.setdefault(r.resource, [r.kind, 0, 0, 0, 0])
        t[1] += r.quantity
        if r.raised_at >= period_from:
            t[2] += r.quantity
        t[3] += r.claimed_quantity
        t[4] += r.delivered_quantity
    return [
        ResourceTotals(resource, kind, requested, in_period, committed, on_site)
        for resource, (kind, requested, in_period, committed, on_site) in sorted(totals.items())
    ]
