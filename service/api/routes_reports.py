"""After-action reports (JSON and CSV) and situation reports. Thin: each route validates,
calls one command, answers. Who may read a report is who may read its incident."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from service.api.deps import CurrentActor, IdPath, Limit, ManagerActor, Offset, Parts
from service.commands import reports, sitreps
from service.domain.reports import iso, report_csv, request_row
from service.edge import MAX_ID
from service.models import Input, Page, PlainDigits, UtcTime
from service.persistence.tables import Sitrep

router = APIRouter(tags=["reports"])

Iso = Annotated[str, Field(description="ISO 8601 with its UTC offset")]
NumberPath = Annotated[int, PlainDigits, Path(ge=1, le=MAX_ID)]


class RingEntryPublic(BaseModel):
    ring: int
    entered_at: Iso


class PassEntryPublic(BaseModel):
    city_id: int
    ring: int = Field(description="the ring the request was in when the city passed")
    passed_at: Iso


class RequestClocksPublic(BaseModel):
    request_id: int
    resource: str
    kind: str
    quantity: int
    status: str
    claimed_quantity: int
    delivered_quantity: int
    raised_at: Iso
    first_claim_at: Iso | None
    filled_at: Iso | None = Field(description="every unit committed")
    all_on_site_at: Iso | None = Field(description="`request.fulfilled`")
    ended_at: Iso | None = Field(description="cancelled or expired")
    seconds_to_first_claim: float | None
    seconds_to_fill: float | None
    seconds_to_all_on_site: float | None
    escalation_count: int
    rings: list[RingEntryPublic]
    passes: list[PassEntryPublic] = Field(description="the targeted cities that passed on it")
    helping_city_ids: list[int]


class ClaimHistoryPublic(BaseModel):
    claim_id: int
    request_id: int
    city_id: int
    city_name: str
    quantity: int
    status: str
    made_at: Iso
    status_at: dict[str, Iso] = Field(description="when the claim first reached each status")


class CityContributionPublic(BaseModel):
    city_id: int
    city_name: str
    claim_count: int
    units_claimed: int
    units_on_site: int
    declined_count: int
    withdrawn_count: int
    expired_count: int
    pass_count: int = Field(description="requests the city passed on")
    first_claim_at: Iso | None
    last_change_at: Iso | None
    resources: dict[str, int] = Field(description="units claimed per resource")


class TimelineEntryPublic(BaseModel):
    seq: int
    at: Iso
    type: str
    city_id: int | None = Field(description="the acting city; null for aidmesh itself")
    request_id: int | None
    claim_id: int | None
    status: str | None


class CountsPublic(BaseModel):
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


class ClockFiguresPublic(BaseModel):
    """The track record's figures for this incident alone (nearest-rank percentiles)."""

    first_claim_p50_s: float | None
    first_claim_p90_s: float | None
    fill_p50_s: float | None = Field(description="to `request.fulfilled`")
    fill_p90_s: float | None
    fill_rate: float | None
    expired_unfilled_count: int
    escalation_count: int


class ReportIncidentPublic(BaseModel):
    id: int
    title: str
    incident_type: str
    severity: str
    exercise: bool
    status: str
    city_id: int
    city_name: str
    declared_at: Iso
    closed_at: Iso | None


class ReportPublic(BaseModel):
    incident: ReportIncidentPublic
    generated_at: Iso
    counts: CountsPublic
    clocks: ClockFiguresPublic
    requests: list[RequestClocksPublic]
    claims: list[ClaimHistoryPublic]
    cities: list[CityContributionPublic]
    timeline: list[TimelineEntryPublic]
    charts: dict[str, str] = Field(
        description="`fill`, `claims` and `flow` as inline SVG documents; empty when `charts=false`"
    )


