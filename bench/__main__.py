"""`python -m bench`: run aidmesh's benchmarks, print tables, append JSON lines to bench/results/.

The default run is bounded to finish within about 15 minutes on a 2-core machine;
`--full` runs the whole matrix (N = 1,000, 2,000, 5,000, 10,000 clients at 10, 100
and 500 events/s on 1 and 2 replicas, ramps, the naive app with and without
compression). Every run also measures the floor (bench/floor_server.py): a server
that only writes each event's bytes to every socket, the lowest latency the
clients and the machine allow. Needs PostgreSQL for the PostgreSQL rows (`--pg-url`, else
AIDMESH_BENCH_PG, DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres);
it creates a scratch database per benchmark and drops it. Redis is a private
redis-server on a free port. Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import (
    claims,
    declare,
    dryrun,
    fanout,
    fanout_webhooks,
    matching,
    memory,
    observatory,
    offers,
    webhooks,
)
from bench import report as after_action
from bench.bustimer import BusTimer
from bench.harness import (
    PROCS,
    Profiler,
    Recorder,
    log,
    postgres_base_url,
    raise_fd_limit,
    redis_server,
    table,
)
from bench.seed import seed_world
from bench.stats import ratio
from tests.procs import scratch_postgres, scratch_sqlite

SECTIONS = (
    "fanout",
    "fanout-webhooks",
    "naive",
    "memory",
    "claims",
    "declare",
    "dryrun",
    "observatory",
    "matching",
    "offers",
    "report",
    "webhooks",
)


# (backend, via, path): REST and websocket claims on each backend; on PostgreSQL also
# the general ORM command (the fast path turned off), the obvious way to write a claim,
# REST claims through FastAPI's route with the claim lane off ("route": the fast path
# behind the usual router), and claims from roster packages (the fast path, each
# claimer's city's package).
CLAIM_VARIANTS = [
    ("sqlite", "rest", "orm"),
    ("sqlite", "ws", "orm"),
    ("postgresql", "rest", "orm"),
    ("postgresql", "rest", "fast"),
    ("postgresql", "rest", "route"),
    ("postgresql", "ws", "fast"),
    ("postgresql", "rest", "package"),
]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--full", action="store_true", help="the whole matrix (about an hour)")
    p.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}"
    )
    p.add_argument(
        "--clients",
        type=_ints,
        help="N for the latency matrix (default 2000; full 1000,2000,5000,10000)",
    )
    p.add_argument(
        "--rates", type=_floats, help="events/s of the matrix (default 10,100; full 10,100,500)"
    )
    p.add_argument("--replicas", type=_ints, help="replica counts (default 1,2)")
    p.add_argument(
        "--big-clients",
        type=int,
        default=10_000,
        help="clients over 2 replicas at 1 event/s (0: skip)",
    )
    p.add_argument(
        "--ramp-clients", type=_ints, help="N for the ramp (default 5000; full 2000,5000,10000)"
    )
    p.add_argument("--naive-clients", type=_ints, help="N for the naive app (default 2000)")
    p.add_argument("--client-procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument(
        "--client-impl",
        choices=["lean", "asyncio"],
        default="lean",
        help="lean: the websockets sans-I/O protocol on asyncio transports (default); "
        "asyncio: websockets.asyncio.client",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="seconds per phase (default: 20 s at <=2 ev/s, 10 s to 100, 5 s above)",
    )
    p.add_argument(
        "--drain-max", type=float, default=30.0, help="seconds to wait for deliveries after a phase"
    )
    p.add_argument("--memory-counts", type=_ints, default=[1000, 10_000])
    p.add_argument("--claimers", type=int, default=500)
    p.add_argument(
        "--claim-requests",
        type=int,
        default=4000,
        help="requests of 4 units to claim (default 4000)",
    )
    p.add_argument(
        "--claim-seconds", type=float, default=40.0, help="upper bound of each claims run"
    )
    p.add_argument(
        "--claim-variants",
        type=lambda text: [tuple(v.split("/")) for v in text.split(",") if v],
        default=CLAIM_VARIANTS,
        help="comma list of backend/via/path (default: "
        + ",".join("/".join(v) for v in CLAIM_VARIANTS)
        + ")",
    )
    p.add_argument(
        "--claim-replicas", type=int, default=1, help="replicas serving the claimers (default 1)"
    )
    p.add_argument("--declarations", type=int, default=100)
    p.add_argument("--pg-url", help="PostgreSQL server to create scratch databases on")
    p.add_argument(
        "--time-limit",
        type=float,
        help="minutes before the run stops itself (default 25; full 150)",
    )
    p.add_argument(
        "--no-record", action="store_true", help="print only; append nothing to bench/results/"
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy every server during each phase; write profiles to this directory",
    )
    p.add_argument("--keep-work", action="store_true", help="keep the work directory (server logs)")
    args = p.parse_args(argv)
    full = args.full
    args.clients = args.clients or ([1000, 2000, 5000, 10_000] if full else [2000])
    args.rates = args.rates or ([10.0, 100.0, 500.0] if full else [10.0, 100.0])
    args.replicas = args.replicas or [1, 2]
    args.ramp_clients = args.ramp_clients or ([2000, 5000, 10_000] if full else [5000])
    args.naive_clients = args.naive_clients or ([1000, 2000, 5000, 10_000] if full else [2000])
    args.time_limit = args.time_limit or (150.0 if full else 25.0)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.only - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def collapsed(row: dict[str, Any]) -> bool:
    """A phase so far over capacity that higher rates only measure the backlog."""
    p99 = row["latency"]["p99_ms"]
    produced = row["producer"]["achieved_rate"] or 0
    return (
        p99 is None
        or p99 > 10_000
        or (row["delivered_ratio"] or 0) < 0.5
        or produced < 0.5 * row["rate"]
    )


def run_matrix(
    target: fanout.AidmeshTarget | fanout.NaiveTarget,
    sizes: list[int],
    rates: list[float],
    ramps: list[int],
    rows: list[dict[str, Any]],
    ramp_results: list[dict[str, Any]],
    **ramp_tags: Any,
) -> None:
    """Run the phases and ramps of one target, appending each result as it comes (a
    stop keeps what was measured); `ramp_tags` are added to each ramp's result."""
    for n in sorted({n for n in (*sizes, *ramps) if n > 0}):
        target.grow(n)
        if target.clients < n * 0.99:
            log(f"only {target.clients} of {n} clients connected; skipping larger sizes")
            break
        wanted = sorted(rates) if n in sizes else []
        # Low rates first; the ramp before the rates that saturate the server.
        low = [r for r in wanted if r * n <= 40_000]
        high = [r for r in wanted if r * n > 40_000]
        for rate in low:
            rows.append(target.phase(rate))
        if n in ramps:
            result = fanout.ramp(target) | ramp_tags
            ramp_results.append(result)
            log(
                f"ramp n={n}: sustained {result['sustained_events_per_s']} ev/s = "
                f"{result['sustained_deliveries_per_s']} deliveries/s"
            )
        for rate in high:
            row = target.phase(rate)
            rows.append(row)
            if collapsed(row):
                log(
                    f"{row['system']} collapsed at {rate:g} ev/s with {n} clients; "
                    "skipping higher rates"
                )
                break


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    PROCS.install()
    raise_fd_limit()

    def out_of_time(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"time limit of {args.time_limit:g} minutes reached")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.time_limit * 60))
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    recorder = Recorder(
        run_id, ["python", "-m", "bench", *(argv or sys.argv[1:])], not args.no_record
    )
    work = Path(tempfile.mkdtemp(prefix="aidmesh-bench-"))
    log(f"run {run_id}; machine {recorder.machine}; work dir {work}")
    summary: dict[str, Any] = {}
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            redis = redis_server(work / "redis")
            redis.start()
            stack.callback(redis.stop)
            pg = postgres_base_url(args.pg_url)
            if pg is None:
                log("no PostgreSQL answers: fan-out runs on SQLite, PostgreSQL rows are skipped")

            def database(label: str, backend: str) -> str:
                if backend == "postgresql":
                    assert pg is not None
                    return stack.enter_context(scratch_postgres(pg, f"aidmesh_bench_{label}"))
                return scratch_sqlite(work, f"{label}.db")

            if args.only & {"fanout", "fanout-webhooks", "naive", "memory"}:
                # The fan-out phases' world and bus timer end with them: the timer decodes
                # every event on the bus, and would take CPU from the phases after.
                with ExitStack() as phase:
                    url = database("fanout", "postgresql" if pg else "sqlite")
                    world = seed_world(url, cities=21)
                    phase.callback(world.dispose)
                    ctx = fanout.Context(
                        work=work,
                        database_url=url,
                        redis_url=redis.url,
                        redis_pid=redis.proc.pid if redis.proc else None,
                        client_procs=args.client_procs,
                        client_impl=args.client_impl,
                        duration=args.duration,
                        drain_max_s=args.drain_max,
                    )
                    ctx.prepare(world)
                    ctx.profiler = Profiler(args.profile) if args.profile else None
                    if ctx.profiler is not None and not ctx.profiler.enabled:
                        log("--profile needs py-spy (pip install py-spy); profiling is off")
                    ctx.bus = phase.enter_context(
                        BusTimer(redis.url, ["aidmesh:*", fanout.NAIVE_CHANNEL])
                    )
                    summary["fanout_backend"] = "postgresql" if pg else "sqlite"
                    if "fanout" in args.only:
                        summary["fanout"] = section_fanout(args, ctx, recorder)
                    if "fanout-webhooks" in args.only:
                        # After the matrix (whose replicas would deliver to the endpoints
                        # too); the endpoints are paused again before the naive phases.
                        result = fanout_webhooks.run(ctx)
                        recorder.append(
                            "fanout_webhooks",
                            {"clients": 2000, "rate": 10.0, "endpoints": fanout_webhooks.ENDPOINTS},
                            result,
                        )
                        fanout_webhooks.print_comparison(result)
                        summary["fanout_webhooks"] = result["comparison"]
                    if "naive" in args.only:
                        summary["naive"] = section_naive(args, ctx, recorder)
                    if "memory" in args.only:
                        figures = memory.run(ctx, args.memory_counts)
                        recorder.append("memory", {"counts": args.memory_counts}, figures)
                        print_memory(figures)
                        summary["memory"] = figures
            if "claims" in args.only:
                summary["claims"] = section_claims(args, recorder, database, redis.url, work, pg)
            if "declare" in args.only:
                summary["declare"] = section_declare(args, recorder, database, redis.url, work, pg)
            if "dryrun" in args.only:
                summary["dryrun"] = section_dryrun(args, recorder, database, redis.url, work, pg)
            if "observatory" in args.only:
                summary["observatory"] = section_observatory(
                    args, recorder, database, redis.url, work, pg
                )
            if "matching" in args.only:
                summary["matching"] = section_matching(
                    args, recorder, database, redis.url, work, pg
                )
            if "offers" in args.only:
                summary["offers"] = section_offers(args, recorder, database, redis.url, work, pg)
            if "report" in args.only:
                summary["report"] = section_report(args, recorder, database, redis.url, work, pg)
            if "webhooks" in args.only:
                rows = {
                    backend: webhooks.run(database("webhooks-" + backend, backend))
                    for backend in (["sqlite", "postgresql"] if pg else ["sqlite"])
                }
                recorder.append("webhooks", {}, rows)
                summary["webhooks"] = rows
    except KeyboardInterrupt as exc:
        log(f"stopped: {exc}")
        summary["interrupted"] = str(exc) or "interrupted"
    finally:
        signal.alarm(0)
        PROCS.stop_all()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    summary["minutes"] = round((time.monotonic() - started) / 60, 1)
    verdict = report(summary)
    recorder.append("summary", {"full": args.full, "only": sorted(args.only)}, verdict)
    return 1 if "interrupted" in summary else 0


