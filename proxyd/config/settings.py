"""The Settings class: each setting's name, type, default and description, and how it is read.

Values come from the process environment first, then from a `.env` file (KEY=VALUE lines), then
from the default. An invalid value raises SettingsError with one sentence naming the setting.
The fields are declared per capability (tls_settings, oauth_settings, edge_settings,
docker_settings); Settings combines them with the process-wide ones below.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

import attrs

import proxyd.config.parsers as p
from proxyd.config.docker_settings import DockerSettings
from proxyd.config.edge_settings import EdgeSettings, LogSettings
from proxyd.config.oauth_settings import ApiSettings, OAuthSettings
from proxyd.config.parsers import SettingsError
from proxyd.config.tls_settings import TlsSettings

__all__ = ["Settings", "SettingsError", "load_settings", "read_env_file", "settings_fields"]


@attrs.frozen(slots=False)
class Settings(TlsSettings, OAuthSettings, ApiSettings, EdgeSettings, LogSettings, DockerSettings):
    """Every proxyd setting. Build it with load_settings(); fields are already parsed and valid."""

    redis_url: str = p.setting(
        "REDIS_URL",
        "",
        p.redis_url,
        "Redis to keep configuration, events and logs in. Empty: proxyd starts and supervises its "
        "own redis-server (unix socket, append-only file under PROXYD_DATA_DIR).",
    )
    data_dir: str = p.setting(
        "PROXYD_DATA_DIR",
        "./.proxyd",
        p.text,
        "Directory for the embedded Redis data and other local state.",
    )
    server_host: str = p.setting(
        "SERVER_HOST", "0.0.0.0", p.host, "Address the public HTTP and HTTPS listeners bind to."
    )
    http_port: int = p.setting(
        "HTTP_PORT", "80", p.port, "Public HTTP listener port (0: any free port)."
    )
    https_port: int = p.setting(
        "HTTPS_PORT", "443", p.port, "Public HTTPS listener port (0: any free port)."
    )
    api_port: int = p.setting(
        "API_PORT",
        "9000",
        p.port,
        "Management API port (GraphQL at /graphql, /health). Always bound to 127.0.0.1 only.",
    )
    log_level: str = p.setting(
        "LOG_LEVEL", "INFO", p.log_level, "TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    base_domain: str = p.setting(
        "BASE_DOMAIN",
        "localhost",
        p.text,
        "Domain proxyd's own services live under (auth.BASE_DOMAIN).",
    )
    instance_id: str = p.setting(
        "PROXYD_INSTANCE_ID",
        "",
        p.text,
        "Stable name of this proxyd process among those sharing one Redis (default: host:API_PORT).",
    )
    reconcile_interval: float = p.setting(
        "RECONCILE_INTERVAL",
        "30",
        p.positive_float,
        "Seconds between full reloads of the configuration snapshot from Redis (repairs missed events).",
    )
    event_stream_maxlen: int = p.setting(
        "EVENT_STREAM_MAXLEN",
        "10000",
        p.positive_int,
        "Approximate number of events kept in the events:workflow stream.",
    )
    shutdown_timeout: float = p.setting(
        "SHUTDOWN_TIMEOUT",
        "5",
        p.positive_float,
        "Seconds open requests get to finish after SIGINT/SIGTERM before they are cut.",
    )
    workers: int = p.setting(
        "WORKERS",
        "auto",
        p.workers,
        "proxyd processes sharing the listening sockets and Redis (auto: one per CPU core). "
        "1 runs everything in a single process.",
    )
    log_format: str = p.setting(
        "LOG_FORMAT",
        "text",
        p.log_format,
        "Application log lines on stderr: text (key=value fields) or json (one object a line).",
    )
    app_log_buffer: int = p.setting(
        "APP_LOG_BUFFER",
        "1000",
        p.positive_int,
        "Recent application log lines kept in memory for the applicationLogs GraphQL query.",
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
