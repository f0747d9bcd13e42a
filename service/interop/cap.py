"""CAP 1.2 alerts: an incident's alert history as Alert/Update/Cancel, the Atom feed alert
hubs poll, the rules CAP states beyond its schema, and reading an alert to import.

Pure functions over public models and element trees: the routes fetch what the caller
may see (service.queries) and hand it here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.domain.errors import Invalid
from service.domain.events import EventType
from service.interop import mapping
from service.interop.safe_xml import children, local, text
from service.models import EventPublic, IncidentPublic

# The event types that change what an alert says.
DECLARED = EventType.INCIDENT_DECLARED.value
UPDATED = EventType.INCIDENT_UPDATED.value
CLOSED = EventType.INCIDENT_CLOSED.value

_FORBIDDEN_ID_CHARS = re.compile(r"[\s,<&]")
_CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_POINT = r"-?\d{1,2}(\.\d+)?,-?\d{1,3}(\.\d+)?"
_CIRCLE = re.compile(rf"^{_POINT} \d+(\.\d+)?$")
_POLYGON = re.compile(rf"^{_POINT}( {_POINT}){{3,}}$")


@dataclass(frozen=True)
class AlertVersion:
    """One alert of an incident's history, from the event that made it."""

    msg_type: str  # Alert | Update | Cancel
    seq: int
    sent: datetime
    title: str
    severity: str
    description: str


@dataclass(frozen=True)
class Area:
    """Where an alert applies: a circle around the incident, named by the requesting city."""

    description: str
    lat: float
    lon: float
    radius_km: float


