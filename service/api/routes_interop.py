"""The field's formats: CAP 1.2 alerts and their Atom feed, EDXL-RM 1.0 messages (XML and
JSON), GeoJSON; imports of CAP alerts and EDXL-RM requests.

Exports read through the same visibility as the JSON API (service.queries), so a
foreign incident answers the same 404 as a missing one. Imports read the raw body
(XML, not JSON) with a byte cap and parse it safely (service.interop.safe_xml).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from service import queries
from service.api.deps import CurrentActor, IdPath, ManagerActor, Parts, SessionDep
from service.commands import interop_imports
from service.commands.presenters import incident_public, request_public
from service.domain.errors import NotFound
from service.interop import cap, edxl_rm, geojson, mapping, reads, safe_xml
from service.models import AidRequestPublic, IncidentPublic

router = APIRouter(tags=["interoperability"])

XML_TYPES = ("application/xml", "text/xml", mapping.CAP_MEDIA_TYPE)
FEED_LIMIT = 100


def _import_responses(model: type[Any], what: str) -> dict[int | str, dict[str, Any]]:
    detail = {"application/json": {"example": {"detail": "…"}}}
    return {
        200: {"model": model, "description": f"Imported before: the {what} the first import made"},
        413: {"description": "The document is larger than the cap", "content": detail},
        415: {"description": "The body is not XML", "content": detail},
        422: {"description": "Unsafe, malformed or unusable XML, and why", "content": detail},
    }


def _xml(body: bytes, media_type: str) -> Response:
    return Response(content=body, media_type=media_type)


async def _read_xml(request: Request, parts: Parts) -> Any:
    """The parsed root of the request's XML body: 415 for another type, 413 past the cap,
    422 for a document refused as unsafe or malformed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in XML_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send XML ({', '.join(XML_TYPES)}), not {content_type or 'no content type'}",
        )
    limit = parts.settings.interop_max_xml_bytes
    declared = request.headers.get("content-length", "")
    try:
        if declared.isdigit() and int(declared) > limit:
            raise safe_xml.TooLarge(limit)
        data = await safe_xml.read_capped(request.stream(), limit)
    except safe_xml.TooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None
    return safe_xml.parse(data, limit=limit)


# --- CAP ----------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/cap",
    response_class=Response,
    responses={200: {"content": {mapping.CAP_MEDIA_TYPE: {}}}},
)
def incident_cap(
    incident_id: IdPath, actor: CurrentActor, session: SessionDep, parts: Parts
) -> Response:
    """The incident's current CAP 1.2 alert (Alert, Update or Cancel)."""
    detail = queries.incident_detail(session, actor, incident_id)
    versions = cap.alert_versions(reads.alert_events(session, [incident_id])[incident_id])
    if not versions:
        raise NotFound(f"incident {incident_id} has no alert yet")
    alert = _alert(session, parts, detail, versions, len(versions) - 1)
    return _xml(cap.to_bytes(alert), mapping.CAP_MEDIA_TYPE)


def _alert(
    session: Any,
    parts: Parts,
    incident: IncidentPublic,
    versions: list[cap.AlertVersion],
    index: int,
) -> Any:
    city = reads.cities(session).get(incident.city_id)
    name = city.name if city is not None else f"city {incident.city_id}"
    area = cap.Area(name, incident.lat, incident.lon, reads.ring0_radius_km(session, incident.id))
    restriction = f"For the mutual-aid networks of {name} and the cities its requests reach."
    return cap.build_alert(
        incident,
        versions,
        index,
        sender=parts.settings.cap_sender,
        area=area,
        restriction=restriction,
    )


@router.get(
    "/feeds/cap",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}},
)
def cap_feed(actor: CurrentActor, session: SessionDep, parts: Parts, request: Request) -> Response:
    """An Atom feed of the current CAP alert of each incident you may see (newest 100)."""
    incidents = reads.visible_incidents(session, actor, FEED_LIMIT)
    events = reads.alert_events(session, [i.id for i in incidents])
    entries = []
    for incident in incidents:
        versions = cap.alert_versions(events[incident.id])
        if not versions:
            continue
        latest = versions[-1]
        entries.append(
            cap.FeedEntry(
                identifier=cap.alert_identifier(incident.id, latest.seq),
                title=f"{latest.msg_type}: {incident.title}",
                updated=latest.sent,
                summary=f"{incident.incident_type}, {incident.severity}, {incident.status}",
                href=str(request.url_for("incident_cap", incident_id=incident.id)),
            )
        )
    body = cap.build_feed(
        entries, feed_id=f"urn:aidmesh:{parts.settings.cap_sender}:feed", self_href=str(request.url)
    )
    return _xml(body, "application/atom+xml")


