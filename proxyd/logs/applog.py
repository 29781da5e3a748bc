"""Structured application logs: every log record has a component (the logger name without the
`proxyd.` prefix), a level, a message and fields (whatever was passed as `extra=`, or
`extra={"fields": {...}}`). They are written to stderr as one line each (text: key=value, or
JSON) and kept in a bounded in-memory ring buffer that the admin-only `applicationLogs` GraphQL
query reads. Field values whose names look like credentials are masked.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
from typing import Any

from proxyd.logs.masking import mask_fields

TRACE = 5
# Attributes every LogRecord has; anything else came in through `extra=` and is a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "fields", "taskName"}
)


def component(name: str) -> str:
    return name.removeprefix("proxyd.") if name != "proxyd" else "proxyd"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        fields.update(extra)
    return mask_fields(fields)


def to_entry(record: logging.LogRecord) -> dict[str, Any]:
    """A log record as a plain dict: timestamp, level, component, message, fields."""
    message = record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        message += " (" + record.exc_info[0].__name__ + ")"
    return {
        "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname,
        "component": component(record.name),
        "message": message,
        "fields": fields_of(record),
    }


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class StructuredFormatter(logging.Formatter):
    """`TIME LEVEL component: message key=value ...` or one JSON object per line."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        entry = to_entry(record)
        trace = self.formatException(record.exc_info) if record.exc_info else ""
        if self.json:
            if trace:
                entry["traceback"] = trace
            return json.dumps(entry, default=str)
        parts = [entry["timestamp"], entry["level"], f"{entry['component']}:", entry["message"]]
        parts += [f"{k}={_value(v)}" for k, v in entry["fields"].items()]
        line = " ".join(parts)
        return f"{line}\n{trace}" if trace else line


class RingBuffer(logging.Handler):
    """Keeps the last `capacity` log entries in memory (newest last)."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__()
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.entries.append(to_entry(record))
        except Exception:  # noqa: BLE001 - a broken log record must never break the caller
            self.handleError(record)

    def recent(
        self, level: str | None = None, component_prefix: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest first, at most limit, at or above level, optionally one component (prefix)."""
        minimum = logging.getLevelName(level.upper()) if level else 0
        out = []
        for entry in reversed(self.entries):
            if minimum and logging.getLevelName(entry["level"]) < minimum:
                continue
            if component_prefix and not entry["component"].startswith(component_prefix):
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out


# The process-wide buffer; configure_logging() attaches it to the root logger.
RECENT = RingBuffer()
