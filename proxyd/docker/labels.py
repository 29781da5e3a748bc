"""Label discovery (DOCKER_LABELS=true), the Traefik way: containers proxyd did not create that
carry `proxyd.hostname=NAME` get a proxy while they run.

Optional labels: `proxyd.port` (container port; default: the first exposed tcp port, else 80),
`proxyd.auth=true` (require proxyd's OAuth) and `proxyd.https=false` (no HTTPS for the name).

Each such proxy is recorded in `docker:label_proxy:{hostname}` (the container, the settings the
labels asked for and the proxy version they produced) and in `docker:label_proxies`. A change made
through the API afterwards is an override: labels no longer touch that proxy until
`revertProxyToLabels(hostname)`. Labels never take a hostname that already has a proxy of any
other origin, so an untrusted container cannot capture (or switch auth off for) a managed name.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from proxyd.docker.client import DockerError
from proxyd.docker.containers import MANAGED, state_from_inspect
from proxyd.store import keys
from proxyd.store.models import Proxy, ValidationError, normalize_hostname
from proxyd.store.repository import Conflict, NotFound, Store

if TYPE_CHECKING:
    from proxyd.docker.runtime import DockerRuntime

log = logging.getLogger("proxyd.docker.labels")

HOSTNAME = "proxyd.hostname"
PORT = "proxyd.port"
AUTH = "proxyd.auth"
HTTPS = "proxyd.https"
CREATED_BY = "docker-labels"


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def wanted_settings(data: dict) -> tuple[str, dict[str, Any]] | None:
    """(hostname, proxy settings) a running labelled container asks for, or None."""
    labels = (data.get("Config") or {}).get("Labels") or {}
    if labels.get(MANAGED) == "true" or HOSTNAME not in labels:
        return None
    hostname = normalize_hostname(labels[HOSTNAME])
    state = state_from_inspect(data)
    if state.status not in ("running", "unhealthy") or not state.ip:
        return None
    port = labels.get(PORT, "").strip()
    if not port:
        exposed = sorted(
            int(k.split("/")[0])
            for k in ((data.get("Config") or {}).get("ExposedPorts") or {})
            if k.endswith("/tcp")
        )
        port = str(exposed[0]) if exposed else "80"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError(f"label {PORT}={port!r} is not a port number.")
    return hostname, {
        "target_url": f"http://{state.ip}:{int(port)}",
        "auth_enabled": _flag(labels.get(AUTH), False),
        "enable_https": _flag(labels.get(HTTPS), True),
    }


async def _record(store: Store, hostname: str) -> dict | None:
    raw = await store.redis.get(keys.label_proxy(hostname))
    return json.loads(raw) if raw else None


def _overridden(proxy: Proxy, record: dict) -> bool:
    if proxy.updated_at != record.get("updated_at"):
        return True
    return any(getattr(proxy, k) != v for k, v in record.get("settings", {}).items())


async def proxy_source(store: Store, proxy: Proxy) -> str:
    """api, labels, or labels-overridden."""
    record = await _record(store, proxy.hostname)
    if record is None:
        return "api"
    return "labels-overridden" if _overridden(proxy, record) else "labels"


async def revert_to_labels(store: Store, hostname: str) -> Proxy:
    hostname = normalize_hostname(hostname)
    record = await _record(store, hostname)
    if record is None:
        raise NotFound(f"the proxy for {hostname} did not come from container labels.")
    proxy = await store.update_proxy(hostname, record["settings"])
    await _save(store, hostname, record["container"], record["settings"], proxy)
    return proxy


async def _save(store: Store, hostname: str, container: str, settings: dict, proxy: Proxy):
    record = {"container": container, "settings": settings, "updated_at": proxy.updated_at}
    await store.redis.set(keys.label_proxy(hostname), json.dumps(record))
    await store.redis.sadd(keys.LABEL_PROXIES, [hostname])


class LabelDiscovery:
    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self.store = runtime.store
        # proxyd's own hostnames: never given to a container, proxy record or not.
        issuer = urlsplit(runtime.settings.issuer).hostname or ""
        self.reserved = frozenset({"localhost", issuer.lower()} - {""})

    async def on_event(self, action: str, event: dict) -> None:
        container = (event.get("Actor") or {}).get("ID") or event.get("id") or ""
        try:
            if action in ("start", "unpause", "restart"):
                data = await self.runtime.client.inspect_container(container)
                if data:
                    await self.apply(data)
            elif action in ("die", "stop", "kill", "destroy", "pause"):
                await self.withdraw(container)
        except DockerError as exc:
            log.info("label discovery: %s", exc)

    async def apply(self, data: dict) -> None:
        name = (data.get("Name") or "").lstrip("/")
        try:
            wanted = wanted_settings(data)
        except ValidationError as exc:
            log.warning("container %s: labels ignored: %s", name, exc)
            return
        if wanted is None:
            return
        hostname, settings = wanted
        if hostname in self.reserved:
            log.warning(
                "container %s: labels ignored: %s is proxyd's own hostname (the issuer's or "
                "localhost).",
                name,
                hostname,
            )
            return
        proxy = await self.store.get_proxy(hostname)
        record = await _record(self.store, hostname)
        if proxy is None:
            try:
                proxy = await self.store.create_proxy(
                    Proxy(hostname=hostname, created_by=CREATED_BY, **settings), actor=CREATED_BY
                )
            except Conflict:
                return
            log.info("labels of container %s: proxy %s -> %s", name, hostname, settings)
        elif record is None:
            log.warning(
                "labels of container %s ask for %s, which already has a proxy not made from "
                "labels; ignored",
                name,
                hostname,
            )
            return
        elif _overridden(proxy, record):
            await self.store.redis.set(
                keys.label_proxy(hostname),
                json.dumps({**record, "container": data["Id"]}),
            )
            return
        else:
            proxy = await self.store.update_proxy(hostname, settings)
        await _save(self.store, hostname, data["Id"], settings, proxy)

    async def withdraw(self, container_id: str) -> None:
        for hostname in await self.store.redis.smembers(keys.LABEL_PROXIES):
            hostname = hostname.decode() if isinstance(hostname, bytes) else hostname
            record = await _record(self.store, hostname)
            if record is None or record.get("container") != container_id:
                continue
            proxy = await self.store.get_proxy(hostname)
            if proxy is not None and _overridden(proxy, record):
                continue  # an API override keeps its proxy
            if proxy is not None:
                try:
                    await self.store.delete_proxy(hostname)
                except NotFound:
                    pass
                log.info("container %s stopped: proxy %s removed", container_id[:12], hostname)
            await self.store.redis.delete([keys.label_proxy(hostname)])
            await self.store.redis.srem(keys.LABEL_PROXIES, [hostname])

    async def reconcile(self) -> None:
        running: set[str] = set()
        for summary in await self.runtime.client.list_containers([HOSTNAME]):
            if summary.get("State") == "running":
                data = await self.runtime.client.inspect_container(summary["Id"])
                if data:
                    running.add(data["Id"])
                    await self.apply(data)
        for hostname in await self.store.redis.smembers(keys.LABEL_PROXIES):
            hostname = hostname.decode() if isinstance(hostname, bytes) else hostname
            record = await _record(self.store, hostname)
            if record and record.get("container") not in running:
                await self.withdraw(record["container"])
