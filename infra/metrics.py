"""Prometheus metrics of the process: one registry, and small functions that update it.

The metrics are process-wide (one registry per process, as Prometheus scrapes processes):
several services started in one test process share them, so tests assert on deltas.
Nothing here does I/O; updating a metric is cheap enough for any hot path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)

HTTP_REQUESTS = Counter(
    "smq_http_requests", "HTTP requests answered, by method, route pattern and status.",
    ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "smq_http_request_duration_seconds", "Time to answer an HTTP request, by method and route pattern.",
    ["method", "route"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
STORE_TX_SECONDS = Histogram(
    "smq_store_transaction_seconds",
    "Seconds per event store commit round of the group committer (one transaction, or the"
    " one-by-one retry of a refused batch).", buckets=_LATENCY_BUCKETS, registry=REGISTRY)
STORE_TX_COMMANDS = Histogram(
    "smq_store_transaction_commands", "Commands saved per event store commit round.",
    buckets=_BATCH_BUCKETS, registry=REGISTRY)
STORE_POSITION = Gauge(
    "smq_store_position", "Highest global position this process has seen committed.", registry=REGISTRY)
RELAY_LAG = Gauge(
    "smq_relay_lag_positions", "Events committed to the store but not yet published on the bus.",
    registry=REGISTRY)
VIEW_LAG = Gauge(
    "smq_view_lag_positions", "Events committed to the store but not yet applied to a view.",
    ["view"], registry=REGISTRY)
VIEW_STALLED = Gauge(
    "smq_view_stalled", "1 while a view cannot move (failing on an event, or behind the store and"
    " not moving), else 0.", ["view"], registry=REGISTRY)
VIEW_FAILURES = Counter(
    "smq_view_failures", "Failed attempts to apply events to a view (each retry counts).",
    ["view"], registry=REGISTRY)
RELAY_FAILURES = Gauge(
    "smq_relay_failures", "Publish failures of the relay in a row (0 while it publishes).",
    registry=REGISTRY)
STREAM_REFUSED = Gauge(
    "smq_stream_refused", "1 while the relay refuses the events stream (another store's, or ahead"
    " of this store): it publishes nothing until `smq stream adopt --reset`.", registry=REGISTRY)
SAGA_STEPS = Counter(
    "smq_saga_steps", "Provisioning saga commands, by step and outcome.",
    ["step", "outcome"], registry=REGISTRY)
SAGA_COMPENSATIONS = Counter(
    "smq_saga_compensations", "Provisionings compensated (undone after a failure).", registry=REGISTRY)
STALE_READS = Counter(
    "smq_stale_reads", "Reads answered from a view that had not reached the position the reader"
    " waited for (its own last write, or X-Smq-After) within SMQ_RW_WAIT, by view.",
    ["view"], registry=REGISTRY)
ADMISSION_WAIT = Histogram(
    "smq_admission_wait_seconds", "Time a command was held before it ran because the views were"
    " behind this process's commits by more than SMQ_ADMISSION_LAG (held commands only).",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
ADMISSION_WAITING = Gauge(
    "smq_admission_waiting", "Commands held now, waiting for the views to catch up.", registry=REGISTRY)
ADMISSION_LAG = Gauge(
    "smq_admission_lag_seconds", "Age of this process's oldest commit that not every view holds yet"
    " (what admission control compares with SMQ_ADMISSION_LAG).", registry=REGISTRY)
REDIS_VIEW_REBUILDS = Counter(
    "smq_redis_view_rebuilds", "Rebuilds of a Redis view from the store, begun after Redis lost it.",
    ["view"], registry=REGISTRY)
REDIS_VIEW_REBUILDING = Gauge(
    "smq_redis_view_rebuilding", "1 while a Redis view is rebuilt from the store, else 0.",
    ["view"], registry=REGISTRY)
MQTT_AUTH = Counter(
    "smq_mqtt_auth", "MQTT connects decided by the authorizer (NATS's auth callout), by outcome:"
    " allowed, refused_credentials, refused_disabled, refused_limited, refused_certificate,"
    " refused_client_id, refused_protocol, malformed, error.",
    ["outcome"], registry=REGISTRY)
MQTT_REVOCATION_FAILURES = Counter(
    "smq_mqtt_revocation_failures", "Revocations the MQTT revoker could not carry out, by stage:"
    " event (an event it could not apply), kick (a KICK the server did not answer).",
    ["stage"], registry=REGISTRY)
MQTT_KICKS = Counter(
    "smq_mqtt_kicks", "MQTT sessions closed because their thing's rights ended.", registry=REGISTRY)

_lock = threading.Lock()
_store_pos = 0
_relay_pos: int | None = None
_view_pos: dict[str, int] = {}


_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    """One answered request; ``route`` is the route's pattern, never the raw path (so the
    label sets are bounded, and their children are kept here rather than looked up each time)."""
    children = _http_children.get((method, route, status))
    if children is None:
        children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route))
        _http_children[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def store_transaction(commands: int, seconds: float) -> None:
    """One commit round of the group committer."""
    STORE_TX_COMMANDS.observe(commands)
    STORE_TX_SECONDS.observe(seconds)


def store_position(position: int) -> None:
    """The store has reached ``position`` (a monotonic max); the lags are measured from it."""
    with _lock:
        if position > _store_pos:
            _advance(position)


def relay_failures(count: int) -> None:
    RELAY_FAILURES.set(count)


def stream_refused(refused: bool) -> None:
    STREAM_REFUSED.set(1 if refused else 0)


def relay_position(position: int) -> None:
    """The relay has published every event up to ``position``."""
    global _relay_pos
    with _lock:
        _relay_pos = position
        if position > _store_pos:
            _advance(position)
        RELAY_LAG.set(max(0, _store_pos - position))


def view_position(view: str, position: int) -> None:
    """View ``view`` has applied every event up to ``position``."""
    with _lock:
        _view_pos[view] = position
        if position > _store_pos:
            _advance(position)
        VIEW_LAG.labels(view).set(max(0, _store_pos - position))


def view_stalled(view: str, stalled: bool) -> None:
    """Whether view ``view`` cannot move (see ``workers.projector``)."""
    VIEW_STALLED.labels(view).set(1 if stalled else 0)


def view_failure(view: str) -> None:
    """One failed attempt to apply events to view ``view``."""
    VIEW_FAILURES.labels(view).inc()


def stale_read(view: str) -> None:
    """A read was answered from view ``view`` before it reached the reader's position."""
    STALE_READS.labels(view).inc()


