"""The lean script caller (``infra.fastredis``) answers what redis-py's script object answers and
fails as it fails, against real Redis servers: the shared one, and a private one for what
touches the whole server (SCRIPT FLUSH, CLIENT PAUSE and KILL, ACL)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as rx
from redis.asyncio import Redis

from infra.embedded import Embedded
from infra.fastredis import LeanScript, Scripts
from tests.conftest import eventually

# Every shape a script answers: nil, booleans, ints, bulk and status strings, nested and empty
# lists, error replies inside a list, its keys and arguments back.
SHAPES = """
return {false, true, 7, -1, 'text', {ok='FINE'}, {false, {3, 'deep', {}}}, {},
        redis.error_reply('ERR inner failure'), {err='NOSCRIPT not really'},
        KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], #KEYS, #ARGV}
"""
ECHO = "return ARGV[1]"


def _shape(value: Any) -> Any:
    """A reply compared by type and value (error objects by class and arguments)."""
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, Exception):
        return (type(value), value.args, getattr(value, "status_code", None))
    return (type(value), value)


async def _outcome(call: Any, **kw: Any) -> Any:
    try:
        return _shape(await call(**kw))
    except rx.RedisError as exc:
        return _shape(exc)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of the test's own."""
    embedded = Embedded()
    try:
        yield embedded.start_redis(tmp_path)
    finally:
        embedded.stop()


