"""The playbook library: cities publish their playbooks to their networks as numbered,
immutable versions; peers browse them, compare them, adopt or fork one, and hear of newer
versions of what they adopted. Each version carries its track record."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import col, select

from playbooks import stock_dir
from service.commands.city_playbooks import check_city_playbook, city_playbook_row
from service.commands.context import CommandContext, require_city
from service.domain import library as lib
from service.domain.actors import Role
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.domain.track_records import (
    TIMED_EVENT_TYPES,
    RequestTimeline,
    TrackRecord,
    request_timelines,
    track_record,
)
from service.persistence.tables import (
    City,
    CityPlaybook,
    Event,
    Incident,
    NetworkMembership,
    PlaybookVersion,
)


@dataclass(frozen=True)
class VersionView:
    """A published version as the library shows it."""

    row: PlaybookVersion
    ref: lib.VersionRef
    parent: lib.VersionRef | None
    record: TrackRecord


@dataclass(frozen=True)
class Notice:
    """A newer version of the playbook a city adopted, with what it changes."""

    incident_type: str
    current: lib.VersionRef
    newer: lib.VersionRef
    diff: str


@dataclass(frozen=True)
class Diff:
    from_label: str
    to_label: str
    diff: str


@dataclass(frozen=True)
class PlaybookLineage:
    """Where a city's playbook for one incident type comes from."""

    incident_type: str
    lineage: str | None
    based_on: lib.VersionRef | None
    label: str
    matches_version: bool  # the text is the based-on version's, word for word


# Who sees what ------------------------------------------------------------------------------


def visible_city_ids(ctx: CommandContext) -> set[int] | None:
    """The cities whose versions the caller may see: its own and its networks' (None: all,
    for the admin)."""
    if ctx.actor.is_admin:
        return None
    if ctx.actor.city_id is None:
        return set()
    mine = select(NetworkMembership.network_id).where(
        col(NetworkMembership.city_id) == ctx.actor.city_id
    )
    peers = ctx.session.exec(
        select(NetworkMembership.city_id).where(col(NetworkMembership.network_id).in_(mine))
    ).all()
    return {ctx.actor.city_id, *peers}


def visible_version(ctx: CommandContext, version_id: int) -> PlaybookVersion:
    """The version if the caller may see it; a hidden one answers as a missing one."""
    row = ctx.session.get(PlaybookVersion, version_id)
    visible = visible_city_ids(ctx)
    if row is None or (visible is not None and row.city_id not in visible):
        raise NotFound(f"playbook version {version_id} not found")
    return row


def _own_city(ctx: CommandContext, city_id: int) -> int:
    mine = require_city(ctx.actor, Role.MANAGER)
    if mine != city_id:
        raise Forbidden("a city's manager publishes and adopts playbooks for their own city only")
    return mine


# Writes ---------------------------------------------------------------------------------------


def publish_version(
    ctx: CommandContext, city_id: int, incident_type: str, change_note: str
) -> PlaybookVersion:
    """Publish the city's own playbook for `incident_type` as its next version."""
    _own_city(ctx, city_id)
    own = city_playbook_row(ctx, city_id, incident_type)
    if own is None:
        raise NotFound(f"city {city_id} has no playbook '{incident_type}' of its own to publish")
    check_city_playbook(ctx.catalogue, incident_type, own.source)
    numbers = ctx.session.exec(
        select(PlaybookVersion.version).where(
            col(PlaybookVersion.city_id) == city_id,
            col(PlaybookVersion.incident_type) == incident_type,
        )
    ).all()
    version = PlaybookVersion(
        city_id=city_id,
        incident_type=incident_type,
        version=lib.next_version_number(list(numbers)),
        source=own.source,
        change_note=change_note,
        parent_version_id=own.based_on_version_id,
        published_by_token_id=ctx.actor.token_id,
        published_at=ctx.now,
    )
    ctx.session.add(version)
    ctx.session.flush()
    own.based_on_version_id = version.id
    own.lineage = lib.Lineage.PUBLISHED.value
    own.ignored_version_id = None
    own.updated_at = ctx.now
    ctx.session.add(own)
    return version


