"""Claim paths: where the executor has claims decided, chosen in `create_app`.

Every path decides through the claim core (`service.domain.claims`). `GeneralCommand`
is the ORM path: every claim is `commands.claims.claim_request` in one executor
transaction, on any backend. `service.adapters.pg_claims.PgClaims` decides claims in
batches over PostgreSQL and hands the claims it cannot answer by itself to the general
command, which then gives the same answer, rows and events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from service.domain.actors import Actor
from service.models import ClaimCreate, ClaimPublic, EventPublic

# (the claim, whether it was made now rather than replayed, the events to publish)
ClaimAnswer = tuple[ClaimPublic, bool, list[EventPublic]]


class ClaimPath(Protocol):
    async def claim(
        self, actor: Actor, request_id: int, body: ClaimCreate, key: str, now: datetime
    ) -> ClaimAnswer | None:
        """Claim as `claims.claim_request` does, with its events committed; None when
        the general command is to answer. Refusals are raised as the command raises them."""
        ...

    async def aclose(self) -> None:
        """Let the claims under way finish."""
        ...


class GeneralCommand:
    """The ORM path: leaves every claim to the general command."""

    async def claim(
        self, actor: Actor, request_id: int, body: ClaimCreate, key: str, now: datetime
    ) -> ClaimAnswer | None:
        return None

    async def aclose(self) -> None:
        return None
