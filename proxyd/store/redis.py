"""Opening coredis clients from a REDIS_URL (redis://, rediss:// or unix://).

A connection attempt gives up after CONNECT_TIMEOUT seconds (a host that drops packets would
otherwise hold it for minutes). Commands have no client-wide timeout, because blocking reads
(XREADGROUP BLOCK) wait on purpose; the management API bounds its own waits (GRAPHQL_TIMEOUT,
/health) and answers SERVICE_UNAVAILABLE.
"""

from __future__ import annotations

import coredis

CONNECT_TIMEOUT = 5.0


def connect(url: str) -> coredis.Redis:
    """A client for url with text responses; use it as `async with client:`."""
    if url.startswith("unix://"):
        path, _, query = url[len("unix://") :].partition("?")
        db = 0
        for part in query.split("&"):
            if part.startswith("db="):
                db = int(part[3:])
        return coredis.Redis(
            unix_socket_path=path, db=db, decode_responses=True, connect_timeout=CONNECT_TIMEOUT
        )
    return coredis.Redis.from_url(url, decode_responses=True, connect_timeout=CONNECT_TIMEOUT)


def describe(url: str) -> str:
    """The URL without any password, fit for logs and health output."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
