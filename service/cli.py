"""The `aidmesh` command: serve, migrate, administer and check playbooks."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import col, select

from service.cli_admin import register as register_admin_commands
from service.domain.actors import SYSTEM, Role
from service.domain.errors import DomainError
from service.persistence.db import Database, build_engine, migrate
from service.persistence.tables import City
from service.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        result: int = args.run(args)
    except DomainError as exc:
        print(f"aidmesh: {exc.detail}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"aidmesh: invalid input:\n{exc}", file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aidmesh", description=__doc__)
    sub = parser.add_subparsers()

    serve = sub.add_parser("serve", help="run the HTTP and websocket server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG, libraries included"
    )
    serve.set_defaults(run=_serve)

    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    mig.set_defaults(run=_migrate)

    db = sub.add_parser("db", help="database tools").add_subparsers()
    db_copy = db.add_parser(
        "copy", help="copy the whole database into an empty one (e.g. SQLite to PostgreSQL)"
    )
    db_copy.add_argument("--to", required=True, dest="target", metavar="URL", help="target")
    db_copy.add_argument("--from", dest="source", metavar="URL", help="default: DATABASE_URL")
    db_copy.add_argument("--batch-rows", type=int, help="rows per insert (default 2,000)")
    db_copy.add_argument("--no-verify", action="store_true", help="skip the check after copying")
    db_copy.set_defaults(run=_db_copy)

    adm = sub.add_parser("admin", help="administer the network").add_subparsers()
    boot = adm.add_parser(
        "bootstrap",
        help="create the first admin account (with --email), or issue an admin token for scripts",
    )
    boot.add_argument(
        "--email",
        help="the first admin's email: prints a one-time link to choose the password",
    )
    boot.add_argument("--name", help="the first admin's display name (default: from the email)")
    boot.add_argument("--label", default="bootstrap", help="the token's label (without --email)")
    boot.set_defaults(run=_bootstrap)

    net = adm.add_parser("network", help="networks").add_subparsers()
    net_add = net.add_parser("add", help="register a network")
    net_add.add_argument("slug")
    net_add.add_argument("--name", required=True)
    net_add.add_argument("--description", default="")
    net_add.set_defaults(run=_network_add)

    city = adm.add_parser("city", help="cities").add_subparsers()
    city_add = city.add_parser("add", help="register a city")
    city_add.add_argument("slug")
    city_add.add_argument("--name", required=True)
    city_add.add_argument("--country", required=True, help="ISO 3166 alpha-2, e.g. KE")
    city_add.add_argument("--lat", type=float, required=True)
    city_add.add_argument("--lon", type=float, required=True)
    city_add.add_argument("--network", action="append", default=[], help="network slug")
    city_add.add_argument("--time-zone", help="IANA time zone, e.g. Africa/Nairobi")
    city_add.set_defaults(run=_city_add)

    tok = adm.add_parser("token", help="tokens").add_subparsers()
    tok_issue = tok.add_parser("issue", help="issue a token and print it")
    tok_issue.add_argument("--role", required=True, choices=[r.value for r in Role])
    tok_issue.add_argument("--city", help="city slug (not for admin)")
    tok_issue.add_argument("--label", default="")
    tok_issue.add_argument(
        "--expires",
        type=int,
        metavar="DAYS",
        help="days until it expires (default AIDMESH_TOKEN_DEFAULT_DAYS, 90; "
        "at most AIDMESH_TOKEN_MAX_DAYS, 365)",
    )
    tok_issue.add_argument(
        "--scopes",
        default="",
        help="comma-separated: read (read only), claims, webhooks; none: all the role may do",
    )
    tok_issue.set_defaults(run=_token_issue)
    register_admin_commands(net, city, tok, lambda: _executor(Settings()))

    hooks = sub.add_parser(
        "webhooks",
        help="deliver webhooks in a process of its own (replicas then run with "
        "AIDMESH_WEBHOOKS_ENABLED=false)",
    )
    hooks.add_argument(
        "--nice", type=int, default=10, help="lower CPU priority by this much (default 10)"
    )
    hooks.add_argument("--metrics-host", default="127.0.0.1", help="default 127.0.0.1")
    hooks.add_argument(
        "--metrics-port", type=int, default=9108, help="Prometheus metrics port; 0: none"
    )
    hooks.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG, libraries included"
    )
    hooks.set_defaults(run=_webhooks)

    demo = sub.add_parser("demo", help="run a seeded demo network with simulated responders")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--minutes", type=float, default=5.0, help="how long responders act")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the service's log")
    demo.set_defaults(run=_demo)

    pb = sub.add_parser("playbooks", help="playbooks").add_subparsers()
    pb_check = pb.add_parser("check", help="validate playbook files (default: the stock ones)")
    pb_check.add_argument("paths", nargs="*", type=Path)
    pb_check.set_defaults(run=_playbooks_check)
    pb_list = pb.add_parser("list", help="list the stock playbooks")
    pb_list.set_defaults(run=_playbooks_list)
    return parser


def _database(settings: Settings) -> Database:
    engine = build_engine(settings)
    migrate(engine)
    return Database(engine)


def _executor(settings: Settings):  # type: ignore[no-untyped-def]
    from playbooks import load_catalogue, load_stock_playbooks
    from realtime.bus import InMemoryBus
    from service.executor import Executor

    catalogue = load_catalogue()
    stock = load_stock_playbooks(catalogue)
    return Executor(_database(settings), InMemoryBus(), settings, catalogue, lambda: stock)


def _webhooks(args: argparse.Namespace) -> int:
    from service.logs import configure_logging
    from service.webhooks import process

    settings = Settings()
    configure_logging(settings, level="debug" if args.verbose else None)
    return process.main(
        settings, nice=args.nice, metrics_host=args.metrics_host, metrics_port=args.metrics_port
    )


def _serve(args: argparse.Namespace) -> int:
    from service.admin_token import hand_over
    from service.commands.accounts import has_admin_account
    from service.commands.admin import has_admin_token, mint_token
    from service.drain import Drain, DrainingServer
    from service.logs import configure_logging
    from service.main import create_app
    from service.serving import CannotListen, base_url, bind, server_config

    settings = Settings()
    configure_logging(settings, level="debug" if args.verbose else None)
    host = args.host or settings.host
    port = args.port or settings.port
    try:
        sock = bind(host, port)  # before anything is written or started
    except CannotListen as exc:
        print(f"aidmesh: {exc}", file=sys.stderr)
        return 1
    with sock:
        port = sock.getsockname()[1]
        executor = _executor(settings)
        has_admin, _ = executor.run_sync(SYSTEM, has_admin_token)
        if not has_admin:
            (_token, secret), _ = executor.run_sync(
                SYSTEM, mint_token, Role.ADMIN, None, "first start"
            )
            hand_over(secret, settings.data_dir)
        has_account, _ = executor.run_sync(SYSTEM, has_admin_account)
        executor.db.dispose()
        url = base_url(host, port)
        print(_how_to_sign_in(url, has_account), flush=True)
        drain = Drain()
        config = server_config(
            create_app(settings, tune_gc=True, drain=drain),
            settings,
            host=host,
            port=port,
            # On SIGTERM: how long requests in flight and open connections get (typed
            # as int, but uvicorn waits with asyncio.timeout, which takes any float).
            timeout_graceful_shutdown=max(settings.shutdown_grace_s, 0.1),
        )
        server = DrainingServer(
            config,
            f"aidmesh ready on {url} (API docs at {url}/docs)",
            drain,
            delay_s=settings.shutdown_delay_s,
        )
        # uvicorn raises Ctrl-C again once it has shut down, for the caller to see.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    return 0 if server.started else 3


def _how_to_sign_in(url: str, has_account: bool) -> str:
    if has_account:
        return f"Sign in at {url}/board with your email and password."
    return (
        "No account can sign in yet: create the first admin with\n"
        "  aidmesh admin bootstrap --email you@example.org\n"
        f"and open the one-time link it prints (then sign in at {url}/board)."
    )


def _migrate(_: argparse.Namespace) -> int:
    engine = build_engine(Settings())
    migrate(engine)
    print("schema is up to date")
    return 0


def _db_copy(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from service.persistence.copy import CopyRefused, copy_database

    source = args.source or Settings().database_url
    try:
        copy_database(
            source,
            args.target,
            batch_rows=args.batch_rows,
            verify=not args.no_verify,
            say=lambda line: print(line, flush=True),
        )
    except CopyRefused as exc:
        print(f"aidmesh: {exc.detail}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"aidmesh: the copy failed; the target holds no copied row: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aidmesh: interrupted; the target holds no copied row", file=sys.stderr)
        return 130
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from service.commands.admin import mint_token

    settings = Settings()
    if args.email:
        return _bootstrap_account(settings, args.email, args.name)
    (_token, secret), _ = _executor(settings).run_sync(
        SYSTEM, mint_token, Role.ADMIN, None, args.label
    )
    print(secret)
    return 0


def _bootstrap_account(settings: Settings, email: str, name: str | None) -> int:
    """The first admin account, and its one-time sign-up link, printed once."""
    from service.commands.accounts import bootstrap_admin
    from service.domain.errors import DomainError
    from service.serving import base_url

    try:
        (person, code), _ = _executor(settings).run_sync(
            SYSTEM, bootstrap_admin, email, name or email.split("@")[0]
        )
    except DomainError as exc:
        print(f"aidmesh: {exc.detail}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an email or name that is no such thing
        print(f"aidmesh: {exc}", file=sys.stderr)
        return 1
    url = base_url(settings.host, settings.port)
    print(
        f"Admin account {person.email} created. Open this link once to choose its password"
        f" (good until {person.invite_expires_at:%Y-%m-%d %H:%M} UTC; shown only now):\n\n"
        f"  {url}/board#signup={code}\n"
    )
    return 0


def _network_add(args: argparse.Namespace) -> int:
    from service.commands.admin import create_network
    from service.models import NetworkCreate

    body = NetworkCreate(slug=args.slug, name=args.name, description=args.description)
    network, _ = _executor(Settings()).run_sync(SYSTEM, create_network, body)
    print(f"network {network.id} {network.slug}")
    return 0


def _city_add(args: argparse.Namespace) -> int:
    from service.commands.admin import create_city
    from service.models import CityCreate

    body = CityCreate(
        slug=args.slug,
        name=args.name,
        country=args.country,
        lat=args.lat,
        lon=args.lon,
        time_zone=args.time_zone,
        networks=args.network,
    )
    city, _ = _executor(Settings()).run_sync(SYSTEM, create_city, body)
    print(f"city {city.id} {city.slug}")
    return 0


def _token_issue(args: argparse.Namespace) -> int:
    from service.commands.admin import mint_token

    executor = _executor(Settings())
    city_id = None
    if args.city:
        with executor.db.read() as session:
            city = session.exec(select(City).where(col(City.slug) == args.city)).one_or_none()
        if city is None:
            print(f"unknown city '{args.city}'", file=sys.stderr)
            return 1
        city_id = city.id
    command = functools.partial(
        mint_token,
        scopes=[s.strip() for s in args.scopes.split(",") if s.strip()],
        expires_in_days=args.expires,
    )
    (token, secret), _ = executor.run_sync(SYSTEM, command, Role(args.role), city_id, args.label)
    print(secret)
    expires = f"{token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never"
    print(f"token {token.id} ({token.role}) expires {expires}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo import run_demo

    return run_demo(args.host, args.port, args.minutes, verbose=args.verbose)


def _playbooks_check(args: argparse.Namespace) -> int:
    from playbooks import check_paths, load_catalogue, stock_dir

    paths = args.paths or [stock_dir()]
    found, problems = check_paths(paths, load_catalogue())
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(found)} playbook(s) valid, {len(problems)} problem(s)")
    return 1 if problems else 0


def _playbooks_list(_: argparse.Namespace) -> int:
    from playbooks import load_stock_playbooks

    for name, playbook in sorted(load_stock_playbooks().items()):
        print(f"{name:20} {len(playbook.requests):2} requests  {playbook.title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
