"""Situation reports: a manager of the incident's city freezes a numbered report for a
period; earlier ones stay as they were published."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from service.commands.context import (
    CommandContext,
    lock_incident,
    require_city,
    visible_incident,
)
from service.commands.reports import city_names, report_events
from service.domain.actors import Role
from service.domain.errors import Forbidden, Invalid, NotFound
from service.domain.events import EventType
from service.domain.reports import iso, resource_totals
from service.interop.edxl_sitrep import Preparer, SitrepHeader, sitrep_document
from service.persistence.tables import ApiToken, Sitrep


def publish_sitrep(
    ctx: CommandContext, incident_id: int, period_from: datetime, period_to: datetime | None
) -> Sitrep:
    """Freeze the next numbered report of the incident for [period_from, period_to]
    (`period_to` defaults to now), and emit `sitrep.published`."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    visible_incident(ctx.session, ctx.actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    if incident.city_id != city_id:
        raise Forbidden("only a manager of the incident's city publishes its situation reports")
    end = period_to or ctx.now
    if period_from >= end:
        raise Invalid("the period must start before it ends ('from' < 'to')")
    if end > ctx.now:
        raise Invalid(f"the period cannot end in the future (now is {iso(ctx.now)})")
    last = ctx.session.exec(
        select(func.max(Sitrep.number)).where(col(Sitrep.incident_id) == incident_id)
    ).one()
    number = int(last or 0) + 1
    names = city_names(ctx.session, [city_id])
    token = ctx.session.get(ApiToken, ctx.actor.token_id) if ctx.actor.token_id else None
    header = SitrepHeader(
        incident_id=incident_id,
        incident_title=incident.title,
        severity=incident.severity,
        exercise=incident.exercise,
        number=number,
        period_from=period_from,
        period_to=end,
        published_at=ctx.now,
        prepared_by=Preparer(
            city_id,
            names.get(city_id, ""),
            ctx.actor.role.value,
            ctx.actor.token_id,
            token.label if token is not None else "",
        ),
    )
    totals = resource_totals(report_events(ctx.session, incident_id), period_from, end)
    row = Sitrep(
        incident_id=incident_id,
        number=number,
        period_from=period_from,
        period_to=end,
        prepared_by_token_id=ctx.actor.token_id,
        prepared_by_city_id=city_id,
        published_at=ctx.now,
        body=sitrep_document(header, totals),
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.emit(incident, EventType.SITREP_PUBLISHED, {"sitrep": summary(row)}, cities=[city_id])
    return row


def summary(row: Sitrep) -> dict[str, object]:
    """What the event carries: enough to link to the report, not the report itself."""
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "number": row.number,
        "period_from": iso(row.period_from),
        "period_to": iso(row.period_to),
        "published_at": iso(row.published_at),
        "prepared_by_city_id": row.prepared_by_city_id,
    }


def list_sitreps(
    ctx: CommandContext, incident_id: int, limit: int, offset: int
) -> tuple[list[Sitrep], int]:
    """The incident's reports, newest first, and how many there are."""
    visible_incident(ctx.session, ctx.actor, incident_id)
    where = col(Sitrep.incident_id) == incident_id
    total = ctx.session.exec(select(func.count()).select_from(Sitrep).where(where)).one()
    rows = ctx.session.exec(
        select(Sitrep).where(where).order_by(col(Sitrep.number).desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def get_sitrep(ctx: CommandContext, incident_id: int, number: int) -> Sitrep:
    visible_incident(ctx.session, ctx.actor, incident_id)
    row = ctx.session.exec(
        select(Sitrep).where(col(Sitrep.incident_id) == incident_id, col(Sitrep.number) == number)
    ).one_or_none()
    if row is None:
        raise NotFound(f"situation report {number} of incident {incident_id} not found")
    return row
