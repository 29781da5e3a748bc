"""Keeping secrets out of logged values: token-like query parameters, and header values such as
Authorization and cookies, are replaced by a fixed mask before anything is stored or printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Query parameter names whose values are credentials (compared lower-cased, - and _ ignored).
SECRET_PARAMS = frozenset(
    {
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "code",
        "state",
        "codeverifier",
        "devicecode",
        "usercode",
        "password",
        "passwd",
        "pwd",
        "secret",
        "clientsecret",
        "apikey",
        "key",
        "auth",
        "authorization",
        "sig",
        "signature",
        "session",
        "sessionid",
        "jwt",
        "bearer",
        "credential",
        "credentials",
        "privatekey",
    }
)
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SECRET_WORDS = re.compile(r"token|secret|passw|authoriz|cookie|api[-_]?key|credential|signature")


def is_secret_name(name: str) -> bool:
    """True for parameter or field names that carry credentials."""
    lowered = name.lower()
    squashed = lowered.replace("-", "").replace("_", "")
    return squashed in SECRET_PARAMS or bool(_SECRET_WORDS.search(lowered))


def mask_query(query: str) -> str:
    """The query string with the values of token-like parameters replaced by ***."""
    if not query:
        return ""
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}={MASK}" if sep and is_secret_name(_unquote(name)) else part)
    return "&".join(parts)


def mask_url(url: str) -> str:
    """A URL (e.g. a Referer) with user:password and token-like query values masked."""
    if not url:
        return ""
    url = re.sub(r"//[^/@?#]*@", f"//{MASK}@", url, count=1)
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = rest.partition("#")
    return f"{base}?{mask_query(query)}{hash_sep}{fragment}"


def mask_header(name: str, value: str) -> str:
    """A header value fit for logs: credentials-bearing headers become ***."""
    return MASK if name.lower() in SECRET_HEADERS else value


def mask_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Structured log fields with credential-named values masked."""
    return {
        k: (MASK if is_secret_name(k) and v not in (None, "") else v) for k, v in fields.items()
    }


def _unquote(name: str) -> str:
    if "%" not in name and "+" not in name:
        return name
    from urllib.parse import unquote_plus

    return unquote_plus(name)
