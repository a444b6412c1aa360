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
import contextlib
import ctypes
import errno
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from infra.settings import Settings

log = logging.getLogger("smq.serve")
LISTEN_FD = "SMQ_LISTEN_FD"  # set for a child: the inherited listening socket
PARENT_PID = "SMQ_PARENT_PID"  # set for a child: it exits when this process is gone
RESTART_DELAY = 1.0
START_BOUND = 120.0  # how long a child may take to listen


def inherited_socket() -> socket.socket | None:
    """The listening socket handed down by `smq serve`, in one of its API children, which
    from then on dies with its parent (PR_SET_PDEATHSIG, set by the child itself: a
    ``preexec_fn`` in a process with threads may deadlock between fork and exec)."""
    fd = os.environ.get(LISTEN_FD)
    if not fd:
        return None
    parent = int(os.environ.get(PARENT_PID) or 0)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if parent and os.getppid() != parent:  # the parent died before the signal was set
        raise SystemExit("smq serve is gone")
    return socket.socket(fileno=int(fd))


class CannotListen(Exception):
    """The HTTP address cannot be had: said in one line that names the setting to change."""


def listen_failure(host: str, port: int, exc: OSError) -> CannotListen:
    why = {errno.EADDRINUSE: "the port is in use", errno.EACCES: "permission denied",
           errno.EADDRNOTAVAIL: "no such address here"}.get(exc.errno or 0, exc.strerror or str(exc))
    return CannotListen(f"cannot listen on {host}:{port} ({why}): set SMQ_HTTP_PORT"
                        " (or SMQ_HTTP_HOST) to a free address")


class ApiProcesses:
    """The API children of `smq serve`."""

    def __init__(self, settings: Settings, env: dict[str, str], count: int) -> None:
        self.settings, self.count = settings, count
        # SO_REUSEPORT, as `smq api`'s own listener: other API processes may share the port.
        try:
            self.sock = socket.create_server((settings.http_host, settings.http_port), backlog=1024,
                                             reuse_port=True)
        except OSError as exc:
            raise listen_failure(settings.http_host, settings.http_port, exc) from None
        self.port = int(self.sock.getsockname()[1])
        # Two malloc arenas (unless set): the store's threads would otherwise each grow their
        # own, and a long bulk load leaves the API's memory fragmented across them.
        self.env = {"MALLOC_ARENA_MAX": "2", **os.environ, **env, LISTEN_FD: str(self.sock.fileno()),
                    PARENT_PID: str(os.getpid()), "SMQ_DATA_DIR": str(Path(settings.data_dir).resolve())}
        self.procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._starting: set[asyncio.subprocess.Process] = set()  # spawned, not yet listening
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "api", env=self.env, pass_fds=(self.sock.fileno(),),
            stdout=asyncio.subprocess.PIPE)
        self._starting.add(proc)
        try:
            assert proc.stdout is not None
            try:  # it says where it listens once it accepts
                line = await asyncio.wait_for(proc.stdout.readline(), START_BOUND)
            except TimeoutError:
                line = b""
            try:
                json.loads(line)
            except ValueError as exc:
                if proc.returncode is None:
                    proc.kill()
                raise RuntimeError(f"an API process did not start (exit {await proc.wait()})") from exc
            return proc
        finally:
            self._starting.discard(proc)

    async def start(self) -> None:
        try:
            for i in range(self.count):  # one by one: every child started is in procs
                self.procs[i] = await self._spawn()
        except BaseException:
            await self.stop()
            raise
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
                except Exception:  # noqa: BLE001 - the watch goes on: tried again next round
                    log.exception("API process %d did not start", i)

    async def stop(self, bound: float = 30.0) -> None:
        """SIGTERM every child and wait for it (it finishes its requests), then SIGKILL."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for p in list(self._starting):  # a restart cut short by the stop
            if p.returncode is None:
                p.kill()
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
