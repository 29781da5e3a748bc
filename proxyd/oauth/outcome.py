"""Outcome: what the protection at the proxy decided for one request (proxyd.oauth.protect and
the browser sign-in of redirect mode both answer with it; the edge acts on it)."""

from __future__ import annotations

from typing import Any

import attrs

from proxyd.oauth.tokens import Identity


@attrs.frozen
class Outcome:
    """Either `status` != 0 (answer with status/headers/body) or go on with `headers` added
    and `request_headers` as the request's headers."""

    status: int = 0
    response_headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    headers: dict[str, str] = attrs.Factory(dict)
    request_headers: list[tuple[bytes, bytes]] | None = None
    identity: Identity | None = None

    async def send(self, scope: dict, send: Any) -> None:
        kind = "http.response"
        if scope["type"] == "websocket":
            # A server with the ASGI denial extension (HTTP/2 extended CONNECT through
            # hypercorn) answers the handshake with this exact status, headers and body: a
            # 401 keeps its WWW-Authenticate challenge. Otherwise all it can send is a 403.
            if "websocket.http.response" not in (scope.get("extensions") or {}):
                await send({"type": "websocket.close", "code": 1008})
                return
            kind = "websocket.http.response"
        await send(
            {"type": f"{kind}.start", "status": self.status, "headers": self.response_headers}
        )
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": f"{kind}.body", "body": body})
