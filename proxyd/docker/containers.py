"""From a DockerService to Docker's container configuration, and from `docker inspect` output to
the ContainerState proxyd shows and routes by.

Containers carry proxyd's labels: proxyd.managed=true, proxyd.owner (who created the service),
proxyd.service (its name), proxyd.instance (the proxyd process that created it) and
proxyd.target-port (the container port proxies reach), so every proxyd process can tell what it
manages and where to send requests from Docker alone.
"""

from __future__ import annotations

from typing import Any

import attrs

from proxyd.store.service_models import DockerService, ServiceDown, parse_memory

MANAGED = "proxyd.managed"
SERVICE = "proxyd.service"
OWNER = "proxyd.owner"
INSTANCE = "proxyd.instance"
TARGET_PORT = "proxyd.target-port"
PIDS_LIMIT = 4096  # every container gets a process limit (fork bombs stay inside)


@attrs.define
class ContainerState:
    status: str  # running, exited, restarting, unhealthy, created, paused, dead, missing, unknown
    exit_code: int | None = None
    health: str | None = None
    ip: str | None = None
    container_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    target_port: int | None = None
    published: dict[int, int] = attrs.Factory(dict)  # container port -> loopback host port

    def target(self, name: str) -> str | ServiceDown | None:
        """Where a proxy for this service sends requests now (URL), or why it cannot."""
        if self.status not in ("running", "unhealthy"):
            return ServiceDown(name, self.status)
        if self.target_port is None:
            return None
        if self.ip:
            return f"http://{self.ip}:{self.target_port}"
        host_port = self.published.get(self.target_port)
        return f"http://127.0.0.1:{host_port}" if host_port else None


MISSING = ContainerState("missing")


def container_config(
    service: DockerService,
    instance: str,
    image: str,
    stop_timeout: int = 10,
    default_memory: str | None = None,
) -> dict[str, Any]:
    """The body of POST /containers/create for service."""
    labels = {
        **service.labels,
        MANAGED: "true",
        SERVICE: service.service_name,
        OWNER: service.created_by or "",
        INSTANCE: instance,
    }
    primary = service.primary_port()
    if primary is not None:
        labels[TARGET_PORT] = str(primary.container_port)
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for port in service.port_configs:
        key = f"{port.container_port}/{port.protocol}"
        exposed[key] = {}
        if not port.require_token and port.host_port:  # tokened ports: proxyd listens instead
            bindings.setdefault(key, []).append(
                {"HostIp": port.bind_address, "HostPort": str(port.host_port)}
            )
    host_config: dict[str, Any] = {
        "PortBindings": bindings,
        "RestartPolicy": {"Name": service.restart_policy},
        "NetworkMode": service.networks[0] if service.networks else "bridge",
    }
    host_config["PidsLimit"] = PIDS_LIMIT
    memory = parse_memory(service.memory_limit or default_memory)
    if memory:
        host_config["Memory"] = memory
        host_config["MemorySwap"] = memory  # no swap beyond the limit
    if service.cpu_limit:
        host_config["NanoCpus"] = int(service.cpu_limit * 1_000_000_000)
    config: dict[str, Any] = {
        "Image": image,
        "StopTimeout": stop_timeout,
        "Env": [f"{k}={v}" for k, v in sorted(service.environment.items())],
        "Labels": labels,
        "ExposedPorts": exposed,
        "HostConfig": host_config,
    }
    if service.command:
        config["Cmd"] = list(service.command)
    return config


def state_from_inspect(data: dict | None) -> ContainerState:
    if not data:
        return MISSING
    state = data.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    status = state.get("Status") or "unknown"
    if state.get("Restarting"):
        status = "restarting"
    elif status == "running" and health == "unhealthy":
        status = "unhealthy"
    network = data.get("NetworkSettings") or {}
    ip = network.get("IPAddress") or None
    if not ip:
        for net in (network.get("Networks") or {}).values():
            if net.get("IPAddress"):
                ip = net["IPAddress"]
                break
    labels = (data.get("Config") or {}).get("Labels") or {}
    target = labels.get(TARGET_PORT)
    published: dict[int, int] = {}
    for key, binds in (network.get("Ports") or {}).items():
        for bind in binds or ():
            if bind.get("HostIp") in ("127.0.0.1", "0.0.0.0") and bind.get("HostPort"):
                published.setdefault(int(key.split("/")[0]), int(bind["HostPort"]))
    return ContainerState(
        status=status,
        exit_code=state.get("ExitCode") if status not in ("running", "created") else None,
        health=health,
        ip=ip,
        container_id=data.get("Id"),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
        target_port=int(target) if target and target.isdigit() else None,
        published=published,
    )


def stats_summary(raw: dict) -> dict[str, Any]:
    """CPU %, memory and its limit, network and block I/O from one Docker stats sample."""
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    cpu_percent = (cpu_delta / system_delta) * cpus * 100.0 if system_delta > 0 else 0.0
    memory = raw.get("memory_stats") or {}
    usage = memory.get("usage", 0) - ((memory.get("stats") or {}).get("inactive_file", 0))
    limit = memory.get("limit", 0)
    rx = tx = 0
    for net in (raw.get("networks") or {}).values():
        rx += net.get("rx_bytes", 0)
        tx += net.get("tx_bytes", 0)
    read = write = 0
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (entry.get("op") or "").lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return {
        "cpu_percent": round(max(cpu_percent, 0.0), 2),
        "memory_usage": max(usage, 0),
        "memory_limit": limit,
        "memory_percent": round(usage / limit * 100.0, 2) if limit else 0.0,
        "network_rx": rx,
        "network_tx": tx,
        "block_read": read,
        "block_write": write,
        "pids": (raw.get("pids_stats") or {}).get("current", 0),
        "read_at": raw.get("read"),
    }
