"""Sign-in with an OpenID Connect provider: which city and roles a provider's claims map
a person to, and where a sign-in may send the browser back to. Pure rules over plain
values; the provider talk is in `service.oidc_client`, the rows in `service.commands.oidc`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.domain.accounts import ROLE_ORDER
from service.domain.actors import Role
from service.domain.errors import Invalid

# A provider names up to this many rules; more is a configuration to split.
MAX_RULES = 50
# Roles a provider may grant: the admin is never made by a provider's claim.
GRANTABLE = (Role.MANAGER, Role.RESPONDER, Role.OBSERVER)


@dataclass(frozen=True)
class MappingRule:
    """A person whose claim `claim` is `value` (or, for a list claim such as `groups`,
    holds `value`) belongs to `city_id` with `roles`."""

    claim: str
    value: str
    city_id: int
    roles: tuple[Role, ...]

    def matches(self, claims: Mapping[str, Any]) -> bool:
        found = claims.get(self.claim)
        if isinstance(found, list):
            return any(isinstance(v, str | int) and str(v) == self.value for v in found)
        if isinstance(found, str | int) and not isinstance(found, bool):
            return str(found) == self.value
        if isinstance(found, bool):
            return self.value == ("true" if found else "false")
        return False


@dataclass(frozen=True)
class Mapped:
    """Where the claims put a person: one city, and roles in `ROLE_ORDER`."""

    city_id: int
    roles: tuple[Role, ...]


def check_rules(rules: Sequence[MappingRule], allowed_cities: Iterable[int]) -> None:
    """`Invalid` unless every rule names a city the provider may speak for and only
    roles a provider may grant."""
    if len(rules) > MAX_RULES:
        raise Invalid(f"a provider has at most {MAX_RULES} mapping rules")
    allowed = set(allowed_cities)
    for at, rule in enumerate(rules):
        if rule.city_id not in allowed:
            raise Invalid(
                f"rules[{at}]: city {rule.city_id} is not the provider's city"
                " nor a member of its network"
            )
        if not rule.roles:
            raise Invalid(f"rules[{at}]: a rule grants at least one role")
        if any(role not in GRANTABLE for role in rule.roles):
            raise Invalid(f"rules[{at}]: a provider grants manager, responder or observer only")


def map_claims(rules: Sequence[MappingRule], claims: Mapping[str, Any]) -> Mapped | None:
    """The city of the first rule the claims match, with the roles of every matching rule
    of that city; None when no rule matches (an unknown person gets no access)."""
    matching = [rule for rule in rules if rule.matches(claims)]
    if not matching:
        return None
    city_id = matching[0].city_id
    held = {role for rule in matching if rule.city_id == city_id for role in rule.roles}
    return Mapped(city_id, tuple(role for role in ROLE_ORDER if role in held))


def safe_next_path(candidate: str | None, default: str = "/board") -> str:
    """Where the browser goes once signed in: a path of this site only (never another
    origin, never a scheme-relative `//host`), or `default`."""
    if (
        not candidate
        or len(candidate) > 200
        or not candidate.startswith("/")
        or candidate.startswith("//")
        or "\\" in candidate
        or not candidate.isascii()
        or any(ch in candidate for ch in "\r\n\t ")
    ):
        return default
    return candidate