def adopt_version(
    ctx: CommandContext, city_id: int, version_id: int, lineage: lib.Lineage
) -> CityPlaybook:
    """Make a version the city's own playbook, keeping where it came from. Adopting
    follows the source city's newer versions; forking does not."""
    _own_city(ctx, city_id)
    version = visible_version(ctx, version_id)
    if version.city_id == city_id:
        lineage = lib.Lineage.PUBLISHED  # taking back one's own version
    own = city_playbook_row(ctx, city_id, version.incident_type)
    if own is None:
        own = CityPlaybook(
            city_id=city_id,
            incident_type=version.incident_type,
            source=version.source,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    own.source = version.source
    own.based_on_version_id = version.id
    own.lineage = lineage.value
    own.ignored_version_id = None
    own.updated_at = ctx.now
    ctx.session.add(own)
    ctx.session.flush()
    return own


def ignore_version(ctx: CommandContext, city_id: int, version_id: int) -> CityPlaybook:
    """Keep the adopted version: the notice of `version_id` (and older ones) goes away."""
    _own_city(ctx, city_id)
    version = visible_version(ctx, version_id)
    own = city_playbook_row(ctx, city_id, version.incident_type)
    based_on = _row(ctx, own.based_on_version_id) if own is not None else None
    if (
        own is None
        or based_on is None
        or own.lineage != lib.Lineage.ADOPTED.value
        or based_on.city_id != version.city_id
        or version.version <= based_on.version
    ):
        raise Conflict(
            f"playbook version {version_id} is not a newer version of a playbook this city adopted"
        )
    own.ignored_version_id = version.id
    own.updated_at = ctx.now
    ctx.session.add(own)
    return own


# Reads ----------------------------------------------------------------------------------------


def list_versions(
    ctx: CommandContext,
    incident_type: str | None = None,
    city_id: int | None = None,
    network_id: int | None = None,
) -> list[VersionView]:
    """The versions the caller may see, newest first within each city and type."""
    query = select(PlaybookVersion)
    visible = visible_city_ids(ctx)
    if visible is not None:
        query = query.where(col(PlaybookVersion.city_id).in_(visible))
    if incident_type is not None:
        query = query.where(col(PlaybookVersion.incident_type) == incident_type)
    if city_id is not None:
        query = query.where(col(PlaybookVersion.city_id) == city_id)
    if network_id is not None:
        members = select(NetworkMembership.city_id).where(
            col(NetworkMembership.network_id) == network_id
        )
        query = query.where(col(PlaybookVersion.city_id).in_(members))
    rows = ctx.session.exec(
        query.order_by(
            col(PlaybookVersion.incident_type),
            col(PlaybookVersion.city_id),
            col(PlaybookVersion.version).desc(),
        )
    ).all()
    return _views(ctx, list(rows))


def get_version(ctx: CommandContext, version_id: int) -> VersionView:
    return _views(ctx, [visible_version(ctx, version_id)])[0]


def diff_version(
    ctx: CommandContext, version_id: int, against: str, other_version_id: int | None
) -> Diff:
    """A version's YAML against its parent (the stock playbook if it has none), the stock
    playbook, or another version the caller may see."""
    version = visible_version(ctx, version_id)
    refs = _refs(ctx, [version])
    to_label = refs[version.id or 0].label()
    if against == "version":
        if other_version_id is None:
            raise Invalid("against=version needs other_version_id")
        other = visible_version(ctx, other_version_id)
        label = _refs(ctx, [other])[other.id or 0].label()
        return Diff(
            label, to_label, lib.unified_diff(other.source, version.source, label, to_label)
        )
    if against == "parent" and version.parent_version_id is not None:
        parent = _row(ctx, version.parent_version_id)
        assert parent is not None
        label = _refs(ctx, [parent])[parent.id or 0].label()
        return Diff(
            label, to_label, lib.unified_diff(parent.source, version.source, label, to_label)
        )
    stock = stock_source(version.incident_type)
    label = f"stock {version.incident_type}"
    if stock is None:
        return Diff(
            "no stock playbook", to_label, lib.unified_diff("", version.source, label, to_label)
        )
    return Diff(label, to_label, lib.unified_diff(stock, version.source, label, to_label))


def stock_source(incident_type: str) -> str | None:
    path = stock_dir() / f"{incident_type}.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def notices(ctx: CommandContext) -> list[Notice]:
    """Newer versions of the playbooks the caller's city adopted, each with its diff."""
    city_id = require_city(ctx.actor, Role.MANAGER, Role.RESPONDER, Role.OBSERVER)
    adopted = ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id,
            col(CityPlaybook.lineage) == lib.Lineage.ADOPTED.value,
        )
    ).all()
    found = []
    visible = visible_city_ids(ctx)
    for own in adopted:
        based_on = _row(ctx, own.based_on_version_id)
        if based_on is None or (visible is not None and based_on.city_id not in visible):
            continue
        candidates = ctx.session.exec(
            select(PlaybookVersion).where(
                col(PlaybookVersion.city_id) == based_on.city_id,
                col(PlaybookVersion.incident_type) == based_on.incident_type,
                col(PlaybookVersion.version) > based_on.version,
            )
        ).all()
        ignored = _row(ctx, own.ignored_version_id)
        refs = _refs(ctx, [based_on, *candidates])
        newer = lib.newer_version(
            lib.Lineage.ADOPTED,
            refs[based_on.id or 0],
            [refs[c.id or 0] for c in candidates],
            ignored.version if ignored is not None else None,
        )
        if newer is None:
            continue
        source = next(c.source for c in candidates if c.id == newer.version_id)
        found.append(
            Notice(
                own.incident_type,
                refs[based_on.id or 0],
                newer,
                lib.unified_diff(own.source, source, f"{own.incident_type} (yours)", newer.label()),
            )
        )
    return sorted(found, key=lambda n: n.incident_type)


