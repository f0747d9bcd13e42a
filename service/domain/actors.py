"""Who is acting: a token's or a signed-in person's role and city, as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.domain.errors import Forbidden, RoleRefused


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    RESPONDER = "responder"
    OBSERVER = "observer"


@dataclass(frozen=True, slots=True)
class Actor:
    role: Role
    city_id: int | None
    token_id: int | None = None
    # A token's scopes (`service.domain.tokens`); None: all its role may do.
    scopes: frozenset[str] | None = None
    # A person signed in with a session (tokens are for machines and have no person).
    user_id: int | None = None
    display_name: str | None = None
    session_id: int | None = None
    # A session that may only enrol a second factor (its city requires one).
    enrol_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def event_role(self) -> str:
        """The role an event records: a token's or a person's role, or "system" for the
        service itself."""
        if self.token_id is None and self.user_id is None:
            return "system"
        return self.role.value


SYSTEM = Actor(role=Role.ADMIN, city_id=None, token_id=None)

# Whoever reads the public observatory feeds: no token, no city, nothing to write with.
PUBLIC = Actor(role=Role.OBSERVER, city_id=None, token_id=None)


def role_refused(actor: Actor, *roles: Role) -> Forbidden:
    """The one refusal of a caller whose role (or lack of a city) may not do this: the
    same sentence from every route, command and websocket op."""
    names = " or ".join(r.value for r in roles)
    return RoleRefused(
        f"this needs a {names} token (yours is {actor.role.value})", roles, actor.role
    )
