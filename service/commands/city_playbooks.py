"""Cities' own playbooks: uploaded by an admin, validated exactly like the stock ones.

An upload is parsed and checked by :func:`check_city_playbook` before, and outside, the write
transaction that stores it: the parse is CPU work bounded by :mod:`playbooks.limits`, and a
refused document never holds the database. :func:`save_city_playbook` only takes what passed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlmodel import col, select

from playbooks import Catalogue, Playbook, PlaybookError, PlaybookTooLarge, parse_playbook
from service.commands.admin import require_admin
from service.commands.context import CommandContext
from service.domain.errors import InvalidDocument, NotFound
from service.persistence.tables import City, CityPlaybook

log = logging.getLogger(__name__)


def city_playbook_row(ctx: CommandContext, city_id: int, name: str) -> CityPlaybook | None:
    """The city's own stored playbook of that name (incident type), if it has one."""
    return ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id, col(CityPlaybook.incident_type) == name
        )
    ).one_or_none()


def find_playbook(ctx: CommandContext, city_id: int, name: str) -> Playbook | None:
    """The city's own playbook of that name, else the stock one."""
    return playbook_of(ctx, name, city_playbook_row(ctx, city_id, name))


def playbook_of(ctx: CommandContext, name: str, own: CityPlaybook | None) -> Playbook | None:
    """`own` (the city's row for `name`, already read) if it still passes the checks,
    else the stock playbook of that name."""
    if own is not None and (playbook := _stored(ctx, own)) is not None:
        return playbook
    return ctx.playbooks.get(name)


@dataclass(frozen=True)
class CheckedPlaybook:
    """An uploaded playbook that passed every check, with the text it came from."""

    incident_type: str
    source: str
    playbook: Playbook


def check_city_playbook(catalogue: Catalogue, incident_type: str, source: str) -> CheckedPlaybook:
    """Parse and check an upload for ``incident_type``; no database needed.

    Raises :class:`InvalidDocument` listing every problem with its line, or
    :class:`PlaybookTooLarge` for text over the byte limit (which is not parsed at all).
    """
    started = time.perf_counter()
    try:
        playbook = parse_playbook(source, f"{incident_type}.yaml", catalogue)
    except PlaybookTooLarge as exc:
        log.info("playbook upload '%s' refused: %s", incident_type, exc.problems[0].message)
        raise
    except PlaybookError as exc:
        log.info(
            "playbook upload '%s' refused after %.1f ms: %d problem(s), first: %s",
            incident_type,
            (time.perf_counter() - started) * 1000,
            len(exc.problems),
            exc.problems[0] if exc.problems else "-",
        )
        raise InvalidDocument(
            str(exc),
            [
                {"line": p.line, "location": p.location, "msg": p.message, "type": "playbook"}
                for p in exc.problems
            ],
        ) from exc
    if playbook.incident_type != incident_type:
        raise InvalidDocument(
            "incident_type mismatch",
            [
                {
                    "line": None,
                    "location": "incident_type",
                    "msg": f"the playbook says {playbook.incident_type!r} but is uploaded "
                    f"as {incident_type!r}",
                    "type": "playbook",
                }
            ],
        )
    return CheckedPlaybook(incident_type, source, playbook)


def save_city_playbook(
    ctx: CommandContext, city_id: int, checked: CheckedPlaybook
) -> tuple[CityPlaybook, Playbook]:
    require_admin(ctx)
    if ctx.session.get(City, city_id) is None:
        raise NotFound(f"city {city_id} not found")
    row = ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id,
            col(CityPlaybook.incident_type) == checked.incident_type,
        )
    ).one_or_none()
    if row is None:
        row = CityPlaybook(
            city_id=city_id,
            incident_type=checked.incident_type,
            source=checked.source,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    else:
        row.source = checked.source
        row.updated_at = ctx.now
    ctx.session.add(row)
    ctx.session.flush()
    return row, checked.playbook


def delete_city_playbook(ctx: CommandContext, city_id: int, incident_type: str) -> None:
    require_admin(ctx)
    row = ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id, col(CityPlaybook.incident_type) == incident_type
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"city {city_id} has no playbook '{incident_type}'")
    ctx.session.delete(row)


def playbooks_for(ctx: CommandContext, city_id: int | None) -> dict[str, tuple[str, Playbook]]:
    """Every playbook a city can declare from: name → (origin, playbook); its own win."""
    found = {name: ("stock", playbook) for name, playbook in ctx.playbooks.items()}
    if city_id is not None:
        for row in ctx.session.exec(
            select(CityPlaybook).where(col(CityPlaybook.city_id) == city_id)
        ).all():
            playbook = _stored(ctx, row)
            if playbook is not None:
                found[row.incident_type] = ("city", playbook)
    return found


def _stored(ctx: CommandContext, row: CityPlaybook) -> Playbook | None:
    """A stored playbook, or None if it no longer passes the checks.

    Rows were checked when uploaded, but a stricter release (aliases refused, tighter limits)
    can refuse an old one: the city then falls back to the stock playbook, and the log says
    which row to upload again, rather than every listing failing.
    """
    try:
        return parse_playbook(row.source, f"{row.incident_type}.yaml", ctx.catalogue)
    except PlaybookError as exc:
        log.error(
            "city %d's playbook '%s' no longer passes the checks; using the stock one until "
            "it is uploaded again: %s",
            row.city_id,
            row.incident_type,
            exc.problems[0] if exc.problems else exc,
        )
        return None
