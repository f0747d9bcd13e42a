"""Sign-in providers (OpenID Connect): setting a city's or a network's provider and its
mapping rules, keeping a sign-in's state while the browser is at the provider, and
turning the provider's checked claims into a person and a session.

Each function is one transaction (or one read); talking to the provider happens between
them (`service.oidc_client`), outside any transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, delete, select

from service.commands import accounts
from service.commands.context import CommandContext
from service.domain import accounts as account_rules
from service.domain import oidc as rules
from service.domain.actors import Role
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.oidc_client import ProviderConfig
from service.oidc_models import (
    MappingRulePublic,
    SignInProviderButton,
    SignInProviderPublic,
    SignInProviderPut,
)
from service.persistence.tables import (
    City,
    ExternalIdentity,
    Network,
    NetworkMembership,
    PendingSignIn,
    Person,
    SignInProvider,
)

CALLBACK_PATH = "/auth/oidc/callback"
# Prefixes the log scrubber knows (`service.logs`), so that a stored client secret, or a
# sign-in's state, nonce or PKCE verifier, is redacted wherever a row or a URL is logged.
SECRET_PREFIX = "acs_"  # noqa: S105 (a prefix, not a secret)
STATE_PREFIX = "aos_"
NONCE_PREFIX = "aon_"
VERIFIER_PREFIX = "apv_"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class NotMapped(Exception):
    """The provider knows the person, but no rule maps them to a city and roles."""


def start_path(provider_id: int) -> str:
    return f"/auth/oidc/{provider_id}/start"


# Configuration ------------------------------------------------------------------------


def provider_public(provider: SignInProvider, base_url: str) -> SignInProviderPublic:
    assert provider.id is not None
    return SignInProviderPublic(
        id=provider.id,
        city_id=provider.city_id,
        network_id=provider.network_id,
        label=provider.label,
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret_set=bool(provider.client_secret),
        rules=[MappingRulePublic.model_validate(rule) for rule in provider.rules],
        redirect_uri=base_url.rstrip("/") + CALLBACK_PATH,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


def _may_configure_city(ctx: CommandContext, city_id: int) -> City:
    account_rules.may_manage_people(ctx.actor)
    if not ctx.actor.is_admin and ctx.actor.city_id != city_id:
        raise Forbidden("a manager sets their own city's sign-in provider only")
    city = ctx.session.get(City, city_id)
    if city is None:
        raise NotFound(f"city {city_id} not found")
    return city


def _may_configure_network(ctx: CommandContext, network_id: int) -> Network:
    if not ctx.actor.is_admin:
        raise Forbidden("a network's sign-in provider is set by the admin")
    network = ctx.session.get(Network, network_id)
    if network is None:
        raise NotFound(f"network {network_id} not found")
    return network


def _check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        raise Invalid(
            "issuer: a provider is reached over https (plain http on a loopback host only)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Invalid("issuer: an address without credentials, query or fragment")
    return issuer


def _rules(
    body: SignInProviderPut, default_city: int | None, cities: set[int]
) -> list[rules.MappingRule]:
    made = []
    for at, rule in enumerate(body.rules):
        city_id = rule.city_id if rule.city_id is not None else default_city
        if city_id is None:
            raise Invalid(f"rules[{at}]: a network's rule names its city_id")
        made.append(
            rules.MappingRule(rule.claim, rule.value, city_id, tuple(map(Role, rule.roles)))
        )
    rules.check_rules(made, cities)
    return made


def _save(
    ctx: CommandContext,
    existing: SignInProvider | None,
    body: SignInProviderPut,
    made: list[rules.MappingRule],
    city_id: int | None = None,
    network_id: int | None = None,
) -> SignInProvider:
    if existing is None and body.client_secret is None:
        raise Invalid("client_secret: needed when a provider is first set")
    provider = existing or SignInProvider(
        label="",
        issuer="",
        client_id="",
        client_secret="",
        city_id=city_id,
        network_id=network_id,
        created_at=ctx.now,
    )
    provider.label = body.label
    provider.issuer = _check_issuer(body.issuer)
    if provider.client_id != body.client_id and body.client_secret is None and existing:
        raise Invalid("client_secret: needed when the client_id changes")
    provider.client_id = body.client_id
    if body.client_secret is not None:
        provider.client_secret = SECRET_PREFIX + body.client_secret
    provider.rules = [
        {
            "claim": r.claim,
            "value": r.value,
            "city_id": r.city_id,
            "roles": [x.value for x in r.roles],
        }
        for r in made
    ]
    provider.updated_at = ctx.now
    ctx.session.add(provider)
    ctx.session.flush()
    return provider


def set_city_provider(ctx: CommandContext, city_id: int, body: SignInProviderPut) -> SignInProvider:
    """Set (or replace) a city's own provider: its rules map to that city only."""
    _may_configure_city(ctx, city_id)
    made = _rules(body, city_id, {city_id})
    existing = ctx.session.exec(
        select(SignInProvider).where(col(SignInProvider.city_id) == city_id)
    ).one_or_none()
    return _save(ctx, existing, body, made, city_id=city_id)


