"""`smq serve`'s ``/metrics`` shows every process of its tree, not only the API child's.

The parent (relay, projector, saga, statistics) serves its registry's page on a unix socket
in the data folder's run dir (``SMQ_PARENT_METRICS`` tells the children where); each API
child's ``/metrics`` reads it and merges it with its own page, family by family (Prometheus
refuses a family that appears twice), each sample labelled with its process:
``process="workers"`` (the parent) or ``process="api"`` (the child answering). With several
API children, each answers the parent's metrics and its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from infra import metrics

log = logging.getLogger("smq.metrics")
PARENT_METRICS = "SMQ_PARENT_METRICS"  # set for an API child: the parent's metrics socket
FETCH_BOUND = 2.0
_MAX_PATH = 100  # a unix socket's path has room for 107 bytes


class ParentMetrics:
    """The parent's side: its registry's page to whoever connects to ``path``."""

    def __init__(self, data_dir: Path) -> None:
        run = Path(data_dir).resolve() / "run"
        run.mkdir(parents=True, exist_ok=True)
        path = str(run / f"metrics-{os.getpid()}.sock")
        # A data folder too deep for a socket's path: an abstract socket (Linux), unguessable,
        # written "@name" (an environment variable cannot hold its leading NUL).
        self.path = path if len(path.encode()) <= _MAX_PATH else f"@smq-metrics-{secrets.token_hex(8)}"
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if not self.path.startswith("@"):
            _forget_dead(Path(self.path).parent)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # left by a run killed with -9 (same pid, reused)
        self._server = await asyncio.start_unix_server(self._answer, path=_address(self.path))
        if not self.path.startswith("@"):
            os.chmod(self.path, 0o600)

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(metrics.exposition())
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if not self.path.startswith("@"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _forget_dead(run: Path) -> None:
    """Remove the sockets of runs killed with -9 (their process is gone)."""
    for stale in run.glob("metrics-*.sock"):
        try:
            pid = int(stale.stem.removeprefix("metrics-"))
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        except PermissionError:
            continue  # alive, someone else's


def _address(path: str) -> str:
    return "\0" + path[1:] if path.startswith("@") else path


async def _fetch(path: str) -> str:
    reader, writer = await asyncio.open_unix_connection(_address(path))
    try:
        return (await reader.read()).decode()
    finally:
        writer.close()


def merge(pages: Iterable[tuple[str, str]]) -> bytes:
    """Pages of several processes as one: (process, page) pairs, merged by family, each
    sample labelled ``process``; a family whose type differs between them keeps the first."""
    families: dict[str, Metric] = {}
    for process, text in pages:
        for fam in text_string_to_metric_families(text):
            samples = [s._replace(labels={**s.labels, "process": process}) for s in fam.samples]
            have = families.get(fam.name)
            if have is None:
                have = families[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            elif have.type != fam.type:
                continue
            have.samples.extend(samples)

    class _Merged:
        def collect(self) -> Iterable[Metric]:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged())
    return generate_latest(registry)


async def page() -> bytes:
    """This process's metrics page; in an API child of `smq serve`, with the parent's."""
    own = metrics.exposition()
    path = os.environ.get(PARENT_METRICS)
    if not path:
        return own
    global _unreadable
    try:
        parent = await asyncio.wait_for(_fetch(path), FETCH_BOUND)
    except (OSError, TimeoutError) as exc:
        # Once per streak (a scrape every few seconds must not repeat it), then at debug.
        (log.debug if _unreadable else log.warning)(
            "metrics: the workers' metrics could not be read (%s); answering this process's",
            f"{type(exc).__name__}: {exc}")
        _unreadable = True
        return merge([("api", own.decode())])
    if _unreadable:
        _unreadable = False
        log.info("metrics: the workers' metrics are readable again")
    return merge([("workers", parent), ("api", own.decode())])


_unreadable = False  # the last fetch of the workers' metrics failed
