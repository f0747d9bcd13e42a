"""The rules of webhooks to cities' own systems, as pure functions over plain values.

- signing, as the Standard Webhooks specification says: `v1,` and the base64 of
  HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the bytes of a `whsec_` secret;
- the retry schedule: exponential backoff with jitter, `Retry-After` honoured, within a
  retry window;
- what a response means (delivered, retry, gone);
- which URLs and which resolved addresses an endpoint may point at (server-side
  request forgery).

No I/O here: randomness, the clock and name resolution are arguments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit

from service.domain.errors import Invalid

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Signing -------------------------------------------------------------------------------


def new_secret(random_bytes: bytes) -> str:
    """A signing secret in the form receivers' libraries read: `whsec_` + base64 of the key."""
    if len(random_bytes) < 24:
        raise ValueError("a signing key needs at least 24 random bytes")
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret starts with 'whsec_'")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one signature per key, space-separated (during a rotation the
    old and the new secret both sign, so a receiver holding either verifies)."""
    return " ".join(sign(key, message_id, timestamp, body) for key in keys)


def signing_headers(
    keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, message_id, timestamp, body),
    }


# Outcomes and the retry schedule ------------------------------------------------------------


class Outcome(StrEnum):
    """How one attempt went, as the delivery log shows it."""

    DELIVERED = "delivered"  # a 2xx
    RETRYING = "retrying"  # failed; another attempt is scheduled
    FAILED = "failed"  # failed, and the retry window is over
    GONE = "gone"  # 410: the receiver asks never to be called again; the endpoint is disabled


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff doubles from `base` up to `cap`, each delay drawn in [50%, 100%] of its
    step (jitter, so endpoints that failed together do not retry together), and every
    retry falls within `window` of the first failure."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    window: timedelta = timedelta(hours=24)
    # A receiver's Retry-After is honoured up to this long.
    retry_after_cap: timedelta = timedelta(hours=1)

    def delay(self, failures: int, jitter: float, retry_after: timedelta | None) -> timedelta:
        """The wait before the next attempt, after `failures` failed attempts in a row
        (1 after the first). `jitter` is a random number in [0, 1)."""
        exponent = min(max(failures - 1, 0), 40)
        step = min(self.base * (1 << exponent), self.cap)
        backoff = step * (0.5 + 0.5 * jitter)
        if retry_after is not None:
            # The receiver knows best when it can take more; never sooner than it asked.
            honoured = retry_after if retry_after < self.retry_after_cap else self.retry_after_cap
            return honoured if honoured > timedelta(0) else timedelta(0)
        return backoff

    def next_attempt_at(
        self,
        *,
        now: datetime,
        failing_since: datetime,
        failures: int,
        jitter: float,
        retry_after: timedelta | None,
    ) -> datetime | None:
        """When to try again, or None when that would fall past the retry window."""
        at = now + self.delay(failures, jitter, retry_after)
        if at > failing_since + self.window:
            return None
        return at


def outcome_of(status_code: int | None) -> Outcome:
    """A response's meaning: 2xx delivered; 410 gone; anything else (a 3xx, which is never
    followed, a 4xx, a 5xx, a timeout or a refused connection: None) is a failure."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRYING


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), 10**7))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


# Which events an endpoint gets ---------------------------------------------------------------


def city_sees(audience: dict[str, object], city_id: int) -> bool:
    """Whether a city may see an event with this audience: it concerns the city's inbox, or
    the city may see the incident (the rule of a city's `board` and `city:<id>` scopes)."""
    for key in ("cities", "viewers"):
        members = audience.get(key)
        if isinstance(members, list) and city_id in members:
            return True
    return False


def wants(event_types: Iterable[str], event_type: str) -> bool:
    """An endpoint's filter: empty takes every type."""
    chosen = list(event_types)
    return not chosen or event_type in chosen


