"""Dispatcher: the ASGI-shaped app behind the public listeners (the h1 server and hypercorn's h2
path call it alike). It picks the ProxyApp by the request's authority (the h1 server has already
put an absolute-form target's authority in Host), normalises the path for that proxy
(proxyd.edge.paths) and hands it the request; unknown hosts get a clear 404. HTTP/2 header
fields are validated here (RFC 9113 §8.2) before anything is translated to HTTP/1.1.

Ahead of that, in this order:
1. /.well-known/acme-challenge/ is answered for every hostname (HTTP-01), before routes and auth.
2. On HTTPS, a Host that the connection's certificate does not cover gets 421 Misdirected Request
   (the certificate chosen at the handshake is in proxyd.tls.sni.CONNECTION).
3. enable_http / enable_https per proxy, and the optional HTTP -> HTTPS redirect (308, keeps the
   method and body) for proxies with redirect_to_https.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from proxyd.edge.forward import send_error, send_refusal
from proxyd.edge.headers import request_host
from proxyd.edge.paths import PathError, normalise
from proxyd.tls.certificate import covers
from proxyd.tls.challenges import CHALLENGE_PREFIX
from proxyd.tls.sni import CONNECTION

if TYPE_CHECKING:
    from proxyd.edge.manager import ProxyManager

ALLOW = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_H2_NAME = re.compile(rb"^[!#$%&'*+.^_`|~0-9a-z-]+$")
_H2_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_H2_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class Dispatcher:
    def __init__(
        self, manager: ProxyManager, acme: Any = None, https_port: int | None = None
    ) -> None:
        self.manager = manager
        self.acme = acme  # answers HTTP-01 (proxyd.tls.challenges.Http01Responder)
        self.https_port = https_port if https_port is not None else manager.settings.https_port

    async def __call__(self, scope: dict, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if self.acme is not None and scope["path"].startswith(CHALLENGE_PREFIX):
            await self.acme.answer(scope, send)
            return
        if scope.get("http_version") == "2":
            if not _valid_h2_headers(scope["headers"]):
                await send_refusal(
                    scope, send, 400, "400 Bad Request: a header name or value is invalid."
                )
                return
            # The method goes into the upstream request line: only a token (RFC 9110 §9.1).
            if kind == "http" and not _METHOD.match(scope.get("method", "")):
                await send_refusal(scope, send, 400, "400 Bad Request: the method is not a token.")
                return
        host = request_host(scope["headers"])
        scope["proxyd.host"] = host
        app = self.manager.proxies.get(host)
        if app is not None and not _normalised(scope, app.proxy.auth_enabled):
            await _refuse_path(scope, send, app.proxy.auth_enabled)
            return
        if scope.get("scheme") in ("https", "wss"):
            connection = CONNECTION.get()
            if connection is not None and host and not covers(connection.served.names, host):
                await send_refusal(
                    scope,
                    send,
                    421,
                    f"421 Misdirected Request: the certificate of this connection does not cover "
                    f"{host}; connect again with {host} as the TLS server name (SNI).",
                )
                return
            if app is not None and not app.proxy.enable_https:
                await send_refusal(
                    scope, send, 404, f"404 Not Found: {host} is not served over HTTPS."
                )
                return
        elif app is not None:
            proxy = app.proxy
            if proxy.redirect_to_https and proxy.enable_https:
                await self._redirect(scope, send, host)
                return
            if not proxy.enable_http:
                await send_refusal(
                    scope, send, 404, f"404 Not Found: {host} is served over HTTPS only."
                )
                return
        if app is not None:
            await app(scope, receive, send)
            return
        shown = host or "(no Host header)"
        await send_refusal(
            scope, send, 404, f"404 Not Found: no proxy is configured for host {shown}."
        )

    async def _redirect(self, scope: dict, send, host: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        port = "" if self.https_port in (443, 0) else f":{self.https_port}"
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}{port}{path}" + (f"?{query}" if query else "")
        await send_error(
            send,
            308,
            f"308 Permanent Redirect: {location}",
            [(b"location", location.encode("latin-1"))],
        )


def _normalised(scope: dict, strict: bool) -> bool:
    """Put the normalised path in the scope (auth, routes and the upstream all use it); False
    when the path must be refused (then _refuse_path answers)."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    if raw[:1] != b"/":
        return False
    try:
        raw, path = normalise(raw, strict)
    except PathError:
        return False
    scope["raw_path"] = raw
    scope["path"] = path
    return True


async def _refuse_path(scope: dict, send, strict: bool) -> None:
    """The answer for a path _normalised did not accept."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    if raw == b"*":
        if scope.get("method") == "OPTIONS":
            await send_error(send, 200, "OK", [(b"allow", ALLOW)])
        else:
            await send_refusal(scope, send, 400, "400 Bad Request: * is a target for OPTIONS only.")
        return
    if raw[:1] != b"/":
        await send_refusal(scope, send, 400, "400 Bad Request: the path must start with /.")
        return
    try:
        normalise(raw, strict)
    except PathError as exc:
        await send_refusal(scope, send, 400, f"400 Bad Request: {exc}")


def _valid_h2_headers(headers) -> bool:
    """RFC 9113 §8.2: lower-case token names, no connection-specific fields, no CR/LF/NUL."""
    for name, value in headers:
        if not _H2_NAME.match(name) or _H2_BAD_VALUE.search(value):
            return False
        if name in _H2_CONNECTION_SPECIFIC:
            return False
        if name == b"te" and value.strip().lower() != b"trailers":
            return False
    return True


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
