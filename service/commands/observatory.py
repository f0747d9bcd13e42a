"""The open-data observatory: its settings (a network's licence and publication delay,
set by the admin; a city's opt-in, set by its manager or the admin) and the reads behind
its public feeds, which aggregate in SQL and hand plain rows to `service.domain.observatory`.

The public reads take no caller into account: they show the same to everyone, and only
what the domain lets out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from service.commands.admin import require_admin
from service.commands.context import CommandContext
from service.domain import observatory as obs
from service.domain.actors import Role
from service.domain.errors import Forbidden, Invalid, NotFound
from service.domain.events import EventType
from service.persistence.tables import (
    AidRequest,
    City,
    Claim,
    Event,
    Incident,
    Network,
    NetworkMembership,
    ObservatoryCity,
    ObservatoryNetwork,
)


@dataclass(frozen=True)
class NetworkObservatory:
    network_id: int
    slug: str
    name: str
    licence: str
    publication_delay_days: int
    city_names: list[str]  # the member cities that opted in


# Settings -------------------------------------------------------------------------------------


def set_network_settings(
    ctx: CommandContext, network_id: int, licence: str, publication_delay_days: int
) -> ObservatoryNetwork:
    require_admin(ctx)
    if ctx.session.get(Network, network_id) is None:
        raise NotFound(f"network {network_id} not found")
    if not obs.valid_licence(licence):
        raise Invalid(f"'{licence}' is not a licence identifier such as 'CC-BY-4.0'")
    row = ctx.session.get(ObservatoryNetwork, network_id) or ObservatoryNetwork(
        network_id=network_id, licence=licence, publication_delay_days=0, updated_at=ctx.now
    )
    row.licence = licence
    row.publication_delay_days = publication_delay_days
    row.updated_at = ctx.now
    ctx.session.add(row)
    return row


def _city_for_settings(ctx: CommandContext, city_id: int) -> City:
    actor = ctx.actor
    if not actor.is_admin and (actor.role is not Role.MANAGER or actor.city_id != city_id):
        raise Forbidden("a city's observatory setting is for its own manager or the admin")
    city = ctx.session.get(City, city_id)
    if city is None:
        raise NotFound(f"city {city_id} not found")
    return city


def set_city_opt_in(ctx: CommandContext, city_id: int, opted_in: bool) -> ObservatoryCity:
    _city_for_settings(ctx, city_id)
    row = ctx.session.get(ObservatoryCity, city_id) or ObservatoryCity(
        city_id=city_id, updated_at=ctx.now
    )
    row.opted_in = opted_in
    row.updated_at = ctx.now
    ctx.session.add(row)
    return row


def city_opt_in(ctx: CommandContext, city_id: int) -> ObservatoryCity:
    _city_for_settings(ctx, city_id)
    row = ctx.session.get(ObservatoryCity, city_id)
    return row or ObservatoryCity(city_id=city_id, opted_in=False, updated_at=ctx.now)


# Public reads ---------------------------------------------------------------------------------


def _opted_in(ctx: CommandContext) -> dict[int, str]:
    rows = ctx.session.exec(
        select(City.id, City.name)
        .join(ObservatoryCity, col(ObservatoryCity.city_id) == col(City.id))
        .where(col(ObservatoryCity.opted_in).is_(True))
    ).all()
    return {city_id: name for city_id, name in rows if city_id is not None}


def published_networks(ctx: CommandContext) -> list[NetworkObservatory]:
    """Every network with an observatory, with its member cities that opted in."""
    opted = _opted_in(ctx)
    rows = ctx.session.exec(
        select(Network, ObservatoryNetwork)
        .join(ObservatoryNetwork, col(ObservatoryNetwork.network_id) == col(Network.id))
        .order_by(col(Network.slug))
    ).all()
    members = ctx.session.exec(
        select(NetworkMembership.network_id, NetworkMembership.city_id).where(
            col(NetworkMembership.city_id).in_(list(opted))
        )
    ).all()
    return [
        NetworkObservatory(
            network_id=network.id or 0,
            slug=network.slug,
            name=network.name,
            licence=settings.licence,
            publication_delay_days=settings.publication_delay_days,
            city_names=sorted(opted[c] for n, c in members if n == network.id),
        )
        for network, settings in rows
    ]


def published(
    ctx: CommandContext, network_id: int, limit: int | None = None, offset: int = 0
) -> obs.Published:
    """What the network's observatory shows: its publishable incidents (a page of them,
    oldest closed first, when `limit` is given) with their requests and aid."""
    settings = ctx.session.get(ObservatoryNetwork, network_id)
    network = ctx.session.get(Network, network_id)
    if settings is None or network is None:
        raise NotFound(f"network {network_id} has no observatory")
    opted = _opted_in(ctx)
    through = obs.published_through(ctx.now, settings.publication_delay_days)
    requesters = select(NetworkMembership.city_id).where(
        NetworkMembership.network_id == network_id,
        col(NetworkMembership.city_id).in_(list(opted)),
    )
    conditions = (
        col(Incident.city_id).in_(requesters),
        col(Incident.status) == "closed",
        col(Incident.exercise).is_(False),
        col(Incident.closed_at) <= through,
    )
    count = ctx.session.exec(select(func.count()).select_from(Incident).where(*conditions)).one()
    page = (
        select_columns(
            col(Incident.id),
            col(Incident.city_id),
            col(Incident.incident_type),
            col(Incident.severity),
            col(Incident.lat),
            col(Incident.lon),
            col(Incident.exercise),
            col(Incident.declared_at),
            col(Incident.closed_at),
        )
        .where(*conditions)
        .order_by(col(Incident.closed_at), col(Incident.id))
        .offset(offset)
    )
    if limit is not None:
        page = page.limit(limit)
    incidents = [obs.IncidentRow(*row) for row in ctx.session.execute(page).all()]
    ids = [i.incident_id for i in incidents]
    return obs.Published(
        network_id=network_id,
        network_slug=network.slug,
        network_name=network.name,
        licence=settings.licence,
        publication_delay_days=settings.publication_delay_days,
        published_through=through,
        city_names=opted,
        incidents=incidents,
        requests=_requests(ctx, ids),
        claims=_claims(ctx, ids),
        incident_count=int(count),
    )


def _chunks(ids: Sequence[int], size: int = 2000) -> list[Sequence[int]]:
    """Id lists short enough for one IN (SQLite binds at most 32,766 parameters)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _requests(ctx: CommandContext, incident_ids: Sequence[int]) -> list[obs.RequestRow]:
    rows: list[obs.RequestRow] = []
    for ids in _chunks(incident_ids):
        first_claims = dict(
            ctx.session.exec(
                select(Claim.request_id, func.min(Claim.created_at))
                .where(col(Claim.incident_id).in_(ids))
                .group_by(col(Claim.request_id))
            ).all()
        )
        # The request's id read inside the event's JSON by the database, not here.
        fulfilled_id = col(Event.data)["request"]["id"].as_integer()
        fulfilled: dict[int, Any] = dict(
            ctx.session.execute(
                select_columns(fulfilled_id, col(Event.occurred_at)).where(
                    col(Event.incident_id).in_(ids),
                    col(Event.type) == EventType.REQUEST_FULFILLED.value,
                )
            ).all()
        )
        requests = select_columns(
            col(AidRequest.id),
            col(AidRequest.incident_id),
            col(AidRequest.kind),
            col(AidRequest.resource),
            col(AidRequest.quantity),
            col(AidRequest.created_at),
            col(AidRequest.status),
        ).where(col(AidRequest.incident_id).in_(ids))
        for (
            request_id,
            incident_id,
            kind,
            resource,
            quantity,
            raised_at,
            status,
        ) in ctx.session.execute(requests).all():
            rows.append(
                obs.RequestRow(
                    request_id=request_id,
                    incident_id=incident_id,
                    kind=kind,
                    resource=resource,
                    quantity=quantity,
                    raised_at=raised_at,
                    first_claim_at=first_claims.get(request_id),
                    fulfilled_at=fulfilled.get(request_id),
                    expired=status == "expired",
                )
            )
    return rows


def _claims(ctx: CommandContext, incident_ids: Sequence[int]) -> list[obs.ClaimTotal]:
    on_site = case((col(Claim.status).in_(sorted(obs.ON_SITE)), Claim.quantity), else_=0)
    totals: list[obs.ClaimTotal] = []
    for ids in _chunks(incident_ids):
        query = (
            select_columns(
                col(Claim.request_id),
                col(Claim.city_id),
                func.sum(Claim.quantity),
                func.sum(on_site),
                func.min(Claim.created_at),
            )
            .where(
                col(Claim.incident_id).in_(ids),
                col(Claim.status).not_in(sorted(obs.EARLY_ENDS)),
            )
            .group_by(col(Claim.request_id), col(Claim.city_id))
        )
        totals.extend(
            obs.ClaimTotal(
                request_id=request_id,
                city_id=city_id,
                units=int(units),
                units_on_site=int(units_on_site),
                first_claimed_at=first,
            )
            for request_id, city_id, units, units_on_site, first in ctx.session.execute(query).all()
        )
    return totals
