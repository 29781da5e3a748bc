"""Upgrades (WebSocket and any other Upgrade a proxy allows) on the h1 server.

The request has already passed auth and routing. forward_upgrade() opens a fresh upstream
connection, sends the request head with `Connection: upgrade`, and reads the answer: only a 101
turns the client connection into a byte tunnel (pump), anything else is relayed as an ordinary
response and the client connection closes afterwards. Subprotocols, extensions and close codes
pass unchanged because the frames are never parsed. An idle tunnel costs one waiting task besides
the connection's own, and no buffers.
"""

from __future__ import annotations

import logging

import trio

from proxyd.edge.forward import send_error
from proxyd.edge.headers import HOP_BY_HOP, Headers
from proxyd.edge.http1 import ConnectionPool, UpstreamError, UpstreamTimeout, request_head

log = logging.getLogger("proxyd.edge.tunnel")

PUMP_SIZE = 64 * 1024
ALLOWED_UPGRADES = frozenset({b"websocket"})
_KEEP_101 = frozenset({b"upgrade", b"connection"})


async def pump(client: trio.abc.Stream, upstream: trio.abc.Stream, client_leftover: bytes) -> None:
    """Relay bytes both ways until either side ends, then close both."""

    async def one_way(src: trio.abc.Stream, dst: trio.abc.Stream, first: bytes) -> None:
        try:
            if first:
                await dst.send_all(first)
            while True:
                data = await src.receive_some(PUMP_SIZE)
                if not data:
                    break
                await dst.send_all(data)
                await trio.lowlevel.checkpoint()  # a busy tunnel must not starve the rest
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        nursery.cancel_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            # One direction in a child task, the other in this one: an idle tunnel then costs
            # one waiting task more than the connection's own, not two.
            nursery.start_soon(one_way, upstream, client, b"")
            await one_way(client, upstream, client_leftover)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await upstream.aclose()


def upgrade_allowed(token: bytes | None) -> bool:
    return token is not None and token.strip().lower() in ALLOWED_UPGRADES


async def forward_upgrade(
    scope: dict,
    send,
    *,
    pool: ConnectionPool,
    key: tuple[str, str, int],
    target: bytes,
    headers: Headers,
    label: str,
) -> int:
    """Forward an upgrade request; returns the status sent to the client."""
    tunnel = scope["extensions"]["proxyd.tunnel"]
    token = scope["proxyd.upgrade"].strip()
    try:
        conn = await pool.connect(key)
    except UpstreamTimeout:
        await send_error(
            send, 504, f"504 Gateway Timeout: the upstream for {label} did not answer."
        )
        return 504
    except UpstreamError:
        await send_error(
            send, 502, f"502 Bad Gateway: the upstream for {label} could not be reached."
        )
        return 502
    try:
        head = request_head(
            scope["method"],
            target,
            [*headers, (b"connection", b"upgrade"), (b"upgrade", token)],
        )
        try:
            await conn.stream.send_all(head)
            status, response_headers, _ = await pool.read_head(conn)
        except (UpstreamError, trio.BrokenResourceError, OSError) as exc:
            log.info("upgrade to the upstream for %s failed: %s", label, exc)
            await send_error(
                send, 502, f"502 Bad Gateway: the upstream for {label} refused the upgrade."
            )
            return 502
        if status != 101:
            # Never tunnel on anything but 101: relay the answer's head, close afterwards.
            kept = [(n, v) for n, v in response_headers if n not in HOP_BY_HOP]
            await send_error(
                send,
                status if status >= 200 else 502,
                f"{status} the upstream for {label} did not accept the upgrade.",
                [h for h in kept if h[0] not in (b"content-length", b"content-type")],
            )
            return status
        kept = [(n, v) for n, v in response_headers if n not in HOP_BY_HOP or n in _KEEP_101]
        scope["proxyd.upgraded"] = True
        stream, leftover = conn.stream, bytes(conn.buffer)
        conn = head = response_headers = None  # nothing but the two streams stays referenced
        await tunnel(kept, stream, leftover)
        return 101
    finally:
        if conn is not None:
            await conn.aclose()
