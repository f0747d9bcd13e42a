"""The model family of each entity as the API shows it: `XCreate` in, `XPublic` out.

Inputs forbid unknown fields, take integers and booleans strictly (no `"3"` or
`true` for a quantity), refuse NaN and infinity, NUL characters and lone
surrogates, and times other than RFC 3339 text with a zone or beyond what UTC can
hold, and bound every string, so bad input is a 422 with a message and never
reaches the database. Integers from paths and queries are plain digits.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
)

from service.domain.actors import Role
from service.edge import MAX_ID as MAX_ID

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


def _plain_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _plain_digits(value: object) -> object:
    # Python's int() reads "+1", " 1", "01", "1_0" and Arabic-Indic digits as numbers;
    # a path or query id not written the one way is a mistake or a probe, not an id.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be written in digits 0-9, without sign, spaces or leading zeros")
    return value


_DIGITS = re.compile(r"0|[1-9][0-9]*")
PlainDigits = BeforeValidator(_plain_digits)
"""For integers that arrive as text (path and query parameters)."""


def _true_or_false(value: object) -> object:
    # pydantic also reads "1", "yes", "on", "t" and their opposites as booleans.
    if isinstance(value, str) and value not in {"true", "false"}:
        raise ValueError("must be true or false")
    return value


TrueOrFalse = BeforeValidator(_true_or_false)
"""For booleans that arrive as text (query parameters)."""

# RFC 3339 with its zone: a number (a Unix time?), a date alone or a zoneless time is
# ambiguous, and pydantic would read each of them as some time.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):
        return value  # built in code, not read from input
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be a time as RFC 3339 text with its zone, e.g. 2026-02-12T08:00:00Z "
            "or 2026-02-12T11:00:00+03:00"
        )
    return value


def _in_utc(value: datetime) -> datetime:
    # An aware time near year 1 or 9999 can overflow on its way to UTC (and the database).
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None


_Clean = AfterValidator(_plain_text)
UtcTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]
Name = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=200), _Clean]
Label = Annotated[str, Strict(), StringConstraints(max_length=200), _Clean]
Email = Annotated[str, Strict(), StringConstraints(min_length=3, max_length=254), _Clean]
ShortText = Annotated[str, Strict(), StringConstraints(max_length=500), _Clean]
Note = Annotated[str, Strict(), StringConstraints(max_length=2000), _Clean]
LongText = Annotated[str, Strict(), StringConstraints(max_length=5000), _Clean]
Answer = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=20000), _Clean]
Reason = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=500), _Clean]


def _iana_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA time zone name, e.g. 'Africa/Nairobi' or 'Europe/Berlin'")
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


TimeZoneName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64), AfterValidator(_iana_zone)
]

Slug = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64, pattern=SLUG_PATTERN)
]
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False)]
StrictBool = Annotated[bool, Strict()]

Kind = Literal["personnel", "infrastructure", "information"]
Priority = Literal["low", "normal", "high", "critical"]
Severity = Literal["minor", "moderate", "severe", "extreme"]
RoleName = Literal["admin", "manager", "responder", "observer"]
ClaimTarget = Literal["accepted", "en_route", "on_site", "released", "withdrawn", "declined"]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(Output, Generic[T]):
    """One page of a list: `data`, the total `count`, and where the next page starts."""

    data: list[T]
    count: int
    limit: int
    offset: int
    next_offset: int | None


# Networks and cities ---------------------------------------------------------


class NetworkCreate(Input):
    slug: Slug
    name: Name
    description: Note = ""


class NetworkPublic(Output):
    id: int
    slug: str
    name: str
    description: str
    created_at: datetime
    city_ids: list[int] = []


class CityCreate(Input):
    slug: Slug
    name: Name
    country: Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{2}$")]
    lat: Latitude
    lon: Longitude
    contact_email: Email | None = None
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="IANA time zone of the city (e.g. 'Africa/Nairobi'): the pages show "
        "its incidents' local time beside each viewer's own.",
    )
    networks: Annotated[list[Slug], Field(max_length=50)] = []


class CityPublic(Output):
    id: int
    slug: str
    name: str
    country: str
    lat: float
    lon: float
    contact_email: str | None
    time_zone: str | None = None
    # Its managers must sign in with a TOTP second factor.
    managers_need_totp: bool = False
    created_at: datetime
    network_ids: list[int] = []


# Tokens ------------------------------------------------------------------------


ScopeName = Literal["read", "claims", "webhooks"]


class TokenCreate(Input):
    role: RoleName
    city_id: Id | None = Field(
        default=None, description="Required but for an admin token; a manager's own city."
    )
    label: Label = ""
    scopes: list[ScopeName] = Field(
        default_factory=list,
        max_length=3,
        description=(
            "Empty: everything the role may do. 'read': read only; 'claims': claims, passes "
            "and claim status; 'webhooks': the city's webhook endpoints."
        ),
    )
    expires_in_days: Annotated[int, Strict(), Field(ge=1, le=36_500)] | None = Field(
        default=None, description="Days until it expires (the server's default if left out)."
    )


class TokenPublic(Output):
    id: int
    prefix: str
    role: str
    city_id: int | None
    label: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Recorded to within a minute.")
    rotated_at: datetime | None
    revoked_at: datetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _stored_scopes(cls, value: Any) -> Any:
        return [s for s in value.split(",") if s] if isinstance(value, str) else value


class TokenIssued(TokenPublic):
    token: str = Field(description="The bearer token. Shown once; only its hash is stored.")


class Me(Output):
    token_id: int | None
    role: Role
    city_id: int | None
    # A signed-in person (null for a token).
    user_id: int | None = None
    display_name: str | None = None


# Incidents -------------------------------------------------------------------


class PlaybookRequestChoice(Input):
    """One of the playbook's requests to raise, by its position, as adjusted."""

    index: Annotated[int, Strict(), Field(ge=0, le=19)] = Field(
        description="The request's position in the playbook's `requests` (0 is the first)."
    )
    quantity: Annotated[int, Strict(), Field(ge=1, le=10_000)]
    priority: Priority | None = Field(default=None, description="Leave out to keep the playbook's.")


