"""The gateway's per-incident order: events that reach the bus the other way round are
put back in order without reading the store; a real gap is read from the store."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from realtime.gateway import QUEUED, Gateway, Scope

INCIDENT = 7


class Store:
    """The events table: every event ever committed, and a count of reads."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.reads = 0

    async def last_seqs(self) -> dict[int, int]:
        return {INCIDENT: self.events[-1]["seq"]} if self.events else {}

    async def events_after(self, incident_id: int, after: int) -> list[dict[str, Any]]:
        self.reads += 1
        return [e for e in self.events if e["incident_id"] == incident_id and e["seq"] > after]

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return set()


class Client:
    def __init__(self) -> None:
        self.scopes: set[Scope] = set()
        self.seqs: list[int] = []

    def deliver(self, incident_id: int, seq: int, text: Any) -> int:
        self.seqs.append(seq)
        return QUEUED


def _event(seq: int) -> dict[str, Any]:
    return {"incident_id": INCIDENT, "seq": seq, "type": "claim.made", "data": {}, "audience": {}}


def _message(event: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "event", "event": event})


async def _gateway(store: Store, grace_s: float) -> tuple[Gateway, Client]:
    gateway = Gateway(store, gap_poll_interval_s=60, reorder_grace_s=grace_s)
    await gateway.start()
    client = Client()
    gateway.subscribe(client, Scope("incident", INCIDENT))  # type: ignore[arg-type]
    return gateway, client


def test_events_swapped_on_the_bus_are_delivered_in_order_without_a_store_read() -> None:
    async def run() -> tuple[list[int], int]:
        store = Store()
        gateway, client = await _gateway(store, grace_s=0.5)
        events = [_event(seq) for seq in range(1, 9)]
        store.events.extend(events)
        # 2 before 1, 5 before 4 before 3, then the rest in order.
        for seq in (2, 1, 5, 4, 3, 6, 8, 7):
            gateway.on_bus_message(_message(events[seq - 1]))
        await asyncio.sleep(0.6)
        await gateway.close()
        return client.seqs, store.reads

    seqs, reads = asyncio.run(run())
    assert seqs == list(range(1, 9))
    assert reads == 0


def test_a_seq_that_never_arrives_is_read_from_the_store_after_the_grace() -> None:
    async def run() -> tuple[list[int], list[int], int]:
        store = Store()
        gateway, client = await _gateway(store, grace_s=0.05)
        events = [_event(seq) for seq in range(1, 5)]
        store.events.extend(events)
        gateway.on_bus_message(_message(events[0]))
        gateway.on_bus_message(_message(events[2]))  # 2 was committed but never published
        gateway.on_bus_message(_message(events[3]))
        before_grace = list(client.seqs)
        await asyncio.sleep(0.3)
        await gateway.close()
        return before_grace, client.seqs, store.reads

    before_grace, seqs, reads = asyncio.run(run())
    assert before_grace == [1]  # 3 and 4 wait for 2 ...
    assert seqs == [1, 2, 3, 4]  # ... which comes from the store, in order, once
    assert reads == 1
