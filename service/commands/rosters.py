"""Cities' rosters: managers keep their city's packages; every city of its networks reads
them; claims made from a package commit and give back its units.

The rules are `service.domain.rosters`'; this module reads and writes the rows. A
package's units are committed by one conditional UPDATE of its item (applied only
where the item is as the decision saw it), backed by the item's CHECK constraint, so
claims from one package in many incidents, on many replicas, never exceed its units
or its cap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, func, update
from sqlmodel import col, select

from service.commands.context import CommandContext
from service.commands.escalation import escalate_after_roster_change
from service.domain import rosters as rules
from service.domain.actors import Role
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.models import (
    PackageCreate,
    PackageItemIn,
    PackageItemPublic,
    PackagePublic,
    PackageUpdate,
    Page,
)
from service.persistence.tables import (
    City,
    Claim,
    NetworkMembership,
    PackageItem,
    RosterPackage,
)

MAX_PACKAGES_PER_CITY = 200
# A conditional update that keeps missing means the item changes faster than we decide.
_MAX_ATTEMPTS = 50


# Who may read and edit ----------------------------------------------------------------


def shares_network(ctx: CommandContext, city_a: int, city_b: int) -> bool:
    mine = NetworkMembership.__table__.alias("mine")  # type: ignore[attr-defined]
    theirs = NetworkMembership.__table__.alias("theirs")  # type: ignore[attr-defined]
    return bool(
        ctx.session.exec(
            select(
                exists().where(
                    mine.c.city_id == city_a,
                    theirs.c.city_id == city_b,
                    mine.c.network_id == theirs.c.network_id,
                )
            )
        ).one()
    )


def readable_city(ctx: CommandContext, city_id: int) -> City:
    """The city whose roster the caller may read: its own, one of its networks', or any
    for the admin; 404 otherwise, as for a missing city."""
    city = ctx.session.get(City, city_id)
    missing = NotFound(f"city {city_id} not found")
    if city is None:
        raise missing
    actor = ctx.actor
    if actor.is_admin or actor.city_id == city_id:
        return city
    if actor.city_id is None or not shares_network(ctx, actor.city_id, city_id):
        raise missing
    return city


def _editable_city(ctx: CommandContext, city_id: int) -> None:
    """Only the city's own managers edit its roster."""
    if ctx.actor.role is not Role.MANAGER:
        raise Forbidden(
            f"a roster is edited by its city's manager (yours is a {ctx.actor.role.value} token)"
        )
    readable_city(ctx, city_id)
    if ctx.actor.city_id != city_id:
        raise Forbidden("a manager edits its own city's roster only")


