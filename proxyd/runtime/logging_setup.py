"""Application logging: one structured line per record on stderr (component, level, message,
fields; text or JSON per LOG_FORMAT), a TRACE level below DEBUG, and the in-memory ring buffer of
recent records (proxyd.logs.applog.RECENT) that GraphQL `applicationLogs` reads.
"""

from __future__ import annotations

import logging
import sys

from proxyd.logs.applog import RECENT, TRACE, StructuredFormatter

__all__ = ["TRACE", "configure_logging"]


def configure_logging(level: str, fmt: str = "text", buffer_size: int = 1000) -> None:
    """Send every record at `level` or above to stderr and to the recent-logs ring buffer."""
    logging.addLevelName(TRACE, "TRACE")
    numeric = TRACE if level == "TRACE" else getattr(logging, level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter(fmt))
    RECENT.entries = type(RECENT.entries)(maxlen=buffer_size)
    root = logging.getLogger()
    root.handlers[:] = [handler, RECENT]
    root.setLevel(numeric)
    # Quart/hypercorn/httpx are chatty at INFO; keep them one step quieter than ours.
    for name in ("httpx", "httpcore", "hpack", "quart.serving", "coredis"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
