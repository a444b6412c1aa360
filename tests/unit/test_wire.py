"""How answers render times: UTC, microseconds, a trailing Z, whatever zone the value has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from command_api.errors import BadRequest
from command_api.wire import integer, timestamp


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
    (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.000000Z"),
    (datetime(2026, 7, 2, 3, 4, 5, 7, tzinfo=ZoneInfo("Europe/Paris")), "2026-07-02T01:04:05.000007Z"),
    (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59.000000Z"),
])
def test_timestamps_are_utc_with_microseconds(value: datetime, text: str) -> None:
    assert timestamp(value) == text
    assert timestamp(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(len(text), "0")


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("5", 5), ("007", 7), ("-3", -3), ("9" * 19, 10**19 - 1)])
def test_query_integers_of_ascii_digits(raw: str, value: int) -> None:
    assert integer(raw, "n", -(10**20), 10**20) == value


@pytest.mark.parametrize(("raw", "says"), [
    (" 5", "n must be an integer"), ("5 ", "n must be an integer"), ("\u0663", "n must be an integer"),
    ("1_0", "n must be an integer"), ("+5", "n must be an integer"), ("", "n must be an integer"),
    ("0x10", "n must be an integer"), ("5\n", "n must be an integer"),
    ("9" * 20, "n must be between 0 and 100"), ("9" * 5000, "n must be between 0 and 100"),
    ("101", "n must be between 0 and 100"), ("-1", "n must be between 0 and 100"),
])
def test_anything_else_is_400_naming_the_parameter(raw: str, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        integer(raw, "n", 0, 100)
    assert caught.value.message == says
