"""What a requesting city's manager may change in a request after raising it.

Quantity, priority, needed-by and report-to follow the situation; the resource and
kind do not (a different resource is a different request). The quantity never goes
below what cities have already claimed: their units are promised and on their way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from service.domain.errors import (
    BelowClaimed,
    CoordinatesPair,
    Invalid,
    NotInFuture,
    RequestFinal,
)
from service.domain.incident_updates import FieldChange
from service.domain.lifecycles import (
    FINAL_REQUEST_STATUSES,
    RequestStatus,
    check_request_transition,
    request_status_for,
)

EDITABLE_FIELDS = ("quantity", "priority", "needed_by", "report_to", "report_lat", "report_lon")
"""The fields an update may change, in the order its event lists them."""


def request_changes(
    status: RequestStatus,
    current: Mapping[str, object],
    asked: Mapping[str, object],
    *,
    claimed_quantity: int,
    now: datetime,
) -> dict[str, FieldChange]:
    """The fields `asked` changes in a request now `current`, old and new; empty when it
    changes nothing.

    A final request refuses any update (IllegalTransition), and so does a quantity below
    `claimed_quantity` (BelowClaimed, a Conflict); a needed-by that is not after `now`,
    or a field no update has, is Invalid; so is a staging point left with one coordinate.
    """
    if status in FINAL_REQUEST_STATUSES:
        raise RequestFinal(status, "update", "a final request's record is final")
    unknown = sorted(set(asked) - set(EDITABLE_FIELDS))
    if unknown:
        raise Invalid(f"an update cannot change {', '.join(unknown)}")
    point = [asked.get(name, current.get(name)) for name in ("report_lat", "report_lon")]
    if (point[0] is None) != (point[1] is None):
        raise CoordinatesPair(
            "give both report_lat and report_lon, or null for both to remove them"
        )
    changes = {
        name: FieldChange(current[name], asked[name])
        for name in EDITABLE_FIELDS
        if name in asked and asked[name] != current[name]
    }
    quantity = changes.get("quantity")
    if quantity is not None and isinstance(quantity.new, int) and quantity.new < claimed_quantity:
        raise BelowClaimed(quantity.new, claimed_quantity)
    needed_by = changes.get("needed_by")
    if needed_by is not None and isinstance(needed_by.new, datetime) and needed_by.new <= now:
        raise NotInFuture("needed_by")
    return changes


def status_after_edit(
    status: RequestStatus, quantity: int, claimed_quantity: int, delivered_quantity: int
) -> RequestStatus:
    """The status of a request whose quantity an edit set to `quantity`.

    Brought down to what was delivered, a request open to more claims is fulfilled: it
    is claimed in full on the way, as if its last units had just been claimed, so each
    step is one the request lifecycle allows.
    """
    after = request_status_for(quantity, claimed_quantity, delivered_quantity)
    if after is status:
        return after
    if after is RequestStatus.FULFILLED and status is not RequestStatus.CLAIMED:
        check_request_transition(status, RequestStatus.CLAIMED)
        check_request_transition(RequestStatus.CLAIMED, after)
    else:
        check_request_transition(status, after)
    return after
