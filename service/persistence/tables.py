"""The tables of aidmesh (SQLModel). Rules live in `service.domain`; these are rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.persistence.columns import UTCDateTime


def _utc(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Network(SQLModel, table=True):
    __tablename__ = "networks"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = _utc()


class City(SQLModel, table=True):
    __tablename__ = "cities"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2)
    lat: float
    lon: float
    contact_email: str | None = Field(default=None, max_length=254)
    # IANA name (e.g. "Africa/Nairobi"): its incidents' local time, beside each viewer's.
    time_zone: str | None = Field(default=None, max_length=64)
    # Its managers must sign in with a TOTP code (one without is only let enrol).
    managers_need_totp: bool = False
    created_at: datetime = _utc()


class NetworkMembership(SQLModel, table=True):
    __tablename__ = "network_memberships"

    network_id: int = Field(foreign_key="networks.id", primary_key=True)
    city_id: int = Field(foreign_key="cities.id", primary_key=True, index=True)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("role in ('admin','manager','responder','observer')", name="ck_token_role"),
        CheckConstraint("(role = 'admin') or (city_id is not null)", name="ck_token_city"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    role: str = Field(max_length=16)
    city_id: int | None = Field(default=None, foreign_key="cities.id")
    label: str = Field(default="", max_length=200)
    # What it may write beyond reading: "" for everything its role may do, else
    # `service.domain.tokens` scope names, comma-separated ("read" alone: read only).
    scopes: str = Field(default="", max_length=64)
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(default=None)
    expires_at: datetime | None = _utc(default=None)  # null: issued before tokens expired
    # Written at most once a minute per token (`service.tokens.LastUsed`).
    last_used_at: datetime | None = _utc(default=None)
    rotated_at: datetime | None = _utc(default=None)


class Person(SQLModel, table=True):
    """An account: someone of one city (an admin of none) with roles, who signs in.

    Only the Argon2id hash of the password is kept, and only the SHA-256 of a pending
    invitation's code."""

    __tablename__ = "people"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=200)
    city_id: int | None = Field(default=None, foreign_key="cities.id", index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    disabled: bool = False
    password_hash: str | None = Field(default=None, max_length=200)
    invite_hash: str | None = Field(default=None, max_length=64, unique=True)
    invite_expires_at: datetime | None = _utc(default=None)
    # The TOTP secret (base32; never answered again after enrolment, never logged), on
    # once a code has confirmed it; the last time step used, so a code works once.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled: bool = False
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class UserSession(SQLModel, table=True):
    """A browser's signed-in session: the cookie holds its id, this row only the id's
    SHA-256, and the SHA-256 of the CSRF token its pages send back on every write."""

    __tablename__ = "user_sessions"

    id: int | None = Field(default=None, primary_key=True)
    id_hash: str = Field(max_length=64, unique=True, index=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    csrf_hash: str = Field(max_length=64)
    # A manager of a city that needs TOTP, signed in without it: may only enrol.
    enrol_only: bool = False
    created_at: datetime = _utc()
    last_seen_at: datetime = _utc()
    ended_at: datetime | None = _utc(default=None)


class SignInProvider(SQLModel, table=True):
    """An OpenID Connect provider people sign in with: a city's own (`city_id`) or a
    network's (`network_id`), exactly one of the two. `rules` map the provider's claims
    or groups to a city and roles (`service.domain.oidc`); the client secret is never
    answered or logged."""

    __tablename__ = "sign_in_providers"
    __table_args__ = (
        CheckConstraint(
            "(city_id IS NULL) <> (network_id IS NULL)", name="ck_sign_in_providers_owner"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    city_id: int | None = Field(default=None, foreign_key="cities.id", unique=True)
    network_id: int | None = Field(default=None, foreign_key="networks.id", unique=True)
    label: str = Field(max_length=100)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=300)
    client_secret: str = Field(max_length=600)
    rules: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class ExternalIdentity(SQLModel, table=True):
    """A person known to a provider: the provider's issuer and its subject for them."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_external_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    person_id: int = Field(foreign_key="people.id", index=True)
    created_at: datetime = _utc()
    last_sign_in_at: datetime = _utc()


class PendingSignIn(SQLModel, table=True):
    """A sign-in sent to a provider and not yet back: the SHA-256 of its `state`, and
    the nonce and PKCE verifier the answer is checked with. Used once, short-lived."""

    __tablename__ = "pending_sign_ins"

    state_hash: str = Field(max_length=64, primary_key=True)
    provider_id: int = Field(foreign_key="sign_in_providers.id", index=True)
    nonce: str = Field(max_length=100)
    code_verifier: str = Field(max_length=128)
    next_path: str = Field(max_length=200)
    created_at: datetime = _utc()


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per account name and per address (`key`), whether or
    not the account exists, so the answers never tell which accounts do."""

    __tablename__ = "sign_in_throttle"

    key: str = Field(max_length=300, primary_key=True)
    failures: int = 0
    last_failure_at: datetime = _utc()
    locked_until: datetime | None = _utc(default=None)


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("status in ('active','closed')", name="ck_incident_status"),
        CheckConstraint("last_seq >= 0", name="ck_incident_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="cities.id", index=True)
    incident_type: str = Field(max_length=64)
    title: str = Field(max_length=200)
    severity: str = Field(max_length=16)
    description: str = Field(default="", max_length=5000)
    lat: float
    lon: float
    playbook: str | None = Field(default=None, max_length=64)
    # The published version the playbook was, word for word, when declared (None: stock,
    # or a city's text not published as it stands): what track records attach to.
    playbook_version_id: int | None = Field(
        default=None, foreign_key="playbook_versions.id", index=True
    )
    exercise: bool = False
    status: str = Field(default="active", max_length=16, index=True)
    # The last event seq handed out; bumped under this row's lock.
    last_seq: int = 0
    ring0_radius_km: float
    ring_intervals_s: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    # The playbook's checklists, copied at declaration, with what is ticked off.
    checklists: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    claim_acceptance_timeout_s: int
    declared_by_token_id: int | None = Field(default=None, foreign_key="api_tokens.id")
    declared_at: datetime = _utc()
    closed_at: datetime | None = _utc(default=None)


class AidRequest(SQLModel, table=True):
    __tablename__ = "aid_requests"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_request_quantity"),
        CheckConstraint(
            "claimed_quantity >= 0 and claimed_quantity <= quantity", name="ck_request_claimed"
        ),
        CheckConstraint(
            "delivered_quantity >= 0 and delivered_quantity <= claimed_quantity",
            name="ck_request_delivered",
        ),
        CheckConstraint("ring >= 0 and ring <= 2", name="ck_request_ring"),
        CheckConstraint(
            "(report_lat IS NULL) = (report_lon IS NULL)"
            " AND (report_lat IS NULL OR (report_lat BETWEEN -90 AND 90"
            " AND report_lon BETWEEN -180 AND 180))",
            name="ck_request_report_point",
        ),
        Index("ix_aid_requests_due", "status", "next_escalation_at"),
        Index("ix_aid_requests_needed_by", "status", "needed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    city_id: int = Field(foreign_key="cities.id")
    kind: str = Field(max_length=16)
    resource: str = Field(max_length=64)
    quantity: int
    claimed_quantity: int = 0
    delivered_quantity: int = 0
    priority: str = Field(max_length=16)
    needed_by: datetime | None = _utc(default=None)
    report_to: str = Field(default="", max_length=500)
    # Where the staging point is, when the requesting city gave it: both or neither.
    report_lat: float | None = None
    report_lon: float | None = None
    notes: str = Field(default="", max_length=2000)
    status: str = Field(default="open", max_length=24)
    ring: int = 0
    ring_entered_at: datetime = _utc()
    next_escalation_at: datetime | None = _utc(default=None)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class RequestTarget(SQLModel, table=True):
    """A city a request can reach, with the innermost ring that reaches it."""

    __tablename__ = "request_targets"
    __table_args__ = (Index("ix_request_targets_city", "city_id", "ring"),)

    request_id: int = Field(foreign_key="aid_requests.id", primary_key=True)
    city_id: int = Field(foreign_key="cities.id", primary_key=True)
    ring: int
    distance_km: float


class Claim(SQLModel, table=True):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_claim_quantity"),
        UniqueConstraint("city_id", "idempotency_key", name="uq_claim_idempotency"),
        Index("ix_claims_status_expires", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="aid_requests.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    city_id: int = Field(foreign_key="cities.id", index=True)
    quantity: int
    status: str = Field(default="claimed", max_length=16)
    note: str = Field(default="", max_length=2000)
    answer: str | None = Field(default=None, max_length=20000)
    idempotency_key: str = Field(max_length=200)
    body_fingerprint: str = Field(max_length=64)
    claimed_by_token_id: int | None = Field(default=None, foreign_key="api_tokens.id")
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    # A claim still `claimed` at this time expires and gives its quantity back.
    expires_at: datetime | None = _utc(default=None)
    # When the requesting manager was reminded that this claim awaits acceptance.
    reminded_at: datetime | None = _utc(default=None)
    # The roster package the claim commits units of (None: not from a roster).
    package_id: int | None = Field(default=None, foreign_key="roster_packages.id", index=True)
    # Who is coming, and when: given with the move to en route.
    eta_at: datetime | None = _utc(default=None)
    team_lead: str | None = Field(default=None, max_length=200)
    team_size: int | None = Field(default=None)
    vehicle: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    # Why the claim was declined, stood down or withdrawn.
    end_reason: str | None = Field(default=None, max_length=500)


class Offer(SQLModel, table=True):
    """A city's unasked offer of units to an incident it can see, and how it was answered."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_offer_quantity"),
        CheckConstraint(
            "counter_quantity is null or counter_quantity > 0", name="ck_offer_counter_quantity"
        ),
        CheckConstraint(
            "status in ('open','countered','accepted','declined','withdrawn','expired')",
            name="ck_offer_status",
        ),
        UniqueConstraint("city_id", "idempotency_key", name="uq_offer_idempotency"),
        Index("ix_offers_status_expires", "status", "expires_at"),
        Index("ix_offers_incident", "incident_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    city_id: int = Field(foreign_key="cities.id", index=True)  # the offering city
    # The request it fills when accepted (None: accepting raises a request for it).
    request_id: int | None = Field(default=None, foreign_key="aid_requests.id", index=True)
    package_id: int | None = Field(default=None, foreign_key="roster_packages.id", index=True)
    resource: str = Field(max_length=64)
    quantity: int
    ready_at: datetime = _utc()
    note: str = Field(default="", max_length=2000)
    status: str = Field(default="open", max_length=16)
    expires_at: datetime = _utc()
    # The requesting manager's counter: another quantity or time.
    counter_quantity: int | None = None
    counter_ready_at: datetime | None = _utc(default=None)
    # Why it was declined or withdrawn.
    end_reason: str | None = Field(default=None, max_length=500)
    # The claim its acceptance made.
    claim_id: int | None = Field(default=None, foreign_key="claims.id")
    idempotency_key: str = Field(max_length=200)
    body_fingerprint: str = Field(max_length=64)
    offered_by_token_id: int | None = Field(default=None, foreign_key="api_tokens.id")
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class RosterPackage(SQLModel, table=True):
    """A package of a city's roster (a mission-ready package): what it can lend."""

    __tablename__ = "roster_packages"
    __table_args__ = (
        CheckConstraint("cap_percent >= 1 and cap_percent <= 100", name="ck_package_cap"),
        CheckConstraint("readiness_hours >= 0", name="ck_package_readiness"),
        CheckConstraint("self_sufficiency_days >= 0", name="ck_package_self_sufficiency"),
        CheckConstraint("cost_estimate >= 0", name="ck_package_cost"),
    )

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="cities.id", index=True)
    name: str = Field(max_length=200)
    readiness_hours: int
    self_sufficiency_days: int
    limitations: str = Field(default="", max_length=2000)
    cost_estimate: int = 0
    cost_currency: str = Field(default="USD", max_length=3)
    contact: str = Field(default="", max_length=500)
    available: bool = True
    unavailable_until: datetime | None = _utc(default=None)
    unavailable_reason: str = Field(default="", max_length=500)
    # The share of each resource's units that may be committed at once, across incidents.
    cap_percent: int = 100
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class PackageItem(SQLModel, table=True):
    """One catalogued resource of a package: its units and how many claims hold now.
    `cap_quantity` is the package's cap applied to `quantity`; the constraint keeps
    what is committed within both, on every replica."""

    __tablename__ = "package_items"
    __table_args__ = (
        UniqueConstraint("package_id", "resource", name="uq_package_item"),
        CheckConstraint("quantity > 0", name="ck_package_item_quantity"),
        CheckConstraint(
            "committed_quantity >= 0 and committed_quantity <= cap_quantity"
            " and cap_quantity <= quantity",
            name="ck_package_item_committed",
        ),
        Index("ix_package_items_resource", "resource", "package_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    package_id: int = Field(foreign_key="roster_packages.id", index=True)
    resource: str = Field(max_length=64)
    quantity: int
    cap_quantity: int
    committed_quantity: int = 0


class RequestPass(SQLModel, table=True):
    """A targeted city's "we cannot help with this one", once per request."""

    __tablename__ = "request_passes"

    request_id: int = Field(foreign_key="aid_requests.id", primary_key=True)
    city_id: int = Field(foreign_key="cities.id", primary_key=True)
    ring: int  # the ring the request had reached when the city passed
    reason: str = Field(default="", max_length=500)
    passed_by_token_id: int | None = Field(default=None, foreign_key="api_tokens.id")
    passed_at: datetime = _utc()


class Note(SQLModel, table=True):
    """One human entry in the thread of a request, or of one of its claims."""

    __tablename__ = "notes"
    __table_args__ = (
        Index("ix_notes_request_id", "request_id", "id"),
        UniqueConstraint("city_id", "idempotency_key", name="uq_note_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    request_id: int = Field(foreign_key="aid_requests.id")
    claim_id: int | None = Field(default=None, foreign_key="claims.id", index=True)
    city_id: int = Field(foreign_key="cities.id")
    author_role: str = Field(max_length=16)
    author_token_id: int | None = Field(default=None, foreign_key="api_tokens.id")
    body: str = Field(max_length=2000)
    # Set when the note was added with an Idempotency-Key: a retry replays this note.
    idempotency_key: str | None = Field(default=None, max_length=200)
    body_fingerprint: str | None = Field(default=None, max_length=64)
    created_at: datetime = _utc()


class Event(SQLModel, table=True):
    """One recorded change: the outbox row, the audit trail and the replay source."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_event_incident_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    incident_id: int = Field(foreign_key="incidents.id")
    seq: int
    type: str = Field(max_length=40)
    occurred_at: datetime = _utc()
    actor_token_id: int | None = Field(default=None)
    actor_city_id: int | None = Field(default=None)
    actor_role: str = Field(max_length=16)
    # The person who acted (signed in with a session), as they were named then.
    actor_user_id: int | None = Field(default=None)
    actor_name: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # {"cities": inboxes it concerns, "viewers": cities that could see the incident}.
    audience: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )


class CityPlaybook(SQLModel, table=True):
    """A city's own playbook for an incident type; it takes precedence over the stock one."""

    __tablename__ = "city_playbooks"
    __table_args__ = (UniqueConstraint("city_id", "incident_type", name="uq_city_playbook"),)

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="cities.id", index=True)
    incident_type: str = Field(max_length=64)
    source: str = Field(max_length=200_000)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    # Lineage: the published version this text started from, and how it came here
    # ("published" by the city, "adopted" and followed, or "forked" and left to itself).
    based_on_version_id: int | None = Field(default=None, foreign_key="playbook_versions.id")
    lineage: str | None = Field(default=None, max_length=16)
    # The newest version of an adopted source the city chose to ignore.
    ignored_version_id: int | None = Field(default=None, foreign_key="playbook_versions.id")


class PlaybookVersion(SQLModel, table=True):
    """A city's playbook published to its networks: numbered per city and incident type,
    never changed once written (no route updates or deletes one; a trigger refuses UPDATE)."""

    __tablename__ = "playbook_versions"
    __table_args__ = (
        UniqueConstraint("city_id", "incident_type", "version", name="uq_playbook_version"),
        CheckConstraint("version >= 1", name="ck_playbook_version"),
        Index("ix_playbook_versions_type", "incident_type", "city_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="cities.id")
    incident_type: str = Field(max_length=64)
    version: int
    source: str = Field(max_length=200_000)
    change_note: str = Field(default="", max_length=2000)
    # The version this one was derived from: the city's previous one, or the one it adopted.
    parent_version_id: int | None = Field(default=None, foreign_key="playbook_versions.id")
    published_by_token_id: int | None = Field(default=None)
    published_at: datetime = _utc()


class InteropImport(SQLModel, table=True):
    """A message imported from another system (a CAP alert, an EDXL-RM message), kept
    so that importing it again finds what the first import made."""

    __tablename__ = "interop_imports"
    __table_args__ = (UniqueConstraint("format", "sender", "identifier", name="uq_interop_import"),)

    id: int | None = Field(default=None, primary_key=True)
    # "cap", "edxl-rm", or "edxl-rm-incident" (another system's IncidentID).
    format: str = Field(max_length=24)
    sender: str = Field(max_length=200)
    identifier: str = Field(max_length=200)
    city_id: int = Field(foreign_key="cities.id")
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="aid_requests.id")
    created_at: datetime = _utc()


class WebhookEndpoint(SQLModel, table=True):
    """A city's receiving system. Its signing secrets are kept as written: signing needs them.

    `leased_by`/`lease_until`: the replica delivering for the endpoint now, taken by a
    conditional update, so one replica at a time attempts its deliveries.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("status in ('active','paused','disabled')", name="ck_webhook_status"),
        Index("ix_webhook_endpoints_lease", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="cities.id", index=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="active", max_length=16)
    status_reason: str = Field(default="", max_length=500)
    secret: str = Field(max_length=100)
    # The secret before the last rotation; it signs too until `previous_secret_until`.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = _utc(default=None)
    created_by_token_id: int | None = Field(default=None)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    last_success_at: datetime | None = _utc(default=None)
    last_failure_at: datetime | None = _utc(default=None)
    leased_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _utc(default=None)


class WebhookCursor(SQLModel, table=True):
    """How far an endpoint has got in one incident's events, and the retry state of the
    event after that (the head of the incident's queue for the endpoint)."""

    __tablename__ = "webhook_cursors"

    endpoint_id: int = Field(foreign_key="webhook_endpoints.id", primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", primary_key=True)
    # Every event of the incident with seq <= this one is delivered or not for this endpoint.
    seq: int = 0
    failures: int = 0
    failing_since: datetime | None = _utc(default=None)
    next_attempt_at: datetime | None = _utc(default=None)


class WebhookQueued(SQLModel, table=True):
    """A delivery outside the ordered stream: a ping, or a redelivery asked for by hand."""

    __tablename__ = "webhook_queue"
    __table_args__ = (Index("ix_webhook_queue_due", "endpoint_id", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id")
    kind: str = Field(max_length=16)  # "ping" | "redelivery"
    event_id: str = Field(max_length=36)
    # The body of a ping (a redelivery reads its event from the events table).
    body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _utc()
    failures: int = 0
    failing_since: datetime | None = _utc(default=None)
    next_attempt_at: datetime = _utc()


class WebhookAttempt(SQLModel, table=True):
    """The delivery log: one row per attempt to send one event to one endpoint."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_attempts_event", "endpoint_id", "event_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id")
    event_id: str = Field(max_length=36)
    event_type: str = Field(max_length=40)
    incident_id: int | None = Field(default=None)
    seq: int | None = Field(default=None)
    source: str = Field(max_length=16)  # "stream" | "ping" | "redelivery"
    attempt: int
    attempted_at: datetime = _utc()
    status_code: int | None = Field(default=None)
    latency_ms: float
    outcome: str = Field(max_length=16)
    error: str = Field(default="", max_length=500)
    response_excerpt: str = Field(default="", max_length=1000)
    next_retry_at: datetime | None = _utc(default=None)


class WsTicket(SQLModel, table=True):
    """A single-use websocket ticket (`service.tickets`); only its SHA-256 is stored."""

    __tablename__ = "ws_tickets"

    ticket_hash: str = Field(max_length=64, primary_key=True)
    token_id: int = Field(foreign_key="api_tokens.id")
    expires_at: datetime = _utc(index=True)


class ObservatoryNetwork(SQLModel, table=True):
    """A network's open-data observatory: the licence its feeds carry and how long after
    an incident closes it may be published. A network without this row publishes nothing."""

    __tablename__ = "observatory_networks"
    __table_args__ = (CheckConstraint("publication_delay_days >= 0", name="ck_observatory_delay"),)

    network_id: int = Field(foreign_key="networks.id", primary_key=True)
    licence: str = Field(max_length=64)
    publication_delay_days: int
    updated_at: datetime = _utc()


class ObservatoryCity(SQLModel, table=True):
    """A city's choice to appear in the observatories of its networks (no row: it does not)."""

    __tablename__ = "observatory_cities"

    city_id: int = Field(foreign_key="cities.id", primary_key=True)
    opted_in: bool = False
    updated_at: datetime = _utc()


class Sitrep(SQLModel, table=True):
    """A numbered situation report of an incident, frozen when published: `body` is the
    EDXL-SitRep-shaped document as it was (no route updates or deletes one; a trigger
    refuses UPDATE)."""

    __tablename__ = "sitreps"
    __table_args__ = (
        UniqueConstraint("incident_id", "number", name="uq_sitrep_number"),
        CheckConstraint("number >= 1", name="ck_sitrep_number"),
        CheckConstraint("period_from < period_to", name="ck_sitrep_period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    number: int
    period_from: datetime = _utc()
    period_to: datetime = _utc()
    prepared_by_token_id: int | None = Field(default=None)
    prepared_by_city_id: int = Field(foreign_key="cities.id")
    published_at: datetime = _utc()
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
