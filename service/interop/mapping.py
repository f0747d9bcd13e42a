"""The mapping tables between aidmesh's words and the field's standards, in one place.

CAP 1.2 (OASIS Common Alerting Protocol) gives an alert's category, event, urgency,
severity and certainty; EDXL-RM 1.0 (OASIS Resource Messaging) gives message types,
namespaces, the element order of each structure and the value lists aidmesh uses.
Pure data and pure look-ups: the README's tables are these.
"""

from __future__ import annotations

from typing import NamedTuple

# --- CAP 1.2 -----------------------------------------------------------------------------

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"


class CapEvent(NamedTuple):
    category: str  # one of CAP's categories (Geo, Met, Safety, ... Other)
    event: str  # the `event` text, also what an import recognises first


# Incident type -> CAP category and event. Types outside the table are "Other".
CAP_EVENTS: dict[str, CapEvent] = {
    "chemical-release": CapEvent("CBRNE", "Chemical release"),
    "cyberattack": CapEvent("Security", "Cyberattack"),
    "earthquake": CapEvent("Geo", "Earthquake"),
    "flood": CapEvent("Met", "Flood"),
    "heatwave": CapEvent("Met", "Heatwave"),
    "power-grid-failure": CapEvent("Infra", "Power grid failure"),
    "wildfire": CapEvent("Fire", "Wildfire"),
    "winter-storm": CapEvent("Met", "Winter storm"),
}
CAP_OTHER = "Other"

# An imported alert whose event names no known type falls back on its category.
CAP_CATEGORY_TYPES: dict[str, str] = {
    "CBRNE": "chemical-release",
    "Security": "cyberattack",
    "Geo": "earthquake",
    "Met": "flood",
    "Fire": "wildfire",
    "Infra": "power-grid-failure",
}
CAP_IMPORT_DEFAULT_TYPE = "other"


class CapGrade(NamedTuple):
    severity: str
    urgency: str
    certainty: str


# aidmesh severity -> CAP severity, urgency and certainty. A declared incident is
# happening, so its certainty is Observed; urgency follows how bad it is.
CAP_GRADES: dict[str, CapGrade] = {
    "minor": CapGrade("Minor", "Future", "Observed"),
    "moderate": CapGrade("Moderate", "Expected", "Observed"),
    "severe": CapGrade("Severe", "Immediate", "Observed"),
    "extreme": CapGrade("Extreme", "Immediate", "Observed"),
}
# CAP severity -> aidmesh severity on import ("Unknown" is taken as moderate).
CAP_SEVERITY_IMPORT: dict[str, str] = {
    "Minor": "minor",
    "Moderate": "moderate",
    "Severe": "severe",
    "Extreme": "extreme",
    "Unknown": "moderate",
}


def cap_event(incident_type: str) -> CapEvent:
    found = CAP_EVENTS.get(incident_type)
    if found is not None:
        return found
    return CapEvent(CAP_OTHER, incident_type.replace("-", " ").capitalize())


def incident_type_for(event: str, categories: list[str]) -> str:
    """The incident type an imported CAP alert declares: by event text, then by category."""
    wanted = event.strip().casefold()
    for incident_type, known in CAP_EVENTS.items():
        if wanted in (known.event.casefold(), incident_type.replace("-", " ")):
            return incident_type
    for category in categories:
        if category in CAP_CATEGORY_TYPES:
            return CAP_CATEGORY_TYPES[category]
    return CAP_IMPORT_DEFAULT_TYPE


# --- EDXL-RM 1.0 --------------------------------------------------------------------------

# Each message's own elements are in its message's namespace (the standard declares one
# per message type: `urn:oasis:names:tc:emergency:EDXL:RM:1.0:RequestResource`, ...); the
# shared structures' children (IncidentInformation, ContactInformation,
# ResourceInformation, ...) in the common one; party names in OASIS CIQ (xPIL, xNL), as
# the standard's schemas import them.
RM_NAMESPACE = "urn:oasis:names:tc:emergency:EDXL:RM:1.0"


def rm_message_namespace(message_type: str) -> str:
    """The namespace the standard declares for one message type's own elements."""
    return f"{RM_NAMESPACE}:{message_type}"


XPIL_NAMESPACE = "urn:oasis:names:tc:ciq:xpil:3"
XNL_NAMESPACE = "urn:oasis:names:tc:ciq:xnl:3"
# The container aidmesh lists an incident's messages in (not part of EDXL-RM).
AIDMESH_INTEROP_NAMESPACE = "urn:aidmesh:interop:1"
PREFIXES = {"rm": RM_NAMESPACE, "xpil": XPIL_NAMESPACE, "xnl": XNL_NAMESPACE}