# Where an endpoint may point (server-side request forgery) ----------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL's parts: where to connect and what to say in Host and SNI."""

    scheme: str
    host: str  # a name, or an IP address without brackets
    port: int
    target: str  # path and query

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which destinations are allowed: https only unless `allow_http`; every address
    globally routable unless the host or the address is in the allow-list (an
    on-premises deployment's own systems; empty by default)."""

    allow_http: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str], *, allow_http: bool = False) -> AddressPolicy:
        """Entries are host names or CIDR ranges (`10.20.0.0/16`, `fd12::/48`, `10.0.0.7`)."""
        hosts: set[str] = set()
        networks: list[IpNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(allow_http, frozenset(hosts), tuple(networks))

    def check_url(self, url: str) -> Destination:
        """The URL's parts, or `Invalid` saying what is refused."""
        return parse_destination(url, allow_http=self.allow_http)

    def refusal(self, destination: Destination, address: IpAddress) -> str | None:
        """Why a resolved address may not be called, or None when it may."""
        if destination.host in self.allowed_hosts:
            return None
        if any(address in network for network in self.allowed_networks):
            return None
        return address_refusal(address)

    def check_addresses(
        self, destination: Destination, addresses: Sequence[IpAddress]
    ) -> IpAddress:
        """The address to connect to: every resolved address must be allowed (a name with
        one private address among public ones is refused), then the first is taken."""
        if not addresses:
            raise Invalid(f"{destination.host} does not resolve to any address")
        for address in addresses:
            why = self.refusal(destination, address)
            if why is not None:
                raise Invalid(f"{destination.host} resolves to {address}, {why}: refused")
        return addresses[0]


# Digits, hex and dots only: a numeric host such as 127.1, 0x7f000001 or 2130706433, which
# resolvers read as an IPv4 address in a shorthand.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def parse_destination(url: str, *, allow_http: bool) -> Destination:
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise Invalid(f"a webhook URL is at most {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise Invalid("a webhook URL may not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"not a usable URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        allowed = "https or http" if allow_http else "https"
        raise Invalid(f"a webhook URL must use {allowed} (got {scheme or 'no scheme'!r})")
    if "@" in parts.netloc:
        raise Invalid("a webhook URL may not carry a user name or password")
    if parts.fragment:
        raise Invalid("a webhook URL may not have a fragment (#...)")
    host = _host_of(parts)
    default = 443 if scheme == "https" else 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(scheme, host, port or default, target)


def _host_of(parts: SplitResult) -> str:
    raw = parts.hostname  # lower-cased, brackets of an IPv6 literal removed
    if not raw:
        raise Invalid("a webhook URL needs a host")
    if raw.endswith("."):
        raise Invalid("a webhook URL's host may not end with a dot")
    if "%" in raw:
        raise Invalid("a webhook URL's host may not name a network interface (%)")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        address = None
    if address is not None:
        return str(address)
    if _NUMERIC_HOST.match(raw):
        raise Invalid(
            f"{raw!r} reads as an IPv4 address in shorthand: write a host name or a "
            "plain dotted address"
        )
    try:
        ascii_host = raw.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid(f"{raw!r} is not a valid host name") from None
    if not _HOST_NAME.match(ascii_host):
        raise Invalid(f"{raw!r} is not a valid host name")
    return ascii_host


def address_refusal(address: IpAddress) -> str | None:
    """Why an address is not one to call from a server, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_refusal(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a globally routable address"
    return None


# After one attempt ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What one attempt's reply means for the delivery, the queue and the endpoint."""

    outcome: Outcome
    # True: this event is done with (delivered, or given up while others get through);
    # the next one may go. False: it stays at the head of its queue.
    advance: bool
    failures: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    # Set when the endpoint must be disabled, saying why.
    disable: str | None = None


def decide(
    policy: RetryPolicy,
    *,
    status_code: int | None,
    retry_after: timedelta | None,
    now: datetime,
    failures: int,
    failing_since: datetime | None,
    last_success_at: datetime | None,
    jitter: float,
) -> Decision:
    """The one rule every delivery follows (the ordered stream, pings and redeliveries)."""
    outcome = outcome_of(status_code)
    if outcome is Outcome.DELIVERED:
        return Decision(outcome, True, 0, None, None)
    if outcome is Outcome.GONE:
        return Decision(
            outcome,
            False,
            failures + 1,
            failing_since or now,
            None,
            disable="the receiver answered 410 Gone",
        )
    failures += 1
    since = failing_since or now
    at = policy.next_attempt_at(
        now=now, failing_since=since, failures=failures, jitter=jitter, retry_after=retry_after
    )
    if at is not None:
        return Decision(Outcome.RETRYING, False, failures, since, at)
    if last_success_at is None or last_success_at < since:
        # Nothing got through for the whole window: the endpoint keeps failing. It is
        # disabled and this event stays first in line for when it is resumed.
        hours = policy.window.total_seconds() / 3600
        return Decision(
            Outcome.FAILED,
            False,
            0,
            None,
            None,
            disable=f"no delivery succeeded for {hours:g} h ({failures} attempts)",
        )
    # Others get through and this one never does: give it up (it can be redelivered).
    return Decision(Outcome.FAILED, True, 0, None, None)
