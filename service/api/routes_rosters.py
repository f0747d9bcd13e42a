"""Cities' rosters of packages: kept by the city's managers, read by its networks' cities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from service.api.deps import CurrentActor, IdPath, Limit, Offset, Parts
from service.commands import matching, rosters
from service.models import (
    PackageCreate,
    PackagePublic,
    PackageUpdate,
    Page,
    PlainDigits,
    RequestMatches,
)

router = APIRouter(tags=["rosters"])


@router.get("/cities/{city_id}/roster", response_model=Page[PackagePublic])
async def list_roster(
    city_id: IdPath, actor: CurrentActor, parts: Parts, limit: Limit = 50, offset: Offset = 0
) -> Page[PackagePublic]:
    """The city's packages, with each resource's units, cap and what claims hold now.
    Readable by the city and every city of its networks."""
    return await parts.executor.read(actor, rosters.list_packages, city_id, limit, offset)


@router.post(
    "/cities/{city_id}/roster",
    response_model=PackagePublic,
    status_code=status.HTTP_201_CREATED,
)
async def add_package(
    city_id: IdPath, body: PackageCreate, actor: CurrentActor, parts: Parts
) -> PackagePublic:
    """Add a package to your city's roster (its managers only)."""
    return await parts.executor.run(actor, rosters.create_package, city_id, body)


@router.get("/cities/{city_id}/roster/{package_id}", response_model=PackagePublic)
async def get_package(
    city_id: IdPath, package_id: IdPath, actor: CurrentActor, parts: Parts
) -> PackagePublic:
    return await parts.executor.read(actor, rosters.get_package, city_id, package_id)


@router.patch("/cities/{city_id}/roster/{package_id}", response_model=PackagePublic)
async def update_package(
    city_id: IdPath, package_id: IdPath, body: PackageUpdate, actor: CurrentActor, parts: Parts
) -> PackagePublic:
    """Change a package: give only what changes. Units and the cap never drop below what
    claims hold now (409)."""
    return await parts.executor.run(actor, rosters.update_package, city_id, package_id, body)


@router.delete("/cities/{city_id}/roster/{package_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_package(
    city_id: IdPath, package_id: IdPath, actor: CurrentActor, parts: Parts
) -> None:
    """Remove a package no claim was ever made from (409 otherwise: mark it unavailable)."""
    await parts.executor.run(actor, rosters.delete_package, city_id, package_id)


Lenders = Annotated[
    int, PlainDigits, Query(ge=1, le=100, description="Lenders shown per request, first ones.")
]


@router.get("/incidents/{incident_id}/matches", response_model=Page[RequestMatches])
async def incident_matches(
    incident_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    limit: Limit = 100,
    offset: Offset = 0,
    lenders: Lenders = 10,
) -> Page[RequestMatches]:
    """Who could help with each open request of the incident: the cities it targets whose
    rosters hold the resource available now, by ring, distance and time to readiness.
    For the requesting city (any role) and the admin."""
    return await parts.executor.read(
        actor, matching.incident_matches, incident_id, limit, offset, lenders
    )


@router.get("/requests/{request_id}/matches", response_model=RequestMatches)
async def request_matches(
    request_id: IdPath, actor: CurrentActor, parts: Parts, lenders: Lenders = 10
) -> RequestMatches:
    """Who could help with one request (see `GET /incidents/{id}/matches`)."""
    return await parts.executor.read(actor, matching.request_matches, request_id, lenders)
