"""ProxyApp: the server object of one proxy (hostname). An ASGI app that picks the route, builds
the upstream headers and forwards HTTP or WebSocket traffic to the chosen target.

It holds a snapshot of its Proxy settings (swapped in place on proxy_updated), its upstream client
pool and its own nursery for background work; nothing on its request path touches Redis.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from proxyd.edge.forward import forward_http, send_error
from proxyd.edge.headers import client_ip, request_host, upstream_request_headers
from proxyd.edge.routing import RouteTable
from proxyd.edge.upstream import new_pool, parse_target
from proxyd.edge.websocket import forward_websocket
from proxyd.logs.hotpath import observe
from proxyd.store.models import Proxy
from proxyd.store.service_models import ServiceDown

if TYPE_CHECKING:
    from proxyd.edge.manager import ProxyManager

log = logging.getLogger("proxyd.edge.proxy")

MAX_HOPS = 4
INTERNAL_SERVICES = frozenset({"api", "proxyd", "internal"})


class ProxyApp:
    def __init__(self, proxy: Proxy, manager: ProxyManager) -> None:
        self.proxy = proxy
        self.manager = manager
        settings = manager.settings
        self.pool = new_pool(
            connect_timeout=settings.proxy_connect_timeout,
            request_timeout=settings.proxy_request_timeout,
            keepalive=settings.upstream_keepalive,
        )
        self.in_flight = 0
        self._idle = trio.Event()
        self._cancel_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None

    # -- lifecycle (run by the ProxyManager, one task per proxy) --------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as self._cancel_scope:
                async with trio.open_nursery() as self.nursery:
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.pool.aclose()

    async def stop(self, grace: float = 10.0) -> None:
        """Let requests in flight finish (up to grace seconds), then stop this proxy's tasks."""
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle = trio.Event()
                await self._idle.wait()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    # -- request path -----------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive, send) -> None:
        self.in_flight += 1
        try:
            request_log = self.manager.request_log
            if request_log is None or "proxyd.hops" in scope or scope["type"] == "lifespan":
                await self.handle(scope, receive, send)
            else:
                await observe(request_log, self.proxy.hostname, self.handle, scope, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def handle(self, scope: dict, receive, send) -> None:
        proxy = self.proxy
        manager = self.manager
        kind = scope["type"]
        if not proxy.enabled:
            await _refuse(
                scope, send, 503, f"503 Service Unavailable: {proxy.hostname} is disabled."
            )
            return
        extra = proxy.custom_headers
        if proxy.auth_enabled:  # proxyd.oauth.protect: local token check, no Redis round trip
            outcome = await manager.auth.check(scope, proxy)
            if outcome.status:
                await outcome.send(scope, send)
                return
            scope = dict(scope, headers=outcome.request_headers or scope["headers"])
            extra = {**(extra or {}), **outcome.headers}
        path = scope["path"]
        route = RouteTable.match(manager.routes.for_proxy(proxy), scope.get("method", "GET"), path)
        target = manager.resolve_target(route, proxy) if route else manager.proxy_target(proxy)
        if target is None:
            what = f"route {route.route_id}" if route else f"proxy {proxy.hostname}"
            await _refuse(scope, send, 502, f"502 Bad Gateway: {what} has no target.")
            return
        if isinstance(target, ServiceDown):  # a Docker service whose container is not running
            word = "stopped" if target.status in ("exited", "created", "dead") else target.status
            await _refuse(
                scope, send, 503, f"503 Service Unavailable: service {target.name} is {word}."
            )
            return
        if isinstance(target, ProxyApp):
            hops = scope.get("proxyd.hops", 0) + 1
            if hops >= MAX_HOPS:
                await _refuse(scope, send, 508, "508 Loop Detected: routes point back and forth.")
                return
            await target(dict(scope, **{"proxyd.hops": hops}), receive, send)
            return

        settings = manager.settings
        peer = scope["client"][0] if scope.get("client") else None
        client = client_ip(peer, scope["headers"], settings.trusted_proxies)
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = request_host(scope["headers"]) or proxy.hostname
        internal = manager.is_internal(target)
        parsed = None if internal else parse_target(target)
        upstream_host = b"" if parsed is None else parsed.netloc
        headers = upstream_request_headers(
            scope["headers"],
            peer=peer,
            client=client,
            scheme=scheme,
            host=host,
            trusted=settings.trusted_proxies,
            auth_prefix=proxy.auth_header_prefix.lower().encode("latin-1"),
            preserve_host=proxy.preserve_host_header or internal,
            upstream_host=upstream_host,
            extra=extra,
        )
        if internal:
            inner = dict(scope, headers=headers)
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
                headers=headers,
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
            target=parsed.request_target(
                scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b"")
            ),
            headers=headers,
            label=proxy.hostname,
            response_headers=proxy.custom_response_headers,
        )


def _join(base: str, scope: dict) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1")
    query = scope.get("query_string", b"")
    url = base.rstrip("/") + path
    if query:
        url += "?" + query.decode("latin-1")
    return url


async def _refuse(scope: dict, send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1011 if status >= 500 else 1008})
        return
    await send_error(send, status, message)
