"""`smq serve`'s HTTP API in child processes, beside the workers of the parent.

One Python process holds one core at most (the GIL). `smq serve` keeps the relay, the
projector and the saga worker (and the embedded servers) in its own process and runs the
API in ``SMQ_API_PROCESSES`` children (default 1), so that commands and the views that
follow them use two cores. The parent binds the listening socket and the children inherit
it, so port 0 means one port for all. The children are told the servers' URLs; they die
with the parent; one that dies alone is started again. On SIGTERM the parent stops the
children first (each finishes the requests it holds), then its own workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from infra.embedded import _die_with_parent
from infra.settings import Settings

log = logging.getLogger("smq.serve")
LISTEN_FD = "SMQ_LISTEN_FD"  # set for a child: the inherited listening socket
RESTART_DELAY = 1.0


def inherited_socket() -> socket.socket | None:
    """The listening socket handed down by `smq serve`, in one of its API children."""
    fd = os.environ.get(LISTEN_FD)
    return socket.socket(fileno=int(fd)) if fd else None


class ApiProcesses:
    """The API children of `smq serve`."""

    def __init__(self, settings: Settings, env: dict[str, str], count: int) -> None:
        self.settings, self.count = settings, count
        self.sock = socket.create_server((settings.http_host, settings.http_port), backlog=1024)
        self.port = int(self.sock.getsockname()[1])
        # Two malloc arenas (unless set): the store's threads would otherwise each grow their
        # own, and a long bulk load leaves the API's memory fragmented across them.
        self.env = {"MALLOC_ARENA_MAX": "2", **os.environ, **env, LISTEN_FD: str(self.sock.fileno()),
                    "SMQ_DATA_DIR": str(Path(settings.data_dir).resolve())}
        self.procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "infra.cli", "api", env=self.env, pass_fds=(self.sock.fileno(),),
            stdout=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        assert proc.stdout is not None
        line = await proc.stdout.readline()  # it says where it listens once it accepts
        if not line:
            raise RuntimeError(f"an API process exited with {await proc.wait()} before listening")
        json.loads(line)
        return proc

    async def start(self) -> None:
        try:
            started = await asyncio.gather(*(self._spawn() for _ in range(self.count)))
        except BaseException:
            await self.stop()
            raise
        self.procs = list(started)
        self._watch = asyncio.create_task(self._keep_alive(), name="api-processes")

    async def _keep_alive(self) -> None:
        """Start again any child that died (not while stopping)."""
        while not self._stopping:
            waits = {asyncio.ensure_future(p.wait()): i for i, p in enumerate(self.procs) if p}
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            if self._stopping:
                return
            for fut in done:
                i = waits[fut]
                log.error("API process %d exited with %s; starting it again", i, fut.result())
                await asyncio.sleep(RESTART_DELAY)
                try:
                    self.procs[i] = await self._spawn()
                except (OSError, RuntimeError):
                    log.exception("API process %d did not start", i)

    async def stop(self, bound: float = 30.0) -> None:
        """SIGTERM every child and wait for it (it finishes its requests), then SIGKILL."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        live = [p for p in self.procs if p is not None and p.returncode is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        for p in live:
            try:
                await asyncio.wait_for(p.wait(), bound)
            except TimeoutError:
                p.kill()
                await p.wait()
        self.sock.close()
