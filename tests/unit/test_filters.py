"""One filter builder for the lists: the same SQL for every list, in one order."""

from __future__ import annotations

from command_api.filters import Filters


def test_no_filter_but_the_status() -> None:
    assert Filters("enabled").sql() == (["status = %s"], ["enabled"])
    assert Filters().sql() == ([], [])
    assert not Filters("disabled").narrowed


def test_every_filter_in_order() -> None:
    where, args = Filters("disabled", "lamp", {"a": [1]}, "x@example.com").sql()
    assert where == ["status = %s", "name = %s", "identity = %s", "metadata @> %s::jsonb"]
    assert args == ["disabled", "lamp", "x@example.com", '{"a":[1]}']
    assert Filters(None, "lamp").narrowed and Filters(metadata={}).narrowed
