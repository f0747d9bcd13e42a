"""`create_app(settings)`: the one place that wires aidmesh together.

The lifespan builds the engine, migrates, starts the bus, the gateway and the
executor, and closes them in reverse. Nothing connects at import time.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from playbooks import load_catalogue, load_stock_playbooks
from realtime.bus import EventBus, InMemoryBus
from realtime.embedded_redis import EmbeddedRedis
from realtime.gateway import Gateway
from realtime.redis_bus import RedisBus
from realtime.redis_clients import database_number
from realtime.ws_endpoint import Limits, WebsocketEndpoint
from service.adapters.pg_claims import PgClaims, PgTokens, open_pool
from service.api import errors, routes_docs
from service.api.body_limits import BodyLimits
from service.api.claim_lane import ClaimLane
from service.api.deps import AppParts
from service.api.rate_limit import RateLimit
from service.api.request_log import RequestLog, log_ws_session
from service.api.routes_accounts import PUBLIC_WRITES
from service.api.routes_accounts import router as accounts_router
from service.api.routes_admin import router as admin_router
from service.api.routes_checklists import router as checklists_router
from service.api.routes_health import router as health_router
from service.api.routes_incidents import router as incidents_router
from service.api.routes_interop import router as interop_router
from service.api.routes_library import router as library_router
from service.api.routes_live import router as live_router
from service.api.routes_notes import router as notes_router
from service.api.routes_observatory import router as observatory_router
from service.api.routes_offers import router as offers_router
from service.api.routes_oidc_flow import router as oidc_flow_router
from service.api.routes_passes import router as passes_router
from service.api.routes_playbooks import router as playbooks_router
from service.api.routes_reports import router as reports_router
from service.api.routes_rosters import router as rosters_router
from service.api.routes_sign_in_providers import router as sign_in_providers_router
from service.api.routes_webhooks import router as webhooks_router
from service.claim_paths import ClaimPath, GeneralCommand
from service.drain import Drain
from service.edge import MAX_ID
from service.executor import Executor, utc_now
from service.live import LiveService, refuse_unknown_fields
from service.live_ops import command_ops
from service.oidc_client import AuthlibProviders
from service.persistence.db import Database, build_engine, migrate
from service.scheduler import Sweeper, start_scheduler
from service.sessions import SESSION_COOKIE, Sessions
from service.settings import Settings
from service.tickets import DatabaseTickets
from service.tokens import DatabaseTokens, LastUsed, TokenLookup, Tracked
from service.web.routes import router as web_router
from service.webhooks import WebhookParts
from service.webhooks.sender import Resolver
from service.webhooks.wiring import start_webhooks
from service.wire import decode

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


class Aidmesh(FastAPI):
    """The FastAPI app, with `/ws` served at the ASGI entry point, ahead of the
    middleware stack and the router (see `WebsocketEndpoint.asgi`)."""

    websocket_endpoint: WebsocketEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.websocket_endpoint
        if (
            endpoint is not None
            and scope["type"] == "websocket"
            and scope["path"] == scope.get("root_path", "") + "/ws"
        ):
            await endpoint.asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    bus: EventBus | None = None,
    tune_gc: bool = False,
    drain: Drain | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """The app; `tune_gc` is for a server process of its own (`aidmesh serve`), which
    also passes the `drain` its server starts on SIGTERM (see service/drain.py).
    `resolver` answers webhook hosts' addresses (the system's resolver by default)."""
    settings = settings or Settings()
    drain = drain or Drain()

    @asynccontextmanager
    async def lifespan(app: Aidmesh) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(drain.finished)  # the last thing closed
            engine = build_engine(settings)
            stack.callback(engine.dispose)
            migrate(engine)
            db = Database(engine)
            event_bus = await _start_bus(settings, bus, stack)
            catalogue = load_catalogue()
            stock = load_stock_playbooks(catalogue)
            claim_path: ClaimPath = GeneralCommand()
            tokens: TokenLookup = DatabaseTokens(db, clock)
            if settings.db_fast_claims and not db.is_sqlite:
                pool = await open_pool(settings)
                stack.push_async_callback(pool.close)
                claim_path = PgClaims(pool)
                tokens = PgTokens(pool, tokens, clock)
            tokens = Tracked(tokens, LastUsed(db, clock))
            executor = Executor(
                db,
                event_bus,
                settings,
                catalogue,
                lambda: stock,
                clock,
                claim_path=claim_path,
                tokens=tokens,
            )
            stack.push_async_callback(executor.aclose)
            # Closed first: the claims under way finish and their events are queued.
            stack.push_async_callback(claim_path.aclose)
            # In the database, not Redis: the pages connect by ticket during a Redis outage.
            tickets = DatabaseTickets(db, settings.ws_ticket_ttl_s, clock)
            sessions = Sessions(executor)
            live = LiveService(db, executor, tickets, settings.replay_window, sessions)
            gateway = Gateway(live, gap_poll_interval_s=settings.gap_poll_interval_s)
            await gateway.start()
            stack.push_async_callback(gateway.close)
            drain.attach(gateway)
            event_bus.add_listener(gateway.on_bus_message)
            event_bus.on_reconnect(gateway.on_bus_reconnect)
            app.websocket_endpoint = WebsocketEndpoint(
                gateway,
                live,
                _limits(settings),
                decode=decode,
                unknown_fields=refuse_unknown_fields,
                ops=command_ops(executor),
                on_session_end=log_ws_session,
            )
            webhooks: WebhookParts = await start_webhooks(
                settings, db, event_bus, clock, resolver, stack
            )
            providers = AuthlibProviders(settings.oidc_timeout_s)
            stack.push_async_callback(providers.aclose)
            sweeper = Sweeper(executor)
            if settings.scheduler_enabled:
                scheduler = start_scheduler(sweeper, settings.sweep_interval_s)
                stack.callback(scheduler.shutdown, wait=False)
            app.state.parts = AppParts(
                settings=settings,
                db=db,
                bus=event_bus,
                executor=executor,
                tickets=tickets,
                gateway=gateway,
                sweeper=sweeper,
                drain=drain,
                webhooks=webhooks,
                sessions=sessions,
                providers=providers,
            )
            if tune_gc:
                _tune_gc()
            # "ready" is said by the server once it listens (service/serving.py).
            log.debug("app started (database %s)", engine.url.render_as_string(hide_password=True))
            yield

    app = Aidmesh(
        title="aidmesh",
        version="0.1.0",
        summary="Crisis mutual-aid coordination for networks of cities.",
        lifespan=lifespan,
        # Served from the installed package instead of a CDN (see routes_docs).
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    if settings.rest_claim_lane:  # inside the body gate, which authenticates and reads
        app.add_middleware(ClaimLane, prefix=API_PREFIX)
    app.add_middleware(  # inside the rate limit
        BodyLimits, prefix=API_PREFIX, xml_cap=settings.interop_max_xml_bytes, public=PUBLIC_WRITES
    )
    app.add_middleware(RateLimit, rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    # Outermost, so its line and metrics cover what the rate limit refuses too.
    app.add_middleware(RequestLog)
    routes_docs.install(app)
    app.include_router(health_router)
    for router in (
        accounts_router,
        admin_router,
        checklists_router,
        incidents_router,
        interop_router,
        library_router,
        live_router,
        observatory_router,
        offers_router,
        passes_router,
        notes_router,
        playbooks_router,
        rosters_router,
        reports_router,
        sign_in_providers_router,
        webhooks_router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)
    app.include_router(oidc_flow_router)
    app.include_router(web_router)
    return app


async def _start_bus(settings: Settings, given: EventBus | None, stack: AsyncExitStack) -> EventBus:
    """The bus: the one given, Redis at REDIS_URL (one server or a Sentinel deployment,
    see `realtime/redis_clients.py`), an embedded Redis, or in-process."""
    if given is not None:
        bus = given
    elif settings.redis_url:
        bus = RedisBus(settings.redis_url, channel=channel_for(settings, settings.redis_url))
    elif settings.embedded_redis:
        embedded = EmbeddedRedis(settings.data_dir)
        embedded.start()
        stack.callback(embedded.stop)
        bus = RedisBus(embedded.url, channel=channel_for(settings, embedded.url))
    else:
        bus = InMemoryBus()
    await bus.start()
    stack.push_async_callback(bus.close)
    return bus


def channel_for(settings: Settings, redis_url: str) -> str:
    if settings.bus_channel:
        return settings.bus_channel
    return f"aidmesh:{database_number(redis_url)}:events"


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_message_bytes=settings.ws_max_message_bytes,
        max_subscriptions=settings.ws_max_subscriptions,
        queue_size=settings.ws_queue_size,
        heartbeat_s=settings.ws_heartbeat_s,
        messages_per_s=settings.ws_messages_per_s,
        message_burst=settings.ws_message_burst,
        max_since_keys=settings.ws_max_since_keys,
        allowed_origins=tuple(settings.allowed_origins),
        max_id=MAX_ID,
        session_cookie=SESSION_COOKIE,
    )


# Young-generation collections every 50,000 allocations instead of 700, and a full one
# after 10 of the middle generation's instead of 10 x 10 of the youngest's.
_GC_THRESHOLDS = (50_000, 20, 10)


def _tune_gc() -> None:
    """Keep the collector's pauses off the fan-out path.

    Everything alive once the app has started (modules, the app, the catalogue) is
    moved out of the collector's sight (`gc.freeze`), and collections run less often.
    With CPython's defaults, a replica holding 10,000 websockets spent up to 1 s in
    full collections, every couple of seconds, walking objects that never die.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    log.info("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), _GC_THRESHOLDS)


def app_from_env() -> FastAPI:
    """The factory uvicorn calls (`aidmesh serve`)."""
    return create_app(Settings(), tune_gc=True)
