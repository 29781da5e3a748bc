"""Proxies: list, show, create, update, delete."""

from __future__ import annotations

from typing import Any

from proxyd.manage.errors import ManageContext, hostname_key, translated
from proxyd.store.models import Proxy


async def list_proxies(ctx: ManageContext) -> list[Proxy]:
    return await ctx.store.list_proxies()


async def get_proxy(ctx: ManageContext, hostname: str) -> Proxy | None:
    return await ctx.store.get_proxy(hostname_key(hostname))


async def create_proxy(ctx: ManageContext, fields: dict[str, Any]) -> Proxy:
    """fields: Proxy attributes in snake_case; None values mean "the default"."""
    data = {k: v for k, v in fields.items() if v is not None}
    with translated():
        return await ctx.store.create_proxy(Proxy(**data), actor=ctx.actor)


async def update_proxy(ctx: ManageContext, hostname: str, changes: dict[str, Any]) -> Proxy:
    with translated():
        return await ctx.store.update_proxy(hostname_key(hostname), changes)


async def delete_proxy(ctx: ManageContext, hostname: str) -> bool:
    with translated():
        await ctx.store.delete_proxy(hostname_key(hostname))
    return True
