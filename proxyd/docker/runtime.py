"""DockerRuntime: the Docker capability of one proxyd process.

It owns the DockerClient (its trio-asyncio loop), follows Docker's event stream to keep the live
state of every managed container in memory (`states`), reconciles Redis records with Docker's
containers at start and after every reconnect, runs the per-port token gateways, and (with
DOCKER_LABELS=true) label discovery.

proxyd starts whether or not Docker answers: the runtime keeps retrying in the background, and
Docker features raise DockerUnavailable ("Docker is not reachable at ...") meanwhile.

`lookup(name)` is what the edge consults for `service` targets: a dict lookup, no Redis and no
Docker call on the request path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import trio

from proxyd.config import Settings
from proxyd.docker.client import DockerClient, DockerError, DockerUnavailable
from proxyd.docker.containers import MANAGED, MISSING, SERVICE, ContainerState, state_from_inspect
from proxyd.events.bus import Event, EventBus
from proxyd.ports.gateway import GatewaySet
from proxyd.ports.registry import PortRegistry
from proxyd.store.docker_services import DockerServiceRecords
from proxyd.store.models import now_iso
from proxyd.store.repository import Store
from proxyd.store.service_models import DockerService, ServiceDown

log = logging.getLogger("proxyd.docker")

WATCHED_ACTIONS = frozenset(
    {"create", "start", "restart", "die", "stop", "kill", "pause", "unpause", "destroy", "oom"}
)
MAX_RETRY_DELAY = 30.0


class DockerRuntime:
    def __init__(self, settings: Settings, store: Store, bus: EventBus | None = None) -> None:
        self.settings = settings
        self.store = store
        self.client = DockerClient(settings.docker_host, settings.docker_api_version)
        self.records = DockerServiceRecords(store)
        self.ports = PortRegistry(settings, store.redis)
        self.states: dict[str, ContainerState] = {}
        self.status_bus = EventBus()
        self.available = False
        self.error = f"Docker is not reachable at {settings.docker_host} (not connected yet)."
        self.gateways = GatewaySet(settings, self.endpoint)
        self.labels: Any = None  # proxyd.docker.labels.LabelDiscovery when DOCKER_LABELS=true
        self.locks: defaultdict[str, trio.Lock] = defaultdict(trio.Lock)
        self.last_reconcile: dict[str, Any] = {}
        self._nursery: trio.Nursery | None = None
        self._bus = bus
        self._wake = trio.Event()

    # -- the edge's view (hot path) ----------------------------------------------------------
    def lookup(self, name: str) -> str | ServiceDown | None:
        """URL of Docker service name, ServiceDown when it cannot serve, None when unknown."""
        state = self.states.get(name)
        return None if state is None else state.target(name)

    def endpoint(self, name: str, container_port: int) -> str | ServiceDown | None:
        """URL of one container port of service name (used by the token gateways)."""
        state = self.states.get(name)
        if state is None:
            return None
        if state.status not in ("running", "unhealthy"):
            return ServiceDown(name, state.status)
        return f"http://{state.ip}:{container_port}" if state.ip else None

    # -- lifecycle ---------------------------------------------------------------------------
    async def follow_records(self, bus: EventBus) -> None:
        """Keep the token gateways in step with service changes other processes make
        (docker_service_* workflow events, as the event consumer applies them)."""
        with bus.listen() as events:
            async for event in events:
                if not event.event_type.startswith("docker_service_"):
                    continue
                name = event.data.get("service_name")
                if not name:
                    continue
                service = await self.records.get(name)
                self.gateways.update(service, name)
                if service is None:
                    self.forget(name)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        if self.settings.docker_labels:
            from proxyd.docker.labels import LabelDiscovery

            self.labels = LabelDiscovery(self)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.client.run)
            nursery.start_soon(self.gateways.run)
            if self._bus is not None:
                nursery.start_soon(self.follow_records, self._bus)
            task_status.started()
            await self._follow_docker()

    async def _follow_docker(self) -> None:
        delay = 1.0
        while True:
            try:
                version = await self.client.ping()
            except DockerError as exc:
                if self.available or self.error != str(exc):
                    log.warning("%s Docker features are off until it answers.", exc)
                self.available, self.error = False, str(exc)
                with trio.move_on_after(delay):
                    await self._wake.wait()  # require() saw Docker answer: try now
                self._wake = trio.Event()
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            delay = 1.0
            self.available = True
            log.info(
                "Docker %s (API %s) at %s",
                version.get("Version"),
                version.get("ApiVersion"),
                self.settings.docker_host,
            )
            try:
                async with self.client.events({"type": ["container"]}) as events:
                    await self.reconcile()
                    async for event in events:
                        await self._on_event(event)
            except DockerError as exc:
                log.warning("lost Docker's event stream: %s", exc)
            self.available = False
            self.error = f"Docker is not reachable at {self.settings.docker_host} (stream ended)."
            await trio.sleep(delay)

    async def require(self) -> None:
        """Raise DockerUnavailable unless Docker answers."""
        if self.available:
            return
        try:
            await self.client.ping()
        except DockerError as exc:
            raise DockerUnavailable(str(exc)) from None
        self.available = True
        self._wake.set()  # the follow loop, if it is waiting to retry, connects now

    # -- state -------------------------------------------------------------------------------
    async def refresh(self, service: DockerService | str) -> ContainerState:
        """Inspect the service's container now and update the live state."""
        name = service if isinstance(service, str) else service.service_name
        container = f"proxyd-{name}" if isinstance(service, str) else service.container_name
        state = state_from_inspect(await self.client.inspect_container(container))
        self._set_state(name, state)
        return state

    def _set_state(self, name: str, state: ContainerState) -> None:
        old = self.states.get(name)
        self.states[name] = state
        if old is None or (old.status, old.exit_code, old.health) != (
            state.status,
            state.exit_code,
            state.health,
        ):
            self.status_bus.publish(
                Event(
                    id="",
                    event_type="service_status",
                    hostname=None,
                    data={"name": name, "status": state.status, "exit_code": state.exit_code},
                    timestamp=now_iso(),
                )
            )

    def forget(self, name: str) -> None:
        self.states.pop(name, None)

    async def _on_event(self, event: dict) -> None:
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if attributes.get(MANAGED) == "true":
            name = attributes.get(SERVICE)
            if not name or (action not in WATCHED_ACTIONS and action != "health_status"):
                return
            if action == "destroy":
                if name in self.states:
                    self._set_state(name, MISSING)
                return
            try:
                await self.refresh(name)
            except DockerError as exc:
                log.info("could not inspect the container of %s: %s", name, exc)
        elif self.labels is not None and "proxyd.hostname" in attributes:
            await self.labels.on_event(action, event)

    # -- reconcile ---------------------------------------------------------------------------
    async def reconcile(self) -> dict[str, Any]:
        """Bring the in-memory state, Redis records and Docker's containers into agreement.

        A record whose container is gone is shown as missing (never recreated silently); a
        proxyd-labelled container without a record is logged as an orphan (cleanupServices
        removes it)."""
        records = {s.service_name: s for s in await self.records.list()}
        containers = await self.client.list_containers([f"{MANAGED}=true"])
        seen: dict[str, dict] = {}
        for summary in containers:
            name = (summary.get("Labels") or {}).get(SERVICE)
            names = [n.lstrip("/") for n in summary.get("Names") or ()]
            if name and f"proxyd-{name}" in names:  # proxyd names its containers proxyd-NAME
                seen[name] = summary
        missing, orphans = [], []
        for name, service in records.items():
            if name in seen:
                await self.refresh(service)
            else:
                self._set_state(name, MISSING)
                missing.append(name)
                log.warning(
                    "service %s: its container %s is missing (removed outside proxyd); "
                    "it is not recreated: start or delete the service",
                    name,
                    service.container_name,
                )
        for name in sorted(set(seen) - set(records)):
            orphans.append(name)
            log.warning(
                "container %s is labelled as proxyd service %s but proxyd has no record of it; "
                "cleanupServices removes it",
                (seen[name].get("Names") or ["?"])[0].lstrip("/"),
                name,
            )
        for name in list(self.states):
            if name not in records:
                self.forget(name)
        self.gateways.sync(list(records.values()))
        if self.labels is not None:
            await self.labels.reconcile()
        self.last_reconcile = {"missing": missing, "orphans": orphans, "at": now_iso()}
        if missing or orphans:
            log.info("reconciled with Docker: %d missing, %d orphaned", len(missing), len(orphans))
        return self.last_reconcile
