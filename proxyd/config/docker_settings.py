"""Settings of Docker services and the host port registry."""

from __future__ import annotations

import attrs

import proxyd.config.parsers as p


@attrs.frozen(slots=False)
class DockerSettings:
    """Docker services and ports (proxyd.docker, proxyd.ports)."""

    docker_host: str = p.setting(
        "DOCKER_HOST",
        "unix:///var/run/docker.sock",
        p.docker_host,
        "Docker daemon proxyd manages services on (unix:///path or tcp://host:port).",
    )
    docker_api_version: str = p.setting(
        "DOCKER_API_VERSION",
        "1.41",
        p.docker_api_version,
        "Docker Engine API version to speak (1.41 is Docker 20.10), or auto.",
    )
    docker_labels: bool = p.setting(
        "DOCKER_LABELS",
        "false",
        p.boolean,
        "Create proxies for containers that carry proxyd.hostname labels, while they run.",
    )
    docker_stop_timeout: int = p.setting(
        "DOCKER_STOP_TIMEOUT",
        "10",
        p.positive_int,
        "Seconds a service's container gets to stop after SIGTERM before it is killed.",
    )
    docker_default_memory: str = p.setting(
        "DOCKER_DEFAULT_MEMORY",
        "512m",
        p.memory_size,
        "Memory limit of services created without one (empty: no limit).",
    )
    port_range_start: int = p.setting(
        "PORT_RANGE_START",
        "11000",
        p.port,
        "First host port services may be given (explicitly or by allocation).",
    )
    port_range_end: int = p.setting(
        "PORT_RANGE_END", "65535", p.port, "Last host port services may be given."
    )
    restricted_ports: tuple[int, ...] = p.setting(
        "RESTRICTED_PORTS",
        "22,25,53,80,443,3306,5432,6379,27017",
        p.port_list,
        "Host ports never given to services (comma-separated).",
    )
