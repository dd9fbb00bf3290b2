"""Log lines for operators: human-readable by default, one JSON object per line with `LEDGERBRIDGE_LOG_FORMAT=json`.

Every line carries the request id, the account, the plugin and the delivery id when the code logging it runs
for one (`ledgerbridge.observability.context`), so `grep <request id>` follows an event from its webhook to
the vendor's write, across replicas.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from ledgerbridge.observability.context import log_fields

LOG_FORMATS = ("text", "json")
#: httpx logs every request's full URL at INFO, query string (e-mail addresses) included; the vendor hooks log
#: the method and path instead (`ledgerbridge.observability.vendors`)
QUIET_LOGGERS = ("httpx", "httpcore")
CONTEXT_FIELDS = ("request_id", "account", "plugin", "delivery_id")
#: attributes every LogRecord has; anything else on a record was passed in `extra`
#: (and uvicorn's `color_message`, the same message with terminal colours)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class ContextFilter(logging.Filter):
    """Stamp the context's fields on each record that does not carry them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_fields().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """ts, level, logger, msg, request_id, account, plugin, delivery_id, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            line[name] = getattr(record, name, None)
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-11-30 05:00:00,123 INFO ledgerbridge.vendor: message  [request_id=… account=… …]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = [f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None]
        return f"{text}  [{' '.join(known)}]" if known else text


def configure_logging(log_format: str = "text", level: str | int = "info", stream: TextIO | None = None) -> None:
    """One handler on the root logger (replacing one set here before), in the chosen format."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LEDGERBRIDGE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "ledgerbridge", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.ledgerbridge = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    root.setLevel(numeric if isinstance(numeric, int) else logging.DEBUG)  # uvicorn's "trace" is below debug
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