def report_json(found: reports.IncidentReport) -> dict[str, Any]:
    """The report as the JSON route answers it (also what the CSV must agree with)."""
    r, names, incident = found.report, found.city_names, found.incident

    def name(city_id: int) -> str:
        return names.get(city_id, f"city {city_id}")

    record = r.record
    return {
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "incident_type": incident.incident_type,
            "severity": incident.severity,
            "exercise": incident.exercise,
            "status": incident.status,
            "city_id": incident.city_id,
            "city_name": name(incident.city_id),
            "declared_at": iso(incident.declared_at),
            "closed_at": iso(incident.closed_at),
        },
        "generated_at": iso(r.generated_at),
        "counts": asdict(r.counts),
        "clocks": {
            "first_claim_p50_s": record.first_claim_p50_s,
            "first_claim_p90_s": record.first_claim_p90_s,
            "fill_p50_s": record.fill_p50_s,
            "fill_p90_s": record.fill_p90_s,
            "fill_rate": record.fill_rate,
            "expired_unfilled_count": record.expired_unfilled_count,
            "escalation_count": record.escalation_count,
        },
        "requests": [request_row(q) for q in r.requests],
        "claims": [
            {
                "claim_id": c.claim_id,
                "request_id": c.request_id,
                "city_id": c.city_id,
                "city_name": name(c.city_id),
                "quantity": c.quantity,
                "status": c.status,
                "made_at": iso(c.made_at),
                "status_at": {s: iso(at) for s, at in c.status_at.items()},
            }
            for c in r.claims
        ],
        "cities": [
            {
                "city_id": c.city_id,
                "city_name": name(c.city_id),
                "claim_count": c.claim_count,
                "units_claimed": c.units_claimed,
                "units_on_site": c.units_on_site,
                "declined_count": c.declined_count,
                "withdrawn_count": c.withdrawn_count,
                "expired_count": c.expired_count,
                "pass_count": c.pass_count,
                "first_claim_at": iso(c.first_claim_at),
                "last_change_at": iso(c.last_change_at),
                "resources": dict(c.resources),
            }
            for c in r.cities
        ],
        "timeline": [
            {
                "seq": e.seq,
                "at": iso(e.at),
                "type": e.type,
                "city_id": e.city_id,
                "request_id": e.request_id,
                "claim_id": e.claim_id,
                "status": e.status,
            }
            for e in r.timeline
        ],
        "charts": found.charts,
    }


@router.get("/incidents/{incident_id}/report", response_model=ReportPublic)
async def get_report(
    incident_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    charts: Annotated[bool, Query(description="Draw the SVG charts.")] = True,
) -> Response:
    """The after-action report: the timeline, each request's clocks (raised, first claim,
    filled, all on site) and rings, who helped with what and when, passes, declines,
    expiries and escalations, each city's contribution, and the charts. Readable by whoever may read
    the incident, during it as well as after."""
    found = await parts.executor.read(actor, reports.incident_report, incident_id, charts)
    # Built as plain JSON values of the documented shape and encoded once: validating a
    # report of tens of thousands of rows against its model again would cost more than
    # computing it (tests/reports check the shape against ReportPublic).
    return Response(orjson.dumps(report_json(found)), media_type="application/json")


@router.get(
    "/incidents/{incident_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per request."}},
)
async def get_report_csv(incident_id: IdPath, actor: CurrentActor, parts: Parts) -> Response:
    """Each request's clocks as CSV, the same figures as the JSON report's `requests`."""
    found = await parts.executor.read(actor, reports.incident_report, incident_id, False)
    return Response(
        report_csv(found.report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="incident-{incident_id}-report.csv"'
        },
    )


# Situation reports ----------------------------------------------------------------------------


class SitrepCreate(Input):
    period_from: UtcTime = Field(description="Start of the period, with a time zone.")
    period_to: UtcTime | None = Field(
        default=None, description="End of the period, with a time zone; now when left out."
    )


class SitrepPublic(BaseModel):
    id: int
    incident_id: int
    number: int
    period_from: Iso
    period_to: Iso
    prepared_by_city_id: int
    published_at: Iso
    document: dict[str, Any] = Field(
        description="The frozen report in EDXL-SitRep's element names: its header and "
        "ResponseResourcesTotals (requested, committed, on site per resource)."
    )


def _sitrep(row: Sitrep) -> SitrepPublic:
    return SitrepPublic(
        id=row.id or 0,
        incident_id=row.incident_id,
        number=row.number,
        period_from=iso(row.period_from) or "",
        period_to=iso(row.period_to) or "",
        prepared_by_city_id=row.prepared_by_city_id,
        published_at=iso(row.published_at) or "",
        document=row.body,
    )


@router.post(
    "/incidents/{incident_id}/sitreps",
    response_model=SitrepPublic,
    status_code=status.HTTP_201_CREATED,
)
async def publish_sitrep(
    incident_id: IdPath, body: SitrepCreate, actor: ManagerActor, parts: Parts
) -> SitrepPublic:
    """Freeze the incident's next numbered situation report for the period: a manager of
    the incident's city. Published reports never change; `sitrep.published` goes live."""
    row = await parts.executor.run(
        actor, sitreps.publish_sitrep, incident_id, body.period_from, body.period_to
    )
    return _sitrep(row)


@router.get("/incidents/{incident_id}/sitreps", response_model=Page[SitrepPublic])
async def list_sitreps(
    incident_id: IdPath, actor: CurrentActor, parts: Parts, limit: Limit = 50, offset: Offset = 0
) -> Page[SitrepPublic]:
    """The incident's situation reports, newest first."""
    rows, total = await parts.executor.read(actor, sitreps.list_sitreps, incident_id, limit, offset)
    data = [_sitrep(r) for r in rows]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[SitrepPublic](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


@router.get("/incidents/{incident_id}/sitreps/{number}", response_model=SitrepPublic)
async def get_sitrep(
    incident_id: IdPath, number: NumberPath, actor: CurrentActor, parts: Parts
) -> SitrepPublic:
    return _sitrep(await parts.executor.read(actor, sitreps.get_sitrep, incident_id, number))
