"""EDXL-RM 1.0 messages: each request and claim transition of an incident as the
message the standard names, in XML (the standard's namespaces) and in a JSON binding
with the same element names; and reading a RequestResource to import.

A message is built once as a tree of (name, text | children) in the standard's element
order (service.interop.mapping.ELEMENT_ORDER); both encodings are renderings of it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from playbooks import Catalogue
from service.domain.errors import Invalid
from service.interop import mapping
from service.interop.cap import cap_time
from service.interop.safe_xml import child, children, local, text
from service.models import EventPublic, IncidentPublic

Node = tuple[str, str | list["Node"]]


@dataclass(frozen=True)
class Message:
    """One EDXL-RM message: its type (the root element) and its elements in order."""

    message_type: str
    elements: list[Node]

    @property
    def message_id(self) -> str:
        return str(dict(self.elements)["MessageID"])


@dataclass
class _Thread:
    """What later messages point back at: the first and latest message of each request,
    the response message of each claim, and the ResourceInfoElementID of each request."""

    request_first: dict[int, str] = field(default_factory=dict)
    request_latest: dict[int, str] = field(default_factory=dict)
    claim_response: dict[int, str] = field(default_factory=dict)


def message_id(incident_id: int, seq: int, part: int = 0) -> str:
    suffix = f"-{part}" if part else ""
    return f"aidmesh-{incident_id}-{seq}{suffix}"


def resource_info_id(request_id: int) -> str:
    return f"aidmesh-request-{request_id}"


def messages_for(
    incident: IncidentPublic,
    events: Sequence[EventPublic],
    city_names: Mapping[int, str],
    catalogue: Catalogue,
) -> list[Message]:
    """Every EDXL-RM message of the incident's request and claim transitions, in seq order."""
    builder = _Builder(incident, city_names, catalogue)
    for event in events:
        builder.add(event)
    return builder.messages


