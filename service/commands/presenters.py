"""Rows to their public models, and to the JSON dicts events carry."""

from __future__ import annotations

from typing import Any

from service.domain.quantities import remaining
from service.models import AidRequestPublic, ClaimPublic, IncidentPublic
from service.persistence.tables import AidRequest, Claim, Incident


def incident_public(incident: Incident) -> IncidentPublic:
    return IncidentPublic.model_validate(incident)


def request_public(request: AidRequest) -> AidRequestPublic:
    return AidRequestPublic.model_validate(
        {
            **request.model_dump(),
            "remaining_quantity": remaining(request.quantity, request.claimed_quantity),
        }
    )


def claim_public(claim: Claim) -> ClaimPublic:
    return ClaimPublic.model_validate(claim)


def as_json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
