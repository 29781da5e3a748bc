"""Routes: list, show, create, update, delete, the routes a proxy uses, and which route a
request would take."""

from __future__ import annotations

import re
from typing import Any

from proxyd.edge.routing import RouteTable
from proxyd.manage.errors import ManageContext, ManageError, hostname_key, translated
from proxyd.store.models import Proxy, Route


async def list_routes(ctx: ManageContext) -> list[Route]:
    return await ctx.store.list_routes()


async def get_route(ctx: ManageContext, route_id: str) -> Route | None:
    return await ctx.store.get_route(route_id)


async def routes_for_proxy(ctx: ManageContext, proxy: Proxy) -> list[Route]:
    table = RouteTable(await ctx.store.list_routes())
    return [compiled.route for compiled in table.for_proxy(proxy)]


def route_id_for(path: str, priority: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:40] or "root"
    return f"{slug}-{priority}"


async def create_route(ctx: ManageContext, fields: dict[str, Any]) -> Route:
    data = dict(fields)
    if not data.get("route_id"):
        data["route_id"] = route_id_for(data.get("path_pattern", ""), data.get("priority", 50))
    data = {k: v for k, v in data.items() if v is not None}
    with translated():
        return await ctx.store.create_route(Route(**data), actor=ctx.actor)


async def update_route(ctx: ManageContext, route_id: str, changes: dict[str, Any]) -> Route:
    with translated():
        return await ctx.store.update_route(route_id, changes)


async def delete_route(ctx: ManageContext, route_id: str) -> bool:
    with translated():
        await ctx.store.delete_route(route_id)
    return True


async def match_route(
    ctx: ManageContext, hostname: str, path: str, method: str = "GET"
) -> Route | None:
    """The route a request for `method hostname path` would take (None: the proxy's target)."""
    proxy = await ctx.store.get_proxy(hostname_key(hostname))
    if proxy is None:
        raise ManageError(f"no proxy {hostname_key(hostname)!r}.", "NOT_FOUND")
    if not path.startswith("/"):
        raise ManageError(f"path must start with '/', not {path!r}.", "BAD_USER_INPUT")
    table = RouteTable(await ctx.store.list_routes())
    return RouteTable.match(table.for_proxy(proxy), method.upper(), path)
