"""The Settings class: each setting's name, type, default and description, and how it is read.

Values come from the process environment first, then from a `.env` file (KEY=VALUE lines), then
from the default. An invalid value raises SettingsError with one sentence naming the setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a value proxyd cannot use; the message names the setting."""


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise SettingsError(f"{name} must be a port number from 0 to 65535, not {raw!r}.")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds, not {raw!r}.")
    return value


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(f"{name} must be a whole number above 0, not {raw!r}.")
    return value


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _redis_url(name: str, raw: str) -> str:
    raw = raw.strip()
    if raw and not re.match(r"^(redis|rediss|unix)://", raw):
        raise SettingsError(
            f"{name} must start with redis://, rediss:// or unix://, not {raw!r} "
            "(leave it empty to run the embedded redis-server)."
        )
    return raw


def _log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise SettingsError(f"{name} must be one of {', '.join(LOG_LEVELS)}, not {raw!r}.")
    return value


def _networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"{name} must be a comma-separated list of IP addresses or CIDR networks; "
                f"{part!r} is neither."
            ) from None
    return tuple(nets)


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}.")


def _log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise SettingsError(f"{name} must be text or json, not {raw!r}.")
    return value


def _workers(name: str, raw: str) -> int:
    if raw.strip().lower() in ("", "auto"):
        return os.cpu_count() or 1
    return _positive_int(name, raw)


