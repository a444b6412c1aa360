"""A running service: the container plus the roles asked for, with a clean stop."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from command_api.app import create_app
from command_api.ratelimit import Failures
from command_api.server import ApiRunner
from infra import bus
from infra.lease import Lease
from infra.mqtt import ISSUER_SEED_FILE, host_port
from infra.settings import Settings
from infra.startup import redact
from infra.streamowner import owner_of
from infra.treemetrics import PARENT_METRICS, ParentMetrics
from projections import access, catalogue
from projections.redisview import RedisView
from projections.statistics import Statistics
from service.apiprocs import ApiProcesses, inherited_socket, listen_failure
from service.container import Container
from workers.authorizer import Authorizer
from workers.clientids import ClientIds
from workers.projector import Projector, ViewRunner
from workers.redisguard import RedisGuard
from workers.relay import Relay
from workers.revoker import Revoker, Sessions
from workers.saga import SagaWorker
from workers.thingaccess import cert_things, certificate, channel_things, thing_access

log = logging.getLogger("smq")
ALL_ROLES = frozenset({"api", "relay", "projector", "saga", "authz"})
# The relay's bound on a stream lookup (its publishes have theirs: ``Relay.ack_wait``, 2 s).
RELAY_LOOKUP = 0.75
GUARD_START_WAIT = 10.0  # a Redis view lost while the service was down: rebuilt before the API


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker %s ended by an exception", task.get_name(), exc_info=task.exception())


def mqtt_env(c: Container) -> dict[str, str]:
    """The MQTT settings in force, for the API children (the embedded NATS's are not theirs to
    read from the data folder: they are told, as of an external NATS)."""
    if c.mqtt is None:
        return {}
    env = {"SMQ_MQTT_URL": c.settings.mqtt_url or c.mqtt.url, "SMQ_MQTT_ACCOUNT": c.mqtt.account,
           "SMQ_MQTT_ISSUER_SEED_FILE": c.settings.mqtt_issuer_seed_file
           or str((Path(c.settings.data_dir) / ISSUER_SEED_FILE).resolve())}
    if c.mqtt.sys_url:
        env["SMQ_MQTT_SYS_URL"] = c.mqtt.sys_url
    if c.mqtt.brokers:  # the listener itself, which devices may dial elsewhere (SMQ_MQTT_URL)
        env["SMQ_MQTT_BROKER"] = host_port(c.mqtt.brokers)
    return env


@dataclass
class Service:
    """Roles of one process sharing one container."""

    settings: Settings
    roles: frozenset[str]
    container: Container
    relay: Relay | None = None
    projector: Projector | None = None
    saga: SagaWorker | None = None
    authorizer: Authorizer | None = None
    revoker: Revoker | None = None
    sys_nc: Any = None  # the revoker's system-account connection
    statistics: Statistics | None = None
    runner: web.AppRunner | None = None
    port: int | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The API in this many child processes (`smq serve`); 0: in this process.
    api_processes: int = 0
    children: ApiProcesses | None = None
    parent_metrics: ParentMetrics | None = None

    @classmethod
    async def start(cls, settings: Settings, roles: set[str] | frozenset[str] = ALL_ROLES,
                    api_processes: int = 0) -> Service:
        # The API in children: their own pools, not this process's.
        c = await Container.start(settings, set(roles) - {"api"} if api_processes else roles)
        svc = cls(settings, frozenset(roles), c, api_processes=api_processes)
        try:
            await svc._start_roles()
        except BaseException:
            await svc.stop()
            raise
        return svc

    def _worker(self, work: Any, name: str) -> None:
        """Run a worker; one that ends by an exception is logged at once, not only at stop
        (workers retry what they can: an end is a bug to see)."""
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_report_end)
        self.tasks.append(task)

    async def _start_roles(self) -> None:
        c, s = self.container, self.settings
        if "relay" in self.roles:
            lease = Lease(c.database_url, f"smq-relay:{s.stream}")
            channel = getattr(c.store.app.recorder, "channel_name", None)
            # Its own JetStream context, with a short bound on every request: a stream whose leader
            # was lost answers nothing until another is elected, and the relay tries again at once.
            js = c.nc.jetstream(timeout=RELAY_LOOKUP)
            self.relay = Relay(c.store, js, s.stream, s.events_subject, c.pool, lease=lease,
                               listen=(c.database_url, channel) if channel else None)
            self._worker(self.relay.run(), "relay")
        if "projector" in self.roles:
            views = [v for v in c.views() if not s.projector_views or v.name in s.projector_views]
            # Redis views rebuild themselves when Redis loses them (checked before the API starts).
            if any(v.name == access.NAME for v in views) and await access.upgrade(c.redis, s.redis_prefix):
                log.warning("the Redis view access is rebuilt once, to hold every thing's channels (MQTT)")
            guard = RedisGuard([v for v in views if isinstance(v, RedisView)], c.store, c.pool)
            if guard.states:
                await guard.start(wait=GUARD_START_WAIT)
            self.projector = Projector([
                ViewRunner(guard.wrap(views), c.js, s.stream, s.events_subject,
                           advanced=c.freshness.advanced, pool=c.pool, sealer=c.store.sealer,
                           guard=lambda stop: owner_of(c).wait_usable(stop, "projector"))],
                head=c.store.max_position, guard=guard if guard.states else None)
            self._worker(self.projector.run(), "projector")
            tables = catalogue.tables_of(v.name for v in views)
            if tables:
                self.statistics = Statistics(c.pool, tables)
                self._worker(self.statistics.run(), "statistics")
        if "saga" in self.roles:
            self.saga = SagaWorker(c.saga, c.pool, stale_after=s.saga_stale)
            self._worker(self.saga.run(), "saga")
        if "authz" in self.roles:
            await self._start_authz()
        if "api" in self.roles and self.api_processes:
            # The children's /metrics show this process's metrics too.
            self.parent_metrics = ParentMetrics(s.data_dir)
            await self.parent_metrics.start()
            servers = {"SMQ_DATABASE_URL": c.database_url, "SMQ_NATS_URL": c.nats_url,
                       "SMQ_REDIS_URL": c.redis_url, PARENT_METRICS: self.parent_metrics.path,
                       **mqtt_env(c)}
            self.children = ApiProcesses(s, servers, self.api_processes)
            await self.children.start()
            self.port = self.children.port
        elif "api" in self.roles:
            self.runner = ApiRunner(create_app(c), access_log=None)
            await self.runner.setup()
            sock = inherited_socket()
            site = (web.SockSite(self.runner, sock) if sock is not None
                    else web.TCPSite(self.runner, s.http_host, s.http_port, reuse_port=True))
            try:
                await site.start()
            except OSError as exc:
                raise listen_failure(s.http_host, s.http_port, exc) from None
            self.port = self.runner.addresses[0][1]

    async def _start_authz(self) -> None:
        """The MQTT authorizer (``workers.authorizer``), when MQTT authorization is on."""
        c, s = self.container, self.settings
        if c.mqtt is None:
            log.info("MQTT authorization is off: an external NATS without SMQ_MQTT_ISSUER_SEED_FILE"
                     " (docs/deploy.md)")
            return
        limits = Failures(c.redis, s.redis_prefix, s.failure_limit_window, s.failure_limit_identity,
                          s.failure_limit_address, c.scripts)
        sessions, ids = Sessions(c.redis, s.redis_prefix), ClientIds(c.redis, s.redis_prefix, scripts=c.scripts)
        if c.mqtt.sys_url:
            self.sys_nc = await bus.connect(c.mqtt.sys_url, "smq-revoker")
            self.revoker = Revoker(c.js, self.sys_nc, sessions, s.stream, s.events_subject,
                                   c.freshness.wait, functools.partial(channel_things, c),
                                   functools.partial(cert_things, c), release=ids.release)
            await self.revoker.start()
        else:
            log.warning("MQTT sessions are not closed when their rights end: no system-account user"
                        " (SMQ_MQTT_SYS_URL); a session lasts until its JWT expires (1 h)")
        self.authorizer = Authorizer(c.nc, c.mqtt, functools.partial(thing_access, c), limits,
                                     sessions=sessions if self.revoker else None,
                                     certificate=functools.partial(certificate, c), claim=ids.claim,
                                     failing=self.revoker.failing_now if self.revoker else None)
        await self.authorizer.start()

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        c = self.container
        return {"http": self.url if self.port else None, "nats": redact(c.nats_url),
                "mqtt": c.settings.mqtt_url or None, "redis": redact(c.redis_url),
                "database": redact(c.database_url), "roles": sorted(self.roles),
                "data_dir": str(self.settings.data_dir)}

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, stop the workers, drain NATS."""
        if self.children is not None:
            await self.children.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.parent_metrics is not None:
            await self.parent_metrics.stop()
        if self.authorizer is not None:
            await self.authorizer.stop()
        if self.revoker is not None:
            await self.revoker.stop()
        if self.sys_nc is not None:
            await self.sys_nc.close()
        for worker in (self.relay, self.projector, self.saga, self.statistics):
            if worker is not None:
                worker.stop()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:  # noqa: BLE001 - the worker logged it
                log.exception("worker %s failed", task.get_name())
        await self.container.close()
