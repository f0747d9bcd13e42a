"""EDXL-SitRep 1.0 situation reports in a JSON binding with the standard's element names:
the report header (MessageID, PreparedBy, ReportPurpose, ReportNumber, ReportVersion,
ForTimePeriod, IncidentID, IncidentName) and one ResponseResourcesTotals report, one
entry per catalogued resource with its requested, committed and on-site units.

Built once when the report is published and stored as it was: a later change to the
incident never changes an earlier report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.reports import ResourceTotals, iso

CONTENT_TYPE = "EDXL-SitRep 1.0 (JSON binding)"


@dataclass(frozen=True, slots=True)
class Preparer:
    city_id: int
    city_name: str
    role: str
    token_id: int | None
    token_label: str  # what the admin called the token ("Nairobi EOC duty desk")


@dataclass(frozen=True, slots=True)
class SitrepHeader:
    incident_id: int
    incident_title: str
    severity: str
    exercise: bool
    number: int
    period_from: datetime
    period_to: datetime
    published_at: datetime
    prepared_by: Preparer


def message_id(incident_id: int, number: int) -> str:
    return f"aidmesh-sitrep-{incident_id}-{number}"


def sitrep_document(header: SitrepHeader, totals: Sequence[ResourceTotals]) -> dict[str, Any]:
    p = header.prepared_by
    return {
        "ContentType": CONTENT_TYPE,
        "MessageID": message_id(header.incident_id, header.number),
        "PreparedBy": {
            "OrganizationID": f"aidmesh-city-{p.city_id}",
            "OrganizationName": p.city_name,
            "Role": p.role,
            "TokenID": p.token_id,
            "TokenLabel": p.token_label,
        },
        "ReportPurpose": f"Situation report {header.number}: response resource totals",
        "ReportNumber": header.number,
        "ReportVersion": "Initial" if header.number == 1 else "Update",
        "ForTimePeriod": {
            "FromDateTime": iso(header.period_from),
            "ToDateTime": iso(header.period_to),
        },
        "DateTimeReported": iso(header.published_at),
        "IncidentID": f"aidmesh-incident-{header.incident_id}",
        "IncidentName": header.incident_title,
        "Severity": header.severity,
        "Status": "Exercise" if header.exercise else "Actual",
        "Report": {
            "ResponseResourcesTotals": {
                "ResourceTotals": [
                    {
                        "ResourceTypeName": t.resource,
                        "ResourceKind": t.kind,
                        "Requested": t.requested,
                        "RequestedInPeriod": t.requested_in_period,
                        "Committed": t.committed,
                        "OnSite": t.on_site,
                    }
                    for t in totals
                ],
                "Totals": {
                    "Requested": sum(t.requested for t in totals),
                    "Committed": sum(t.committed for t in totals),
                    "OnSite": sum(t.on_site for t in totals),
                },
            }
        },
    }
