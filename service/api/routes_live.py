"""Websocket tickets: a short-lived single-use ticket keeps the bearer token out of URLs."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from service.api.deps import CurrentActor

router = APIRouter()


class WsTicket(BaseModel):
    ticket: str
    expires_in_s: float
    url: str


@router.post("/ws-ticket", response_model=WsTicket, tags=["live"])
async def ws_ticket(actor: CurrentActor, request: Request) -> WsTicket:
    """A ticket for one websocket connection: open `/ws?ticket=…` within `expires_in_s`.
    For tokens; a signed-in browser opens `/ws` with its session cookie instead."""
    if actor.token_id is None:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="tickets are for tokens: a signed-in page opens /ws with its session cookie",
        )
    parts = request.app.state.parts
    ticket = await parts.tickets.issue(actor.token_id)
    return WsTicket(
        ticket=ticket,
        expires_in_s=parts.settings.ws_ticket_ttl_s,
        url=f"/ws?ticket={ticket}",
    )
