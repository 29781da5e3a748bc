"""Configuration models (Proxy, Route, ExternalService): attrs classes, validation and JSON form.

Stored JSON carries `schema_version`; unknown keys from newer versions are ignored on read so
several proxyd versions can share one Redis during an upgrade.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

SCHEMA_VERSION = 1

AUTH_MODES = ("forward", "redirect", "passthrough")
ROUTE_MODES = ("all", "selective", "none")
TARGET_TYPES = ("port", "service", "hostname", "url")
ROUTE_SCOPES = ("global", "proxy")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class ValidationError(ValueError):
    """Input that cannot be stored; the message says which field and why."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def normalize_hostname(value: str) -> str:
    """Lower-case a hostname and check it is a valid DNS name (or `localhost`)."""
    host = (value or "").strip().lower().rstrip(".")
    if not host or len(host) > 253 or not all(_LABEL.match(p) for p in host.split(".")):
        raise ValidationError(
            f"hostname {value!r} is not a valid DNS name (letters, digits, hyphens and dots)."
        )
    return host


def check_url(field: str, value: str) -> str:
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{field} must be an http:// or https:// URL with a host, not {value!r}."
        )
    try:
        _ = parts.port
    except ValueError:
        raise ValidationError(f"{field} has an invalid port: {value!r}.") from None
    return value


