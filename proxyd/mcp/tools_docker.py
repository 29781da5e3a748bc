"""MCP tools for services of all three types (docker, external, internal) and the Docker
service lifecycle: list, show, create, start, stop, restart, delete, proxy, logs and stats.

They call the functions the GraphQL resolvers call (proxyd.docker.services, proxyd.manage.services)
and fail with the same code and sentence: bad input BAD_USER_INPUT, NOT_FOUND, CONFLICT (a name or
port taken), DOCKER_UNAVAILABLE ("Docker is not reachable at ...") and DOCKER_ERROR (Docker
refused). Nothing returned carries a secret: environment values and port access tokens are
accepted on create but only environment *names* and `require_token` come back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from proxyd.docker import services as ops
from proxyd.docker.client import DockerError
from proxyd.manage import ManageError, services
from proxyd.manage.errors import translated
from proxyd.mcp.schemas import (
    Done,
    ProxyInfo,
    ServiceFound,
    ServiceInfo,
    ServiceList,
    ServiceLogs,
    ServiceStats,
)
from proxyd.store.service_models import check_service_name

LIFECYCLE_TIMEOUT = 90  # seconds: a Docker call may take up to 60 (plus a stop's grace period)
MAX_PORTS = 32
MAX_ENV = 200

Kind = Literal["docker", "external", "internal"]
ServiceName = Annotated[
    str, Field(max_length=64, description="The service's name (letters, digits, - and _).")
]


class PortInput(BaseModel):
    """A port of a Docker service."""

    container_port: Annotated[int, Field(description="The port in the container (1-65535)")]
    name: Annotated[
        str | None, Field(max_length=64, description="Default: http for the first, portN after")
    ] = None
    host_port: Annotated[int | None, Field(description="Allocated from the range when omitted")] = (
        None
    )
    bind_address: Annotated[
        str | None, Field(max_length=64, description="127.0.0.1 (default) or 0.0.0.0")
    ] = None
    protocol: Annotated[str | None, Field(max_length=8, description="tcp (default) or udp")] = None
    token: Annotated[
        str | None,
        Field(
            max_length=512,
            description="An access token (16+ characters): proxyd publishes the port and "
            "forwards only requests with Authorization: Bearer <token>. Never shown again.",
        ),
    ] = None
    description: Annotated[str | None, Field(max_length=500)] = None


@contextlib.contextmanager
def docker_translated() -> Iterator[None]:
    """Store and Docker exceptions as ManageError, with the codes GraphQL gives them."""
    with translated():
        try:
            yield
        except DockerError as exc:
            raise ManageError(str(exc), exc.code) from None


def runtime(mctx: Any) -> Any:
    """The process's DockerRuntime (as proxyd.api.docker_resolvers finds it)."""
    if mctx.docker is None:
        raise ManageError("Docker services are not available in this process.", "NOT_FOUND")
    return mctx.docker


