"""Networks, cities and tokens: admin writes, authenticated reads."""

from __future__ import annotations

from fastapi import APIRouter, status

from realtime import control
from service import queries
from service.api.deps import (
    AdminActor,
    CurrentActor,
    IdPath,
    Limit,
    ManagerOrAdminActor,
    Offset,
    Parts,
    SessionDep,
)
from service.commands import admin
from service.models import (
    CityCreate,
    CityPublic,
    Me,
    NetworkCreate,
    NetworkPublic,
    Page,
    TokenCreate,
    TokenIssued,
    TokenPublic,
)

router = APIRouter()


@router.get("/me", response_model=Me, tags=["tokens"])
def me(actor: CurrentActor) -> Me:
    """Who the presented token or session speaks for."""
    return Me(
        token_id=actor.token_id,
        role=actor.role,
        city_id=actor.city_id,
        user_id=actor.user_id,
        display_name=actor.display_name,
    )


@router.post(
    "/networks",
    response_model=NetworkPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["networks"],
)
async def create_network(body: NetworkCreate, actor: AdminActor, parts: Parts) -> NetworkPublic:
    network = await parts.executor.run(actor, admin.create_network, body)
    return NetworkPublic.model_validate(network)


@router.get("/networks", response_model=Page[NetworkPublic], tags=["networks"])
def list_networks(
    _: CurrentActor, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[NetworkPublic]:
    return queries.list_networks(session, limit, offset)


@router.get("/networks/{network_id}", response_model=NetworkPublic, tags=["networks"])
def get_network(network_id: IdPath, _: CurrentActor, session: SessionDep) -> NetworkPublic:
    return queries.network_detail(session, network_id)


@router.put(
    "/networks/{network_id}/members/{city_id}", response_model=NetworkPublic, tags=["networks"]
)
async def add_member(
    network_id: IdPath, city_id: IdPath, actor: AdminActor, parts: Parts
) -> NetworkPublic:
    await parts.executor.run(actor, admin.add_member, network_id, city_id)
    with parts.db.read() as session:
        return queries.network_detail(session, network_id)


@router.delete(
    "/networks/{network_id}/members/{city_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["networks"],
)
async def remove_member(
    network_id: IdPath, city_id: IdPath, actor: AdminActor, parts: Parts
) -> None:
    await parts.executor.run(actor, admin.remove_member, network_id, city_id)


@router.post(
    "/cities", response_model=CityPublic, status_code=status.HTTP_201_CREATED, tags=["cities"]
)
async def create_city(body: CityCreate, actor: AdminActor, parts: Parts) -> CityPublic:
    city = await parts.executor.run(actor, admin.create_city, body)
    with parts.db.read() as session:
        return queries.city_public(session, city)


@router.get("/cities", response_model=Page[CityPublic], tags=["cities"])
def list_cities(
    _: CurrentActor, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[CityPublic]:
    return queries.list_cities(session, limit, offset)


@router.get("/cities/{city_id}", response_model=CityPublic, tags=["cities"])
def get_city(city_id: IdPath, _: CurrentActor, session: SessionDep) -> CityPublic:
    return queries.city_detail(session, city_id)


@router.post(
    "/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED, tags=["tokens"]
)
async def issue_token(body: TokenCreate, actor: ManagerOrAdminActor, parts: Parts) -> TokenIssued:
    """Issue a token: the admin of any role and city, a manager of their own city (no
    admin tokens). It expires after `expires_in_days` (90 by default, at most
    `AIDMESH_TOKEN_MAX_DAYS`); `scopes` narrow what it may write. The secret is in the
    answer only."""
    token, secret = await parts.executor.run(actor, admin.issue_token, body)
    return TokenIssued.model_validate({**token.model_dump(), "token": secret})


@router.get("/tokens", response_model=Page[TokenPublic], tags=["tokens"])
async def list_tokens(
    actor: ManagerOrAdminActor, parts: Parts, limit: Limit = 50, offset: Offset = 0
) -> Page[TokenPublic]:
    """Every token for the admin, a manager's city's for a manager: label, scopes,
    created, expires, last used (to within a minute), never the secret."""
    return await parts.executor.read(actor, admin.list_tokens, limit, offset)


@router.post("/tokens/{token_id}/revoke", response_model=TokenPublic, tags=["tokens"])
async def revoke_token(token_id: IdPath, actor: ManagerOrAdminActor, parts: Parts) -> TokenPublic:
    """Revoke a token: refused from now on, over REST and on every open websocket (each
    replica closes the token's sockets with 4001 "token revoked")."""
    token = await parts.executor.run(actor, admin.revoke_token, token_id)
    parts.executor.announce(control.token_revoked(token_id))
    return TokenPublic.model_validate(token)


@router.post("/tokens/{token_id}/rotate", response_model=TokenIssued, tags=["tokens"])
async def rotate_token(token_id: IdPath, actor: ManagerOrAdminActor, parts: Parts) -> TokenIssued:
    """A new secret for the same token (id, label, role, city and scopes kept). The old
    secret stops working at once, and the token's open websockets are closed (4001):
    they connect again with the new secret. The expiry is renewed for the token's
    original lifetime."""
    token, secret = await parts.executor.run(actor, admin.rotate_token, token_id)
    parts.executor.announce(control.token_rotated(token_id))
    return TokenIssued.model_validate({**token.model_dump(), "token": secret})
