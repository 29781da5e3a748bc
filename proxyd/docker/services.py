"""The service operations GraphQL, the CLI (through GraphQL) and MCP tools share: plain async
functions over a DockerRuntime. They validate input, keep Redis records, the port registry and
Docker's containers in step, and undo their own partial work when a step fails.

Errors: ValidationError (bad input), NotFound, Conflict / PortUnavailable (name or port taken),
DockerUnavailable (Docker cannot be reached), DockerFailure (Docker refused), each with one
sentence.
"""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path
from typing import Any

import trio

from proxyd.docker.client import DockerError, DockerFailure
from proxyd.docker.containers import MANAGED, SERVICE, container_config, stats_summary
from proxyd.docker.runtime import DockerRuntime
from proxyd.store.models import Proxy, ValidationError, normalize_hostname
from proxyd.store.repository import Conflict, NotFound
from proxyd.store.service_models import (
    DockerService,
    PortAllocation,
    PortConfig,
    token_hash,
)

log = logging.getLogger("proxyd.docker")

MAX_LOG_LINES = 10000
UNDO_TIMEOUT = 30.0  # seconds a failed create may spend removing what it made
MAX_BUILD_CONTEXT = 64 * 1024 * 1024
INTERNAL = {"api": "internal://api"}


# -- input -> models ------------------------------------------------------------------------------
def port_from_input(data: dict[str, Any], index: int = 0) -> PortConfig:
    token = data.get("token") or data.get("source_token")
    container_port = data.get("container_port")
    if container_port is None:
        raise ValidationError("each port needs a containerPort.")
    port = PortConfig(
        name=data.get("name") or ("http" if index == 0 else f"port{index + 1}"),
        container_port=container_port,
        host_port=data.get("host_port"),
        bind_address=data.get("bind_address") or "127.0.0.1",
        protocol=(data.get("protocol") or "tcp").lower(),
        source_token_hash=token_hash(token) if token else None,
        description=data.get("description"),
    )
    if token is not None and len(token) < 16:
        raise ValidationError("a port access token must be at least 16 characters.")
    port.validate()
    return port


def service_from_input(data: dict[str, Any], actor: str | None) -> DockerService:
    ports = data.get("ports") or data.get("port_configs") or []
    service = DockerService(
        service_name=data.get("name") or data.get("service_name") or "",
        image=data.get("image"),
        dockerfile_path=data.get("dockerfile_path"),
        command=data.get("command"),
        environment=data.get("environment") or {},
        memory_limit=data.get("memory_limit"),
        cpu_limit=data.get("cpu_limit"),
        restart_policy=data.get("restart_policy") or "unless-stopped",
        labels=data.get("labels") or {},
        networks=data.get("networks") or [],
        port_configs=[port_from_input(p, i) for i, p in enumerate(ports)],
        created_by=actor,
    )
    if not isinstance(service.environment, dict) or not isinstance(service.labels, dict):
        raise ValidationError("environment and labels must be objects of strings.")
    service.validate()
    return service


# -- views ------------------------------------------------------------------------------------------
def view(rt: DockerRuntime, service: DockerService) -> dict[str, Any]:
    """What the API shows of a Docker service (never environment values or tokens)."""
    state = rt.states.get(service.service_name)
    if not rt.available:
        status = "unknown"
    else:
        status = state.status if state else "unknown"
    target = rt.lookup(service.service_name)
    return {
        "name": service.service_name,
        "type": "docker",
        "status": status,
        "exit_code": state.exit_code if state else None,
        "health": state.health if state else None,
        "image": service.image,
        "dockerfile_path": service.dockerfile_path,
        "command": service.command,
        "environment_keys": sorted(service.environment),
        "memory_limit": service.memory_limit,
        "cpu_limit": service.cpu_limit,
        "restart_policy": service.restart_policy,
        "labels": service.labels,
        "networks": service.networks,
        "ports": [port_view(p) for p in service.port_configs],
        "container_name": service.container_name,
        "container_id": state.container_id if state else None,
        "ip_address": state.ip if state else None,
        "target_url": target if isinstance(target, str) else None,
        "proxy_hostname": service.proxy_hostname,
        "created_by": service.created_by,
        "created_at": service.created_at,
        "updated_at": service.updated_at,
        "notice": None,
    }


def port_view(port: PortConfig) -> dict[str, Any]:
    return {
        "name": port.name,
        "container_port": port.container_port,
        "host_port": port.host_port,
        "bind_address": port.bind_address,
        "protocol": port.protocol,
        "require_token": port.require_token,
        "published_by": port.published_by,
        "description": port.description,
    }