MESSAGE_TYPES = (
    "RequestResource",
    "ResponseToRequestResource",
    "RequisitionResource",
    "CommitResource",
    "RequestInformation",
    "ResponseToRequestInformation",
    "OfferUnsolicitedResource",
    "ReleaseResource",
    "ReportResourceDeploymentStatus",
)

# Element order of each structure, as the standard's schemas declare their sequences.
# Element names with `rm:` are in the common namespace.
ELEMENT_ORDER: dict[str, tuple[str, ...]] = {
    "message": (
        "MessageID",
        "SentDateTime",
        "MessageContentType",
        "MessageDescription",
        "OriginatingMessageID",
        "PrecedingMessageID",
        "IncidentInformation",
        "MessageRecall",
        "Funding",
        "ContactInformation",
        "ResourceInformation",
    ),
    "IncidentInformation": ("rm:IncidentDescription", "rm:IncidentID"),
    "MessageRecall": ("rm:RecalledMessageID", "rm:RecallType"),
    "ContactInformation": (
        "rm:ContactDescription",
        "rm:ContactRole",
        "rm:AdditionalContactInformation",
        "rm:Radio",
    ),
    "ResourceInformation": (
        "rm:ResourceInfoElementID",
        "rm:ResponseInformation",
        "rm:Resource",
        "rm:AssignmentInformation",
        "rm:ScheduleInformation",
    ),
    "rm:ResponseInformation": (
        "rm:PrecedingResourceInfoElementID",
        "rm:ResponseType",
        "rm:ReasonCode",
        "rm:ResponseReason",
    ),
    "rm:Resource": (
        "rm:ResourceID",
        "rm:Name",
        "rm:TypeStructure",
        "rm:TypeInfo",
        "rm:Keyword",
        "rm:Description",
        "rm:Credentials",
        "rm:Certifications",
        "rm:SpecialRequirements",
        "rm:ResponsibleParty",
        "rm:OwnershipInformation",
        "rm:ResourceStatus",
    ),
    "rm:ResourceStatus": ("rm:InventoryRefreshDateTime", "rm:DeploymentStatus", "rm:Availability"),
    "rm:AssignmentInformation": (
        "rm:Quantity",
        "rm:Restrictions",
        "rm:AnticipatedFunction",
        "rm:PriceQuote",
        "rm:OrderID",
        "rm:AssignmentInstructions",
    ),
    "rm:Quantity": ("rm:MeasuredQuantity",),
    "rm:MeasuredQuantity": ("rm:Amount", "rm:UnitOfMeasure"),
    "rm:ScheduleInformation": ("rm:ScheduleType", "rm:DateTime", "rm:Location"),
    "rm:Location": ("rm:LocationDescription", "rm:Address", "rm:TargetArea"),
    # EDXL value lists name their list first, then the value.
    "rm:TypeStructure": ("rm:ValueListURN", "rm:Value"),
    "rm:Keyword": ("rm:ValueListURN", "rm:Value"),
    "rm:DeploymentStatus": ("rm:ValueListURN", "rm:Value"),
    "rm:ContactRole": (),
}
# Elements that may repeat; the JSON binding always gives these as arrays.
REPEATABLE = frozenset({"ContactInformation", "ResourceInformation", "rm:Keyword"})
# Required in every message (the standard's minOccurs=1), and carried by every one aidmesh sends.
REQUIRED = (
    "MessageID",
    "SentDateTime",
    "MessageContentType",
    "OriginatingMessageID",
    "IncidentInformation",
    "ContactInformation",
    "ResourceInformation",
)

# Value lists aidmesh names in TypeStructure and Keyword.
RESOURCE_LIST_URN = "urn:aidmesh:resource-catalogue"
KIND_LIST_URN = "urn:aidmesh:resource-kind"
PRIORITY_LIST_URN = "urn:aidmesh:priority"
DEPLOYMENT_LIST_URN = "urn:aidmesh:deployment-status"

# Claim status -> ReportResourceDeploymentStatus value.
DEPLOYMENT_STATUS = {"en_route": "EnRoute", "on_site": "OnSite"}
# Claim status -> ScheduleType of the time it happened.
SCHEDULE_TYPES = {
    "requested": "RequestedArrival",
    "en_route": "ActualDeparture",
    "on_site": "ActualArrival",
    "released": "ActualReturnDeparture",
}
# Who speaks in each message (ContactRole).
ROLE_REQUESTER = "Requester"
ROLE_RESPONDER = "Responder"
