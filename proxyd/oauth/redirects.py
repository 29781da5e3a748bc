"""Redirect URI rules, one implementation for dynamic registration, Client ID Metadata Documents,
/authorize and the built-in per-proxy clients (RFC 9700 section 4.1.3, RFC 8252 sections 7.1-7.3).

A redirect URI is refused outright when it has whitespace or control characters, a backslash, a
fragment (`#`), userinfo (`@` in the authority), a `%` that is not followed by two hex digits, or a
percent-encoded delimiter anywhere (`%2F`, `%40`, `%3A`, `%5C`, `%2E`, `%25`, ...): browsers and
URL parsers disagree on those, which is how codes end up on another host. It must be one of:

- `https://host[:port]/path[?query]`;
- `http://` with the host exactly `127.0.0.1`, `[::1]` or `localhost` (loopback, RFC 8252 7.3);
- a private-use scheme containing a dot, such as `com.example.app:/callback` (RFC 8252 7.1).

Matching at /authorize is exact string comparison with what was registered. The one exception is
loopback: `http` on the same loopback host, with the same path and query, may use any port.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from proxyd.oauth.server import OAuthFailure

MAX_LENGTH = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")
# Percent-encodings that decode to a delimiter, a dot, a percent sign or a control character.
_ENCODED = re.compile(r"%(?:[01][0-9a-f]|7f|2[0-9a-f]|3[a-f]|40|5[b-f]|60|7[b-e])", re.IGNORECASE)
_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_HOST = re.compile(
    r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$"
)
_LOOPBACK = re.compile(r"^(127\.0\.0\.1|\[::1\]|localhost)(?::([0-9]{1,5}))?$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_FORBIDDEN_SCHEMES = ("javascript", "data", "file", "vbscript", "blob", "about", "filesystem")


def _refuse(uri: object, why: str) -> OAuthFailure:
    shown = repr(uri)[:120]
    return OAuthFailure("invalid_redirect_uri", f"redirect URI {shown} {why}.")


def problem(uri: object) -> str | None:
    """Why a client may not register or use this redirect URI (None: it is acceptable)."""
    why = malformed(uri)
    if why is not None:
        return why
    assert isinstance(uri, str)
    parts = urlsplit(uri)
    scheme = parts.scheme
    if scheme == "https":
        return None if parts.netloc else "needs a host"
    if scheme == "http":
        if _LOOPBACK.match(parts.netloc):
            return None
        return "must be https unless its host is exactly 127.0.0.1, [::1] or localhost"
    if "." in scheme and scheme not in _FORBIDDEN_SCHEMES:
        return None
    return (
        "must be https, http on a loopback host, or a private-use scheme such as "
        "com.example.app:/cb"
    )


def malformed(uri: object) -> str | None:
    """Why this URI is unsafe to redirect to whatever its scheme (None: well formed)."""
    if not isinstance(uri, str) or not uri:
        return "must be a non-empty string"
    if len(uri) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or ord(c) > 0x7E for c in uri):
        return "contains whitespace, control or non-ASCII characters"
    if "\\" in uri:
        return "contains a backslash"
    if "#" in uri:
        return "must not have a fragment"
    if _BAD_PERCENT.search(uri) or _ENCODED.search(uri):
        return "contains a percent-encoded delimiter"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "cannot be parsed"
    scheme = parts.scheme
    if not _SCHEME.match(scheme) or not uri.startswith(scheme + ":"):
        return "has no valid scheme"
    if "@" in parts.netloc:
        return "must not contain userinfo"
    if parts.netloc and not _HOST.match(parts.netloc):
        return "has an invalid host"
    if port == 0:
        return "has an invalid port"
    return None


def check(uri: object) -> str:
    """The URI itself when it is acceptable; an invalid_redirect_uri OAuthFailure otherwise."""
    why = problem(uri)
    if why is not None:
        raise _refuse(uri, why)
    assert isinstance(uri, str)
    return uri


def check_all(uris: object) -> list[str]:
    if not isinstance(uris, list):
        raise OAuthFailure("invalid_redirect_uri", "redirect_uris must be a list of strings.")
    if len(uris) > 20:
        raise OAuthFailure("invalid_redirect_uri", "at most 20 redirect_uris are allowed.")
    return [check(u) for u in uris]


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of an http loopback URI, the port left out; None otherwise."""
    parts = urlsplit(uri)
    match = _LOOPBACK.match(parts.netloc)
    if parts.scheme != "http" or match is None:
        return None
    return match.group(1), parts.path, parts.query


def matches(registered: list[str], given: str) -> bool:
    """Whether `given` may be used by a client that registered `registered`."""
    if problem(given) is not None:
        return False
    if given in registered:
        return True
    loop = _loopback_parts(given)
    return loop is not None and any(
        problem(r) is None and _loopback_parts(r) == loop for r in registered
    )


def proxy_callbacks(hostname: str, listeners: list[tuple[str, int]], path: str) -> list[str]:
    """The exact callback URLs of a redirect-mode proxy's built-in client: its hostname, for each
    (scheme, listener port) it serves, on the scheme's default port or on that listener port."""
    out = []
    for scheme, port in listeners:
        out.append(f"{scheme}://{hostname}{path}")
        if port not in (0, 80 if scheme == "http" else 443):
            out.append(f"{scheme}://{hostname}:{port}{path}")
    return out
