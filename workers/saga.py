"""The `saga` role: takes over the provisionings a dead process left running, now and then
(the provisioning service, ``workers.provisioning``, fails and compensates them)."""

from __future__ import annotations

import asyncio
import logging

from psycopg_pool import AsyncConnectionPool

from workers.provisioning import SagaRunner

log = logging.getLogger("smq.saga")


class SagaWorker:
    """The `saga` role: looks for abandoned provisionings now and then."""

    def __init__(self, runner: SagaRunner, pool: AsyncConnectionPool, stale_after: float = 30.0,
                 every: float = 5.0) -> None:
        self.runner, self.pool, self.stale_after, self.every = runner, pool, stale_after, every
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                taken = await self.runner.recover(self.pool, self.stale_after)
                if taken:
                    log.warning("compensated %d abandoned provisioning(s)", len(taken))
            except Exception:  # noqa: BLE001 - try again next round
                log.exception("saga recovery failed")
            try:
                await asyncio.wait_for(self._stop.wait(), self.every)
            except TimeoutError:
                pass
