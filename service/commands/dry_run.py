"""Dry runs: what declaring a playbook here and now would do — the requests it raises and
the cities each ring reaches — computed by the declaration's own code, writing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
from service.domain.actors import Role
from service.domain.rings import LAST_RING, next_escalation_at
from service.models import IncidentCreate
from service.persistence.tables import City


@dataclass(frozen=True)
class PlannedRequest:
    resource: str
    kind: str
    quantity: int
    priority: str
    needed_by: datetime | None
    notes: str


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
            )
            for b, kind in requests
        ],
        rings=rings,
    )
