"""Unfiltered list totals come from counts kept with the rows: they must equal the rows."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from command_api.listing import TOTALS, Totals
from tests.conftest import ADMIN, Client


async def test_totals_from_counts_equal_the_listed_rows(client: Client) -> None:
    a_id, a = await client.user()
    b_id, b = await client.user()
    _, mine, _ = await client.call("POST", "/things/bulk", [{"name": f"a{i}"} for i in range(5)], token=a)
    _, theirs, _ = await client.call("POST", "/things/bulk", [{"name": f"b{i}"} for i in range(3)], token=b)
    for t in mine["things"][:2]:
        assert (await client.call("POST", f"/things/{t['id']}/disable", token=a))[0] == 200
    await client.call("POST", f"/things/{mine['things'][0]['id']}/disable", token=a)  # again: no change
    await client.call("POST", f"/things/{mine['things'][1]['id']}/enable", token=a)
    for t in theirs["things"][:2]:
        st, _, _ = await client.call("POST", f"/things/{t['id']}/share", {"user_ids": [a_id], "actions": ["c_list"]},
                                     token=b)
        assert st == 200
    await client.call("POST", f"/things/{theirs['things'][0]['id']}/disable", token=b)
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    # b's writes must be in the view before a reads them: b's own read waits for them.
    await client.call("GET", "/things", token=b)

    expected = {("a", "enabled"): 5, ("a", "disabled"): 2, ("a", "all"): 7,
                ("b", "enabled"): 2, ("b", "disabled"): 1, ("b", "all"): 3,
                ("admin", "enabled"): 6, ("admin", "disabled"): 2, ("admin", "all"): 8}
    tokens = {"a": a, "b": b, "admin": admin["access_token"]}
    for (who, status), n in expected.items():
        st, page, _ = await client.call("GET", f"/things?status={status}&limit=100", token=tokens[who])
        assert st == 200
        assert page["total"] == len(page["things"]) == n, (who, status, page["total"], len(page["things"]))
        # The filtered path (a count over the rows) agrees with the counts.
        st, named, _ = await client.call("GET", f"/things?status={status}&limit=100&metadata=%7B%7D",
                                         token=tokens[who])
        assert named["total"] == n

    _, ch, _ = await client.call("POST", "/channels/bulk", [{"name": "c0"}, {"name": "c1"}], token=b)
    st, _, _ = await client.call("POST", "/policies", {"subject": a_id, "object": ch["channels"][0]["id"],
                                                      "actions": ["c_list"]}, token=b)
    assert st == 201
    await client.call("POST", f"/channels/{ch['channels'][1]['id']}/disable", token=b)
    await client.call("GET", "/channels", token=b)
    st, page, _ = await client.call("GET", "/channels?limit=100", token=a)
    assert page["total"] == len(page["channels"]) == 1
    st, page, _ = await client.call("GET", "/channels?status=all&limit=100", token=b)
    assert page["total"] == len(page["channels"]) == 2


async def test_a_filtered_total_is_remembered_only_while_the_views_stand_still(client: Client, service: Any) -> None:
    """A filtered list's count is reused only for a snapshot whose view positions equal
    those it was counted at; any write to the views counts again."""
    totals = service.runner.app[TOTALS]
    a_id, a = await client.user()
    b_id, b = await client.user()
    meta = {"group": "g1"}
    q = "/things?metadata=" + quote(json.dumps(meta))
    st, _, _ = await client.call("POST", "/things/bulk", [{"name": f"m{i}", "metadata": meta} for i in range(3)]
                                 + [{"name": "other", "metadata": {"group": "g2"}}], token=a)
    assert st == 200
    st, page, _ = await client.call("GET", q, token=a)
    assert st == 200 and page["total"] == 3 and len(page["things"]) == 3
    # Counted once and remembered: tamper with the remembered total; while nothing moves, the
    # next list answers it (so it was reused, not counted again)...
    [key] = [k for k in totals._known if str(a_id) in k]
    positions, total, at = totals._known[key]
    assert total == 3
    totals._known[key] = (positions, 99, at)
    st, page, _ = await client.call("GET", q, token=a)
    assert st == 200 and page["total"] == 99 and len(page["things"]) == 3
    # Writes the things view ignores (a channel) leave its ``changed`` position: still reused.
    st, _, _ = await client.call("POST", "/channels", {"name": "c"}, token=b)
    assert st == 201
    await client.call("GET", "/channels", token=b)  # b's write is in the views
    st, page, _ = await client.call("GET", q, token=a)
    assert st == 200 and page["total"] == 99
    # ...and once the things view changes (here another user's thing, which matches nothing of
    # a's), it is counted again: exact, whatever was remembered.
    st, _, _ = await client.call("POST", "/things", {"name": "b's", "metadata": meta}, token=b)
    assert st == 201
    await client.call("GET", "/things", token=b)  # b's write is in the views
    st, page, _ = await client.call("GET", q, token=a)
    assert st == 200 and page["total"] == 3
    # A's own new match is counted at once (read-your-writes, then a recount).
    st, _, _ = await client.call("POST", "/things", {"name": "m3", "metadata": meta}, token=a)
    st, page, _ = await client.call("GET", q + "&limit=2", token=a)
    assert st == 200 and page["total"] == 4 and len(page["things"]) == 2
    assert totals._known[key][1] == 4
    # Bounded: the oldest entries go first.
    small = Totals(size=2)
    for i in range(3):
        small.put((i,), [i], i)
    assert small.get((0,)) is None and small.get((2,)) == ([2], 2)
    stale = Totals(keep=-1.0)  # everything remembered is already too old
    stale.put((0,), [0], 0)
    assert stale.get((0,)) is None


async def test_concurrent_lists_of_one_filter_wait_for_one_count(client: Client, service: Any) -> None:
    totals = service.runner.app[TOTALS]
    _, a = await client.user()
    meta = {"herd": "h1"}
    st, _, _ = await client.call("POST", "/things/bulk", [{"name": f"h{i}", "metadata": meta} for i in range(7)],
                                 token=a)
    assert st == 200
    await client.call("GET", "/things", token=a)  # the writes are in the views
    counted: list[int] = []
    put = totals.put

    def counting_put(key: Any, positions: list[int], total: int) -> None:
        counted.append(total)
        put(key, positions, total)

    totals.put = counting_put
    try:
        q = "/things?metadata=" + quote(json.dumps(meta))
        answers = await asyncio.gather(*(client.call("GET", q, token=a) for _ in range(8)))
    finally:
        totals.put = put
    assert [(st, body["total"]) for st, body, _ in answers] == [(200, 7)] * 8
    assert counted == [7]  # one count for the eight
    assert totals.counting == {}