async def list_services(rt: DockerRuntime, service_type: str | None = None) -> list[dict]:
    """Services of all three types (docker, external, internal), or of one type."""
    if service_type not in (None, "", "docker", "external", "internal"):
        raise ValidationError("type must be docker, external or internal.")
    out: list[dict] = []
    if service_type in (None, "", "docker"):
        out += [view(rt, s) for s in await rt.records.list()]
    if service_type in (None, "", "external"):
        for ext in await rt.store.list_external_services():
            out.append(
                {
                    "name": ext.service_name,
                    "type": "external",
                    "status": "registered",
                    "target_url": ext.target_url,
                    "created_by": ext.created_by,
                    "created_at": ext.created_at,
                    "ports": [],
                    "environment_keys": [],
                    "labels": {},
                    "networks": [],
                }
            )
    if service_type in (None, "", "internal"):
        for name, url in INTERNAL.items():
            out.append(
                {
                    "name": name,
                    "type": "internal",
                    "status": "running",
                    "target_url": url,
                    "ports": [],
                    "environment_keys": [],
                    "labels": {},
                    "networks": [],
                }
            )
    return sorted(out, key=lambda s: (s["type"], s["name"]))


async def get_service(rt: DockerRuntime, name: str) -> dict | None:
    service = await rt.records.get(name)
    if service is not None:
        return view(rt, service)
    for other in await list_services(rt):
        if other["name"] == name and other["type"] != "docker":
            return other
    return None


# -- create / delete ------------------------------------------------------------------------------
async def create_service(rt: DockerRuntime, data: dict[str, Any], actor: str | None) -> dict:
    """Create and start a Docker service; with autoProxy also its proxy."""
    service = service_from_input(data, actor)
    name = service.service_name
    if name in INTERNAL or await rt.store.get_external_service(name) is not None:
        raise Conflict(f"a service named {name} already exists (external or internal).")
    hostname = None
    if data.get("auto_proxy") or data.get("hostname"):
        hostname = normalize_hostname(
            data.get("hostname") or f"{service.service_name}.{rt.settings.base_domain}"
        )
        if await rt.store.get_proxy(hostname) is not None:
            raise Conflict(f"a proxy for {hostname} already exists.")
    await rt.require()
    image = await image_for(rt, service)
    async with rt.locks[service.service_name]:
        await rt.records.reserve(service)
        claimed: list[int] = []
        try:
            await claim_ports(rt, service, claimed)
            await _run_container(rt, service, image)
            service.proxy_hostname = hostname
            await rt.records.save(service, service_url(service), "docker_service_created")
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(UNDO_TIMEOUT):
                await _undo_create(rt, service, claimed)
            raise
    if hostname:
        await _make_proxy(rt, service, hostname, actor)
    state = await rt.refresh(service)
    rt.gateways.update(service, service.service_name)
    log.info("service %s created (%s), %s", service.service_name, image, state.status)
    return view(rt, service)


async def image_for(rt: DockerRuntime, service: DockerService) -> str:
    if service.image:
        if not await rt.client.image_exists(service.image):
            raise ValidationError(
                f"image {service.image} is not on the Docker host; proxyd does not pull "
                "images: pull or build it there first (or give dockerfilePath)."
            )
        return service.image
    tag = f"proxyd-{service.service_name}:latest"
    context = await trio.to_thread.run_sync(_build_context, service.dockerfile_path or "")
    await rt.client.build_image(context, _dockerfile_name(service), tag)
    return tag


def _dockerfile_name(service: DockerService) -> str:
    return Path(service.dockerfile_path or "Dockerfile").name


def _build_context(dockerfile_path: str) -> bytes:
    """A tar of the Dockerfile's directory (bounded in size)."""
    path = Path(dockerfile_path).expanduser()
    if not path.is_file():
        raise ValidationError(f"dockerfilePath {dockerfile_path} is not a file proxyd can read.")
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(path.parent.rglob("*")):
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
                if total > MAX_BUILD_CONTEXT:
                    raise ValidationError(
                        "the build context (Dockerfile directory) exceeds 64 MiB."
                    )
                tar.add(item, arcname=str(item.relative_to(path.parent)))
    return buffer.getvalue()


def allocation_for(service_name: str, port: PortConfig) -> PortAllocation:
    return PortAllocation(
        port=port.host_port or 0,
        service_name=service_name,
        port_name=port.name,
        bind_address=port.bind_address,
        protocol=port.protocol,
        container_port=port.container_port,
        require_token=port.require_token,
    )


async def claim_ports(rt: DockerRuntime, service: DockerService, claimed: list[int]) -> None:
    for port in service.port_configs:
        allocation = allocation_for(service.service_name, port)
        if port.host_port:
            await rt.ports.claim(allocation)
        else:
            port.host_port = await rt.ports.allocate(allocation)
        claimed.append(port.host_port)


def config_for(rt: DockerRuntime, service: DockerService, image: str) -> dict[str, Any]:
    settings = rt.settings
    return container_config(
        service,
        settings.instance,
        image,
        settings.docker_stop_timeout,
        settings.docker_default_memory or None,
    )


async def _run_container(rt: DockerRuntime, service: DockerService, image: str) -> None:
    config = config_for(rt, service, image)
    container_id = await rt.client.create_container(service.container_name, config)
    for network in service.networks[1:]:
        await rt.client.connect_network(network, container_id)
    await rt.client.start(container_id)


async def _undo_create(rt: DockerRuntime, service: DockerService, claimed: list[int]) -> None:
    try:
        await rt.client.remove(service.container_name)
    except DockerError as exc:
        log.warning("could not remove container %s: %s", service.container_name, exc)
    await rt.ports.release_all(service.service_name, claimed)
    await rt.records.delete(service.service_name)


