"""GraphQL resolvers for request logs (query and live subscription), request statistics and the
recent application logs. Request logs need scope user; application logs need admin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import coredis
from ariadne import QueryType, SubscriptionType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.logs.applog import RECENT
from proxyd.logs.query import LogFilter, QueryError, search, tail
from proxyd.logs.record import to_graphql
from proxyd.logs.stats import MAX_HOURS, request_stats

log = logging.getLogger("proxyd.api.logs")

query = QueryType()
subscription = SubscriptionType()

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _filter(raw: dict[str, Any] | None) -> LogFilter:
    try:
        return LogFilter.parse(raw)
    except QueryError as exc:
        raise api_error(str(exc), "BAD_USER_INPUT") from None


def _slow_ms(context: ApiContext) -> float:
    return context.settings.log_slow_seconds * 1000


@query.field("requestLogs")
async def resolve_request_logs(
    _, info, filter: dict | None = None, limit: int = 50, after: str | None = None
) -> dict[str, Any]:
    context: ApiContext = info.context
    context.require("user")
    criteria = _filter(filter)
    try:
        page = await search(
            context.store.redis, criteria, limit=limit, after=after, slow_ms=_slow_ms(context)
        )
    except QueryError as exc:
        raise api_error(str(exc), "BAD_USER_INPUT") from None
    return {
        "items": [to_graphql(r) for r in page.items],
        "end_cursor": page.end_cursor,
        "has_more": page.has_more,
    }


@query.field("requestStats")
async def resolve_request_stats(
    _, info, hostname: str | None = None, hours: int = 24
) -> dict[str, Any]:
    context: ApiContext = info.context
    context.require("user")
    if not 1 <= hours <= MAX_HOURS:
        raise api_error(f"hours must be from 1 to {MAX_HOURS}, not {hours}.", "BAD_USER_INPUT")
    host = hostname.strip().lower() if hostname and hostname.strip() else None
    stats = await request_stats(context.store.redis, host, hours)
    # ariadne maps p50Ms to p_50_ms.
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        stats[f"p_{name[1:3]}_ms"] = stats[name]
    return stats


@query.field("applicationLogs")
async def resolve_application_logs(
    _, info, level: str | None = None, component: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    context: ApiContext = info.context
    context.require("admin")
    if level is not None and level.upper() not in LEVELS:
        raise api_error(
            f"level must be one of {', '.join(LEVELS)}, not {level!r}.", "BAD_USER_INPUT"
        )
    if not 1 <= limit <= 10_000:
        raise api_error(f"limit must be from 1 to 10000, not {limit}.", "BAD_USER_INPUT")
    return RECENT.recent(level, component or None, limit)


@subscription.source("requestLogs")
async def source_request_logs(_, info, filter: dict | None = None) -> AsyncIterator[Any]:
    context: ApiContext = info.context
    context.require("user")
    criteria = _filter(filter)
    try:
        async for record in tail(context.store.redis, criteria, _slow_ms(context)):
            yield to_graphql(record)
    except (OSError, coredis.exceptions.RedisError) as exc:
        log.info("requestLogs subscription ended: Redis failed (%s)", type(exc).__name__)
        raise api_error(
            "the request-log stream is unavailable: Redis failed.", "INTERNAL_SERVER_ERROR"
        ) from None


@subscription.field("requestLogs")
def resolve_request_log(record: dict[str, Any], info, **_: Any) -> dict[str, Any]:
    return record


bindables = [query, subscription]