def admission_wait(seconds: float) -> None:
    """A command was held ``seconds`` by admission control."""
    ADMISSION_WAIT.observe(seconds)


def admission_waiting(delta: int) -> None:
    ADMISSION_WAITING.inc(delta)


def admission_lag(seconds: float) -> None:
    ADMISSION_LAG.set(seconds)


def relay_lag(positions: int) -> None:
    """Set the relay's lag directly, for a caller that measured it itself."""
    RELAY_LAG.set(max(0, positions))


def view_lag(view: str, positions: int) -> None:
    """Set a view's lag directly, for a caller that measured it itself."""
    VIEW_LAG.labels(view).set(max(0, positions))


def _advance(position: int) -> None:
    """Move the store's position and every lag measured from it (under the lock)."""
    global _store_pos
    _store_pos = position
    STORE_POSITION.set(position)
    if _relay_pos is not None:
        RELAY_LAG.set(max(0, position - _relay_pos))
    for view, pos in _view_pos.items():
        VIEW_LAG.labels(view).set(max(0, position - pos))


def saga_step(step: str, outcome: str) -> None:
    """A saga command ended: ``outcome`` is ``ok``, ``failed`` or ``compensated``."""
    SAGA_STEPS.labels(step, outcome).inc()


_STEPS_OK: dict[str, Any] = {}


def saga_steps_ok(steps: Iterable[str]) -> None:
    """Each of ``steps`` ended ``ok`` (a provisioning made whole: one count each, as the steps
    one by one count; their counters looked up once, not on every provisioning)."""
    for step in steps:
        child = _STEPS_OK.get(step)
        if child is None:
            child = _STEPS_OK[step] = SAGA_STEPS.labels(step, "ok")
        child.inc()


def saga_compensation() -> None:
    """A provisioning was compensated to its end."""
    SAGA_COMPENSATIONS.inc()


def exposition() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)


def forget_positions() -> None:
    """Start the position gauges afresh (a new store in this process, as tests make)."""
    global _store_pos, _relay_pos
    with _lock:
        _store_pos, _relay_pos = 0, None
        _view_pos.clear()
        STORE_POSITION.set(0)
        RELAY_LAG.set(0)
        VIEW_LAG.clear()
        VIEW_STALLED.clear()