class IncidentCreate(Input):
    incident_type: Slug
    title: Name
    severity: Severity = "severe"
    description: LongText = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    exercise: StrictBool = False
    playbook: Slug | None = Field(
        default=None, description="Raise this playbook's requests with the declaration."
    )
    playbook_requests: Annotated[list[PlaybookRequestChoice], Field(max_length=20)] | None = Field(
        default=None,
        description="With `playbook`: raise only these of its requests, each with its "
        "quantity (and priority); leave out to raise them all as written, [] for none.",
    )


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null: leave the field out to keep its value")
    return value


def _drop_null(schema: dict[str, Any]) -> None:
    # The fields of an update are optional, not nullable: the schema says only the first.
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            kept = [o for o in options if o != {"type": "null"}]
            del prop["anyOf"]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            if prop.get("default", 0) is None:
                del prop["default"]


NotNull = BeforeValidator(_not_null)
"""For a field an update may leave out but not set to null."""


class IncidentUpdate(Input):
    """What a manager may change after declaring: give only the fields that change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null)

    severity: Annotated[Severity | None, NotNull] = None
    title: Annotated[Name | None, NotNull] = None
    description: Annotated[LongText | None, NotNull] = None
    lat: Annotated[Latitude | None, NotNull] = Field(
        default=None, description="With `lon`: move the incident's location (both or neither)."
    )
    lon: Annotated[Longitude | None, NotNull] = None
    exercise: Annotated[StrictBool | None, NotNull] = Field(
        default=None,
        description="Only as it is: an exercise stays an exercise (422 if it differs).",
    )

    def asked(self) -> dict[str, object]:
        """The fields the body gave, by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class IncidentPublic(Output):
    id: int
    city_id: int
    incident_type: str
    title: str
    severity: str
    description: str
    lat: float
    lon: float
    playbook: str | None
    exercise: bool
    status: str
    last_seq: int
    declared_at: datetime
    closed_at: datetime | None


