"""The health report (GraphQL `health`, GET /health, the MCP `health` tool)."""

from __future__ import annotations

from typing import Any

import coredis
import trio

from proxyd import __version__
from proxyd.manage.errors import ManageContext


async def health_report(ctx: ManageContext) -> dict[str, Any]:
    redis_ok = False
    try:
        with trio.move_on_after(0.5):  # a hung Redis is an unreachable one
            redis_ok = bool(await ctx.store.redis.ping())
    except (OSError, coredis.exceptions.RedisError):
        redis_ok = False
    return {
        "status": "ok" if redis_ok else "degraded",
        "version": __version__,
        "instance": ctx.settings.instance,
        "redis": "ok" if redis_ok else "unreachable",
        "proxies": len(ctx.manager.proxies),
        "log_records_dropped": ctx.request_log.dropped if ctx.request_log else 0,
    }
