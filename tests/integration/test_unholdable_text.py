"""Events an older version stored with text PostgreSQL cannot hold (NUL in a name, a metadata
key and value) do not stop the SQL views: the views hold U+FFFD in its place, the event stays
as it is, and `smq replay` gets through them."""

from __future__ import annotations

import uuid
from typing import Any

from domain.base import Meta
from domain.things import Thing
from domain.users import User
from service.replay import replay
from tests.conftest import Client, eventually


async def test_stored_nul_text_reaches_the_views_and_replay(client: Client, service: Any) -> None:
    uid, token = await client.user()
    c = service.container
    store = c.store

    def old_write() -> int:  # as an older version wrote it: no text rule in the domain
        thing = Thing(id=uuid.uuid4(), owner=uuid.UUID(uid), name="evil\x00", secret=f"s-{uuid.uuid4()}",
                      tags=["t\x00"], metadata={"k\x00": "v\x00", "deep": {"x\x00": ["y\x00"]}}, enabled=True)
        user = User(identity=f"nul{uuid.uuid4().hex[:6]}@x.co", name="n\x00", secret_hash="h",
                    metadata={"a\x00": 1}, tags=[], role="user", enabled=True)
        done = store.app.commit(lambda: (thing, [thing, user]), Meta())
        tid[0] = str(thing.id)
        return int(done.position)

    tid = [""]
    bad = await store.run(old_write)
    stored = await store.read(bad - 2, 10)
    assert any(e.data.get("name") == "evil\x00" for e in stored)  # the event stays as it is

    async def passed() -> bool:
        async with c.pool.connection() as conn:
            rows = await (await conn.execute("select view, position from view_positions")).fetchall()
        return len(rows) >= 8 and all(pos >= bad for _, pos in rows)

    await eventually(passed, what="every SQL view past the event with NUL text")
    st, thing, _ = await client.call("GET", f"/things/{tid[0]}", token=token)
    assert st == 200, thing
    assert thing["name"] == "evil\ufffd"
    assert thing["metadata"] == {"k\ufffd": "v\ufffd", "deep": {"x\ufffd": ["y\ufffd"]}}
    # A normal write after it is readable at once.
    st, new, _ = await client.call("POST", "/things", {"name": "after"}, token=token)
    assert st == 201
    st, got, _ = await client.call("GET", f"/things/{new['id']}", token=token)
    assert st == 200 and got["name"] == "after"

    report = await replay(c, wait=10)
    assert report.ok, report.lines()
