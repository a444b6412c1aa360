"""`smq serve` as a process tree: /metrics shows the workers' (parent's) metrics beside the
API child's, and /health in the child sees a view failing in the parent."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import Settings
from tests.conftest import env_of
from tests.e2e.test_serve import _call, _start, _stop
from tests.integration.test_metrics import _value
from tests.integration.test_view_failures import CURE, FAULT


def _metrics(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        return r.read().decode()


def _until(what: str, check, bound: float = 40.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + bound
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} not reached within {bound}s"
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_serve_metrics_and_health_cover_every_process(settings: Settings) -> None:
    proc, where = _start(Path(settings.data_dir), env_of(settings))
    try:
        base = where["http"]
        st, user = _call(base, "POST", "/users", {"name": "m", "credentials": {
            "identity": "metrics@example.com", "secret": "12345678"}})
        assert st == 201, user

        def caught_up() -> str | None:
            text = _metrics(base)
            ok = (_value(text, "smq_store_position", {"process": "workers"}) >= 2
                  and 'smq_view_lag_positions{process="workers",view="users"} 0.0' in text)
            return text if ok else None
        text = _until("the workers' view lags at /metrics", caught_up)
        # The parent's roles (relay, projector) and the child's (HTTP), each labelled.
        assert 'smq_relay_lag_positions{process="workers"}' in text
        assert 'smq_view_stalled{process="workers",view="users"} 0.0' in text
        assert _value(text, "smq_http_requests_total", {"process": "api", "route": "/users"}) >= 1
        assert _value(text, "process_resident_memory_bytes", {"process": "workers"}) > 0
        assert _value(text, "process_resident_memory_bytes", {"process": "api"}) > 0
        # No family twice (Prometheus refuses the page), and the page parses.
        types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE "))
        assert not [name for name, n in types.items() if n > 1]
        assert list(text_string_to_metric_families(text))

        # A view failing in the parent is seen by /health in the child.
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute(FAULT)  # type: ignore[arg-type]
        st, boom = _call(base, "POST", "/users", {"name": "boom", "credentials": {
            "identity": "boom@example.com", "secret": "12345678"}})
        assert st == 201, boom

        def failing() -> str | None:
            st, body = _call(base, "GET", "/health")
            return body["checks"]["views"] if st == 503 and "users at" in body["checks"]["views"] else None
        views = _until("/health naming the failing view", failing)
        assert "behind: failing on user.created" in views and "boom refused" in views, views
        text = _metrics(base)
        assert _value(text, "smq_view_stalled", {"process": "workers", "view": "users"}) == 1
        assert _value(text, "smq_view_lag_positions", {"process": "workers", "view": "users"}) >= 1

        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute(CURE)  # type: ignore[arg-type]
        _until("/health back to 200", lambda: _call(base, "GET", "/health")[0] == 200)
        text = _metrics(base)
        assert _value(text, "smq_view_stalled", {"process": "workers", "view": "users"}) == 0
    finally:
        assert _stop(proc) == 0
