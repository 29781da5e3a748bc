"""GraphQL resolvers for proxies, routes, external services, health and the events subscription.
The operations themselves live in proxyd.manage (shared with the MCP tools).

Every resolver is wrapped by `guarded(scope)`: it needs an authenticated identity with that scope
(queries `user`, mutations `admin`) and turns store errors into GraphQL errors with a code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, ScalarType, SubscriptionType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.manage import ManageError, proxies, routes, services
from proxyd.manage.health import health_report
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
            except ManageError as exc:
                raise api_error(exc.message, exc.code) from None
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
    return await proxies.list_proxies(info.context)


@query.field("proxy")
@guarded("user")
async def resolve_proxy(_, info, hostname: str) -> Proxy | None:
    return await proxies.get_proxy(info.context, hostname)


@query.field("routes")
@guarded("user")
async def resolve_routes(_, info) -> list[Route]:
    return await routes.list_routes(info.context)


@query.field("route")
@guarded("user")
async def resolve_route(_, info, route_id: str) -> Route | None:
    return await routes.get_route(info.context, route_id)


@query.field("externalServices")
@guarded("user")
async def resolve_external_services(_, info) -> list[ExternalService]:
    return await services.list_external_services(info.context)


@query.field("health")
@guarded("user")
async def resolve_health(_, info) -> dict[str, Any]:
    return await health_report(info.context)


@proxy_type.field("routes")
async def resolve_proxy_routes(proxy: Proxy, info) -> list[Route]:
    return await routes.routes_for_proxy(info.context, proxy)


# -- mutations -------------------------------------------------------------------------------------
@mutation.field("createProxy")
@guarded("admin")
async def resolve_create_proxy(_, info, input: dict) -> Proxy:
    return await proxies.create_proxy(info.context, input)


@mutation.field("updateProxy")
@guarded("admin")
async def resolve_update_proxy(_, info, hostname: str, input: dict) -> Proxy:
    return await proxies.update_proxy(info.context, hostname, input)


@mutation.field("deleteProxy")
@guarded("admin")
async def resolve_delete_proxy(_, info, hostname: str) -> bool:
    return await proxies.delete_proxy(info.context, hostname)


@mutation.field("createRoute")
@guarded("admin")
async def resolve_create_route(_, info, input: dict) -> Route:
    return await routes.create_route(info.context, input)


@mutation.field("updateRoute")
@guarded("admin")
async def resolve_update_route(_, info, route_id: str, input: dict) -> Route:
    return await routes.update_route(info.context, route_id, input)


@mutation.field("deleteRoute")
@guarded("admin")
async def resolve_delete_route(_, info, route_id: str) -> bool:
    return await routes.delete_route(info.context, route_id)


@mutation.field("registerExternalService")
@guarded("admin")
async def resolve_register_external_service(_, info, input: dict) -> ExternalService:
    return await services.register_external_service(info.context, input)


@mutation.field("deleteExternalService")
@guarded("admin")
async def resolve_delete_external_service(_, info, name: str) -> bool:
    return await services.delete_external_service(info.context, name)


route_id_for = routes.route_id_for


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
