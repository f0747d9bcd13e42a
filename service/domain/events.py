"""Names of the events aidmesh records, in the past tense, one per kind of change."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    INCIDENT_DECLARED = "incident.declared"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_CLOSED = "incident.closed"
    REQUEST_RAISED = "request.raised"
    REQUEST_UPDATED = "request.updated"
    REQUEST_ESCALATED = "request.escalated"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_FULFILLED = "request.fulfilled"
    REQUEST_PASSED = "request.passed"
    CLAIM_MADE = "claim.made"
    CLAIM_CHANGED = "claim.changed"
    CLAIM_REMINDER = "claim.reminder"
    OFFER_MADE = "offer.made"
    OFFER_COUNTERED = "offer.countered"
    OFFER_ACCEPTED = "offer.accepted"
    OFFER_DECLINED = "offer.declined"
    OFFER_WITHDRAWN = "offer.withdrawn"
    OFFER_EXPIRED = "offer.expired"
    NOTE_ADDED = "note.added"
    CHECKLIST_TICKED = "checklist.ticked"
    SITREP_PUBLISHED = "sitrep.published"
