"""The catalogue of views is complete: every event of the aggregates a view follows is handled
or ignored by it, and every view table of projections/schema.sql belongs to a view."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from eventsourcing.domain import DomainEvent, _created_event_classes

import domain.app  # noqa: F401 - every aggregate defined
from domain.things import Thing
from projections import catalogue
from projections.envelope import from_stored, name_of
from projections.sqlview import ANY

SCHEMA = Path(catalogue.__file__).with_name("schema.sql")


def events_of(aggregate: type) -> set[type]:
    """The event classes an aggregate records (an inherited ``Created`` it never uses aside)."""
    created = set(_created_event_classes.get(aggregate, ()))
    found = set()
    for name, cls in vars(aggregate).items():
        if not (inspect.isclass(cls) and issubclass(cls, DomainEvent)) or name == "Event":
            continue
        if name == "Created" and cls not in created:
            continue
        found.add(cls)
    return found


@pytest.mark.parametrize("view", [v for v in catalogue.VIEWS if v.aggregates is not None],
                         ids=lambda v: v.name)
def test_every_event_of_a_view_s_aggregates_is_handled_or_ignored(view: catalogue.View) -> None:
    wanted = {cls for agg in view.aggregates or () for cls in events_of(agg)}
    assert wanted, view.name
    decided = set(view.handles) | set(view.ignores)
    assert not wanted - decided, f"{view.name}: no handler for {sorted(c.__qualname__ for c in wanted - decided)}"
    assert not set(view.handles) & set(view.ignores)
    # What it handles or ignores is an event of its aggregates, nothing else.
    assert decided <= wanted, f"{view.name}: {sorted(c.__qualname__ for c in decided - wanted)}"


def test_the_audit_log_takes_every_event() -> None:
    assert catalogue.view("events").handles == (ANY,)


def test_the_catalogue_lists_every_view_table_of_the_schema() -> None:
    created = set(re.findall(r"create table if not exists (\w+)", SCHEMA.read_text()))
    listed = [t for v in catalogue.SQL_VIEWS for t in v.tables]
    assert len(listed) == len(set(listed))  # no table in two views
    assert set(listed) | set(catalogue.BOOKKEEPING) == created
    assert not set(listed) & set(catalogue.BOOKKEEPING)


def test_views_are_named_once_and_each_store_says_where_its_data_lives() -> None:
    names = [v.name for v in catalogue.VIEWS]
    assert len(names) == len(set(names))
    for v in catalogue.VIEWS:
        assert bool(v.tables) == (v.store == "sql") and bool(v.patterns) == (v.store == "redis"), v.name
    assert catalogue.redis_positions("p:") == {"thing_keys": "p:pos:thing_keys", "access": "p:pos:access"}
    with pytest.raises(LookupError):
        catalogue.view("things").position_key("p:")


def test_handlers_are_named_as_the_bus_names_the_events() -> None:
    # The same function names a handler's key and a stored event's envelope (its subject).
    env = from_stored(1, "domain.things:Thing.TagsUpdated", "id", 2,
                      {"timestamp": "2024-01-01T00:00:00Z", "tags": []})
    assert (env.aggregate, env.type) == name_of(Thing.TagsUpdated) == ("thing", "tags_updated")
    assert env.subject("events") == "events.thing.tags_updated"
    view = catalogue.view("things").over_sql(None)  # type: ignore[arg-type]
    assert ("thing", "tags_updated") in view.handlers
