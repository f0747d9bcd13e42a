"""RELIABILITY D10: receivers that answer 500, time out, answer 429 with Retry-After, 410
and 302, on a real HTTP server on loopback (no mocked transport).

Retries back off, Retry-After is honoured, 410 disables the endpoint, a redirect is a
failure whose target is never called, every retryable case ends delivered (100%), each
incident's events arrive in seq order, and every request verifies with the
`standardwebhooks` package (an independent implementation of the spec)."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from tests.support import World
from tests.webhooks.conftest import API, declare, register
from tests.webhooks.receiver import Receiver


def _first_two_fail(seen: int) -> tuple[int, dict[str, str], float]:
    return (500, {}, 0.0) if seen < 2 else (200, {}, 0.0)


def _first_times_out(seen: int) -> tuple[int, dict[str, str], float]:
    return (200, {}, 1.5) if seen == 0 else (200, {}, 0.0)


def _first_rate_limited(seen: int) -> tuple[int, dict[str, str], float]:
    return (429, {"Retry-After": "1"}, 0.0) if seen == 0 else (200, {}, 0.0)


def _gone(_: int) -> tuple[int, dict[str, str], float]:
    return 410, {}, 0.0


def _redirect(_: int) -> tuple[int, dict[str, str], float]:
    return 302, {"Location": "/redirect-target"}, 0.0


RETRYABLE = ("/error500", "/timeout", "/ratelimited")


def _wait(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_failing_receivers_are_retried_until_delivered_in_order_and_410_disables(
    hook_client: TestClient, world: World, receiver: Receiver
) -> None:
    receiver.behaviours.update(
        {
            "/error500": _first_two_fail,
            "/timeout": _first_times_out,
            "/ratelimited": _first_rate_limited,
            "/gone": _gone,
            "/redirect": _redirect,
        }
    )
    endpoints = {
        path: register(hook_client, world, receiver.url(path))
        for path in (*RETRYABLE, "/gone", "/redirect")
    }
    incidents = [declare(hook_client, world, f"flood {n}", requests=3) for n in range(2)]
    expected = 2 * 4  # each incident: declared + 3 requests raised

    def delivered(path: str) -> set[str]:
        return {r.event_id for r in receiver.at(path) if r.status == 200}

    assert _wait(lambda: all(len(delivered(p)) == expected for p in RETRYABLE), 30), {
        p: len(delivered(p)) for p in RETRYABLE
    }
    manager = world.headers("manager", "nairobi")
    assert _wait(
        lambda: (
            hook_client.get(f"{API}/webhooks/{endpoints['/gone']['id']}", headers=manager).json()[
                "status"
            ]
            == "disabled"
        ),
        10,
    )
    time.sleep(1.0)  # the redirecting receiver keeps being retried meanwhile

    # Signatures verify with an independent implementation, with the secret shown once.
    for path, endpoint in endpoints.items():
        verifier = Webhook(endpoint["secret"])
        for got in receiver.at(path):
            verifier.verify(got.body, got.headers)
            assert got.event_id == got.event["event_id"]

    # Order per incident: each event's first successful arrival came in seq order (a
    # timed-out attempt the receiver still took makes a duplicate, which it dedups by id).
    duplicates = 0
    for path in RETRYABLE:
        seqs: dict[int, list[int]] = defaultdict(list)
        first: set[str] = set()
        for got in receiver.at(path):
            if got.status != 200:
                continue
            if got.event_id in first:
                duplicates += 1
                continue
            first.add(got.event_id)
            seqs[got.event["incident_id"]].append(got.event["seq"])
        assert sorted(seqs) == sorted(incidents)
        for incident_id, order in seqs.items():
            assert order == [1, 2, 3, 4], (path, incident_id, order)

    # Backoff: the 500s of one event are spaced by at least half the base delay (jitter).
    by_event: dict[str, list[float]] = defaultdict(list)
    for got in receiver.at("/error500"):
        by_event[got.event_id].append(got.at)
    gaps = [b - a for times in by_event.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1, gaps

    # Retry-After: 1 s between the 429 and the next try of the same event.
    by_event.clear()
    for got in receiver.at("/ratelimited"):
        by_event[got.event_id].append(got.at)
    waits = [times[1] - times[0] for times in by_event.values()]
    assert min(waits) >= 0.95, waits

    # 410: disabled with the reason shown, and nothing sent after it. Incidents are
    # delivered side by side, so the head of each may already be on its way when the first
    # 410 comes back: one attempt per incident at most, all of them together.
    gone = hook_client.get(f"{API}/webhooks/{endpoints['/gone']['id']}", headers=manager).json()
    assert gone["status"] == "disabled" and "410" in gone["status_reason"]
    gone_at = [got.at for got in receiver.at("/gone")]
    assert 1 <= len(gone_at) <= len(incidents), gone_at
    assert max(gone_at) - min(gone_at) < 0.5, gone_at

    # 302: a failure, retried, and the target never called.
    assert receiver.at("/redirect-target") == []
    redirects = receiver.at("/redirect")
    assert len(redirects) >= 2
    log = hook_client.get(
        f"{API}/webhooks/{endpoints['/redirect']['id']}/attempts", headers=manager
    ).json()
    assert {a["status_code"] for a in log["data"]} == {302}
    assert {a["outcome"] for a in log["data"]} == {"retrying"}
    assert all(a["next_retry_at"] for a in log["data"])

    # The timeout is logged as such.
    slow = hook_client.get(
        f"{API}/webhooks/{endpoints['/timeout']['id']}/attempts",
        headers=manager,
        params={"outcome": "retrying"},
    ).json()
    assert slow["count"] >= expected and all("no answer" in a["error"] for a in slow["data"])

    total = {p: len(receiver.at(p)) for p in (*RETRYABLE, "/gone", "/redirect")}
    print(
        f"\nD10 at {datetime.now(UTC):%H:%M:%S}: {expected} events per endpoint; requests "
        f"received {total}; delivered {[len(delivered(p)) for p in RETRYABLE]} of {expected} "
        f"(100%), {duplicates} duplicates (timed out, then taken); smallest 500 backoff "
        f"gap {min(gaps):.2f} s; Retry-After waits "
        f"{min(waits):.2f}-{max(waits):.2f} s; redirect target hits 0"
    )
