"""The domain error tree; the API maps each branch to one HTTP status.

DomainError
 ├── NotFound             404  the object does not exist or is not visible to the caller
 ├── Forbidden            403  the caller's role or city may not do this
 │    └── WrongParty           the move exists, but belongs to the other side
 ├── Invalid              422  the input names something that does not fit (unknown resource, …)
 └── Conflict             409  the state of the world refuses the change
      ├── IllegalTransition    a lifecycle does not allow current → asked-for
      ├── NotEnoughRemaining   a claim asks for more than is left unclaimed
      ├── BelowClaimed         an edit asks a request for fewer units than are claimed
      └── IdempotencyMismatch  a retried key carries a different body
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a command raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail: str | list[dict[str, object]] = detail


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class WrongParty(Forbidden):
    """A lifecycle move that exists, asked by the side it does not belong to."""

    def __init__(self, what: str, current: str, asked: str, who: str) -> None:
        super().__init__(f"{what} cannot go from '{current}' to '{asked}': only {who} can do that")
        self.current = current
        self.asked = asked


class Invalid(DomainError):
    pass


class InvalidDocument(Invalid):
    """A document (a playbook) with problems, each with its line."""

    def __init__(self, summary: str, problems: list[dict[str, object]]) -> None:
        super().__init__(summary)
        self.detail = problems


class Conflict(DomainError):
    pass


class IllegalTransition(Conflict):
    def __init__(self, what: str, current: str, asked: str, why: str = "") -> None:
        detail = f"{what} cannot go from '{current}' to '{asked}'"
        if why:
            detail += f": {why}"
        super().__init__(detail)
        self.current = current
        self.asked = asked


class NotEnoughRemaining(Conflict):
    def __init__(self, asked: int, remaining: int) -> None:
        super().__init__(f"cannot claim {asked}: only {remaining} left unclaimed on this request")
        self.asked = asked
        self.remaining = remaining


class BelowClaimed(Conflict):
    def __init__(self, asked: int, claimed: int) -> None:
        units = "1 unit is" if claimed == 1 else f"{claimed} units are"
        super().__init__(
            f"the quantity cannot go below what is already claimed: {units} claimed, "
            f"{asked} asked"
        )
        self.asked = asked
        self.claimed = claimed


class IdempotencyMismatch(Conflict):
    pass
