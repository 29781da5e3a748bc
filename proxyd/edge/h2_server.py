"""HTTP/2 on the public listeners: hypercorn's h2 protocol (frames, HPACK, flow control, priority,
one ASGI task per stream), run by proxyd's own connection loop, with the guards hypercorn lacks:

- rapid reset (CVE-2023-44487): a client that cancels more than MAX_PREMATURE_RESETS streams
  before their answers on one connection gets GOAWAY ENHANCE_YOUR_CALM and is disconnected.
  Each cancelled stream may already have started a backend request, so without this a client
  that never waits for an answer could turn a few bytes per stream into an unbounded flood of
  backend requests;
- requests per connection: after `max_requests` streams, proxyd sends one GOAWAY and refuses every
  later stream with RST_STREAM REFUSED_STREAM (hypercorn sends a GOAWAY per stream but keeps
  serving them). The idle timer then closes the connection;
- a request body that stalls for EDGE_BODY_TIMEOUT gets 408 and the upstream request is
  cancelled, as on HTTP/1.1 (hypercorn waits for the next DATA frame forever);
- a plain CONNECT (a TCP tunnel request) gets 405, as on HTTP/1.1 (hypercorn fails on it);
- bounded response buffering: hypercorn buffers a whole answer in memory when the client keeps
  its flow-control window shut; here the app waits until the client takes data;
- a stream whose answer or WebSocket message the client takes no byte of for EDGE_SEND_TIMEOUT
  (a shut flow-control window) is reset (RST_STREAM CANCEL) and the app sees a disconnect, which
  ends the upstream request; a full socket ends the connection the same way (the listener's
  FastStream). A stream whose answer the app could not finish is reset too (hypercorn leaves it
  open).

The listener (proxyd.edge.server) hands over a connection that negotiated ALPN h2, or a cleartext
one whose first bytes are the HTTP/2 preface (h2c with prior knowledge), together with the bytes
it already read. Streams reach the same Dispatcher as HTTP/1.1, so proxy selection, auth, routes,
the header policy and logging are shared.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.protocol.events import Body, Data, StreamClosed
from hypercorn.protocol.h2 import BUFFER_HIGH_WATER, H2Protocol
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from proxyd.edge.fastsock import address
from proxyd.edge.forward import send_error
from proxyd.edge.h1_wire import BODY_STALLED, CONNECT_REFUSED, EdgeLimits

MAX_PREMATURE_RESETS = 100  # streams a client may cancel before their answer, per connection
_STREAM_EVENTS = (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset)


class GuardedH2Protocol(H2Protocol):
    """hypercorn's H2Protocol with the rapid-reset and requests-per-connection guards."""

    def __init__(self, *args: Any, max_requests: int, send_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_requests = max_requests
        self.send_timeout = send_timeout
        self.premature_resets = 0
        self.going_away = False

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        cancelled = {
            e.stream_id for e in events if isinstance(e, h2.events.StreamReset) and e.remote_reset
        }
        admitted = self.keep_alive_requests
        skipped: set[int] = set()  # streams hypercorn never sees
        passed: list[h2.events.Event] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                stream_id = event.stream_id
                if self.going_away or admitted >= self.max_requests:
                    self._refuse(stream_id)
                    skipped.add(stream_id)
                    continue
                if _is_tunnel(event.headers):  # hypercorn would fail on it (no :path)
                    self._answer(stream_id, 405, CONNECT_REFUSED.encode() + b"\n")
                    skipped.add(stream_id)
                    continue
                if stream_id in cancelled:  # cancelled in the same read: never started
                    skipped.add(stream_id)
                    if self._premature_reset():
                        await self._calm_down()
                        return
                    continue
                admitted += 1
            elif isinstance(event, _STREAM_EVENTS) and event.stream_id in skipped:
                if isinstance(event, h2.events.DataReceived):
                    self._acknowledge(event)
                continue
            elif (
                isinstance(event, h2.events.StreamReset)
                and event.remote_reset
                and event.stream_id in self.streams  # its answer has not ended yet
                and self._premature_reset()
            ):
                await self._calm_down()
                return
            passed.append(event)
        await super()._handle_events(passed)

    def _premature_reset(self) -> bool:
        """Count a stream the client cancelled before its answer; True: over the limit."""
        self.premature_resets += 1
        return self.premature_resets > MAX_PREMATURE_RESETS

    def _acknowledge(self, event: h2.events.DataReceived) -> None:
        """Give back the flow-control window of DATA that is dropped."""
        try:
            self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        except h2.exceptions.ProtocolError:
            pass

    def _answer(self, stream_id: int, status: int, text: bytes) -> None:
        """A short plain-text answer that ends the stream (a reset if the window is shut)."""
        try:
            self.connection.send_headers(
                stream_id,
                [
                    (b":status", b"%d" % status),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(text)),
                ],
            )
            self.connection.send_data(stream_id, text, end_stream=True)
        except h2.exceptions.ProtocolError:  # closed meanwhile, or no window for the body
            self._cancel(stream_id)

    def _refuse(self, stream_id: int) -> None:
        """RST_STREAM REFUSED_STREAM (the client may retry elsewhere), and one GOAWAY."""
        try:
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        except h2.exceptions.ProtocolError:  # the client already reset it
            pass
        if not self.going_away:
            self.going_away = True
            self.connection.close_connection(h2.errors.ErrorCodes.NO_ERROR)

    async def stream_send(self, event: Any) -> None:
        if isinstance(event, StreamClosed):
            buffer = self.stream_buffers.get(event.stream_id)
            if buffer is not None and not buffer.complete:  # the app ended before its answer
                self._cancel(event.stream_id)
                await buffer.close()
                del self.stream_buffers[event.stream_id]
                await self._flush()
        if not isinstance(event, Body | Data):
            await super().stream_send(event)
            return
        with trio.move_on_after(self.send_timeout):
            await super().stream_send(event)
            await self._taken(event.stream_id)
            return
        await self._give_up(event.stream_id)

    async def _taken(self, stream_id: int) -> None:
        """Wait until the stream's buffer is below its high-water mark. hypercorn's push returns
        as soon as a shut flow-control window makes its sender pop 0 bytes, so a client that
        never opens its window would otherwise have the whole answer buffered here."""
        buffer = self.stream_buffers.get(stream_id)
        while buffer is not None and len(buffer.buffer) >= BUFFER_HIGH_WATER:
            if buffer._complete:  # closed meanwhile
                return
            await buffer._paused.clear()
            await buffer._paused.wait()

    async def _give_up(self, stream_id: int) -> None:
        """The client took nothing of this stream for the send timeout: reset it, drop what
        is buffered, and tell the app (a disconnect), which ends its upstream request."""
        self._cancel(stream_id)
        buffer = self.stream_buffers.pop(stream_id, None)
        if buffer is not None:
            await buffer.close()
        await self._flush()
        await self._close_stream(stream_id)

    def _cancel(self, stream_id: int) -> None:
        try:
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.ProtocolError:  # already closed
            pass
        with contextlib.suppress(KeyError):  # priority.MissingStreamError: not in the tree
            self.priority.remove_stream(stream_id)

    async def _calm_down(self) -> None:
        self.going_away = True
        self.connection.close_connection(
            h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
            additional_data=b"too many streams cancelled before their answer",
        )
        await self._flush()
        await self.send(Closed())