def _package_of(ctx: CommandContext, city_id: int, package_id: int) -> RosterPackage:
    package = ctx.session.exec(
        select(RosterPackage)
        .where(col(RosterPackage.id) == package_id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if package is None or package.city_id != city_id:
        raise NotFound(f"package {package_id} not found")
    return package


# Reading --------------------------------------------------------------------------------


def _items(ctx: CommandContext, package_ids: list[int]) -> dict[int, list[PackageItem]]:
    rows = ctx.session.exec(
        select(PackageItem)
        .where(col(PackageItem.package_id).in_(package_ids))
        .order_by(col(PackageItem.resource))
        .execution_options(populate_existing=True)
    ).all()
    by_package: dict[int, list[PackageItem]] = {i: [] for i in package_ids}
    for item in rows:
        by_package[item.package_id].append(item)
    return by_package


def item_public(item: PackageItem) -> PackageItemPublic:
    tally = _tally(item)
    return PackageItemPublic(
        resource=item.resource,
        quantity=item.quantity,
        cap_quantity=item.cap_quantity,
        committed_quantity=item.committed_quantity,
        remaining_quantity=tally.remaining_quantity,
    )


def package_public(
    ctx: CommandContext, package: RosterPackage, items: list[PackageItem]
) -> PackagePublic:
    return PackagePublic(
        id=package.id or 0,
        city_id=package.city_id,
        name=package.name,
        items=[item_public(item) for item in items],
        readiness_hours=package.readiness_hours,
        self_sufficiency_days=package.self_sufficiency_days,
        limitations=package.limitations,
        cost_estimate=package.cost_estimate,
        cost_currency=package.cost_currency,
        contact=package.contact,
        cap_percent=package.cap_percent,
        available=package.available,
        unavailable_until=package.unavailable_until,
        unavailable_reason=package.unavailable_reason,
        available_now=rules.available_now(package.available, package.unavailable_until, ctx.now),
        created_at=package.created_at,
        updated_at=package.updated_at,
    )


def list_packages(
    ctx: CommandContext, city_id: int, limit: int, offset: int
) -> Page[PackagePublic]:
    readable_city(ctx, city_id)
    where = col(RosterPackage.city_id) == city_id
    total = ctx.session.exec(select(func.count()).select_from(RosterPackage).where(where)).one()
    packages = ctx.session.exec(
        select(RosterPackage)
        .where(where)
        .order_by(col(RosterPackage.id))
        .limit(limit)
        .offset(offset)
    ).all()
    items = _items(ctx, [p.id or 0 for p in packages])
    data = [package_public(ctx, p, items[p.id or 0]) for p in packages]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[PackagePublic](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


def get_package(ctx: CommandContext, city_id: int, package_id: int) -> PackagePublic:
    readable_city(ctx, city_id)
    package = _package_of(ctx, city_id, package_id)
    return package_public(ctx, package, _items(ctx, [package_id])[package_id])


# Editing --------------------------------------------------------------------------------


def _check_items(ctx: CommandContext, items: list[PackageItemIn]) -> None:
    seen: set[str] = set()
    for item in items:
        if ctx.catalogue.get(item.resource) is None:
            matches = ctx.catalogue.close_matches(item.resource)
            hint = f" (did you mean: {', '.join(matches)}?)" if matches else ""
            raise Invalid(f"unknown resource '{item.resource}'{hint}")
        if item.resource in seen:
            raise Invalid(f"resource '{item.resource}' is listed twice; give it once")
        seen.add(item.resource)


def _check_availability(available: bool, until: Any, reason: str) -> None:
    if available and (until is not None or reason):
        raise Invalid(
            "unavailable_until and unavailable_reason go with available: false; "
            "leave them out for an available package"
        )


def create_package(ctx: CommandContext, city_id: int, body: PackageCreate) -> PackagePublic:
    _editable_city(ctx, city_id)
    _check_items(ctx, body.items)
    _check_availability(body.available, body.unavailable_until, body.unavailable_reason)
    count = ctx.session.exec(
        select(func.count()).select_from(RosterPackage).where(col(RosterPackage.city_id) == city_id)
    ).one()
    if count >= MAX_PACKAGES_PER_CITY:
        raise Conflict(f"a city's roster holds at most {MAX_PACKAGES_PER_CITY} packages")
    fields = body.model_dump(exclude={"items"})
    package = RosterPackage(city_id=city_id, created_at=ctx.now, updated_at=ctx.now, **fields)
    ctx.session.add(package)
    ctx.session.flush()
    assert package.id is not None
    rows = [
        PackageItem(
            package_id=package.id,
            resource=item.resource,
            quantity=item.quantity,
            cap_quantity=rules.cap_quantity(item.quantity, body.cap_percent),
        )
        for item in body.items
    ]
    ctx.session.add_all(rows)
    ctx.session.flush()
    if count == 0:
        # The city keeps a roster now: what it holds counts toward its rings' cover.
        escalate_after_roster_change(ctx, city_id)
    return package_public(ctx, package, sorted(rows, key=lambda i: i.resource))


def update_package(
    ctx: CommandContext, city_id: int, package_id: int, body: PackageUpdate
) -> PackagePublic:
    _editable_city(ctx, city_id)
    package = _package_of(ctx, city_id, package_id)
    asked = body.asked()
    asked.pop("items", None)
    for name, value in asked.items():
        setattr(package, name, value)
    if package.available and not {"unavailable_until", "unavailable_reason"} & asked.keys():
        # Available again: what made it unavailable no longer holds.
        package.unavailable_until, package.unavailable_reason = None, ""
    _check_availability(package.available, package.unavailable_until, package.unavailable_reason)
    wanted = None
    if body.items is not None:
        _check_items(ctx, body.items)
        wanted = {i.resource: i.quantity for i in body.items}
    held_before = {i.resource for i in _items(ctx, [package_id])[package_id]}
    _resize_items(ctx, package, wanted)
    package.updated_at = ctx.now
    ctx.session.add(package)
    ctx.session.flush()
    # It may hold less now (unavailable, fewer units, a lower cap, a resource removed).
    escalate_after_roster_change(ctx, city_id, held_before | set(wanted or ()))
    return package_public(ctx, package, _items(ctx, [package_id])[package_id])


def _resize_items(
    ctx: CommandContext, package: RosterPackage, wanted: dict[str, int] | None
) -> None:
    """Apply the package's cap (and, when given, its new resources) to its items, each by
    a conditional update on what is committed, so a claim in between is never lost."""
    assert package.id is not None
    current = {i.resource: i for i in _items(ctx, [package.id])[package.id]}
    if wanted is None:
        wanted = {resource: item.quantity for resource, item in current.items()}
    rules.check_removable(
        (resource, item.committed_quantity)
        for resource, item in current.items()
        if resource not in wanted
    )
    for resource, item in current.items():
        if resource not in wanted:
            gone = ctx.session.execute(
                delete(PackageItem).where(
                    col(PackageItem.id) == item.id, col(PackageItem.committed_quantity) == 0
                )
            )
            if gone.rowcount != 1:  # type: ignore[attr-defined]  # committed since read
                rules.check_removable([(resource, _fresh_item(ctx, item).committed_quantity)])
                raise Conflict(f"{resource}: its committed units keep changing; try again")
            continue
        _resize(ctx, item, wanted[resource], package.cap_percent)
    for resource, quantity in wanted.items():
        if resource not in current:
            ctx.session.add(
                PackageItem(
                    package_id=package.id,
                    resource=resource,
                    quantity=quantity,
                    cap_quantity=rules.cap_quantity(quantity, package.cap_percent),
                )
            )


def _resize(ctx: CommandContext, item: PackageItem, quantity: int, cap_percent: int) -> None:
    for _ in range(_MAX_ATTEMPTS):
        before = _tally(item)
        after = rules.resize_item(before, quantity, cap_percent, item.resource)
        applied = ctx.session.execute(
            update(PackageItem)
            .where(
                col(PackageItem.id) == item.id,
                col(PackageItem.committed_quantity) == before.committed_quantity,
            )
            .values(quantity=after.quantity, cap_quantity=after.cap_quantity)
            .execution_options(synchronize_session=False)
        )
        if applied.rowcount == 1:  # type: ignore[attr-defined]
            return
        item = _fresh_item(ctx, item)
    raise Conflict(f"{item.resource}: its committed units keep changing; try again")


def delete_package(ctx: CommandContext, city_id: int, package_id: int) -> None:
    _editable_city(ctx, city_id)
    package = _package_of(ctx, city_id, package_id)
    used = ctx.session.exec(select(exists().where(col(Claim.package_id) == package_id))).one()
    if used:
        raise Conflict(
            "claims have been made from this package; mark it unavailable instead of removing it"
        )
    gone = ctx.session.execute(
        delete(PackageItem).where(
            col(PackageItem.package_id) == package_id, col(PackageItem.committed_quantity) > 0
        )
    )
    assert gone.rowcount == 0  # type: ignore[attr-defined]  # no claim, nothing committed
    held = {i.resource for i in _items(ctx, [package_id])[package_id]}
    ctx.session.execute(delete(PackageItem).where(col(PackageItem.package_id) == package_id))
    ctx.session.delete(package)
    ctx.session.flush()
    escalate_after_roster_change(ctx, city_id, held)


# Claims from a package ------------------------------------------------------------------


def _tally(item: PackageItem) -> rules.ItemTally:
    return rules.ItemTally(item.quantity, item.cap_quantity, item.committed_quantity)


def _fresh_item(ctx: CommandContext, item: PackageItem) -> PackageItem:
    fresh = ctx.session.exec(
        select(PackageItem)
        .where(col(PackageItem.id) == item.id)
        .execution_options(populate_existing=True)
    ).one()
    return fresh


def commit_from_package(
    ctx: CommandContext, city_id: int, package_id: int, resource: str, quantity: int
) -> dict[str, Any]:
    """Commit `quantity` units of `resource` from the claiming city's package, in the
    claim's transaction. Returns the package's state for the claim's event."""
    package = ctx.session.get(RosterPackage, package_id)
    if package is None or package.city_id != city_id:
        raise NotFound(f"package {package_id} not found")
    if not rules.available_now(package.available, package.unavailable_until, ctx.now):
        until = package.unavailable_until
        when = f" until {until.isoformat()}" if until else ""
        why = f": {package.unavailable_reason}" if package.unavailable_reason else ""
        raise Conflict(f"package '{package.name}' is unavailable{when}{why}")
    item = ctx.session.exec(
        select(PackageItem)
        .where(col(PackageItem.package_id) == package_id, col(PackageItem.resource) == resource)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if item is None:
        raise Invalid(f"package '{package.name}' holds no {resource}")
    for _ in range(_MAX_ATTEMPTS):
        before = _tally(item)
        after = rules.commit_units(before, quantity, package_name=package.name)
        if _apply(ctx, item, before, after):
            # The package holds fewer units for every other request of its city's rings.
            escalate_after_roster_change(ctx, city_id, [resource])
            return package_state(package, item, after)
        item = _fresh_item(ctx, item)
    raise Conflict(f"package '{package.name}': its committed units keep changing; try again")


def _apply(
    ctx: CommandContext, item: PackageItem, before: rules.ItemTally, after: rules.ItemTally
) -> bool:
    """The one conditional UPDATE: applies only where the item is as the decision saw it
    (the CHECK constraint backs the units and the cap regardless)."""
    applied = ctx.session.execute(
        update(PackageItem)
        .where(
            col(PackageItem.id) == item.id,
            col(PackageItem.committed_quantity) == before.committed_quantity,
            col(PackageItem.cap_quantity) == before.cap_quantity,
            col(PackageItem.cap_quantity) >= after.committed_quantity,
        )
        .values(committed_quantity=after.committed_quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(applied.rowcount == 1)  # type: ignore[attr-defined]


def give_back(ctx: CommandContext, claim: Claim, resource: str) -> dict[str, Any] | None:
    """Return a claim's units to its package (the claim was released or ended early).
    Returns the package's state for the claim's event; None for a claim not from one."""
    if claim.package_id is None:
        return None
    package = ctx.session.get(RosterPackage, claim.package_id)
    assert package is not None  # a package with claims is never removed
    of_item = (
        col(PackageItem.package_id) == claim.package_id,
        col(PackageItem.resource) == resource,
    )
    ctx.session.execute(
        update(PackageItem)
        .where(*of_item)
        .values(committed_quantity=col(PackageItem.committed_quantity) - claim.quantity)
        .execution_options(synchronize_session=False)
    )
    item = ctx.session.exec(
        select(PackageItem).where(*of_item).execution_options(populate_existing=True)
    ).one()
    return package_state(package, item, _tally(item))


def package_state(
    package: RosterPackage, item: PackageItem, tally: rules.ItemTally
) -> dict[str, Any]:
    """What a claim's event says of its package: the item's units as the claim left them."""
    return rules.package_state(
        package_id=package.id or 0,
        city_id=package.city_id,
        name=package.name,
        resource=item.resource,
        tally=tally,
    )
