"""The closed loop, the statistics and a thin client of the public HTTP API."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class Unsupported(Exception):
    """The server has no route for what the scenario needs (404/405 on a well-formed call)."""


class SetupFailed(Exception):
    """The scenario could not prepare its data (an unexpected answer)."""


def percentile(sorted_samples: list[float], p: float) -> float:
    """Exact nearest-rank percentile of already sorted samples (no interpolation)."""
    if not sorted_samples:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    s = sorted(samples_s)
    return {"p50_ms": round(percentile(s, 50) * 1000, 3), "p99_ms": round(percentile(s, 99) * 1000, 3),
            "max_ms": round((s[-1] if s else 0.0) * 1000, 3)}


@dataclass
class Result:
    """What one scenario run measured."""

    scenario: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for k, n in self.statuses.items()
                   if k.startswith(("exc:", "refused", "lost")) or (k.isdigit() and not 200 <= int(k) < 300))

    def line(self) -> dict[str, Any]:
        rps = self.requests / self.elapsed if self.elapsed > 0 else 0.0
        return {"scenario": self.scenario, "clients": self.clients, "requests": self.requests,
                "errors": self.errors, "rps": round(rps, 1), **summary_ms(self.latencies),
                "status_counts": dict(sorted(self.statuses.items())), "extra": self.extra}


def unsupported_line(scenario: str, clients: int, reason: str) -> dict[str, Any]:
    return {"scenario": scenario, "clients": clients, "requests": 0, "errors": 0, "rps": 0.0,
            "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "status_counts": {}, "extra": {},
            "unsupported": True, "reason": reason}


def failed_line(scenario: str, clients: int, reason: str) -> dict[str, Any]:
    line = unsupported_line(scenario, clients, reason)
    line.pop("unsupported")
    line["failed"] = True
    return line


# One request of the loop: (client index, request number) -> status (an int, or a label).
Call = Callable[[int, int], Awaitable[int | str]]


async def closed_loop(scenario: str, call: Call, clients: int, duration: float, requests: int | None,
                      warmup: float) -> Result:
    """``clients`` workers, each sending its next request as soon as the previous one answered.

    Requests that start during the warm-up are sent but not recorded. Then either
    ``requests`` requests are recorded (across all clients), or requests keep starting
    for ``duration`` seconds. Throughput = recorded requests / (end of the last recorded
    request - start of measuring).
    """
    res = Result(scenario, clients)
    loop_start = time.perf_counter()
    measure_from = loop_start + warmup
    deadline = None if requests else measure_from + duration
    issued = 0
    counter = 0
    last_end = measure_from

    async def worker(idx: int) -> None:
        nonlocal issued, counter, last_end
        while True:
            start = time.perf_counter()
            measured = start >= measure_from
            if measured:
                if deadline is not None and start >= deadline:
                    return
                if requests is not None:
                    if issued >= requests:
                        return
                    issued += 1
            n = counter
            counter += 1
            try:
                status: int | str = await call(idx, n)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted, never fatal
                status = f"exc:{type(exc).__name__}"
            end = time.perf_counter()
            if measured:
                res.latencies.append(end - start)
                res.statuses[str(status)] += 1
                last_end = max(last_end, end)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    res.elapsed = max(last_end - measure_from, 1e-9)
    return res


JSON_HEADERS = {"Content-Type": "application/json"}


class Api:
    """The public HTTP API, with one user's token."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base.rstrip("/")
        self.s = session
        self.token: str | None = None
        self.identity: str | None = None
        self.secret: str | None = None

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                      token: bool = True) -> tuple[int, Any, Any]:
        """(status, decoded body or text, headers); the body is always read to the end.

        A 401 with a token is retried once with a fresh one: a long seed outlives an access
        token (15 minutes by default)."""
        status, data, hdrs = await self._request(method, path, body, headers, token)
        if status == 401 and token and self.identity and self.secret:
            await self.login(self.identity, self.secret)
            status, data, hdrs = await self._request(method, path, body, headers, token)
        return status, data, hdrs

    async def _request(self, method: str, path: str, body: Any, headers: dict[str, str] | None,
                       token: bool) -> tuple[int, Any, Any]:
        h = dict(JSON_HEADERS) if body is not None else {}
        if token:
            h.update(self.auth())
        h.update(headers or {})
        data = json.dumps(body) if body is not None else None
        async with self.s.request(method, self.base + path, data=data, headers=h) as r:
            raw = await r.read()
            try:
                decoded: Any = json.loads(raw) if raw else None
            except ValueError:
                decoded = raw.decode(errors="replace")
            return r.status, decoded, r.headers

    async def expect(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201),
                     headers: dict[str, str] | None = None, token: bool = True) -> tuple[Any, Any]:
        """A setup call that must succeed: 404/405 means the route is missing."""
        status, data, hdrs = await self.request(method, path, body, headers, token)
        if status in ok:
            return data, hdrs
        if status in (404, 405):
            raise Unsupported(f"{method} {route_of(path)} answered {status}")
        raise SetupFailed(f"{method} {path} answered {status}: {str(data)[:200]}")

    async def login(self, identity: str | None, secret: str | None) -> None:
        """Use the given user, or create a fresh one; then issue an access token."""
        if not identity:
            identity = f"bench-{secrets.token_hex(6)}@example.com"
            secret = secret or secrets.token_hex(12)
            await self.expect("POST", "/users", {"name": identity.split("@")[0],
                                                 "credentials": {"identity": identity, "secret": secret},
                                                 "status": "enabled"}, ok=(201, 200), token=False)
        self.identity, self.secret = identity, secret
        data, _ = await self.expect("POST", "/users/tokens/issue", {"identity": identity, "secret": secret},
                                    ok=(201, 200), token=False)
        self.token = data["access_token"]

    async def create_things(self, n: int, concurrency: int = 8,
                            item: Callable[[int], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """``n`` things, by bulk calls of 100 (or one by one where there is no bulk route)."""
        item = item or (lambda i: {"name": f"bench-thing-{i}"})
        out: list[dict[str, Any]] = []
        bulk = True
        try:
            first = min(n, 100)
            data, _ = await self.expect("POST", "/things/bulk", [item(i) for i in range(first)])
            out.extend(data["things"])
        except Unsupported:
            bulk = False
        if bulk:
            starts = iter(range(len(out), n, 100))

            async def bulk_worker() -> None:
                for s in starts:
                    d, _ = await self.expect("POST", "/things/bulk", [item(i) for i in range(s, min(n, s + 100))])
                    out.extend(d["things"])
            await asyncio.gather(*(bulk_worker() for _ in range(concurrency)))
            return out
        singles = iter(range(n))

        async def one_worker() -> None:
            for i in singles:
                d, _ = await self.expect("POST", "/things", item(i), ok=(201, 200))
                out.append(d)
        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        return out

    async def create_channels(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for s in range(0, n, 100):
                d, _ = await self.expect("POST", "/channels/bulk",
                                         [{"name": f"bench-channel-{i}"} for i in range(s, min(n, s + 100))])
                out.extend(d["channels"])
            return out
        except Unsupported:
            pass
        for i in range(n):
            d, _ = await self.expect("POST", "/channels", {"name": f"bench-channel-{i}"}, ok=(201, 200))
            out.append(d)
        return out


def route_of(path: str) -> str:
    """A path with its ids replaced by placeholders, for messages."""
    parts = []
    for p in path.split("?")[0].split("/"):
        parts.append("{id}" if len(p) >= 32 and all(c in "0123456789abcdef-" for c in p.lower()) else p)
    return "/".join(parts)
