"""The playbook library: publish, browse, compare, adopt or fork, hear of newer versions;
and dry runs of a declaration. Thin: each route validates, calls one command, answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from service.api.deps import CurrentActor, IdPath, IdQuery, ManagerActor, Parts
from service.commands import dry_run, library
from service.domain.library import Lineage as LineageKind
from service.domain.library import VersionRef
from service.domain.track_records import TrackRecord
from service.models import SLUG_PATTERN, IncidentCreate, Input, Note, Slug

router = APIRouter(tags=["library"])
TypePath = Annotated[str, Path(min_length=1, max_length=64, pattern=SLUG_PATTERN)]


class VersionRefPublic(BaseModel):
    version_id: int
    city_id: int
    city_name: str
    incident_type: str
    version: int
    label: str = Field(description='"Munich, flood v3"')


class TrackRecordPublic(BaseModel):
    """Measured from the events of the incidents declared with the version, exercises apart.
    Times are seconds from a request's raising; percentiles are nearest-rank."""

    incident_count: int
    request_count: int
    first_claim_p50_s: float | None
    first_claim_p90_s: float | None
    fill_p50_s: float | None = Field(description="to `request.fulfilled`")
    fill_p90_s: float | None
    fill_rate: float | None = Field(description="requests fulfilled / requests raised")
    expired_unfilled_count: int
    escalation_count: int


class VersionPublic(BaseModel):
    id: int
    city_id: int
    city_name: str
    incident_type: str
    version: int
    label: str
    change_note: str
    published_at: datetime
    parent: VersionRefPublic | None
    track_record: TrackRecordPublic


class VersionDetail(VersionPublic):
    source: str


class DiffPublic(BaseModel):
    from_label: str
    to_label: str
    diff: str = Field(description="A unified diff of the YAML; empty when the texts agree.")


class NoticePublic(BaseModel):
    incident_type: str
    current: VersionRefPublic
    newer: VersionRefPublic
    diff: str = Field(description="From the city's playbook to the newer version.")


class LineagePublic(BaseModel):
    incident_type: str
    lineage: str | None = Field(description="`published`, `adopted`, `forked`, or null")
    based_on: VersionRefPublic | None
    label: str
    matches_version: bool = Field(
        description="The playbook is the based-on version word for word (declarations "
        "with it count in that version's track record)."
    )


class PublishBody(Input):
    change_note: Note = Field(description="What changed, for the cities that follow yours.")


class PlannedLenderPublic(BaseModel):
    city_id: int
    name: str
    ring: int = Field(description="The ring at which the declaration would reach the city.")
    distance_km: float
    package_id: int
    package_name: str
    readiness_hours: int
    remaining_quantity: int = Field(description="Units of the resource it can commit now.")


class PlannedRequestPublic(BaseModel):
    resource: str
    kind: str
    quantity: int
    priority: str
    needed_by: datetime | None
    notes: str
    lenders: list[PlannedLenderPublic] = Field(
        description="Whose rosters could fill it: the first five packages holding the "
        "resource available now, by ring, distance and time to readiness."
    )
    lender_count: int = Field(description="All such packages.")
    ring0_available_quantity: int = Field(
        description="Units ring 0's packages could commit now, before any escalation."
    )


class ReachedCityPublic(BaseModel):
    city_id: int
    name: str
    distance_km: float


class PlannedRingPublic(BaseModel):
    ring: int
    reached_at: datetime | None
    cities: list[ReachedCityPublic]


class DryRunPublic(BaseModel):
    """What a declaration would do now, with whose rosters could fill each request; nothing
    was written."""

    city_id: int
    lat: float
    lon: float
    playbook: str | None
    playbook_version_id: int | None
    ring0_radius_km: float
    requests: list[PlannedRequestPublic]
    rings: list[PlannedRingPublic]


def _ref(ref: VersionRef) -> VersionRefPublic:
    return VersionRefPublic(
        version_id=ref.version_id,
        city_id=ref.city_id,
        city_name=ref.city_name,
        incident_type=ref.incident_type,
        version=ref.version,
        label=ref.label(),
    )


def _record(record: TrackRecord) -> TrackRecordPublic:
    return TrackRecordPublic.model_validate(record, from_attributes=True)


def _version(view: library.VersionView) -> VersionPublic:
    return VersionPublic(
        id=view.ref.version_id,
        city_id=view.ref.city_id,
        city_name=view.ref.city_name,
        incident_type=view.ref.incident_type,
        version=view.ref.version,
        label=view.ref.label(),
        change_note=view.row.change_note,
        published_at=view.row.published_at,
        parent=_ref(view.parent) if view.parent else None,
        track_record=_record(view.record),
    )


def _detail(view: library.VersionView) -> VersionDetail:
    return VersionDetail(**_version(view).model_dump(), source=view.row.source)


def _lineage(found: library.PlaybookLineage) -> LineagePublic:
    return LineagePublic(
        incident_type=found.incident_type,
        lineage=found.lineage,
        based_on=_ref(found.based_on) if found.based_on else None,
        label=found.label,
        matches_version=found.matches_version,
    )


