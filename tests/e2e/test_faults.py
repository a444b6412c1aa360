"""Fault tolerance of the scaled-out deployment: every role in its own process, as on several
machines, killed (-9) one at a time under a steady write load and restarted; NATS and Redis
restarted under load too. Afterwards, within bounds:

- the store holds every acknowledged command (each acknowledged create reads back by id);
- the bus holds every stored event exactly once, in order (its ``Smq-Position`` headers are the
  store's positions, no gap, no repeat);
- every view equals a rebuild from the store (``service.replay.replay``);
- no provisioning is left half done (the saga process compensated the one whose API process
  died in the middle of ``POST /mapping``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import psycopg
import pytest

from infra.ca import CertificateAuthority
from infra.embedded import (
    _die_with_parent,
    _wait_port,
    free_port,
    nats_server_binary,
    redis_server_binary,
)
from infra.settings import Settings
from tests.conftest import env_of

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SQL_A = "users,things,channels,connections,events"
SQL_B = "configs,certs,provisionings,thing_keys,access"
GATE_KEY = 7_345_001  # the advisory lock that holds a provisioning step, when the test takes it


# -- child processes ---------------------------------------------------------------------------
@dataclass
class Child:
    """One ``python -m service.cli <role>`` process."""

    name: str
    role: str
    env: dict[str, str]
    logs: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    describe: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}.{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "service.cli", self.role, env=self.env, cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=err, preexec_fn=_die_with_parent)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 40)
        except TimeoutError:
            line = b""
        if not line:
            raise AssertionError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")
        self.describe = json.loads(line)

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.returncode is None, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGKILL)

    async def wait_dead(self) -> None:
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def logged(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text(errors="replace")


def child_env(s: Settings, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of every child: the test's settings, and what all API processes must
    share (the CA files and the bootstrap key; a generated one per process would differ)."""
    ca_dir = tmp / "ca"
    if not (ca_dir / "ca.crt").exists():
        ca_dir.mkdir(parents=True, exist_ok=True)
        CertificateAuthority.load_or_create(ca_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(env_of(s))
    env.update(SMQ_CERTS_CA_CERT=str(ca_dir / "ca.crt"), SMQ_CERTS_CA_KEY=str(ca_dir / "ca.key"),
               SMQ_BOOTSTRAP_ENCRYPT_KEY="0123456789abcdef0123456789abcdef", SMQ_SAGA_STALE="2s",
               SMQ_LOG_LEVEL="INFO", SMQ_RW_WAIT="20s", SMQ_STORE_WORKERS="3", **extra)
    return env


@dataclass
class Cluster:
    children: dict[str, Child]
    ports: list[int]

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.children.values()), return_exceptions=True)


async def start_cluster(s: Settings, tmp: Path, roles: dict[str, tuple[str, dict[str, str]]],
                        api_ports: dict[str, int]) -> Cluster:
    logs = tmp / "logs"
    logs.mkdir(exist_ok=True)
    children = {}
    for name, (role, extra) in roles.items():
        env = child_env(s, tmp, **extra)
        if name in api_ports:
            env["SMQ_HTTP_PORT"] = str(api_ports[name])
        children[name] = Child(name, role, env, logs)
    cluster = Cluster(children, sorted(set(api_ports.values())))
    try:
        # All at once, as a deployment starts: the first starts race to make the schema.
        await asyncio.gather(*(c.start() for c in children.values()))
    except BaseException:
        await cluster.stop()
        raise
    return cluster


async def bounded(check: Callable[[], Awaitable[bool]], bound: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + bound
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {bound}s")
        await asyncio.sleep(every)


# -- the write load ----------------------------------------------------------------------------
@dataclass
class Acked:
    """What the service acknowledged: answers with a 2xx status."""

    things: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    connections: set[tuple[str, str]] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)
    mappings: dict[str, int] = field(default_factory=dict)
    positions: set[int] = field(default_factory=set)
    refused: int = 0
    lost: int = 0  # no answer: the process died, or a server it needs was down
    why: dict[str, int] = field(default_factory=dict)  # what the lost calls got

    def lose(self, why: str) -> None:
        self.lost += 1
        self.why[why] = self.why.get(why, 0) + 1


