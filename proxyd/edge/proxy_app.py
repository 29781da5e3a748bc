"""ProxyApp: the server object of one proxy (hostname), and the protocol-neutral request path
that the h1 server and hypercorn's h2 path both call (through the Dispatcher).

For one request, in order: enabled check; the auth check (proxyd.oauth.protect, local, no Redis)
on the normalised path; the route match on that same path; for the management app (internal
targets) the remote-access policy; the header policy (proxyd.edge.headers); then forwarding
(HTTP streaming, an upgrade tunnel on h1, or a WebSocket relay on h2). The user, client id and
auth outcome are left in the scope for the request log.

It holds a snapshot of its Proxy settings (swapped in place on proxy_updated) and its upstream
client pool, and runs no task of its own; nothing on its request path touches Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import trio

from proxyd.edge.forward import forward_http, send_refusal
from proxyd.edge.headers import (
    client_ip,
    header_value,
    is_trusted,
    request_host,
    upstream_request_headers,
)
from proxyd.edge.routing import RouteTable
from proxyd.edge.tunnel import forward_upgrade, upgrade_allowed
from proxyd.edge.upstream import new_pool, parse_target
from proxyd.edge.websocket import forward_websocket
from proxyd.logs.hotpath import observe
from proxyd.store.models import Proxy, Route
from proxyd.store.service_models import ServiceDown

log = logging.getLogger("proxyd.edge.proxy")

MAX_HOPS = 4
INTERNAL_SERVICES = frozenset({"api", "proxyd", "internal"})
# Management-app paths every client may reach: the authorization server and its metadata.
OAUTH_PATHS = (
    "/authorize",
    "/callback",
    "/token",
    "/register",
    "/revoke",
    "/introspect",
    "/device",
    "/jwks",
    "/userinfo",
    "/.well-known/",
)


class Manager(Protocol):
    """What a ProxyApp needs from the ProxyManager (proxyd.edge.manager) that owns it."""

    settings: Any
    auth: Any
    routes: RouteTable
    request_log: Any
    api_app: Callable
    remote_hosts: frozenset[str]
    issuer_host: str

    def resolve_target(self, route: Route, proxy: Proxy) -> Any: ...

    def proxy_target(self, proxy: Proxy) -> Any: ...

    def is_internal(self, url: str) -> bool: ...


class ProxyApp:
    def __init__(self, proxy: Proxy, manager: Manager) -> None:
        self.proxy = proxy
        self.manager = manager
        settings = manager.settings
        self.pool = new_pool(
            connect_timeout=settings.proxy_connect_timeout,
            request_timeout=settings.proxy_request_timeout,
            keepalive=settings.upstream_keepalive,
        )
        self.in_flight = 0
        self._idle: trio.Event | None = None  # made by stop() only: most proxies never stop

    async def stop(self, grace: float = 10.0) -> None:
        """Wait for the requests in flight (up to grace seconds). The ProxyManager has removed
        this proxy already, so no new request reaches it, and closes its pool afterwards."""
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle = trio.Event()
                await self._idle.wait()

    # -- request path -----------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive, send) -> None:
        self.in_flight += 1
        try:
            request_log = self.manager.request_log
            if request_log is None or "proxyd.hops" in scope or scope["type"] == "lifespan":
                await self.handle(scope, receive, send)
            else:
                peer = scope["client"][0] if scope.get("client") else None
                client = client_ip(peer, scope["headers"], request_log.trusted_proxies)
                await observe(
                    request_log,
                    self.proxy.hostname,
                    self.handle,
                    scope,
                    receive,
                    send,
                    client=client,
                )
        finally:
            self.in_flight -= 1
            if not self.in_flight and self._idle is not None:
                self._idle.set()

    async def handle(self, scope: dict, receive, send) -> None:
        """Serve one request. The scope is updated in place (the request log reads it)."""
        proxy = self.proxy
        manager = self.manager
        kind = scope["type"]
        if not proxy.enabled:
            await send_refusal(
                scope, send, 503, f"503 Service Unavailable: {proxy.hostname} is disabled."
            )
            return
        extra = proxy.custom_headers
        headers = scope["headers"]
        if proxy.auth_enabled:  # proxyd.oauth.protect: local token check, no Redis round trip
            outcome = await manager.auth.check(scope, proxy)
            identity = outcome.identity
            if identity is not None:
                scope["proxyd.user"] = identity.subject
                scope["proxyd.client_id"] = identity.client_id or ""
            if outcome.status:
                scope["proxyd.auth_outcome"] = "unauthorized" if outcome.status == 401 else "denied"
                if outcome.status in (200, 204, 302, 303, 307):
                    scope["proxyd.auth_outcome"] = "answered"
                await outcome.send(scope, send)
                return
            scope["proxyd.auth_outcome"] = "authenticated" if identity is not None else "anonymous"
            if outcome.request_headers is not None:
                headers = outcome.request_headers
            if outcome.headers:
                extra = {**(extra or {}), **outcome.headers}
        path = scope["path"]
        route = RouteTable.match(manager.routes.for_proxy(proxy), scope.get("method", "GET"), path)
        target = manager.resolve_target(route, proxy) if route else manager.proxy_target(proxy)
        if target is None:
            what = f"route {route.route_id}" if route else f"proxy {proxy.hostname}"
            await send_refusal(scope, send, 502, f"502 Bad Gateway: {what} has no target.")
            return
        if isinstance(target, ServiceDown):  # a Docker service whose container is not running
            word = "stopped" if target.status in ("exited", "created", "dead") else target.status
            await send_refusal(
                scope, send, 503, f"503 Service Unavailable: service {target.name} is {word}."
            )
            return
        if isinstance(target, ProxyApp):
            hops = scope.get("proxyd.hops", 0) + 1
            if hops >= MAX_HOPS:
                await send_refusal(
                    scope, send, 508, "508 Loop Detected: routes point back and forth."
                )
                return
            inner = dict(scope, headers=headers)
            inner["proxyd.hops"] = hops
            await target(inner, receive, send)
            return

        settings = manager.settings
        peer = scope["client"][0] if scope.get("client") else None
        trusted = settings.trusted_proxies
        client = client_ip(peer, headers, trusted)
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = scope.get("proxyd.host")  # the Dispatcher's request_host(), already worked out
        if host is None:
            host = request_host(headers)
        host = host or proxy.hostname
        # Host as the client sent it (with its port) for the backend and X-Forwarded-Host: the
        # h1 server and the h2 checks have validated it.
        sent_host = header_value(headers, b"host")
        authority = sent_host.decode("latin-1") if sent_host else host
        internal = manager.is_internal(target)
        if internal and not self._management_allowed(client, host, path):
            await send_refusal(
                scope,
                send,
                403,
                "403 Forbidden: the management app answers only local clients here "
                "(see MANAGEMENT_REMOTE_NETWORKS and MANAGEMENT_REMOTE_HOSTS).",
            )
            return
        parsed = None if internal else parse_target(target)
        upstream_host = b"" if parsed is None else parsed.netloc
        upstream_headers = upstream_request_headers(
            headers,
            peer=peer,
            client=client,
            scheme=scheme,
            host=authority,
            trusted=trusted,
            auth_prefix=proxy.auth_header_prefix.lower().encode("latin-1"),
            preserve_host=proxy.preserve_host_header or internal,
            upstream_host=upstream_host,
            extra=extra,
            allow_underscores=settings.edge_allow_underscores_in_headers,
        )
        upgrade = scope.get("proxyd.upgrade")
        if upgrade is not None and upgrade_allowed(upgrade):
            if internal:
                parsed = parse_target(settings.api_url)
            await forward_upgrade(
                scope,
                send,
                pool=self.pool,
                key=parsed.key,
                target=parsed.request_target(scope["raw_path"], scope.get("query_string", b"")),
                headers=upstream_headers,
                label=proxy.hostname,
            )
            return
        if internal:
            inner = dict(scope, headers=upstream_headers)
            inner["proxyd.client_ip"] = client
            await manager.api_app(inner, receive, send)
            return
        if kind == "websocket":
            url = _join(target, scope)
            ws_url = "ws" + url[4:] if url.startswith("http") else url
            await forward_websocket(
                scope,
                receive,
                send,
                url=ws_url,
                headers=upstream_headers,
                connect_timeout=settings.proxy_connect_timeout,
                label=proxy.hostname,
            )
            return
        await forward_http(
            scope,
            receive,
            send,
            pool=self.pool,
            key=parsed.key,
            target=parsed.request_target(scope["raw_path"], scope.get("query_string", b"")),
            headers=upstream_headers,
            label=proxy.hostname,
            response_headers=proxy.custom_response_headers,
        )

    def _management_allowed(self, client: str, host: str, path: str) -> bool:
        """Who may reach the management app through the public listeners: by the real client
        address (through TRUSTED_PROXIES), so a trusted proxy relaying a remote client does not
        make that client local."""
        if path.startswith(OAUTH_PATHS):
            return True
        manager = self.manager
        if host == manager.issuer_host and (path == "/mcp" or path.startswith("/mcp/")):
            return True
        if host in manager.remote_hosts:
            return True
        return is_trusted(client, _LOOPBACK) or is_trusted(
            client, manager.settings.management_remote_networks
        )


def _networks(*cidrs: str) -> Sequence:
    import ipaddress

    return tuple(ipaddress.ip_network(c) for c in cidrs)


_LOOPBACK = _networks("127.0.0.0/8", "::1/128")


def _join(base: str, scope: dict) -> str:
    path = scope["raw_path"].decode("latin-1")
    query = scope.get("query_string", b"")
    url = base.rstrip("/") + path
    if query:
        url += "?" + query.decode("latin-1")
    return url
