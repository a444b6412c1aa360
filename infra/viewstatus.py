"""Where the views stand, for /health in any process: the projector records here each view
that cannot move (``view_status``, beside ``view_positions``), and deletes it on recovery.

A view's lag is the store's head minus its position (SQL ``view_positions``, Redis
its position key, ``projections.catalogue``); a view is failing while a recorded failure stands and it is behind,
and stalled when it is behind and its position has not moved for ``stall_after`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

CAUSE_MAX = 300  # characters of a cause kept and shown
STALL_AFTER = 30.0  # a view behind the store whose position has not moved for this long is stalled


def cause_of(exc: BaseException) -> str:
    """What went wrong, without secrets: the exception's type and its first line (for a
    database error its primary message, never the DETAIL that carries row values)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = exc.diag.message_primary
    else:
        text = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:CAUSE_MAX]


@dataclass(frozen=True)
class Failure:
    """A view that cannot apply the event at ``position`` (None: no event is to blame)."""

    view: str
    position: int | None
    event_type: str | None
    error: str

    def describe(self) -> str:
        at = f" at position {self.position} ({self.event_type})" if self.position is not None else ""
        return f"view {self.view} fails{at}: {self.error}"


class ViewsFailed(Exception):
    """Views of a group could not apply a batch; each failure names its view and event."""

    def __init__(self, failures: Sequence[Failure]) -> None:
        super().__init__("; ".join(f.describe() for f in failures))
        self.failures = list(failures)


_RECORD = """
insert into view_status (view, failing_since, position, event_type, error, retries, updated_at)
select unnest(%s::text[]), now(), unnest(%s::bigint[]), unnest(%s::text[]), unnest(%s::text[]), 1, now()
on conflict (view) do update
   set failing_since = case when (view_status.position, view_status.error)
                                 is not distinct from (excluded.position, excluded.error)
                            then view_status.failing_since else excluded.failing_since end,
       position = excluded.position, event_type = excluded.event_type, error = excluded.error,
       retries = view_status.retries + 1, updated_at = now()
"""


async def record(pool: AsyncConnectionPool, failures: Sequence[Failure]) -> None:
    """Record (or renew) the failures of views."""
    async with pool.connection() as conn:
        await conn.execute(_RECORD, ([f.view for f in failures], [f.position for f in failures],
                                     [f.event_type for f in failures], [f.error for f in failures]))


async def clear(pool: AsyncConnectionPool, views: Sequence[str]) -> None:
    """The views apply again: forget their failures."""
    async with pool.connection() as conn:
        await conn.execute("delete from view_status where view = any(%s)", (list(views),))


@dataclass(frozen=True)
class Standing:
    """Where one view stands, as /health sees it."""

    view: str
    position: int
    lag: int
    failing_since: datetime | None = None
    failed_at: int | None = None
    event_type: str | None = None
    error: str | None = None


async def standings(pool: AsyncConnectionPool, redis: Redis, sql_views: Sequence[str],
                    redis_views: Mapping[str, str], head: int) -> list[Standing]:
    """Every view's position, lag and recorded failure: one SQL query and one MGET
    (``redis_views``: each Redis view's position key)."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            "select v.view, coalesce(p.position, 0), s.failing_since, s.position, s.event_type, s.error"
            "  from unnest(%s::text[]) as v(view)"
            "  left join view_positions p on p.view = v.view"
            "  left join view_status s on s.view = v.view", ([*sql_views, *redis_views],))).fetchall()
    found = {r[0]: r for r in rows}
    if redis_views:
        values = await redis.mget(list(redis_views.values()))
        for view, value in zip(redis_views, values, strict=True):
            r = found[view]
            found[view] = (view, int(value or 0), *r[2:])
    return [Standing(view, int(pos), max(0, head - int(pos)), since, at, event, error)
            for view, pos, since, at, event, error in (found[v] for v in [*sql_views, *redis_views])]


class Stalls:
    """Remembers since when each lagging view has stood at its position (in this process):
    a view behind the store whose position has not moved for ``after`` seconds is stalled."""

    def __init__(self, after: float | None = None) -> None:
        self.after = STALL_AFTER if after is None else after
        self._since: dict[str, tuple[int, float]] = {}

    def stalled_for(self, view: str, position: int, lag: int, now: float | None = None) -> float:
        """Seconds the view has stood still while behind (0 when it moves or is current)."""
        now = time.monotonic() if now is None else now
        if lag <= 0:
            self._since.pop(view, None)
            return 0.0
        seen = self._since.get(view)
        if seen is None or seen[0] != position:
            self._since[view] = (position, now)
            return 0.0
        return now - seen[1]

    def stalled(self, view: str, position: int, lag: int, now: float | None = None) -> bool:
        return self.stalled_for(view, position, lag, now) >= self.after


def problems(found: Sequence[Standing], stalls: Stalls) -> list[str]:
    """What /health says of the views that cannot move (empty: every view is fine)."""
    out = []
    for s in found:
        standing = f"{s.view} at {s.position}, {s.lag} behind"
        if s.lag > 0 and s.error is not None:
            at = f" on {s.event_type} at {s.failed_at}" if s.failed_at is not None else ""
            since = f" since {s.failing_since:%Y-%m-%dT%H:%M:%SZ}" if s.failing_since else ""
            out.append(f"{standing}: failing{at}{since}: {s.error}")
        elif (still := stalls.stalled_for(s.view, s.position, s.lag)) >= stalls.after:
            out.append(f"{standing}: stalled for {int(still)}s (no failure recorded: is a projector running?)")
    return out