@router.get("/library", response_model=list[VersionPublic])
async def list_library(
    actor: CurrentActor,
    parts: Parts,
    incident_type: Annotated[Slug | None, Query()] = None,
    city_id: IdQuery = None,
    network_id: IdQuery = None,
) -> list[VersionPublic]:
    """Published versions from your city's networks, each with its track record."""
    views = await parts.executor.read(
        actor, library.list_versions, incident_type, city_id, network_id
    )
    return [_version(v) for v in views]


@router.get("/library/notices", response_model=list[NoticePublic])
async def list_notices(actor: CurrentActor, parts: Parts) -> list[NoticePublic]:
    """Newer versions of the playbooks your city adopted, with their diffs."""
    found = await parts.executor.read(actor, library.notices)
    return [
        NoticePublic(
            incident_type=n.incident_type, current=_ref(n.current), newer=_ref(n.newer), diff=n.diff
        )
        for n in found
    ]


@router.get("/library/lineage", response_model=list[LineagePublic])
async def list_lineage(actor: ManagerActor, parts: Parts) -> list[LineagePublic]:
    """Where each of your city's own playbooks comes from."""
    assert actor.city_id is not None
    found = await parts.executor.read(actor, library.lineages, actor.city_id)
    return [_lineage(f) for f in found]


@router.get("/library/versions/{version_id}", response_model=VersionDetail)
async def get_version(version_id: IdPath, actor: CurrentActor, parts: Parts) -> VersionDetail:
    return _detail(await parts.executor.read(actor, library.get_version, version_id))


@router.get("/library/versions/{version_id}/diff", response_model=DiffPublic)
async def diff_version(
    version_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    against: Literal["parent", "stock", "version"] = "parent",
    other_version_id: IdQuery = None,
) -> DiffPublic:
    """The version against its parent (the stock playbook when it has none), the stock
    playbook, or another version (`against=version&other_version_id=…`)."""
    found = await parts.executor.read(
        actor, library.diff_version, version_id, against, other_version_id
    )
    return DiffPublic(from_label=found.from_label, to_label=found.to_label, diff=found.diff)


@router.get("/library/versions/{version_id}/dry-run", response_model=DryRunPublic)
async def dry_run_version(
    version_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    lat: Annotated[float | None, Query(ge=-90, le=90, allow_inf_nan=False)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, allow_inf_nan=False)] = None,
) -> DryRunPublic:
    """What declaring this version in your city now would do; writes nothing."""
    found = await parts.executor.read(actor, dry_run.dry_run_version, version_id, lat, lon)
    return DryRunPublic.model_validate(found, from_attributes=True)


@router.post(
    "/cities/{city_id}/library/{incident_type}",
    response_model=VersionDetail,
    status_code=status.HTTP_201_CREATED,
)
async def publish_version(
    city_id: IdPath, incident_type: TypePath, body: PublishBody, actor: ManagerActor, parts: Parts
) -> VersionDetail:
    """Publish your city's playbook for `incident_type` to its networks as its next version.
    Versions are immutable: there is no route to change or delete one."""
    row = await parts.executor.run(
        actor, library.publish_version, city_id, incident_type, body.change_note
    )
    return _detail(await parts.executor.read(actor, library.get_version, row.id or 0))


async def _take(
    city_id: int, version_id: int, kind: LineageKind, actor: CurrentActor, parts: Parts
) -> LineagePublic:
    own = await parts.executor.run(actor, library.adopt_version, city_id, version_id, kind)
    return await _lineage_of(own.incident_type, city_id, actor, parts)


async def _lineage_of(
    incident_type: str, city_id: int, actor: CurrentActor, parts: Parts
) -> LineagePublic:
    found = await parts.executor.read(actor, library.lineages, city_id)
    return _lineage(next(f for f in found if f.incident_type == incident_type))


@router.post("/cities/{city_id}/library/versions/{version_id}/adopt", response_model=LineagePublic)
async def adopt_version(
    city_id: IdPath, version_id: IdPath, actor: ManagerActor, parts: Parts
) -> LineagePublic:
    """Make the version your city's playbook for its type; you will hear of its newer ones."""
    return await _take(city_id, version_id, LineageKind.ADOPTED, actor, parts)


@router.post("/cities/{city_id}/library/versions/{version_id}/fork", response_model=LineagePublic)
async def fork_version(
    city_id: IdPath, version_id: IdPath, actor: ManagerActor, parts: Parts
) -> LineagePublic:
    """Make the version your city's playbook, as a starting point of its own (no notices)."""
    return await _take(city_id, version_id, LineageKind.FORKED, actor, parts)


@router.post("/cities/{city_id}/library/versions/{version_id}/ignore", response_model=LineagePublic)
async def ignore_version(
    city_id: IdPath, version_id: IdPath, actor: ManagerActor, parts: Parts
) -> LineagePublic:
    """Keep the version you adopted; the notice of this newer one goes away."""
    own = await parts.executor.run(actor, library.ignore_version, city_id, version_id)
    return await _lineage_of(own.incident_type, city_id, actor, parts)


@router.post("/incidents/dry-run", response_model=DryRunPublic, tags=["incidents"])
async def dry_run_declaration(
    body: IncidentCreate, actor: ManagerActor, parts: Parts
) -> DryRunPublic:
    """What `POST /incidents` with this body would do now: the requests it would raise and
    the cities each ring would reach, with their distances. Writes nothing."""
    found = await parts.executor.read(actor, dry_run.dry_run_declaration, body)
    return DryRunPublic.model_validate(found, from_attributes=True)
