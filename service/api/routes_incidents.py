"""Incidents, their requests, claims and event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service import queries
from service.api.claim_lane import claim_response
from service.api.deps import (
    ActingCityActor,
    CurrentActor,
    IdempotencyKey,
    IdPath,
    IdQuery,
    Limit,
    ManagerActor,
    ManagerOrAdminActor,
    Offset,
    Parts,
    SessionDep,
)
from service.commands import aid_requests, claims, incident_updates, incidents, request_updates
from service.commands.presenters import claim_public, incident_public, request_public
from service.models import (
    MAX_ID,
    AidRequestCreate,
    AidRequestPublic,
    AidRequestUpdate,
    ClaimCreate,
    ClaimPublic,
    ClaimStatusChange,
    EventPage,
    IncidentCreate,
    IncidentDetail,
    IncidentPublic,
    IncidentUpdate,
    Kind,
    Page,
    PlainDigits,
    Slug,
    TrueOrFalse,
)

router = APIRouter()

IncidentStatusQ = Annotated[str | None, Query(pattern="^(active|closed)$")]
RequestStatusQ = Annotated[
    str | None,
    Query(pattern="^(open|partially_claimed|claimed|fulfilled|cancelled|expired)$"),
]


@router.post(
    "/incidents",
    response_model=IncidentDetail,
    status_code=status.HTTP_201_CREATED,
    tags=["incidents"],
)
async def declare_incident(
    body: IncidentCreate, actor: ManagerActor, parts: Parts
) -> IncidentDetail:
    """Declare an incident for your city; with `playbook`, its requests are raised at once."""
    incident = await parts.executor.run(actor, incidents.declare_incident, body)
    with parts.db.read() as session:
        return queries.incident_detail(session, actor, incident.id or 0)


@router.get("/incidents", response_model=Page[IncidentPublic], tags=["incidents"])
def list_incidents(
    actor: CurrentActor,
    session: SessionDep,
    status_: Annotated[IncidentStatusQ, Query(alias="status")] = None,
    city_id: IdQuery = None,
    incident_type: Annotated[Slug | None, Query()] = None,
    exercise: Annotated[bool | None, TrueOrFalse, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[IncidentPublic]:
    """Incidents you may see, newest first."""
    return queries.list_incidents(
        session,
        actor,
        status=status_,
        city_id=city_id,
        incident_type=incident_type,
        exercise=exercise,
        limit=limit,
        offset=offset,
    )


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, tags=["incidents"])
def get_incident(incident_id: IdPath, actor: CurrentActor, session: SessionDep) -> IncidentDetail:
    return queries.incident_detail(session, actor, incident_id)


@router.patch("/incidents/{incident_id}", response_model=IncidentPublic, tags=["incidents"])
async def update_incident(
    incident_id: IdPath, body: IncidentUpdate, actor: ManagerOrAdminActor, parts: Parts
) -> IncidentPublic:
    """Change the incident's severity, title or description: give only what changes.

    For the requesting city's manager and the admin. Each change is recorded in one
    `incident.updated` event (old and new values) and exported as a CAP `Update`; an
    update that changes nothing records nothing. A closed incident refuses (409), and
    so does an exercise asked to become real, or the other way round (422).
    """
    incident = await parts.executor.run(actor, incident_updates.update_incident, incident_id, body)
    return incident_public(incident)


@router.post("/incidents/{incident_id}/close", response_model=IncidentPublic, tags=["incidents"])
async def close_incident(incident_id: IdPath, actor: ManagerActor, parts: Parts) -> IncidentPublic:
    """Close the incident; requests still open are cancelled."""
    incident = await parts.executor.run(actor, incidents.close_incident, incident_id)
    return incident_public(incident)


@router.get("/incidents/{incident_id}/events", response_model=EventPage, tags=["events"])
def incident_events(
    incident_id: IdPath,
    actor: CurrentActor,
    session: SessionDep,
    after: Annotated[
        int, PlainDigits, Query(ge=0, le=MAX_ID, description="Last seq already seen.")
    ] = 0,
    limit: Annotated[int, PlainDigits, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """The incident's events with seq greater than `after`, in order."""
    return queries.events_after(session, actor, incident_id, after, limit)


