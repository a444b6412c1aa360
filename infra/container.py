"""The composition root: builds every client from the settings, and nothing else does."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from nats.aio.client import Client
from nats.js import JetStreamContext
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from domain.app import Smq
from domain.base import SYSTEM
from domain.errors import Conflict
from domain.provisioning import Layout
from infra import bus, esstore, layout, sql
from infra.ca import CertificateAuthority
from infra.embedded import Embedded
from infra.files import write_once
from infra.freshness import Freshness
from infra.groupcommit import GroupCommitter
from infra.hashing import Argon2Hasher
from infra.layout import ProvisionSettings
from infra.settings import Settings
from infra.store import Store
from infra.tokens import Tokens
from projections.access import AccessView
from projections.bootstrap import configs_view
from projections.certs import certs_view
from projections.channels import channels_view
from projections.connections import connections_view
from projections.events import events_view
from projections.lookups import ThingKeysView
from projections.provisionings import provisionings_view
from projections.sealing import Sealer
from projections.sqlview import SqlView
from projections.things import things_view
from projections.users import users_view
from workers.saga import SagaRunner

log = logging.getLogger("smq")

# Views kept in Redis: their positions live in Redis too (``{prefix}pos:{view}``).
REDIS_VIEWS: tuple[str, ...] = (ThingKeysView.name, AccessView.name)


def store_env(database_url: str | None) -> dict[str, str]:
    """The eventsourcing library's settings for our event store."""
    if not database_url:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    info = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": esstore.TOPIC,
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        # Connections kept open (min) and opened on demand up to 20: a scaled-out deployment
        # runs many processes, most of which (relay, projector, saga) need one or two.
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
    }


def kept_secret(settings: Settings, configured: str | None, file: str, make: Callable[[], str]) -> str:
    """A configured key, or one generated once into the data folder (readable by us alone)."""
    if configured:
        return configured
    path = Path(settings.data_dir) / file
    if path.exists():
        return path.read_text().strip()
    return write_once(path, make().encode()).decode().strip()


def jwt_secret(settings: Settings) -> str:
    """The configured signing key, or one generated once into the data folder."""
    return kept_secret(settings, settings.jwt_secret, "jwt.key", lambda: secrets.token_urlsafe(48))


def bootstrap_key(settings: Settings) -> bytes:
    """The AES key of the secure bootstrap (as upstream: the key string's bytes)."""
    key = kept_secret(settings, settings.bootstrap_key, "bootstrap.key", lambda: secrets.token_hex(16))
    if len(key.encode()) not in (16, 24, 32):
        raise ValueError("SMQ_BOOTSTRAP_ENCRYPT_KEY must be 16, 24 or 32 bytes")
    return key.encode()


def bus_sealer(settings: Settings) -> Sealer:
    """What seals the credentials of events on the bus and opens them for the views."""
    return Sealer(kept_secret(settings, settings.bus_key, "bus.key", lambda: secrets.token_urlsafe(32)))


def open_app(database_url: str) -> Smq:
    """The application over the event store. Its recorder creates (or replaces) the store's
    tables and functions on every start; roles starting at once would race on that DDL
    ("tuple concurrently updated"), so it runs under the views' schema lock (``sql.migrate``)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(7423001)")  # released when the session closes
        return Smq(env=store_env(database_url), hasher=Argon2Hasher())


@dataclass
class Container:
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
    provision: ProvisionSettings = field(default_factory=lambda: ProvisionSettings(Layout()))
    saga: SagaRunner = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings) -> Container:
        embedded = Embedded()
        try:
            data = Path(settings.data_dir)
            database_url = settings.database_url or embedded.start_postgres(data)
            nats_url = settings.nats_url or embedded.start_nats(data)
            redis_url = settings.redis_url or embedded.start_redis(data)
            app = open_app(database_url)
            app.saver = GroupCommitter(app.record)
            store = Store(app, settings.store_workers, bus_sealer(settings))
            pool = await sql.open_pool(database_url)
            redis = Redis.from_url(redis_url)
            await redis.ping()
            nc = await bus.connect(nats_url, "smq")
            js = nc.jetstream(timeout=10)
            # A short bound on each lookup: a cluster electing a leader answers nothing, and
            # ensure_stream tries again (saying so) until it does.
            await bus.ensure_stream(nc.jetstream(timeout=3), settings.stream, settings.events_subject,
                                    settings.stream_max_age, settings.stream_max_bytes,
                                    settings.stream_replicas)
        except BaseException:
            embedded.stop()
            raise
        tokens = Tokens(jwt_secret(settings), settings.access_ttl, settings.refresh_ttl)
        freshness = Freshness(redis, pool, settings.redis_prefix, settings.rw_wait, REDIS_VIEWS)
        c = cls(settings, database_url, nats_url, redis_url, store, pool, redis, nc, js, tokens,
                freshness, embedded if embedded.procs or embedded.pg else None)
        c.ca = CertificateAuthority.load_or_create(Path(settings.data_dir), settings.ca_cert_file,
                                                   settings.ca_key_file)
        c.bootstrap_key = bootstrap_key(settings)
        c.provision = layout.load(settings)
        c.saga = SagaRunner(store, c.ca, whole=settings.provision_at_once)
        await c.seed_admin()
        return c

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

    def sql_views(self) -> list[SqlView]:
        return [users_view(self.pool), things_view(self.pool), channels_view(self.pool),
                events_view(self.pool), configs_view(self.pool), certs_view(self.pool),
                provisionings_view(self.pool),
                connections_view(self.pool)]

    def thing_keys(self) -> ThingKeysView:
        """The Redis view of secrets (one per container: it holds its registered scripts)."""
        if "thing_keys" not in self.extras:
            self.extras["thing_keys"] = ThingKeysView(self.redis, self.settings.redis_prefix)
        return self.extras["thing_keys"]

    def access(self) -> AccessView:
        """The Redis view of connections (one per container, as ``thing_keys``)."""
        if "access" not in self.extras:
            self.extras["access"] = AccessView(self.redis, self.settings.redis_prefix)
        return self.extras["access"]

    def views(self) -> list[Any]:
        return [*self.sql_views(), self.thing_keys(), self.access()]

    async def close(self) -> None:
        try:
            if not self.nc.is_closed:
                await self.nc.drain()
        except Exception:  # noqa: BLE001 - closing anyway
            log.debug("nats drain failed", exc_info=True)
        await self.redis.aclose()
        await self.pool.close()
        self.store.close()
        if self.embedded:
            self.embedded.stop()
