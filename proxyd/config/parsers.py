"""How each setting's text becomes a value: the parsers (each raises SettingsError with one
sentence naming the setting) and `setting()`, which declares a field with its environment name,
default and description."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any

import attrs

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a value proxyd cannot use; the message names the setting."""


def port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise SettingsError(f"{name} must be a port number from 0 to 65535, not {raw!r}.")
    return value


def positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds, not {raw!r}.")
    return value


def positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(f"{name} must be a whole number above 0, not {raw!r}.")
    return value


def text(name: str, raw: str) -> str:
    return raw.strip()


def redis_url(name: str, raw: str) -> str:
    raw = raw.strip()
    if raw and not re.match(r"^(redis|rediss|unix)://", raw):
        raise SettingsError(
            f"{name} must start with redis://, rediss:// or unix://, not {raw!r} "
            "(leave it empty to run the embedded redis-server)."
        )
    return raw


def log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise SettingsError(f"{name} must be one of {', '.join(LOG_LEVELS)}, not {raw!r}.")
    return value


def networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
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


def boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}.")


def log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise SettingsError(f"{name} must be text or json, not {raw!r}.")
    return value


def workers(name: str, raw: str) -> int:
    if raw.strip().lower() in ("", "auto"):
        return os.cpu_count() or 1
    return positive_int(name, raw)


def host(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SettingsError(f"{name} must be an address to listen on, such as 0.0.0.0.")
    return value


def non_negative_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise SettingsError(f"{name} must be a number of seconds, 0 or more, not {raw!r}.")
    return value


def rsa_key_size(name: str, raw: str) -> int:
    if raw.strip() not in ("2048", "3072", "4096"):
        raise SettingsError(f"{name} must be 2048, 3072 or 4096, not {raw!r}.")
    return int(raw)


def key_type(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("rsa", "ecdsa"):
        raise SettingsError(f"{name} must be rsa or ecdsa, not {raw!r}.")
    return value


def challenge(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("http-01", "tls-alpn-01"):
        raise SettingsError(f"{name} must be http-01 or tls-alpn-01, not {raw!r}.")
    return value


def directory_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(f"{name} must be an https:// URL of an ACME directory, not {raw!r}.")
    return value


def docker_host(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^(unix://.+|tcp://[^/\s]+|https?://[^/\s]+)$", value):
        raise SettingsError(
            f"{name} must be unix:///path/to/docker.sock or tcp://host:port, not {raw!r}."
        )
    return value


def docker_api_version(name: str, raw: str) -> str:
    value = raw.strip().lstrip("v")
    if value != "auto" and not re.match(r"^1\.\d{1,2}$", value):
        raise SettingsError(f"{name} must look like 1.41 (or be auto), not {raw!r}.")
    return value


def memory_size(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value and not re.match(r"^\d+[bkmg]?$", value):
        raise SettingsError(f"{name} must look like 512m or 1g (or be empty), not {raw!r}.")
    return value


def port_list(name: str, raw: str) -> tuple[int, ...]:
    return tuple(sorted({port(name, p.strip()) for p in raw.split(",") if p.strip()}))


def names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(filter(None, (p.strip() for p in raw.split(","))))


def setting(env: str, default: str, parse: Callable[[str, str], Any], doc: str) -> Any:
    """Declare one setting: its environment name, default (as text), parser and description."""
    return attrs.field(
        default=parse(env, default),
        metadata={"env": env, "raw_default": default, "parse": parse, "doc": doc},
    )
