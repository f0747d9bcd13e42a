"""Network administration: networks, cities, memberships and tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, col, select

from service.commands.context import CommandContext
from service.domain.actors import Actor, Role, role_refused
from service.domain.errors import Conflict, Invalid, NotFound
from service.models import CityCreate, NetworkCreate, TokenCreate
from service.persistence.tables import ApiToken, City, Network, NetworkMembership

TOKEN_PREFIX = "amk_"  # noqa: S105 (a marker, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for_token(session: Session, secret: str) -> Actor | None:
    """The actor of an unrevoked token, or None."""
    token = session.exec(
        select(ApiToken).where(col(ApiToken.token_hash) == hash_token(secret))
    ).one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    return Actor(role=Role(token.role), city_id=token.city_id, token_id=token.id)


def require_admin(ctx: CommandContext) -> None:
    if not ctx.actor.is_admin:
        raise role_refused(ctx.actor, Role.ADMIN)


def create_network(ctx: CommandContext, body: NetworkCreate) -> Network:
    require_admin(ctx)
    if ctx.session.exec(select(Network).where(col(Network.slug) == body.slug)).first():
        raise Conflict(f"a network with slug '{body.slug}' already exists")
    network = Network(**body.model_dump(), created_at=ctx.now)
    ctx.session.add(network)
    ctx.session.flush()
    return network


def create_city(ctx: CommandContext, body: CityCreate) -> City:
    require_admin(ctx)
    if ctx.session.exec(select(City).where(col(City.slug) == body.slug)).first():
        raise Conflict(f"a city with slug '{body.slug}' already exists")
    networks = _networks_by_slug(ctx, body.networks)
    city = City(**body.model_dump(exclude={"networks"}), created_at=ctx.now)
    ctx.session.add(city)
    ctx.session.flush()
    assert city.id is not None
    for network in networks:
        assert network.id is not None
        ctx.session.add(NetworkMembership(network_id=network.id, city_id=city.id))
    ctx.session.flush()
    return city


def _networks_by_slug(ctx: CommandContext, slugs: list[str]) -> list[Network]:
    if not slugs:
        return []
    found = ctx.session.exec(select(Network).where(col(Network.slug).in_(slugs))).all()
    missing = sorted(set(slugs) - {n.slug for n in found})
    if missing:
        raise Invalid(f"unknown network(s): {', '.join(missing)}")
    return list(found)


def add_member(ctx: CommandContext, network_id: int, city_id: int) -> NetworkMembership:
    require_admin(ctx)
    if ctx.session.get(Network, network_id) is None:
        raise NotFound(f"network {network_id} not found")
    if ctx.session.get(City, city_id) is None:
        raise NotFound(f"city {city_id} not found")
    existing = ctx.session.get(NetworkMembership, (network_id, city_id))
    if existing is not None:
        return existing
    membership = NetworkMembership(network_id=network_id, city_id=city_id)
    ctx.session.add(membership)
    ctx.session.flush()
    return membership


def remove_member(ctx: CommandContext, network_id: int, city_id: int) -> None:
    require_admin(ctx)
    existing = ctx.session.get(NetworkMembership, (network_id, city_id))
    if existing is None:
        raise NotFound(f"city {city_id} is not a member of network {network_id}")
    ctx.session.delete(existing)


def issue_token(ctx: CommandContext, body: TokenCreate) -> tuple[ApiToken, str]:
    """A new token; the secret is returned once and only its hash is stored."""
    require_admin(ctx)
    return mint_token(ctx, Role(body.role), body.city_id, body.label)


def mint_token(
    ctx: CommandContext, role: Role, city_id: int | None, label: str
) -> tuple[ApiToken, str]:
    if role is Role.ADMIN and city_id is not None:
        raise Invalid("an admin token is not bound to a city: leave city_id out")
    if role is not Role.ADMIN:
        if city_id is None:
            raise Invalid(f"a {role.value} token needs a city_id")
        if ctx.session.get(City, city_id) is None:
            raise NotFound(f"city {city_id} not found")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=hash_token(secret),
        prefix=secret[:10],
        role=role.value,
        city_id=city_id,
        label=label,
        created_at=ctx.now,
    )
    ctx.session.add(token)
    ctx.session.flush()
    return token, secret


def revoke_token(ctx: CommandContext, token_id: int) -> ApiToken:
    require_admin(ctx)
    token = ctx.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = ctx.now
        ctx.session.add(token)
    return token


def has_admin_token(ctx: CommandContext) -> bool:
    row = ctx.session.exec(
        select(ApiToken.id).where(col(ApiToken.role) == "admin", col(ApiToken.revoked_at).is_(None))
    ).first()
    return row is not None
