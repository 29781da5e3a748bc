"""Forwarding one HTTP request upstream and its response back, streaming both ways.

Bodies are never buffered: the request body is read from the ASGI receive channel as the upstream
consumes it, and the response is relayed chunk by chunk as it arrives, so compressed bodies pass
through untouched (content-encoding kept). A small response that arrives whole with its head is
sent in one piece. When the client goes away the upstream request is cancelled. Upstream failures
become 502 (refused, broken) or 504 (timed out) with a plain-text body.

Where the h1 server offers scope["extensions"]["proxyd.splice"] (plain TCP on Linux), a large
Content-Length body bound for or coming from a plain-TCP upstream is moved socket to socket with
splice(2) instead (proxyd.edge.splice).
"""

from __future__ import annotations

import logging
import time

import trio

from proxyd.edge import splice
from proxyd.edge.headers import Headers, downstream_response_headers, header_value
from proxyd.edge.http1 import (
    ConnectionPool,
    Pending,
    Response,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeout,
)

log = logging.getLogger("proxyd.edge.forward")

# Seconds an upstream answer may take to start before a watcher for the client's disconnect is
# started (a hang-up within this time is noticed when the answer is written).
QUICK_ANSWER = 0.05


class ClientDisconnected(Exception):
    """The client closed the connection before the exchange finished."""


async def send_error(send, status: int, message: str, headers: Headers | None = None) -> None:
    body = (message.rstrip("\n") + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_refusal(scope: dict, send, status: int, message: str) -> None:
    """Refuse a request with status and one sentence. A WebSocket handshake gets the same answer
    when the server can send one (the ASGI denial extension: HTTP/2 through hypercorn), else a
    close (1011 for a server-side failure, 1008 otherwise), which servers answer with 403."""
    if scope["type"] == "websocket":
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1011 if status >= 500 else 1008})
            return

        async def denial(event: dict) -> None:
            await send({**event, "type": "websocket." + event["type"]})

        await send_error(denial, status, message)
        return
    await send_error(send, status, message)


async def _upstream_failed(scope: dict, send, exc: UpstreamError, label: str) -> int:
    """Answer 504 (timed out) or 502 (refused, broken) for a failed upstream exchange."""
    if isinstance(exc, UpstreamTimeout):
        scope["proxyd.upstream_error"] = "timeout"
        await send_error(
            send, 504, f"504 Gateway Timeout: the upstream for {label} did not answer in time."
        )
        return 504
    level = logging.INFO if isinstance(exc, UpstreamConnectError) else logging.WARNING
    log.log(level, "upstream for %s failed: %s", label, exc)
    scope["proxyd.upstream_error"] = type(exc).__name__
    await send_error(send, 502, f"502 Bad Gateway: the upstream for {label} could not be reached.")
    return 502


def _spliceable(response: Response, out: Headers) -> bool:
    """A large Content-Length body that the client gets with the same Content-Length."""
    total, rest = response.splice_plan()
    if rest < splice.MIN_BYTES:
        return False
    declared = header_value(out, b"content-length")
    return declared is not None and declared.isdigit() and int(declared) == total


async def _send_spliced(send, response: Response) -> None:
    """The buffered start of the body as usual, the rest straight from socket to socket."""
    buffered = response.take_buffered()
    if buffered:
        await send({"type": "http.response.body", "body": buffered, "more_body": True})
    rest = response.splice_plan()[0]
    await send({"type": "proxyd.response.splice", "count": rest, "relay": response.splice_to})
    await send({"type": "http.response.body", "body": b""})


class BodyLengthMismatch(Exception):
    """The request body does not match its declared Content-Length (possible on HTTP/2)."""


def _body_framing(scope: dict) -> tuple[bool, int | None]:
    """(has a body, its declared length or None) for the client's request.

    The h1 server has already refused every ambiguous framing; on HTTP/2 a body without a
    Content-Length is possible for any method that can carry one.
    """
    length = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            if length is not None or not value.strip().isdigit():
                raise BodyLengthMismatch()
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    if length is not None:
        return length > 0, length
    if chunked:
        return True, None
    if scope.get("http_version") == "2":
        return scope.get("method") not in ("GET", "HEAD", "OPTIONS", "DELETE"), None
    return False, None