def lineages(ctx: CommandContext, city_id: int) -> list[PlaybookLineage]:
    """Where each of a city's own playbooks comes from."""
    rows = ctx.session.exec(
        select(CityPlaybook)
        .where(col(CityPlaybook.city_id) == city_id)
        .order_by(col(CityPlaybook.incident_type))
    ).all()
    based = [v for r in rows if (v := _row(ctx, r.based_on_version_id)) is not None]
    refs = _refs(ctx, based)
    found = []
    for r in rows:
        ref = refs.get(r.based_on_version_id or 0)
        kind = lib.Lineage(r.lineage) if r.lineage else None
        source = next((v.source for v in based if v.id == r.based_on_version_id), None)
        found.append(
            PlaybookLineage(
                r.incident_type, r.lineage, ref, lib.lineage_label(kind, ref), source == r.source
            )
        )
    return found


def version_in_use(ctx: CommandContext, own: CityPlaybook | None) -> int | None:
    """The published version a city's playbook row (`own`, already read) is, word for
    word; None for the stock playbook (no row) or a text changed since."""
    if own is None:
        return None
    based_on = _row(ctx, own.based_on_version_id)
    if based_on is None or based_on.source != own.source:
        return None
    return based_on.id


# Track records --------------------------------------------------------------------------------


def track_records(ctx: CommandContext, version_ids: Iterable[int]) -> dict[int, TrackRecord]:
    """Each version's record over the incidents declared with it, exercises apart, read
    from their events in one statement."""
    ids = set(version_ids)
    incidents = ctx.session.exec(
        select(Incident.id, Incident.playbook_version_id).where(
            col(Incident.playbook_version_id).in_(ids), col(Incident.exercise).is_(False)
        )
    ).all()
    version_of = {incident_id: version_id for incident_id, version_id in incidents}
    events = ctx.session.exec(
        select(Event.incident_id, Event.type, Event.occurred_at, Event.data)
        .where(
            col(Event.incident_id).in_(list(version_of)),
            col(Event.type).in_(TIMED_EVENT_TYPES),
        )
        .order_by(col(Event.incident_id), col(Event.seq))
    ).all()
    timelines = request_timelines(events)
    per_version: dict[int, list[RequestTimeline]] = {v: [] for v in ids}
    counts = dict.fromkeys(ids, 0)
    for version_id in version_of.values():
        if version_id is not None:
            counts[version_id] += 1
    for (incident_id, _), timeline in timelines.items():
        version_id = version_of[incident_id]
        if version_id is not None:
            per_version[version_id].append(timeline)
    return {v: track_record(counts[v], per_version[v]) for v in ids}


# Rows -----------------------------------------------------------------------------------------


def _row(ctx: CommandContext, version_id: int | None) -> PlaybookVersion | None:
    return ctx.session.get(PlaybookVersion, version_id) if version_id is not None else None


def _refs(ctx: CommandContext, rows: Iterable[PlaybookVersion]) -> dict[int, lib.VersionRef]:
    rows = list(rows)
    names = dict(
        ctx.session.exec(
            select(City.id, City.name).where(col(City.id).in_({r.city_id for r in rows}))
        ).all()
    )
    return {
        r.id or 0: lib.VersionRef(
            r.id or 0, r.city_id, names.get(r.city_id, "?"), r.incident_type, r.version
        )
        for r in rows
    }


def _views(ctx: CommandContext, rows: list[PlaybookVersion]) -> list[VersionView]:
    parents = [p for r in rows if (p := _row(ctx, r.parent_version_id)) is not None]
    refs = _refs(ctx, [*rows, *parents])
    records = track_records(ctx, [r.id or 0 for r in rows])
    return [
        VersionView(
            r,
            refs[r.id or 0],
            refs.get(r.parent_version_id) if r.parent_version_id is not None else None,
            records[r.id or 0],
        )
        for r in rows
    ]