def cap_time(moment: datetime) -> str:
    """CAP's time form: seconds, and an offset; UTC is written `-00:00`, never `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def alert_identifier(incident_id: int, seq: int) -> str:
    return f"aidmesh-incident-{incident_id}-{seq}"


def alert_versions(events: Sequence[EventPublic]) -> list[AlertVersion]:
    """The incident's alerts, oldest first: Alert when declared, Update when what an alert
    says (severity, headline, description) changes, Cancel when it is closed."""
    versions: list[AlertVersion] = []
    for event in events:
        snapshot = event.data.get("incident") or {}
        if event.type == DECLARED:
            msg_type = "Alert"
        elif event.type == CLOSED:
            msg_type = "Cancel"
        elif event.type == UPDATED and versions:
            last = versions[-1]
            said = (snapshot.get("severity"), snapshot.get("title"), snapshot.get("description"))
            if said == (last.severity, last.title, last.description):
                continue
            msg_type = "Update"
        else:
            continue
        versions.append(
            AlertVersion(
                msg_type=msg_type,
                seq=event.seq,
                sent=event.occurred_at,
                title=str(snapshot.get("title", "")),
                severity=str(snapshot.get("severity", "severe")),
                description=str(snapshot.get("description", "")),
            )
        )
    return versions


def _add(parent: ET.Element, name: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{mapping.CAP_NAMESPACE}}}{name}")
    element.text = value
    return element


def build_alert(
    incident: IncidentPublic,
    versions: Sequence[AlertVersion],
    index: int,
    *,
    sender: str,
    area: Area,
    restriction: str,
) -> ET.Element:
    """The CAP alert of `versions[index]`; an Update or Cancel references the one before."""
    version = versions[index]
    ns = mapping.CAP_NAMESPACE
    alert = ET.Element(f"{{{ns}}}alert")
    _add(alert, "identifier", alert_identifier(incident.id, version.seq))
    _add(alert, "sender", sender)
    _add(alert, "sent", cap_time(version.sent))
    _add(alert, "status", "Exercise" if incident.exercise else "Actual")
    _add(alert, "msgType", version.msg_type)
    _add(alert, "source", "aidmesh")
    _add(alert, "scope", "Restricted")
    _add(alert, "restriction", restriction)
    if version.msg_type == "Cancel":
        _add(alert, "note", "The incident is closed.")
    if index > 0:
        before = versions[index - 1]
        reference = f"{sender},{alert_identifier(incident.id, before.seq)},{cap_time(before.sent)}"
        _add(alert, "references", reference)
    _add(alert, "incidents", f"aidmesh-incident-{incident.id}")
    _add_info(alert, incident, version, area)
    return alert


def _add_info(
    alert: ET.Element, incident: IncidentPublic, version: AlertVersion, area: Area
) -> None:
    event = mapping.cap_event(incident.incident_type)
    grade = mapping.CAP_GRADES.get(version.severity, mapping.CAP_GRADES["severe"])
    info = ET.SubElement(alert, f"{{{mapping.CAP_NAMESPACE}}}info")
    _add(info, "language", "en")
    _add(info, "category", event.category)
    _add(info, "event", event.event)
    _add(info, "urgency", grade.urgency)
    _add(info, "severity", grade.severity)
    _add(info, "certainty", grade.certainty)
    _add(info, "senderName", area.description)
    _add(info, "headline", version.title[:160])
    if version.description:
        _add(info, "description", version.description)
    parameter = ET.SubElement(info, f"{{{mapping.CAP_NAMESPACE}}}parameter")
    _add(parameter, "valueName", "aidmesh:incident_type")
    _add(parameter, "value", incident.incident_type)
    area_element = ET.SubElement(info, f"{{{mapping.CAP_NAMESPACE}}}area")
    _add(area_element, "areaDesc", area.description)
    _add(area_element, "circle", f"{area.lat:.5f},{area.lon:.5f} {area.radius_km:.1f}")


def to_bytes(element: ET.Element) -> bytes:
    ET.register_namespace("", mapping.CAP_NAMESPACE)
    body: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return body


# --- Atom ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    identifier: str
    title: str
    updated: datetime
    summary: str
    href: str


def build_feed(entries: Sequence[FeedEntry], *, feed_id: str, self_href: str) -> bytes:
    """An Atom feed whose entries link to each incident's current CAP alert."""
    ns = mapping.ATOM_NAMESPACE
    feed = ET.Element(f"{{{ns}}}feed")

    def add(parent: ET.Element, name: str, value: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ns}}}{name}")
        element.text = value
        return element

    add(feed, "id", feed_id)
    add(feed, "title", "aidmesh CAP alerts")
    newest = max((e.updated for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
    add(feed, "updated", cap_time(newest))
    author = ET.SubElement(feed, f"{{{ns}}}author")
    add(author, "name", "aidmesh")
    ET.SubElement(feed, f"{{{ns}}}link", rel="self", href=self_href)
    for item in entries:
        entry = ET.SubElement(feed, f"{{{ns}}}entry")
        add(entry, "id", f"urn:aidmesh:cap:{item.identifier}")
        add(entry, "title", item.title)
        add(entry, "updated", cap_time(item.updated))
        add(entry, "summary", item.summary)
        ET.SubElement(
            entry, f"{{{ns}}}link", rel="alternate", type=mapping.CAP_MEDIA_TYPE, href=item.href
        )
    ET.register_namespace("", ns)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


# --- Rules beyond the schema --------------------------------------------------------------


def rule_problems(alert: ET.Element) -> list[str]:
    """What CAP 1.2 asks that its XML schema does not check: identifier and sender
    characters, time offsets, circle and polygon syntax."""
    problems: list[str] = []
    for name in ("identifier", "sender"):
        value = text(alert, name) or ""
        if not value or _FORBIDDEN_ID_CHARS.search(value):
            problems.append(f"{name} {value!r} is empty or has a space, comma, '<' or '&'")
    times = [e for e in alert.iter() if local(e.tag) in ("sent", "effective", "onset", "expires")]
    for element in times:
        if not _CAP_TIME.match((element.text or "").strip()):
            problems.append(f"{local(element.tag)} {element.text!r} has no offset or uses Z")
    for element in alert.iter():
        value = (element.text or "").strip()
        if local(element.tag) == "circle" and not _CIRCLE.match(value):
            problems.append(f"circle {value!r} is not 'lat,lon radius'")
        if local(element.tag) == "polygon":
            points = value.split()
            if not _POLYGON.match(value) or points[0] != points[-1]:
                problems.append(f"polygon {value!r} is not 4+ closed 'lat,lon' pairs")
    references = text(alert, "references")
    if references is not None:
        for reference in references.split():
            parts = reference.split(",")
            if len(parts) != 3 or not _CAP_TIME.match(parts[2]):
                problems.append(f"reference {reference!r} is not 'sender,identifier,sent'")
    return problems


# --- Import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedAlert:
    """What aidmesh keeps of a CAP alert it imports."""

    identifier: str
    sender: str
    exercise: bool
    incident_type: str
    severity: str
    title: str
    description: str
    lat: float | None
    lon: float | None


def read_alert(alert: ET.Element) -> ImportedAlert:
    """The incident a CAP 1.2 alert declares, or Invalid saying what is missing."""
    if alert.tag != f"{{{mapping.CAP_NAMESPACE}}}alert":
        raise Invalid(f"not a CAP 1.2 alert: the root is {alert.tag!r}")
    identifier = text(alert, "identifier") or ""
    sender = text(alert, "sender") or ""
    if not identifier or not sender:
        raise Invalid("the alert needs an identifier and a sender")
    if len(identifier) > 200 or len(sender) > 200:
        raise Invalid("the alert's identifier and sender must be at most 200 characters")
    status = text(alert, "status")
    if status not in ("Actual", "Exercise"):
        raise Invalid(f"only Actual or Exercise alerts declare incidents (this one is {status})")
    msg_type = text(alert, "msgType")
    if msg_type not in ("Alert", "Update"):
        raise Invalid(f"only Alert or Update messages declare incidents (this one is {msg_type})")
    infos = children(alert, "info")
    if not infos:
        raise Invalid("the alert has no info block")
    info = infos[0]
    event = text(info, "event") or ""
    categories = [(c.text or "").strip() for c in children(info, "category")]
    cap_severity = text(info, "severity") or "Unknown"
    headline = text(info, "headline") or event or identifier
    lat, lon = _location(info)
    return ImportedAlert(
        identifier=identifier,
        sender=sender,
        exercise=status == "Exercise",
        incident_type=mapping.incident_type_for(event, categories),
        severity=mapping.CAP_SEVERITY_IMPORT.get(cap_severity, "moderate"),
        title=headline[:200],
        description=(text(info, "description") or "")[:5000],
        lat=lat,
        lon=lon,
    )


def _location(info: ET.Element) -> tuple[float | None, float | None]:
    """The first circle's centre, else the first polygon's centroid, else none."""
    for area in children(info, "area"):
        for circle in children(area, "circle"):
            value = (circle.text or "").strip()
            if _CIRCLE.match(value):
                return _point(value.split()[0])
        for polygon in children(area, "polygon"):
            value = (polygon.text or "").strip()
            if _POLYGON.match(value):
                points = [_point(p) for p in value.split()]
                if points[0] == points[-1]:
                    points = points[:-1]
                lats = [p[0] for p in points]
                lons = [p[1] for p in points]
                return sum(lats) / len(lats), sum(lons) / len(lons)
    return None, None


def _point(pair: str) -> tuple[float, float]:
    lat_text, lon_text = pair.split(",")
    lat, lon = float(lat_text), float(lon_text)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid(f"the point {pair!r} is outside WGS 84 latitude and longitude")
    return lat, lon
