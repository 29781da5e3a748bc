"""Upstream plumbing shared by the forwarders: the TLS context for https/wss upstreams, the
per-proxy HTTP connection pool, and parsing of target URLs (cached: the same few targets are
looked up on every request).
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from urllib.parse import urlsplit

import attrs

from proxyd.edge.http1 import ConnectionPool


@lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for all upstream connections (building one costs milliseconds)."""
    return ssl.create_default_context()


def new_pool(*, connect_timeout: float, request_timeout: float, keepalive: int) -> ConnectionPool:
    return ConnectionPool(
        connect_timeout=connect_timeout,
        read_timeout=request_timeout,
        ssl_context=shared_ssl_context(),
        max_idle_per_host=keepalive,
    )


@attrs.frozen
class Target:
    key: tuple[str, str, int]  # (scheme, host, port): the connection-pool key
    base_path: bytes  # path prefix of the target URL, without a trailing slash
    netloc: bytes  # host[:port] as written in the URL, for the Host header

    def request_target(self, raw_path: bytes, query: bytes) -> bytes:
        target = self.base_path + raw_path
        return target + b"?" + query if query else target


@lru_cache(maxsize=4096)
def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or (443 if scheme in ("https", "wss") else 80)
    return Target(
        key=(scheme, parts.hostname or "", port),
        base_path=parts.path.rstrip("/").encode("latin-1"),
        netloc=parts.netloc.encode("latin-1"),
    )
