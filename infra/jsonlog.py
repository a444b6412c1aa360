"""Logs as JSON lines: one object per record, with the request id of the request it belongs to."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

# The id of the HTTP request being served (set by the API's middleware), for every line it logs.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("smq_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line; quotes or newlines in a message
    cannot break the line, because the whole object goes through ``json.dumps``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup(level: str | int = "INFO", stream: Any = None) -> logging.Handler | None:
    """Send every log record to ``stream`` (stderr) as JSON lines; the handler installed.

    Like ``logging.basicConfig``, it leaves a root logger that already has handlers (a host
    such as pytest) as it is, apart from the level."""
    root = logging.getLogger()
    root.setLevel(level)
    if root.handlers:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    return handler
