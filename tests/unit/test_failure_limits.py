"""The client address the failure limits count by, and the token epoch claim."""

from __future__ import annotations

import uuid
from typing import Any

from command_api.ratelimit import address_of
from infra.tokens import Tokens


class Peer:
    def __init__(self, remote: str | None) -> None:
        self.remote = remote


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() -> None:
    def of(remote: str | None) -> str:
        request: Any = Peer(remote)
        return address_of(request)

    assert of("2001:db8:1:2::1") == of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert of("2001:db8:1:3::1") != of("2001:db8:1:2::1")
    assert of("::ffff:10.0.0.7") == of("10.0.0.7") == "10.0.0.7"
    assert of(None) == "unknown"


def test_tokens_carry_the_epoch_they_were_issued_in() -> None:
    tokens = Tokens("s" * 40, 60, 600)
    uid = uuid.uuid4()
    pair = tokens.issue(uid, "a@example.com", "user", 3)
    assert tokens.check(pair["access_token"], "access").epoch == 3
    assert tokens.check(pair["refresh_token"], "refresh").epoch == 3
    assert tokens.check(tokens.issue(uid, "a@example.com", "user")["access_token"], "access").epoch == 0
