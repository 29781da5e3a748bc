"""Models of managed services and host ports: DockerService with its PortConfig list, the
PortAllocation kept per host port, and ServiceDown, the marker the edge answers 503 for.

Stored JSON carries `schema_version` (like proxyd.store.models); unknown keys are ignored on read.
Access tokens of ports are never stored: only their SHA-256 (`source_token_hash`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shlex
from typing import Any

import attrs

from proxyd.store.models import SCHEMA_VERSION, ValidationError

SERVICE_TYPES = ("docker", "external", "internal")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
PROTOCOLS = ("tcp", "udp")
BIND_ADDRESSES = ("127.0.0.1", "0.0.0.0")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_PORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MEMORY = re.compile(r"^(\d+)\s*([bkmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MAX_PORTS = 32
MAX_ITEMS = 256


@attrs.frozen
class ServiceDown:
    """A service proxyd knows but cannot send requests to now (stopped, missing, exited)."""

    name: str
    status: str


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def parse_memory(value: Any) -> int | None:
    """'512m', '1g', '65536' (bytes) -> bytes; None/'' -> None. At least 6 MiB (Docker's floor)."""
    if value in (None, ""):
        return None
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise ValidationError(
            f"memoryLimit must look like 512m, 1g or a byte count, not {value!r}."
        )
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size < 6 * 1024**2:
        raise ValidationError("memoryLimit must be at least 6m (Docker's minimum).")
    return size


def check_service_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValidationError(
            f"service name {name!r} must be 1-63 lower-case letters, digits, '_' or '-'."
        )
    return name


@attrs.define
class PortConfig:
    """One port of a Docker service (the reference's port_configs entry)."""

    name: str
    container_port: int
    host_port: int | None = None  # allocated when omitted
    bind_address: str = "127.0.0.1"
    protocol: str = "tcp"
    source_token_hash: str | None = None  # set: proxyd publishes the port and checks the token
    description: str | None = None

    @property
    def require_token(self) -> bool:
        return self.source_token_hash is not None

    @property
    def published_by(self) -> str:
        return "proxyd" if self.require_token else "docker"

    def validate(self) -> None:
        if not _PORT_NAME.match(self.name or ""):
            raise ValidationError(
                f"port name {self.name!r} must be 1-32 lower-case letters, digits, '_' or '-'."
            )
        if not isinstance(self.container_port, int) or not 1 <= self.container_port <= 65535:
            raise ValidationError(f"containerPort must be 1-65535, not {self.container_port!r}.")
        if self.host_port is not None and not 1 <= self.host_port <= 65535:
            raise ValidationError(f"hostPort must be 1-65535, not {self.host_port!r}.")
        if self.bind_address not in BIND_ADDRESSES:
            raise ValidationError(
                f"bindAddress must be 127.0.0.1 or 0.0.0.0, not {self.bind_address!r}."
            )
        if self.protocol not in PROTOCOLS:
            raise ValidationError(f"protocol must be tcp or udp, not {self.protocol!r}.")
        if self.require_token and self.protocol != "tcp":
            raise ValidationError("a port with an access token must be tcp (proxyd serves HTTP).")


@attrs.define
class DockerService:
    """A container proxyd manages (service_type docker)."""

    service_name: str
    image: str | None = None
    dockerfile_path: str | None = None
    command: list[str] | None = None
    environment: dict[str, str] = attrs.Factory(dict)
    memory_limit: str | None = None
    cpu_limit: float | None = None
    restart_policy: str = "unless-stopped"
    labels: dict[str, str] = attrs.Factory(dict)
    networks: list[str] = attrs.Factory(list)
    port_configs: list[PortConfig] = attrs.Factory(list)
    proxy_hostname: str | None = None  # the proxy made for the service (autoProxy)
    service_type: str = "docker"
    container_name: str = ""
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    owner_token_hash: str | None = None

    def validate(self) -> None:
        self.service_name = check_service_name(self.service_name)
        self.container_name = self.container_name or f"proxyd-{self.service_name}"
        if bool(self.image) == bool(self.dockerfile_path):
            raise ValidationError("give exactly one of image or dockerfilePath.")
        if self.image and not _IMAGE.match(self.image):
            raise ValidationError(f"image {self.image!r} is not a valid image reference.")
        if self.command is not None:
            if len(self.command) == 1 and " " in self.command[0].strip():
                self.command = shlex.split(self.command[0])  # one string: split like a shell
            if not self.command or len(self.command) > MAX_ITEMS:
                raise ValidationError("command must be a non-empty list of arguments.")
        if len(self.environment) > MAX_ITEMS or not all(
            _ENV_KEY.match(k) and isinstance(v, str) and "\0" not in v
            for k, v in self.environment.items()
        ):
            raise ValidationError("environment must map NAME (letters, digits, _) to strings.")
        parse_memory(self.memory_limit)
        if self.cpu_limit is not None and not 0.01 <= self.cpu_limit <= 1024:
            raise ValidationError("cpuLimit must be between 0.01 and 1024 CPUs.")
        if self.restart_policy not in RESTART_POLICIES:
            raise ValidationError(
                f"restartPolicy must be one of {', '.join(RESTART_POLICIES)}, "
                f"not {self.restart_policy!r}."
            )
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()):
            raise ValidationError("labels must map names to string values.")
        if any(k.startswith("proxyd.") for k in self.labels):
            raise ValidationError("labels starting with 'proxyd.' are reserved for proxyd.")
        if len(self.labels) > MAX_ITEMS or len(self.networks) > 16:
            raise ValidationError("too many labels or networks.")
        for network in self.networks:
            if network in ("host", "none") or not _NETWORK.match(network or ""):
                raise ValidationError(
                    f"network {network!r} is not allowed: name a Docker network (not host or none)."
                )
        if len(self.port_configs) > MAX_PORTS:
            raise ValidationError(f"a service has at most {MAX_PORTS} ports.")
        names = [p.name for p in self.port_configs]
        if len(set(names)) != len(names):
            raise ValidationError("port names must be unique within a service.")
        for port in self.port_configs:
            port.validate()

    def primary_port(self) -> PortConfig | None:
        """The port proxies reach: the one named http, else the first tcp port."""
        tcp = [p for p in self.port_configs if p.protocol == "tcp"]
        for port in tcp:
            if port.name == "http":
                return port
        return tcp[0] if tcp else None

    def port(self, name: str) -> PortConfig | None:
        return next((p for p in self.port_configs if p.name == name), None)


@attrs.define
class PortAllocation:
    """Who holds one host port (port:{port})."""

    port: int
    service_name: str
    port_name: str
    bind_address: str = "127.0.0.1"
    protocol: str = "tcp"
    container_port: int | None = None
    require_token: bool = False
    allocated_at: str | None = None


def service_to_json(service: DockerService) -> str:
    data = attrs.asdict(service)
    data.pop("port_configs")  # kept in service:ports:{name}
    data["schema_version"] = SCHEMA_VERSION
    return json.dumps(data, separators=(",", ":"))


def service_from_json(raw: str | bytes, ports: list[PortConfig]) -> DockerService:
    data = json.loads(raw)
    names = {f.name for f in attrs.fields(DockerService)} - {"port_configs"}
    return DockerService(**{k: v for k, v in data.items() if k in names}, port_configs=ports)


def port_to_json(obj: PortConfig | PortAllocation) -> str:
    data = attrs.asdict(obj)
    data["schema_version"] = SCHEMA_VERSION
    return json.dumps(data, separators=(",", ":"))


def port_from_json(cls: type, raw: str | bytes) -> Any:
    data = json.loads(raw)
    names = {f.name for f in attrs.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def check_bind_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(f"bindAddress {value!r} is not an IP address.") from None
    return value
