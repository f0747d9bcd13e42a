"""The pure rules of webhooks: signatures against the specification's published example
and an independent implementation, the retry schedule, what a reply means, and the
address policy."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.domain.errors import Invalid
from service.domain.webhooks import (
    AddressPolicy,
    Outcome,
    RetryPolicy,
    address_refusal,
    decide,
    new_secret,
    parse_retry_after,
    secret_key,
    sign,
    signing_headers,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_signature_matches_the_published_example_of_the_specification() -> None:
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@given(document=JSON, raw=st.binary(min_size=32, max_size=32))
def test_the_standardwebhooks_package_verifies_every_signature(
    document: object, raw: bytes
) -> None:
    body = json.dumps(document, ensure_ascii=False).encode()
    secret = new_secret(raw)
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signing_headers([secret_key(secret)], "8c1b0a9e-event", timestamp, body)
    Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(b"o" * 32), new_secret(b"n" * 32)
    body = b'{"type": "event"}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signing_headers([secret_key(new), secret_key(old)], "e1", timestamp, body)
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret(b"x" * 32)).verify(body, headers)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=10))
    assert policy.delay(1, 0.0, None) == timedelta(seconds=2.5)
    assert policy.delay(1, 0.999, None) < timedelta(seconds=5)
    assert policy.delay(3, 0.0, None) == timedelta(seconds=10)
    assert policy.delay(30, 0.0, None) == timedelta(minutes=5)
    assert policy.delay(30, 0.9999, None) <= timedelta(minutes=10)


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, 0.0, timedelta(seconds=120)) == timedelta(seconds=120)
    assert policy.delay(1, 0.0, timedelta(days=3)) == policy.retry_after_cap
    assert parse_retry_after("7", NOW) == timedelta(seconds=7)
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:00 GMT", NOW) == timedelta(minutes=1)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_a_reply_decides_the_delivery() -> None:
    policy = RetryPolicy(window=timedelta(hours=24))
    common = {"now": NOW, "failures": 0, "failing_since": None, "jitter": 0.5}
    ok = decide(policy, status_code=204, retry_after=None, last_success_at=None, **common)
    assert ok.outcome is Outcome.DELIVERED and ok.advance
    for code in (301, 302, 400, 404, 429, 500, 503, None):
        failed = decide(policy, status_code=code, retry_after=None, last_success_at=None, **common)
        assert failed.outcome is Outcome.RETRYING and not failed.advance
        assert failed.next_attempt_at is not None and failed.failing_since == NOW
    gone = decide(policy, status_code=410, retry_after=None, last_success_at=None, **common)
    assert gone.outcome is Outcome.GONE and gone.disable and not gone.advance


def test_past_the_window_an_endpoint_that_keeps_failing_is_disabled() -> None:
    policy = RetryPolicy(window=timedelta(hours=24))
    since = NOW - timedelta(hours=23, minutes=59)
    args = {"status_code": 500, "retry_after": None, "now": NOW, "failures": 30, "jitter": 0.5}
    dead = decide(policy, failing_since=since, last_success_at=None, **args)
    assert dead.outcome is Outcome.FAILED and dead.disable and not dead.advance
    # Others got through meanwhile: only this event is given up, and the line moves on.
    poison = decide(policy, failing_since=since, last_success_at=NOW, **args)
    assert poison.outcome is Outcome.FAILED and poison.disable is None and poison.advance


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.31.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "2001:0::5",
        "224.0.0.1",
        "255.255.255.255",
    ],
)
def test_inside_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_names_private_hosts_and_ranges() -> None:
    policy = AddressPolicy.from_entries(["eoc.local", "10.20.0.0/16"])
    eoc = policy.check_url("https://eoc.local/hook")
    assert policy.check_addresses(eoc, [ipaddress.ip_address("192.168.1.5")])
    gis = policy.check_url("https://gis.local/")
    assert policy.check_addresses(gis, [ipaddress.ip_address("10.20.3.4")])
    with pytest.raises(Invalid, match="private"):
        policy.check_addresses(gis, [ipaddress.ip_address("10.21.3.4")])
    # One inside address among public ones is enough to refuse.
    with pytest.raises(Invalid, match="loopback"):
        AddressPolicy().check_addresses(
            gis, [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.1")]
        )
