"""Route matching, precompiled: a RouteTable is built once per configuration change and answers
"which route takes this request" without touching Redis.

Order: routes that apply to the proxy (global ones plus proxy-scoped ones naming it, filtered by
the proxy's route_mode / enabled_routes / disabled_routes), highest priority first, then route id.
A route matches when it is enabled, its methods (if any) include the method, and its path prefix
matches (or its regex matches from the start of the path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import attrs

from proxyd.store.models import Proxy, Route


@attrs.frozen
class CompiledRoute:
    route: Route
    methods: frozenset[str] | None
    matches_path: Callable[[str], bool]


def compile_route(route: Route) -> CompiledRoute:
    if route.is_regex:
        matcher = re.compile(route.path_pattern).match

        def matches(path: str) -> bool:
            return matcher(path) is not None
    else:
        matches = _prefix_matcher(route.path_pattern)
    methods = frozenset(route.methods) if route.methods else None
    return CompiledRoute(route, methods, matches)


def _prefix_matcher(prefix: str) -> Callable[[str], bool]:
    # "/api" matches "/api", "/api/" and "/api/x" but not "/apix"; "/api/" matches "/api/..." only.
    if prefix.endswith("/"):
        return lambda path: path.startswith(prefix)
    return lambda path: path == prefix or path.startswith(prefix + "/")


class RouteTable:
    """All routes, compiled; per-proxy ordered lists are cached until the table is replaced."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(
            (r for r in routes if r.enabled), key=lambda r: (-r.priority, r.route_id)
        )
        self._compiled = [compile_route(r) for r in self.routes]
        self._per_proxy: dict[tuple, list[CompiledRoute]] = {}

    def for_proxy(self, proxy: Proxy) -> list[CompiledRoute]:
        key = (
            proxy.hostname,
            proxy.route_mode,
            tuple(proxy.enabled_routes),
            tuple(proxy.disabled_routes),
        )
        cached = self._per_proxy.get(key)
        if cached is None:
            cached = self._per_proxy[key] = [c for c in self._compiled if _applies(c.route, proxy)]
        return cached

    @staticmethod
    def match(routes: list[CompiledRoute], method: str, path: str) -> Route | None:
        for compiled in routes:
            if compiled.methods is not None and method not in compiled.methods:
                continue
            if compiled.matches_path(path):
                return compiled.route
        return None


def _applies(route: Route, proxy: Proxy) -> bool:
    if route.scope == "proxy" and proxy.hostname not in route.proxy_hostnames:
        return False
    if proxy.route_mode == "none":
        return False
    if proxy.route_mode == "selective" and route.route_id not in proxy.enabled_routes:
        return False
    return route.route_id not in proxy.disabled_routes
