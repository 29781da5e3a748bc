"""Changes to an existing Docker service that need a new container: its ports (add, update,
remove) and its settings (updateService). The container is replaced (and restarted when it was
running); when the new one cannot be made, the previous configuration is restored. The answer's
`notice` says the service restarted.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from proxyd.docker.client import DockerError
from proxyd.docker.runtime import DockerRuntime
from proxyd.docker.services import (
    allocation_for,
    claim_ports,
    config_for,
    image_for,
    port_from_input,
    service_url,
    view,
)
from proxyd.store.models import ValidationError
from proxyd.store.repository import Conflict, NotFound
from proxyd.store.service_models import DockerService

log = logging.getLogger("proxyd.docker")


# -- ports of an existing service ---------------------------------------------------------------
async def add_service_port(rt: DockerRuntime, name: str, data: dict[str, Any]) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        port = port_from_input(data, len(service.port_configs))
        if service.port(port.name) is not None:
            raise Conflict(f"service {name} already has a port named {port.name}.")
        new = attrs.evolve(service, port_configs=[*service.port_configs, port])
        new.validate()
        claimed: list[int] = []
        await claim_ports(rt, attrs.evolve(new, port_configs=[port]), claimed)
        try:
            result = await _recreate(rt, service, new)
        except BaseException:
            await rt.ports.release_all(name, claimed)
            raise
    return result


async def update_service_port(
    rt: DockerRuntime, name: str, port_name: str, data: dict[str, Any]
) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        old = service.port(port_name)
        if old is None:
            raise NotFound(f"service {name} has no port named {port_name}.")
        merged = {
            "name": port_name,
            "container_port": old.container_port,
            "host_port": old.host_port,
            "bind_address": old.bind_address,
            "protocol": old.protocol,
            "description": old.description,
            **{k: v for k, v in data.items() if v is not None},
        }
        port = port_from_input(merged)
        if "token" not in data and old.source_token_hash:
            port.source_token_hash = old.source_token_hash
        if data.get("remove_token"):
            port.source_token_hash = None
        claimed: list[int] = []
        if port.host_port != old.host_port:  # a new host port: take it first
            await claim_ports(rt, attrs.evolve(service, port_configs=[port]), claimed)
        elif (port.bind_address, port.protocol) != (old.bind_address, old.protocol):
            await rt.ports.rewrite(allocation_for(service.service_name, port))
        new = attrs.evolve(
            service, port_configs=[port if p.name == port_name else p for p in service.port_configs]
        )
        new.validate()
        try:
            result = await _recreate(rt, service, new)
        except BaseException:
            await rt.ports.release_all(name, claimed)
            raise
        if claimed and old.host_port:
            await rt.ports.release(old.host_port, name)
    return result


async def remove_service_port(rt: DockerRuntime, name: str, port_name: str) -> dict:
    async with rt.locks[name]:
        service = await rt.records.require(name)
        old = service.port(port_name)
        if old is None:
            raise NotFound(f"service {name} has no port named {port_name}.")
        new = attrs.evolve(
            service, port_configs=[p for p in service.port_configs if p.name != port_name]
        )
        result = await _recreate(rt, service, new)
        if old.host_port:
            await rt.ports.release(old.host_port, name)
    return result


async def update_service(rt: DockerRuntime, name: str, data: dict[str, Any]) -> dict:
    """Change image, command, environment, limits, restart policy, labels or networks; the
    container is recreated (and restarts)."""
    allowed = {
        "image",
        "command",
        "environment",
        "memory_limit",
        "cpu_limit",
        "restart_policy",
        "labels",
        "networks",
    }
    unknown = {k for k, v in data.items() if v is not None} - allowed
    if unknown:
        raise ValidationError(f"cannot update {', '.join(sorted(unknown))} here.")
    async with rt.locks[name]:
        service = await rt.records.require(name)
        changes = {k: v for k, v in data.items() if v is not None}
        new = attrs.evolve(service, **changes)
        if "image" in changes:
            new.dockerfile_path = None
        new.validate()
        return await _recreate(rt, service, new)


async def _recreate(rt: DockerRuntime, old: DockerService, new: DockerService) -> dict:
    """Replace the container with one built from new (it restarts); the record follows."""
    await rt.require()
    image = await image_for(rt, new)
    state = await rt.refresh(old)
    was_running = state.status in ("running", "unhealthy", "restarting")
    await rt.client.remove(old.container_name)
    try:
        config = config_for(rt, new, image)
        container_id = await rt.client.create_container(new.container_name, config)
        for network in new.networks[1:]:
            await rt.client.connect_network(network, container_id)
        if was_running:
            await rt.client.start(container_id)
    except DockerError:
        log.error(
            "service %s: the new container failed; restoring the previous one", old.service_name
        )
        await rt.client.remove(new.container_name)
        await rt.client.create_container(
            old.container_name, config_for(rt, old, old.image or image)
        )
        if was_running:
            await rt.client.start(old.container_name)
        await rt.refresh(old)
        raise
    await rt.records.save(new, service_url(new), "docker_service_updated")
    await rt.refresh(new)
    rt.gateways.update(new, new.service_name)
    result = view(rt, new)
    result["notice"] = f"service {new.service_name} was recreated to apply the change" + (
        " and restarted." if was_running else " (it stays stopped)."
    )
    return result
