"""Redis key names, in one place (layout follows the reference system)."""

EVENTS_STREAM = "events:workflow"

PROXY_INDEX = "index:proxies"
ROUTE_INDEX = "index:routes"
EXTERNAL_SERVICES = "services:external"
SIGNING_KEYS = "oauth:signing_keys"
INSTANCES = "instances"


def proxy(hostname: str) -> str:
    return f"proxy:{hostname}"


def route(route_id: str) -> str:
    return f"route:{route_id}"


def route_unique(path: str, priority: int) -> str:
    return f"route:unique:{path}:{priority}"


def route_priority(priority: int, route_id: str) -> str:
    return f"route:priority:{priority}:{route_id}"


def external_service(name: str) -> str:
    return f"service:external:{name}"


def service_url(name: str) -> str:
    return f"service:url:{name}"


def instance(name: str) -> str:
    return f"instance:{name}"


# -- Docker services and the port registry -----------------------------------------------------
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
