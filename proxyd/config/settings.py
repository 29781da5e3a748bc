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


def _host(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SettingsError(f"{name} must be an address to listen on, such as 0.0.0.0.")
    return value


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
    https_port: int = setting("HTTPS_PORT", "443", _port, "Public HTTPS listener port.")
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
