"""The pieces of a loud view that need no server: stalls, causes, and merged metric pages."""

from __future__ import annotations

from collections import Counter

import psycopg

from infra import metrics
from infra.treemetrics import merge
from infra.viewstatus import Stalls, Standing, cause_of, problems


def test_a_view_behind_and_not_moving_is_stalled_after_the_bound() -> None:
    stalls = Stalls(after=30)
    assert not stalls.stalled("users", 10, 0, now=0)      # current: never stalled
    assert not stalls.stalled("users", 10, 5, now=100)    # behind since now
    assert not stalls.stalled("users", 10, 5, now=129)
    assert stalls.stalled("users", 10, 5, now=131)
    assert not stalls.stalled("users", 11, 4, now=132)    # it moved
    assert not stalls.stalled("users", 15, 0, now=200)    # caught up: forgotten
    assert not stalls.stalled("users", 15, 3, now=201)


def test_problems_name_the_view_its_lag_and_cause() -> None:
    found = [Standing("users", 120, 35, None, 121, "user.created", "DataError: no NUL"),
             Standing("things", 155, 0, None, 100, "thing.created", "stale record"),
             Standing("events", 155, 0)]
    assert problems(found, Stalls()) == ["users at 120, 35 behind: failing on user.created at 121: DataError: no NUL"]


def test_a_database_cause_leaves_its_detail_out() -> None:
    exc = psycopg.errors.RaiseException("boom refused\nDETAIL:  the secret row")
    assert cause_of(exc) == "RaiseException: boom refused"


def test_merged_pages_have_each_family_once_labelled_by_process() -> None:
    metrics.http_request("GET", "/users", 200, 0.01)
    metrics.view_lag("users", 3)
    page = metrics.exposition().decode()
    text = merge([("workers", page), ("api", page)]).decode()
    types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE "))
    assert [n for n, c in types.items() if c > 1] == []
    assert 'smq_view_lag_positions{process="workers",view="users"} 3.0' in text
    assert 'smq_view_lag_positions{process="api",view="users"} 3.0' in text
    assert 'smq_http_requests_total{method="GET",process="api",route="/users",status="200"}' in text
