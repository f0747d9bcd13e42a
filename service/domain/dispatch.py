"""Who is coming, and when: what a claim's move may carry besides its status.

A move to en route carries the arrival time (ETA) and, optionally, who leads the team,
how many travel, the vehicle and a contact; an early end (a decline, a stand-down, a
withdrawal) carries a reason. Pure rules over plain values: the command writes what
`dispatch_for` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain import lifecycles as lc
from service.domain.errors import Invalid, NotInFuture

# The moves that may say why: the manager declines or stands a team down, the responder
# withdraws.
REASONED_MOVES = frozenset({lc.ClaimStatus.DECLINED, lc.ClaimStatus.WITHDRAWN})


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What a move to en route says of the journey."""

    eta_at: datetime | None = None
    team_lead: str | None = None
    team_size: int | None = None
    vehicle: str | None = None
    contact: str | None = None

    def given(self) -> list[str]:
        """The names of the fields given."""
        return [name for name in self.__slots__ if getattr(self, name) is not None]


def check_move_details(
    asked: lc.ClaimStatus, dispatch: Dispatch, reason: str | None, *, now: datetime
) -> None:
    """Refuse (`Invalid`) details that do not belong to the move `asked`, and an ETA that
    is not in the future. An ETA is optional even to en route: a claim moved by another
    system (an EDXL-RM message, a script) may not know it, and the board says so."""
    given = dispatch.given()
    if given and asked is not lc.ClaimStatus.EN_ROUTE:
        raise Invalid(f"{', '.join(given)} only go with a move to en_route")
    if dispatch.eta_at is not None and dispatch.eta_at <= now:
        raise NotInFuture("eta")
    if reason is not None and asked not in REASONED_MOVES:
        raise Invalid("a reason only goes with declined or withdrawn")


def request_end_reason(final: lc.RequestStatus) -> str:
    """The reason a claim ended by its request's end carries."""
    return f"the request was {final.value}"
