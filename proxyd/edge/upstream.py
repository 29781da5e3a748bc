"""Upstream plumbing shared by the forwarders: the TLS context for https/wss upstreams, the
per-proxy HTTP connection pool, and parsing of target URLs (cached: the same few targets are
looked up on every request).

The TLS context is built when the first https/wss upstream is connected, not at start: loading
the system CA store costs about 2.4 MB per process, which a proxyd with only http upstreams
never needs to pay.
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


class _SharedContextOnDemand:
    """What each pool holds as its TLS context: every use goes to shared_ssl_context(), which is
    built on the first one (a new https upstream connection), never before."""

    __slots__ = ()

    def wrap_bio(self, *args, **kwargs) -> ssl.SSLObject:  # what trio.SSLStream calls
        return shared_ssl_context().wrap_bio(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(shared_ssl_context(), name)


UPSTREAM_TLS = _SharedContextOnDemand()


def new_pool(*, connect_timeout: float, request_timeout: float, keepalive: int) -> ConnectionPool:
    return ConnectionPool(
        connect_timeout=connect_timeout,
        read_timeout=request_timeout,
        ssl_context=UPSTREAM_TLS,  # type: ignore[arg-type]  # duck-typed: see the class
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