def _check_headers(field: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError(f"{field} must be an object of header names to string values.")
    for name, val in value.items():
        if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", name) or "\n" in val or "\r" in val:
            raise ValidationError(f"{field} has an invalid header {name!r}.")


def _choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValidationError(f"{field} must be one of {', '.join(choices)}, not {value!r}.")


@attrs.define
class Proxy:
    """A hostname served by proxyd and where its traffic goes (the reference's Proxy Target)."""

    hostname: str
    target_url: str
    cert_name: str | None = None
    cert_email: str | None = None  # ACME account email for its automatic certificate
    owner_token_hash: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    enabled: bool = True
    enable_http: bool = True
    enable_https: bool = True
    redirect_to_https: bool = False
    preserve_host_header: bool = True
    custom_headers: dict[str, str] | None = None
    custom_response_headers: dict[str, str] | None = None
    auth_enabled: bool = False
    auth_proxy: str | None = None
    auth_mode: str = "forward"
    auth_required_users: list[str] | None = None
    auth_required_emails: list[str] | None = None
    auth_required_groups: list[str] | None = None
    auth_allowed_scopes: list[str] | None = None
    auth_allowed_audiences: list[str] | None = None
    auth_pass_headers: bool = True
    auth_cookie_name: str = "unified_auth_token"
    auth_header_prefix: str = "X-Auth-"
    auth_excluded_paths: list[str] | None = None
    oauth_admin_users: list[str] | None = None  # who gets scope admin here (None: global)
    oauth_user_users: list[str] | None = None
    oauth_mcp_users: list[str] | None = None
    route_mode: str = "all"
    enabled_routes: list[str] = attrs.Factory(list)
    disabled_routes: list[str] = attrs.Factory(list)
    resource_endpoint: str | None = None
    resource_scopes: list[str] | None = None
    resource_stateful: bool = False
    resource_versions: list[str] | None = None
    resource_server_info: dict[str, Any] | None = None
    resource_override_backend: bool = False
    resource_bearer_methods: list[str] | None = None
    resource_documentation_suffix: str | None = None
    resource_custom_metadata: dict[str, Any] | None = None

    def validate(self) -> None:
        self.hostname = normalize_hostname(self.hostname)
        if self.target_url.startswith("service://"):  # a Docker or external service by name
            if not _NAME.match(self.target_url[len("service://") :]):
                raise ValidationError(f"targetUrl {self.target_url!r} names no valid service.")
        elif not self.target_url.startswith("internal://"):
            self.target_url = check_url("targetUrl", self.target_url)
        _choice("authMode", self.auth_mode, AUTH_MODES)
        _choice("routeMode", self.route_mode, ROUTE_MODES)
        _check_headers("customHeaders", self.custom_headers)
        _check_headers("customResponseHeaders", self.custom_response_headers)
        if not self.auth_header_prefix or not re.match(r"^[A-Za-z0-9-]+$", self.auth_header_prefix):
            raise ValidationError("authHeaderPrefix must be letters, digits and hyphens.")


@attrs.define
class Route:
    """A path rule: requests whose path (and method) match go to the route's target."""

    route_id: str
    path_pattern: str
    target_type: str
    target_value: str
    priority: int = 50
    is_regex: bool = False
    methods: list[str] | None = None
    enabled: bool = True
    scope: str = "global"
    proxy_hostnames: list[str] = attrs.Factory(list)
    description: str | None = None
    created_by: str | None = None
    created_at: str | None = None

    def validate(self) -> None:
        if not _NAME.match(self.route_id or ""):
            raise ValidationError(
                f"routeId {self.route_id!r} must be 1-63 lower-case letters, digits, '.', '_' or '-'."
            )
        _choice("targetType", self.target_type, TARGET_TYPES)
        _choice("scope", self.scope, ROUTE_SCOPES)
        if not -1000 <= self.priority <= 1000:
            raise ValidationError("priority must be between -1000 and 1000.")
        if self.is_regex:
            try:
                re.compile(self.path_pattern)
            except re.error as exc:
                raise ValidationError(
                    f"pathPattern is not a valid regular expression: {exc}."
                ) from None
        elif not self.path_pattern.startswith("/"):
            raise ValidationError("pathPattern must start with '/' (or set isRegex).")
        if self.methods is not None:
            self.methods = [m.upper() for m in self.methods]
            bad = [m for m in self.methods if m not in HTTP_METHODS]
            if bad:
                raise ValidationError(f"methods has unknown HTTP methods: {', '.join(bad)}.")
        self.proxy_hostnames = [normalize_hostname(h) for h in self.proxy_hostnames]
        if self.scope == "proxy" and not self.proxy_hostnames:
            raise ValidationError(
                "a route with scope 'proxy' needs at least one proxyHostnames entry."
            )
        value = (self.target_value or "").strip()
        if self.target_type == "port":
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                raise ValidationError(
                    f"targetValue for a port target must be 1-65535, not {value!r}."
                )
        elif self.target_type == "url":
            value = check_url("targetValue", value)
        elif self.target_type == "hostname":
            value = normalize_hostname(value)
        elif not _NAME.match(value):
            raise ValidationError(f"targetValue {value!r} is not a valid service name.")
        self.target_value = value


@attrs.define
class ExternalService:
    """A named upstream URL that routes can target with target_type=service."""

    service_name: str
    target_url: str
    service_type: str = "external"
    description: str | None = None
    routing_enabled: bool = True
    created_by: str | None = None
    created_at: str | None = None
    owner_token_hash: str | None = None

    def validate(self) -> None:
        if not _NAME.match(self.service_name or ""):
            raise ValidationError(
                f"serviceName {self.service_name!r} must be 1-63 lower-case letters, digits, "
                "'.', '_' or '-'."
            )
        self.target_url = check_url("targetUrl", self.target_url)


Model = TypeVar("Model", Proxy, Route, ExternalService)


def to_json(obj: Proxy | Route | ExternalService) -> str:
    data = attrs.asdict(obj)
    data["schema_version"] = SCHEMA_VERSION
    return json.dumps(data, separators=(",", ":"))


def from_json(cls: type[Model], raw: str | bytes) -> Model:
    data = json.loads(raw)
    names = {f.name for f in attrs.fields(cls)}
    # The reference stored the hostname of a proxy as proxy_hostname in places.
    if cls is Proxy and "hostname" not in data and "proxy_hostname" in data:
        data["hostname"] = data["proxy_hostname"]
    return cls(**{k: v for k, v in data.items() if k in names})


def apply_changes(obj: Model, changes: dict[str, Any]) -> Model:
    """A copy of obj with the given fields replaced (unknown fields are a ValidationError)."""
    names = {f.name for f in attrs.fields(type(obj))}
    unknown = set(changes) - names
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}.")
    fields = attrs.fields_dict(type(obj))
    for name, value in changes.items():
        default = fields[name].default
        if value is None and default is not None and not isinstance(default, attrs.Factory):
            raise ValidationError(f"{name} cannot be null.")
    changes = {
        k: ([] if v is None and isinstance(fields[k].default, attrs.Factory) else v)
        for k, v in changes.items()
    }
    return attrs.evolve(obj, **changes)