# Requests ----------------------------------------------------------------------


class AidRequestCreate(Input):
    resource: Slug
    kind: Kind | None = Field(
        default=None, description="Optional; must match the catalogue's kind of the resource."
    )
    quantity: Annotated[int, Strict(), Field(ge=1, le=10_000)]
    priority: Priority = "normal"
    needed_by: UtcTime | None = None
    report_to: ShortText = ""
    report_lat: Latitude | None = Field(
        default=None, description="Where the staging point is, with `report_lon`: both or neither."
    )
    report_lon: Longitude | None = None
    notes: Note = ""


def _drop_null_but_point(schema: dict[str, Any]) -> None:
    # As `_drop_null`, but a staging point's coordinates may be null: that removes them.
    point = {k: schema.get("properties", {}).pop(k) for k in ("report_lat", "report_lon")}
    _drop_null(schema)
    schema.setdefault("properties", {}).update(point)


class AidRequestUpdate(Input):
    """What the requesting city's manager may change after raising: give only what changes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_but_point)

    quantity: Annotated[Annotated[int, Strict(), Field(ge=1, le=10_000)] | None, NotNull] = Field(
        default=None, description="Never below the request's claimed_quantity (409 if it is)."
    )
    priority: Annotated[Priority | None, NotNull] = None
    needed_by: Annotated[UtcTime | None, NotNull] = Field(
        default=None, description="In the future, with a time zone."
    )
    report_to: Annotated[ShortText | None, NotNull] = None
    # The staging point's coordinates: both together; null for both removes them.
    report_lat: Latitude | None = Field(
        default=None,
        description="With `report_lon`: move the staging point; null for both removes it.",
    )
    report_lon: Longitude | None = None

    def asked(self) -> dict[str, object]:
        """The fields the body gave, by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class AidRequestPublic(Output):
    id: int
    incident_id: int
    city_id: int
    kind: str
    resource: str
    quantity: int
    claimed_quantity: int
    delivered_quantity: int
    remaining_quantity: int
    priority: str
    needed_by: datetime | None
    report_to: str
    report_lat: float | None = None
    report_lon: float | None = None
    notes: str
    status: str
    ring: int
    next_escalation_at: datetime | None
    created_at: datetime
    updated_at: datetime


# Claims ------------------------------------------------------------------------


class ClaimCreate(Input):
    quantity: Annotated[int, Strict(), Field(ge=1, le=10_000)]
    note: Note = ""
    package_id: Id | None = Field(
        default=None,
        description="Claim from this package of your city's roster: its units of the "
        "request's resource are committed with the claim, and given back when the claim "
        "is released or ends early.",
    )


class ClaimStatusChange(Input):
    status: ClaimTarget
    note: Note = ""
    answer: Answer | None = Field(
        default=None, description="The answer to an information request (with `released`)."
    )
    eta: UtcTime | None = Field(
        default=None, description="With `en_route`: the expected arrival, in the future."
    )
    team_lead: Name | None = Field(default=None, description="With `en_route`.")
    team_size: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = Field(
        default=None, description="With `en_route`: how many people travel."
    )
    vehicle: Name | None = Field(default=None, description="With `en_route`.")
    contact: Name | None = Field(
        default=None, description="With `en_route`: a phone or radio channel to reach the team."
    )
    reason: Reason | None = Field(default=None, description="With `declined` or `withdrawn`: why.")


class ClaimPublic(Output):
    id: int
    request_id: int
    incident_id: int
    city_id: int
    quantity: int
    status: str
    note: str
    answer: str | None
    # Who is coming and when (given with en route), and why a claim ended early.
    eta_at: datetime | None = None
    team_lead: str | None = None
    team_size: int | None = None
    vehicle: str | None = None
    contact: str | None = None
    end_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    package_id: int | None = None


# Notes -------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class NoteCreate(Input):
    body: Annotated[
        str,
        Strict(),
        StringConstraints(min_length=1, max_length=2000),
        _Clean,
        AfterValidator(_not_blank),
    ] = Field(description="The note, as text (up to 2,000 characters).")