def register(tools: Any) -> None:
    @tools.tool(scope="user", title="List services", read_only=True, idempotent=True)
    async def list_services(ctx: Context, kind: Kind | None = None) -> ServiceList:
        """Named services that proxies and routes can target: Docker services (managed
        containers, with their live status), external services (named URLs) and internal ones
        (api). Give kind to list one type."""
        mctx = tools.caller(ctx)
        found: list[ServiceInfo] = []
        with docker_translated():
            for one in ("docker", "external", "internal"):
                if kind not in (None, one):
                    continue
                if one == "external":
                    external = await services.list_external_services(mctx)
                    found += [ServiceInfo.of_external(s) for s in external]
                elif mctx.docker is not None:
                    found += [
                        ServiceInfo.of_view(v) for v in await ops.list_services(mctx.docker, one)
                    ]
        return ServiceList(services=sorted(found, key=lambda s: (s.kind, s.name)))

    @tools.tool(scope="user", title="Show a service", read_only=True, idempotent=True)
    async def get_service(ctx: Context, name: ServiceName) -> ServiceFound:
        """One service by name, with its status, image, limits, ports and proxy hostname
        (service is null when there is none)."""
        with docker_translated():
            found = await ops.get_service(runtime(tools.caller(ctx)), name.strip())
        return ServiceFound(service=ServiceInfo.of_view(found) if found else None)

    @tools.tool(scope="admin", title="Create a Docker service", timeout=LIFECYCLE_TIMEOUT)
    async def create_service(
        ctx: Context,
        name: ServiceName,
        image: Annotated[
            str,
            Field(
                max_length=255,
                description="An image already on the Docker host (proxyd does not pull).",
            ),
        ],
        command: Annotated[
            list[str] | str | None,
            Field(description="Arguments, or one string split like a shell would."),
        ] = None,
        memory_limit: Annotated[
            str | None, Field(max_length=32, description="Bytes, or with a unit: 64m, 1g.")
        ] = None,
        cpu_limit: Annotated[float | None, Field(description="CPUs, e.g. 0.5")] = None,
        ports: Annotated[
            list[PortInput] | None, Field(max_length=MAX_PORTS, description="Ports to expose.")
        ] = None,
        environment: Annotated[
            dict[str, str] | None,
            Field(max_length=MAX_ENV, description="Variables (their values are never shown)."),
        ] = None,
        restart_policy: Annotated[
            str | None,
            Field(max_length=32, description="no, always, unless-stopped (default), on-failure"),
        ] = None,
        auto_proxy: Annotated[
            bool,
            Field(description="Make a proxy {name}.BASE_DOMAIN (or hostname) for the service."),
        ] = False,
        hostname: Annotated[
            str | None, Field(max_length=253, description="The proxy's hostname (implies a proxy).")
        ] = None,
    ) -> ServiceInfo:
        """Create and start a container as a managed service (memory limit, ports bound to
        127.0.0.1 unless asked otherwise), and with auto_proxy or hostname a proxy whose target
        is the container. Traffic flows as soon as the call returns."""
        mctx = tools.caller(ctx)
        data: dict[str, Any] = {
            "name": name,
            "image": image,
            "command": [command] if isinstance(command, str) else command,
            "memory_limit": memory_limit,
            "cpu_limit": cpu_limit,
            "ports": [p.model_dump(exclude_none=True) for p in ports or []],
            "environment": environment,
            "restart_policy": restart_policy,
            "auto_proxy": auto_proxy,
            "hostname": hostname,
        }
        with docker_translated():
            created = await ops.create_service(runtime(mctx), data, mctx.actor)
        return ServiceInfo.of_view(created)

    @tools.tool(scope="admin", title="Start a service", idempotent=True, timeout=LIFECYCLE_TIMEOUT)
    async def start_service(ctx: Context, name: ServiceName) -> ServiceInfo:
        """Start a Docker service's container (nothing changes when it already runs)."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            return ServiceInfo.of_view(await ops.start_service(rt, check_service_name(name)))

    @tools.tool(
        scope="admin",
        title="Stop a service",
        destructive=True,
        idempotent=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    async def stop_service(ctx: Context, name: ServiceName) -> ServiceInfo:
        """Stop a Docker service's container; its proxies answer 503 "service NAME is stopped"
        until it starts again."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            return ServiceInfo.of_view(await ops.stop_service(rt, check_service_name(name)))

    @tools.tool(
        scope="admin",
        title="Restart a service",
        destructive=True,
        idempotent=True,
        timeout=LIFECYCLE_TIMEOUT,
    )
    async def restart_service(ctx: Context, name: ServiceName) -> ServiceInfo:
        """Restart a Docker service's container."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            return ServiceInfo.of_view(await ops.restart_service(rt, check_service_name(name)))

    @tools.tool(
        scope="admin", title="Delete a service", destructive=True, timeout=LIFECYCLE_TIMEOUT
    )
    async def delete_service(
        ctx: Context,
        name: ServiceName,
        delete_proxy: Annotated[
            bool, Field(description="Also delete the proxies that send to this service.")
        ] = False,
    ) -> Done:
        """Remove a Docker service: its container, its host ports and its record."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            name = check_service_name(name)
            await ops.delete_service(rt, name, delete_proxy)
        return Done(
            ok=True,
            message=f"service {name} deleted" + (" with its proxy." if delete_proxy else "."),
        )

    @tools.tool(scope="admin", title="Put a proxy in front of a service")
    async def create_service_proxy(
        ctx: Context,
        name: ServiceName,
        hostname: Annotated[
            str | None, Field(max_length=253, description="Default: {name}.BASE_DOMAIN")
        ] = None,
    ) -> ProxyInfo:
        """Make a proxy whose target is the Docker service's container (it follows the
        container's address, and answers 503 while the service is stopped)."""
        mctx = tools.caller(ctx)
        with docker_translated():
            rt = runtime(mctx)
            proxy = await ops.create_service_proxy(
                rt, check_service_name(name), hostname, mctx.actor
            )
        return ProxyInfo.of(proxy)

    @tools.tool(scope="user", title="Service logs", read_only=True, idempotent=True)
    async def service_logs(
        ctx: Context,
        name: ServiceName,
        tail: Annotated[
            int, Field(ge=0, le=ops.MAX_LOG_LINES, description="How many of the last lines.")
        ] = 100,
    ) -> ServiceLogs:
        """The last lines a Docker service's container wrote (stdout and stderr)."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            name = check_service_name(name)
            lines = await ops.service_logs(rt, name, tail)
        return ServiceLogs(name=name, lines=lines)

    @tools.tool(scope="user", title="Service stats", read_only=True, idempotent=True)
    async def service_stats(ctx: Context, name: ServiceName) -> ServiceStats:
        """CPU %, memory use and limit, network and block I/O and process count of a running
        Docker service (one sample of Docker's stats)."""
        with docker_translated():
            rt = runtime(tools.caller(ctx))
            stats = await ops.service_stats(rt, check_service_name(name))
        return ServiceStats(**stats)
