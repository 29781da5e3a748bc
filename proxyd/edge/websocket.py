"""WebSocket proxying: accept the client's socket with the subprotocol the upstream chose, then pump
text and binary messages both ways; a close on either side closes the other with the same code.
"""

from __future__ import annotations

import logging
import ssl

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from proxyd.edge.forward import send_refusal
from proxyd.edge.headers import Headers
from proxyd.edge.upstream import shared_ssl_context

log = logging.getLogger("proxyd.edge.websocket")

MAX_MESSAGE = 16 * 1024 * 1024
SKIP = frozenset(
    {
        b"host",
        b"connection",
        b"upgrade",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"content-length",
    }
)


def _subprotocols(headers: Headers) -> list[str]:
    out: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            out += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    return out


async def forward_websocket(
    scope: dict, receive, send, *, url: str, headers: Headers, connect_timeout: float, label: str
) -> None:
    """Relay a websocket scope to the ws:// or wss:// url."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    extra = [(n, v) for n, v in headers if n not in SKIP]
    context: ssl.SSLContext | None = shared_ssl_context() if url.startswith("wss://") else None
    accepted = False
    try:
        async with open_websocket_url(
            url,
            context,
            subprotocols=_subprotocols(scope["headers"]),
            extra_headers=extra,
            max_message_size=MAX_MESSAGE,
            connect_timeout=connect_timeout,
            disconnect_timeout=5,
        ) as upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            accepted = True
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_client_to_upstream, receive, upstream, nursery.cancel_scope)
                nursery.start_soon(_upstream_to_client, upstream, send, nursery.cancel_scope)
    except (HandshakeError, OSError, trio.TooSlowError) as exc:
        log.info("websocket upstream for %s failed: %s", label, type(exc).__name__)
        if accepted:
            await send({"type": "websocket.close", "code": 1011, "reason": "upstream unavailable"})
        else:
            await send_refusal(
                scope, send, 502, f"502 Bad Gateway: the upstream for {label} could not be reached."
            )


async def _client_to_upstream(receive, upstream, cancel_scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            code = message.get("code", 1000)
            if code in (1005, 1006):
                code = 1000
            try:
                await upstream.aclose(code=code, reason=message.get("reason") or "")
            finally:
                cancel_scope.cancel()
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        try:
            await upstream.send_message(data)
        except ConnectionClosed:
            return  # the other pump reports the close to the client


async def _upstream_to_client(upstream, send, cancel_scope: trio.CancelScope) -> None:
    try:
        while True:
            data = await upstream.get_message()
            key = "text" if isinstance(data, str) else "bytes"
            await send({"type": "websocket.send", key: data})
    except ConnectionClosed as closed:
        code = closed.reason.code if closed.reason else 1000
        if code in (1005, 1006):
            code = 1000
        await send(
            {
                "type": "websocket.close",
                "code": code,
                "reason": (closed.reason.reason or "") if closed.reason else "",
            }
        )
        cancel_scope.cancel()