class NotePublic(Output):
    id: int
    incident_id: int
    request_id: int
    claim_id: int | None = Field(description="Set when the note is on one claim of the request.")
    city_id: int = Field(description="The author's city.")
    author_role: str
    body: str
    created_at: datetime


class ChecklistItemPublic(Output):
    text: str
    done: bool
    done_at: datetime | None
    done_by_city_id: int | None


class ChecklistPublic(Output):
    title: str
    items: list[ChecklistItemPublic]


class ChecklistTick(Input):
    """Tick (`done: true`) or untick one item of one of the incident's checklists."""

    checklist: Annotated[int, Strict(), Field(ge=0, le=19)] = Field(
        description="The checklist's position (0 is the first)."
    )
    item: Annotated[int, Strict(), Field(ge=0, le=49)] = Field(
        description="The item's position in its checklist."
    )
    done: StrictBool


class IncidentDetail(IncidentPublic):
    requests: list[AidRequestPublic]
    claims: list[ClaimPublic]
    checklists: list[ChecklistPublic] = Field(
        default_factory=list, description="The playbook's checklists, as ticked off."
    )


# Events ------------------------------------------------------------------------


class EventPublic(Output):
    event_id: str
    incident_id: int
    seq: int
    type: str
    occurred_at: datetime
    actor_role: str
    actor_city_id: int | None
    # The person who acted (user id and display name); null for tokens and the service.
    actor_user_id: int | None = None
    actor_name: str | None = None
    data: dict[str, Any]
    audience: dict[str, list[int]] = Field(
        default_factory=dict,
        description="`cities`: the inboxes the event concerns; `viewers`: cities that see it.",
    )


class EventPage(Output):
    data: list[EventPublic]
    last_seq: int = Field(description="The incident's newest seq.")
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


# Rosters ----------------------------------------------------------------------

Currency = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]
Units = Annotated[int, Strict(), Field(ge=1, le=10_000)]


class PackageItemIn(Input):
    resource: Slug
    quantity: Units


PackageItems = Annotated[list[PackageItemIn], Field(min_length=1, max_length=50)]


class PackageFields(Input):
    """What describes a package, beyond its resources."""

    readiness_hours: Annotated[int, Strict(), Field(ge=0, le=8760)] = Field(
        description="Hours from the ask until the package can deploy."
    )
    self_sufficiency_days: Annotated[int, Strict(), Field(ge=0, le=365)] = Field(
        description="Days the package sustains itself once deployed."
    )
    limitations: Note = ""
    cost_estimate: Annotated[int, Strict(), Field(ge=0, le=1_000_000_000)] = Field(
        default=0, description="In whole units of `cost_currency`."
    )
    cost_currency: Currency = "USD"
    contact: ShortText = ""
    cap_percent: Annotated[int, Strict(), Field(ge=1, le=100)] = Field(
        default=100,
        description="The share of each resource's units that may be committed at once, "
        "across every incident (rounded down).",
    )


class PackageCreate(PackageFields):
    name: Name
    items: PackageItems
    available: StrictBool = True
    unavailable_until: UtcTime | None = Field(
        default=None, description="With `available: false`: when it is available again."
    )
    unavailable_reason: ShortText = ""


class PackageUpdate(Input):
    """Give only what changes. `items` replaces the package's resources as a whole; a
    resource with units committed keeps at least those (409 otherwise)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null)

    name: Annotated[Name | None, NotNull] = None
    items: Annotated[PackageItems | None, NotNull] = None
    readiness_hours: Annotated[Annotated[int, Strict(), Field(ge=0, le=8760)] | None, NotNull] = (
        None
    )
    self_sufficiency_days: Annotated[
        Annotated[int, Strict(), Field(ge=0, le=365)] | None, NotNull
    ] = None
    limitations: Annotated[Note | None, NotNull] = None
    cost_estimate: Annotated[
        Annotated[int, Strict(), Field(ge=0, le=1_000_000_000)] | None, NotNull
    ] = None
    cost_currency: Annotated[Currency | None, NotNull] = None
    contact: Annotated[ShortText | None, NotNull] = None
    cap_percent: Annotated[Annotated[int, Strict(), Field(ge=1, le=100)] | None, NotNull] = None
    available: Annotated[StrictBool | None, NotNull] = None
    unavailable_until: UtcTime | None = Field(
        default=None, description="With `available: false`; null clears it."
    )
    unavailable_reason: Annotated[ShortText | None, NotNull] = None

    def asked(self) -> dict[str, object]:
        """The fields the body gave, by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class PackageItemPublic(Output):
    resource: str
    quantity: int
    cap_quantity: int
    committed_quantity: int
    remaining_quantity: int


