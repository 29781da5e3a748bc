"""What a fresh proxyd installs on first start: the `localhost` proxy (whose target is the
in-process API app) and the default routes, as in the reference system.

Defaults are created only when missing, and default routes only once (a marker key remembers), so
an operator's later changes or deletions are kept across restarts.
"""

from __future__ import annotations

import attrs
import coredis

from proxyd.store.models import Proxy, Route
from proxyd.store.repository import Conflict, Store

DEFAULT_ROUTES_MARKER = "defaults:routes:v1"

DEFAULT_PROXIES = [
    Proxy(
        hostname="localhost",
        target_url="internal://api",
        enable_http=True,
        enable_https=False,
        auth_enabled=False,
        resource_scopes=["admin", "user", "mcp"],
    )
]

DEFAULT_ROUTES = [
    Route(
        route_id="acme-challenge",
        path_pattern="/.well-known/acme-challenge/",
        target_type="service",
        target_value="api",
        priority=100,
        description="ACME HTTP-01 challenges are answered by proxyd itself",
    ),
    Route(
        route_id="oauth-authorization-server",
        path_pattern="/.well-known/oauth-authorization-server",
        target_type="service",
        target_value="api",
        priority=90,
        description="OAuth 2.0 authorization server metadata (RFC 8414)",
    ),
]


async def install_defaults(store: Store) -> list[str]:
    """Create missing defaults; returns what was created (for the startup log)."""
    created = []
    for proxy in DEFAULT_PROXIES:
        if await store.ensure_proxy(Proxy(**_fields(proxy))):
            created.append(f"proxy {proxy.hostname}")
    if await store.redis.set(DEFAULT_ROUTES_MARKER, "1", condition=coredis.PureToken.NX):
        for route in DEFAULT_ROUTES:
            try:
                await store.create_route(Route(**_fields(route)), actor="system")
                created.append(f"route {route.route_id}")
            except Conflict:
                pass
    return created


def _fields(obj) -> dict:
    return attrs.asdict(obj, recurse=False)
