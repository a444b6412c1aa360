"""How answers render times: UTC, microseconds, a trailing Z, whatever zone the value has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from command_api.wire import timestamp


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
    (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.000000Z"),
    (datetime(2026, 7, 2, 3, 4, 5, 7, tzinfo=ZoneInfo("Europe/Paris")), "2026-07-02T01:04:05.000007Z"),
    (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59.000000Z"),
])
def test_timestamps_are_utc_with_microseconds(value: datetime, text: str) -> None:
    assert timestamp(value) == text
    assert timestamp(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(len(text), "0")
