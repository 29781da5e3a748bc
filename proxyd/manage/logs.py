"""Request logs (search, live tail), request statistics and the recent application logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import coredis

from proxyd.logs.applog import RECENT
from proxyd.logs.query import LogFilter, QueryError, search, tail
from proxyd.logs.record import to_graphql
from proxyd.logs.stats import MAX_HOURS, request_stats
from proxyd.manage.errors import ManageContext, ManageError

log = logging.getLogger("proxyd.manage.logs")

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_filter(raw: dict[str, Any] | None) -> LogFilter:
    """raw: the GraphQL RequestLogFilter fields in snake_case."""
    try:
        return LogFilter.parse(raw)
    except QueryError as exc:
        raise ManageError(str(exc), "BAD_USER_INPUT") from None


def _slow_ms(ctx: ManageContext) -> float:
    return ctx.settings.log_slow_seconds * 1000


async def search_request_logs(
    ctx: ManageContext, filter: dict[str, Any] | None, limit: int = 50, after: str | None = None
) -> dict[str, Any]:
    """{items: [record...], end_cursor, has_more}; records in the GraphQL (snake_case) shape."""
    criteria = parse_filter(filter)
    try:
        page = await search(
            ctx.store.redis, criteria, limit=limit, after=after, slow_ms=_slow_ms(ctx)
        )
    except QueryError as exc:
        raise ManageError(str(exc), "BAD_USER_INPUT") from None
    return {
        "items": [to_graphql(r) for r in page.items],
        "end_cursor": page.end_cursor,
        "has_more": page.has_more,
    }


async def stats(ctx: ManageContext, hostname: str | None = None, hours: int = 24) -> dict[str, Any]:
    if not 1 <= hours <= MAX_HOURS:
        raise ManageError(f"hours must be from 1 to {MAX_HOURS}, not {hours}.", "BAD_USER_INPUT")
    host = hostname.strip().lower() if hostname and hostname.strip() else None
    return await request_stats(ctx.store.redis, host, hours)


def application_logs(
    level: str | None = None, component: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if level is not None and level.upper() not in LEVELS:
        raise ManageError(
            f"level must be one of {', '.join(LEVELS)}, not {level!r}.", "BAD_USER_INPUT"
        )
    if not 1 <= limit <= 10_000:
        raise ManageError(f"limit must be from 1 to 10000, not {limit}.", "BAD_USER_INPUT")
    return RECENT.recent(level, component or None, limit)


async def tail_request_logs(
    ctx: ManageContext, filter: dict[str, Any] | None
) -> AsyncIterator[dict[str, Any]]:
    criteria = parse_filter(filter)
    try:
        async for record in tail(ctx.store.redis, criteria, _slow_ms(ctx)):
            yield to_graphql(record)
    except (OSError, coredis.exceptions.RedisError) as exc:
        log.info("request-log tail ended: Redis failed (%s)", type(exc).__name__)
        raise ManageError(
            "the request-log stream is unavailable: Redis failed.", "INTERNAL_SERVER_ERROR"
        ) from None
