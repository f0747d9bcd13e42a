"""The open-data observatory: public, unauthenticated feeds of a network's closed incidents
(GeoJSON), its aid flows (CSV with an HXL hashtag row) and its chart series; and the
settings behind them (the admin sets a network's licence and delay, a city's manager or
the admin its opt-in). Thin: each route validates, calls one command, answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from service.api.deps import AdminActor, IdPath, ManagerOrAdminActor, Offset, Parts
from service.commands import observatory
from service.domain import observatory as obs
from service.domain.actors import PUBLIC
from service.models import Input, PlainDigits, StrictBool

router = APIRouter(tags=["observatory"])

PUBLIC_READS: tuple[str, ...] = (
    "/observatory",
    "/observatory/networks/{network_id}",
    "/observatory/networks/{network_id}/incidents.geojson",
    "/observatory/networks/{network_id}/flows.csv",
)
"""The API's only routes that need no token (GET only)."""

# Shared caches may keep a feed for five minutes: the data is at least a delay old anyway,
# and a popular feed must not cost a query per reader.
CACHE_CONTROL = "public, max-age=300"
FeedLimit = Annotated[
    int, PlainDigits, Query(ge=1, le=5000, description="Incidents per page (oldest closed first).")
]
Licence = Annotated[str, StringConstraints(strict=True, pattern=obs.LICENCE_PATTERN)]


class NetworkSettingsBody(Input):
    licence: Licence = Field(description="An SPDX licence identifier, e.g. `CC-BY-4.0`.")
    publication_delay_days: Annotated[
        int, Field(strict=True, ge=0, le=obs.MAX_PUBLICATION_DELAY_DAYS)
    ] = Field(description="Incidents are published this many days after they close.")


class NetworkSettingsPublic(BaseModel):
    network_id: int
    licence: str
    publication_delay_days: int
    updated_at: datetime


class CitySettingsBody(Input):
    opted_in: StrictBool = Field(
        description="The city's closed incidents and the aid it gave appear in the "
        "observatories of its networks."
    )


class CitySettingsPublic(BaseModel):
    city_id: int
    opted_in: bool
    updated_at: datetime


class ObservatoryPublic(BaseModel):
    network_id: int
    slug: str
    name: str
    licence: str
    publication_delay_days: int
    cities: list[str] = Field(description="The member cities that opted in.")


class CityAidPublic(BaseModel):
    city: str
    units_given: int
    units_received: int


class MonthFillPublic(BaseModel):
    month: str
    request_count: int
    filled_count: int
    fill_p50_s: float | None


class TypeCountPublic(BaseModel):
    incident_type: str
    incident_count: int


class SummaryPublic(BaseModel):
    """The chart series of a network's observatory, over every publishable incident."""

    network_id: int
    slug: str
    name: str
    licence: str
    publication_delay_days: int
    published_through: datetime
    incident_count: int
    aid_by_city: list[CityAidPublic]
    fill_by_month: list[MonthFillPublic]
    incidents_by_type: list[TypeCountPublic]


def _cached(response: Response) -> None:
    response.headers["Cache-Control"] = CACHE_CONTROL


# Settings -------------------------------------------------------------------------------------


@router.put("/networks/{network_id}/observatory", response_model=NetworkSettingsPublic)
async def set_network_observatory(
    network_id: IdPath, body: NetworkSettingsBody, actor: AdminActor, parts: Parts
) -> NetworkSettingsPublic:
    """Publish the network's observatory under `licence`, `publication_delay_days` after
    each incident closes (the admin)."""
    row = await parts.executor.run(
        actor,
        observatory.set_network_settings,
        network_id,
        body.licence,
        body.publication_delay_days,
    )
    return NetworkSettingsPublic.model_validate(row, from_attributes=True)


@router.put("/cities/{city_id}/observatory", response_model=CitySettingsPublic)
async def set_city_observatory(
    city_id: IdPath, body: CitySettingsBody, actor: ManagerOrAdminActor, parts: Parts
) -> CitySettingsPublic:
    """Opt the city in or out of its networks' observatories (its manager, or the admin)."""
    row = await parts.executor.run(actor, observatory.set_city_opt_in, city_id, body.opted_in)
    return CitySettingsPublic.model_validate(row, from_attributes=True)


