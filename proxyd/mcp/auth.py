"""Authorization for /mcp, per the MCP authorization specification.

/mcp is an OAuth protected resource of its own. Its resource URL is the URL the client used:
scheme + Host + "/mcp", for the hosts the management app is meant to be reached on (loopback
names, i.e. API_PORT and the `localhost` proxy, and the issuer's host); any other Host is
answered with the issuer's resource URL, so a token minted for some other resource can never be
made to match by sending its Host. Metadata (RFC 9728) is served at
/.well-known/oauth-protected-resource/mcp (path-suffixed) and /.well-known/oauth-protected-resource
(root). A request without a valid token gets 401 with
`WWW-Authenticate: Bearer resource_metadata="...", scope="user admin"`.

A token is accepted when it is signed by proxyd's issuer, unexpired, not revoked, and one of its
audiences equals the resource URL exactly (on a loopback name, the same URL under another loopback
name, i.e. the same listener, counts too) (a management-API token for `proxyd-api` alone, or a
token for a proxied MCP server, is refused). The token's scopes are checked per tool (see
proxyd.mcp.server): `user` for read-only tools, `admin` for mutating ones. The audience check
is done here with TokenVerifier(audience=None) plus an exact comparison, because the
verifier's own audience check knows only the management audience.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import attrs

from proxyd.config import Settings
from proxyd.oauth.tokens import Identity, InvalidToken, TokenVerifier

IDENTITY_KEY = "proxyd.identity"  # where the ASGI scope carries the caller to the tools

MCP_PATH = "/mcp"
PRM_PATH = "/.well-known/oauth-protected-resource"
SCOPES = ("user", "admin")
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@attrs.frozen
class Denied:
    status: int
    error: str
    description: str


def _host_header(scope: dict) -> str | None:
    hosts = [v for n, v in scope.get("headers", ()) if n == b"host"]
    if len(hosts) != 1:
        return None
    return hosts[0].decode("latin-1").strip().lower()


def _with_listener_port(scope: dict, host: str, scheme: str) -> str:
    """Through a proxy whose target is internal://api (the `localhost` proxy, the issuer's
    host), the edge hands the request over in-process with the Host's port removed; the port
    the client connected to is the listener's (scope["server"])."""
    if scope.get("proxyd.client_ip") is None or host.endswith("]") or ":" in host:
        return host
    server = scope.get("server") or ()
    port = server[1] if len(server) > 1 else None
    if isinstance(port, int) and port != (443 if scheme == "https" else 80):
        return f"{host}:{port}"
    return host


class McpAuth:
    def __init__(self, settings: Settings, verifier: TokenVerifier, is_revoked: Any) -> None:
        self.settings = settings
        self.verifier = verifier
        self.is_revoked = is_revoked
        self.issuer = settings.issuer.rstrip("/")
        issuer = urlsplit(self.issuer)
        self.issuer_netloc = issuer.netloc.lower()
        self.issuer_resource = f"{issuer.scheme}://{issuer.netloc}{MCP_PATH}"

    def origin(self, scope: dict) -> str | None:
        """scheme://host[:port] as the client used it, when it is one of ours."""
        host = _host_header(scope)
        if not host or any(c in host for c in "/\\@?#% "):
            return None
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = _with_listener_port(scope, host, scheme)
        if host == self.issuer_netloc:
            return f"{scheme}://{host}"
        try:
            name = urlsplit(f"//{host}").hostname
            _ = urlsplit(f"//{host}").port
        except ValueError:
            return None
        if name in LOOPBACK:
            return f"{scheme}://{host}"
        return None

    def resource(self, scope: dict) -> str:
        origin = self.origin(scope)
        return origin + MCP_PATH if origin else self.issuer_resource

    def accepted(self, scope: dict) -> set[str]:
        """The audiences that name this endpoint: the resource URL, and on a loopback name the
        same scheme and port under the other loopback names (one listener, one endpoint)."""
        resource = self.resource(scope)
        parts = urlsplit(resource)
        if parts.hostname not in LOOPBACK:
            return {resource}
        port = f":{parts.port}" if parts.port else ""
        names = ("localhost", "127.0.0.1", "[::1]")
        return {f"{parts.scheme}://{name}{port}{MCP_PATH}" for name in names}

    def metadata_url(self, scope: dict) -> str:
        origin = self.origin(scope)
        base = origin or self.issuer_resource[: -len(MCP_PATH)]
        return base + PRM_PATH + MCP_PATH

    def metadata(self, scope: dict) -> dict[str, Any]:
        return {
            "resource": self.resource(scope),
            "authorization_servers": [self.issuer],
            "jwks_uri": self.issuer + "/jwks",
            "scopes_supported": list(SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": "proxyd management (MCP)",
            "mcp_protocol_versions": ["2025-06-18", "2025-11-25", "2026-07-28"],
        }

    def challenge(self, scope: dict, denied: Denied | None) -> tuple[int, list, bytes]:
        parts = [f'resource_metadata="{self.metadata_url(scope)}"', f'scope="{" ".join(SCOPES)}"']
        status, body = 401, {"error": "unauthorized", "error_description": "send a bearer token."}
        if denied is not None:
            status = denied.status
            parts += [f'error="{denied.error}"', f'error_description="{denied.description}"']
            body = {"error": denied.error, "error_description": denied.description}
        data = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-store"),
            (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode("latin-1", "replace")),
        ]
        return status, headers, data

    async def authenticate(self, scope: dict) -> Identity | Denied | None:
        """The caller's identity; None when no token was sent; Denied when it is refused."""
        values = [v for n, v in scope.get("headers", ()) if n == b"authorization"]
        if not values:
            return None
        if len(values) > 1:
            return Denied(400, "invalid_request", "send exactly one Authorization header")
        kind, _, token = values[0].decode("latin-1").partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            return Denied(401, "invalid_request", "the Authorization header must be Bearer")
        try:
            identity = await self.verifier.verify(token, audience=None)
        except InvalidToken as exc:
            return Denied(401, "invalid_token", str(exc).rstrip("."))
        if self.is_revoked(identity.claims.get("jti")):
            return Denied(401, "invalid_token", "the token was revoked")
        aud = identity.claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not self.accepted(scope) & {a for a in audiences if isinstance(a, str)}:
            return Denied(401, "invalid_token", "the token is not meant for this MCP endpoint")
        if not (identity.has("user") or identity.has("admin")):
            return Denied(403, "insufficient_scope", "the token needs scope user or admin")
        return identity
