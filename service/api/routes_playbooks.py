"""Playbooks and the resource catalogue: read by every token, cities' own uploaded by admins."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from playbooks import LIMITS, Catalogue, Playbook, PlaybookTooLarge
from service.api.deps import AdminActor, CurrentActor, IdPath, Parts
from service.api.errors import Message
from service.commands import city_playbooks
from service.domain.errors import NotFound
from service.models import SLUG_PATTERN, Kind

router = APIRouter(tags=["playbooks"])
TypePath = Annotated[str, Path(min_length=1, max_length=64, pattern=SLUG_PATTERN)]


class PlaybookSummary(BaseModel):
    incident_type: str
    title: str
    origin: str = Field(description="`stock`, or `city` for the caller city's own")
    request_count: int


class PlaybookDetail(BaseModel):
    origin: str
    playbook: dict[str, Any]


class PlaybookUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # No max_length: the byte limit is the parse's own (playbooks.limits), answered with 413.
    source: str = Field(
        description=f"The playbook as YAML text, at most {LIMITS.max_bytes:,} bytes in UTF-8."
    )


class ResourcePublic(BaseModel):
    id: str
    kind: str
    unit: str
    description: str


def _summary(name: str, origin: str, playbook: Playbook) -> PlaybookSummary:
    return PlaybookSummary(
        incident_type=name,
        title=playbook.title,
        origin=origin,
        request_count=len(playbook.requests),
    )


@router.get("/playbooks", response_model=list[PlaybookSummary])
async def list_playbooks(actor: CurrentActor, parts: Parts) -> list[PlaybookSummary]:
    """The playbooks your city can declare from (its own replace stock ones of the same type)."""
    found = await parts.executor.read(actor, city_playbooks.playbooks_for, actor.city_id)
    return [_summary(name, origin, pb) for name, (origin, pb) in sorted(found.items())]


@router.get("/playbooks/{incident_type}", response_model=PlaybookDetail)
async def get_playbook(
    incident_type: TypePath, actor: CurrentActor, parts: Parts
) -> PlaybookDetail:
    """One playbook in full: the requests it raises, escalation, timeouts, checklists."""
    found = await parts.executor.read(actor, city_playbooks.playbooks_for, actor.city_id)
    if incident_type not in found:
        raise NotFound(f"no playbook '{incident_type}'")
    origin, playbook = found[incident_type]
    return PlaybookDetail(origin=origin, playbook=playbook.model_dump(mode="json"))


@router.put(
    "/cities/{city_id}/playbooks/{incident_type}",
    response_model=PlaybookDetail,
    status_code=status.HTTP_200_OK,
    responses={
        413: {
            "model": Message,
            "description": f"The playbook is over {LIMITS.max_bytes:,} bytes; it was not parsed",
        }
    },
)
async def upload_city_playbook(
    city_id: IdPath, incident_type: TypePath, body: PlaybookUpload, actor: AdminActor, parts: Parts
) -> PlaybookDetail:
    """Store a city's own playbook, validated like the stock ones (422 lists every problem
    with its line; 413 above the byte limit)."""
    # Parsed in a worker thread before the write transaction, which only stores the result.
    checked = await to_thread.run_sync(
        _check_upload, parts.executor.catalogue, incident_type, body.source
    )
    _, playbook = await parts.executor.run(
        actor, city_playbooks.save_city_playbook, city_id, checked
    )
    return PlaybookDetail(origin="city", playbook=playbook.model_dump(mode="json"))


def _check_upload(
    catalogue: Catalogue, incident_type: str, source: str
) -> city_playbooks.CheckedPlaybook:
    try:
        return city_playbooks.check_city_playbook(catalogue, incident_type, source)
    except PlaybookTooLarge as exc:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail=exc.problems[0].message
        ) from exc


@router.delete(
    "/cities/{city_id}/playbooks/{incident_type}", status_code=status.HTTP_204_NO_CONTENT
)
async def delete_city_playbook(
    city_id: IdPath, incident_type: TypePath, actor: AdminActor, parts: Parts
) -> None:
    await parts.executor.run(actor, city_playbooks.delete_city_playbook, city_id, incident_type)


@router.get("/resources", response_model=list[ResourcePublic], tags=["resources"])
def list_resources(
    _: CurrentActor,
    parts: Parts,
    kind: Kind | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ResourcePublic]:
    """The resource catalogue: what a request can name."""
    catalogue = parts.executor.catalogue
    found = []
    for resource_id in catalogue.ids():
        resource = catalogue.get(resource_id)
        assert resource is not None
        if kind is not None and resource.kind != kind:
            continue
        if q and q.lower() not in f"{resource.id} {resource.description}".lower():
            continue
        found.append(ResourcePublic.model_validate(resource.model_dump()))
    return found
