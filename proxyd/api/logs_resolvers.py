"""GraphQL resolvers for request logs (query and live subscription), request statistics and the
recent application logs. Request logs need scope user; application logs need admin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ariadne import QueryType, SubscriptionType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.manage import ManageError, logs

log = logging.getLogger("proxyd.api.logs")

query = QueryType()
subscription = SubscriptionType()


def _coded(exc: ManageError) -> Exception:
    return api_error(exc.message, exc.code)


@query.field("requestLogs")
async def resolve_request_logs(
    _, info, filter: dict | None = None, limit: int = 50, after: str | None = None
) -> dict[str, Any]:
    context: ApiContext = info.context
    context.require("user")
    try:
        return await logs.search_request_logs(context, filter, limit=limit, after=after)
    except ManageError as exc:
        raise _coded(exc) from None


@query.field("requestStats")
async def resolve_request_stats(
    _, info, hostname: str | None = None, hours: int = 24
) -> dict[str, Any]:
    context: ApiContext = info.context
    context.require("user")
    try:
        stats = await logs.stats(context, hostname, hours)
    except ManageError as exc:
        raise _coded(exc) from None
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
    try:
        return logs.application_logs(level, component, limit)
    except ManageError as exc:
        raise _coded(exc) from None


@subscription.source("requestLogs")
async def source_request_logs(_, info, filter: dict | None = None) -> AsyncIterator[Any]:
    context: ApiContext = info.context
    context.require("user")
    try:
        async for record in logs.tail_request_logs(context, filter):
            yield record
    except ManageError as exc:
        raise _coded(exc) from None


@subscription.field("requestLogs")
def resolve_request_log(record: dict[str, Any], info, **_: Any) -> dict[str, Any]:
    return record


bindables = [query, subscription]
