"""Clients at the endpoints: looking one up (registered, or a Client ID Metadata Document),
authenticating it at /token, /revoke and /introspect, and matching redirect URIs exactly (with
RFC 8252's loopback exception: http on localhost, 127.0.0.1 or [::1] may use any port).
"""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import unquote, urlsplit

from quart import request

from proxyd.oauth import browser_login, cimd
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import digest

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _loopback(uri: str) -> tuple[str, str, str] | None:
    parts = urlsplit(uri)
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.scheme == "http" and host.lower() in LOOPBACK_HOSTS:
        return host.lower(), parts.path, parts.query
    return None


def redirect_allowed(registered: list[str], given: str) -> bool:
    if given in registered:
        return True
    loop = _loopback(given)
    return loop is not None and any(_loopback(r) == loop for r in registered)


def redirect_ok(client: dict[str, Any], given: str) -> bool:
    """Exact match, RFC 8252 loopback ports, or a redirect-mode proxy's own callback."""
    if redirect_allowed(client.get("redirect_uris") or [], given):
        return True
    host = client.get("proxy_callback_host")
    parts = urlsplit(given)
    return bool(
        host
        and parts.scheme in ("http", "https")
        and parts.hostname == host
        and parts.path == browser_login.CALLBACK_PATH
        and not parts.query
        and not parts.fragment
    )


async def find_client(server: AuthServer, client_id: str) -> dict[str, Any] | None:
    if not client_id:
        return None
    if client_id.startswith(browser_login.CLIENT_PREFIX):
        host = client_id[len(browser_login.CLIENT_PREFIX) :]
        return browser_login.proxy_client(host, server.proxy_of(host))
    if cimd.is_cimd(client_id):
        return await cimd.fetch(client_id, server.settings.oauth_cimd_allow_private)
    return await server.store.get_client(client_id)


def _basic() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:
        raise OAuthFailure("invalid_client", "malformed Basic credentials.", 401) from None
    return unquote(user), unquote(password)


async def authenticate(
    server: AuthServer, form: dict[str, str], allow_public: bool = True
) -> dict[str, Any]:
    """The calling client, authenticated as its registration says (401 invalid_client if not)."""
    basic = _basic()
    client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
    client = await find_client(server, client_id)
    if client is None:
        raise OAuthFailure("invalid_client", "unknown client.", 401)
    method = client.get("token_endpoint_auth_method", "none")
    if method == "none":
        if not allow_public:
            raise OAuthFailure("invalid_client", "this endpoint needs a confidential client.", 401)
        return client
    stored = client.get("client_secret_hash", "")
    if not secret or not hmac.compare_digest(digest(secret), stored):
        raise OAuthFailure("invalid_client", "client authentication failed.", 401)
    return client