def set_network_provider(
    ctx: CommandContext, network_id: int, body: SignInProviderPut
) -> SignInProvider:
    """Set (or replace) a network's provider: its rules map to the network's cities."""
    _may_configure_network(ctx, network_id)
    members = set(
        ctx.session.exec(
            select(NetworkMembership.city_id).where(col(NetworkMembership.network_id) == network_id)
        ).all()
    )
    made = _rules(body, None, members)
    existing = ctx.session.exec(
        select(SignInProvider).where(col(SignInProvider.network_id) == network_id)
    ).one_or_none()
    return _save(ctx, existing, body, made, network_id=network_id)


def city_provider(ctx: CommandContext, city_id: int) -> SignInProvider:
    _may_configure_city(ctx, city_id)
    return _found(
        ctx.session.exec(
            select(SignInProvider).where(col(SignInProvider.city_id) == city_id)
        ).one_or_none(),
        f"city {city_id} has no sign-in provider",
    )


def network_provider(ctx: CommandContext, network_id: int) -> SignInProvider:
    _may_configure_network(ctx, network_id)
    return _found(
        ctx.session.exec(
            select(SignInProvider).where(col(SignInProvider.network_id) == network_id)
        ).one_or_none(),
        f"network {network_id} has no sign-in provider",
    )


def _found(provider: SignInProvider | None, missing: str) -> SignInProvider:
    if provider is None:
        raise NotFound(missing)
    return provider


def remove_city_provider(ctx: CommandContext, city_id: int) -> None:
    _remove(ctx, city_provider(ctx, city_id))


def remove_network_provider(ctx: CommandContext, network_id: int) -> None:
    _remove(ctx, network_provider(ctx, network_id))


def _remove(ctx: CommandContext, provider: SignInProvider) -> None:
    """The provider goes, with its sign-ins under way; the people it made stay (with
    no password they cannot sign in until a provider or an invitation lets them)."""
    ctx.session.execute(delete(PendingSignIn).where(col(PendingSignIn.provider_id) == provider.id))
    ctx.session.delete(provider)


def buttons(ctx: CommandContext) -> list[SignInProviderButton]:
    """Every provider, as the sign-in form's buttons."""
    rows = ctx.session.exec(select(SignInProvider).order_by(col(SignInProvider.id))).all()
    return [
        SignInProviderButton(id=p.id, label=p.label, start_url=start_path(p.id))
        for p in rows
        if p.id is not None
    ]


# The flow -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Begun:
    state: str
    nonce: str
    verifier: str
    provider: ProviderConfig


def begin_sign_in(ctx: CommandContext, provider_id: int, next_path: str) -> Begun:
    """A fresh state, nonce and PKCE verifier for one trip to the provider; only the
    state's hash is kept as the key. Trips older than their time to live are cleared."""
    provider = ctx.session.get(SignInProvider, provider_id)
    if provider is None:
        raise NotFound(f"sign-in provider {provider_id} not found")
    ttl = timedelta(seconds=ctx.settings.oidc_sign_in_ttl_s)
    ctx.session.execute(delete(PendingSignIn).where(col(PendingSignIn.created_at) < ctx.now - ttl))
    state = STATE_PREFIX + secrets.token_urlsafe(32)
    begun = Begun(
        state=state,
        nonce=NONCE_PREFIX + secrets.token_urlsafe(32),
        verifier=VERIFIER_PREFIX + secrets.token_urlsafe(64),
        provider=_config(provider),
    )
    ctx.session.add(
        PendingSignIn(
            state_hash=accounts.digest(state),
            provider_id=provider_id,
            nonce=begun.nonce,
            code_verifier=begun.verifier,
            next_path=rules.safe_next_path(next_path),
            created_at=ctx.now,
        )
    )
    return begun


