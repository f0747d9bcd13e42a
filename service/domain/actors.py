"""Who is acting: a token's role and city, as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


SYSTEM = Actor(role=Role.ADMIN, city_id=None, token_id=None)
