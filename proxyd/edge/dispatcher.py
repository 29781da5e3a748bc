"""Dispatcher: the ASGI app behind the public listeners. It picks the ProxyApp by Host header
(an in-memory dict lookup) and hands it the request; unknown hosts get a clear 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxyd.edge.forward import send_error
from proxyd.edge.headers import request_host

if TYPE_CHECKING:
    from proxyd.edge.manager import ProxyManager


class Dispatcher:
    def __init__(self, manager: ProxyManager) -> None:
        self.manager = manager

    async def __call__(self, scope: dict, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        host = request_host(scope["headers"])
        app = self.manager.proxies.get(host)
        if app is not None:
            await app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host or "(no Host header)"
        await send_error(send, 404, f"404 Not Found: no proxy is configured for host {shown}.")


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
