"""Forwarding one HTTP request upstream and its response back, streaming both ways.

Bodies are never buffered: the request body is read from the ASGI receive channel as the upstream
consumes it, and the response is relayed chunk by chunk with aiter_raw, so compressed bodies pass
through untouched (content-encoding kept). When the client goes away the upstream request is
cancelled. Upstream failures become 502 (refused, broken) or 504 (timed out) with a plain-text body.
"""

from __future__ import annotations

import logging

import httpx
import trio

from proxyd.edge.headers import Headers, downstream_response_headers, header_value

log = logging.getLogger("proxyd.edge.forward")


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
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _has_body(headers: Headers) -> bool:
    length = header_value(headers, b"content-length")
    if length is not None:
        return length.strip() not in (b"0", b"")
    return header_value(headers, b"transfer-encoding") is not None


async def forward_http(
    scope: dict,
    receive,
    send,
    *,
    client: httpx.AsyncClient,
    url: str,
    headers: Headers,
    label: str,
    response_headers: dict[str, str] | None = None,
) -> int:
    """Relay the request to url; returns the status sent to the client (0 if none was sent)."""
    body_done = trio.Event()
    has_body = _has_body(scope["headers"])

    async def request_body():
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected()
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    break
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

    request = httpx.Request(
        scope["method"], url, headers=headers, content=request_body() if has_body else None
    )
    status = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_disconnect, nursery.cancel_scope)
        try:
            response = await client.send(request, stream=True)
        except ClientDisconnected:
            nursery.cancel_scope.cancel()
            return 0
        except httpx.TimeoutException:
            await send_error(
                send, 504, f"504 Gateway Timeout: the upstream for {label} did not answer in time."
            )
            nursery.cancel_scope.cancel()
            return 504
        except httpx.HTTPError as exc:
            log.info("upstream for %s failed: %s", label, type(exc).__name__)
            await send_error(
                send, 502, f"502 Bad Gateway: the upstream for {label} could not be reached."
            )
            nursery.cancel_scope.cancel()
            return 502
        try:
            status = response.status_code
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": downstream_response_headers(response.headers.raw, response_headers),
                }
            )
            if scope["method"] != "HEAD":
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError as exc:
            # Headers are already out: all we can do is cut the response short.
            log.info("upstream for %s broke mid-response: %s", label, type(exc).__name__)
            raise
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()
            nursery.cancel_scope.cancel()
    return status