@pytest.fixture
async def admin(private_redis: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(private_redis)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.mark.parametrize("query", ["", "?protocol=2"])
async def test_replies_and_errors_are_redis_pys(redis_url: str, query: str) -> None:
    redis = Redis.from_url(redis_url + query)
    scripts = Scripts(redis)
    try:
        lean = scripts.register_script(SHAPES)
        assert isinstance(lean, LeanScript)
        theirs = redis.register_script(SHAPES)
        args: dict[str, Any] = {"keys": ["k:é"], "args": ["é", b"\xff\x00", 42, 1.5]}
        ours = await _outcome(lean, **args)
        assert ours == await _outcome(theirs, **args)
        assert ours[0] == (type(None), None) and ours[1] == (int, 1) and ours[5] == (bytes, b"FINE")
        assert ours[8] == (rx.ResponseError, ("inner failure",), "ERR")
        assert ours[9] == (rx.NoScriptError, ("not really",), "NOSCRIPT")
        for text in ("return redis.error_reply('ERR bad thing')", "return redis.call('NOPE')",
                     "return redis.error_reply('WRONGTYPE no')", "return {err='OOM full'}"):
            ours = await _outcome(scripts.register_script(text))
            assert ours == await _outcome(redis.register_script(text)), text
            assert issubclass(ours[0], rx.ResponseError)
        for bad in (True, None, object()):  # refused as redis-py refuses them, before sending
            with pytest.raises(rx.DataError):
                await lean(args=[bad])
            with pytest.raises(rx.DataError):
                await theirs(args=[bad])
    finally:
        await scripts.aclose()
        await redis.aclose()


async def test_many_calls_in_flight_each_get_their_own_reply(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    scripts = Scripts(redis)
    try:
        echo = scripts.register_script(ECHO)
        sent = [f"{i}-{secrets.token_hex(4)}" * (1 + i % 50) for i in range(1000)]
        replies = await asyncio.gather(*(echo(args=[s]) for s in sent))
        assert replies == [s.encode() for s in sent]
    finally:
        await scripts.aclose()
        await redis.aclose()


async def test_a_cancelled_call_leaves_the_others_their_replies(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    scripts = Scripts(redis)
    try:
        echo = scripts.register_script(ECHO)
        calls = [asyncio.ensure_future(echo(args=[str(i)])) for i in range(20)]
        for call in calls[::3]:
            call.cancel()
        done = await asyncio.gather(*calls, return_exceptions=True)
        for i, reply in enumerate(done):
            assert isinstance(reply, asyncio.CancelledError) if i % 3 == 0 else reply == str(i).encode()
        assert await echo(args=["after"]) == b"after"
    finally:
        await scripts.aclose()
        await redis.aclose()


async def test_a_flushed_script_is_loaded_again(private_redis: str, admin: Redis) -> None:
    scripts = Scripts(Redis.from_url(private_redis))
    try:
        echo = scripts.register_script(ECHO)
        assert await echo(args=["a"]) == b"a"
        assert await admin.script_exists(echo.sha) == [True]  # type: ignore[attr-defined]
        await admin.script_flush()
        assert await echo(args=["b"]) == b"b"
        assert await admin.script_exists(echo.sha) == [True]  # type: ignore[attr-defined]
    finally:
        await scripts.aclose()


async def _paused_calls(scripts: Scripts, admin: Redis, count: int) -> list[asyncio.Future[Any]]:
    """``count`` calls held by Redis (CLIENT PAUSE), each connection with some in flight."""
    echo = scripts.register_script(ECHO)
    for i in range(len(scripts._links)):
        assert await echo(args=[str(i)]) == str(i).encode()  # every connection open
    await admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    calls = [asyncio.ensure_future(echo(args=[str(i)])) for i in range(count)]

    async def held() -> bool:
        return int((await admin.info("clients"))["blocked_clients"]) == len(scripts._links)

    await eventually(held, what="the calls held by the pause")
    return calls


async def test_a_killed_connection_fails_its_calls_and_the_next_call_succeeds(
        private_redis: str, admin: Redis) -> None:
    scripts = Scripts(Redis.from_url(private_redis))
    try:
        calls = await _paused_calls(scripts, admin, 10)
        assert await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") == len(scripts._links)
        failed = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(f, rx.ConnectionError) for f in failed), failed
        await admin.execute_command("CLIENT", "UNPAUSE")
        assert await scripts.register_script(ECHO)(args=["again"]) == b"again"
    finally:
        await scripts.aclose()


async def test_a_call_not_answered_in_time_fails_with_timeout(private_redis: str, admin: Redis) -> None:
    scripts = Scripts(Redis.from_url(private_redis + "?socket_timeout=0.3"))
    try:
        calls = await _paused_calls(scripts, admin, 4)
        failed = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(f, rx.TimeoutError) for f in failed), failed
        await admin.execute_command("CLIENT", "UNPAUSE")
        assert await scripts.register_script(ECHO)(args=["again"]) == b"again"
    finally:
        await scripts.aclose()


async def test_a_server_not_there_is_a_connection_error(private_redis: str, admin: Redis) -> None:
    port = int(private_redis.rsplit(":", 1)[1].split("/")[0])
    scripts = Scripts(Redis.from_url(f"redis://127.0.0.1:{port}/0"))
    try:
        await admin.shutdown(nosave=True)
    except rx.ConnectionError:
        pass  # the server went with the answer
    with pytest.raises(rx.ConnectionError):
        await scripts.register_script(ECHO)()
    await scripts.aclose()


@pytest.mark.parametrize("query", ["", "?protocol=2"])
async def test_credentials_and_database_are_the_urls(private_redis: str, admin: Redis, query: str) -> None:
    base = private_redis.rsplit("/", 1)[0].replace("redis://", "")
    await admin.execute_command("ACL", "SETUSER", "lean", "on", ">pw-1", "~*", "&*", "+@all")
    await admin.config_set("requirepass", "pw-0")
    read = "return redis.call('GET', KEYS[1])"
    for url in (f"redis://lean:pw-1@{base}/3{query}", f"redis://:pw-0@{base}/5{query}"):
        redis = Redis.from_url(url)
        scripts = Scripts(redis)
        try:
            await redis.set("here", url)
            assert await scripts.register_script(read)(keys=["here"]) == url.encode()
        finally:
            await scripts.aclose()
            await redis.aclose()
    redis = Redis.from_url(f"redis://lean:wrong@{base}/3{query}")
    scripts = Scripts(redis)
    try:
        with pytest.raises(rx.AuthenticationError):
            await redis.register_script(read)(keys=["here"])
        with pytest.raises(rx.AuthenticationError):
            await scripts.register_script(read)(keys=["here"])
    finally:
        await scripts.aclose()
        await redis.aclose()


def test_what_it_does_not_speak_is_left_to_redis_py(tmp_path: Path) -> None:
    for url in (f"unix://{tmp_path}/redis.sock?db=2", "rediss://127.0.0.1:6379/0",
                "redis://127.0.0.1:6379/0?decode_responses=true"):
        redis = Redis.from_url(url)
        scripts = Scripts(redis)
        assert not scripts.lean, url
        assert not isinstance(scripts.register_script(ECHO), LeanScript), url


async def test_the_containers_hot_scripts_are_lean(container: Any) -> None:
    assert container.scripts.lean
    assert isinstance(container.access()._snapshot, LeanScript)
    assert isinstance(container.access()._thing, LeanScript)
    assert isinstance(container.freshness._max, LeanScript)
