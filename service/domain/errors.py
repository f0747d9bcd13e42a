"""The domain error tree; the API maps each branch to one HTTP status.

Each class names its refusal with a stable `code` (snake_case) and carries `params`
(plain values) beside its English `detail`, so a client can word the refusal in its own
language. A subclass with its own code is a refusal a person meets often enough to be
worded on its own; the branch's code (`forbidden`, `invalid`, `conflict`) covers the rest,
whose English sentence is then the only wording.

DomainError                  refused                  400
 ├── NotFound                not_found                404  not there, or not visible
 ├── Forbidden               forbidden                403  the role or city may not
 │    ├── RoleRefused             role_refused             {roles, role}
 │    ├── ScopeRefused            scope_refused            {scopes}
 │    ├── WrongParty              wrong_party              {what, current, asked}
 │    ├── OwnRequest              own_request              claim or pass on its own
 │    ├── OwnIncident             own_incident             an offer to its own
 │    ├── NotAimedAtCity          not_aimed_at_city        the ring is not there yet
 │    ├── RequestingManagerOnly   requesting_manager_only
 │    ├── OtherCity               other_city               another city's claim/offer
 │    └── NotInvolved             not_involved             {what} (writing notes)
 ├── Invalid                 invalid                  422  does not fit
 │    ├── NotInFuture             not_in_future            {field}
 │    ├── CoordinatesPair         coordinates_pair         lat without lon, or back
 │    ├── UnknownResource         unknown_resource         {resource}
 │    └── InvalidDocument         invalid                  problems by line
 └── Conflict                conflict                 409  the state refuses it
      ├── IllegalTransition       illegal_transition       {what, current, asked}
      │    ├── IncidentNotActive      incident_not_active      {current, action}
      │    ├── RequestNotOpen         request_not_open         {current, asked}
      │    └── RequestFinal           request_final            {current, asked}
      ├── NotEnoughRemaining      not_enough_remaining     {asked, remaining}
      ├── BelowClaimed            below_claimed            {asked, claimed}
      ├── IdempotencyMismatch     idempotency_mismatch     a key reused, another body
      ├── AlreadyPassed           already_passed
      ├── OpenOffersLimit         open_offers_limit        {open, limit}
      └── ConcurrentChange        concurrent_change        a concurrent change won
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import Enum
from typing import ClassVar


def plain(value: object) -> str:
    """A status or role as the plain string a client reads (an enum by its value)."""
    return str(value.value) if isinstance(value, Enum) else str(value)


class DomainError(Exception):
    """Base of every error a command raises on purpose."""

    code: ClassVar[str] = "refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail: str | list[dict[str, object]] = detail
        self.params: dict[str, object] = {}


def codes() -> Iterator[str]:
    """Every code a domain error can carry: this tree's, walked, so a new class is in."""
    seen: set[str] = set()
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        if cls.code not in seen:
            seen.add(cls.code)
            yield cls.code
        pending.extend(cls.__subclasses__())


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class RoleRefused(Forbidden):
    """The caller's role is not among `roles`."""

    code = "role_refused"

    def __init__(self, detail: str, roles: Iterable[object], role: object) -> None:
        super().__init__(detail)
        self.params = {"roles": [plain(r) for r in roles], "role": plain(role)}


class ScopeRefused(Forbidden):
    code = "scope_refused"

    def __init__(self, detail: str, scopes: Iterable[str]) -> None:
        super().__init__(detail)
        self.params = {"scopes": sorted(scopes)}


class WrongParty(Forbidden):
    """A lifecycle move that exists, asked by the side it does not belong to."""

    code = "wrong_party"

    def __init__(self, what: str, current: object, asked: object, who: str) -> None:
        super().__init__(f"{what} cannot go from '{current}' to '{asked}': only {who} can do that")
        self.current = current
        self.asked = asked
        self.params = {"what": what, "current": plain(current), "asked": plain(asked)}


