"""Matching: for each open request, the packages of the cities it targets that hold its
resource available now. Shown to the requesting city (who could help); the cities read
the same from their own roster on their inbox (your roster has this)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import TextClause, bindparam, func, text
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from service.commands.context import CommandContext, visible_incident
from service.domain import lifecycles as lc
from service.domain import rosters as rules
from service.domain.claims import ring_reaches
from service.domain.errors import Forbidden, NotFound
from service.models import LenderPublic, Page, RequestMatches
from service.persistence.columns import UTCDateTime
from service.persistence.tables import AidRequest, Incident

_OPEN = sorted(s.value for s in lc.CLAIMABLE_REQUEST_STATUSES)


def _requesting_city(ctx: CommandContext, incident: Incident) -> None:
    if not ctx.actor.is_admin and ctx.actor.city_id != incident.city_id:
        raise Forbidden("who could help is shown to the requesting city")


@dataclass(frozen=True, slots=True)
class Found:
    """A request's first lenders, how many there are, and what the reached ones hold."""

    lenders: list[rules.Lender]
    count: int = 0
    reached_quantity: int = 0


# Who could help with each request, as SQL: `rules.who_could_help` ranks the packages of
# the cities a request targets that hold its resource with units left under the cap and
# can lend now (`rules.available_now`); a request reaches a city when the city's ring is
# within the request's (`ring_reaches`). Only each request's first `top` lenders leave the
# database, with the count of all and the units the reached ones hold; the ranking is the
# rule's key, so the first are the rule's first (they are ranked again by the rule).
#
# Every target of every request takes part (100 requests of a network of 500 cities are
# 50,000 targets, some 20,000 lenders), so each backend gets the form it runs best:
#
# PostgreSQL: one set join, ranked by one window over narrow rows (the names are joined
# to the first ones only). The join is a hash or merge join over whole sets: without
# statistics (a freshly loaded database, autovacuum off) the planner takes the sets for
# a few rows and probes an index 20,000 times instead, ten times slower, so nested loops
# are turned off for this statement's transaction.
_RANKED_PG = """
SELECT z.request_id, z.city_id, z.ring, z.distance_km, z.package_id, n.name AS package_name,
       z.readiness_hours, z.remaining, z.total, z.reached
  FROM (SELECT t.request_id, t.city_id, t.ring, t.distance_km, p.id AS package_id,
               p.readiness_hours, i.cap_quantity - i.committed_quantity AS remaining,
               row_number() OVER ranked AS rank,
               count(*) OVER whole AS total,
               sum(CASE WHEN t.ring <= r.ring THEN i.cap_quantity - i.committed_quantity
                        ELSE 0 END) OVER whole AS reached
          FROM request_targets t
          JOIN aid_requests r ON r.id = t.request_id
          JOIN roster_packages p ON p.city_id = t.city_id
          JOIN package_items i ON i.package_id = p.id AND i.resource = r.resource
         WHERE t.request_id IN :ids AND r.id IN :ids
           AND i.committed_quantity < i.cap_quantity
           AND (p.available OR p.unavailable_until <= :now)
        WINDOW ranked AS (PARTITION BY t.request_id
                          ORDER BY t.ring, t.distance_km, p.readiness_hours, t.city_id, p.id),
               whole AS (ranked ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) z
  JOIN roster_packages n ON n.id = z.package_id
 WHERE z.rank <= :top"""

# SQLite (nested loops only): each request's lenders by index, its first `top` kept by a
# bounded sort instead of one sort of every lender of every request, as one JSON array a
# request (`%.17g`: the distance exactly, as JSON numbers keep 15 digits).
_RANKED_SQLITE = """
SELECT r.id AS request_id,
       (SELECT json_group_array(json_array(z.city_id, z.ring, printf('%.17g', z.distance_km),
                                           z.package_id, z.name, z.readiness_hours,
                                           z.remaining, z.total, z.reached))
          FROM (SELECT t.city_id, t.ring, t.distance_km, p.id AS package_id, p.name,
                       p.readiness_hours, i.cap_quantity - i.committed_quantity AS remaining,
                       count(*) OVER () AS total,
                       sum(CASE WHEN t.ring <= r.ring
                                THEN i.cap_quantity - i.committed_quantity ELSE 0 END)
                           OVER () AS reached
                  FROM request_targets t
                  JOIN roster_packages p ON p.city_id = t.city_id
                  JOIN package_items i ON i.package_id = p.id AND i.resource = r.resource
                 WHERE t.request_id = r.id AND i.committed_quantity < i.cap_quantity
                   AND (p.available OR p.unavailable_until <= :now)
                 ORDER BY t.ring, t.distance_km, p.readiness_hours, t.city_id, p.id
                 LIMIT :top) z) AS lenders
  FROM aid_requests r
 WHERE r.id IN :ids"""


