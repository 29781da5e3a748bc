"""Application logging: one line per record on stderr, with a TRACE level below DEBUG."""

from __future__ import annotations

import logging
import sys

TRACE = 5


def configure_logging(level: str) -> None:
    logging.addLevelName(TRACE, "TRACE")
    numeric = TRACE if level == "TRACE" else getattr(logging, level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Quart/hypercorn/httpx are chatty at INFO; keep them one step quieter than ours.
    for name in ("httpx", "httpcore", "hpack", "quart.serving", "coredis"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
