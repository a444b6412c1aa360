"""What the HTTP parser refuses is answered without echoing the request: a long URL 414, a
long header 431, anything else 400."""

from __future__ import annotations

import pytest
from aiohttp.http_exceptions import BadHttpMessage, InvalidHeader, LineTooLong

from command_api.server import _refusal


@pytest.mark.parametrize(("exc", "status"), [
    (LineTooLong(bytearray(b"/things?name=aaaa") + b"...", 8190), 414),   # the C parser: the URL
    (LineTooLong(b"GET /things?name=aaaa...", 8190), 414),                # the Python one: the line
    (LineTooLong(b"http://host/things...", 8190), 414),
    (LineTooLong(b"X-Big", 8190), 431),
    (LineTooLong(b"aaaaaaaa...", 8190), 431),
    (LineTooLong(b"Referer: https://x/y...", 8190), 431),
    (BadHttpMessage("Too many headers received"), 431),
    (InvalidHeader(b"X-Secret\x01: s3cret"), 400),
])
def test_parser_refusals(exc: Exception, status: int) -> None:
    got, message = _refusal(400, exc)
    assert got == status
    assert "aaaa" not in message and "s3cret" not in message and "Referer" not in message


def test_a_server_error_says_nothing_inside() -> None:
    assert _refusal(500, RuntimeError("password=hunter2")) == (500, "internal server error")
