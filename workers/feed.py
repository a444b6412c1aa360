"""The store's events applied to views batch by batch as the projector applies them: the loop of every rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from infra.store import Store
from projections.envelope import Envelope, decode, encode
from projections.sqlview import apply_batch

BATCH = 1000


async def _read(store: Store, after: int, upto: int, size: int) -> list[tuple[int, Envelope]]:
    """The next batch in (after, upto], each envelope through the bus format."""
    envs = [e for e in await store.read(after, size) if e.position <= upto]
    # The stream sequence has no meaning in fresh storage: the position stands in for it.
    return [(e.position, decode(encode(e), store.sealer)) for e in envs]


async def feed(store: Store, views: list[Any], after: int, upto: int, size: int = BATCH,
               until: float | None = None, on_batch: Callable[[int, int], None] | None = None) -> int:
    """Apply the store's events in (after, upto] to ``views``, batch by batch, as the projector
    applies them (``apply_batch``: the SQL views in one transaction); the next batch is read
    while the current one is applied. Stops at ``upto`` or once ``time.monotonic()`` passes
    ``until``; returns how many events were applied. ``on_batch(count, last position)`` is
    called after each batch."""
    count = 0
    ahead = asyncio.ensure_future(_read(store, after, upto, size))
    try:
        while True:
            batch = await ahead
            if not batch:
                return count
            ahead = asyncio.ensure_future(_read(store, batch[-1][0], upto, size))
            await apply_batch(views, batch)
            count += len(batch)
            if on_batch is not None:
                on_batch(len(batch), batch[-1][0])
            if until is not None and time.monotonic() > until:
                return count
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