class _BodyTimeout:
    """The app, with each HTTP request body read under the body idle timeout."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "body_done": False, "answered": False}

        async def timed_receive() -> dict:
            if state["body_done"] or state["answered"]:
                return await receive()  # the app now waits for a disconnect: no timeout
            with trio.move_on_after(self.timeout):
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    state["body_done"] = True
                return message
            state["answered"] = True
            if not state["started"]:
                state["started"] = True
                await send_error(send, 408, BODY_STALLED)
            return {"type": "http.disconnect"}

        async def tracked_send(message: dict) -> None:
            if state["answered"]:
                return  # the 408 was the answer
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, timed_receive, tracked_send)


def _is_tunnel(headers: list[tuple[bytes, bytes]]) -> bool:
    """A CONNECT that asks for a TCP tunnel (not RFC 8441's extended CONNECT for WebSockets)."""
    fields = dict(headers)
    return fields.get(b":method") == b"CONNECT" and b":protocol" not in fields


class _Connection(TCPServer):
    """hypercorn's per-connection loop (reads, idle timer, close) around GuardedH2Protocol."""

    def __init__(self, server: H2Server, stream: trio.abc.Stream, first: bytes) -> None:
        super().__init__(server.app, server.config, server.context, {}, stream)
        self.first = first
        self.max_requests = server.max_requests
        self.send_timeout = server.send_timeout

    async def run(self) -> None:
        tls = hasattr(self.stream, "selected_alpn_protocol")
        sock = self.stream.transport_stream.socket if tls else self.stream.socket
        try:
            client = address(sock.getpeername())
            server = address(sock.getsockname())
            async with TaskGroup() as task_group:
                self._task_group = task_group
                self.protocol = GuardedH2Protocol(
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState({}),
                    tls,
                    client,
                    server,
                    self.protocol_send,
                    max_requests=self.max_requests,
                    send_timeout=self.send_timeout,
                )
                await self.protocol.initiate()
                await self.idle_task.restart(self._task_group, self._idle_timeout)
                if self.first:
                    await self.protocol.handle(RawData(self.first))
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()


class H2Server:
    """Serves HTTP/2 connections for one listener with its app and limits."""

    def __init__(self, app: Any, limits: EdgeLimits, graceful_timeout: float) -> None:
        config = Config()
        config.accesslog = None
        config.errorlog = logging.getLogger("proxyd.edge.hypercorn")
        config.include_server_header = False
        config.graceful_timeout = graceful_timeout
        config.keep_alive_timeout = limits.keepalive_timeout
        # GuardedH2Protocol refuses streams from max_requests on; hypercorn's own check (one
        # GOAWAY per stream after the limit) then never fires.
        config.keep_alive_max_requests = limits.max_requests
        config.read_timeout = None
        config.h2_max_inbound_frame_size = 2**14
        config.websocket_max_message_size = 16 * 1024 * 1024
        self.config = config
        self.max_requests = limits.max_requests
        self.app = wrap_app(
            _BodyTimeout(app, limits.body_timeout), config.wsgi_max_body_size, "asgi"
        )
        self.send_timeout = limits.send_timeout
        self.context = WorkerContext(None)

    async def serve(self, stream: trio.abc.Stream, first: bytes = b"") -> None:
        """Serve one connection; first: bytes already read from it (the h2c preface)."""
        await _Connection(self, stream, first).run()