@router.get("/cities/{city_id}/observatory", response_model=CitySettingsPublic)
async def get_city_observatory(
    city_id: IdPath, actor: ManagerOrAdminActor, parts: Parts
) -> CitySettingsPublic:
    row = await parts.executor.read(actor, observatory.city_opt_in, city_id)
    return CitySettingsPublic.model_validate(row, from_attributes=True)


# Public feeds ---------------------------------------------------------------------------------


@router.get("/observatory", response_model=list[ObservatoryPublic])
async def list_observatories(parts: Parts, response: Response) -> list[ObservatoryPublic]:
    """Every network that publishes an observatory. Public: no token needed."""
    _cached(response)
    found = await parts.executor.read(PUBLIC, observatory.published_networks)
    return [
        ObservatoryPublic(
            network_id=n.network_id,
            slug=n.slug,
            name=n.name,
            licence=n.licence,
            publication_delay_days=n.publication_delay_days,
            cities=n.city_names,
        )
        for n in found
    ]


@router.get("/observatory/networks/{network_id}", response_model=SummaryPublic)
async def observatory_summary(
    network_id: IdPath, parts: Parts, response: Response
) -> SummaryPublic:
    """The network's chart series: aid given and received per city, the median time to
    fill by month, incidents by type. Public: no token needed."""
    found = await parts.executor.read(PUBLIC, observatory.published, network_id)
    drawn = obs.charts(found)
    _cached(response)
    return SummaryPublic(
        network_id=found.network_id,
        slug=found.network_slug,
        name=found.network_name,
        licence=found.licence,
        publication_delay_days=found.publication_delay_days,
        published_through=found.published_through,
        incident_count=found.incident_count,
        aid_by_city=[
            CityAidPublic.model_validate(c, from_attributes=True) for c in drawn.aid_by_city
        ],
        fill_by_month=[
            MonthFillPublic.model_validate(m, from_attributes=True) for m in drawn.fill_by_month
        ],
        incidents_by_type=[
            TypeCountPublic(incident_type=t, incident_count=n) for t, n in drawn.incidents_by_type
        ],
    )


def _feed(
    found: obs.Published, name: str, limit: int, offset: int, content: bytes | str, media_type: str
) -> Response:
    """A page of a feed, cacheable, with a link to the next page when there is one."""
    headers = {"Cache-Control": CACHE_CONTROL}
    path = f"/api/v1/observatory/networks/{found.network_id}/{name}"
    if offset + limit < found.incident_count:
        headers["Link"] = f'<{path}?limit={limit}&offset={offset + limit}>; rel="next"'
    return Response(content=content, media_type=media_type, headers=headers)


@router.get(
    "/observatory/networks/{network_id}/incidents.geojson",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def observatory_incidents(
    network_id: IdPath, parts: Parts, limit: FeedLimit = 1000, offset: Offset = 0
) -> Response:
    """The network's closed, non-exercise incidents of cities that opted in, closed longer
    ago than the delay, with aggregate figures and the licence (GeoJSON, RFC 7946)."""
    found = await parts.executor.read(PUBLIC, observatory.published, network_id, limit, offset)
    body = orjson.dumps(obs.feature_collection(found))
    return _feed(found, "incidents.geojson", limit, offset, body, "application/geo+json")


@router.get(
    "/observatory/networks/{network_id}/flows.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def observatory_flows(
    network_id: IdPath, parts: Parts, limit: FeedLimit = 1000, offset: Offset = 0
) -> Response:
    """The aid flows of those incidents (one row per request and helping city; helpers
    that did not opt in summed as "other cities"): a header row, an HXL hashtag row, then
    the data, the licence in its own column."""
    found = await parts.executor.read(PUBLIC, observatory.published, network_id, limit, offset)
    body = obs.flows_csv(found)
    return _feed(found, "flows.csv", limit, offset, body, "text/csv; charset=utf-8")
