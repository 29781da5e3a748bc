"""The per-request meter wrapped around ProxyApp.handle: it counts bytes in and out, captures the
status and the time to the response start, and at the end hands one row (proxyd.logs.wire) to
`RequestLog.submit` (an append to a bounded buffer, never awaited). No Redis work here.

A server that counts these itself names the object holding them in the scope as `proxyd.meter`
(attributes bytes_in, bytes_out, status, first_byte: the h1 server's exchange does); receive and
send are then not wrapped, which saves two coroutine layers per message.

Other capabilities can add facts through the ASGI scope, read when the request ends:
`proxyd.upstream_ms` (float), `proxyd.upstream_error` ("timeout" or a short reason),
`proxyd.user`, `proxyd.client_id`, `proxyd.auth_outcome` (strings).

The caller passes the real client address as a plain value (`client=`, worked out by the edge from
the socket, PROXY protocol or a trusted X-Forwarded-For); logs never import the edge. Without it
the record holds the TCP peer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from proxyd.logs.writer import RequestLog

Handler = Callable[[dict, Any, Any], Awaitable[None]]


class _Meter:
    """One request's counters, with the receive and send that feed them (bound methods: one
    object per request instead of a counter object and two closures)."""

    __slots__ = (
        "_receive",
        "_send",
        "bytes_in",
        "bytes_out",
        "first_byte",
        "metrics",
        "status",
        "websocket",
    )

    def __init__(self, receive, send, websocket: bool, metrics: Any) -> None:
        self._receive = receive
        self._send = send
        self.websocket = websocket
        self.metrics = metrics
        self.bytes_in = 0
        self.bytes_out = 0
        self.status = 0
        self.first_byte = 0.0

    def _size(self, message: dict) -> int:
        """Bytes of an HTTP body or WebSocket message."""
        if not self.websocket:
            body = message.get("body")
        else:
            body = message.get("bytes") or message.get("text")
        return len(body) if body else 0

    async def receive(self) -> dict:
        message = await self._receive()
        self.bytes_in += self._size(message)
        return message

    async def send(self, message: dict) -> None:
        sort = message["type"]
        if sort == "http.response.body" or sort == "websocket.send":
            self.bytes_out += self._size(message)
        elif sort == "http.response.start":
            self.status = message["status"]
            self.first_byte = time.perf_counter()
        elif sort == "websocket.accept":
            self.status = 101
            self.first_byte = time.perf_counter()
            self.metrics.active_websockets += 1
        elif sort == "websocket.close" and not self.status:
            self.status = 403 if message.get("code", 1000) == 1008 else 502
        elif sort == "proxyd.response.splice":  # body bytes moved socket to socket (splice)
            self.bytes_out += message["count"]
        await self._send(message)


def _agent_and_referer(headers: list) -> tuple[str, str]:
    """The first User-Agent and Referer values (latin-1; "" when missing), in one pass."""
    agent = referer = None
    for key, value in headers:
        if key == b"user-agent":
            if agent is None:
                agent = value.decode("latin-1")
        elif key == b"referer" and referer is None:
            referer = value.decode("latin-1")
    return agent or "", referer or ""


async def observe(
    request_log: RequestLog,
    hostname: str,
    handle: Handler,
    scope: dict,
    receive,
    send,
    *,
    client: str | None = None,
) -> None:
    """Run handle(scope, receive, send) and record what happened (client: the real client
    address; None: the TCP peer)."""
    websocket = scope["type"] == "websocket"
    metrics = request_log.metrics
    meter = scope.get("proxyd.meter")  # a server that counts for us (the h1 server)
    if meter is None:
        meter = _Meter(receive, send, websocket, metrics)
        receive, send = meter.receive, meter.send
    started = time.perf_counter()
    wall = time.time()
    error = ""
    if not websocket:
        metrics.active_http += 1
    try:
        await handle(scope, receive, send)
    except trio.Cancelled:
        error = "cancelled"
        raise
    except BaseException as exc:
        error = type(exc).__name__
        raise
    finally:
        if websocket:
            if meter.status == 101:
                metrics.active_websockets -= 1
        else:
            metrics.active_http -= 1
        _finish(request_log, hostname, scope, meter, started, wall, error, client)


def _finish(
    request_log: RequestLog,
    hostname: str,
    scope: dict,
    meter: Any,
    started: float,
    wall: float,
    error: str,
    client: str | None,
) -> None:
    ended = time.perf_counter()
    status = meter.status
    if not status and scope.get("proxyd.upgraded"):
        status = 101  # an h1 upgrade became a byte tunnel (its 101 is sent by the tunnel)
    if not status:
        status = 499 if error in ("", "cancelled") else 500
        error = error or "client_disconnected"
    upstream_error = scope.get("proxyd.upstream_error") or (
        "timeout" if status == 504 else "bad_gateway" if status == 502 else ""
    )
    seconds = ended - started
    request_log.metrics.observe(hostname, status, seconds, upstream_error)
    if not request_log.enabled:
        return
    upstream_ms = scope.get("proxyd.upstream_ms")
    if upstream_ms is None and meter.first_byte:
        upstream_ms = (meter.first_byte - started) * 1000
    user_agent, referer = _agent_and_referer(scope["headers"])
    if client is None:
        client = scope["client"][0] if scope.get("client") else ""
    query = scope.get("query_string") or b""
    # A row in proxyd.logs.wire.ROW_FIELDS order (times in integer microseconds).
    request_log.submit(
        (
            int(wall * 1_000_000),
            client,
            hostname,
            scope.get("method") or "WS",
            scope.get("path", ""),
            query.decode("latin-1"),
            status,
            meter.bytes_in + scope.get("proxyd.spliced_in", 0),
            meter.bytes_out,
            int(seconds * 1_000_000),
            None if upstream_ms is None else int(upstream_ms * 1000),
            user_agent,
            referer,
            scope["type"],
            scope.get("proxyd.user") or "",
            scope.get("proxyd.client_id") or "",
            scope.get("proxyd.auth_outcome") or "",
            error or (upstream_error if status >= 500 else ""),
        )
    )