@contextlib.contextmanager
def _kept_if_stopped(
    rows: list[dict[str, Any]], ramps: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Let a section stopped by the time limit or ^C record and print the rows it
    measured (marked `stopped`); the section then raises the stop again (`_go_on`)."""
    finished: dict[str, Any] = {}
    try:
        yield finished
    except KeyboardInterrupt as exc:
        finished["stopped"] = str(exc) or "interrupted"
        log(f"stopped after {len(rows)} rows and {len(ramps)} ramps: recording those")


def _go_on(finished: dict[str, Any]) -> None:
    if "stopped" in finished:
        raise KeyboardInterrupt(finished["stopped"])


def section_fanout(
    args: argparse.Namespace, ctx: fanout.Context, recorder: Recorder
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ramps: list[dict[str, Any]] = []
    with _kept_if_stopped(rows, ramps) as finished:
        for replicas in args.replicas:
            with fanout.AidmeshTarget(ctx, replicas, f"fanout{replicas}") as target:
                run_matrix(
                    target,
                    args.clients,
                    args.rates,
                    args.ramp_clients,
                    rows,
                    ramps,
                    replicas=replicas,
                )
                if replicas == 2 and args.big_clients:
                    target.grow(args.big_clients)
                    rows.append(target.phase(1.0, label="big"))
    params = {
        "clients": args.clients,
        "rates": args.rates,
        "replicas": args.replicas,
        "big_clients": args.big_clients,
        "client_procs": args.client_procs,
        "scope": "city inbox (all claims of 8 incidents)",
        "backend": "postgresql" if "postgresql" in ctx.database_url else "sqlite",
    }
    recorder.append("fanout", params, {"rows": rows, "ramps": ramps, **finished})
    fanout.print_rows(
        "Fan-out latency: aidmesh (produce = claim sent to REST; receive = client recv)", rows
    )
    print_ramps("Ramp: aidmesh", ramps)
    _go_on(finished)
    return {"rows": rows, "ramps": ramps}


def section_naive(
    args: argparse.Namespace, ctx: fanout.Context, recorder: Recorder
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ramps: list[dict[str, Any]] = []
    # The naive app over the whole matrix; its deflate-off variant (full runs) and the
    # floor at 2,000 clients, 10 events/s, each with a ramp.
    near_2000 = [min(args.naive_clients, key=lambda n: abs(n - 2000))]
    with _kept_if_stopped(rows, ramps) as finished:
        for system in ["naive", "naive-nodeflate", "floor"] if args.full else ["naive", "floor"]:
            with fanout.NaiveTarget(ctx, system=system) as target:
                if system == "naive":
                    sizes = args.naive_clients
                    rates = [r for r in args.rates if r <= 100] if args.full else [10.0]
                else:
                    sizes, rates = near_2000, [10.0]
                ramp_at = [n for n in args.ramp_clients if n in sizes][:1] or sizes[:1]
                run_matrix(target, sizes, rates, ramp_at, rows, ramps, system=system)
    recorder.append(
        "naive",
        {"clients": args.naive_clients, "rates": args.rates},
        {"rows": rows, "ramps": ramps, **finished},
    )
    fanout.print_rows(
        "Fan-out latency: naive FastAPI broadcast and the floor (produce = PUBLISH)", rows
    )
    print_ramps("Ramp: naive and the floor", ramps)
    _go_on(finished)
    return {"rows": rows, "ramps": ramps}


def section_claims(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = []
    for backend, via, path in args.claim_variants:
        if backend == "postgresql" and pg is None:
            continue
        url = database(f"claims_{backend}_{via}_{path}", backend)
        world = seed_world(url, cities=11)
        try:
            figures = claims.run(
                world,
                backend=backend,
                database_url=url,
                redis_url=redis_url,
                work=work,
                claimers=args.claimers,
                requests=args.claim_requests,
                max_s=args.claim_seconds,
                via=via,
                fast=path != "orm",
                from_packages=path == "package",
                lane=path != "route",
                replicas=args.claim_replicas,
                profiler=Profiler(args.profile) if args.profile else None,
            )
        finally:
            world.dispose()
        figures["path"] = path
        recorder.append(
            "claims",
            {"backend": backend, "via": via, "path": path, "claimers": args.claimers},
            figures,
        )
        results.append(figures)
    table(
        f"Claims: {args.claimers} concurrent claimers, requests of 4 units, 1-2 units per claim",
        [
            "backend",
            "via",
            "claim path",
            "claims/s",
            "attempts/s",
            "ok",
            "409",
            "5xx/err",
            "p50 ms",
            "p99 ms",
            "over-claims",
            "srv ms/attempt",
            "pg ms/claim",
            "all ms/claim",
        ],
        [
            [
                f["backend"],
                f["via"],
                f["path"],
                f["claims_per_s"],
                f["attempts_per_s"],
                f["claims_ok"],
                f["statuses"].get("409", 0),
                sum(v for k, v in f["statuses"].items() if k not in ("201", "409")),
                f["ok_latency"]["p50_ms"],
                f["ok_latency"]["p99_ms"],
                f["over_claims"],
                f["server_cpu_ms_per_attempt"],
                f["postgres_cpu_ms_per_claim"],
                f["machine_cpu_ms_per_claim"],
            ]
            for f in results
        ],
    )
    return results


def section_declare(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = []
    for backend in ("postgresql", "sqlite"):
        if backend == "postgresql" and pg is None:
            continue
        url = database(f"declare_{backend}", backend)
        world = seed_world(url, cities=100)
        try:
            figures = declare.run(
                world,
                backend=backend,
                database_url=url,
                redis_url=redis_url,
                work=work,
                count=args.declarations,
            )
        finally:
            world.dispose()
        recorder.append("declare", {"backend": backend, "cities": 100}, figures)
        results.append(figures)
    table(
        "Declare: earthquake playbook (10 requests), 100 networked cities, sequential",
        ["backend", "p50 ms", "p99 ms", "max ms", "requests each", "srv cpu ms"],
        [
            [
                f["backend"],
                f["latency"]["p50_ms"],
                f["latency"]["p99_ms"],
                f["latency"]["max_ms"],
                f["requests_per_declaration"],
                f["server_cpu_ms_per_declaration"],
            ]
            for f in results
        ],
    )
    return results


def per_backend(  # type: ignore[no-untyped-def]
    name, run_one, *, cities, recorder, database, redis_url, work, pg, **params
) -> list[dict[str, Any]]:
    """`run_one(world, ...)` on a fresh world of `cities` cities on PostgreSQL (when there
    is one), then SQLite; each result recorded under `name`."""
    results = []
    for backend in ("postgresql", "sqlite"):
        if backend == "postgresql" and pg is None:
            continue
        url = database(f"{name}_{backend}", backend)
        world = seed_world(url, cities=cities)
        try:
            figures = run_one(
                world, backend=backend, database_url=url, redis_url=redis_url, work=work
            )
        finally:
            world.dispose()
        recorder.append(name, {"backend": backend, "cities": cities, **params}, figures)
        results.append(figures)
    return results


def section_report(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = per_backend(
        "report",
        after_action.run,
        cities=30,
        recorder=recorder,
        database=database,
        redis_url=redis_url,
        work=work,
        pg=pg,
        requests=500,
        claims=5000,
    )
    table(
        "After-action report: 500 requests, 5,000 claims, charts included, sequential",
        ["backend", "p50 ms", "p99 ms", "max ms", "events", "bytes", "srv cpu ms", "met"],
        [
            [
                f["backend"],
                f["latency"]["p50_ms"],
                f["latency"]["p99_ms"],
                f["latency"]["max_ms"],
                f["report"].get("timeline_events"),
                f["report"].get("bytes"),
                f["server_cpu_ms_per_report"],
                "yes" if f["met"] else "NO",
            ]
            for f in results
        ],
    )
    return results


def section_dryrun(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = per_backend(
        "dryrun",
        dryrun.run,
        cities=100,
        recorder=recorder,
        database=database,
        redis_url=redis_url,
        work=work,
        pg=pg,
    )
    table(
        "Dry run: earthquake playbook (10 requests), 100 networked cities, sequential",
        ["backend", "p50 ms", "p99 ms", "max ms", "requests", "cities", "srv cpu ms"],
        [
            [
                f["backend"],
                f["latency"]["p50_ms"],
                f["latency"]["p99_ms"],
                f["latency"]["max_ms"],
                f["requests_per_dry_run"],
                f["cities_reached_per_dry_run"],
                f["server_cpu_ms_per_dry_run"],
            ]
            for f in results
        ],
    )
    return results


def section_observatory(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = per_backend(
        "observatory",
        observatory.run,
        cities=21,
        recorder=recorder,
        database=database,
        redis_url=redis_url,
        work=work,
        pg=pg,
        incidents=observatory.INCIDENTS,
    )
    table(
        "Observatory: public feeds over 1,000 closed incidents, sequential",
        ["backend", "feed", "p50 ms", "p99 ms", "max ms", "bytes", "published"],
        [
            [
                f["backend"],
                feed,
                f["latency"][feed]["p50_ms"],
                f["latency"][feed]["p99_ms"],
                f["latency"][feed]["max_ms"],
                f["bytes"].get(feed),
                f["incidents_published"],
            ]
            for f in results
            for feed in f["latency"]
        ],
    )
    return results


def section_matching(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = per_backend(
        "matching",
        matching.run,
        cities=500,
        recorder=recorder,
        database=database,
        redis_url=redis_url,
        work=work,
        pg=pg,
    )
    table(
        "Matching: who could help with 100 open requests, 500 cities' rosters, sequential",
        ["backend", "p50 ms", "p99 ms", "max ms", "lenders", "srv cpu ms"],
        [
            [
                f["backend"],
                f["latency"]["p50_ms"],
                f["latency"]["p99_ms"],
                f["latency"]["max_ms"],
                f["lenders_per_answer"],
                f["server_cpu_ms_per_call"],
            ]
            for f in results
        ],
    )
    return results


def section_offers(args, recorder, database, redis_url, work, pg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    results = per_backend(
        "offers",
        offers.run,
        cities=30,
        recorder=recorder,
        database=database,
        redis_url=redis_url,
        work=work,
        pg=pg,
    )
    table(
        "Offers: offer to acceptance to the board (REST offer, REST accept, board websocket)",
        ["backend", "offers", "p50 ms", "p99 ms", "max ms", "srv cpu ms"],
        [
            [
                f["backend"],
                f["offers"],
                f["latency"]["p50_ms"],
                f["latency"]["p99_ms"],
                f["latency"]["max_ms"],
                f["server_cpu_ms_per_offer"],
            ]
            for f in results
        ],
    )
    return results


def print_ramps(title: str, ramps: list[dict[str, Any]]) -> None:
    table(
        title + " (highest step with p99 <= 1 s and nothing lost)",
        ["system", "repl", "clients", "events/s", "deliveries/s", "p99 ms", "next step"],
        [
            [
                r.get("system", "aidmesh"),
                r.get("replicas", 1),
                r["clients"],
                r["sustained_events_per_s"],
                r["sustained_deliveries_per_s"],
                r["p99_ms_at_sustained"],
                (
                    f"{r['first_failing_step']['rate']:g} ev/s: "
                    f"p99 {r['first_failing_step']['p99_ms']} ms,"
                    f" lost {r['first_failing_step']['lost']}: {r['first_failing_step']['reason']}"
                    if r["first_failing_step"]
                    else "-"
                ),
            ]
            for r in ramps
        ],
    )


def print_memory(figures: dict[str, Any]) -> None:
    rows = []
    for system, data in figures.items():
        for point in data["points"]:
            rows.append(
                [
                    system,
                    point["connections"],
                    data["base_rss_mb"],
                    point["rss_mb"],
                    point["kb_per_connection"],
                ]
            )
    table(
        "Memory: RSS per idle connection, one server process",
        ["system", "connections", "base MB", "RSS MB", "KB/conn"],
        rows,
    )


def _row(
    rows: list[dict[str, Any]], system: str, replicas: int, clients: int, rate: float
) -> dict[str, Any] | None:
    for r in rows:
        if (
            r["system"] == system
            and r["replicas"] == replicas
            and r["clients"] == clients
            and r["rate"] == rate
        ):
            return r
    return None


def report(summary: dict[str, Any]) -> dict[str, Any]:
    """The targets of the issue and the ratios to the naive app, from what ran."""
    rows = summary.get("fanout", {}).get("rows", [])
    naive_rows = summary.get("naive", {}).get("rows", [])
    ramps = summary.get("fanout", {}).get("ramps", [])
    naive_ramps = summary.get("naive", {}).get("ramps", [])
    verdict: dict[str, Any] = {
        "targets": {},
        "ratios_to_naive": {},
        "minutes": summary.get("minutes"),
    }
    others = [r["cpu_pct"].get("other", 0.0) for r in (*rows, *naive_rows) if r.get("cpu_pct")]
    if others:
        # CPU used by processes that are not part of the benchmark (percent of one core).
        verdict["other_processes_cpu_pct_mean"] = round(sum(others) / len(others), 1)
        if verdict["other_processes_cpu_pct_mean"] > 25:
            log(
                f"other processes used {verdict['other_processes_cpu_pct_mean']}% of a core on "
                "average during the fan-out phases: these figures are pessimistic; rerun on a "
                "quiet machine"
            )
    targets = verdict["targets"]

    a = _row(rows, "aidmesh", 1, 2000, 10.0) or _row(rows, "aidmesh", 2, 2000, 10.0)
    n = _row(naive_rows, "naive", 1, 2000, 10.0)
    if a:
        p99 = a["latency"]["p99_ms"]
        entry: dict[str, Any] = {"p99_ms": p99, "lost": a["lost"], "replicas": a["replicas"]}
        met = p99 is not None and p99 < 100 and a["lost"] == 0
        if n:
            entry["naive_p99_ms"] = n["latency"]["p99_ms"]
            entry["naive_over_aidmesh_p99"] = ratio(n["latency"]["p99_ms"], p99)
            met = met and (entry["naive_over_aidmesh_p99"] or 0) >= 10
            if n["latency"]["p99_ms"] is not None:
                entry["p99_for_10x_ms"] = round(n["latency"]["p99_ms"] / 10, 1)
        f = _row(naive_rows, "floor", 1, 2000, 10.0)
        if f:
            # No server on this machine gets below the floor with these clients.
            entry["floor_p99_ms"] = f["latency"]["p99_ms"]
        entry["met"] = met
        targets["2000 clients @10 ev/s: p99 < 100 ms, 0 lost, >=10x naive"] = entry
    big = next((r for r in rows if r.get("label") == "big"), None)
    if big:
        p99 = big["latency"]["p99_ms"]
        targets[f"{big['clients']} clients / 2 replicas @1 ev/s: p99 < 250 ms, 0 lost"] = {
            "p99_ms": p99,
            "lost": big["lost"],
            "met": p99 is not None and p99 < 250 and big["lost"] == 0,
        }
    if ramps:
        best = max(r["sustained_deliveries_per_s"] for r in ramps)
        targets[">= 60,000 deliveries/s before p99 passes 1 s"] = {
            "deliveries_per_s": best,
            "met": best >= 60_000,
        }
    mem = summary.get("memory")
    if mem:
        points = mem["aidmesh"]["points"]
        worst = max(p["kb_per_connection"] for p in points)
        targets["<= 20 KB RSS per idle connection"] = {
            "kb": {p["connections"]: p["kb_per_connection"] for p in points},
            "met": worst <= 20,
        }
        naive_points = {p["connections"]: p["kb_per_connection"] for p in mem["naive"]["points"]}
        verdict["ratios_to_naive"]["kb_per_connection"] = {
            c: ratio(p["kb_per_connection"], naive_points.get(p["connections"]))
            for p in points
            for c in [p["connections"]]
        }
    hooks = summary.get("webhooks")
    if hooks:
        best = max(r["deliveries_per_s"] for r in hooks.values())
        targets[">= 1,000 signed webhook deliveries/s from one replica"] = {
            "deliveries_per_s": {b: r["deliveries_per_s"] for b, r in hooks.items()},
            "met": best >= 1000,
        }
    hooked = summary.get("fanout_webhooks")
    if hooked:
        targets["fan-out p99 with 50 webhook endpoints within 20% of off"] = {
            "p99_off_ms": hooked["off_p99_ms"],
            "p99_on_ms": hooked["on_p99_ms"],
            "p99_on_over_off": hooked["p99_on_over_off"],
            "webhook_deliveries": (
                f"{hooked['webhook_deliveries']}/{hooked['webhook_deliveries_expected']}"
            ),
            "met": (hooked["p99_on_over_off"] or 99) <= 1.2
            and hooked["webhook_deliveries"] >= hooked["webhook_deliveries_expected"],
        }
    dry_runs = summary.get("dryrun")
    if dry_runs:
        targets["dry run, 10 requests over 100 cities: p50 < 50 ms"] = {
            "p50_ms": {f["backend"]: f["latency"]["p50_ms"] for f in dry_runs},
            "met": all(f["met"] for f in dry_runs),
        }
    observed = summary.get("observatory")
    if observed:
        targets["observatory over 1,000 closed incidents: p50 < 500 ms"] = {
            "p50_ms": {
                f"{f['backend']}/{feed}": f["latency"][feed]["p50_ms"]
                for f in observed
                for feed in f["latency"]
            },
            "met": all(f["met"] for f in observed),
        }
    reports = summary.get("report")
    if reports:
        targets["after-action report, 500 requests and 5,000 claims: p50 < 300 ms"] = {
            "p50_ms": {f["backend"]: f["latency"]["p50_ms"] for f in reports},
            "met": all(f["met"] for f in reports),
        }
    pg_runs = [c for c in summary.get("claims", []) if c["backend"] == "postgresql"]
    if pg_runs:
        best = max(pg_runs, key=lambda c: c["claims_per_s"] or 0)
        targets[">= 2,000 claims/s on PostgreSQL, 0 over-claims"] = {
            "claims_per_s": {f"{c['via']}/{c['path']}": c["claims_per_s"] for c in pg_runs},
            "over_claims": sum(c["over_claims"] for c in pg_runs),
            "met": (best["claims_per_s"] or 0) >= 2000
            and all(c["over_claims"] == 0 for c in pg_runs),
        }
        plain = next((c for c in pg_runs if (c["via"], c["path"]) == ("rest", "fast")), None)
        if plain:
            targets[">= 2,000 claims/s over REST on PostgreSQL, 0 over-claims"] = {
                "claims_per_s": plain["claims_per_s"],
                "over_claims": plain["over_claims"],
                "met": (plain["claims_per_s"] or 0) >= 2000 and plain["over_claims"] == 0,
            }
        routed = next((c for c in pg_runs if c["path"] == "route"), None)
        if plain and routed:
            verdict["ratios_to_naive"]["REST claims/s (claim lane / FastAPI route)"] = ratio(
                plain["claims_per_s"], routed["claims_per_s"]
            )
        packaged = next((c for c in pg_runs if c["path"] == "package"), None)
        if plain and packaged:
            kept = ratio(packaged["claims_per_s"], plain["claims_per_s"])
            targets["claims from packages: claims/s within 20% of plain claims (REST)"] = {
                "claims_per_s": {
                    "plain": plain["claims_per_s"],
                    "package": packaged["claims_per_s"],
                },
                "ratio": kept,
                "met": kept is not None and kept >= 0.8 and packaged["over_claims"] == 0,
            }
        orm = next((c for c in pg_runs if c["path"] == "orm"), None)
        if orm:
            verdict["ratios_to_naive"]["claims_per_s (fast path / ORM command)"] = {
                f"{c['via']}/{c['path']}": ratio(c["claims_per_s"], orm["claims_per_s"])
                for c in pg_runs
                if c is not orm
            }
    ratios = verdict["ratios_to_naive"]
    for n_row in naive_rows:
        a_row = _row(rows, "aidmesh", 1, n_row["clients"], n_row["rate"])
        if a_row and n_row["system"] == "naive":
            key = f"{n_row['clients']} clients @{n_row['rate']:g} ev/s (aidmesh 1 replica / naive)"
            a_bus, n_bus = a_row["latency_from_bus"] or {}, n_row["latency_from_bus"] or {}
            ratios[key] = {
                "p50": ratio(a_row["latency"]["p50_ms"], n_row["latency"]["p50_ms"]),
                "p99": ratio(a_row["latency"]["p99_ms"], n_row["latency"]["p99_ms"]),
                "p99_from_bus": ratio(a_bus.get("p99_ms"), n_bus.get("p99_ms")),
                "server_cpu_per_delivery": ratio(
                    a_row["server_cpu_us_per_delivery"], n_row["server_cpu_us_per_delivery"]
                ),
                "delivered_ratio": (a_row["delivered_ratio"], n_row["delivered_ratio"]),
            }
    naive_best = max(
        (r["sustained_deliveries_per_s"] for r in naive_ramps if r.get("system") == "naive"),
        default=None,
    )
    if ramps and naive_best:
        ratios["sustained_deliveries_per_s (aidmesh best / naive)"] = ratio(
            max(r["sustained_deliveries_per_s"] for r in ramps), naive_best
        )
    table(
        "Targets",
        ["target", "figures", "met"],
        [
            [k, {kk: vv for kk, vv in v.items() if kk != "met"}, "yes" if v["met"] else "NO"]
            for k, v in targets.items()
        ],
    )
    if ratios:
        table("aidmesh / naive", ["what", "ratio"], [[k, v] for k, v in ratios.items()])
    with contextlib.suppress(Exception):
        verdict["interrupted"] = summary.get("interrupted")
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
