"""Unfiltered list totals come from counts kept with the rows: they must equal the rows."""

from __future__ import annotations

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
