"""Notes: the human thread of each request and claim, read and written over REST; each
note added is a `note.added` event, so the pages follow it live."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service import queries
from service.api.deps import (
    ActingCityActor,
    CurrentActor,
    IdPath,
    Limit,
    NoteIdempotencyKey,
    Offset,
    Parts,
    SessionDep,
)
from service.commands import notes
from service.commands.presenters import note_public
from service.models import NoteCreate, NotePublic, Page

router = APIRouter(tags=["notes"])

WHO_WRITES = (
    "Managers and responders of the requesting city and of the cities working on it write; "
    "observers and admins read. Every note is a `note.added` event. Retrying with the same "
    "`Idempotency-Key` returns the first note and adds nothing."
)


@router.post(
    "/requests/{request_id}/notes",
    response_model=NotePublic,
    status_code=status.HTTP_201_CREATED,
    description=f"Add a note to a request's thread (the requesting city, the cities it "
    f"reaches now and the cities that claimed it). {WHO_WRITES}",
)
async def add_request_note(
    request_id: IdPath,
    body: NoteCreate,
    actor: ActingCityActor,
    parts: Parts,
    response: Response,
    key: NoteIdempotencyKey = None,
) -> NotePublic:
    note, created = await parts.executor.run(actor, notes.add_request_note, request_id, body, key)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return note_public(note)


@router.get("/requests/{request_id}/notes", response_model=Page[NotePublic])
def list_request_notes(
    request_id: IdPath,
    actor: CurrentActor,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NotePublic]:
    """A request's thread, with the notes on its claims (`claim_id` set), oldest first."""
    return queries.request_notes(session, actor, request_id, limit, offset)


@router.post(
    "/claims/{claim_id}/notes",
    response_model=NotePublic,
    status_code=status.HTTP_201_CREATED,
    description=f"Add a note to a claim's thread (the requesting city and the claiming "
    f"city). {WHO_WRITES}",
)
async def add_claim_note(
    claim_id: IdPath,
    body: NoteCreate,
    actor: ActingCityActor,
    parts: Parts,
    response: Response,
    key: NoteIdempotencyKey = None,
) -> NotePublic:
    note, created = await parts.executor.run(actor, notes.add_claim_note, claim_id, body, key)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return note_public(note)


@router.get("/claims/{claim_id}/notes", response_model=Page[NotePublic])
def list_claim_notes(
    claim_id: IdPath,
    actor: CurrentActor,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NotePublic]:
    """A claim's thread, oldest first."""
    return queries.claim_notes(session, actor, claim_id, limit, offset)
