"""Failure limits through HTTP from several client addresses (127.0.0.x: the service takes the
socket's address, no forwarding header): successes never count, a guessing address is refused
(429, Retry-After) without any secret being checked, and the owner still gets in from an
address that has not failed. Then tokens end when the secret changes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from command_api.ratelimit import LOGIN_TURNS
from infra.settings import Settings
from tests.conftest import Client

IDENTITY_LIMIT, ADDRESS_LIMIT = 5, 20


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, failure_limit_identity=IDENTITY_LIMIT, failure_limit_address=ADDRESS_LIMIT,
                   failure_limit_window=15 * 60.0)


@asynccontextmanager
async def from_address(service: Any, ip: str) -> AsyncIterator[Client]:
    """A client whose requests come from ``ip`` (any 127.0.0.0/8 address is this host's)."""
    connector = aiohttp.TCPConnector(local_addr=(ip, 0), limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Client(session, service.url)


async def login(client: Client, identity: str, secret: str) -> tuple[int, Any, Any]:
    return await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": secret})


class OneHash:
    """The service's hasher, except that creating a user reuses one real argon2 hash of the
    same secret (a thousand users made in seconds); logins verify with argon2 as always."""

    def __init__(self, real: Any, secret: str) -> None:
        self.real, self.made = real, real.hash(secret)

    def hash(self, secret: str) -> str:
        return self.made

    def verify(self, secret_hash: str, secret: str) -> bool:
        return bool(self.real.verify(secret_hash, secret))


async def test_a_thousand_users_log_in_from_one_address(service: Any, client: Client) -> None:
    app = service.container.store.app
    real = app.hasher
    app.hasher = OneHash(real, "provisioned-1")
    try:
        identities = [f"p{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(1000)]
        gate = asyncio.Semaphore(16)

        async def create(identity: str) -> None:
            async with gate:
                await service.container.store.command(app.create_user, identity, "provisioned-1")

        await asyncio.gather(*[create(i) for i in identities])
    finally:
        app.hasher = real

    gate = asyncio.Semaphore(8)

    async def one(identity: str) -> int:
        async with gate:
            return (await login(client, identity, "provisioned-1"))[0]

    started = time.monotonic()
    answers = await asyncio.gather(*[one(i) for i in identities])
    took = time.monotonic() - started
    print(f"1,000 logins from one address: {took:.1f}s")
    assert answers.count(201) == 1000, {s: answers.count(s) for s in set(answers)}
    # How fast argon2 checks them is the benchmark's to say (token issue), not a timed test's.


async def test_guesses_are_refused_and_the_owner_gets_in(service: Any, client: Client) -> None:
    identity = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    st, _, _ = await client.call("POST", "/users", {"credentials": {"identity": identity, "secret": "right-secret"}})
    assert st == 201
    async with from_address(service, "127.0.0.2") as attacker, from_address(service, "127.0.0.3") as owner:
        gate = asyncio.Semaphore(10)

        async def guess(i: int) -> tuple[int, Any]:
            async with gate:
                st, _, headers = await login(attacker, identity.upper(), f"guess-{i}")
                return st, headers.get("Retry-After")

        attack = asyncio.ensure_future(asyncio.gather(*[guess(i) for i in range(1000)]))
        # Meanwhile, the owner logs in from an address that has not failed.
        st, tokens, _ = await login(owner, identity, "right-secret")
        assert st == 201, tokens
        answers = await attack
        statuses = [a[0] for a in answers]
        # A handful were checked (the limit, plus the turns already under way); the rest were
        # refused at once, with how long to wait.
        assert statuses.count(401) <= IDENTITY_LIMIT + LOGIN_TURNS, statuses.count(401)
        assert statuses.count(429) == 1000 - statuses.count(401)
        assert all(1 <= int(after) <= 15 * 60 * 2 for st, after in answers if st == 429)
        # The right secret from the guessing address is refused too: it learns nothing.
        st, err, headers = await login(attacker, identity, "right-secret")
        assert st == 429 and err["error"] and int(headers["Retry-After"]) >= 1
        assert headers["X-Frame-Options"] == "DENY"
        # The owner again, after the attack, from its own address.
        assert (await login(owner, identity, "right-secret"))[0] == 201

        # Under attack, an address that fails once for the identity is refused for it...
        assert (await login(owner, identity, "a-typo"))[0] == 401
        assert (await login(owner, identity, "right-secret"))[0] == 429
        # ...while another that has not failed is answered.
        async with from_address(service, "127.0.0.4") as phone:
            assert (await login(phone, identity, "right-secret"))[0] == 201
        # The guessing address may still log in other users (its own bucket is not empty).
        other = f"other-{uuid.uuid4().hex[:8]}@example.com"
        await client.call("POST", "/users", {"credentials": {"identity": other, "secret": "other-secret"}})
        assert (await login(attacker, other, "other-secret"))[0] == 201


async def test_one_address_guessing_many_identities_is_refused(service: Any, client: Client) -> None:
    async with from_address(service, "127.0.0.5") as sprayer, from_address(service, "127.0.0.6") as clean:
        identity = f"sprayed-{uuid.uuid4().hex[:8]}@example.com"
        await clean.call("POST", "/users", {"credentials": {"identity": identity, "secret": "right-secret"}})
        answers = [(await login(sprayer, f"n{i}@example.com", "guess-secret"))[0] for i in range(ADDRESS_LIMIT + 2)]
        assert answers == [401] * ADDRESS_LIMIT + [429, 429]
        assert (await login(sprayer, identity, "right-secret"))[0] == 429
        assert (await login(clean, identity, "right-secret"))[0] == 201


async def test_successes_never_count(service: Any, client: Client) -> None:
    identity = f"busy-{uuid.uuid4().hex[:8]}@example.com"
    await client.call("POST", "/users", {"credentials": {"identity": identity, "secret": "right-secret"}})
    answers = await asyncio.gather(*[login(client, identity, "right-secret") for _ in range(3 * ADDRESS_LIMIT)])
    assert [a[0] for a in answers] == [201] * (3 * ADDRESS_LIMIT)
    # A mistyped secret now and then is answered as such.
    assert (await login(client, identity, "mistyped"))[0] == 401
    assert (await login(client, identity, "right-secret"))[0] == 201


async def _thing_limits(service: Any, token: str, ip: str, clean_ip: str,
                        call: Callable[[Client, str], Any], ok: int) -> None:
    """``ADDRESS_LIMIT`` wrong thing secrets from ``ip``: 401 each; then 429 for wrong and right
    alike; a right secret from ``clean_ip`` is answered."""
    async with from_address(service, ip) as guesser, from_address(service, clean_ip) as device:
        assert (await call(device, "dev-secret-1")) == ok
        answers = [await call(guesser, f"wrong-{i}") for i in range(ADDRESS_LIMIT + 1)]
        assert answers == [401] * ADDRESS_LIMIT + [429]
        assert (await call(guesser, "dev-secret-1")) == 429
        assert (await call(device, "dev-secret-1")) == ok


async def _connected(client: Client, token: str) -> str:
    _, thing, _ = await client.call("POST", "/things", {"name": "dev", "credentials": {"secret": "dev-secret-1"}},
                                    token=token)
    _, ch, _ = await client.call("POST", "/channels", {"name": "ch"}, token=token)
    st, _, _ = await client.call("PUT", f"/channels/{ch['id']}/things/{thing['id']}", None, token=token)
    assert st == 201
    return str(ch["id"])


async def test_thing_secret_checks_have_the_same_limits(service: Any, client: Client) -> None:
    _, token = await client.user()
    cid = await _connected(client, token)

    async def identify(c: Client, secret: str) -> int:
        return (await c.call("POST", "/identify", headers={"Authorization": f"Thing {secret}"}))[0]

    async def access(c: Client, secret: str) -> int:
        return (await c.call("POST", f"/channels/{cid}/access", {"secret": secret, "action": "m_write"}))[0]

    async def publish(c: Client, secret: str) -> int:
        return (await c.call("POST", f"/http/channels/{cid}/messages", data=b"[]",
                             headers={"Authorization": f"Thing {secret}",
                                      "Content-Type": "application/senml+json"}))[0]

    await _thing_limits(service, token, "127.0.0.7", "127.0.0.8", identify, 200)
    await _thing_limits(service, token, "127.0.0.9", "127.0.0.10", access, 200)
    await _thing_limits(service, token, "127.0.0.11", "127.0.0.12", publish, 202)


async def test_bootstrap_fetch_has_the_same_limits(service: Any, client: Client) -> None:
    _, token = await client.user()
    ext = f"gw-{uuid.uuid4().hex[:8]}"
    st, _, _ = await client.call("POST", "/things/configs", {"external_id": ext, "external_key": "gw-key-1"},
                                 token=token)
    assert st == 201

    async def fetch(c: Client, key: str) -> int:
        return (await c.call("GET", f"/things/bootstrap/{ext}", headers={"Authorization": f"Thing {key}"}))[0]

    async with from_address(service, "127.0.0.13") as guesser, from_address(service, "127.0.0.14") as gateway:
        answers = [await fetch(guesser, f"wrong-{i}") for i in range(IDENTITY_LIMIT + 1)]
        assert answers == [403] * IDENTITY_LIMIT + [429]
        assert await fetch(guesser, "gw-key-1") == 429
        assert await fetch(gateway, "gw-key-1") == 200
        # The secure fetch counts an unreadable key too, and is refused alike.
        st, _, _ = await guesser.call("GET", f"/things/bootstrap/secure/{ext}", headers={"Authorization": "Thing 00"})
        assert st == 429


async def test_a_new_secret_ends_earlier_tokens(client: Client) -> None:
    identity = f"rot-{uuid.uuid4().hex[:8]}@example.com"
    await client.call("POST", "/users", {"credentials": {"identity": identity, "secret": "first-secret"}})
    _, old, _ = await login(client, identity, "first-secret")
    _, other, _ = await login(client, identity, "first-secret")  # another device's session
    assert (await client.call("GET", "/users/profile", token=old["access_token"]))[0] == 200
    st, _, _ = await client.call("PATCH", "/users/secret", {"old_secret": "first-secret", "new_secret": "second-secret"},
                                 token=old["access_token"])
    assert st == 200
    # In the same second: the tokens from before are over, access and refresh alike...
    for pair in (old, other):
        assert (await client.call("GET", "/users/profile", token=pair["access_token"]))[0] == 401
        assert (await client.call("POST", "/users/tokens/refresh", token=pair["refresh_token"]))[0] == 401
    # ...and those issued right after the change work (no one-second iat decides).
    st, new, _ = await login(client, identity, "second-secret")
    assert st == 201
    assert (await client.call("GET", "/users/profile", token=new["access_token"]))[0] == 200
    st, renewed, _ = await client.call("POST", "/users/tokens/refresh", token=new["refresh_token"])
    assert st == 201
    assert (await client.call("GET", "/users/profile", token=renewed["access_token"]))[0] == 200
    assert (await login(client, identity, "first-secret"))[0] == 401