class OwnRequest(Forbidden):
    code = "own_request"


class OwnIncident(Forbidden):
    code = "own_incident"


class NotAimedAtCity(Forbidden):
    code = "not_aimed_at_city"

    def __init__(self) -> None:
        super().__init__("this request is not aimed at your city (yet)")


class RequestingManagerOnly(Forbidden):
    code = "requesting_manager_only"


class OtherCity(Forbidden):
    code = "other_city"


class NotInvolved(Forbidden):
    code = "not_involved"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"only the requesting city and the cities working on this {what} write notes"
        )
        self.params = {"what": what}


class Invalid(DomainError):
    code = "invalid"


class NotInFuture(Invalid):
    code = "not_in_future"

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} must be in the future")
        self.params = {"field": field}


class CoordinatesPair(Invalid):
    code = "coordinates_pair"


class UnknownResource(Invalid):
    code = "unknown_resource"

    def __init__(self, detail: str, resource: str) -> None:
        super().__init__(detail)
        self.params = {"resource": resource}


class InvalidDocument(Invalid):
    """A document (a playbook) with problems, each with its line."""

    def __init__(self, summary: str, problems: list[dict[str, object]]) -> None:
        super().__init__(summary)
        self.detail = problems


class Conflict(DomainError):
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, what: str, current: object, asked: object, why: str = "") -> None:
        detail = f"{what} cannot go from '{current}' to '{asked}'"
        if why:
            detail += f": {why}"
        super().__init__(detail)
        self.current = current
        self.asked = asked
        self.params = {"what": what, "current": plain(current), "asked": plain(asked)}


class IncidentNotActive(IllegalTransition):
    """An incident that is not active refuses `action` (claim, pass, raise a request, …)."""

    code = "incident_not_active"

    def __init__(self, current: object, action: str, why: str) -> None:
        super().__init__("incident", current, action, why)
        self.params = {"current": plain(current), "action": action}


class RequestNotOpen(IllegalTransition):
    """A request no longer open (or with nothing left) refuses a claim or a pass."""

    code = "request_not_open"

    def __init__(self, current: object, asked: str, why: str = "") -> None:
        super().__init__("request", current, asked, why)
        self.params = {"current": plain(current), "asked": asked}


class RequestFinal(IllegalTransition):
    code = "request_final"

    def __init__(self, current: object, asked: str, why: str) -> None:
        super().__init__("request", current, asked, why)
        self.params = {"current": plain(current), "asked": asked}


class NotEnoughRemaining(Conflict):
    code = "not_enough_remaining"

    def __init__(self, asked: int, remaining: int) -> None:
        super().__init__(f"cannot claim {asked}: only {remaining} left unclaimed on this request")
        self.asked = asked
        self.remaining = remaining
        self.params = {"asked": asked, "remaining": remaining}


class BelowClaimed(Conflict):
    code = "below_claimed"

    def __init__(self, asked: int, claimed: int) -> None:
        units = "1 unit is" if claimed == 1 else f"{claimed} units are"
        super().__init__(
            f"the quantity cannot go below what is already claimed: {units} claimed, {asked} asked"
        )
        self.asked = asked
        self.claimed = claimed
        self.params = {"asked": asked, "claimed": claimed}


class IdempotencyMismatch(Conflict):
    code = "idempotency_mismatch"


class AlreadyPassed(Conflict):
    code = "already_passed"

    def __init__(self) -> None:
        super().__init__("your city has already passed on this request")


class OpenOffersLimit(Conflict):
    code = "open_offers_limit"

    def __init__(self, open_count: int, limit: int) -> None:
        super().__init__(
            f"your city has {open_count} open offers on this incident, the most it may have; "
            "withdraw some or wait for answers"
        )
        self.params = {"open": open_count, "limit": limit}


class ConcurrentChange(Conflict):
    code = "concurrent_change"

    def __init__(self) -> None:
        super().__init__("a concurrent change conflicted with this one; retry")
