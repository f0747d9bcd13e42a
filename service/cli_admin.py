"""`aidmesh admin … list`, `token revoke`, `token rotate` and network membership: what
the API offers an admin, from the command line. Plugged into the parser by `service/cli.py`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from service import queries
from service.domain.actors import SYSTEM
from service.domain.errors import NotFound
from service.executor import Executor
from service.persistence.tables import City, Network

MakeExecutor = Callable[[], Executor]
_PAGE = 500


def register(networks: Any, cities: Any, tokens: Any, make_executor: MakeExecutor) -> None:
    """Add the commands to the `network`, `city` and `token` subparsers."""

    def bound(run: Callable[[argparse.Namespace, Executor], int]) -> Callable[..., int]:
        return lambda args: run(args, make_executor())

    net_list = networks.add_parser("list", help="list networks and their cities")
    net_list.set_defaults(run=bound(_network_list))
    for verb, run, doc in (
        ("add-member", _network_add_member, "put a city in a network"),
        ("remove-member", _network_remove_member, "take a city out of a network"),
    ):
        member = networks.add_parser(verb, help=doc)
        member.add_argument("network", help="network slug or id")
        member.add_argument("city", help="city slug or id")
        member.set_defaults(run=bound(run))

    city_list = cities.add_parser("list", help="list cities and their networks")
    city_list.set_defaults(run=bound(_city_list))

    tok_list = tokens.add_parser("list", help="list tokens (never their secrets)")
    tok_list.add_argument("--all", action="store_true", help="include revoked tokens")
    tok_list.set_defaults(run=bound(_token_list))
    tok_revoke = tokens.add_parser("revoke", help="revoke a token by id (see `token list`)")
    tok_revoke.add_argument("token_id", type=int)
    tok_revoke.set_defaults(run=bound(_token_revoke))
    tok_rotate = tokens.add_parser(
        "rotate",
        help="a new secret for a token (same id, label and scopes); the old one stops at once",
    )
    tok_rotate.add_argument("token_id", type=int)
    tok_rotate.set_defaults(run=bound(_token_rotate))


def _all(session: Session, page: Callable[[Session, int, int], Any]) -> list[Any]:
    found: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        batch = page(session, _PAGE, offset)
        found += batch.data
        offset = batch.next_offset
    return found


def _network_list(_: argparse.Namespace, executor: Executor) -> int:
    with executor.db.read() as session:
        networks = _all(session, queries.list_networks)
        slugs = _city_slugs(session)
    print(f"{'id':>4}  {'slug':20}  {'name':40}  cities")
    for n in networks:
        members = ", ".join(slugs.get(c, str(c)) for c in n.city_ids) or "-"
        print(f"{n.id:>4}  {n.slug:20}  {n.name[:40]:40}  {members}")
    return 0


def _city_list(_: argparse.Namespace, executor: Executor) -> int:
    with executor.db.read() as session:
        cities = _all(session, queries.list_cities)
        nets = {n.id: n.slug for n in session.exec(select(Network)).all()}
    print(f"{'id':>4}  {'slug':20}  {'cc':2}  {'name':30}  networks")
    for c in cities:
        member_of = ", ".join(nets.get(n, str(n)) for n in c.network_ids) or "-"
        print(f"{c.id:>4}  {c.slug:20}  {c.country:2}  {c.name[:30]:30}  {member_of}")
    return 0


def _token_list(args: argparse.Namespace, executor: Executor) -> int:
    with executor.db.read() as session:
        tokens = _all(session, queries.list_tokens)
        slugs = _city_slugs(session)
    print(
        f"{'id':>4}  {'prefix':12}  {'role':9}  {'city':14}  {'scopes':15}  {'created':16}  "
        f"{'expires':16}  {'last used':16}  {'revoked':16}  label"
    )
    for t in tokens:
        if t.revoked_at is not None and not args.all:
            continue
        city = slugs.get(t.city_id, "-") if t.city_id is not None else "-"
        scopes = ",".join(t.scopes) or "all"
        print(
            f"{t.id:>4}  {t.prefix + '…':12}  {t.role:9}  {city:14}  {scopes:15}  "
            f"{_when(t.created_at)}  {_when(t.expires_at, 'never')}  {_when(t.last_used_at)}  "
            f"{_when(t.revoked_at)}  {t.label}"
        )
    return 0


def _when(at: datetime | None, none: str = "-") -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else f"{none:16}"


def _token_rotate(args: argparse.Namespace, executor: Executor) -> int:
    from service.commands.admin import rotate_token

    (token, secret), _ = executor.run_sync(SYSTEM, rotate_token, args.token_id)
    print(secret)
    expires = f"{token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never"
    print(
        f"token {token.id} rotated: the old secret no longer works; expires {expires}",
        file=sys.stderr,
    )
    return 0


def _token_revoke(args: argparse.Namespace, executor: Executor) -> int:
    from service.commands.admin import revoke_token

    token, _ = executor.run_sync(SYSTEM, revoke_token, args.token_id)
    at = f"{token.revoked_at:%Y-%m-%d %H:%M} UTC" if token.revoked_at else "?"
    print(f"token {token.id} ({token.prefix}…, {token.role}) revoked at {at}")
    return 0


def _network_add_member(args: argparse.Namespace, executor: Executor) -> int:
    from service.commands.admin import add_member

    network_id, city_id = _resolve(executor, args.network, args.city)
    executor.run_sync(SYSTEM, add_member, network_id, city_id)
    print(f"city {args.city} is in network {args.network}")
    return 0


def _network_remove_member(args: argparse.Namespace, executor: Executor) -> int:
    from service.commands.admin import remove_member

    network_id, city_id = _resolve(executor, args.network, args.city)
    executor.run_sync(SYSTEM, remove_member, network_id, city_id)
    print(f"city {args.city} is no longer in network {args.network}")
    return 0


def _resolve(executor: Executor, network: str, city: str) -> tuple[int, int]:
    with executor.db.read() as session:
        return _id_of(session, Network, network, "network"), _id_of(session, City, city, "city")


def _id_of(session: Session, table: Any, ref: str, what: str) -> int:
    """The id of a network or city given by slug or id."""
    query = select(table.id)
    query = (
        query.where(col(table.id) == int(ref))
        if ref.isdigit()
        else query.where(col(table.slug) == ref)
    )
    found = session.exec(query).one_or_none()
    if found is None:
        raise NotFound(f"unknown {what} '{ref}'")
    return int(found)


def _city_slugs(session: Session) -> dict[int | None, str]:
    return {c.id: c.slug for c in session.exec(select(City)).all()}
