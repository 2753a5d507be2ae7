"""Log lines as JSON objects (`log_format: json`), each with the request id it is about.

The request id is set by the engine when it records a request (bot/engine.py `_new_request`), in
a context variable: a door's thread carries it from there on, so every line logged while that
request is handled (the backend's, the store's, the model client's) names it, and a log search
for an id finds the whole request. A thread that has started no request logs none.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

current_request_id: ContextVar[str | None] = ContextVar("concierge_request_id", default=None)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := current_request_id.get()) is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: Literal["text", "json"], level: int = logging.INFO) -> None:
    """JSON lines on stderr at `level` for `json`; `text` leaves Python's default (warnings and
    errors on stderr) as it was."""
    if log_format != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