def service_url(service: DockerService) -> str | None:
    primary = service.primary_port()
    if primary is None:
        return None
    return f"http://{service.container_name}:{primary.container_port}"


async def _make_proxy(rt: DockerRuntime, service: DockerService, hostname: str, actor) -> Proxy:
    proxy = Proxy(hostname=hostname, target_url=f"service://{service.service_name}")
    return await rt.store.create_proxy(proxy, actor=actor)


async def create_service_proxy(
    rt: DockerRuntime, name: str, hostname: str | None, actor: str | None
) -> Proxy:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        host = normalize_hostname(hostname or f"{name}.{rt.settings.base_domain}")
        proxy = await _make_proxy(rt, service, host, actor)
        service.proxy_hostname = host
        await rt.records.save(service, service_url(service), "docker_service_updated")
    return proxy


async def delete_service(rt: DockerRuntime, name: str, delete_proxy: bool = False) -> bool:
    """Remove the container, release the ports and the record; with delete_proxy also the
    proxies that send to the service."""
    async with rt.locks[name]:
        service = await rt.records.require(name)
        await rt.require()
        await rt.client.remove(service.container_name)
        await rt.ports.release_all(name, [p.host_port for p in service.port_configs if p.host_port])
        await rt.records.delete(name)
        rt.gateways.update(None, name)
        rt.forget(name)
        if delete_proxy:
            for proxy in await rt.store.list_proxies():
                if (
                    proxy.target_url == f"service://{name}"
                    or proxy.hostname == service.proxy_hostname
                ):
                    try:
                        await rt.store.delete_proxy(proxy.hostname)
                    except NotFound:
                        pass
    log.info("service %s deleted%s", name, " with its proxy" if delete_proxy else "")
    return True


# -- start / stop / restart ---------------------------------------------------------------------
async def start_service(rt: DockerRuntime, name: str) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        await rt.require()
        try:
            await rt.client.start(service.container_name)
        except DockerFailure as exc:
            if exc.status == 404:
                raise NotFound(
                    f"the container of service {name} is missing (removed outside proxyd); "
                    "delete the service and create it again."
                ) from None
            raise
        await rt.refresh(service)
    return view(rt, service)


async def stop_service(rt: DockerRuntime, name: str) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        await rt.require()
        await _tolerate_missing(
            rt.client.stop(service.container_name, rt.settings.docker_stop_timeout)
        )
        await rt.refresh(service)
    return view(rt, service)


async def restart_service(rt: DockerRuntime, name: str) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        await rt.require()
        await rt.client.restart(service.container_name, rt.settings.docker_stop_timeout)
        await rt.refresh(service)
    return view(rt, service)


async def _tolerate_missing(call) -> None:
    try:
        await call
    except DockerFailure as exc:
        if exc.status not in (304, 404):
            raise


# -- logs and stats -----------------------------------------------------------------------------
async def service_logs(rt: DockerRuntime, name: str, tail: int = 100) -> list[str]:
    service = await rt.records.require(name)
    await rt.require()
    tail = max(0, min(int(tail), MAX_LOG_LINES))
    lines = await rt.client.logs(service.container_name, tail)
    return [line.rstrip("\n") for line in "".join(lines).splitlines()][-tail:] if tail else []


async def follow_service_logs(rt: DockerRuntime, name: str, tail: int = 0):
    """Async generator of log lines: the last `tail`, then new ones as the container writes."""
    service = await rt.records.require(name)
    await rt.require()
    tail = max(0, min(int(tail), MAX_LOG_LINES))
    async with rt.client.follow_logs(service.container_name, tail) as lines:
        pending = ""
        async for chunk in lines:
            pending += chunk
            *complete, pending = pending.split("\n")
            for line in complete:
                yield line
            if len(pending) > 65536:
                yield pending
                pending = ""


async def service_stats(rt: DockerRuntime, name: str) -> dict[str, Any]:
    service = await rt.records.require(name)
    await rt.require()
    state = await rt.refresh(service)
    if state.status not in ("running", "unhealthy"):
        raise Conflict(f"service {name} is {state.status}; stats need a running container.")
    return {"name": name, **stats_summary(await rt.client.stats(service.container_name))}


# -- cleanup ------------------------------------------------------------------------------------
async def cleanup_services(rt: DockerRuntime) -> list[str]:
    """Remove proxyd-labelled containers that have no service record; returns their names."""
    await rt.require()
    records = {s.service_name for s in await rt.records.list()}
    removed = []
    for summary in await rt.client.list_containers([f"{MANAGED}=true"]):
        name = (summary.get("Labels") or {}).get(SERVICE)
        container = (summary.get("Names") or [summary.get("Id", "")])[0].lstrip("/")
        if name in records or container != f"proxyd-{name}":
            continue  # ours, or not made by proxyd (only proxyd names containers proxyd-NAME)
        await rt.client.remove(summary["Id"])
        removed.append(container)
        log.info("removed orphaned container %s (service %s)", container, name)
    return removed