class _Builder:
    def __init__(
        self, incident: IncidentPublic, city_names: Mapping[int, str], catalogue: Catalogue
    ) -> None:
        self.incident = incident
        self.city_names = city_names
        self.catalogue = catalogue
        self.thread = _Thread()
        self.messages: list[Message] = []

    def add(self, event: EventPublic) -> None:
        request = event.data.get("request")
        claim = event.data.get("claim")
        if request is None:
            return
        if event.type == "request.raised":
            self._request(event, request, preceding=None, description=request.get("notes", ""))
        elif event.type == "request.escalated":
            preceding = self.thread.request_latest.get(request["id"])
            ring = event.data.get("to_ring", request["ring"])
            self._request(
                event, request, preceding=preceding, description=f"Escalated to ring {ring}"
            )
        elif event.type == "request.updated":
            preceding = self.thread.request_latest.get(request["id"])
            self._request(
                event,
                request,
                preceding=preceding,
                description=_describe_changes(event.data.get("changes") or {}),
            )
        elif event.type in ("request.cancelled", "request.expired") and claim is None:
            self._recall(event, request, self.thread.request_latest.get(request["id"]), None)
        elif event.type == "claim.made" and claim is not None:
            self._response(event, request, claim)
        elif event.type == "claim.changed" and claim is not None:
            self._claim_changed(event, request, claim)

    # --- one method per kind of transition ----------------------------------------------

    def _request(
        self,
        event: EventPublic,
        request: dict[str, Any],
        *,
        preceding: str | None,
        description: str,
    ) -> None:
        information = request["kind"] == "information"
        kind = "RequestInformation" if information else "RequestResource"
        mid = message_id(self.incident.id, event.seq)
        first = self.thread.request_first.setdefault(request["id"], mid)
        self.thread.request_latest[request["id"]] = mid
        self._emit(
            kind,
            mid,
            event.occurred_at,
            description=description,
            originating=first,
            preceding=preceding,
            contact=(request["city_id"], mapping.ROLE_REQUESTER),
            info=self._resource_info(request, request["quantity"], schedule=_needed_by(request)),
        )

    def _recall(
        self,
        event: EventPublic,
        request: dict[str, Any],
        recalled: str | None,
        claim: dict[str, Any] | None,
    ) -> None:
        if recalled is None:
            return
        responder = claim is not None
        kind = "ResponseToRequestResource" if responder else "RequestResource"
        if not responder and request["kind"] == "information":
            kind = "RequestInformation"
        city_id = claim["city_id"] if claim else request["city_id"]
        role = mapping.ROLE_RESPONDER if responder else mapping.ROLE_REQUESTER
        quantity = claim["quantity"] if claim else request["quantity"]
        self._emit(
            kind,
            message_id(self.incident.id, event.seq),
            event.occurred_at,
            description="Withdrawn" if responder else f"Request {request['status']}",
            originating=self.thread.request_first.get(request["id"], recalled),
            preceding=recalled,
            recall=recalled,
            contact=(city_id, role),
            info=self._resource_info(request, quantity),
        )

    def _response(self, event: EventPublic, request: dict[str, Any], claim: dict[str, Any]) -> None:
        mid = message_id(self.incident.id, event.seq)
        self.thread.claim_response[claim["id"]] = mid
        self._emit(
            "ResponseToRequestResource",
            mid,
            event.occurred_at,
            description=claim.get("note", ""),
            originating=self.thread.request_first.get(request["id"], mid),
            preceding=self.thread.request_latest.get(request["id"]),
            contact=(claim["city_id"], mapping.ROLE_RESPONDER),
            info=self._resource_info(request, claim["quantity"], response=("Accept", None)),
        )

    def _claim_changed(
        self, event: EventPublic, request: dict[str, Any], claim: dict[str, Any]
    ) -> None:
        status = claim["status"]
        originating = self.thread.request_first.get(request["id"])
        preceding = self.thread.claim_response.get(claim["id"])
        if originating is None or preceding is None:
            return
        seq = event.seq
        at = event.occurred_at
        quantity = claim["quantity"]
        responder = (claim["city_id"], mapping.ROLE_RESPONDER)
        requester = (request["city_id"], mapping.ROLE_REQUESTER)
        common = {"originating": originating, "preceding": preceding}
        if status == "accepted":
            self._emit(
                "RequisitionResource",
                message_id(self.incident.id, seq),
                at,
                description=f"Claim {claim['id']} accepted",
                contact=requester,
                info=self._resource_info(request, quantity),
                **common,
            )
            self._emit(
                "CommitResource",
                message_id(self.incident.id, seq, 1),
                at,
                description=f"Claim {claim['id']} committed",
                contact=responder,
                info=self._resource_info(request, quantity),
                **common,
            )
        elif status in mapping.DEPLOYMENT_STATUS:
            self._emit(
                "ReportResourceDeploymentStatus",
                message_id(self.incident.id, seq),
                at,
                description=claim.get("note", ""),
                contact=responder,
                info=self._resource_info(
                    request,
                    quantity,
                    deployment=mapping.DEPLOYMENT_STATUS[status],
                    schedule=(mapping.SCHEDULE_TYPES[status], at, request.get("report_to", "")),
                ),
                **common,
            )
        elif status == "released" and request["kind"] == "information":
            self._emit(
                "ResponseToRequestInformation",
                message_id(self.incident.id, seq),
                at,
                description=claim.get("note", ""),
                contact=responder,
                info=self._resource_info(
                    request, quantity, response=("Accept", claim.get("answer") or "")
                ),
                **common,
            )
        elif status == "released":
            self._emit(
                "ReleaseResource",
                message_id(self.incident.id, seq),
                at,
                description=claim.get("note", ""),
                contact=responder,
                info=self._resource_info(
                    request, quantity, schedule=(mapping.SCHEDULE_TYPES["released"], at, "")
                ),
                **common,
            )
        elif status == "withdrawn":
            self._recall(event, request, preceding, claim)

    # --- the shared structures -------------------------------------------------------------

    def _emit(
        self,
        kind: str,
        mid: str,
        sent: datetime,
        *,
        description: str,
        originating: str,
        preceding: str | None,
        contact: tuple[int, str],
        info: list[Node],
        recall: str | None = None,
    ) -> None:
        elements: list[Node] = [
            ("MessageID", mid),
            ("SentDateTime", cap_time(sent)),
            ("MessageContentType", kind),
        ]
        if description:
            elements.append(("MessageDescription", description[:2000]))
        elements.append(("OriginatingMessageID", originating))
        if preceding is not None:
            elements.append(("PrecedingMessageID", preceding))
        elements.append(
            (
                "IncidentInformation",
                [
                    ("rm:IncidentDescription", self.incident.title),
                    ("rm:IncidentID", f"aidmesh-incident-{self.incident.id}"),
                ],
            )
        )
        if recall is not None:
            elements.append(
                ("MessageRecall", [("rm:RecalledMessageID", recall), ("rm:RecallType", "Cancel")])
            )
        elements.append(("ContactInformation", self._contact(*contact)))
        elements.append(("ResourceInformation", info))
        self.messages.append(Message(kind, elements))

    def _contact(self, city_id: int, role: str) -> list[Node]:
        name = self.city_names.get(city_id, f"city {city_id}")
        party: list[Node] = [
            (
                "xpil:PartyName",
                [("xnl:OrganisationName", [("xnl:NameElement", name)])],
            )
        ]
        return [
            ("rm:ContactDescription", f"{name} ({role.lower()})"),
            ("rm:ContactRole", role),
            ("rm:AdditionalContactInformation", party),
        ]

    def _resource_info(
        self,
        request: dict[str, Any],
        quantity: int,
        *,
        response: tuple[str, str | None] | None = None,
        deployment: str | None = None,
        schedule: tuple[str, datetime | None, str] | None = None,
    ) -> list[Node]:
        entry = self.catalogue.get(request["resource"])
        resource: list[Node] = [
            ("rm:Name", request["resource"]),
            (
                "rm:TypeStructure",
                [("rm:ValueListURN", mapping.RESOURCE_LIST_URN), ("rm:Value", request["resource"])],
            ),
            (
                "rm:Keyword",
                [("rm:ValueListURN", mapping.KIND_LIST_URN), ("rm:Value", request["kind"])],
            ),
            (
                "rm:Keyword",
                [("rm:ValueListURN", mapping.PRIORITY_LIST_URN), ("rm:Value", request["priority"])],
            ),
        ]
        if entry is not None:
            resource.append(("rm:Description", entry.description))
        if deployment is not None:
            status: list[Node] = [
                ("rm:ValueListURN", mapping.DEPLOYMENT_LIST_URN),
                ("rm:Value", deployment),
            ]
            resource.append(("rm:ResourceStatus", [("rm:DeploymentStatus", status)]))
        measured: list[Node] = [("rm:Amount", str(quantity))]
        if entry is not None:
            measured.append(("rm:UnitOfMeasure", entry.unit))
        assignment: list[Node] = [("rm:Quantity", [("rm:MeasuredQuantity", measured)])]
        if request.get("notes"):
            assignment.append(("rm:AssignmentInstructions", request["notes"]))
        info: list[Node] = [("rm:ResourceInfoElementID", resource_info_id(request["id"]))]
        if response is not None:
            answer: list[Node] = [
                ("rm:PrecedingResourceInfoElementID", resource_info_id(request["id"])),
                ("rm:ResponseType", response[0]),
            ]
            if response[1]:
                answer.append(("rm:ResponseReason", response[1]))
            info.append(("rm:ResponseInformation", answer))
        info.append(("rm:Resource", resource))
        info.append(("rm:AssignmentInformation", assignment))
        if schedule is not None:
            kind, moment, where = schedule
            place: list[Node] = [("rm:ScheduleType", kind)]
            if moment is not None:
                place.append(("rm:DateTime", cap_time(moment)))
            if where:
                place.append(("rm:Location", [("rm:LocationDescription", where)]))
            info.append(("rm:ScheduleInformation", place))
        return info


