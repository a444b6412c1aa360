"""The composition root: builds every client from the settings, and nothing else does."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import nats.errors
import psycopg
from eventsourcing import persistence as es_persistence
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.app import Smq
from domain.base import SYSTEM
from domain.errors import Conflict
from infra import bus, esstore, layout, mqtt, sql, startup
from infra.admission import Admission
from infra.ca import CertificateAuthority
from infra.embedded import Embedded
from infra.fastredis import Scripts
from infra.freshness import Freshness
from infra.groupcommit import GroupCommitter
from infra.hashing import Argon2Hasher
from infra.layout import ProvisionSettings
from infra.mqtt import MqttAuth
from infra.settings import Settings
from infra.store import Store
from infra.tokens import Tokens
from projections import catalogue
from projections.access import AccessView
from projections.lookups import ThingKeysView
from projections.redisview import RedisView
from projections.sqlview import SqlView
from service.keys import bootstrap_key, bus_sealer, jwt_secret
from workers.provisioning import SagaRunner

log = logging.getLogger("smq")

# A server not there (yet): the start waits for it (infra.startup.reach), any other error ends it.
PG_DOWN: tuple[type[BaseException], ...] = (OSError, psycopg.OperationalError, PoolTimeout,
                                            es_persistence.OperationalError, es_persistence.InterfaceError)
REDIS_DOWN: tuple[type[BaseException], ...] = (OSError, RedisConnectionError, RedisTimeoutError)
NATS_DOWN: tuple[type[BaseException], ...] = (OSError, nats.errors.Error)
JETSTREAM_DOWN: tuple[type[BaseException], ...] = (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                                                   ServiceUnavailableError)


def _embedded(what: str, start: Callable[[Path], str], data: Path) -> str:
    """An embedded server's start (synchronous, on the loop's thread: SIGTERM interrupts it)."""
    with startup.interruptible(f"starting the embedded {what}"):
        log.info("start: starting the embedded %s in %s", what, data)
        return start(data)


async def _connect_nats(url: str) -> Client:
    """A server of the list first answers as NATS, then the client connects (whose own first
    connect would otherwise retry a dead server every half second, logging each try)."""
    await startup.nats_answers(url)
    return await bus.connect(url, "smq")


# Each role's share of its process's PostgreSQL connections at most: (the event store's pool,
# the views' pool). A process's pools are the sum of its roles' shares, unless
# SMQ_PG_STORE_POOL / SMQ_PG_VIEWS_POOL set them; the relay holds two more (its LISTEN and its
# lease). The API's store share is the store's thread count (SMQ_STORE_WORKERS, 16) and the
# group committer's own thread: no thread waits for a connection. docs/deploy.md adds them up for compose.yaml.
POOL_SHARES: dict[str, tuple[int, int]] = {"api": (17, 10), "relay": (2, 2), "projector": (2, 4),
                                           "saga": (2, 2), "authz": (1, 2)}


def pool_sizes(settings: Settings, roles: Iterable[str] | None = None) -> tuple[int, int]:
    """The most connections of the event store's pool and of the views' pool of a process
    running ``roles`` (None: every role)."""
    shares = [POOL_SHARES[r] for r in (POOL_SHARES if roles is None else roles) if r in POOL_SHARES]
    store = sum(s for s, _ in shares) or 2
    views = sum(v for _, v in shares) or 2
    return settings.pg_store_pool or store, settings.pg_views_pool or views


def store_env(database_url: str | None, pool: int = 4) -> dict[str, str]:
    """The eventsourcing library's settings for our event store, whose pool keeps up to two
    connections open and opens more on demand up to ``pool``."""
    if not database_url:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    info = conninfo_to_dict(database_url)
    kept = min(2, pool)
    return {
        "PERSISTENCE_MODULE": esstore.TOPIC,
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(kept),
        "POSTGRES_MAX_OVERFLOW": str(pool - kept),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
    }


def mqtt_of(settings: Settings, embedded: MqttAuth | None) -> tuple[Settings, MqttAuth | None]:
    """The MQTT authorization in force (the embedded NATS's, else the settings'), and the
    settings with ``mqtt_url`` filled from the embedded listener when not set."""
    if embedded is None:
        return settings, mqtt.from_settings(settings)
    if settings.mqtt_url:
        return settings, replace(embedded, url=settings.mqtt_url)
    return replace(settings, mqtt_url=embedded.url), embedded


def open_app(database_url: str, pool: int = 4, group_commit: bool = False) -> Smq:
    """The application over the event store. Its recorder creates (or replaces) the store's
    tables and functions on every start; roles starting at once would race on that DDL
    ("tuple concurrently updated"), so it runs under the views' schema lock (``sql.migrate``).
    Bounded: the connection within 5 s, the lock within 30 s (a PostgreSQL that does not answer,
    or a start that holds the lock for good, is an error the start retries and logs)."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("set lock_timeout = '30s'")
        conn.execute("select pg_advisory_lock(7423001)")  # released when the session closes
        return Smq(env=store_env(database_url, pool), hasher=Argon2Hasher(),
                   saver=GroupCommitter if group_commit else None)


