"""MCP tools that change an existing Docker service: update_service, add_service_port,
update_service_port and remove_service_port.

Each one recreates the service's container (it restarts when it was running), so all four are
destructive. They call the functions GraphQL's updateService, addServicePort, updateServicePort
and removeServicePort call (proxyd.docker.changes) and fail with the same code and sentence:
NOT_FOUND (no such service or port), CONFLICT (a port name or host port taken), BAD_USER_INPUT,
DOCKER_UNAVAILABLE ("Docker is not reachable at ...") and DOCKER_ERROR. The answer is the
service as get_service shows it, with `notice` saying that it was recreated; environment values
and port access tokens are accepted but never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from proxyd.docker import changes
from proxyd.mcp.schemas import ServiceInfo
from proxyd.mcp.tools_docker import (
    LIFECYCLE_TIMEOUT,
    MAX_ENV,
    PortInput,
    ServiceName,
    docker_translated,
    runtime,
)
from proxyd.store.service_models import check_service_name

RECREATES = (
    " The container is recreated to apply the change, so the service restarts (a stopped one "
    "stays stopped); the answer's notice says so."
)


def recreating(fn: Callable) -> Callable:
    """Append to the tool's description that the change recreates (restarts) the container."""
    fn.__doc__ = (fn.__doc__ or "").strip() + RECREATES
    return fn


PortName = Annotated[
    str, Field(min_length=1, max_length=64, description="The port's name, e.g. http.")
]


def register(tools: Any) -> None:
    @tools.tool(
        scope="admin",
        title="Change a Docker service",
        destructive=True,
        idempotent=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    @recreating
    async def update_service(
        ctx: Context,
        name: ServiceName,
        image: Annotated[
            str | None,
            Field(max_length=255, description="An image already on the Docker host."),
        ] = None,
        command: Annotated[
            list[str] | str | None,
            Field(description="Arguments, or one string split like a shell would."),
        ] = None,
        environment: Annotated[
            dict[str, str] | None,
            Field(
                max_length=MAX_ENV,
                description="Replaces all variables (their values are never shown).",
            ),
        ] = None,
        memory_limit: Annotated[
            str | None, Field(max_length=32, description="Bytes, or with a unit: 64m, 1g.")
        ] = None,
        cpu_limit: Annotated[float | None, Field(description="CPUs, e.g. 0.5")] = None,
        restart_policy: Annotated[
            str | None,
            Field(max_length=32, description="no, always, unless-stopped, on-failure"),
        ] = None,
        labels: Annotated[
            dict[str, str] | None,
            Field(max_length=MAX_ENV, description="Replaces the container's own labels."),
        ] = None,
        networks: Annotated[
            list[str] | None, Field(max_length=16, description="Docker networks to join.")
        ] = None,
    ) -> ServiceInfo:
        """Change a Docker service's image, command, environment, memory or CPU limit, restart
        policy, labels or networks; what is not given stays as it is."""
        data: dict[str, Any] = {
            "image": image,
            "command": [command] if isinstance(command, str) else command,
            "environment": environment,
            "memory_limit": memory_limit,
            "cpu_limit": cpu_limit,
            "restart_policy": restart_policy,
            "labels": labels,
            "networks": networks,
        }
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            changed = await changes.update_service(rt, check_service_name(name), data)
        return ServiceInfo.of_view(changed)

    @tools.tool(
        scope="admin",
        title="Add a port to a service",
        destructive=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    @recreating
    async def add_service_port(ctx: Context, name: ServiceName, port: PortInput) -> ServiceInfo:
        """Expose one more container port of a Docker service on a host port (allocated from
        the port range unless host_port is given; a port that is taken or that something else
        listens on is refused with the reason)."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            data = port.model_dump(exclude_none=True)
            changed = await changes.add_service_port(rt, check_service_name(name), data)
        return ServiceInfo.of_view(changed)

    @tools.tool(
        scope="admin",
        title="Change a port of a service",
        destructive=True,
        idempotent=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    @recreating
    async def update_service_port(
        ctx: Context,
        name: ServiceName,
        port_name: PortName,
        container_port: Annotated[int | None, Field(description="The port in the container")] = (
            None
        ),
        host_port: Annotated[
            int | None, Field(description="A new host port (the old one is released)")
        ] = None,
        bind_address: Annotated[
            str | None, Field(max_length=64, description="127.0.0.1 or 0.0.0.0")
        ] = None,
        protocol: Annotated[str | None, Field(max_length=8, description="tcp or udp")] = None,
        token: Annotated[
            str | None,
            Field(
                max_length=512,
                description="A new access token (16+ characters); never shown again.",
            ),
        ] = None,
        remove_token: Annotated[
            bool, Field(description="Drop the port's access token: Docker publishes it again.")
        ] = False,
        description: Annotated[str | None, Field(max_length=500)] = None,
    ) -> ServiceInfo:
        """Change one port of a Docker service (its host port, bind address, protocol,
        container port or access token); what is not given stays as it is."""
        data: dict[str, Any] = {
            "container_port": container_port,
            "host_port": host_port,
            "bind_address": bind_address,
            "protocol": protocol,
            "description": description,
        }
        data = {k: v for k, v in data.items() if v is not None}
        if token is not None:
            data["token"] = token
        if remove_token:
            data["remove_token"] = True
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            changed = await changes.update_service_port(
                rt, check_service_name(name), port_name, data
            )
        return ServiceInfo.of_view(changed)

    @tools.tool(
        scope="admin",
        title="Remove a port of a service",
        destructive=True,
        idempotent=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    @recreating
    async def remove_service_port(
        ctx: Context, name: ServiceName, port_name: PortName
    ) -> ServiceInfo:
        """Stop exposing one port of a Docker service and release its host port."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            changed = await changes.remove_service_port(rt, check_service_name(name), port_name)
        return ServiceInfo.of_view(changed)
