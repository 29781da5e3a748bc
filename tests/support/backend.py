"""A real test backend (hypercorn on loopback, in the test's trio loop) with the endpoints the
proxy tests need: echo, streaming download/upload, gzip, SSE, slow answers and a WebSocket echo.
"""

from __future__ import annotations

import gzip
import json

import attrs
import trio

from proxyd.edge.listener import bound_port, serve_asgi

CHUNK = b"x" * 65536
GZIPPED = gzip.compress(b"hello compressed world\n" * 100)


@attrs.define
class Backend:
    port: int
    shutdown: trio.Event
    uploads: list[int] = attrs.Factory(list)
    disconnects: list[str] = attrs.Factory(list)
    requests: int = 0
    websockets: int = 0  # WebSocket handshakes that reached the backend

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _query(scope: dict) -> dict[str, str]:
    out = {}
    for part in scope.get("query_string", b"").decode().split("&"):
        key, _, value = part.partition("=")
        if key:
            out[key] = value
    return out


async def _respond(send, status: int, body: bytes, headers=()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_app(state: Backend):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            state.websockets += 1
            await websocket_echo(scope, receive, send)
            return
        state.requests += 1
        path, query = scope["path"], _query(scope)
        if path == "/upload":
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            state.uploads.append(total)
            await _respond(
                send,
                200,
                json.dumps({"received": total}).encode(),
                [(b"content-type", b"application/json")],
            )
        elif path == "/download":
            size = int(query.get("bytes", "1048576"))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(size).encode())],
                }
            )
            left = size
            while left:
                piece = CHUNK[: min(left, len(CHUNK))]
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                left -= len(piece)
            await send({"type": "http.response.body", "body": b""})
        elif path == "/gzip":
            await _respond(
                send,
                200,
                GZIPPED,
                [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")],
            )
        elif path == "/sse":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            count = int(query.get("count", "3"))
            try:
                for i in range(count):
                    await send(
                        {
                            "type": "http.response.body",
                            "body": f"id: {i}\ndata: event {i}\n\n".encode(),
                            "more_body": True,
                        }
                    )
                    await trio.sleep(float(query.get("interval", "0.3")))
                await send({"type": "http.response.body", "body": b""})
            finally:
                pass
        elif path == "/slow":
            await trio.sleep(float(query.get("seconds", "5")))
            await _respond(send, 200, b"slow\n")
        elif path == "/hang":
            # Streams forever until the client (the proxy) goes away.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            with trio.CancelScope() as cs:

                async def watch():
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    state.disconnects.append(path)
                    cs.cancel()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch)
                    while True:
                        await send({"type": "http.response.body", "body": b".", "more_body": True})
                        await trio.sleep(0.1)
        else:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            payload = {
                "method": scope["method"],
                "path": path,
                "query": scope.get("query_string", b"").decode(),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "body": body.decode(errors="replace"),
                "backend": state.port,
            }
            await _respond(
                send,
                int(query.get("status", "200")),
                json.dumps(payload).encode(),
                [
                    (b"content-type", b"application/json"),
                    (b"x-backend", b"yes"),
                    (b"connection", b"x-hop"),
                    (b"x-hop", b"drop-me"),
                ],
            )

    return app


async def websocket_echo(scope, receive, send) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:])})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": "echo:" + text})
        else:
            await send({"type": "websocket.send", "bytes": b"echo:" + message["bytes"]})


async def start_backend(nursery: trio.Nursery) -> Backend:
    state = Backend(port=0, shutdown=trio.Event())
    binds = await nursery.start(
        lambda task_status: serve_asgi(
            make_app(state),
            "127.0.0.1:0",
            shutdown_event=state.shutdown,
            graceful_timeout=0.5,
            task_status=task_status,
        )
    )
    state.port = bound_port(binds)
    return state
