"""Dispatcher: the ASGI app behind the public listeners (HTTP and HTTPS). It picks the ProxyApp by
Host header (an in-memory dict lookup) and hands it the request; unknown hosts get a clear 404.

Ahead of that, in this order:
1. /.well-known/acme-challenge/ is answered for every hostname (HTTP-01), before routes and auth.
2. On HTTPS, a Host that the connection's certificate does not cover gets 421 Misdirected Request
   (the certificate chosen at the handshake is in proxyd.tls.sni.CONNECTION).
3. enable_http / enable_https per proxy, and the optional HTTP -> HTTPS redirect (308, keeps the
   method and body) for proxies with redirect_to_https.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxyd.edge.forward import send_error
from proxyd.edge.headers import request_host
from proxyd.tls.certificate import covers
from proxyd.tls.challenges import CHALLENGE_PREFIX
from proxyd.tls.sni import CONNECTION

if TYPE_CHECKING:
    from proxyd.edge.manager import ProxyManager


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
        host = request_host(scope["headers"])
        app = self.manager.proxies.get(host)
        if scope.get("scheme") in ("https", "wss"):
            connection = CONNECTION.get()
            if connection is not None and host and not covers(connection.served.names, host):
                await _refuse(
                    scope,
                    send,
                    421,
                    f"421 Misdirected Request: the certificate of this connection does not cover "
                    f"{host}; connect again with {host} as the TLS server name (SNI).",
                )
                return
            if app is not None and not app.proxy.enable_https:
                await _refuse(scope, send, 404, f"404 Not Found: {host} is not served over HTTPS.")
                return
        elif app is not None:
            proxy = app.proxy
            if proxy.redirect_to_https and proxy.enable_https:
                await self._redirect(scope, send, host)
                return
            if not proxy.enable_http:
                await _refuse(scope, send, 404, f"404 Not Found: {host} is served over HTTPS only.")
                return
        if app is not None:
            await app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host or "(no Host header)"
        await send_error(send, 404, f"404 Not Found: no proxy is configured for host {shown}.")

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


async def _refuse(scope: dict, send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send_error(send, status, message)


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
