"""Prometheus metrics of the live path."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTED = Gauge("aidmesh_ws_connections", "Websocket connections open on this replica")
EVENTS_FANNED_OUT = Counter(
    "aidmesh_events_fanned_out_total", "Event deliveries queued to websocket connections"
)
FRAMES_WRITTEN_DIRECT = Counter(
    "aidmesh_ws_frames_written_direct_total",
    "Deliveries written to the socket as the event's ready-made frame (the rest go through ASGI)",
)
EVENTS_RECEIVED = Counter("aidmesh_bus_events_received_total", "Events received from the bus")
GAP_FILLED = Counter(
    "aidmesh_gap_filled_events_total", "Events fetched from the database to fill a gap"
)
FANOUT_LATENCY = Histogram(
    "aidmesh_fanout_latency_seconds",
    "From the event's commit time to its hand-off to the sockets of this replica",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SLOW_CONSUMERS = Counter(
    "aidmesh_ws_slow_consumers_dropped_total", "Connections closed because they could not keep up"
)
BUS_CONNECTED = Gauge(
    "aidmesh_bus_connected", "1 while this replica is subscribed to the bus, 0 while it retries"
)
BUS_RECONNECTS = Counter(
    "aidmesh_bus_reconnects_total",
    "Times the bus subscription was lost and made again (each one fills gaps from the database)",
)
