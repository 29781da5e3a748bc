"""PortRegistry: which host port belongs to which service, kept in Redis.

`port:{port}` holds the PortAllocation JSON and is written with SET NX, so of two proxyd
processes that want one port at the same moment exactly one gets it. Allocation (when a port
config gives no host port) walks the configured range, skipping restricted ports, ports other
services hold and ports something else on the host already listens on. Release deletes only
allocations that still belong to the releasing service (a Lua compare-and-delete).
"""

from __future__ import annotations

import random

import attrs
import coredis

from proxyd.config import Settings
from proxyd.ports.host import host_port_problem
from proxyd.store import keys
from proxyd.store.models import now_iso
from proxyd.store.repository import Conflict
from proxyd.store.service_models import PortAllocation, port_from_json, port_to_json

MAX_ALLOCATION_ATTEMPTS = 2000

_REWRITE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['service_name'] == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['service_name'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class PortUnavailable(Conflict):
    """The port cannot be given to the service; the message says why."""


@attrs.frozen
class PortRange:
    start: int
    end: int
    purpose: str


@attrs.frozen
class PortCheck:
    port: int
    bind_address: str
    available: bool
    reason: str | None = None
    service_name: str | None = None


class PortRegistry:
    def __init__(self, settings: Settings, redis: coredis.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.start = settings.port_range_start
        self.end = settings.port_range_end
        self.restricted = frozenset(settings.restricted_ports)

    # -- queries -----------------------------------------------------------------------------
    async def get(self, port: int) -> PortAllocation | None:
        raw = await self.redis.get(keys.port(port))
        return port_from_json(PortAllocation, raw) if raw else None

    async def list(self) -> list[PortAllocation]:
        found: list[PortAllocation] = []
        async for key in self.redis.scan_iter(match="port:*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            if not name[5:].isdigit():
                continue
            raw = await self.redis.get(name)
            if raw:
                found.append(port_from_json(PortAllocation, raw))
        return sorted(found, key=lambda a: a.port)

    async def available_ranges(self) -> list[PortRange]:
        """The exposed range, split around restricted and allocated ports."""
        taken = sorted(
            {a.port for a in await self.list()}
            | {p for p in self.restricted if self.start <= p <= self.end}
        )
        ranges, current = [], self.start
        for port in taken:
            if port > current:
                ranges.append(PortRange(current, port - 1, "exposed"))
            current = max(current, port + 1)
        if current <= self.end:
            ranges.append(PortRange(current, self.end, "exposed"))
        return ranges

    def rule_problem(self, port: int) -> str | None:
        if port in self.restricted:
            return f"port {port} is restricted (reserved for system services)"
        if not self.start <= port <= self.end:
            return f"port {port} is outside the service port range {self.start}-{self.end}"
        return None

    async def check(self, port: int, bind_address: str, protocol: str = "tcp") -> PortCheck:
        """Is port P free on address A: rules, then the registry, then the host."""
        problem = self.rule_problem(port)
        if problem:
            return PortCheck(port, bind_address, False, problem)
        holder = await self.get(port)
        if holder is not None:
            return PortCheck(
                port,
                bind_address,
                False,
                f"port {port} is allocated to service {holder.service_name}",
                holder.service_name,
            )
        problem = host_port_problem(port, bind_address, protocol)
        if problem:
            return PortCheck(port, bind_address, False, problem)
        return PortCheck(port, bind_address, True)

    # -- allocation --------------------------------------------------------------------------
    async def claim(self, allocation: PortAllocation, *, check_host: bool = True) -> None:
        """Take allocation.port for its service, or raise PortUnavailable with the reason."""
        port = allocation.port
        problem = self.rule_problem(port)
        if problem is None and check_host:
            holder = await self.get(port)
            if holder is not None and holder.service_name == allocation.service_name:
                problem = None  # re-claiming our own port (e.g. recreate)
            else:
                problem = host_port_problem(port, allocation.bind_address, allocation.protocol)
        if problem:
            raise PortUnavailable(f"{problem}.")
        allocation.allocated_at = now_iso()
        if await self.redis.set(
            keys.port(port), port_to_json(allocation), condition=coredis.PureToken.NX
        ):
            return
        holder = await self.get(port)
        if holder is not None and (holder.service_name, holder.port_name) == (
            allocation.service_name,
            allocation.port_name,
        ):
            return
        owner = holder.service_name if holder else "another service"
        raise PortUnavailable(f"port {port} is already allocated to service {owner}.")

    async def allocate(self, allocation: PortAllocation) -> int:
        """Give the service a free port from the range; returns it."""
        span = self.end - self.start + 1
        offset = random.randrange(span)  # spread processes that allocate at the same moment
        for attempt in range(min(span, MAX_ALLOCATION_ATTEMPTS)):
            port = self.start + (offset + attempt) % span
            if port in self.restricted:
                continue
            if await self.redis.exists([keys.port(port)]):
                continue
            if host_port_problem(port, allocation.bind_address, allocation.protocol):
                continue
            candidate = attrs.evolve(allocation, port=port, allocated_at=now_iso())
            if await self.redis.set(
                keys.port(port), port_to_json(candidate), condition=coredis.PureToken.NX
            ):
                return port
        raise PortUnavailable(
            f"no free port left in {self.start}-{self.end} after {MAX_ALLOCATION_ATTEMPTS} tries."
        )

    async def rewrite(self, allocation: PortAllocation) -> None:
        """Replace the details (bind address, protocol) of a port the service already holds."""
        allocation.allocated_at = now_iso()
        done = await self.redis.eval(
            _REWRITE,
            keys=[keys.port(allocation.port)],
            args=[allocation.service_name, port_to_json(allocation)],
        )
        if not done:
            raise PortUnavailable(
                f"port {allocation.port} is not held by service {allocation.service_name}."
            )

    async def release(self, port: int, service_name: str) -> bool:
        """Free port if service_name holds it; True when it was released."""
        done = await self.redis.eval(_RELEASE, keys=[keys.port(port)], args=[service_name])
        return bool(done)

    async def release_all(self, service_name: str, ports: list[int]) -> None:
        for port in ports:
            await self.release(port, service_name)
