"""GraphQL resolvers for proxies, routes, external services, health and the events subscription.

Every resolver is wrapped by `guarded(scope)`: it needs an authenticated identity with that scope
(queries `user`, mutations `admin`) and turns store errors into GraphQL errors with a code.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import coredis
import trio
from ariadne import MutationType, ObjectType, QueryType, ScalarType, SubscriptionType

from proxyd import __version__
from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.edge.routing import RouteTable
from proxyd.store.models import ExternalService, Proxy, Route, ValidationError
from proxyd.store.repository import Conflict, NotFound

log = logging.getLogger("proxyd.api")

query = QueryType()
mutation = MutationType()
subscription = SubscriptionType()
proxy_type = ObjectType("Proxy")
json_scalar = ScalarType("JSON")
datetime_scalar = ScalarType("DateTime")


def guarded(scope: str):
    """Require `scope` and map store exceptions to coded GraphQL errors."""

    def decorate(resolver):
        @functools.wraps(resolver)
        async def wrapper(obj, info, **kwargs):
            context: ApiContext = info.context
            context.require(scope)
            try:
                return await resolver(obj, info, **kwargs)
            except ValidationError as exc:
                raise api_error(str(exc), "BAD_USER_INPUT") from None
            except NotFound as exc:
                raise api_error(str(exc), "NOT_FOUND") from None
            except Conflict as exc:
                raise api_error(str(exc), "CONFLICT") from None
            except TypeError as exc:  # e.g. a required field missing from a model
                raise api_error(f"invalid input: {exc}", "BAD_USER_INPUT") from None

        return wrapper

    return decorate


# -- queries ---------------------------------------------------------------------------------------
@query.field("proxies")
@guarded("user")
async def resolve_proxies(_, info) -> list[Proxy]:
    return await info.context.store.list_proxies()


@query.field("proxy")
@guarded("user")
async def resolve_proxy(_, info, hostname: str) -> Proxy | None:
    return await info.context.store.get_proxy(hostname.strip().lower())


@query.field("routes")
@guarded("user")
async def resolve_routes(_, info) -> list[Route]:
    return await info.context.store.list_routes()


@query.field("route")
@guarded("user")
async def resolve_route(_, info, route_id: str) -> Route | None:
    return await info.context.store.get_route(route_id)


@query.field("externalServices")
@guarded("user")
async def resolve_external_services(_, info) -> list[ExternalService]:
    return await info.context.store.list_external_services()


@query.field("health")
@guarded("user")
async def resolve_health(_, info) -> dict[str, Any]:
    return await health_report(info.context)


async def health_report(context: ApiContext) -> dict[str, Any]:
    redis_ok = False
    try:
        with trio.move_on_after(0.5):  # a hung Redis is an unreachable one
            redis_ok = bool(await context.store.redis.ping())
    except (OSError, coredis.exceptions.RedisError):
        redis_ok = False
    return {
        "status": "ok" if redis_ok else "degraded",
        "version": __version__,
        "instance": context.settings.instance,
        "redis": "ok" if redis_ok else "unreachable",
        "proxies": len(context.manager.proxies),
        "log_records_dropped": context.request_log.dropped if context.request_log else 0,
    }


@proxy_type.field("routes")
async def resolve_proxy_routes(proxy: Proxy, info) -> list[Route]:
    table = RouteTable(await info.context.store.list_routes())
    return [compiled.route for compiled in table.for_proxy(proxy)]


# -- mutations -------------------------------------------------------------------------------------
@mutation.field("createProxy")
@guarded("admin")
async def resolve_create_proxy(_, info, input: dict) -> Proxy:
    context: ApiContext = info.context
    data = {k: v for k, v in input.items() if v is not None}
    return await context.store.create_proxy(Proxy(**data), actor=context.actor)


@mutation.field("updateProxy")
@guarded("admin")
async def resolve_update_proxy(_, info, hostname: str, input: dict) -> Proxy:
    return await info.context.store.update_proxy(hostname.strip().lower(), input)


@mutation.field("deleteProxy")
@guarded("admin")
async def resolve_delete_proxy(_, info, hostname: str) -> bool:
    await info.context.store.delete_proxy(hostname.strip().lower())
    return True


@mutation.field("createRoute")
@guarded("admin")
async def resolve_create_route(_, info, input: dict) -> Route:
    context: ApiContext = info.context
    data = dict(input)
    if not data.get("route_id"):
        data["route_id"] = route_id_for(data.get("path_pattern", ""), data.get("priority", 50))
    data = {k: v for k, v in data.items() if v is not None}
    return await context.store.create_route(Route(**data), actor=context.actor)


@mutation.field("updateRoute")
@guarded("admin")
async def resolve_update_route(_, info, route_id: str, input: dict) -> Route:
    return await info.context.store.update_route(route_id, input)


@mutation.field("deleteRoute")
@guarded("admin")
async def resolve_delete_route(_, info, route_id: str) -> bool:
    await info.context.store.delete_route(route_id)
    return True


@mutation.field("registerExternalService")
@guarded("admin")
async def resolve_register_external_service(_, info, input: dict) -> ExternalService:
    context: ApiContext = info.context
    data = {k: v for k, v in input.items() if v is not None}
    return await context.store.register_external_service(
        ExternalService(**data), actor=context.actor
    )


@mutation.field("deleteExternalService")
@guarded("admin")
async def resolve_delete_external_service(_, info, name: str) -> bool:
    await info.context.store.delete_external_service(name)
    return True


def route_id_for(path: str, priority: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:40] or "root"
    return f"{slug}-{priority}"


# -- subscriptions ---------------------------------------------------------------------------------
@subscription.source("events")
async def source_events(_, info, types: list[str] | None = None) -> AsyncIterator[Any]:
    context: ApiContext = info.context
    context.require("user")
    wanted = set(types or ())
    with context.manager.bus.listen() as events:
        async for event in events:
            if not wanted or event.event_type in wanted:
                yield event


@subscription.field("events")
def resolve_event(event, info):
    return event


# -- scalars ---------------------------------------------------------------------------------------
@json_scalar.serializer
def serialize_json(value: Any) -> Any:
    return value


@datetime_scalar.serializer
def serialize_datetime(value: Any) -> Any:
    return value


bindables = [query, mutation, subscription, proxy_type, json_scalar, datetime_scalar]
