"""The structured results of the MCP tools (their output schemas), built from proxyd.manage's
models. Nothing here carries a secret: custom header values (which may hold upstream
credentials), private keys, client secrets and token values are left out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from proxyd.store.models import ExternalService, Proxy, Route
from proxyd.tls.certificate import Certificate


class ProxyInfo(BaseModel):
    hostname: str
    target_url: str
    enabled: bool
    enable_http: bool
    enable_https: bool
    redirect_to_https: bool
    preserve_host_header: bool
    cert_name: str | None
    auth_enabled: bool
    auth_mode: str
    auth_required_users: list[str] | None
    auth_required_emails: list[str] | None
    auth_required_groups: list[str] | None
    auth_allowed_scopes: list[str] | None
    route_mode: str
    custom_header_names: list[str]
    created_by: str | None
    created_at: str | None
    updated_at: str | None

    @classmethod
    def of(cls, proxy: Proxy) -> ProxyInfo:
        fields = {name: getattr(proxy, name) for name in cls.model_fields if hasattr(proxy, name)}
        fields["custom_header_names"] = sorted(proxy.custom_headers or {})
        return cls(**fields)


class ProxyList(BaseModel):
    proxies: list[ProxyInfo]


class ProxyResult(BaseModel):
    proxy: ProxyInfo | None


class RouteInfo(BaseModel):
    route_id: str
    path_pattern: str
    target_type: str
    target_value: str
    priority: int
    is_regex: bool
    methods: list[str] | None
    enabled: bool
    scope: str
    proxy_hostnames: list[str]
    description: str | None
    created_by: str | None
    created_at: str | None

    @classmethod
    def of(cls, route: Route) -> RouteInfo:
        return cls(**{name: getattr(route, name) for name in cls.model_fields})


class RouteList(BaseModel):
    routes: list[RouteInfo]


class RouteMatch(BaseModel):
    hostname: str
    method: str
    path: str
    route: RouteInfo | None
    "The route the request takes; null: it goes to the proxy's target_url."


class CertificateInfo(BaseModel):
    cert_name: str
    domains: list[str]
    email: str | None
    acme_directory_url: str | None
    staging: bool
    key_type: str
    challenge: str
    status: str
    expires_at: str | None
    issued_at: str | None
    issuer: str | None
    fingerprint: str | None
    created_by: str | None
    created_at: str | None
    updated_at: str | None
    last_error: str | None
    order_stage: str | None = None
    order_message: str | None = None
    proxies: list[str] = []

    @classmethod
    def of(
        cls, cert: Certificate, status: dict | None = None, proxies: list[str] | None = None
    ) -> CertificateInfo:
        fields = {name: getattr(cert, name) for name in cls.model_fields if hasattr(cert, name)}
        fields.pop("proxies", None)
        return cls(
            **fields,
            order_stage=(status or {}).get("stage"),
            order_message=(status or {}).get("reason") or (status or {}).get("message"),
            proxies=proxies or [],
        )


class CertificateList(BaseModel):
    certificates: list[CertificateInfo]


class CertificateResult(BaseModel):
    certificate: CertificateInfo | None


class ServicePortInfo(BaseModel):
    """A Docker service's port (its access token is never shown, only require_token)."""

    name: str
    container_port: int
    host_port: int | None
    bind_address: str
    protocol: str
    require_token: bool
    "proxyd publishes the port and forwards only requests with Authorization: Bearer <token>."
    published_by: str
    "docker or proxyd"
    description: str | None = None


class ServiceInfo(BaseModel):
    name: str
    kind: str
    "docker (a managed container), external (a named upstream URL) or internal (api)"
    status: str
    "Docker: running, exited, restarting, unhealthy, created, paused, missing, unknown (Docker "
    "unreachable); external: registered; internal: running."
    target_url: str | None
    "Where proxies and routes for the service send requests now."
    description: str | None = None
    routing_enabled: bool = True
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    # Docker services only (environment values and port tokens are never returned)
    exit_code: int | None = None
    health: str | None = None
    image: str | None = None
    command: list[str] | None = None
    environment_keys: list[str] = []
    memory_limit: str | None = None
    cpu_limit: float | None = None
    restart_policy: str | None = None
    labels: dict[str, str] = {}
    networks: list[str] = []
    ports: list[ServicePortInfo] = []
    container_name: str | None = None
    container_id: str | None = None
    ip_address: str | None = None
    proxy_hostname: str | None = None
    notice: str | None = None
    "Set when a change recreated the container: says it restarted."

    @classmethod
    def of_external(cls, service: ExternalService) -> ServiceInfo:
        return cls(
            name=service.service_name,
            kind="external",
            status="registered",
            target_url=service.target_url,
            description=service.description,
            routing_enabled=service.routing_enabled,
            created_by=service.created_by,
            created_at=service.created_at,
        )

    @classmethod
    def of_view(cls, view: dict[str, Any]) -> ServiceInfo:
        """From proxyd.docker.services' view of a service (what GraphQL's Service shows)."""
        fields = {k: view.get(k) for k in cls.model_fields if view.get(k) is not None}
        fields["kind"] = view["type"]
        fields["target_url"] = view.get("target_url")
        fields["ports"] = [ServicePortInfo(**p) for p in view.get("ports") or []]
        return cls(**fields)


class ServiceList(BaseModel):
    services: list[ServiceInfo]


class ServiceResult(BaseModel):
    service: ServiceInfo


class ServiceFound(BaseModel):
    service: ServiceInfo | None
    "null when there is no service of that name"


class ServiceLogs(BaseModel):
    name: str
    lines: list[str]
    "The container's last log lines (stdout and stderr), oldest first."


class ServiceStats(BaseModel):
    name: str
    cpu_percent: float
    memory_usage: float
    "bytes"
    memory_limit: float
    "bytes"
    memory_percent: float
    network_rx: float
    network_tx: float
    block_read: float
    block_write: float
    pids: int
    read_at: str | None = None


class RequestLogEntry(BaseModel):
    id: str
    timestamp: str
    client_ip: str
    hostname: str
    method: str
    path: str
    query: str
    status: int
    bytes_in: int
    bytes_out: int
    duration_ms: float
    upstream_ms: float | None = None
    user: str | None = None
    client_id: str | None = None
    auth_outcome: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    error: str | None = None
    protocol: str
    instance: str | None = None

    @classmethod
    def of(cls, record: dict[str, Any]) -> RequestLogEntry:
        fields = {k: record.get(k) for k in cls.model_fields if record.get(k) is not None}
        fields.setdefault("query", "")
        fields.setdefault("protocol", "http")
        return cls(**fields)


class RequestLogPage(BaseModel):
    items: list[RequestLogEntry]
    end_cursor: str | None
    has_more: bool


class RequestStats(BaseModel):
    hostname: str | None
    hours: int
    requests: int
    errors: int
    unique_visitors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    hourly: list[dict[str, Any]]


class OAuthClientInfo(BaseModel):
    client_id: str
    client_name: str | None = None
    redirect_uris: list[str] = []
    grant_types: list[str] = []
    token_endpoint_auth_method: str | None = None
    client_id_issued_at: int | None = None
    scope: str | None = None


class OAuthClientList(BaseModel):
    clients: list[OAuthClientInfo]


class SessionInfo(BaseModel):
    id: str
    "A hash of the browser's session cookie (the cookie itself is never shown)."
    user: str
    client_id: str | None
    created_at: int
    expires_at: int


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class Done(BaseModel):
    ok: bool
    message: str


class Health(BaseModel):
    status: str
    version: str
    instance: str
    redis: str
    proxies: int
    log_records_dropped: int
