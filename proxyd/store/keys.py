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
