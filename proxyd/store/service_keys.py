"""Redis key names for Docker services and the port registry (layout follows the reference)."""

DOCKER_SERVICES = "services:docker"  # set of Docker service names
LABEL_PROXIES = "docker:label_proxies"  # set of hostnames whose proxy came from container labels


def docker_service(name: str) -> str:
    return f"docker_service:{name}"


def service_ports(name: str) -> str:
    """Hash: port name -> PortConfig JSON of one service."""
    return f"service:ports:{name}"


def port(number: int) -> str:
    """One allocated host port -> PortAllocation JSON (SET NX makes allocation atomic)."""
    return f"port:{number}"


def label_proxy(hostname: str) -> str:
    """The proxy settings container labels asked for, and the proxy version they produced."""
    return f"docker:label_proxy:{hostname}"