def _needed_by(request: dict[str, Any]) -> tuple[str, datetime | None, str] | None:
    needed_by = request.get("needed_by")
    report_to = request.get("report_to") or ""
    if needed_by is None and not report_to:
        return None
    moment = datetime.fromisoformat(needed_by) if needed_by else None
    return (mapping.SCHEDULE_TYPES["requested"], moment, report_to)


# --- Encodings ----------------------------------------------------------------------------


def _qualified(name: str, message_type: str) -> str:
    prefix, _, local_name = name.rpartition(":")
    if not prefix:
        return f"{{{mapping.rm_message_namespace(message_type)}}}{name}"
    return f"{{{mapping.PREFIXES[prefix]}}}{local_name}"


def _register_prefixes() -> None:
    for prefix, uri in mapping.PREFIXES.items():
        ET.register_namespace(prefix, uri)
    ET.register_namespace("aidmesh", mapping.AIDMESH_INTEROP_NAMESPACE)


def _fill(parent: ET.Element, nodes: Sequence[Node], message_type: str) -> None:
    for name, value in nodes:
        element = ET.SubElement(parent, _qualified(name, message_type))
        if isinstance(value, str):
            element.text = value
        else:
            _fill(element, value, message_type)


def to_element(message: Message) -> ET.Element:
    root = ET.Element(_qualified(message.message_type, message.message_type))
    _fill(root, message.elements, message.message_type)
    return root


