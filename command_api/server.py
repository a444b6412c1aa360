"""The HTTP server under the app: requests its parser refuses (a URL or header over the
limit, a malformed request line) are answered as the API answers, before any middleware runs."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from command_api.app import SECURITY_HEADERS

MAX_LINE = 8190  # aiohttp's default limits of the request line and of one header
MAX_FIELD = 8190


def _refusal(status: int, exc: BaseException | None) -> tuple[int, str]:
    """The status and message of a request the parser (or the server around the app) refused;
    never the request's own text, which aiohttp's message echoes."""
    if status >= 500:
        return status, "internal server error"
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        head = bytes(line[:16]) if isinstance(line, (bytes, bytearray)) else str(line)[:16].encode()
        # The URL (C parser), or the request line (pure Python parser); else a header.
        if re.match(rb"(?:[A-Z]+ )?(?:/|\*|https?:)", head, re.IGNORECASE):
            return 414, f"the URL is longer than {MAX_LINE} bytes"
        return 431, f"a request header is longer than {MAX_FIELD} bytes"
    if exc is not None and "too many headers" in str(exc).lower():
        return 431, "too many request headers"
    return status, "malformed HTTP request"


class ApiRequestHandler(RequestHandler):
    """aiohttp's connection handler, whose own error answers are the API's JSON errors with
    the security headers (aiohttp answers them in text/plain, echoing the request)."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs it; refuses a late answer
        elif request.writer.output_size > 0:
            raise ConnectionError("an answer is under way: no error answer can follow")
        else:  # the client's fault, not the server's: no error log with a traceback
            self.logger.debug("refused a malformed request from %s", request.remote, exc_info=exc)
        status, text = _refusal(status, exc)
        resp = web.json_response({"error": text}, status=status,
                                 headers={**SECURITY_HEADERS, "X-Request-ID": str(uuid.uuid4())})
        resp.force_close()
        return resp


class ApiServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are ``ApiRequestHandler``."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return ApiServer(server.request_handler, request_factory=server.request_factory,
                         handler_cancellation=server.handler_cancellation, loop=server._loop,
                         **server._kwargs)
