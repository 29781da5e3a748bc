"""Clients at the endpoints: looking one up (registered, or a Client ID Metadata Document),
authenticating it at /token, /revoke and /introspect, and deciding whether a redirect URI is
allowed for it (the rules are in proxyd.oauth.redirects; a built-in per-proxy client may only use
its proxy's own callback URL).
"""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import unquote

from quart import request

from proxyd.oauth import browser_login, cimd, redirects
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import digest


def redirect_ok(server: AuthServer, client: dict[str, Any], given: str) -> bool:
    """Exact match (RFC 8252 loopback ports aside); a built-in proxy client only its callback."""
    host = builtin_host(client["client_id"])
    if host is not None:
        proxy = server.proxy_of(host)
        if proxy is None:
            return False
        settings = server.settings
        listeners = [("https", settings.https_port)] if proxy.enable_https else []
        listeners += [("http", settings.http_port)] if proxy.enable_http else []
        allowed = redirects.proxy_callbacks(host, listeners, browser_login.CALLBACK_PATH)
        return redirects.malformed(given) is None and given in allowed
    return redirects.matches(client.get("redirect_uris") or [], given)


def builtin_host(client_id: str) -> str | None:
    """The proxy hostname of a built-in per-proxy client id (`proxyd-proxy:HOST`), else None."""
    if client_id.startswith(browser_login.CLIENT_PREFIX):
        return client_id[len(browser_login.CLIENT_PREFIX) :]
    return None


async def find_client(server: AuthServer, client_id: str) -> dict[str, Any] | None:
    if not client_id:
        return None
    if client_id.startswith(browser_login.CLIENT_PREFIX):
        host = client_id[len(browser_login.CLIENT_PREFIX) :]
        return browser_login.proxy_client(host, server.proxy_of(host))
    if cimd.is_cimd(client_id):
        return await cimd.fetch(client_id, server.settings.oauth_cimd_allow_private)
    return await server.store.get_client(client_id)


def basic_credentials() -> tuple[str, str] | None:
    """(client_id, secret) from an Authorization: Basic header; None without one."""
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
    basic = basic_credentials()
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
