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
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {"type": "http.response.start", "status": self.status, "headers": self.response_headers}
        )
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body})