class Views:
    """The catalogue's views over a SQL pool, a Redis client and key prefix: a process's
    container has them, and so has the fresh storage a replay rebuilds them in."""

    settings: Settings
    pool: AsyncConnectionPool
    redis: Redis
    scripts: Scripts | None = None  # the hot scripts' lean caller (else they run on ``redis``)
    extras: dict[str, Any]  # the Redis views, made once

    def sql_views(self) -> list[SqlView]:
        """The SQL views of the catalogue, over the views' pool."""
        return [v.over_sql(self.pool) for v in catalogue.SQL_VIEWS]

    def redis_view(self, name: str) -> RedisView:
        """A Redis view of the catalogue (one per container: it holds its registered scripts)."""
        if name not in self.extras:
            self.extras[name] = catalogue.view(name).over_redis(self.redis, self.settings.redis_prefix,
                                                                self.scripts)
        view: RedisView = self.extras[name]
        return view

    def thing_keys(self) -> ThingKeysView:
        """The Redis view of secrets."""
        return cast(ThingKeysView, self.redis_view(ThingKeysView.name))  # the catalogue's class

    def access(self) -> AccessView:
        """The Redis view of connections."""
        return cast(AccessView, self.redis_view(AccessView.name))

    def views(self) -> list[Any]:
        """Every view of the catalogue, in its order."""
        return [*self.sql_views(), *(self.redis_view(v.name) for v in catalogue.REDIS_VIEWS)]