@router.post(
    "/incidents/{incident_id}/requests",
    response_model=AidRequestPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["requests"],
)
async def raise_request(
    incident_id: IdPath, body: AidRequestCreate, actor: ManagerActor, parts: Parts
) -> AidRequestPublic:
    request = await parts.executor.run(actor, aid_requests.raise_request, incident_id, body)
    return request_public(request)


@router.get("/requests", response_model=Page[AidRequestPublic], tags=["requests"])
def city_inbox(
    actor: CurrentActor,
    session: SessionDep,
    status_: Annotated[RequestStatusQ, Query(alias="status")] = None,
    incident_id: IdQuery = None,
    kind: Kind | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AidRequestPublic]:
    """Your city's inbox: requests aimed at it, most urgent and newest first.

    Final requests (fulfilled, cancelled, expired) show only when asked for by `status`.
    """
    return queries.inbox(
        session,
        actor,
        status=status_,
        incident_id=incident_id,
        kind=kind,
        limit=limit,
        offset=offset,
    )


@router.get("/requests/{request_id}", response_model=AidRequestPublic, tags=["requests"])
def get_request(request_id: IdPath, actor: CurrentActor, session: SessionDep) -> AidRequestPublic:
    return queries.request_detail(session, actor, request_id)


@router.patch("/requests/{request_id}", response_model=AidRequestPublic, tags=["requests"])
async def update_request(
    request_id: IdPath, body: AidRequestUpdate, actor: ManagerOrAdminActor, parts: Parts
) -> AidRequestPublic:
    """Change the request's quantity, priority, needed-by or report-to: give only what changes.

    For the requesting city's manager and the admin. Each edit is recorded in one
    `request.updated` event (old and new values, and the request as it now is); an
    edit that changes nothing records nothing. A quantity below what is already claimed
    is refused (409), as is any edit of a final request or in a closed incident; a
    needed-by that is not in the future is 422.
    """
    request = await parts.executor.run(actor, request_updates.update_request, request_id, body)
    return request_public(request)


@router.post("/requests/{request_id}/cancel", response_model=AidRequestPublic, tags=["requests"])
async def cancel_request(request_id: IdPath, actor: ManagerActor, parts: Parts) -> AidRequestPublic:
    request = await parts.executor.run(actor, aid_requests.cancel_request, request_id)
    return request_public(request)


@router.post(
    "/requests/{request_id}/claims",
    response_model=ClaimPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["claims"],
)
async def claim_request(
    request_id: IdPath,
    body: ClaimCreate,
    key: IdempotencyKey,
    actor: ActingCityActor,
    parts: Parts,
) -> Response:
    """Claim all or part of a request for your city.

    Retrying with the same `Idempotency-Key` returns the first claim and claims nothing more.
    (A well-formed claim is usually answered ahead of the router, alike: see
    `service.api.claim_lane`.)
    """
    claim, created = await parts.executor.claim(actor, request_id, body, key)
    return claim_response(claim, created)


@router.get("/requests/{request_id}/claims", response_model=Page[ClaimPublic], tags=["claims"])
def list_request_claims(
    request_id: IdPath,
    actor: CurrentActor,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ClaimPublic]:
    return queries.request_claims(session, actor, request_id, limit, offset)


@router.get("/claims/{claim_id}", response_model=ClaimPublic, tags=["claims"])
def get_claim(claim_id: IdPath, actor: CurrentActor, session: SessionDep) -> ClaimPublic:
    return queries.claim_detail(session, actor, claim_id)


@router.post("/claims/{claim_id}/status", response_model=ClaimPublic, tags=["claims"])
async def change_claim_status(
    claim_id: IdPath, body: ClaimStatusChange, actor: ActingCityActor, parts: Parts
) -> ClaimPublic:
    """Move a claim along: accepted/declined (requesting manager); en_route, on_site,
    released, withdrawn (claiming city). Information claims are released with an `answer`."""
    claim = await parts.executor.run(actor, claims.change_claim_status, claim_id, body)
    return claim_public(claim)
