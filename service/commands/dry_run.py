"""Dry runs: what declaring a playbook here and now would do — the requests it raises, the
cities each ring reaches and, where rosters exist, whose packages could fill each request —
computed by the declaration's own code and the matching rule, writing nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from playbooks import Playbook
from service.commands.aid_requests import compute_targets
from service.commands.city_playbooks import check_city_playbook
from service.commands.context import CommandContext, require_city
from service.commands.escalation import ring_intervals
from service.commands.incidents import (
    find_declared_playbook,
    plan_incident,
    playbook_requests,
)
from service.commands.library import visible_version
from service.domain import rosters as roster_rules
from service.domain.actors import Role
from service.domain.rings import LAST_RING, Target, next_escalation_at
from service.models import IncidentCreate
from service.persistence.tables import City, PackageItem, RosterPackage

# The lenders shown per planned request (the count says how many there are in all).
TOP_LENDERS = 5


@dataclass(frozen=True)
class PlannedLender:
    """A package of a city the declaration would reach that holds the request's resource
    available now."""

    city_id: int
    name: str
    ring: int
    distance_km: float
    package_id: int
    package_name: str
    readiness_hours: int
    remaining_quantity: int


@dataclass(frozen=True)
class PlannedRequest:
    resource: str
    kind: str
    quantity: int
    priority: str
    needed_by: datetime | None
    notes: str
    lenders: list[PlannedLender]  # the first TOP_LENDERS, by ring, distance, readiness
    lender_count: int
    # Units the packages of ring 0's cities could commit now: what the request can expect
    # before its first escalation.
    ring0_available_quantity: int


@dataclass(frozen=True)
class ReachedCity:
    city_id: int
    name: str
    distance_km: float


@dataclass(frozen=True)
class PlannedRing:
    ring: int
    # When requests still open enter this ring (None: never, the playbook stops before it).
    reached_at: datetime | None
    cities: list[ReachedCity]


@dataclass(frozen=True)
class DryRun:
    city_id: int
    lat: float
    lon: float
    playbook: str | None
    playbook_version_id: int | None
    ring0_radius_km: float
    requests: list[PlannedRequest]
    rings: list[PlannedRing]


def dry_run_declaration(ctx: CommandContext, body: IncidentCreate) -> DryRun:
    """What `declare_incident(body)` would do for the caller's city now."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    playbook, version_id = find_declared_playbook(ctx, city_id, body)
    return _dry_run(ctx, city_id, body, playbook, version_id)


def dry_run_version(
    ctx: CommandContext, version_id: int, lat: float | None, lon: float | None
) -> DryRun:
    """What declaring a library version in the caller's city (at its own location unless
    `lat`/`lon` say otherwise) would do now."""
    city_id = require_city(ctx.actor, Role.MANAGER, Role.RESPONDER, Role.OBSERVER)
    version = visible_version(ctx, version_id)
    checked = check_city_playbook(ctx.catalogue, version.incident_type, version.source)
    body = IncidentCreate(
        incident_type=version.incident_type,
        title=f"Dry run of {version.incident_type} v{version.version}",
        lat=lat,
        lon=lon,
        playbook=version.incident_type,
    )
    return _dry_run(ctx, city_id, body, checked.playbook, version.id)


def _dry_run(
    ctx: CommandContext,
    city_id: int,
    body: IncidentCreate,
    playbook: Playbook | None,
    version_id: int | None,
) -> DryRun:
    incident = plan_incident(ctx, city_id, body, playbook, version_id)
    targets = compute_targets(ctx, incident)
    requests = playbook_requests(ctx, playbook, body) if playbook is not None else []
    names = dict(
        ctx.session.exec(
            select(City.id, City.name).where(col(City.id).in_({t.city_id for t in targets}))
        ).all()
    )
    lenders = _lenders(ctx, targets, {b.resource for b, _ in requests})
    intervals = ring_intervals(incident)
    reached_at: datetime | None = ctx.now
    rings = []
    for ring in range(LAST_RING + 1):
        reached = sorted(
            (
                ReachedCity(t.city_id, names.get(t.city_id, "?"), t.distance_km)
                for t in targets
                if t.ring == ring
            ),
            key=lambda c: (c.distance_km, c.city_id),
        )
        rings.append(PlannedRing(ring, reached_at, reached))
        reached_at = (
            next_escalation_at(ring, reached_at, intervals) if reached_at is not None else None
        )
    return DryRun(
        city_id=city_id,
        lat=incident.lat,
        lon=incident.lon,
        playbook=body.playbook,
        playbook_version_id=version_id,
        ring0_radius_km=incident.ring0_radius_km,
        requests=[
            PlannedRequest(
                resource=b.resource,
                kind=kind.value,
                quantity=b.quantity,
                priority=b.priority,
                needed_by=b.needed_by,
                notes=b.notes,
                **_planned_lenders(lenders.get(b.resource, []), names),
            )
            for b, kind in requests
        ],
        rings=rings,
    )


def _lenders(
    ctx: CommandContext, targets: Sequence[Target], resources: set[str]
) -> dict[str, list[roster_rules.Lender]]:
    """Per resource, the packages of the reached cities that could lend it now, ranked by
    the matching rule (`rosters.who_could_help`), in one read."""
    reach = {t.city_id: t for t in targets}
    if not reach or not resources:
        return {}
    rows = ctx.session.execute(
        select_columns(
            col(RosterPackage.city_id),
            col(RosterPackage.id),
            col(RosterPackage.name),
            col(RosterPackage.readiness_hours),
            col(PackageItem.resource),
            col(PackageItem.cap_quantity) - col(PackageItem.committed_quantity),
        )
        .join(PackageItem, col(PackageItem.package_id) == col(RosterPackage.id))
        .where(
            col(RosterPackage.city_id).in_(reach),
            col(PackageItem.resource).in_(resources),
            col(PackageItem.committed_quantity) < col(PackageItem.cap_quantity),
            or_(col(RosterPackage.available), col(RosterPackage.unavailable_until) <= ctx.now),
        )
    ).all()
    found: dict[str, list[roster_rules.Lender]] = {}
    for city_id, package_id, package_name, readiness, resource, remaining in rows:
        target = reach[city_id]
        found.setdefault(resource, []).append(
            roster_rules.Lender(
                city_id,
                target.ring,
                target.distance_km,
                package_id,
                package_name,
                readiness,
                int(remaining),
            )
        )
    return {resource: roster_rules.who_could_help(found_) for resource, found_ in found.items()}


def _planned_lenders(
    ranked: list[roster_rules.Lender], names: Mapping[int | None, str]
) -> dict[str, Any]:
    return {
        "lenders": [
            PlannedLender(
                city_id=x.city_id,
                name=names.get(x.city_id, "?"),
                ring=x.ring,
                distance_km=round(x.distance_km, 1),
                package_id=x.package_id,
                package_name=x.package_name,
                readiness_hours=x.readiness_hours,
                remaining_quantity=x.remaining_quantity,
            )
            for x in ranked[:TOP_LENDERS]
        ],
        "lender_count": len(ranked),
        "ring0_available_quantity": sum(x.remaining_quantity for x in ranked if x.ring == 0),
    }
