"""Store: reads and writes proxies, routes and external services in Redis, and publishes the
matching workflow event in the same transaction as each change.
"""

from __future__ import annotations

import json
from typing import Any

import coredis

from proxyd.store import keys
from proxyd.store.models import (
    ExternalService,
    Proxy,
    Route,
    ValidationError,
    apply_changes,
    from_json,
    now_iso,
    to_json,
)


class NotFound(LookupError):
    """The named object does not exist."""


class Conflict(ValueError):
    """The object already exists (or clashes with one that does)."""


class Store:
    """Configuration CRUD on one coredis client. Every change also appends to events:workflow."""

    def __init__(self, redis: coredis.Redis, event_stream_maxlen: int = 10000) -> None:
        self.redis = redis
        self.maxlen = event_stream_maxlen

    # -- events ------------------------------------------------------------------------------
    def _event_fields(self, event_type: str, hostname: str | None, data: dict[str, Any]) -> dict:
        return {
            "event_type": event_type,
            "hostname": hostname or "",
            "data": json.dumps(data, separators=(",", ":")),
            "timestamp": now_iso(),
        }

    async def _commit(self, writes: list[tuple[str, tuple]], event: tuple[str, str | None, dict]):
        """Run the writes and the event XADD as one MULTI/EXEC transaction."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for method, args in writes:
                getattr(pipe, method)(*args)
            pipe.xadd(
                keys.EVENTS_STREAM,
                self._event_fields(*event),
                trim_strategy=coredis.PureToken.MAXLEN,
                threshold=self.maxlen,
                trim_operator=coredis.PureToken.APPROXIMATELY,
            )

    async def publish_event(self, event_type: str, hostname: str | None = None, **data: Any) -> str:
        return await self.redis.xadd(
            keys.EVENTS_STREAM,
            self._event_fields(event_type, hostname, data),
            trim_strategy=coredis.PureToken.MAXLEN,
            threshold=self.maxlen,
            trim_operator=coredis.PureToken.APPROXIMATELY,
        )

    # -- proxies -----------------------------------------------------------------------------
    async def get_proxy(self, hostname: str) -> Proxy | None:
        raw = await self.redis.get(keys.proxy(hostname))
        return from_json(Proxy, raw) if raw else None

    async def list_proxies(self) -> list[Proxy]:
        return await self._list(Proxy, keys.PROXY_INDEX, keys.proxy, lambda p: p.hostname)

    async def create_proxy(self, proxy: Proxy, actor: str | None = None) -> Proxy:
        proxy.validate()
        proxy.created_at = proxy.updated_at = now_iso()
        proxy.created_by = proxy.created_by or actor
        created = await self.redis.set(
            keys.proxy(proxy.hostname), to_json(proxy), condition=coredis.PureToken.NX
        )
        if not created:
            raise Conflict(f"a proxy for {proxy.hostname} already exists.")
        await self._commit(
            [("sadd", (keys.PROXY_INDEX, [proxy.hostname]))],
            ("proxy_created", proxy.hostname, _proxy_event_data(proxy)),
        )
        return proxy

    async def update_proxy(self, hostname: str, changes: dict[str, Any]) -> Proxy:
        current = await self.get_proxy(hostname)
        if current is None:
            raise NotFound(f"no proxy for {hostname}.")
        if "hostname" in changes and changes["hostname"] != hostname:
            raise ValidationError("hostname cannot be changed; create a new proxy instead.")
        updated = apply_changes(current, changes)
        updated.validate()
        updated.updated_at = now_iso()
        await self._commit(
            [("set", (keys.proxy(hostname), to_json(updated)))],
            ("proxy_updated", hostname, _proxy_event_data(updated)),
        )
        return updated

    async def delete_proxy(self, hostname: str) -> None:
        if not await self.redis.exists([keys.proxy(hostname)]):
            raise NotFound(f"no proxy for {hostname}.")
        await self._commit(
            [("delete", ([keys.proxy(hostname)],)), ("srem", (keys.PROXY_INDEX, [hostname]))],
            ("proxy_deleted", hostname, {}),
        )

    async def ensure_proxy(self, proxy: Proxy) -> bool:
        """Create proxy if no proxy has its hostname; True when it was created."""
        try:
            await self.create_proxy(proxy, actor="system")
        except Conflict:
            return False
        return True

    # -- routes ------------------------------------------------------------------------------
    async def get_route(self, route_id: str) -> Route | None:
        raw = await self.redis.get(keys.route(route_id))
        return from_json(Route, raw) if raw else None

    async def list_routes(self) -> list[Route]:
        routes = await self._list(Route, keys.ROUTE_INDEX, keys.route, lambda r: r.route_id)
        return sorted(routes, key=lambda r: (-r.priority, r.route_id))

    async def create_route(self, route: Route, actor: str | None = None) -> Route:
        route.validate()
        route.created_at = now_iso()
        route.created_by = route.created_by or actor
        unique = keys.route_unique(route.path_pattern, route.priority)
        if not await self.redis.set(unique, route.route_id, condition=coredis.PureToken.NX):
            other = await self.redis.get(unique)
            raise Conflict(
                f"route {other} already uses path {route.path_pattern} at priority {route.priority}."
            )
        if not await self.redis.set(
            keys.route(route.route_id), to_json(route), condition=coredis.PureToken.NX
        ):
            await self.redis.delete([unique])
            raise Conflict(f"a route with id {route.route_id} already exists.")
        await self._commit(
            [
                ("sadd", (keys.ROUTE_INDEX, [route.route_id])),
                ("set", (keys.route_priority(route.priority, route.route_id), route.route_id)),
            ],
            ("route_created", None, {"route_id": route.route_id}),
        )
        return route

    async def update_route(self, route_id: str, changes: dict[str, Any]) -> Route:
        current = await self.get_route(route_id)
        if current is None:
            raise NotFound(f"no route with id {route_id}.")
        updated = apply_changes(current, changes)
        updated.validate()
        old_unique = keys.route_unique(current.path_pattern, current.priority)
        new_unique = keys.route_unique(updated.path_pattern, updated.priority)
        writes: list[tuple[str, tuple]] = [("set", (keys.route(route_id), to_json(updated)))]
        if new_unique != old_unique:
            if not await self.redis.set(new_unique, route_id, condition=coredis.PureToken.NX):
                other = await self.redis.get(new_unique)
                raise Conflict(
                    f"route {other} already uses path {updated.path_pattern} "
                    f"at priority {updated.priority}."
                )
            writes += [
                ("delete", ([old_unique, keys.route_priority(current.priority, route_id)],)),
                ("set", (keys.route_priority(updated.priority, route_id), route_id)),
            ]
        await self._commit(writes, ("route_updated", None, {"route_id": route_id}))
        return updated

    async def delete_route(self, route_id: str) -> None:
        current = await self.get_route(route_id)
        if current is None:
            raise NotFound(f"no route with id {route_id}.")
        stale = [
            keys.route(route_id),
            keys.route_unique(current.path_pattern, current.priority),
            keys.route_priority(current.priority, route_id),
        ]
        await self._commit(
            [("delete", (stale,)), ("srem", (keys.ROUTE_INDEX, [route_id]))],
            ("route_deleted", None, {"route_id": route_id}),
        )

    # -- external services -------------------------------------------------------------------
    async def get_external_service(self, name: str) -> ExternalService | None:
        raw = await self.redis.get(keys.external_service(name))
        return from_json(ExternalService, raw) if raw else None

    async def list_external_services(self) -> list[ExternalService]:
        return await self._list(
            ExternalService, keys.EXTERNAL_SERVICES, keys.external_service, lambda s: s.service_name
        )

    async def register_external_service(
        self, service: ExternalService, actor: str | None = None
    ) -> ExternalService:
        """Create or replace the named external service."""
        service.validate()
        service.created_at = now_iso()
        service.created_by = service.created_by or actor
        name = service.service_name
        await self._commit(
            [
                ("set", (keys.external_service(name), to_json(service))),
                ("set", (keys.service_url(name), service.target_url)),
                ("sadd", (keys.EXTERNAL_SERVICES, [name])),
            ],
            ("service_registered", None, {"service_name": name}),
        )
        return service

    async def delete_external_service(self, name: str) -> None:
        if not await self.redis.exists([keys.external_service(name)]):
            raise NotFound(f"no external service named {name}.")
        await self._commit(
            [
                ("delete", ([keys.external_service(name), keys.service_url(name)],)),
                ("srem", (keys.EXTERNAL_SERVICES, [name])),
            ],
            ("service_deleted", None, {"service_name": name}),
        )

    # -- helpers -----------------------------------------------------------------------------
    async def _list(self, cls, index_key: str, key_of, sort_key) -> list:
        names = sorted(await self.redis.smembers(index_key))
        if not names:
            return []
        raws = await self.redis.mget([key_of(n) for n in names])
        return sorted((from_json(cls, raw) for raw in raws if raw), key=sort_key)


def _proxy_event_data(proxy: Proxy) -> dict[str, Any]:
    return {
        "enable_http": proxy.enable_http,
        "enable_https": proxy.enable_https,
        "cert_name": proxy.cert_name,
    }