@router.post(
    "/incidents/import/cap",
    response_model=IncidentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_import_responses(IncidentPublic, "incident"),
    openapi_extra={"requestBody": {"content": {mapping.CAP_MEDIA_TYPE: {}}, "required": True}},
)
async def import_cap(
    actor: ManagerActor, parts: Parts, request: Request, response: Response
) -> IncidentPublic:
    """Declare an incident for your city from a CAP 1.2 alert. Importing the same alert
    (identifier and sender) again returns the incident it declared, with 200."""
    alert = cap.read_alert(await _read_xml(request, parts))
    incident, created = await parts.executor.run(actor, interop_imports.import_cap_alert, alert)
    if not created:
        response.status_code = status.HTTP_200_OK
    return incident_public(incident)


# --- EDXL-RM ------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/edxl-rm",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}, "application/json": {}}}},
)
def incident_edxl_rm(
    incident_id: IdPath,
    actor: CurrentActor,
    session: SessionDep,
    parts: Parts,
    format_: Annotated[Literal["xml", "json"], Query(alias="format")] = "xml",
) -> Response:
    """The incident's EDXL-RM 1.0 messages in order, as XML or in the JSON binding."""
    detail = queries.incident_detail(session, actor, incident_id)
    names = {i: c.name for i, c in reads.cities(session).items()}
    messages = edxl_rm.messages_for(
        detail, list(reads.all_events(session, incident_id)), names, parts.executor.catalogue
    )
    if format_ == "json":
        return JSONResponse({"messages": [edxl_rm.to_json(m) for m in messages]})
    return _xml(edxl_rm.to_xml(messages), "application/xml")


@router.post(
    "/incidents/import/edxl-rm",
    response_model=AidRequestPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_import_responses(AidRequestPublic, "request"),
    openapi_extra={"requestBody": {"content": {"application/xml": {}}, "required": True}},
)
async def import_edxl_rm(
    actor: ManagerActor, parts: Parts, request: Request, response: Response
) -> AidRequestPublic:
    """Raise a request for your city from an EDXL-RM RequestResource: on the incident its
    IncidentID names (one of yours, or one imported before), else on a new incident.
    Importing the same MessageID again returns the request it raised, with 200."""
    message = edxl_rm.read_request(await _read_xml(request, parts), parts.executor.catalogue)
    aid_request, created = await parts.executor.run(
        actor, interop_imports.import_rm_request, message
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return request_public(aid_request)


# --- GeoJSON ------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/geojson",
    response_class=JSONResponse,
    responses={200: {"content": {geojson.GEOJSON_MEDIA_TYPE: {}}}},
)
def incident_geojson(incident_id: IdPath, actor: CurrentActor, session: SessionDep) -> Response:
    """The incident, its requesting city, the cities its requests reach (ring, distance)
    and the claiming cities (units), as an RFC 7946 FeatureCollection."""
    detail = queries.incident_detail(session, actor, incident_id)
    collection = geojson.incident_collection(
        detail, reads.cities(session), reads.reach(session, incident_id)
    )
    return JSONResponse(collection, media_type=geojson.GEOJSON_MEDIA_TYPE)


@router.get(
    "/geojson/cities",
    response_class=JSONResponse,
    responses={200: {"content": {geojson.GEOJSON_MEDIA_TYPE: {}}}},
)
def cities_geojson(actor: CurrentActor, session: SessionDep) -> Response:
    """Every city of the network, as an RFC 7946 FeatureCollection."""
    del actor  # any token may list the cities (as GET /cities)
    collection = geojson.cities_collection(list(reads.cities(session).values()))
    return JSONResponse(collection, media_type=geojson.GEOJSON_MEDIA_TYPE)