@dataclass(frozen=True)
class Returning:
    provider_id: int
    nonce: str
    verifier: str
    next_path: str
    provider: ProviderConfig


def take_pending(ctx: CommandContext, state: str) -> Returning | None:
    """The sign-in this `state` began, used up at once (a state works once); None when it
    is older than its time to live (used up all the same). `NotFound` for a state never
    given, tampered with or used."""
    pending = ctx.session.get(PendingSignIn, accounts.digest(state))
    if pending is None:
        raise NotFound("this sign-in is unknown or already used")
    ctx.session.delete(pending)
    ttl = timedelta(seconds=ctx.settings.oidc_sign_in_ttl_s)
    provider = ctx.session.get(SignInProvider, pending.provider_id)
    if ctx.now - pending.created_at > ttl or provider is None:
        return None
    return Returning(
        provider_id=pending.provider_id,
        nonce=pending.nonce,
        verifier=pending.code_verifier,
        next_path=pending.next_path,
        provider=_config(provider),
    )


def _config(provider: SignInProvider) -> ProviderConfig:
    secret = provider.client_secret.removeprefix(SECRET_PREFIX)
    return ProviderConfig(provider.issuer, provider.client_id, secret)


def _mapping_rules(provider: SignInProvider) -> list[rules.MappingRule]:
    return [
        rules.MappingRule(r["claim"], r["value"], int(r["city_id"]), tuple(map(Role, r["roles"])))
        for r in provider.rules
    ]


def sign_in_with_claims(
    ctx: CommandContext, provider_id: int, claims: Mapping[str, Any]
) -> accounts.Started:
    """A session for the person the provider's checked claims describe: mapped to a city
    and roles by the provider's rules (again at every sign-in, so a change of groups at
    the provider takes effect), found by issuer and subject, or linked by a verified
    email, or made. `NotMapped` when no rule matches: no account, no session."""
    provider = ctx.session.get(SignInProvider, provider_id)
    if provider is None:
        raise NotFound(f"sign-in provider {provider_id} not found")
    mapped = rules.map_claims(_mapping_rules(provider), claims)
    if mapped is None:
        raise NotMapped("no mapping rule of the provider matches this person")
    subject = str(claims["sub"])
    identity = ctx.session.exec(
        select(ExternalIdentity).where(
            col(ExternalIdentity.issuer) == provider.issuer,
            col(ExternalIdentity.subject) == subject,
        )
    ).one_or_none()
    if identity is not None:
        person = ctx.session.get(Person, identity.person_id)
        assert person is not None
        identity.last_sign_in_at = ctx.now
    else:
        person = _linked_or_new(ctx, provider, claims, mapped)
        assert person.id is not None
        identity = ExternalIdentity(
            issuer=provider.issuer,
            subject=subject,
            person_id=person.id,
            created_at=ctx.now,
            last_sign_in_at=ctx.now,
        )
    if person.disabled:
        raise Forbidden("this account is disabled")
    person.city_id = mapped.city_id
    person.roles = [role.value for role in mapped.roles]
    person.updated_at = ctx.now
    ctx.session.add_all([person, identity])
    ctx.session.flush()
    assert person.id is not None
    # The provider applies its own second factor: the session is a full one.
    return accounts.start_session(ctx, person.id, f"provider:{provider_id}:{subject}")


def _linked_or_new(
    ctx: CommandContext, provider: SignInProvider, claims: Mapping[str, Any], mapped: rules.Mapped
) -> Person:
    email = _email(claims)
    if email is not None:
        existing = ctx.session.exec(select(Person).where(col(Person.email) == email)).one_or_none()
        if existing is not None:
            if claims.get("email_verified") is not True:
                raise Conflict(
                    "an account with this email exists, and the provider has not verified"
                    " the email: ask a manager"
                )
            if existing.city_id is None:
                raise Conflict("the admin's account is not signed in through a provider")
            return existing
    subject_key = accounts.digest(f"{provider.issuer} {claims['sub']}")[:24]
    person = Person(
        email=email or f"{subject_key}@provider-{provider.id}.invalid",
        display_name=_display_name(claims, provider.label),
        city_id=mapped.city_id,
        roles=[role.value for role in mapped.roles],
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(person)
    ctx.session.flush()
    return person


def _email(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or not 3 <= len(email) <= 254:
        return None
    return accounts.normal_email(email)


def _display_name(claims: Mapping[str, Any], label: str) -> str:
    for key in ("name", "preferred_username", "email"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return f"Signed in with {label}"[:200]