@dataclass
class Container(Views):
    """Every long-lived client of one process."""

    settings: Settings
    database_url: str
    nats_url: str
    redis_url: str
    store: Store
    pool: AsyncConnectionPool
    redis: Redis
    nc: Client
    js: JetStreamContext
    tokens: Tokens
    freshness: Freshness
    embedded: Embedded | None = None
    admin_id: str | None = None
    ca: CertificateAuthority | None = None
    bootstrap_key: bytes = b""
    provision: ProvisionSettings = field(default_factory=layout.guide)
    mqtt: MqttAuth | None = None  # None: MQTT authorization is off (an external NATS without it)
    scripts: Scripts | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings, roles: Iterable[str] | None = None) -> Container:
        """Every client, each server waited for (``infra.startup``: logged with back-off,
        cancellable); a start that fails or is cancelled undoes what it started."""
        embedded = Embedded()
        store_pool, views_pool = pool_sizes(settings, roles)
        async with contextlib.AsyncExitStack() as undo:
            undo.callback(embedded.stop)
            data = Path(settings.data_dir)
            database_url = settings.database_url or _embedded("PostgreSQL", embedded.start_postgres, data)
            ca = CertificateAuthority.load_or_create(data, settings.ca_cert_file, settings.ca_key_file)
            nats_url = settings.nats_url or _embedded("NATS", functools.partial(
                embedded.start_nats, mqtt_port=settings.mqtt_port,
                mqtt_host=settings.mqtt_host or settings.http_host, root=settings.messages_subject,
                things=settings.mqtt_account, tls_ca=ca if settings.mqtt_tls else None), data)
            settings, mqtt_auth = mqtt_of(settings, embedded.mqtt_auth)
            redis_url = settings.redis_url or _embedded("Redis", embedded.start_redis, data)
            pg = startup.redact(database_url)
            app = await startup.reach("PostgreSQL", pg,
                                      lambda: startup.in_thread(open_app, database_url, store_pool, True),
                                      PG_DOWN, bound=None)  # bounded within (connect and lock timeouts)
            store = Store(app, settings.store_workers, bus_sealer(settings))
            undo.callback(store.close)
            pool = await startup.reach("PostgreSQL", pg, lambda: sql.open_pool(database_url, views_pool),
                                       PG_DOWN, bound=30)
            undo.push_async_callback(pool.close)
            redis = Redis.from_url(redis_url)
            undo.push_async_callback(redis.aclose)
            scripts = Scripts(redis)  # the hot scripts' own connections, opened at their first call
            undo.push_async_callback(scripts.aclose)
            await startup.reach("Redis", startup.redact(redis_url), redis.ping, REDIS_DOWN, bound=5)
            nc = await startup.reach("NATS", startup.redact(nats_url), lambda: _connect_nats(nats_url),
                                     NATS_DOWN, bound=30)
            undo.push_async_callback(nc.close)
            js = nc.jetstream(timeout=10)
            await startup.reach(
                "NATS JetStream", f"stream {settings.stream}",
                # A short bound on each lookup: a cluster electing a leader answers nothing,
                # and ensure_stream tries again (saying so) until it does.
                lambda: bus.ensure_stream(nc.jetstream(timeout=3), settings.stream,
                                          settings.events_subject, settings.stream_max_age,
                                          settings.stream_max_bytes, settings.stream_replicas),
                JETSTREAM_DOWN, bound=30)
            startup.set_stage("starting the roles")
            tokens = Tokens(jwt_secret(settings), settings.access_ttl, settings.refresh_ttl)
            freshness = Freshness(redis, pool, settings.redis_prefix, settings.rw_wait,
                                  catalogue.redis_positions(settings.redis_prefix), scripts)
            every_view = [v.name for v in catalogue.VIEWS]
            store.admit(Admission(functools.partial(freshness.lowest, every_view), settings.admission_lag,
                                  settings.rw_wait))
            c = cls(settings, database_url, nats_url, redis_url, store, pool, redis, nc, js, tokens,
                    freshness, embedded if embedded.procs or embedded.pg else None)
            c.mqtt, c.scripts = mqtt_auth, scripts
            c.ca = ca
            c.bootstrap_key = bootstrap_key(settings)
            c.provision = layout.load(settings)
            await c.seed_admin()
            undo.pop_all()  # started: the container owns them now (``close``)
            return c
        raise AssertionError("unreachable")  # pragma: no cover - the block returns or raises

    @functools.cached_property
    def saga(self) -> SagaRunner:
        """The provisioning service (``workers.provisioning``) over this store and CA."""
        return SagaRunner(self.store, self.ca, whole=self.settings.provision_at_once)

    async def seed_admin(self) -> None:
        """Create the configured administrator once; later starts find it by identity."""
        s = self.settings
        if not (s.admin_identity and s.admin_secret):
            return
        app = self.store.app
        user = await self.store.run(app.user_by_identity, s.admin_identity)
        if user is None:
            try:
                done = await self.store.command(app.create_user, s.admin_identity, s.admin_secret,
                                                name="admin", role="admin", meta=SYSTEM)
                user = done.result
                # The administrator's first reads wait for its own creation, like any write.
                await self.freshness.record([str(user.id)], done.position)
            except Conflict:
                user = await self.store.run(app.user_by_identity, s.admin_identity)
        if user is not None:
            if user.role != "admin":
                log.warning("SMQ_ADMIN_IDENTITY names an existing non-admin user; it is not promoted")
            else:
                self.admin_id = str(user.id)

    async def close(self) -> None:
        try:
            if not self.nc.is_closed:
                await self.nc.drain()
        except Exception:  # noqa: BLE001 - closing anyway
            log.debug("nats drain failed", exc_info=True)
        if self.scripts is not None:
            await self.scripts.aclose()
        await self.redis.aclose()
        await self.pool.close()
        self.store.close()
        if self.embedded:
            self.embedded.stop()
