"""Rows to their public models, and to the JSON dicts events carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain.quantities import remaining
from service.models import AidRequestPublic, ClaimPublic, IncidentPublic, NotePublic, OfferPublic
from service.persistence.tables import AidRequest, Claim, Incident, Note, Offer


def incident_public(incident: Incident) -> IncidentPublic:
    return IncidentPublic.model_validate(incident)


def request_public(request: AidRequest) -> AidRequestPublic:
    return request_public_of(request.model_dump())


def request_public_of(row: Mapping[str, Any]) -> AidRequestPublic:
    """A request's public model from its row's values by column name."""
    return AidRequestPublic.model_validate(
        {**row, "remaining_quantity": remaining(row["quantity"], row["claimed_quantity"])}
    )


def claim_public(claim: Claim) -> ClaimPublic:
    return ClaimPublic.model_validate(claim)


def note_public(note: Note) -> NotePublic:
    return NotePublic.model_validate(note)


def offer_public(offer: Offer) -> OfferPublic:
    return OfferPublic.model_validate(offer)


def as_json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