class PackagePublic(Output):
    id: int
    city_id: int
    name: str
    items: list[PackageItemPublic]
    readiness_hours: int
    self_sufficiency_days: int
    limitations: str
    cost_estimate: int
    cost_currency: str
    contact: str
    cap_percent: int
    available: bool
    unavailable_until: datetime | None
    unavailable_reason: str
    available_now: bool
    created_at: datetime
    updated_at: datetime


class LenderPublic(Output):
    city_id: int
    ring: int = Field(description="The ring at which the request reaches the city.")
    reached: bool = Field(description="Whether the request has reached that ring yet.")
    distance_km: float
    package_id: int
    package_name: str
    readiness_hours: int
    remaining_quantity: int = Field(description="Units of the resource it can commit now.")


class RequestMatches(Output):
    """Who could help with one open request: the cities it targets whose rosters hold its
    resource available now, by ring, then distance, then time to readiness."""

    request_id: int
    resource: str
    remaining_quantity: int
    lenders: list[LenderPublic] = Field(description="The first lenders (`lenders` asks how many).")
    lender_count: int = Field(description="How many lenders there are in all.")
    available_quantity: int = Field(
        description="What the lenders of the rings the request has reached could commit now."
    )


# Offers -------------------------------------------------------------------------


class OfferCreate(Input):
    resource: Slug = Field(description="A catalogued resource.")
    quantity: Units
    ready_at: UtcTime = Field(description="When the units are ready to deploy, with a zone.")
    note: Note = ""
    expires_at: UtcTime | None = Field(
        default=None,
        description="When the offer lapses unless answered (in the future, within 30 days; "
        "a day from now if left out).",
    )
    package_id: Id | None = Field(
        default=None,
        description="Offer from this package of your city's roster: its units are committed "
        "when the offer is accepted.",
    )
    request_id: Id | None = Field(
        default=None,
        description="An open request of the incident for the same resource that the offer "
        "fills when accepted (left out: accepting raises a request for it).",
    )


OfferTarget = Literal["accepted", "declined", "countered", "withdrawn"]


class OfferStatusChange(Input):
    status: OfferTarget
    reason: Reason | None = Field(
        default=None, description="With `declined` (required) or `withdrawn`: why."
    )
    quantity: Units | None = Field(default=None, description="With `countered`.")
    ready_at: UtcTime | None = Field(default=None, description="With `countered`.")
    request_id: Id | None = Field(
        default=None,
        description="With `accepted` by the requesting manager: an open request of the "
        "incident for the same resource to fill, instead of the offer's own choice.",
    )


class OfferPublic(Output):
    id: int
    incident_id: int
    city_id: int
    request_id: int | None
    package_id: int | None
    resource: str
    quantity: int
    ready_at: datetime
    note: str
    status: str
    expires_at: datetime
    counter_quantity: int | None
    counter_ready_at: datetime | None
    end_reason: str | None
    claim_id: int | None
    created_at: datetime
    updated_at: datetime


# Passes -------------------------------------------------------------------------


class PassCreate(Input):
    reason: ShortText = ""


class PassPublic(Output):
    request_id: int
    city_id: int
    ring: int
    reason: str
    passed_at: datetime
    escalated_to_ring: int | None = Field(
        default=None,
        description="Set when this pass was the last of its ring's: the ring the request "
        "moved to at once.",
    )
