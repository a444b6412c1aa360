"""The catalogue of views: each read model declared once.

A view is named here with its store (``sql`` or ``redis``), its tables (SQL) or key patterns
(Redis, after the prefix), the aggregates whose events it follows, the events it handles
(keyed by the event classes in its module) and those it ignores, and a factory that builds it
over a storage (a pool; a Redis client and key prefix). The composition root's views, the
projector, the replay, the planner's statistics, read-your-writes (``infra.freshness``) and
/health all read this list; none keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from domain.bootstrap import Config
from domain.certs import CertBook
from domain.channels import Channel
from domain.connections import Connection
from domain.policies import Policy
from domain.provisioning import Provisioning
from domain.things import Thing
from domain.users import User
from infra.fastredis import ScriptHost
from projections import (
    access,
    bootstrap,
    certs,
    channels,
    connections,
    events,
    lookups,
    provisionings,
    things,
    users,
)
from projections.redisview import RedisView, position_key
from projections.sqlview import ANY, SqlView

# Tables of projections/schema.sql that are no view's own: the views' bookkeeping.
BOOKKEEPING = ("view_positions", "view_status", "redis_views", "relay_checkpoint")


@dataclass(frozen=True)
class View:
    """One view as the rest of the system knows it."""

    name: str
    store: Literal["sql", "redis"]
    # The aggregates whose events it follows (None: every event, as the audit log).
    aggregates: tuple[type, ...] | None
    handles: tuple[Any, ...]       # the event classes it handles (ANY: every event)
    build: Callable[..., Any]      # sql: (pool) -> SqlView; redis: (redis, prefix, scripts) -> RedisView
    tables: tuple[str, ...] = ()   # sql: its tables
    patterns: tuple[str, ...] = ()  # redis: its keys' patterns, after the prefix
    ignores: tuple[type, ...] = ()  # events of its aggregates it has nothing to do with

    @property
    def redis(self) -> bool:
        return self.store == "redis"

    def position_key(self, prefix: str) -> str:
        """Where a Redis view's position lives (a SQL view's is its row of view_positions)."""
        if not self.redis:
            raise LookupError(f"the SQL view {self.name} keeps its position in view_positions")
        return position_key(prefix, self.name)

    def key_prefixes(self) -> tuple[str, ...]:
        """Its key patterns as prefixes (``thingkey:*`` -> ``thingkey:``)."""
        return tuple(p.removesuffix("*") for p in self.patterns)

    def over_sql(self, pool: AsyncConnectionPool) -> SqlView:
        assert not self.redis, self.name
        view: SqlView = self.build(pool)
        return view

    def over_redis(self, redis: Redis, prefix: str, scripts: ScriptHost | None = None) -> RedisView:
        """The view over a Redis client and key prefix (its hot scripts called on ``scripts``
        when given: ``infra.fastredis``)."""
        assert self.redis, self.name
        view: RedisView = self.build(redis, prefix, scripts)
        return view


def _sql(module: Any, build: Callable[[AsyncConnectionPool], SqlView], aggregates: tuple[type, ...] | None,
         ignores: tuple[type, ...] = ()) -> View:
    return View(module.NAME, "sql", aggregates, tuple(module.HANDLERS), build, tables=module.TABLES,
                ignores=ignores)


# In the order the views are built and applied (the composition root's order).
VIEWS: tuple[View, ...] = (
    _sql(users, users.users_view, (User,)),
    _sql(things, things.things_view, (Thing,)),
    _sql(channels, channels.channels_view, (Channel,)),
    _sql(events, events.events_view, None),
    _sql(bootstrap, bootstrap.configs_view, (Config,)),
    _sql(certs, certs.certs_view, (CertBook,)),
    _sql(provisionings, provisionings.provisionings_view, (Provisioning,)),
    # It follows things and channels for their removal only: a removed one takes its rows along.
    _sql(connections, connections.connections_view, (Connection, Policy, Thing, Channel),
         ignores=(Thing.Created, Thing.Updated, Thing.TagsUpdated, Thing.SecretChanged, Thing.Enabled,
                  Thing.Disabled, Thing.Shared, Channel.Created, Channel.Updated, Channel.Enabled,
                  Channel.Disabled, Channel.Shared)),
    View(lookups.NAME, "redis", (Thing,), lookups.HANDLES, lookups.ThingKeysView,
         patterns=lookups.ThingKeysView.patterns,
         ignores=(Thing.Updated, Thing.TagsUpdated, Thing.Shared)),
    View(access.NAME, "redis", (Connection, Channel), tuple(access.HANDLERS), access.AccessView,
         patterns=access.AccessView.patterns,
         ignores=(Connection.Created, Channel.Updated, Channel.Shared)),
)
BY_NAME: dict[str, View] = {v.name: v for v in VIEWS}
SQL_VIEWS: tuple[View, ...] = tuple(v for v in VIEWS if not v.redis)
REDIS_VIEWS: tuple[View, ...] = tuple(v for v in VIEWS if v.redis)
REDIS_VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in REDIS_VIEWS)


def view(name: str) -> View:
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"no view {name!r} in the catalogue") from None


def tables_of(names: Any) -> list[str]:
    """The tables of the SQL views named (a Redis view has none)."""
    return [t for n in names if n in BY_NAME for t in BY_NAME[n].tables]


def every_event(v: View) -> bool:
    return ANY in v.handles


def redis_positions(prefix: str) -> dict[str, str]:
    """Each Redis view's position key (read-your-writes and /health read them)."""
    return {v.name: v.position_key(prefix) for v in REDIS_VIEWS}
