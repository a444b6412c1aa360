"""A three-node NATS cluster on loopback ports, from the wheel's nats-server, for tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client

from infra.embedded import free_port, nats_server_binary


@dataclass
class Node:
    """One clustered nats-server: its client port, cluster port and JetStream store."""

    name: str
    port: int
    cluster_port: int
    store: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, routes: list[int]) -> None:
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store),
             "--server_name", self.name, "--cluster_name", "c",
             "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
             "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in routes), "-l", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Cluster:
    """Three nodes routed to each other; ``url`` lists them all (``SMQ_NATS_URL``)."""

    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def make(cls, tmp: Path, size: int = 3) -> Cluster:
        nodes = []
        for i in range(1, size + 1):
            (tmp / f"n{i}").mkdir(parents=True, exist_ok=True)
            nodes.append(Node(f"n{i}", free_port(), free_port(), tmp / f"n{i}", tmp / f"n{i}.log"))
        return cls(nodes)

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    async def start(self, bound: float = 30.0) -> None:
        """Start every node and wait until JetStream has a meta leader (the cluster is formed)."""
        ports = [n.cluster_port for n in self.nodes]
        for n in self.nodes:
            n.start([p for p in ports if p != n.cluster_port])
        deadline = time.monotonic() + bound
        while True:
            if await self._has_meta_leader():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no JetStream meta leader within {bound}s; see {self.nodes[0].log}")
            await asyncio.sleep(0.2)

    async def _has_meta_leader(self) -> bool:
        try:
            nc = await asyncio.wait_for(nats.connect([n.url for n in self.nodes], connect_timeout=1,
                                                     allow_reconnect=False, error_cb=_quiet), 2.0)
        except Exception:  # noqa: BLE001 - not up yet
            return False
        try:
            info = await nc.jetstream().account_info()
            return info is not None
        except Exception:  # noqa: BLE001 - "JetStream system temporarily unavailable" until elected
            return False
        finally:
            await nc.close()

    async def client(self) -> Client:
        return await nats.connect([n.url for n in self.nodes if n.proc and n.proc.poll() is None],
                                  connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                                  error_cb=_quiet)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


async def _quiet(_exc: Exception) -> None:
    """The test's own clients: a node killed on purpose is no news."""