class Load:
    """A bounded loop of writes spread over every API port, recording each answer."""

    # ``bound`` caps the calls of each worker; the test stops the load long before (a faster
    # server must not run out of load while faults are still to come).
    def __init__(self, bases: list[str], token: str, seed: int, workers: int = 3, bound: int = 20_000) -> None:
        self.bases, self.token, self.rng = bases, token, random.Random(seed)
        self.workers, self.bound = workers, bound
        self.acked = Acked()
        self.stop = asyncio.Event()
        self.mapping_allowed = True
        self.mappings_in_flight = 0
        self.ops = 0

    async def call(self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None,
                   base: str | None = None) -> tuple[int, Any] | None:
        base = base or self.rng.choice(self.bases)
        try:
            async with session.request(method, base + path, json=body,
                                       headers={"Authorization": f"Bearer {self.token}"}) as r:
                raw = await r.read()
                status, headers = r.status, r.headers
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            self.acked.lose(type(exc).__name__)
            await asyncio.sleep(0.05)  # a client's back-off: the process is down, or restarting
            return None
        if 200 <= status < 300:
            if headers.get("X-Smq-Position"):
                self.acked.positions.add(int(headers["X-Smq-Position"]))
        elif status >= 500:
            self.acked.lose(f"{status} {raw[:80]!r}")
        else:
            self.acked.refused += 1
        return status, (json.loads(raw) if raw else None)

    async def one(self, session: aiohttp.ClientSession) -> None:
        a, rng = self.acked, self.rng
        kind = rng.choices(["thing", "channel", "connect", "disable", "bulk", "mapping"],
                           [30, 12, 25, 10, 15, 4])[0]
        if kind == "thing":
            got = await self.call(session, "POST", "/things", {"name": f"t{rng.random():.6f}"})
            if got and got[0] == 201:
                a.things.add(got[1]["id"])
        elif kind == "channel":
            got = await self.call(session, "POST", "/channels", {"name": f"c{rng.random():.6f}"})
            if got and got[0] == 201:
                a.channels.add(got[1]["id"])
        elif kind == "connect" and a.things and a.channels:
            tid = rng.choice(sorted(a.things - a.disabled) or sorted(a.things))
            cid = rng.choice(sorted(a.channels))
            got = await self.call(session, "PUT", f"/channels/{cid}/things/{tid}")
            if got and 200 <= got[0] < 300:
                a.connections.add((cid, tid))
        elif kind == "disable" and a.things:
            tid = rng.choice(sorted(a.things))
            got = await self.call(session, "POST", f"/things/{tid}/disable")
            if got and got[0] == 200:
                a.disabled.add(tid)
        elif kind == "bulk":
            items = [{"name": f"b{rng.random():.6f}"} for _ in range(20)]
            got = await self.call(session, "POST", "/things/bulk", items)
            if got and got[0] == 200:
                a.things.update(t["id"] for t in got[1]["things"])
        elif kind == "mapping" and self.mapping_allowed:
            ext = f"gw-{uuid.uuid4().hex[:10]}"
            self.mappings_in_flight += 1
            try:
                got = await self.call(session, "POST", "/mapping",
                                      {"name": ext, "external_id": ext, "external_key": f"key-{ext}"})
            finally:
                self.mappings_in_flight -= 1
            if got:
                a.mappings[ext] = got[0]

    async def worker(self, session: aiohttp.ClientSession) -> None:
        for _ in range(self.bound):
            if self.stop.is_set():
                return
            self.ops += 1
            await self.one(session)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=40)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=32)) as s:
            await asyncio.gather(*(self.worker(s) for _ in range(self.workers)))

    async def moved(self, ops: int) -> None:
        """Wait until the load made ``ops`` more calls (it is running, whatever it hits)."""
        target = self.ops + ops
        await bounded(lambda: _true(self.ops >= target), 30, f"{ops} more calls of the load")


