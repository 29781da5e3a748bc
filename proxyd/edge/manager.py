"""ProxyManager: the in-memory configuration snapshot of this process (proxies, routes, external
services) and the ProxyApp of every proxy.

A ProxyApp needs no task of its own while it serves (its requests run in the listeners' tasks), so
none is started for it: a task with its nursery and cancel scope cost about 5.5 kB per proxy. A
removed proxy is retired in the manager's nursery (requests in flight get up to 10 s, then its
upstream connections close); when the manager stops, every proxy's idle upstream connections
close.

The snapshot is loaded from Redis at start, kept current by workflow events (apply) and repaired
by a periodic full reload (reconcile). Applying an event re-reads the affected objects from Redis,
so replayed or reordered events converge on what Redis holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import trio

from proxyd.config import Settings
from proxyd.edge.proxy_app import INTERNAL_SERVICES, ProxyApp
from proxyd.edge.routing import RouteTable
from proxyd.events.bus import Event, EventBus
from proxyd.oauth.protect import ProxyAuth
from proxyd.store.models import Proxy, Route
from proxyd.store.repository import Store

log = logging.getLogger("proxyd.edge.manager")


class ProxyManager:
    def __init__(self, settings: Settings, store: Store, api_app: Callable, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.api_app = api_app
        self.bus = bus
        self.request_log: Any = None  # proxyd.logs RequestLog; None: requests not recorded
        self.proxies: dict[str, ProxyApp] = {}
        self.auth = ProxyAuth(settings, store, self._proxy)  # checks for auth-enabled proxies
        self.routes = RouteTable([])
        self.services: dict[str, str] = {}
        # Docker services (proxyd.docker): name -> URL, ServiceDown, or None when unknown.
        self.service_lookup: Callable[[str], Any] = lambda name: None
        self._nursery: trio.Nursery | None = None
        self._lock = trio.Lock()
        self.remote_hosts = frozenset(
            h.strip().lower() for h in settings.management_remote_hosts.split(",") if h.strip()
        )
        self.issuer_host = (urlsplit(settings.issuer).hostname or "").lower()
        self._internal_cache: dict[str, bool] = {}
        self._internal_netlocs = {
            f"127.0.0.1:{settings.api_port}",
            f"localhost:{settings.api_port}",
            f"[::1]:{settings.api_port}",
        }

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the snapshot, then serve until cancelled (removed proxies retire in this nursery)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.reload()
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                for app in list(self.proxies.values()):
                    await app.pool.aclose()

    # -- snapshot maintenance -----------------------------------------------------------------
    async def reload(self) -> None:
        """Replace the whole snapshot with what Redis holds now."""
        async with self._lock:
            proxies = await self.store.list_proxies()
            routes = await self.store.list_routes()
            services = await self.store.list_external_services()
            await self.auth.reload()
            self.routes = RouteTable(routes)
            self.services = {s.service_name: s.target_url for s in services if s.routing_enabled}
            wanted = {p.hostname: p for p in proxies}
            for hostname in list(self.proxies):
                if hostname not in wanted:
                    await self._remove(hostname)
            for proxy in proxies:
                await self._put(proxy)

    async def reconcile_forever(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.settings.reconcile_interval)
            try:
                await self.reload()
            except Exception:
                log.exception("reconcile from Redis failed; will retry")

    async def apply(self, event: Event) -> None:
        """Apply one workflow event to the snapshot, then tell in-process listeners."""
        kind = event.event_type
        async with self._lock:
            if kind.startswith("proxy_") or kind == "certificate_ready":
                if event.hostname:
                    proxy = await self.store.get_proxy(event.hostname)
                    if proxy is None:
                        await self._remove(event.hostname)
                    else:
                        await self._put(proxy)
            elif kind.startswith("route_"):
                self.routes = RouteTable(await self.store.list_routes())
            elif kind.startswith("service_"):
                services = await self.store.list_external_services()
                self.services = {
                    s.service_name: s.target_url for s in services if s.routing_enabled
                }
            elif kind == "token_revoked":
                self.auth.apply_event(event.data)
        self.bus.publish(event)

    async def _put(self, proxy: Proxy) -> None:
        app = self.proxies.get(proxy.hostname)
        if app is not None:
            app.proxy = proxy  # settings swap in place; in-flight requests keep their snapshot
            return
        assert self._nursery is not None, "ProxyManager.run() must be started first"
        app = ProxyApp(proxy, self)
        self.proxies[proxy.hostname] = app
        log.info("proxy %s -> %s is serving", proxy.hostname, proxy.target_url)

    async def _remove(self, hostname: str) -> None:
        app = self.proxies.pop(hostname, None)
        if app is not None:
            assert self._nursery is not None
            self._nursery.start_soon(_retire, app)
            log.info("proxy %s removed", hostname)

    # -- target resolution (hot path: dict lookups only) -----------------------------------------
    def _proxy(self, hostname: str) -> Proxy | None:
        app = self.proxies.get(hostname)
        return app.proxy if app is not None else None

    def is_internal(self, url: str) -> bool:
        internal = self._internal_cache.get(url)
        if internal is None:
            internal = url.startswith("internal://") or (
                urlsplit(url).netloc in self._internal_netlocs
            )
            if len(self._internal_cache) > 4096:
                self._internal_cache.clear()
            self._internal_cache[url] = internal
        return internal

    def resolve_target(self, route: Route, proxy: Proxy) -> Any:
        """The target of route: a URL string, or a ProxyApp for hostname targets; None if unknown."""
        kind, value = route.target_type, route.target_value
        if kind == "url":
            return value
        if kind == "port":
            return f"http://127.0.0.1:{value}"
        if kind == "hostname":
            app = self.proxies.get(value)
            if app is None or app.proxy.hostname == proxy.hostname:
                return None if app is None else self.proxy_target(app.proxy)
            return app
        return self.resolve_service(value)

    def resolve_service(self, name: str) -> Any:
        """A service's URL (Docker, external or internal), a ServiceDown marker, or None."""
        if name in INTERNAL_SERVICES:
            return "internal://api"
        found = self.service_lookup(name)
        return found if found is not None else self.services.get(name)

    def proxy_target(self, proxy: Proxy) -> Any:
        """Where a request that no route takes goes: the proxy's target URL, resolved when it
        names a service (service://NAME)."""
        url = proxy.target_url
        if url.startswith("service://"):
            return self.resolve_service(url[10:])
        return url


async def _retire(app: ProxyApp) -> None:
    """A removed proxy: let its requests in flight finish (ProxyApp.stop waits up to 10 s), then
    close its idle upstream connections."""
    try:
        await app.stop()
    finally:
        with trio.CancelScope(shield=True):
            await app.pool.aclose()