async def forward_http(
    scope: dict,
    receive,
    send,
    *,
    pool: ConnectionPool,
    key: tuple[str, str, int],
    target: bytes,
    headers: Headers,
    label: str,
    response_headers: dict[str, str] | None = None,
) -> int:
    """Relay the request to key/target; returns the status sent to the client (0 if none)."""
    try:
        has_body, length = _body_framing(scope)
    except BodyLengthMismatch:
        await send_error(send, 400, "400 Bad Request: the Content-Length header is invalid.")
        return 400
    chunked = has_body and length is None
    # The framing proxyd sends is its own: the client's framing headers were removed.
    if chunked:
        headers = [*headers, (b"transfer-encoding", b"chunked")]
    elif has_body:
        headers = [*headers, (b"content-length", b"%d" % length)]
    elif scope.get("method") in ("POST", "PUT", "PATCH"):
        headers = [*headers, (b"content-length", b"0")]
    started = time.perf_counter()
    method = scope["method"]
    first: Response | Pending | None = None
    if not has_body:
        # Fast path: most answers start within a few milliseconds, and a small one is relayed
        # without a disconnect watcher (no task, no nursery). Only a slow or streamed answer
        # gets one (in _relay).
        try:
            first = await pool.request(method, key, target, headers, None, False, QUICK_ANSWER)
        except UpstreamError as exc:
            return await _upstream_failed(scope, send, exc, label)
        if isinstance(first, Response):
            whole = first.complete_body()
            if whole is not None:
                scope["proxyd.upstream_ms"] = (time.perf_counter() - started) * 1000
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": first.status,
                            "headers": downstream_response_headers(first.headers, response_headers),
                        }
                    )
                    await send({"type": "http.response.body", "body": whole})
                finally:
                    await first.aclose()
                return first.status
    return await _relay(
        scope,
        receive,
        send,
        pool,
        key,
        target,
        headers,
        label,
        response_headers,
        first,
        started,
        has_body,
        length,
        chunked,
    )


async def _relay(
    scope: dict,
    receive,
    send,
    pool: ConnectionPool,
    key: tuple[str, str, int],
    target: bytes,
    headers: Headers,
    label: str,
    response_headers: dict[str, str] | None,
    first: Response | Pending | None,
    started: float,
    has_body: bool,
    length: int | None,
    chunked: bool,
) -> int:
    """forward_http beyond its fast path: a request body, or an answer that is slow, large or
    streamed, relayed while a watcher notices the client hanging up."""
    body_done = trio.Event()
    method = scope["method"]

    async def request_body():
        total = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected()
                chunk = message.get("body", b"")
                if chunk:
                    await trio.lowlevel.checkpoint()  # a long upload must not starve the rest
                    total += len(chunk)
                    if length is not None and total > length:
                        raise BodyLengthMismatch()
                    yield chunk
                if not message.get("more_body", False):
                    break
            if length is not None and total != length:
                raise BodyLengthMismatch()
        finally:
            body_done.set()

    async def spliced_body(stream: trio.abc.Stream, sock) -> None:
        try:
            sent = await splicer["request_body"](
                stream.send_all, sock, getattr(stream, "send_timeout", None)
            )
            scope["proxyd.spliced_in"] = scope.get("proxyd.spliced_in", 0) + sent
        except splice.SourceEnded:
            raise ClientDisconnected() from None
        finally:
            body_done.set()

    async def watch_disconnect(cancel_scope: trio.CancelScope) -> None:
        if not has_body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    cancel_scope.cancel()
                    return
                if not message.get("more_body", False):
                    break
        else:
            await body_done.wait()
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel_scope.cancel()

    response = None
    splicer = (scope.get("extensions") or {}).get("proxyd.splice")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_disconnect, nursery.cancel_scope)
        try:
            if first is None:
                if splicer and length and length >= splice.MIN_BYTES and key[0] == "http":
                    body = splice.SplicedBody(spliced_body)  # zero-copy: plain TCP both sides
                else:
                    body = request_body()
                response = await pool.request(method, key, target, headers, body, chunked)
            elif isinstance(first, Pending):
                response = await pool.finish(first)
            else:
                response = first
        except ClientDisconnected:
            nursery.cancel_scope.cancel()
            return 0
        except BodyLengthMismatch:
            await send_error(
                send, 400, "400 Bad Request: the body does not match its Content-Length."
            )
            nursery.cancel_scope.cancel()
            return 400
        except UpstreamError as exc:
            status = await _upstream_failed(scope, send, exc, label)
            nursery.cancel_scope.cancel()
            return status
        # Time to the upstream's response head (the request log reads it from the scope).
        scope["proxyd.upstream_ms"] = (time.perf_counter() - started) * 1000
        try:
            out = downstream_response_headers(response.headers, response_headers)
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            whole = response.complete_body()
            if whole is not None:
                await send({"type": "http.response.body", "body": whole})
            elif splicer is not None and _spliceable(response, out):
                await _send_spliced(send, response)
            else:
                async for chunk in response.body():
                    await trio.lowlevel.checkpoint()  # a long download must not starve the rest
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except UpstreamError as exc:
            # Headers are already out: all we can do is cut the response short.
            log.warning("upstream for %s broke mid-response: %s", label, exc)
            raise
        finally:
            await response.aclose()
            nursery.cancel_scope.cancel()
    if response is None:
        # The client went away before the upstream answered: the request was cancelled.
        scope["proxyd.upstream_error"] = "client_disconnected"
        return 0
    return response.status
