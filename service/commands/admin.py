"""Network administration: networks, cities, memberships and tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from service import queries
from service.commands.context import CommandContext
from service.domain.actors import Actor, Role, role_refused
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.domain.tokens import expired, expiry, parse_scopes, stored_scopes
from service.models import CityCreate, NetworkCreate, Page, TokenCreate, TokenPublic
from service.persistence.tables import ApiToken, City, Network, NetworkMembership

TOKEN_PREFIX = "amk_"  # noqa: S105 (a marker, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_actor(token: ApiToken, now: datetime) -> Actor | None:
    """The actor of a token row, or None if it is revoked or expired."""
    if token.revoked_at is not None or expired(token.expires_at, now):
        return None
    return Actor(
        role=Role(token.role),
        city_id=token.city_id,
        token_id=token.id,
        scopes=parse_scopes(token.scopes),
    )


def actor_for_token(session: Session, secret: str, now: datetime) -> Actor | None:
    """The actor of a token neither revoked nor expired by `now`, or None."""
    token = session.exec(
        select(ApiToken).where(col(ApiToken.token_hash) == hash_token(secret))
    ).one_or_none()
    return None if token is None else token_actor(token, now)


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
    """A new token; the secret is returned once and only its hash is stored. The admin
    issues any; a manager issues tokens of their own city (no admin tokens)."""
    role = Role(body.role)
    city_id = body.city_id
    if not ctx.actor.is_admin:
        require_token_manager(ctx, city_id if city_id is not None else ctx.actor.city_id)
        if role is Role.ADMIN:
            raise Forbidden("only the admin issues admin tokens")
        city_id = ctx.actor.city_id
    return mint_token(
        ctx,
        role,
        city_id,
        body.label,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
    )


def require_token_manager(ctx: CommandContext, city_id: int | None) -> None:
    """The admin, or a manager of `city_id`: who manages that city's tokens."""
    if ctx.actor.is_admin:
        return
    if ctx.actor.role is not Role.MANAGER:
        raise role_refused(ctx.actor, Role.MANAGER, Role.ADMIN)
    if city_id is None or city_id != ctx.actor.city_id:
        raise Forbidden("a manager manages the tokens of their own city only")


def mint_token(
    ctx: CommandContext,
    role: Role,
    city_id: int | None,
    label: str,
    *,
    scopes: Sequence[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new token, living `expires_in_days` (the settings' default if None)."""
    if role is Role.ADMIN and city_id is not None:
        raise Invalid("an admin token is not bound to a city: leave city_id out")
    if role is not Role.ADMIN:
        if city_id is None:
            raise Invalid(f"a {role.value} token needs a city_id")
        if ctx.session.get(City, city_id) is None:
            raise NotFound(f"city {city_id} not found")
    expires_at = expiry(
        ctx.now, expires_in_days, ctx.settings.token_default_days, ctx.settings.token_max_days
    )
    secret = new_secret()
    token = ApiToken(
        token_hash=hash_token(secret),
        prefix=secret[:10],
        role=role.value,
        city_id=city_id,
        label=label,
        scopes=stored_scopes(scopes),
        created_at=ctx.now,
        expires_at=expires_at,
    )
    ctx.session.add(token)
    ctx.session.flush()
    return token, secret


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _managed_token(ctx: CommandContext, token_id: int) -> ApiToken:
    token = ctx.session.get(ApiToken, token_id)
    if token is None:
        if not ctx.actor.is_admin and ctx.actor.role is not Role.MANAGER:
            raise role_refused(ctx.actor, Role.MANAGER, Role.ADMIN)
        raise NotFound(f"token {token_id} not found")
    require_token_manager(ctx, token.city_id)
    return token


def revoke_token(ctx: CommandContext, token_id: int) -> ApiToken:
    token = _managed_token(ctx, token_id)
    if token.revoked_at is None:
        token.revoked_at = ctx.now
        ctx.session.add(token)
    return token


def rotate_token(ctx: CommandContext, token_id: int) -> tuple[ApiToken, str]:
    """A new secret for the same token (id, label, role, city, scopes); the old secret
    stops working at once. Its expiry is renewed for as long as it was first issued for
    (the default lifetime for a token issued without one)."""
    token = _managed_token(ctx, token_id)
    if token.revoked_at is not None:
        raise Conflict(f"token {token_id} is revoked: issue a new one")
    if expired(token.expires_at, ctx.now):
        raise Conflict(f"token {token_id} has expired: issue a new one")
    lifetime = (
        token.expires_at - token.created_at
        if token.expires_at is not None
        else timedelta(days=ctx.settings.token_default_days)
    )
    secret = new_secret()
    token.token_hash = hash_token(secret)
    token.prefix = secret[:10]
    token.rotated_at = ctx.now
    token.expires_at = ctx.now + min(lifetime, timedelta(days=ctx.settings.token_max_days))
    ctx.session.add(token)
    ctx.session.flush()
    return token, secret


def list_tokens(ctx: CommandContext, limit: int, offset: int) -> Page[TokenPublic]:
    """Every token for the admin; a manager's city's tokens for a manager."""
    if ctx.actor.is_admin:
        return queries.list_tokens(ctx.session, limit, offset)
    require_token_manager(ctx, ctx.actor.city_id)
    return queries.list_tokens(ctx.session, limit, offset, city_id=ctx.actor.city_id)


def has_admin_token(ctx: CommandContext) -> bool:
    """Whether an admin token still works (neither revoked nor expired)."""
    row = ctx.session.exec(
        select(ApiToken.id).where(
            col(ApiToken.role) == "admin",
            col(ApiToken.revoked_at).is_(None),
            or_(col(ApiToken.expires_at).is_(None), col(ApiToken.expires_at) > ctx.now),
        )
    ).first()
    return row is not None