def _bound(sql: str) -> TextClause:
    return text(sql).bindparams(
        bindparam("ids", expanding=True),
        bindparam("now", type_=UTCDateTime()),
    )


_RANKED_PG_STATEMENT = _bound(_RANKED_PG)
_RANKED_SQLITE_STATEMENT = _bound(_RANKED_SQLITE)


class Asked(Protocol):
    """What matching needs of a request (a row, or just these columns of it)."""

    @property
    def id(self) -> int | None: ...
    @property
    def resource(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def claimed_quantity(self) -> int: ...
    @property
    def ring(self) -> int: ...


def lenders_of(ctx: CommandContext, requests: Sequence[Asked], top: int) -> dict[int, Found]:
    """Each request's first `top` lenders, ranked, with the count of all, in one read."""
    ids = [r.id for r in requests if r.id is not None]
    if not ids:
        return {}
    params = {"ids": ids, "now": ctx.now, "top": top}
    lenders: dict[int, list[rules.Lender]] = {i: [] for i in ids}
    counts: dict[int, tuple[int, int]] = {}
    if ctx.session.get_bind().dialect.name == "postgresql":
        ctx.session.execute(text("SET LOCAL enable_nestloop = off"))
        rows = ctx.session.execute(_RANKED_PG_STATEMENT, params).all()
        ctx.session.execute(text("RESET enable_nestloop"))
        for row in rows:
            lenders[row.request_id].append(
                rules.Lender(
                    row.city_id,
                    row.ring,
                    row.distance_km,
                    row.package_id,
                    row.package_name,
                    row.readiness_hours,
                    row.remaining,
                )
            )
            counts[row.request_id] = (int(row.total), int(row.reached or 0))
    else:
        for request_id, found in ctx.session.execute(_RANKED_SQLITE_STATEMENT, params).all():
            for city, ring, km, package, name, hours, remaining, total, reached in json.loads(
                found
            ):
                lenders[request_id].append(
                    rules.Lender(city, ring, float(km), package, name, hours, remaining)
                )
                counts[request_id] = (int(total), int(reached or 0))
    return {
        i: Found(rules.who_could_help(found), *counts.get(i, (0, 0)))
        for i, found in lenders.items()
    }


def _matches(request: Asked, found: Found) -> RequestMatches:
    shown = [
        LenderPublic(
            city_id=x.city_id,
            ring=x.ring,
            reached=ring_reaches(x.ring, request.ring),
            distance_km=round(x.distance_km, 1),
            package_id=x.package_id,
            package_name=x.package_name,
            readiness_hours=x.readiness_hours,
            remaining_quantity=x.remaining_quantity,
        )
        for x in found.lenders
    ]
    return RequestMatches(
        request_id=request.id or 0,
        resource=request.resource,
        remaining_quantity=request.quantity - request.claimed_quantity,
        lenders=shown,
        lender_count=found.count,
        available_quantity=found.reached_quantity,
    )


def incident_matches(
    ctx: CommandContext, incident_id: int, limit: int, offset: int, top: int
) -> Page[RequestMatches]:
    """Who could help with each open request of the incident, in request order."""
    incident = visible_incident(ctx.session, ctx.actor, incident_id)
    _requesting_city(ctx, incident)
    where = (col(AidRequest.incident_id) == incident_id, col(AidRequest.status).in_(_OPEN))
    # Only the columns a match shows: 100 whole rows took longer to load than to rank.
    requests: Sequence[Any] = ctx.session.execute(
        select_columns(
            col(AidRequest.id),
            col(AidRequest.resource),
            col(AidRequest.quantity),
            col(AidRequest.claimed_quantity),
            col(AidRequest.ring),
        )
        .where(*where)
        .order_by(col(AidRequest.id))
        .limit(limit)
        .offset(offset)
    ).all()
    total = ctx.session.exec(select(func.count()).select_from(AidRequest).where(*where)).one()
    found = lenders_of(ctx, requests, top)
    data = [_matches(r, found[r.id or 0]) for r in requests]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[RequestMatches](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


def request_matches(ctx: CommandContext, request_id: int, top: int) -> RequestMatches:
    """Who could help with one request (an empty list once it is no longer open)."""
    request = ctx.session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    incident = visible_incident(ctx.session, ctx.actor, request.incident_id, missing)
    _requesting_city(ctx, incident)
    if request.status not in _OPEN:
        return _matches(request, Found([]))
    return _matches(request, lenders_of(ctx, [request], top)[request_id])
