"""GraphQL resolvers for Docker services and host ports: thin wrappers over the service
functions in proxyd.docker.services and the PortRegistry (MCP tools call the same functions).

Queries need scope user, mutations admin. Docker problems become coded errors:
DOCKER_UNAVAILABLE ("Docker is not reachable at ...") and DOCKER_ERROR.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import attrs
from ariadne import MutationType, ObjectType, QueryType, SubscriptionType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.api.resolvers import guarded
from proxyd.docker import changes
from proxyd.docker import services as ops
from proxyd.docker.client import DockerError
from proxyd.docker.labels import proxy_source, revert_to_labels
from proxyd.store.models import Proxy, ValidationError
from proxyd.store.repository import NotFound
from proxyd.store.service_models import check_bind_address, check_service_name

query = QueryType()
mutation = MutationType()
subscription = SubscriptionType()
proxy_type = ObjectType("Proxy")


def docker_guarded(scope: str):
    """guarded(scope) plus Docker errors as coded GraphQL errors."""

    def decorate(resolver):
        @functools.wraps(resolver)
        async def inner(obj, info, **kwargs):
            try:
                return await resolver(obj, info, **kwargs)
            except DockerError as exc:
                raise api_error(str(exc), exc.code) from None

        return guarded(scope)(inner)

    return decorate


def _rt(info):
    runtime = info.context.docker
    if runtime is None:
        raise api_error("Docker services are not available in this process.", "NOT_FOUND")
    return runtime


def _name(name: str) -> str:
    return check_service_name(name)


# -- queries -------------------------------------------------------------------------------------
@query.field("services")
@docker_guarded("user")
async def resolve_services(_, info, type: str | None = None) -> list[dict]:
    return await ops.list_services(_rt(info), type)


@query.field("service")
@docker_guarded("user")
async def resolve_service(_, info, name: str) -> dict | None:
    return await ops.get_service(_rt(info), name.strip())


@query.field("serviceLogs")
@docker_guarded("user")
async def resolve_service_logs(_, info, name: str, tail: int = 100) -> list[str]:
    return await ops.service_logs(_rt(info), _name(name), tail)


@query.field("serviceStats")
@docker_guarded("user")
async def resolve_service_stats(_, info, name: str) -> dict:
    return await ops.service_stats(_rt(info), _name(name))


@query.field("ports")
@docker_guarded("user")
async def resolve_ports(_, info) -> list:
    return await _rt(info).ports.list()


@query.field("availablePortRanges")
@docker_guarded("user")
async def resolve_available_port_ranges(_, info) -> list:
    return await _rt(info).ports.available_ranges()


@query.field("checkPort")
@docker_guarded("user")
async def resolve_check_port(
    _, info, port: int, bind_address: str = "127.0.0.1", protocol: str = "tcp"
) -> Any:
    if not 1 <= port <= 65535:
        raise api_error("port must be 1-65535.", "BAD_USER_INPUT")
    if protocol not in ("tcp", "udp"):
        raise api_error("protocol must be tcp or udp.", "BAD_USER_INPUT")
    check = await _rt(info).ports.check(port, check_bind_address(bind_address), protocol)
    return attrs.asdict(check)


@proxy_type.field("source")
async def resolve_proxy_source(proxy: Proxy, info) -> str:
    return await proxy_source(info.context.store, proxy)


# -- mutations -----------------------------------------------------------------------------------
@mutation.field("createService")
@docker_guarded("admin")
async def resolve_create_service(_, info, input: dict) -> dict:
    context: ApiContext = info.context
    return await ops.create_service(_rt(info), input, context.actor)


@mutation.field("updateService")
@docker_guarded("admin")
async def resolve_update_service(_, info, name: str, input: dict) -> dict:
    return await changes.update_service(_rt(info), _name(name), input)


@mutation.field("startService")
@docker_guarded("admin")
async def resolve_start_service(_, info, name: str) -> dict:
    return await ops.start_service(_rt(info), _name(name))


@mutation.field("stopService")
@docker_guarded("admin")
async def resolve_stop_service(_, info, name: str) -> dict:
    return await ops.stop_service(_rt(info), _name(name))


@mutation.field("restartService")
@docker_guarded("admin")
async def resolve_restart_service(_, info, name: str) -> dict:
    return await ops.restart_service(_rt(info), _name(name))


@mutation.field("deleteService")
@docker_guarded("admin")
async def resolve_delete_service(_, info, name: str, delete_proxy: bool = False) -> bool:
    return await ops.delete_service(_rt(info), _name(name), bool(delete_proxy))


@mutation.field("createServiceProxy")
@docker_guarded("admin")
async def resolve_create_service_proxy(_, info, name: str, hostname: str | None = None) -> Proxy:
    context: ApiContext = info.context
    return await ops.create_service_proxy(_rt(info), _name(name), hostname, context.actor)


@mutation.field("addServicePort")
@docker_guarded("admin")
async def resolve_add_service_port(_, info, name: str, input: dict) -> dict:
    return await changes.add_service_port(_rt(info), _name(name), input)


@mutation.field("updateServicePort")
@docker_guarded("admin")
async def resolve_update_service_port(_, info, name: str, port_name: str, input: dict) -> dict:
    return await changes.update_service_port(_rt(info), _name(name), port_name, input)


@mutation.field("removeServicePort")
@docker_guarded("admin")
async def resolve_remove_service_port(_, info, name: str, port_name: str) -> dict:
    return await changes.remove_service_port(_rt(info), _name(name), port_name)


@mutation.field("cleanupServices")
@docker_guarded("admin")
async def resolve_cleanup_services(_, info) -> list[str]:
    return await ops.cleanup_services(_rt(info))


@mutation.field("revertProxyToLabels")
@docker_guarded("admin")
async def resolve_revert_proxy_to_labels(_, info, hostname: str) -> Proxy:
    return await revert_to_labels(info.context.store, hostname)


# -- subscriptions -------------------------------------------------------------------------------
@subscription.source("serviceLogs")
async def source_service_logs(_, info, name: str, tail: int = 0) -> AsyncIterator[str]:
    info.context.require("user")
    try:
        async for line in ops.follow_service_logs(_rt(info), _name(name), tail):
            yield line
    except DockerError as exc:
        raise api_error(str(exc), exc.code) from None
    except NotFound as exc:
        raise api_error(str(exc), "NOT_FOUND") from None
    except ValidationError as exc:
        raise api_error(str(exc), "BAD_USER_INPUT") from None


@subscription.field("serviceLogs")
def resolve_service_log_line(line, info, **_args):
    return line


@subscription.source("serviceStatus")
async def source_service_status(_, info, name: str | None = None) -> AsyncIterator[dict]:
    info.context.require("user")
    with _rt(info).status_bus.listen() as events:
        async for event in events:
            if name is None or event.data.get("name") == name:
                yield event.data


@subscription.field("serviceStatus")
def resolve_service_status(status, info, **_args):
    return status


bindables = [query, mutation, subscription, proxy_type]
