"""DockerServiceRecords: Docker service records in Redis.

Layout (as the reference): `docker_service:{name}` holds the service JSON without its ports,
`service:ports:{name}` is a hash of port name -> PortConfig JSON, `service:url:{name}` the URL the
service answers on, and `services:docker` the set of names. Each change appends a
docker_service_* event to events:workflow in the same transaction.
"""

from __future__ import annotations

import coredis

from proxyd.store import keys
from proxyd.store.models import now_iso
from proxyd.store.repository import Conflict, NotFound, Store
from proxyd.store.service_models import (
    DockerService,
    PortConfig,
    port_from_json,
    port_to_json,
    service_from_json,
    service_to_json,
)


class DockerServiceRecords:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis = store.redis

    async def get(self, name: str) -> DockerService | None:
        raw = await self.redis.get(keys.docker_service(name))
        if not raw:
            return None
        return service_from_json(raw, await self._ports(name))

    async def require(self, name: str) -> DockerService:
        service = await self.get(name)
        if service is None:
            raise NotFound(f"no Docker service named {name}.")
        return service

    async def list(self) -> list[DockerService]:
        names = sorted(await self.redis.smembers(keys.DOCKER_SERVICES))
        found = [await self.get(n) for n in names]
        return [s for s in found if s is not None]

    async def _ports(self, name: str) -> list[PortConfig]:
        raw = await self.redis.hgetall(keys.service_ports(name))
        ports = [port_from_json(PortConfig, v) for v in raw.values()]
        return sorted(ports, key=lambda p: (p.container_port, p.name))

    async def reserve(self, service: DockerService) -> None:
        """Claim the name (SET NX), so two creates of one name cannot both proceed."""
        service.created_at = service.updated_at = now_iso()
        if not await self.redis.set(
            keys.docker_service(service.service_name),
            service_to_json(service),
            condition=coredis.PureToken.NX,
        ):
            raise Conflict(f"a Docker service named {service.service_name} already exists.")

    async def save(self, service: DockerService, url: str | None, event: str) -> None:
        """Write the service and its ports (replacing the old ports) and publish event."""
        name = service.service_name
        service.updated_at = now_iso()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.docker_service(name), service_to_json(service))
            pipe.delete([keys.service_ports(name)])
            if service.port_configs:
                pipe.hset(
                    keys.service_ports(name),
                    {p.name: port_to_json(p) for p in service.port_configs},
                )
            if url:
                pipe.set(keys.service_url(name), url)
            pipe.sadd(keys.DOCKER_SERVICES, [name])
        await self.store.publish_event(event, None, service_name=name)

    async def delete(self, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                [
                    keys.docker_service(name),
                    keys.service_ports(name),
                    keys.service_url(name),
                ]
            )
            pipe.srem(keys.DOCKER_SERVICES, [name])
        await self.store.publish_event("docker_service_deleted", None, service_name=name)