async def _true(value: bool) -> bool:
    return value


async def login(base: str) -> str:
    identity = f"load-{uuid.uuid4().hex[:8]}@example.com"
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/users", json={"name": "load", "credentials": {
                "identity": identity, "secret": "12345678"}}) as r:
            assert r.status == 201, await r.text()
        async with s.post(base + "/users/tokens/issue", json={"identity": identity, "secret": "12345678"}) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["access_token"])


# -- the checks afterwards ---------------------------------------------------------------------
async def store_positions(database_url: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (await conn.execute("select notification_id from smq_events order by 1")).fetchall()
    return [int(r[0]) for r in rows]


async def stream_positions(s: Settings) -> list[int]:
    """Every message's Smq-Position header, in stream order (an ordered consumer)."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(s.nats_url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(s.stream)
        total, out = info.state.messages, []
        if not total:
            return out
        sub = await js.subscribe(f"{s.events_subject}.>", stream=s.stream, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL)
        while len(out) < total:
            msg = await sub.next_msg(timeout=10)
            out.append(int((msg.headers or {})["Smq-Position"]))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def check_bus(s: Settings) -> None:
    """The stream holds the store's positions, each once, in order (wait for the relay first)."""
    stored: list[int] = []
    published: list[int] = []

    async def caught_up() -> bool:
        nonlocal stored, published
        stored = await store_positions(s.database_url or "")
        published = await stream_positions(s)
        return len(published) >= len(stored)

    await bounded(caught_up, 30, "the relay publishing every stored event", every=0.2)
    assert len(published) == len(set(published)), "an event is on the bus twice"
    assert published == sorted(published), "the bus is out of store order"
    assert published == stored, (
        f"bus and store differ: missing {sorted(set(stored) - set(published))[:10]}, "
        f"extra {sorted(set(published) - set(stored))[:10]}")


async def check_acked(bases: list[str], token: str, acked: Acked, stored: set[int]) -> None:
    """Every acknowledged command is in the store; every acknowledged create reads back by id."""
    missing = sorted(p for p in acked.positions if p not in stored)
    assert not missing, f"acknowledged positions not in the store: {missing[:10]}"
    sem = asyncio.Semaphore(8)
    problems: list[str] = []

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as session:
        async def get(i: int, path: str) -> dict[str, Any] | None:
            async with sem, session.get(bases[i % len(bases)] + path,
                                        headers={"Authorization": f"Bearer {token}"}) as r:
                if r.status != 200:
                    problems.append(f"GET {path} -> {r.status} {await r.text()}")
                    return None
                return dict(await r.json())

        async def thing(i: int, tid: str) -> None:
            t = await get(i, f"/things/{tid}")
            if t is not None and tid in acked.disabled and t["status"] != "disabled":
                problems.append(f"thing {tid} acknowledged disabled is {t['status']}")

        await asyncio.gather(*(thing(i, tid) for i, tid in enumerate(sorted(acked.things))),
                             *(get(i, f"/channels/{cid}") for i, cid in enumerate(sorted(acked.channels))))
    assert not problems, "\n".join(problems[:20])


async def check_connections(database_url: str, acked: Acked) -> None:
    """Every acknowledged connection is in the connections view (nothing disconnects in the load)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (await conn.execute("select channel_id::text, thing_id::text from connections where active")).fetchall()
    have = {(str(c), str(t)) for c, t in rows}
    lost = acked.connections - have
    assert not lost, f"acknowledged connections missing: {sorted(lost)[:5]}"


async def check_replay(s: Settings) -> None:
    from service.replay import close_live, open_live, replay

    live = await open_live(s)
    try:
        report = await replay(live, wait=30)
    finally:
        await close_live(live)
    bad = [v.line() for v in report.views if v.status != "OK"]
    assert report.ok and not bad, "views differ from a replay:\n" + "\n".join(bad or report.lines())


async def check_provisionings(s: Settings) -> int:
    """No provisioning running or compensating; a completed one's things enabled, a failed one's
    gone from the views (removed). Returns how many provisionings there are."""
    from domain.app import Smq
    from domain.provisioning import COMPLETED, FAILED
    from service.container import store_env

    db = s.database_url or ""

    async def settled() -> bool:
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            row = await (await conn.execute(
                "select count(*) from provisionings_view where status in ('running','compensating')")).fetchone()
        return row is not None and row[0] == 0

    await bounded(settled, 40, "every provisioning completed or compensated", every=0.2)
    app = Smq(env=store_env(db))
    try:
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            rows = await (await conn.execute("select id, status from provisionings_view")).fetchall()
            for prov_id, status in rows:
                p = app.provisioning(UUID(str(prov_id)))
                assert p.status == status, f"provisioning {prov_id}: store {p.status}, view {status}"
                assert status in (COMPLETED, FAILED)
                ids = [p.made_id("thing", i) for i in range(len(p.layout["things"]))]
                got = await (await conn.execute("select id, status from things_view where id = any(%s)",
                                                (ids,))).fetchall()
                statuses = {str(t): st for t, st in got}
                if status == COMPLETED:
                    assert len(statuses) == len(ids) and set(statuses.values()) == {"enabled"}, (prov_id, statuses)
                else:
                    assert statuses == {}, (prov_id, statuses)
    finally:
        app.close()
    return len(rows)


# -- a provisioning cut in the middle ----------------------------------------------------------
GATE_SQL = f"""
create or replace function smq_test_gate() returns trigger language plpgsql as $$
begin
  if new.topic like '%Provisioning.StepDone' and convert_from(new.state, 'UTF8') ~ '"step": ?"configs"' then
    perform pg_advisory_xact_lock_shared({GATE_KEY});
  end if;
  return new;
end $$;
drop trigger if exists smq_test_gate on smq_events;
create trigger smq_test_gate before insert on smq_events for each row execute function smq_test_gate();
"""


async def cut_a_mapping(s: Settings, load: Load, victim: Child, base: str, token: str) -> str:
    """Hold the configs step of a provisioning (after its things and channels are made) with an
    advisory lock, kill -9 the API process running it, and let go: the provisioning is left
    running, for the saga process to compensate. Returns its external id."""
    db = s.database_url or ""
    ext = f"cut-{uuid.uuid4().hex[:8]}"
    load.mapping_allowed = False
    # The gate holds any provisioning's configs step: the load's own mappings must be done
    # first, or one of them is held (and killed) in place of ours (seen under a loaded machine).
    await bounded(lambda: _true(load.mappings_in_flight == 0), 40, "the load's mappings finishing")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as gate:
        await gate.execute(GATE_SQL)
        await gate.execute("select pg_advisory_lock(%s)", (GATE_KEY,))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as session:
                async def post() -> int | None:
                    try:
                        async with session.post(base + "/mapping", json={
                                "name": ext, "external_id": ext, "external_key": f"key-{ext}"},
                                headers={"Authorization": f"Bearer {token}"}) as r:
                            return r.status
                    except (aiohttp.ClientError, ConnectionError):
                        return None

                request = asyncio.create_task(post())

                async def held() -> bool:
                    row = await (await gate.execute(
                        "select count(*) from pg_locks where locktype='advisory' and objid=%s and not granted",
                        (GATE_KEY,))).fetchone()
                    return bool(row and row[0])

                await bounded(held, 20, "the provisioning's configs step reaching the gate")
                victim.kill9()
                await victim.wait_dead()
                assert await request is None, "the request was answered by a dead process"
        finally:
            await gate.execute("select pg_advisory_unlock(%s)", (GATE_KEY,))
            await gate.execute("drop trigger if exists smq_test_gate on smq_events")
    load.mapping_allowed = True
    return ext


async def provisioning_status(db: str, ext: str) -> str | None:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        row = await (await conn.execute("select status from provisionings_view where external_id=%s",
                                        (ext,))).fetchone()
    return str(row[0]) if row else None


async def view_positions(db: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        return list(await (await conn.execute("select * from view_positions")).fetchall()) + list(
            await (await conn.execute("select view, position, event_type, error from view_status")).fetchall())


def leader(relays: list[Child], stream: str) -> Child | None:
    """The relay whose current run logged taking the lease."""
    held = [r for r in relays if r.proc and r.proc.returncode is None and r.logged(f"lease smq-relay:{stream} taken")]
    return held[0] if len(held) == 1 else None


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.timeout(180)
async def test_kill9_each_role_under_load(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(9)
    s = settings
    ports = {"api1": free_port(), "api2": free_port()}
    roles = {
        # api2 provisions step by step: the mapping it is killed in the middle of is left
        # running between two steps, for the saga process to compensate; api1 provisions a
        # new gateway in one transaction (under the load's mappings and its kill).
        "api1": ("api", {}), "api2": ("api", {"SMQ_PROVISION_AT_ONCE": "false"}),
        "relay1": ("relay", {}), "relay2": ("relay", {}),
        "proj_a": ("projector", {"SMQ_PROJECTOR_VIEWS": SQL_A}),
        "proj_b": ("projector", {"SMQ_PROJECTOR_VIEWS": SQL_B}),
        "saga": ("saga", {}),
    }
    started = time.monotonic()
    cluster = await start_cluster(s, tmp_path, roles, ports)
    ch = cluster.children
    timings = {"started": time.monotonic() - started}
    try:
        token = await login(cluster.bases[0])
        load = Load(cluster.bases, token, seed=rng.randrange(1 << 30))
        running = asyncio.create_task(load.run())
        relays = [ch["relay1"], ch["relay2"]]
        await bounded(lambda: _true(leader(relays, s.stream) is not None), 20, "a relay taking the lease")

        async def kill_and_restart(victim: Child, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
            await load.moved(rng.randint(5, 40))
            victim.kill9()
            await victim.wait_dead()
            if meanwhile is not None:
                await meanwhile()
            await victim.start()

        faults = ["api", "relay", "projector", "saga", "mapping"]
        rng.shuffle(faults)
        cut = ""
        for fault in faults:
            if fault == "api":
                await kill_and_restart(ch[rng.choice(["api1", "api2"])])
            elif fault == "projector":
                await kill_and_restart(ch[rng.choice(["proj_a", "proj_b"])])
            elif fault == "saga":
                await kill_and_restart(ch["saga"])
            elif fault == "relay":
                lead = leader(relays, s.stream)
                assert lead is not None
                standby = relays[1 - relays.index(lead)]
                # The standby takes over within about a second of the leader's death; the
                # restarted leader stands by.
                await kill_and_restart(lead, lambda r=standby: bounded(
                    lambda: _true(r.logged(f"lease smq-relay:{s.stream} taken")), 10,
                    "the standby relay taking the lease"))
            else:
                name = "api2"
                await load.moved(rng.randint(5, 20))
                cut = await cut_a_mapping(s, load, ch[name], f"http://127.0.0.1:{ports[name]}", token)
                await ch[name].start()
        await load.moved(30)
        load.stop.set()
        await asyncio.wait_for(running, 60)
        timings["load"] = time.monotonic() - started

        # The saga process found the provisioning its API process left running, and undid it.
        # Bounded generously: on a loaded 2-core machine a whole suite once needed more than 40 s.
        try:
            await bounded(lambda: _status_is(s, cut, "failed"), 90, f"the saga compensating {cut}", every=0.2)
        except AssertionError as exc:
            saga_log = ch["saga"].log.read_text(errors="replace")[-3000:] if ch["saga"].log.exists() else ""
            troubles = "".join(f"{p.name}: {line}\n" for p in sorted(ch["saga"].logs.glob("*.log"))
                               for line in p.read_text(errors="replace").splitlines()
                               if '"ERROR"' in line or '"WARNING"' in line)[-6000:]
            raise AssertionError(f"{exc}; provisioning is {await provisioning_status(s.database_url or '', cut)}"
                                 f"; views: {await view_positions(s.database_url or '')}"
                                 f"; saga log:\n{saga_log}\nwarnings and errors:\n{troubles}") from exc
        a = load.acked
        assert a.things and a.channels and a.connections and a.disabled and a.mappings, a
        await check_bus(s)
        stored = set(await store_positions(s.database_url or ""))
        await check_acked(cluster.bases, token, a, stored)
        await check_connections(s.database_url or "", a)
        assert await check_provisionings(s) >= 2
        await check_replay(s)
        timings["checked"] = time.monotonic() - started
        print(f"\nkill -9 under load: {load.ops} calls, {len(a.things)} things, {len(a.positions)} acked, "
              f"{a.lost} unanswered {a.why}, {a.refused} refused; {len(stored)} events; timings {timings}")
    finally:
        await cluster.stop()


async def _status_is(s: Settings, ext: str, status: str) -> bool:
    return await provisioning_status(s.database_url or "", ext) == status


# -- NATS and Redis restarted (private servers: the session's are shared by other tests) --------
class Server:
    """nats-server or redis-server on a fixed port and data folder, restartable."""

    def __init__(self, kind: str, data: Path) -> None:
        self.kind, self.data, self.port = kind, data.resolve(), free_port()
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}" if self.kind == "nats" else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.kind == "nats":
            cmd = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js",
                   "-sd", str(self.data / "store"), "-l", str(self.data / "nats.log")]
        else:
            cmd = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
                   "--dir", str(self.data), "--appendonly", "yes", "--appendfsync", "everysec",
                   "--save", "", "--logfile", str(self.data / "redis.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        _wait_port("127.0.0.1", self.port, self.proc, self.kind)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await asyncio.to_thread(self.start)


@pytest.mark.timeout(180)
async def test_nats_and_redis_restart_under_load(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(11)
    nats_srv, redis_srv = Server("nats", tmp_path / "nats"), Server("redis", tmp_path / "redis")
    nats_srv.start()
    redis_srv.start()
    try:
        s = replace(settings, nats_url=nats_srv.url, redis_url=redis_srv.url)
        ports = {"api1": free_port(), "api2": free_port()}
        roles = {"api1": ("api", {}), "api2": ("api", {}), "relay": ("relay", {}),
                 "proj_a": ("projector", {"SMQ_PROJECTOR_VIEWS": SQL_A}),
                 "proj_b": ("projector", {"SMQ_PROJECTOR_VIEWS": SQL_B}), "saga": ("saga", {})}
        started = time.monotonic()
        cluster = await start_cluster(s, tmp_path, roles, ports)
        try:
            token = await login(cluster.bases[0])
            load = Load(cluster.bases, token, seed=rng.randrange(1 << 30))
            running = asyncio.create_task(load.run())
            for server in rng.sample([nats_srv, redis_srv, nats_srv, redis_srv], 4):
                await load.moved(rng.randint(10, 40))
                await server.restart()
            await load.moved(40)
            load.stop.set()
            await asyncio.wait_for(running, 60)
            a = load.acked
            assert a.things and a.channels and a.connections, a
            await check_bus(s)
            stored = set(await store_positions(s.database_url or ""))
            await check_acked(cluster.bases, token, a, stored)
            await check_connections(s.database_url or "", a)
            await check_provisionings(s)
            await check_replay(s)
            print(f"\nNATS and Redis restarted under load: {load.ops} calls, {len(a.positions)} acked, "
                  f"{a.lost} unanswered {a.why}; {len(stored)} events; {time.monotonic() - started:.1f}s")
        finally:
            await cluster.stop()
    finally:
        nats_srv.stop()
        redis_srv.stop()