def _host(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SettingsError(f"{name} must be an address to listen on, such as 0.0.0.0.")
    return value


def _non_negative_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise SettingsError(f"{name} must be a number of seconds, 0 or more, not {raw!r}.")
    return value


def _rsa_key_size(name: str, raw: str) -> int:
    if raw.strip() not in ("2048", "3072", "4096"):
        raise SettingsError(f"{name} must be 2048, 3072 or 4096, not {raw!r}.")
    return int(raw)


def _key_type(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("rsa", "ecdsa"):
        raise SettingsError(f"{name} must be rsa or ecdsa, not {raw!r}.")
    return value


def _challenge(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("http-01", "tls-alpn-01"):
        raise SettingsError(f"{name} must be http-01 or tls-alpn-01, not {raw!r}.")
    return value


def _directory_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(f"{name} must be an https:// URL of an ACME directory, not {raw!r}.")
    return value


def _docker_host(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^(unix://.+|tcp://[^/\s]+|https?://[^/\s]+)$", value):
        raise SettingsError(
            f"{name} must be unix:///path/to/docker.sock or tcp://host:port, not {raw!r}."
        )
    return value


def _docker_api_version(name: str, raw: str) -> str:
    value = raw.strip().lstrip("v")
    if value != "auto" and not re.match(r"^1\.\d{1,2}$", value):
        raise SettingsError(f"{name} must look like 1.41 (or be auto), not {raw!r}.")
    return value


def _memory_size(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value and not re.match(r"^\d+[bkmg]?$", value):
        raise SettingsError(f"{name} must look like 512m or 1g (or be empty), not {raw!r}.")
    return value


def _port_list(name: str, raw: str) -> tuple[int, ...]:
    return tuple(sorted({_port(name, p.strip()) for p in raw.split(",") if p.strip()}))


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(filter(None, (p.strip() for p in raw.split(","))))


def setting(env: str, default: str, parse: Callable[[str, str], Any], doc: str) -> Any:
    """Declare one setting: its environment name, default (as text), parser and description."""
    return attrs.field(
        default=parse(env, default),
        metadata={"env": env, "raw_default": default, "parse": parse, "doc": doc},
    )


@attrs.frozen
class Settings:
    """Every proxyd setting. Build it with load_settings(); fields are already parsed and valid."""

    redis_url: str = setting(
        "REDIS_URL",
        "",
        _redis_url,
        "Redis to keep configuration, events and logs in. Empty: proxyd starts and supervises its "
        "own redis-server (unix socket, append-only file under PROXYD_DATA_DIR).",
    )
    data_dir: str = setting(
        "PROXYD_DATA_DIR",
        "./.proxyd",
        _str,
        "Directory for the embedded Redis data and other local state.",
    )
    server_host: str = setting(
        "SERVER_HOST", "0.0.0.0", _host, "Address the public HTTP and HTTPS listeners bind to."
    )
    http_port: int = setting(
        "HTTP_PORT", "80", _port, "Public HTTP listener port (0: any free port)."
    )
    https_port: int = setting(
        "HTTPS_PORT", "443", _port, "Public HTTPS listener port (0: any free port)."
    )
    # -- TLS capability: certificates, ACME, renewal --------------------------------------------
    self_signed_cn: str = setting(
        "SELF_SIGNED_CN",
        "localhost",
        _str,
        "Common name of the self-signed certificate served when no certificate covers a name.",
    )
    self_signed_days: int = setting(
        "SELF_SIGNED_DAYS", "365", _positive_int, "Validity in days of self-signed certificates."
    )
    acme_directory_url: str = setting(
        "ACME_DIRECTORY_URL",
        "https://acme-v02.api.letsencrypt.org/directory",
        _directory_url,
        "ACME directory for certificates (Let's Encrypt production, or any ACME CA).",
    )
    acme_staging_url: str = setting(
        "ACME_STAGING_URL",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
        _directory_url,
        "ACME directory used for certificates requested with staging=true.",
    )
    acme_ca_bundle: str = setting(
        "ACME_CA_BUNDLE",
        "",
        _str,
        "PEM file of CA certificates to trust for the ACME directory's HTTPS (Pebble, private "
        "CAs). Empty: the system's trust store.",
    )
    rsa_key_size: int = setting(
        "RSA_KEY_SIZE",
        "2048",
        _rsa_key_size,
        "RSA key size for new certificates (2048, 3072, 4096).",
    )
    cert_key_type: str = setting(
        "CERT_KEY_TYPE",
        "rsa",
        _key_type,
        "Key type of new certificates when a request does not say: rsa or ecdsa (P-256).",
    )
    acme_challenge: str = setting(
        "ACME_CHALLENGE",
        "http-01",
        _challenge,
        "ACME challenge used when a request does not say: http-01 (port 80) or tls-alpn-01 "
        "(port 443).",
    )
    acme_poll_max_attempts: int = setting(
        "ACME_POLL_MAX_ATTEMPTS",
        "60",
        _positive_int,
        "How many times an order's authorizations and finalization are polled before giving up.",
    )
    acme_poll_interval_seconds: float = setting(
        "ACME_POLL_INTERVAL_SECONDS", "2", _positive_float, "Seconds between ACME polls."
    )
    acme_poll_initial_wait: float = setting(
        "ACME_POLL_INITIAL_WAIT",
        "0",
        _non_negative_float,
        "Seconds to wait after answering challenges before the first poll.",
    )
    cert_gen_max_workers: int = setting(
        "CERT_GEN_MAX_WORKERS",
        "5",
        _positive_int,
        "Certificate orders run at the same time in one proxyd process (worker threads).",
    )
    cert_status_retention_seconds: int = setting(
        "CERT_STATUS_RETENTION_SECONDS",
        "300",
        _positive_int,
        "Seconds the status of a finished order (ready or failed) is kept in cert:status:{name}.",
    )
    renewal_check_interval: float = setting(
        "RENEWAL_CHECK_INTERVAL",
        "86400",
        _positive_float,
        "Seconds between checks for certificates that need renewing.",
    )
    renewal_threshold_days: float = setting(
        "RENEWAL_THRESHOLD_DAYS",
        "30",
        _positive_float,
        "Renew certificates that expire within this many days.",
    )
    admin_email: str = setting(
        "ADMIN_EMAIL",
        "",
        _str,
        "Contact email for ACME accounts when a request gives none (may be empty).",
    )
    api_port: int = setting(
        "API_PORT",
        "9000",
        _port,
        "Management API port (GraphQL at /graphql, /health). Always bound to 127.0.0.1 only.",
    )
    log_level: str = setting(
        "LOG_LEVEL", "INFO", _log_level, "TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    base_domain: str = setting(
        "BASE_DOMAIN",
        "localhost",
        _str,
        "Domain proxyd's own services live under (auth.BASE_DOMAIN).",
    )
    proxy_request_timeout: float = setting(
        "PROXY_REQUEST_TIMEOUT",
        "120",
        _positive_float,
        "Seconds to wait for an upstream response (and between body chunks) before answering 504.",
    )
    proxy_connect_timeout: float = setting(
        "PROXY_CONNECT_TIMEOUT",
        "30",
        _positive_float,
        "Seconds to wait for an upstream TCP/TLS connection before answering 504.",
    )
    trusted_proxies: tuple = setting(
        "TRUSTED_PROXIES",
        "",
        _networks,
        "Comma-separated IPs/CIDRs of load balancers whose X-Forwarded-* headers are believed. "
        "From any other peer these headers are removed.",
    )
    oauth_issuer: str = setting(
        "OAUTH_ISSUER",
        "",
        _str,
        "Issuer of proxyd's tokens (no trailing slash). Default: https://auth.BASE_DOMAIN, or "
        "http://localhost when BASE_DOMAIN is localhost.",
    )
    # -- OAuth 2.1 authorization server (proxyd.oauth) --------------------------------------------
    github_client_id: str = setting(
        "GITHUB_CLIENT_ID", "", _str, "Client ID of the GitHub OAuth app used for login."
    )
    github_client_secret: str = setting(
        "GITHUB_CLIENT_SECRET", "", _str, "Client secret of that GitHub OAuth app (never logged)."
    )
    github_base_url: str = setting(
        "GITHUB_BASE_URL",
        "https://github.com",
        _str,
        "GitHub's web URL (login/oauth/authorize, access_token, device/code): GitHub Enterprise.",
    )
    github_api_url: str = setting(
        "GITHUB_API_URL",
        "https://api.github.com",
        _str,
        "GitHub's REST API URL (/user, /user/emails, /user/orgs).",
    )
    oauth_access_token_lifetime: int = setting(
        "OAUTH_ACCESS_TOKEN_LIFETIME", "1800", _positive_int, "Access token lifetime in seconds."
    )
    oauth_refresh_token_lifetime: int = setting(
        "OAUTH_REFRESH_TOKEN_LIFETIME",
        "31536000",
        _positive_int,
        "Refresh token lifetime in seconds (a refresh token is single-use; each use rotates it).",
    )
    oauth_session_timeout: int = setting(
        "OAUTH_SESSION_TIMEOUT",
        "300",
        _positive_int,
        "Seconds a login in progress may take (consent, GitHub round trip, device code), and "
        "the lifetime of the authorization server's browser login session.",
    )
    oauth_client_lifetime: int = setting(
        "OAUTH_CLIENT_LIFETIME",
        "7776000",
        _positive_int,
        "Seconds a dynamically registered client is kept.",
    )
    oauth_jwt_private_key_b64: str = setting(
        "OAUTH_JWT_PRIVATE_KEY_B64",
        "",
        _str,
        "Base64 of a PEM RSA private key to sign tokens with; empty: a key is generated once and "
        "kept in Redis.",
    )
    oauth_allowed_github_users: str = setting(
        "OAUTH_ALLOWED_GITHUB_USERS",
        "*",
        _str,
        "Comma-separated GitHub logins allowed to sign in (* = everyone); a proxy's "
        "auth_required_users overrides it.",
    )
    oauth_admin_users: str = setting(
        "OAUTH_ADMIN_USERS", "", _str, "GitHub logins granted scope admin (* = everyone)."
    )
    oauth_user_users: str = setting(
        "OAUTH_USER_USERS", "", _str, "GitHub logins granted scope user (* = everyone)."
    )
    oauth_mcp_users: str = setting(
        "OAUTH_MCP_USERS", "*", _str, "GitHub logins granted scope mcp (* = everyone)."
    )
    oauth_localhost_admin_users: str = setting(
        "OAUTH_LOCALHOST_ADMIN_USERS",
        "",
        _str,
        "Scope admin for the localhost proxy (management API); empty: OAUTH_ADMIN_USERS.",
    )
    oauth_localhost_user_users: str = setting(
        "OAUTH_LOCALHOST_USER_USERS",
        "",
        _str,
        "Scope user for the localhost proxy; empty: OAUTH_USER_USERS.",
    )
    oauth_localhost_mcp_users: str = setting(
        "OAUTH_LOCALHOST_MCP_USERS",
        "",
        _str,
        "Scope mcp for the localhost proxy; empty: OAUTH_MCP_USERS.",
    )
    oauth_cimd_allow_private: bool = setting(
        "OAUTH_CIMD_ALLOW_PRIVATE",
        "false",
        _bool,
        "Let Client ID Metadata Document URLs resolve to loopback/private addresses (local "
        "development only).",
    )
    oauth_device_poll_interval: int = setting(
        "OAUTH_DEVICE_POLL_INTERVAL",
        "5",
        _positive_int,
        "Seconds a device-flow client must wait between polls of the token endpoint.",
    )
    oauth_register_rate_limit: int = setting(
        "OAUTH_REGISTER_RATE_LIMIT",
        "20",
        _positive_int,
        "Dynamic client registrations allowed per client address per minute (then 429).",
    )
    oauth_token_failure_limit: int = setting(
        "OAUTH_TOKEN_FAILURE_LIMIT",
        "10",
        _positive_int,
        "Failed token-endpoint attempts allowed per client_id per minute (then 429).",
    )
    instance_id: str = setting(
        "PROXYD_INSTANCE_ID",
        "",
        _str,
        "Stable name of this proxyd process among those sharing one Redis (default: host:API_PORT).",
    )
    reconcile_interval: float = setting(
        "RECONCILE_INTERVAL",
        "30",
        _positive_float,
        "Seconds between full reloads of the configuration snapshot from Redis (repairs missed events).",
    )
    upstream_keepalive: int = setting(
        "UPSTREAM_KEEPALIVE",
        "64",
        _positive_int,
        "Idle keep-alive connections kept per proxy and upstream host:port for reuse.",
    )
    edge_header_timeout: float = setting(
        "EDGE_HEADER_TIMEOUT",
        "10",
        _positive_float,
        "Seconds a client has to send a whole request head once it started one (slowloris "
        "guard); then 408 and the connection closes.",
    )
    edge_body_timeout: float = setting(
        "EDGE_BODY_TIMEOUT",
        "30",
        _positive_float,
        "Seconds a request body may stall between two reads; then 408, the connection closes "
        "and the upstream request is cancelled.",
    )
    edge_keepalive_timeout: float = setting(
        "EDGE_KEEPALIVE_TIMEOUT",
        "15",
        _positive_float,
        "Seconds an idle keep-alive connection is kept open after a response.",
    )
    edge_max_requests_per_connection: int = setting(
        "EDGE_MAX_REQUESTS_PER_CONNECTION",
        "1000",
        _positive_int,
        "Requests served on one client connection before proxyd closes it.",
    )
    edge_max_request_line: int = setting(
        "EDGE_MAX_REQUEST_LINE",
        "8192",
        _positive_int,
        "Longest request target in bytes; a longer one gets 414.",
    )
    edge_max_header_bytes: int = setting(
        "EDGE_MAX_HEADER_BYTES",
        "32768",
        _positive_int,
        "Largest request head (request line and headers) in bytes; a larger one gets 431.",
    )
    edge_max_headers: int = setting(
        "EDGE_MAX_HEADERS",
        "100",
        _positive_int,
        "Most header fields in one request; more get 431.",
    )
    edge_allow_underscores_in_headers: bool = setting(
        "EDGE_ALLOW_UNDERSCORES_IN_HEADERS",
        "false",
        _bool,
        "Pass request headers whose names contain an underscore (dropped by default, like "
        "nginx's underscores_in_headers off). Identity and forwarding headers are stripped in "
        "every spelling either way.",
    )
    edge_pass_server_header: bool = setting(
        "EDGE_PASS_SERVER_HEADER",
        "false",
        _bool,
        "Pass the backend's Server response header to clients (dropped by default).",
    )
    management_remote_networks: tuple = setting(
        "MANAGEMENT_REMOTE_NETWORKS",
        "",
        _networks,
        "Networks (comma-separated CIDRs) allowed to reach the management app (GraphQL, web UI) "
        "through the public listeners, besides loopback and TRUSTED_PROXIES. Empty: nobody else.",
    )
    management_remote_hosts: str = setting(
        "MANAGEMENT_REMOTE_HOSTS",
        "",
        _str,
        "Hostnames (comma-separated) whose proxies to the management app answer every client "
        "(the management API still needs its own tokens). The OAuth endpoints and /mcp are "
        "always reachable on the issuer's host.",
    )
    event_stream_maxlen: int = setting(
        "EVENT_STREAM_MAXLEN",
        "10000",
        _positive_int,
        "Approximate number of events kept in the events:workflow stream.",
    )
    shutdown_timeout: float = setting(
        "SHUTDOWN_TIMEOUT",
        "5",
        _positive_float,
        "Seconds open requests get to finish after SIGINT/SIGTERM before they are cut.",
    )
    workers: int = setting(
        "WORKERS",
        "auto",
        _workers,
        "proxyd processes sharing the listening sockets and Redis (auto: one per CPU core). "
        "1 runs everything in a single process.",
    )
    request_logging: bool = setting(
        "REQUEST_LOGGING",
        "true",
        _bool,
        "Record every proxied request in Redis (indexes, stats, live stream) and count it in "
        "/metrics. false: no per-request instrumentation at all.",
    )
    log_retention_hours: float = setting(
        "LOG_RETENTION_HOURS",
        "24",
        _positive_float,
        "Hours request records, their indexes and hourly stats are kept in Redis (fractions "
        "allowed).",
    )
    log_slow_seconds: float = setting(
        "LOG_SLOW_SECONDS",
        "1",
        _positive_float,
        "Requests taking at least this many seconds go into the slow-request index.",
    )
    log_buffer_size: int = setting(
        "LOG_BUFFER_SIZE",
        "10000",
        _positive_int,
        "Request records held in memory while Redis is slow; beyond this they are dropped and "
        "counted (requests never wait).",
    )
    log_batch_interval: float = setting(
        "LOG_BATCH_INTERVAL",
        "0.1",
        _positive_float,
        "Seconds the request-log writer gathers records before writing them in one pipeline.",
    )
    log_stream_maxlen: int = setting(
        "LOG_STREAM_MAXLEN",
        "10000",
        _positive_int,
        "Approximate number of records kept in the live stream stream:requests.",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        "text",
        _log_format,
        "Application log lines on stderr: text (key=value fields) or json (one object a line).",
    )
    app_log_buffer: int = setting(
        "APP_LOG_BUFFER",
        "1000",
        _positive_int,
        "Recent application log lines kept in memory for the applicationLogs GraphQL query.",
    )
    # -- Docker services and ports (proxyd.docker, proxyd.ports) ---------------------------------
    docker_host: str = setting(
        "DOCKER_HOST",
        "unix:///var/run/docker.sock",
        _docker_host,
        "Docker daemon proxyd manages services on (unix:///path or tcp://host:port).",
    )
    docker_api_version: str = setting(
        "DOCKER_API_VERSION",
        "1.41",
        _docker_api_version,
        "Docker Engine API version to speak (1.41 is Docker 20.10), or auto.",
    )
    docker_labels: bool = setting(
        "DOCKER_LABELS",
        "false",
        _bool,
        "Create proxies for containers that carry proxyd.hostname labels, while they run.",
    )
    docker_stop_timeout: int = setting(
        "DOCKER_STOP_TIMEOUT",
        "10",
        _positive_int,
        "Seconds a service's container gets to stop after SIGTERM before it is killed.",
    )
    docker_default_memory: str = setting(
        "DOCKER_DEFAULT_MEMORY",
        "512m",
        _memory_size,
        "Memory limit of services created without one (empty: no limit).",
    )
    port_range_start: int = setting(
        "PORT_RANGE_START",
        "11000",
        _port,
        "First host port services may be given (explicitly or by allocation).",
    )
    port_range_end: int = setting(
        "PORT_RANGE_END", "65535", _port, "Last host port services may be given."
    )
    restricted_ports: tuple[int, ...] = setting(
        "RESTRICTED_PORTS",
        "22,25,53,80,443,3306,5432,6379,27017",
        _port_list,
        "Host ports never given to services (comma-separated).",
    )

    # -- Token checks, GraphQL limits, Redis faults (security model) -------------------------------
    oauth_clock_skew: float = setting(
        "OAUTH_CLOCK_SKEW",
        "30",
        _non_negative_float,
        "Seconds a token's nbf and iat may lie in the future (clocks of other machines).",
    )
    oauth_key_refresh_interval: float = setting(
        "OAUTH_KEY_REFRESH_INTERVAL",
        "10",
        _positive_float,
        "At most one reload of the signing keys from Redis per this many seconds when a token "
        "names an unknown kid (keys are also reloaded on every reconcile).",
    )
    oauth_jwt_retained_kids: tuple = setting(
        "OAUTH_JWT_RETAINED_KIDS",
        "",
        _names,
        "With OAUTH_JWT_PRIVATE_KEY_B64 set: comma-separated kids of older keys that /jwks "
        "still publishes and tokens may still be signed with (keys stay in Redis).",
    )
    graphql_timeout: float = setting(
        "GRAPHQL_TIMEOUT",
        "3",
        _positive_float,
        "Seconds a GraphQL operation may run (Redis waits included) before it is answered with "
        "TIMEOUT, or SERVICE_UNAVAILABLE when Redis is not answering.",
    )
    graphql_max_aliases: int = setting(
        "GRAPHQL_MAX_ALIASES", "50", _positive_int, "Aliased fields allowed in one operation."
    )
    graphql_max_fields: int = setting(
        "GRAPHQL_MAX_FIELDS",
        "1000",
        _positive_int,
        "Field selections allowed in one operation, fragments expanded.",
    )
    graphql_max_depth: int = setting(
        "GRAPHQL_MAX_DEPTH", "15", _positive_int, "Nesting depth allowed in one operation."
    )
    graphql_max_cost: int = setting(
        "GRAPHQL_MAX_COST",
        "5000",
        _positive_int,
        "Cost budget of one operation: each field's cost times the list sizes and hours it asks "
        "for (requestStats(hours: 744) costs 744).",
    )
    graphql_rate_limit: int = setting(
        "GRAPHQL_RATE_LIMIT",
        "600",
        _positive_int,
        "GraphQL operations per minute per token (and per process); bursts up to the same number.",
    )
    graphql_expensive_concurrency: int = setting(
        "GRAPHQL_EXPENSIVE_CONCURRENCY",
        "2",
        _positive_int,
        "Expensive resolvers (request statistics and log queries) running at once per process.",
    )

    @property
    def instance(self) -> str:
        """This process's name in consumer groups and health output."""
        return self.instance_id or f"{socket.gethostname()}:{self.api_port}"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def issuer(self) -> str:
        if self.oauth_issuer:
            return self.oauth_issuer.rstrip("/")
        if self.base_domain in ("", "localhost"):
            return "http://localhost"
        return f"https://auth.{self.base_domain}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """Parse KEY=VALUE lines (comments, blank lines, `export` and quotes allowed)."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return values
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path} line {number} is not KEY=VALUE.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def settings_fields() -> list[attrs.Attribute]:
    """The declared settings, in order (used to write .env.example and the docs)."""
    return [f for f in attrs.fields(Settings) if "env" in f.metadata]


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike | None = ".env"
) -> Settings:
    """Read every setting; raise SettingsError naming the first invalid one."""
    environ = os.environ if environ is None else environ
    file_values = read_env_file(env_file) if env_file else {}
    kwargs = {}
    for field in settings_fields():
        name = field.metadata["env"]
        raw = environ.get(name, file_values.get(name))
        if raw is not None:
            kwargs[field.name] = field.metadata["parse"](name, raw)
    return Settings(**kwargs)
