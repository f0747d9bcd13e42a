"""Runtime settings, read from the environment (and `.env`) when the app is created.

Nothing reads them at import time.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of a running aidmesh replica.

    `DATABASE_URL` and `REDIS_URL` are read without the `AIDMESH_` prefix because
    every hosting platform sets them under those names.
    """

    model_config = SettingsConfigDict(env_prefix="AIDMESH_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/aidmesh.db",
        validation_alias=AliasChoices("DATABASE_URL", "AIDMESH_DATABASE_URL"),
    )
    # The pub/sub channel replicas of one deployment share. Pub/sub ignores Redis
    # database numbers, so by default the channel names the database of REDIS_URL.
    bus_channel: str | None = None
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "AIDMESH_REDIS_URL")
    )
    data_dir: Path = Path("./var")
    # With no REDIS_URL: start the embedded redis-server (True) or use an in-process bus.
    embedded_redis: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # "text" for people, "json" for log collectors: one object per line either way.
    log_format: Literal["text", "json"] = "text"

    # Targeting and escalation defaults (a playbook overrides them).
    default_ring0_radius_km: float = 50.0
    default_ring_intervals: tuple[timedelta, ...] = (timedelta(minutes=30), timedelta(hours=2))
    default_claim_acceptance_timeout: timedelta = timedelta(minutes=30)

    # Database pool: sized for the threadpool that runs commands.
    db_pool_size: int = 20
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 10_000
    # On PostgreSQL, claims and token lookups run on an async connection pool of
    # their own, outside the ORM (see service/adapters/pg_claims.py); off, every
    # claim takes the general command.
    db_fast_claims: bool = True
    # Well-formed REST claims answered ahead of FastAPI's router, by the same parts and
    # alike (see service/api/claim_lane.py); off, every claim goes through the route.
    rest_claim_lane: bool = True

    # REST rate limit per bearer token, per replica (0 turns it off): requests per
    # second, and how many may come at once.
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 500
    # Interoperability (CAP, EDXL-RM): the CAP `sender` of every alert (no spaces,
    # commas, '<' or '&'), and the largest XML document an import reads.
    cap_sender: str = Field(default="aidmesh", pattern=r"^[^\s,<&]{1,200}$")
    interop_max_xml_bytes: int = Field(default=1_000_000, ge=1_000, le=50_000_000)

    # Websocket gateway.
    allowed_origins: list[str] = Field(default_factory=list)
    ws_max_message_bytes: int = 64 * 1024
    ws_max_subscriptions: int = 100
    ws_queue_size: int = 1024
    ws_heartbeat_s: float = 20.0
    # Frames per second a client may send, and how many at once (close 1008 beyond).
    ws_messages_per_s: float = 50.0
    ws_message_burst: int = 200
    # Incidents one subscribe's `since` may name.
    ws_max_since_keys: int = 1000
    ws_ticket_ttl_s: float = 60.0
    replay_window: int = 10_000
    gap_poll_interval_s: float = 0.5

    # Shutdown (SIGTERM, a rolling restart; see service/drain.py): how long to keep
    # serving while /readyz says not ready, then how long requests in flight and
    # open connections get before they are cancelled.
    shutdown_delay_s: float = 0.0
    shutdown_grace_s: float = 10.0

    # Accounts and sign-in (see service/commands/accounts.py). A session ends after this
    # long without a request, and this long after sign-in whatever happens.
    session_idle_timeout_s: float = Field(default=2 * 3600.0, gt=0)
    session_absolute_timeout_s: float = Field(default=12 * 3600.0, gt=0)
    # How long an invitation's sign-up code stays good.
    invite_ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # OpenID Connect: how long a trip to the provider and back may take, and how long the
    # provider has to answer each call.
    oidc_sign_in_ttl_s: float = Field(default=600.0, gt=0)
    oidc_timeout_s: float = Field(default=10.0, gt=0)
    # Failed sign-ins per account name and per address: this many pass unhindered, each
    # later one waits twice as long as the last (from 1 s), and this many lock the
    # account name or the address for `sign_in_lock_s`.
    sign_in_free_failures: int = Field(default=3, ge=0)
    sign_in_lock_after: int = Field(default=10, ge=1)
    sign_in_lock_s: float = Field(default=900.0, gt=0)
    # The admins must sign in with a TOTP code (one without may only enrol).
    admins_need_totp: bool = False
    # API tokens: days a new token lives unless asked otherwise, and at most.
    token_default_days: int = Field(default=90, ge=1)
    token_max_days: int = Field(default=365, ge=1)

    # The map's raster tiles, e.g. the deployment's own OpenStreetMap tile server:
    # `https://tiles.example.org/{z}/{x}/{y}.png` (Web Mercator, 256 px). Unset, the map
    # draws only the geography aidmesh ships. The pages may load images from its origin.
    map_tile_url: str | None = None
    # Shown in the map's corner whenever tiles are (OpenStreetMap's licence asks for it).
    map_tile_attribution: str = Field(default="", max_length=200)
    map_tile_max_zoom: int = Field(default=19, ge=0, le=22)

    # Scheduler sweeps.
    scheduler_enabled: bool = True
    sweep_interval_s: float = 5.0

    # Webhooks to cities' own systems (see service/webhooks/). Off, no replica delivers;
    # endpoints can still be registered.
    webhooks_enabled: bool = True
    # https only, unless this is on (a test bench, or a receiver behind a proxy on the host).
    webhook_allow_http: bool = False
    # Private destinations an on-premises deployment may call: host names or CIDR ranges
    # (`eoc.city.local`, `10.20.0.0/16`). Empty: every address must be globally routable.
    webhook_allowed_private: list[str] = Field(default_factory=list)
    webhook_timeout_s: float = 10.0
    webhook_retry_base_s: float = 5.0
    webhook_retry_cap_s: float = 3600.0
    webhook_retry_window_s: float = 24 * 3600.0
    # How long the old secret keeps signing after a rotation, unless the rotation says.
    webhook_rotation_overlap_s: float = 24 * 3600.0
    # A replica holds an endpoint this long per lease, renewed while it delivers.
    webhook_lease_s: float = 30.0
    # How often a replica looks for work it was not woken for (retries come due, events
    # whose bus message was lost).
    webhook_poll_interval_s: float = 1.0
    # Incidents delivered at once per endpoint (each incident's events stay in order).
    webhook_concurrency: int = 16
    # Endpoints one replica leases at most at once.
    webhook_max_endpoints: int = 200

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, url: str | None) -> str | None:
        if not url:
            return None
        if tile_origin(url) is None or any(k not in url for k in ("{z}", "{x}", "{y}")):
            raise ValueError(
                "an http(s) URL with {z}, {x} and {y}, e.g. https://tiles.example.org/{z}/{x}/{y}.png"
            )
        return url

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, url: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def tile_origin(url: str) -> str | None:
    """The origin (scheme, host, port) a tile URL template loads from; None if it has none."""
    match = re.fullmatch(r"(https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?)/[^\s'\";,]*", url)
    return match.group(1) if match else None