def to_xml(messages: Sequence[Message]) -> bytes:
    """The messages in order, inside aidmesh's list element (EDXL-RM has no list of its own)."""
    _register_prefixes()
    container = ET.Element(f"{{{mapping.AIDMESH_INTEROP_NAMESPACE}}}messages")
    for message in messages:
        container.append(to_element(message))
    body: bytes = ET.tostring(container, encoding="utf-8", xml_declaration=True)
    return body


def message_xml(message: Message) -> bytes:
    _register_prefixes()
    body: bytes = ET.tostring(to_element(message), encoding="utf-8", xml_declaration=True)
    return body


def _json_object(nodes: Sequence[Node]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in nodes:
        key = name.rpartition(":")[2]
        rendered = value if isinstance(value, str) else _json_object(value)
        if name in mapping.REPEATABLE:
            found.setdefault(key, []).append(rendered)
        else:
            found[key] = rendered
    return found


def to_json(message: Message) -> dict[str, Any]:
    """The JSON binding: `{MessageType: {Element: text | object | [object, ...]}}`, keys in
    the XML's element order, namespaces dropped, repeatable elements always arrays."""
    return {message.message_type: _json_object(message.elements)}


def tree_of(element: ET.Element) -> Message:
    """A parsed message back as a tree (for checks and round trips)."""

    def nodes(parent: ET.Element) -> list[Node]:
        found: list[Node] = []
        for item in parent:
            name = _prefixed(item.tag)
            if len(item):
                found.append((name, nodes(item)))
            else:
                found.append((name, (item.text or "").strip()))
        return found

    return Message(local(element.tag), nodes(element))


def _prefixed(tag: str) -> str:
    uri, _, name = tag[1:].partition("}")
    for prefix, known in mapping.PREFIXES.items():
        if uri == known:
            return f"{prefix}:{name}"
    return name


def order_problems(message: Message) -> list[str]:
    """Elements missing or out of the standard's order, at every level of the message."""
    problems = [
        f"{message.message_type}: {name} missing"
        for name in mapping.REQUIRED
        if name not in dict(message.elements)
    ]

    def walk(structure: str, nodes: Sequence[Node], where: str) -> None:
        order = mapping.ELEMENT_ORDER.get(structure)
        names = [n for n, _ in nodes]
        if order is not None:
            unknown = [n for n in names if n not in order]
            if unknown:
                problems.append(f"{where}: {unknown} not allowed here")
            positions = [order.index(n) for n in names if n in order]
            if positions != sorted(positions):
                problems.append(f"{where}: {names} out of order")
        for name, value in nodes:
            if not isinstance(value, str):
                walk(name, value, f"{where}/{name}")

    walk("message", message.elements, message.message_type)
    return problems


# --- Import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedRequest:
    """What aidmesh keeps of a RequestResource it imports."""

    message_id: str
    incident_id: str | None
    incident_description: str
    resource: str
    quantity: int
    priority: str
    needed_by: datetime | None
    report_to: str
    notes: str


def read_request(root: ET.Element, catalogue: Catalogue) -> ImportedRequest:
    """The request a RequestResource asks for, or Invalid saying what does not fit."""
    kind = local(root.tag)
    if kind == "OfferUnsolicitedResource":
        raise Invalid("offers cannot be imported: aidmesh has no offers yet")
    if kind != "RequestResource":
        raise Invalid(f"only RequestResource messages can be imported (this one is {kind})")
    mid = text(root, "MessageID")
    if not mid or len(mid) > 200:
        raise Invalid("the message needs a MessageID of at most 200 characters")
    if child(root, "MessageRecall") is not None:
        raise Invalid("a recall cannot be imported as a request")
    infos = children(root, "ResourceInformation")
    if len(infos) != 1:
        raise Invalid(f"import one ResourceInformation per message (found {len(infos)})")
    info = infos[0]
    resource_element = child(info, "Resource")
    resource = text(resource_element, "TypeStructure", "Value") or text(resource_element, "Name")
    if not resource or resource not in catalogue:
        matches = catalogue.close_matches(resource or "")
        hint = f" (did you mean: {', '.join(matches)}?)" if matches else ""
        raise Invalid(f"unknown resource type {resource!r} in TypeStructure{hint}")
    amount = text(info, "AssignmentInformation", "Quantity", "MeasuredQuantity", "Amount")
    try:
        quantity = int(float(amount or ""))
    except ValueError:
        raise Invalid(f"the quantity {amount!r} is not a number") from None
    if not 1 <= quantity <= 10_000:
        raise Invalid("the quantity must be between 1 and 10000")
    priority = "normal"
    for keyword in children(resource_element, "Keyword") if resource_element is not None else []:
        if text(keyword, "ValueListURN") == mapping.PRIORITY_LIST_URN:
            priority = text(keyword, "Value") or "normal"
    if priority not in ("low", "normal", "high", "critical"):
        raise Invalid(f"unknown priority {priority!r}")
    needed_by, report_to = _schedule(info)
    return ImportedRequest(
        message_id=mid,
        incident_id=text(root, "IncidentInformation", "IncidentID"),
        incident_description=(text(root, "IncidentInformation", "IncidentDescription") or "")[:200],
        resource=resource,
        quantity=quantity,
        priority=priority,
        needed_by=needed_by,
        report_to=report_to[:500],
        notes=(text(info, "AssignmentInformation", "AssignmentInstructions") or "")[:2000],
    )


def _schedule(info: ET.Element) -> tuple[datetime | None, str]:
    for schedule in children(info, "ScheduleInformation"):
        if text(schedule, "ScheduleType") == mapping.SCHEDULE_TYPES["requested"]:
            when = text(schedule, "DateTime")
            try:
                moment = datetime.fromisoformat(when) if when else None
            except ValueError:
                raise Invalid(f"the requested arrival {when!r} is not a date and time") from None
            if moment is not None and moment.tzinfo is None:
                raise Invalid("the requested arrival needs an offset")
            return moment, text(schedule, "Location", "LocationDescription") or ""
    return None, ""


def _describe_changes(changes: dict[str, Any]) -> str:
    """'Updated: quantity 4 → 6, priority normal → critical': an edit in the message's words."""
    words = [f"{name} {c.get('old')} → {c.get('new')}" for name, c in changes.items()]
    return "Updated: " + ", ".join(words) if words else "Updated"
