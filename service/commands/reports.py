"""After-action reports: read an incident's events (after the visibility check) and hand
them to the pure fold in `service.domain.reports`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col

from service.commands.context import CommandContext, visible_incident
from service.domain.report_charts import report_charts
from service.domain.reports import (
    AfterActionReport,
    ClaimSnapshot,
    ReportEvent,
    RequestSnapshot,
    after_action_report,
)
from service.persistence.tables import City, Event, Incident


@dataclass(frozen=True, slots=True)
class IncidentReport:
    incident: Incident
    report: AfterActionReport
    city_names: dict[int, str]
    charts: dict[str, str]


def report_events(session: Session, incident_id: int) -> list[ReportEvent]:
    """Every event of the incident, in seq order, as the report reads it: one statement
    in which the database picks the few fields the report needs out of each event's
    body, so no body is decoded here."""
    # PostgreSQL stores the bodies as `json` text, parsed again for every field taken out
    # of it: cast each body to `jsonb` once, in a subquery kept apart by OFFSET 0 so the
    # planner cannot fold it into the outer query and cast once per field again.
    postgres = session.get_bind().dialect.name == "postgresql"
    body = sa.cast(col(Event.data), JSONB) if postgres else col(Event.data)
    events = (
        sa.select(
            col(Event.seq).label("seq"),
            col(Event.type).label("type"),
            col(Event.occurred_at).label("occurred_at"),
            col(Event.actor_city_id).label("actor_city_id"),
            body.label("body"),
        )
        .where(col(Event.incident_id) == incident_id)
        .offset(0)
        .subquery()
    )
    data = events.c.body

    def number(*path: str) -> Any:
        return data[path].as_integer()

    def text(*path: str) -> Any:
        return data[path].as_string()

    rows = session.execute(
        sa.select(
            events.c.seq,
            events.c.type,
            events.c.occurred_at,
            events.c.actor_city_id,
            number("request", "id"),
            text("request", "resource"),
            text("request", "kind"),
            number("request", "quantity"),
            number("request", "claimed_quantity"),
            number("request", "delivered_quantity"),
            text("request", "status"),
            number("request", "ring"),
            number("claim", "id"),
            number("claim", "request_id"),
            number("claim", "city_id"),
            number("claim", "quantity"),
            text("claim", "status"),
            number("to_ring"),
        ).order_by(events.c.seq)
    ).all()
    return [
        ReportEvent(
            row[0],
            row[1],
            row[2],
            row[3],
            RequestSnapshot(*row[4:12]) if row[4] is not None else None,
            ClaimSnapshot(*row[12:17]) if row[12] is not None else None,
            row[17],
        )
        for row in rows
    ]


def city_names(session: Session, city_ids: Iterable[int]) -> dict[int, str]:
    ids = set(city_ids)
    if not ids:
        return {}
    rows = session.execute(sa.select(col(City.id), col(City.name)).where(col(City.id).in_(ids)))
    return {int(city_id): str(name) for city_id, name in rows.all()}


def incident_report(ctx: CommandContext, incident_id: int, charts: bool = True) -> IncidentReport:
    """The after-action report of an incident the actor may see (else NotFound)."""
    incident = visible_incident(ctx.session, ctx.actor, incident_id)
    events = report_events(ctx.session, incident_id)
    report = after_action_report(incident_id, incident.city_id, events, ctx.now)
    names = city_names(
        ctx.session,
        [incident.city_id, *(c.city_id for c in report.cities)]
        + [e.city_id for e in report.timeline if e.city_id is not None],
    )
    drawn = report_charts(report, names) if charts else {}
    return IncidentReport(incident, report, names, drawn)
