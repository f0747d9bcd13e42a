"""Cities' own playbooks: uploaded by an admin, validated exactly like the stock ones."""

from __future__ import annotations

from sqlmodel import col, select

from playbooks import Playbook, PlaybookError, parse_playbook
from service.commands.admin import require_admin
from service.commands.context import CommandContext
from service.domain.errors import InvalidDocument, NotFound
from service.persistence.tables import City, CityPlaybook


def find_playbook(ctx: CommandContext, city_id: int, name: str) -> Playbook | None:
    """The city's own playbook of that name, else the stock one."""
    own = ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id, col(CityPlaybook.incident_type) == name
        )
    ).one_or_none()
    if own is not None:
        return parse_playbook(own.source, f"{name}.yaml", ctx.catalogue)
    return ctx.playbooks.get(name)


def validate(ctx: CommandContext, incident_type: str, source: str) -> Playbook:
    try:
        playbook = parse_playbook(source, f"{incident_type}.yaml", ctx.catalogue)
    except PlaybookError as exc:
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
    return playbook


def save_city_playbook(
    ctx: CommandContext, city_id: int, incident_type: str, source: str
) -> tuple[CityPlaybook, Playbook]:
    require_admin(ctx)
    if ctx.session.get(City, city_id) is None:
        raise NotFound(f"city {city_id} not found")
    playbook = validate(ctx, incident_type, source)
    row = ctx.session.exec(
        select(CityPlaybook).where(
            col(CityPlaybook.city_id) == city_id, col(CityPlaybook.incident_type) == incident_type
        )
    ).one_or_none()
    if row is None:
        row = CityPlaybook(
            city_id=city_id,
            incident_type=incident_type,
            source=source,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    else:
        row.source = source
        row.updated_at = ctx.now
    ctx.session.add(row)
    ctx.session.flush()
    return row, playbook


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
            found[row.incident_type] = (
                "city",
                parse_playbook(row.source, f"{row.incident_type}.yaml", ctx.catalogue),
            )
    return found
