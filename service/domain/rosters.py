"""Rosters: what a city can lend, as packages of catalogued resources, and the rules of
committing a package's units to claims.

Pure functions over plain values. A package's item (one resource in it) has `quantity`
units, of which at most `cap_quantity` (the city's cap on the share committed at once,
across every incident) may be committed; `committed_quantity` counts the units of the
claims made from it that still hold them. The commands keep only the reading and
writing of rows (one conditional update, backed by a CHECK constraint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service.domain import lifecycles as lc
from service.domain.errors import Conflict

# A claim made from a package holds its units until it is released or ends early.
HOLDING_CLAIM_STATUSES = frozenset(
    {
        lc.ClaimStatus.CLAIMED,
        lc.ClaimStatus.ACCEPTED,
        lc.ClaimStatus.EN_ROUTE,
        lc.ClaimStatus.ON_SITE,
    }
)


@dataclass(frozen=True, slots=True)
class ItemTally:
    """One resource of a package: its units, the cap and what is committed."""

    quantity: int
    cap_quantity: int
    committed_quantity: int

    @property
    def remaining_quantity(self) -> int:
        return max(self.cap_quantity - self.committed_quantity, 0)


def cap_quantity(quantity: int, cap_percent: int) -> int:
    """The units of `quantity` that may be committed at once under a cap of `cap_percent`
    (rounded down: a cap keeps at least its share at home)."""
    return quantity * cap_percent // 100


def available_now(available: bool, unavailable_until: datetime | None, now: datetime) -> bool:
    """Whether a package can be claimed from at `now`: marked available, or unavailable
    only until a time that has passed."""
    return available or (unavailable_until is not None and unavailable_until <= now)


def package_state(
    *, package_id: int, city_id: int, name: str, resource: str, tally: ItemTally
) -> dict[str, object]:
    """What a claim's event says of its package: the item's units as the claim left them."""
    return {
        "id": package_id,
        "city_id": city_id,
        "name": name,
        "resource": resource,
        "quantity": tally.quantity,
        "cap_quantity": tally.cap_quantity,
        "committed_quantity": tally.committed_quantity,
        "remaining_quantity": tally.remaining_quantity,
    }


def commit_units(item: ItemTally, quantity: int, *, package_name: str) -> ItemTally:
    """The item once a claim of `quantity` units is made from it (Conflict if the units
    or the cap would be exceeded)."""
    after = item.committed_quantity + quantity
    if after > item.cap_quantity:
        if item.cap_quantity < item.quantity:
            limit = f"its cap allows {item.cap_quantity} of its {item.quantity} committed at once"
        else:
            limit = f"it has {item.quantity}"
        raise Conflict(
            f"package '{package_name}' has {item.remaining_quantity} units left to commit "
            f"({limit}, {item.committed_quantity} committed); asked for {quantity}"
        )
    return ItemTally(item.quantity, item.cap_quantity, after)


def gives_back(before: lc.ClaimStatus, after: lc.ClaimStatus) -> bool:
    """Whether a claim going `before → after` gives its package's units back: it leaves
    the statuses that hold them (released, withdrawn, declined or expired)."""
    return before in HOLDING_CLAIM_STATUSES and after not in HOLDING_CLAIM_STATUSES


def resize_item(item: ItemTally, quantity: int, cap_percent: int, resource: str) -> ItemTally:
    """The item with `quantity` units under a cap of `cap_percent` (Conflict if what is
    committed would no longer fit)."""
    cap = cap_quantity(quantity, cap_percent)
    if item.committed_quantity > cap:
        raise Conflict(
            f"{resource}: {item.committed_quantity} units are committed, more than the "
            f"{cap} that {quantity} units under a cap of {cap_percent}% allow; "
            "wait until claims give them back"
        )
    return ItemTally(quantity, cap, item.committed_quantity)


def check_removable(committed: Iterable[tuple[str, int]]) -> None:
    """Refuse removing resources (or a package) whose units are committed."""
    held = [f"{resource} ({n})" for resource, n in committed if n > 0]
    if held:
        raise Conflict(
            "units are committed to claims: " + ", ".join(held) + "; they can be removed "
            "once those claims give them back"
        )


# Matching -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lender:
    """A package of a city a request targets that holds the request's resource."""

    city_id: int
    ring: int  # the ring at which the request reaches the city
    distance_km: float
    package_id: int
    package_name: str
    readiness_hours: int
    remaining_quantity: int  # of the resource, under the cap, now


def who_could_help(lenders: Iterable[Lender]) -> list[Lender]:
    """The packages that can lend now (units left under the cap), nearest ring first,
    then nearest city, then quickest to deploy."""
    able = [lender for lender in lenders if lender.remaining_quantity > 0]
    return sorted(
        able,
        key=lambda x: (x.ring, x.distance_km, x.readiness_hours, x.city_id, x.package_id),
    )
